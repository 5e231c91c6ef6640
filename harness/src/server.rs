//! This module deals with the servers that run inside lab namespaces: an HTTP echo
//! server on every TCP port, a UDP echo on every UDP port, an SCTP acceptor on every
//! SCTP port (when the kernel has SCTP).
//!
//! Sockets are created on a thread that entered the namespace (see [`NetNs::run_async`])
//! and then driven by tokio from any worker: a socket stays in the namespace it was
//! created in.
//!
//! The HTTP server answers every well-formed request with `200 OK` and the body
//! `server=<name>\nclient=<ip>:<port>\n` (the client address as the server saw it, which
//! shows SNAT), and closes the connection. A malformed request gets `400`. The UDP
//! echo sends every datagram back; to a policylab probe's datagram (it starts with
//! [`crate::probe::UDP_TOKEN`]) it appends `client=<ip>:<port>\n` likewise.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use policylab::lab::{ServerProtocol, ServerSpec};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::netns::{NetNs, NetnsError};

/// The IP protocol number of SCTP.
pub const IPPROTO_SCTP: i32 = 132;

/// The longest request head (request line and headers) the HTTP server reads.
pub const MAX_HEAD: usize = 16 * 1024;

/// What went wrong starting a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("binding {spec} on {addr} in namespace {namespace}: {source}")]
    Bind {
        namespace: String,
        spec: ServerSpec,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("the kernel has no SCTP support (socket(IPPROTO_SCTP) failed: {reason}); SCTP servers and probes cannot run on this machine")]
    SctpUnsupported { reason: String },
}

/// Which address families to serve on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    pub v4: bool,
    pub v6: bool,
}

impl Families {
    /// The families of a list of addresses.
    pub fn of(addrs: &[IpAddr]) -> Families {
        Families {
            v4: addrs.iter().any(IpAddr::is_ipv4),
            v6: addrs.iter().any(IpAddr::is_ipv6),
        }
    }
}

/// One port being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedPort {
    /// The namespace name.
    pub namespace: String,
    /// The name the server gives in its answers.
    pub server: String,
    pub spec: ServerSpec,
    /// The wildcard address it listens on.
    pub local: SocketAddr,
}

/// The running servers of a lab. Dropping it stops them all.
#[derive(Debug, Default)]
pub struct ServerSet {
    tasks: Vec<JoinHandle<()>>,
    ports: Vec<ServedPort>,
}

impl ServerSet {
    pub fn new() -> ServerSet {
        ServerSet::default()
    }

    /// The ports being served, in the order they were started.
    pub fn ports(&self) -> &[ServedPort] {
        &self.ports
    }

    /// Starts serving `spec` in `ns` on the wildcard address of each family. `server` is
    /// the name the server gives in its answers.
    pub async fn serve(
        &mut self,
        ns: &NetNs,
        server: &str,
        spec: ServerSpec,
        families: Families,
    ) -> Result<(), ServerError> {
        let mut addrs = Vec::new();
        if families.v4 {
            addrs.push(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                spec.port,
            ));
        }
        if families.v6 {
            addrs.push(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                spec.port,
            ));
        }
        let sockets = {
            let addrs = addrs.clone();
            ns.run_async(move || -> Vec<io::Result<Socket>> {
                addrs
                    .iter()
                    .map(|a| bind_socket(spec.protocol, *a))
                    .collect()
            })
            .await?
        };
        let name: Arc<str> = Arc::from(server);
        for (addr, sock) in addrs.into_iter().zip(sockets) {
            let sock = sock.map_err(|source| {
                if spec.protocol == ServerProtocol::Sctp && is_unsupported(&source) {
                    ServerError::SctpUnsupported {
                        reason: source.to_string(),
                    }
                } else {
                    ServerError::Bind {
                        namespace: ns.name().to_string(),
                        spec,
                        addr,
                        source,
                    }
                }
            })?;
            let bind_err = |source| ServerError::Bind {
                namespace: ns.name().to_string(),
                spec,
                addr,
                source,
            };
            let task = match spec.protocol {
                ServerProtocol::Tcp => {
                    let l = tokio::net::TcpListener::from_std(sock.into()).map_err(bind_err)?;
                    tokio::spawn(http_accept_loop(l, name.clone()))
                }
                ServerProtocol::Udp => {
                    let u = tokio::net::UdpSocket::from_std(sock.into()).map_err(bind_err)?;
                    tokio::spawn(udp_echo_loop(u))
                }
                ServerProtocol::Sctp => {
                    let fd = crate::util::async_fd(sock).map_err(bind_err)?;
                    tokio::spawn(sctp_accept_loop(fd))
                }
            };
            self.tasks.push(task);
            self.ports.push(ServedPort {
                namespace: ns.name().to_string(),
                server: server.to_string(),
                spec,
                local: addr,
            });
        }
        Ok(())
    }

    /// Stops every server (their sockets close).
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.ports.clear();
    }
}

impl Drop for ServerSet {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPROTONOSUPPORT) | Some(libc::ESOCKTNOSUPPORT) | Some(libc::EAFNOSUPPORT)
    )
}

/// Whether SCTP sockets can be made in `ns` (the kernel has SCTP).
pub async fn sctp_supported(ns: &NetNs) -> Result<bool, NetnsError> {
    ns.run_async(|| {
        Socket::new(
            Domain::IPV4,
            Type::STREAM,
            Some(Protocol::from(IPPROTO_SCTP)),
        )
    })
    .await
    .map(|r| r.is_ok())
}

/// Makes, binds and (for stream protocols) listens on a non-blocking socket. Must run
/// on a thread inside the target namespace.
fn bind_socket(proto: ServerProtocol, addr: SocketAddr) -> io::Result<Socket> {
    let domain = Domain::for_address(addr);
    let (ty, p) = match proto {
        ServerProtocol::Tcp => (Type::STREAM, Protocol::TCP),
        ServerProtocol::Udp => (Type::DGRAM, Protocol::UDP),
        ServerProtocol::Sctp => (Type::STREAM, Protocol::from(IPPROTO_SCTP)),
    };
    let s = Socket::new(domain, ty, Some(p))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    if ty == Type::STREAM {
        s.listen(1024)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

async fn http_accept_loop(listener: tokio::net::TcpListener, name: Arc<str>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(serve_http(stream, peer, name.clone()));
            }
            // Out of fds or similar: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn serve_http(mut stream: tokio::net::TcpStream, peer: SocketAddr, name: Arc<str>) {
    let work = async {
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(end) = find_head_end(&buf) {
                break Some(end);
            }
            if buf.len() > MAX_HEAD {
                break None;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let response = match head_end.map(|end| parse_request_head(&buf[..end])) {
            Some(Ok(head)) => {
                let full = format!("server={name}\nclient={peer}\n");
                let len = full.len();
                let body = if head.method == "HEAD" {
                    ""
                } else {
                    full.as_str()
                };
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}"
                )
            }
            Some(Err(e)) => bad_request(&e.to_string()),
            None => bad_request("request head too large"),
        };
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    };
    // A client that never finishes its request does not hold the task forever.
    let _ = tokio::time::timeout(Duration::from_secs(10), work).await;
}

fn bad_request(why: &str) -> String {
    let body = format!("bad request: {why}\n");
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The length of the request head including its terminating blank line (`\r\n\r\n`, or
/// a bare `\n\n` from lenient clients).
pub fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A parsed HTTP/1.x request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    pub version: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
}

/// Why a request head is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpParseError {
    #[error("request head is not UTF-8")]
    NotUtf8,
    #[error("malformed request line {0:?}")]
    RequestLine(String),
    #[error("unsupported HTTP version {0:?}")]
    Version(String),
    #[error("malformed header line {0:?}")]
    Header(String),
}

/// Parses a request head (request line, headers, blank line).
pub fn parse_request_head(head: &[u8]) -> Result<RequestHead, HttpParseError> {
    let text = std::str::from_utf8(head).map_err(|_| HttpParseError::NotUtf8)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts.as_slice() else {
        return Err(HttpParseError::RequestLine(request_line.to_string()));
    };
    let token_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    if !token_ok(method) || !method.bytes().all(|b| b.is_ascii_uppercase()) || !token_ok(target) {
        return Err(HttpParseError::RequestLine(request_line.to_string()));
    }
    if *version != "HTTP/1.1" && *version != "HTTP/1.0" {
        return Err(HttpParseError::Version(version.to_string()));
    }
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpParseError::Header(line.to_string()));
        };
        if !token_ok(name) {
            return Err(HttpParseError::Header(line.to_string()));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(RequestHead {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers,
    })
}

async fn udp_echo_loop(sock: tokio::net::UdpSocket) {
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, peer)) => {
                let mut reply = buf[..n].to_vec();
                if reply.starts_with(crate::probe::UDP_TOKEN.as_bytes()) {
                    reply.extend_from_slice(format!("client={peer}\n").as_bytes());
                }
                let _ = sock.send_to(&reply, peer).await;
            }
            // ICMP errors from earlier sends surface here; keep serving.
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

async fn sctp_accept_loop(listener: AsyncFd<Socket>) {
    loop {
        let Ok(mut guard) = listener.readable().await else {
            return;
        };
        match guard.try_io(|l| l.get_ref().accept()) {
            Ok(Ok((conn, _peer))) => {
                if conn.set_nonblocking(true).is_ok() {
                    if let Ok(fd) = crate::util::async_fd(conn) {
                        tokio::spawn(sctp_echo(fd));
                    }
                }
            }
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(_would_block) => {}
        }
    }
}

async fn sctp_echo(conn: AsyncFd<Socket>) {
    let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); 65536];
    loop {
        let Ok(mut guard) = conn.readable().await else {
            return;
        };
        match guard.try_io(|c| c.get_ref().recv(&mut buf)) {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => {
                // SAFETY: recv initialised the first n bytes.
                let data: Vec<u8> = buf[..n]
                    .iter()
                    .map(|b| unsafe { b.assume_init() })
                    .collect();
                if conn.get_ref().send(&data).is_err() {
                    return;
                }
            }
            Err(_would_block) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads() {
        let h = parse_request_head(b"GET /x HTTP/1.1\r\nHost: a\r\nX-Y:  z \r\n\r\n").expect("ok");
        assert_eq!(h.method, "GET");
        assert_eq!(h.target, "/x");
        assert_eq!(
            h.headers,
            vec![("host".into(), "a".into()), ("x-y".into(), "z".into())]
        );
        assert!(parse_request_head(b"GET /x\r\n\r\n").is_err());
        assert!(parse_request_head(b"GET /x HTTP/2\r\n\r\n").is_err());
        assert!(parse_request_head(b"get /x HTTP/1.1\r\n\r\n").is_err());
        assert!(parse_request_head(b"GET /x HTTP/1.1\r\nbad\r\n\r\n").is_err());
        assert!(parse_request_head(b"GET /x HTTP/1.0\n\n").is_ok());
    }

    #[test]
    fn finds_head_end() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
