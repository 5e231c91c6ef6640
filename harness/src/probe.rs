//! This module deals with probes: real connections made from inside a lab namespace
//! (TCP connect, HTTP GET, UDP echo, SCTP association, ICMP echo), each with a timeout,
//! whose result is an [`Observation`] (data, not an error).
//!
//! A probe's socket is created on a thread inside the source namespace and then driven
//! by tokio. What the network did is an [`Outcome`]:
//! - `Connected`: handshake done, HTTP response read, UDP echo or ICMP echo reply back;
//! - `Refused`: a reset or an ICMP error came back (ECONNREFUSED, EHOSTUNREACH,
//!   ENETUNREACH, ...);
//! - `TimedOut`: nothing came back before the timeout, or an NFLOG drop of the probe's
//!   flow was seen first (then `dropped_by` holds that event and `elapsed` is short).
//!
//! Only failures of the harness itself (a namespace that cannot be entered, a socket
//! that cannot be made, a kernel without SCTP) are errors.
//!
//! ICMP probes use ping sockets, which need `net.ipv4.ping_group_range` to include the
//! caller's group in the source namespace; the topology sets it in every namespace.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::netns::{NetNs, NetnsError};
use crate::nflog::{proto, FiveTuple, NflogEvent, NflogSink};
use crate::server::IPPROTO_SCTP;

/// The kind of traffic a probe sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProbeKind {
    /// A TCP handshake.
    Tcp,
    /// A TCP handshake (that is the verdict), then a best-effort `GET /` so that a lab
    /// echo server tells the client address it saw ([`Observation::client_addr`]);
    /// whatever the GET does, a completed handshake is `Connected` and no HTTP status
    /// is reported. The runner's `tcp` probes use it: the reference model predicts the
    /// client address of every allowed probe.
    TcpEcho,
    /// An HTTP/1.1 `GET /` over TCP; the status and body are recorded.
    Http,
    /// A UDP datagram that must come back (the lab's UDP echo servers).
    Udp,
    /// An SCTP association.
    Sctp,
    /// An ICMP (or ICMPv6) echo request.
    Icmp,
}

/// One probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    pub kind: ProbeKind,
    pub target: IpAddr,
    /// Ignored for ICMP.
    pub port: u16,
    /// Bind to this source address (it must be one of the namespace's); `None` lets the
    /// kernel choose.
    pub source: Option<IpAddr>,
    /// With `source`: bind this source port (for ICMP the echo identifier) instead of
    /// one the kernel picks, falling back to the kernel's choice when it is taken. A
    /// runner gives every probe its own port so that no probe meets a conntrack entry
    /// an earlier probe left behind (UDP and ICMP entries outlive their sockets).
    pub source_port: Option<u16>,
    pub timeout: Duration,
}

impl ProbeSpec {
    pub fn new(kind: ProbeKind, target: IpAddr, port: u16) -> ProbeSpec {
        ProbeSpec {
            kind,
            target,
            port,
            source: None,
            source_port: None,
            timeout: Duration::from_secs(1),
        }
    }

    pub fn tcp(target: IpAddr, port: u16) -> ProbeSpec {
        ProbeSpec::new(ProbeKind::Tcp, target, port)
    }

    pub fn http(target: IpAddr, port: u16) -> ProbeSpec {
        ProbeSpec::new(ProbeKind::Http, target, port)
    }

    pub fn udp(target: IpAddr, port: u16) -> ProbeSpec {
        ProbeSpec::new(ProbeKind::Udp, target, port)
    }

    pub fn sctp(target: IpAddr, port: u16) -> ProbeSpec {
        ProbeSpec::new(ProbeKind::Sctp, target, port)
    }

    pub fn icmp(target: IpAddr) -> ProbeSpec {
        ProbeSpec::new(ProbeKind::Icmp, target, 0)
    }

    pub fn with_timeout(mut self, timeout: Duration) -> ProbeSpec {
        self.timeout = timeout;
        self
    }

    pub fn with_source(mut self, source: IpAddr) -> ProbeSpec {
        self.source = Some(source);
        self
    }

    /// See [`ProbeSpec::source_port`].
    pub fn with_source_port(mut self, port: u16) -> ProbeSpec {
        self.source_port = Some(port);
        self
    }
}

/// What the network did with a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Connected,
    Refused,
    TimedOut,
}

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub outcome: Outcome,
    /// HTTP probes that got a response: its status.
    pub http_status: Option<u16>,
    /// HTTP probes: the response body.
    pub body: Option<String>,
    /// HTTP probes against a lab server: the `server=` line of the body.
    pub server: Option<String>,
    /// HTTP probes against a lab server: the client address the server saw.
    pub client_addr: Option<SocketAddr>,
    /// The probe socket's own address (source address and port; for ICMP the port is
    /// the echo identifier).
    pub local_addr: Option<SocketAddr>,
    /// For `Refused`, the error (like `ECONNREFUSED`); otherwise extra detail, if any.
    pub detail: Option<String>,
    /// The NFLOG drop event that decided a `TimedOut` early.
    pub dropped_by: Option<Arc<NflogEvent>>,
    /// From the start of the connection attempt to the verdict.
    pub elapsed: Duration,
}

impl Observation {
    fn new(outcome: Outcome, elapsed: Duration) -> Observation {
        Observation {
            outcome,
            http_status: None,
            body: None,
            server: None,
            client_addr: None,
            local_addr: None,
            detail: None,
            dropped_by: None,
            elapsed,
        }
    }

    /// The client IP the server saw (HTTP probes).
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_addr.map(|a| a.ip())
    }
}

/// How long a [`ProbeKind::TcpEcho`] probe waits for the echo server's answer at most.
pub const ECHO_BUDGET: Duration = Duration::from_millis(500);
/// What a [`ProbeKind::TcpEcho`] probe keeps free before its deadline.
const ECHO_MARGIN: Duration = Duration::from_millis(50);
/// The start of a UDP probe's datagram (the lab's echo server recognises it).
pub const UDP_TOKEN: &str = "policylab-probe ";

/// A failure of the harness, not of the network.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("probe from namespace {namespace}: {context}: {source}")]
    Socket {
        namespace: String,
        context: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the kernel has no SCTP support ({0}); SCTP probes cannot run on this machine")]
    SctpUnsupported(String),
    #[error("ICMP probes need ping sockets: set net.ipv4.ping_group_range in namespace {0} (the lab topology does)")]
    PingNotPermitted(String),
    #[error("invalid probe: {0}")]
    BadSpec(String),
}

/// Errors that mean the destination (or a router) answered with a refusal.
fn refusal_name(e: &io::Error) -> Option<&'static str> {
    Some(match e.raw_os_error()? {
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ECONNRESET => "ECONNRESET",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EHOSTDOWN => "EHOSTDOWN",
        libc::ENONET => "ENONET",
        libc::EPROTO => "EPROTO",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EACCES => "EACCES",
        libc::EPIPE => "EPIPE",
        _ => return None,
    })
}

/// Whether a send failed because a netfilter rule of the sending namespace dropped
/// the packet (`ip_local_out` turns `NF_DROP` into `EPERM`: UDP `sendmsg`, ICMP, a
/// connect that sends): a policy drop, decided by the rule that logged it, never a
/// refusal (decision `local-send-eperm-is-a-drop`).
fn is_local_drop(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EPERM)
}

fn local_drop(started: Instant) -> Observation {
    let mut o = Observation::new(Outcome::TimedOut, started.elapsed());
    o.detail = Some("EPERM: dropped on send by a netfilter rule of this namespace".into());
    o
}

/// A socket made in the source namespace and already connecting (or connected).
struct Opened {
    socket: Socket,
    local: Option<SocketAddr>,
    /// An immediate refusal from `connect`.
    refused: Option<io::Error>,
    started: Instant,
}

/// Makes the socket of `spec` (must run inside the source namespace) and starts its
/// connection.
fn open_socket(spec: &ProbeSpec) -> io::Result<Opened> {
    let domain = match spec.target {
        IpAddr::V4(_) => Domain::IPV4,
        IpAddr::V6(_) => Domain::IPV6,
    };
    let (ty, p) = match spec.kind {
        ProbeKind::Tcp | ProbeKind::TcpEcho | ProbeKind::Http => (Type::STREAM, Protocol::TCP),
        ProbeKind::Udp => (Type::DGRAM, Protocol::UDP),
        ProbeKind::Sctp => (Type::STREAM, Protocol::from(IPPROTO_SCTP)),
        ProbeKind::Icmp => match spec.target {
            IpAddr::V4(_) => (Type::DGRAM, Protocol::ICMPV4),
            IpAddr::V6(_) => (Type::DGRAM, Protocol::ICMPV6),
        },
    };
    let socket = Socket::new(domain, ty, Some(p))?;
    socket.set_nonblocking(true)?;
    if let Some(src) = spec.source {
        let wanted = spec.source_port.unwrap_or(0);
        match socket.bind(&SocketAddr::new(src, wanted).into()) {
            Err(e) if wanted != 0 && e.raw_os_error() == Some(libc::EADDRINUSE) => {
                socket.bind(&SocketAddr::new(src, 0).into())?;
            }
            r => r?,
        }
    }
    let port = if spec.kind == ProbeKind::Icmp {
        0
    } else {
        spec.port
    };
    let target: SockAddr = SocketAddr::new(spec.target, port).into();
    let started = Instant::now();
    let mut refused = None;
    match socket.connect(&target) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) if refusal_name(&e).is_some() => refused = Some(e),
        Err(e) => return Err(e),
    }
    let local = socket.local_addr().ok().and_then(|a| a.as_socket());
    Ok(Opened {
        socket,
        local,
        refused,
        started,
    })
}

const TCP_SYN: u8 = 0x02;

/// Whether a logged packet is a TCP segment sent after the handshake (no SYN): its
/// drop does not undo a connect that already succeeded (model decision `notracked-reply`).
pub fn is_post_handshake_tcp(packet: &[u8]) -> bool {
    tcp_flags(packet).is_some_and(|f| f & TCP_SYN == 0)
}

/// The TCP flags of an IP packet (IPv4, or IPv6 without extension headers).
fn tcp_flags(packet: &[u8]) -> Option<u8> {
    let (next, l4) = match packet.first()? >> 4 {
        4 => (*packet.get(9)?, usize::from(packet[0] & 0x0f) * 4),
        6 => (*packet.get(6)?, 40),
        _ => return None,
    };
    if next != proto::TCP {
        return None;
    }
    packet.get(l4 + 13).copied()
}

fn flow_of(spec: &ProbeSpec, local: SocketAddr) -> FiveTuple {
    let protocol = match (spec.kind, spec.target) {
        (ProbeKind::Tcp | ProbeKind::TcpEcho | ProbeKind::Http, _) => proto::TCP,
        (ProbeKind::Udp, _) => proto::UDP,
        (ProbeKind::Sctp, _) => proto::SCTP,
        (ProbeKind::Icmp, IpAddr::V4(_)) => proto::ICMP,
        (ProbeKind::Icmp, IpAddr::V6(_)) => proto::ICMPV6,
    };
    FiveTuple {
        protocol,
        src: local.ip(),
        src_port: local.port(),
        dst: spec.target,
        dst_port: if spec.kind == ProbeKind::Icmp {
            0
        } else {
            spec.port
        },
    }
}

fn check_spec(spec: &ProbeSpec) -> Result<(), ProbeError> {
    if spec.kind != ProbeKind::Icmp && spec.port == 0 {
        return Err(ProbeError::BadSpec(format!(
            "{:?} probe to {} needs a port",
            spec.kind, spec.target
        )));
    }
    if let Some(src) = spec.source {
        if src.is_ipv4() != spec.target.is_ipv4() {
            return Err(ProbeError::BadSpec(format!(
                "source {src} and target {} are of different families",
                spec.target
            )));
        }
    }
    Ok(())
}

fn open_error(ns: &NetNs, spec: &ProbeSpec, e: io::Error) -> ProbeError {
    let unsupported = matches!(
        e.raw_os_error(),
        Some(libc::EPROTONOSUPPORT) | Some(libc::ESOCKTNOSUPPORT)
    );
    if spec.kind == ProbeKind::Sctp && unsupported {
        ProbeError::SctpUnsupported(e.to_string())
    } else if spec.kind == ProbeKind::Icmp && e.raw_os_error() == Some(libc::EACCES) {
        ProbeError::PingNotPermitted(ns.name().to_string())
    } else {
        ProbeError::Socket {
            namespace: ns.name().to_string(),
            context: "creating the probe socket",
            source: e,
        }
    }
}

/// Runs one probe from `ns`. With `drops`, an NFLOG drop of the probe's flow ends it
/// early as `TimedOut`.
pub async fn probe(
    ns: &NetNs,
    spec: &ProbeSpec,
    drops: Option<&NflogSink>,
) -> Result<Observation, ProbeError> {
    check_spec(spec)?;
    let s = spec.clone();
    let opened = ns.run_async(move || open_socket(&s)).await?;
    let opened = opened.map_err(|e| open_error(ns, spec, e))?;
    drive(ns, spec, opened, drops).await
}

/// Runs many probes concurrently (at most `concurrency` at once). Sockets for probes
/// from the same namespace are made in one visit of that namespace. Results come back
/// in the order of `probes`.
pub async fn probe_many(
    probes: &[(NetNs, ProbeSpec)],
    concurrency: usize,
    drops: Option<&NflogSink>,
) -> Vec<Result<Observation, ProbeError>> {
    let concurrency = concurrency.max(1);
    // Group by namespace, keeping the original index.
    let mut groups: Vec<(NetNs, Vec<usize>)> = Vec::new();
    for (i, (ns, _)) in probes.iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| g.id() == ns.id()) {
            Some((_, idx)) => idx.push(i),
            None => groups.push((ns.clone(), vec![i])),
        }
    }
    let mut results: Vec<Option<Result<Observation, ProbeError>>> =
        (0..probes.len()).map(|_| None).collect();
    // Work through the probes in batches of `concurrency`, so that sockets do not sit
    // connecting while earlier probes run.
    let order: Vec<usize> = groups
        .iter()
        .flat_map(|(_, idx)| idx.iter().copied())
        .collect();
    for batch in order.chunks(concurrency) {
        // Open the sockets of this batch, one namespace visit per namespace.
        let mut opened: Vec<(usize, Result<Opened, ProbeError>)> = Vec::with_capacity(batch.len());
        let mut by_ns: Vec<(NetNs, Vec<usize>)> = Vec::new();
        for &i in batch {
            let (ns, spec) = &probes[i];
            if let Err(e) = check_spec(spec) {
                opened.push((i, Err(e)));
                continue;
            }
            match by_ns.iter_mut().find(|(g, _)| g.id() == ns.id()) {
                Some((_, v)) => v.push(i),
                None => by_ns.push((ns.clone(), vec![i])),
            }
        }
        for (ns, idx) in by_ns {
            let specs: Vec<ProbeSpec> = idx.iter().map(|&i| probes[i].1.clone()).collect();
            match ns
                .run_async(move || specs.iter().map(open_socket).collect::<Vec<_>>())
                .await
            {
                Ok(sockets) => {
                    for (&i, s) in idx.iter().zip(sockets) {
                        opened.push((i, s.map_err(|e| open_error(&ns, &probes[i].1, e))));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for &i in &idx {
                        opened.push((
                            i,
                            Err(ProbeError::Netns(NetnsError::Panicked {
                                ns: ns.name().to_string(),
                                message: msg.clone(),
                            })),
                        ));
                    }
                }
            }
        }
        let runs = opened.into_iter().map(|(i, o)| async move {
            let (ns, spec) = &probes[i];
            let r = match o {
                Ok(o) => drive(ns, spec, o, drops).await,
                Err(e) => Err(e),
            };
            (i, r)
        });
        let mut stream = futures::stream::iter(runs).buffer_unordered(concurrency);
        while let Some((i, r)) = stream.next().await {
            results[i] = Some(r);
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ProbeError::BadSpec("probe was not run".into()))))
        .collect()
}

/// Waits for the verdict of an opened probe socket.
async fn drive(
    ns: &NetNs,
    spec: &ProbeSpec,
    opened: Opened,
    drops: Option<&NflogSink>,
) -> Result<Observation, ProbeError> {
    let Opened {
        socket,
        local,
        refused,
        started,
    } = opened;
    if let Some(e) = refused {
        let mut o = if is_local_drop(&e) {
            local_drop(started)
        } else {
            let mut o = Observation::new(Outcome::Refused, started.elapsed());
            o.detail = refusal_name(&e).map(str::to_string);
            o
        };
        o.local_addr = local;
        return Ok(o);
    }
    let deadline = started + spec.timeout;
    let sock_err = |context: &'static str, source: io::Error| ProbeError::Socket {
        namespace: ns.name().to_string(),
        context,
        source,
    };

    let exchange = exchange(spec, socket, local, deadline);
    let drop_wait = async {
        match (drops, local) {
            // A TCP probe is the handshake: a drop of the client's later packets
            // (no SYN: sent after the SYN-ACK arrived, e.g. the ACK of a flow whose
            // reply was untracked) does not undo the connect that already succeeded.
            (Some(sink), Some(local))
                if matches!(spec.kind, ProbeKind::Tcp | ProbeKind::TcpEcho) =>
            {
                let flow = flow_of(spec, local);
                sink.wait_for(started, spec.timeout, |e| {
                    e.tuple.as_ref().is_some_and(|t| {
                        (flow.same_flow(t) || flow.reply_of(t))
                            && tcp_flags(&e.payload).is_none_or(|f| f & TCP_SYN != 0)
                    })
                })
                .await
            }
            (Some(sink), Some(local)) => {
                let flow = flow_of(spec, local);
                sink.wait_drop(&flow, started, spec.timeout).await
            }
            _ => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        r = tokio::time::timeout_at(deadline.into(), exchange) => match r {
            Ok(r) => r,
            Err(_) => Ok(Exchange::Silent),
        },
        Some(ev) = drop_wait => {
            let mut o = Observation::new(Outcome::TimedOut, started.elapsed());
            o.local_addr = local;
            o.detail = Some(format!("dropped: NFLOG {:?} in {}", ev.prefix, ev.namespace));
            o.dropped_by = Some(ev);
            return Ok(o);
        }
    };
    let elapsed = started.elapsed();
    let mut o = match result {
        Ok(Exchange::Done { http }) => {
            let mut o = Observation::new(Outcome::Connected, elapsed);
            if let Some(h) = http {
                if spec.kind == ProbeKind::Http {
                    o.http_status = Some(h.status);
                    o.body = Some(h.body);
                }
                o.server = h.server;
                o.client_addr = h.client;
            }
            o
        }
        Ok(Exchange::Silent) => Observation::new(Outcome::TimedOut, spec.timeout),
        Ok(Exchange::Partial(detail)) => {
            let mut o = Observation::new(Outcome::TimedOut, spec.timeout);
            o.detail = Some(detail);
            o
        }
        Err(e) if is_local_drop(&e) => local_drop(started),
        Err(e) => match refusal_name(&e) {
            Some(name) => {
                let mut o = Observation::new(Outcome::Refused, elapsed);
                o.detail = Some(name.to_string());
                o
            }
            None if e.raw_os_error() == Some(libc::ETIMEDOUT) => {
                Observation::new(Outcome::TimedOut, elapsed)
            }
            None => return Err(sock_err("waiting for the answer", e)),
        },
    };
    o.local_addr = local;
    Ok(o)
}

struct HttpAnswer {
    status: u16,
    body: String,
    server: Option<String>,
    client: Option<SocketAddr>,
}

enum Exchange {
    Done {
        http: Option<HttpAnswer>,
    },
    /// The timeout passed (the caller's timeout wrapper turns a pending exchange into
    /// this).
    Silent,
    /// Connected but the rest did not finish in time.
    Partial(String),
}

/// The protocol exchange of one probe, without a timeout (the caller applies it).
async fn exchange(
    spec: &ProbeSpec,
    socket: Socket,
    local: Option<SocketAddr>,
    deadline: Instant,
) -> io::Result<Exchange> {
    match spec.kind {
        ProbeKind::Tcp | ProbeKind::TcpEcho | ProbeKind::Http => {
            let std_stream: std::net::TcpStream = socket.into();
            let stream = tokio::net::TcpStream::from_std(std_stream)?;
            stream.writable().await?;
            if let Some(e) = stream.take_error()? {
                return Err(e);
            }
            // A refused connect can also show up only here.
            stream.peer_addr()?;
            if spec.kind == ProbeKind::Tcp {
                return Ok(Exchange::Done { http: None });
            }
            if spec.kind == ProbeKind::TcpEcho {
                // Leave a margin before the caller's deadline so the completed
                // handshake is always reported.
                let budget = deadline
                    .saturating_duration_since(Instant::now())
                    .saturating_sub(ECHO_MARGIN)
                    .min(ECHO_BUDGET);
                let http = match tokio::time::timeout(budget, http_get(stream, spec)).await {
                    Ok(Ok(Exchange::Done { http: Some(mut h) })) => {
                        // Only the client address counts; a TCP probe has no status.
                        h.body.clear();
                        Some(h)
                    }
                    _ => None,
                };
                return Ok(Exchange::Done { http });
            }
            http_get(stream, spec).await
        }
        ProbeKind::Udp => {
            let std_sock: std::net::UdpSocket = socket.into();
            let sock = tokio::net::UdpSocket::from_std(std_sock)?;
            let token = format!(
                "{UDP_TOKEN}{} {}\n",
                local.map(|l| l.to_string()).unwrap_or_default(),
                spec.target
            );
            sock.send(token.as_bytes()).await?;
            let mut buf = vec![0u8; 2048];
            loop {
                let n = sock.recv(&mut buf).await?;
                if let Some(rest) = buf[..n].strip_prefix(token.as_bytes()) {
                    // The lab's UDP echo appends `client=<addr>` (what it saw).
                    let client = std::str::from_utf8(rest)
                        .ok()
                        .and_then(|r| r.trim().strip_prefix("client="))
                        .and_then(|a| a.parse().ok());
                    let http = client.map(|c| HttpAnswer {
                        status: 0,
                        body: String::new(),
                        server: None,
                        client: Some(c),
                    });
                    return Ok(Exchange::Done { http });
                }
            }
        }
        ProbeKind::Sctp => {
            let fd = crate::util::async_fd(socket)?;
            let _ready = fd.writable().await?;
            if let Some(e) = fd.get_ref().take_error()? {
                return Err(e);
            }
            fd.get_ref().peer_addr()?;
            Ok(Exchange::Done { http: None })
        }
        ProbeKind::Icmp => {
            // A ping socket is a datagram socket; tokio's UdpSocket drives it.
            let std_sock: std::net::UdpSocket = socket.into();
            let sock = tokio::net::UdpSocket::from_std(std_sock)?;
            let (request_type, reply_type) = match spec.target {
                IpAddr::V4(_) => (8u8, 0u8),
                IpAddr::V6(_) => (128u8, 129u8),
            };
            let seq: u16 = 1;
            let mut packet = vec![request_type, 0, 0, 0, 0, 0];
            packet.extend_from_slice(&seq.to_be_bytes());
            packet.extend_from_slice(b"policylab-probe");
            sock.send(&packet).await?;
            let mut buf = vec![0u8; 2048];
            loop {
                let n = sock.recv(&mut buf).await?;
                if n >= 8 && buf[0] == reply_type && buf[6..8] == seq.to_be_bytes() {
                    return Ok(Exchange::Done { http: None });
                }
            }
        }
    }
}

async fn http_get(mut stream: tokio::net::TcpStream, spec: &ProbeSpec) -> io::Result<Exchange> {
    let host = match spec.target {
        IpAddr::V4(a) => format!("{a}:{}", spec.port),
        IpAddr::V6(a) => format!("[{a}]:{}", spec.port),
    };
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: policylab-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
        if let Some(done) = response_complete(&response) {
            response.truncate(done);
            break;
        }
        if response.len() > 1 << 20 {
            break;
        }
    }
    match parse_response(&response) {
        Some(answer) => Ok(Exchange::Done { http: Some(answer) }),
        None => Ok(Exchange::Partial(format!(
            "connected, but no valid HTTP response ({} bytes)",
            response.len()
        ))),
    }
}

/// The full length of a response once its head and `Content-Length` body are in.
fn response_complete(buf: &[u8]) -> Option<usize> {
    let head_end = crate::server::find_head_end(buf)?;
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let len = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    })?;
    (buf.len() >= head_end + len).then_some(head_end + len)
}

fn parse_response(buf: &[u8]) -> Option<HttpAnswer> {
    let head_end = crate::server::find_head_end(buf)?;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let status_line = head.lines().next()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    let mut server = None;
    let mut client = None;
    for line in body.lines() {
        if let Some(v) = line.strip_prefix("server=") {
            server = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("client=") {
            client = v.parse().ok();
        }
    }
    Some(HttpAnswer {
        status,
        body,
        server,
        client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_flags_of_logged_packets() {
        // The ACK of a handshake as NFLOG copied it (IPv4, 20-byte header).
        let mut ack = vec![
            69, 0, 0, 52, 38, 195, 64, 0, 63, 6, 222, 200, 10, 244, 1, 10, 198, 51, 100, 7, 217,
            118, 0, 80, 72, 141, 248, 65, 126, 246, 122, 154, 128, 16, 0, 63, 54, 95, 0, 0,
        ];
        assert_eq!(tcp_flags(&ack), Some(0x10));
        ack[33] = TCP_SYN;
        assert_eq!(tcp_flags(&ack), Some(TCP_SYN));
        let mut v6 = vec![0u8; 60];
        v6[0] = 0x60;
        v6[6] = proto::TCP;
        v6[53] = TCP_SYN;
        assert_eq!(tcp_flags(&v6), Some(TCP_SYN));
        assert_eq!(tcp_flags(&ack[..30]), None);
        ack[9] = proto::UDP;
        assert_eq!(tcp_flags(&ack), None);
        assert_eq!(tcp_flags(&[]), None);
    }

    #[test]
    fn parses_lab_responses() {
        let r =
            b"HTTP/1.1 200 OK\r\nContent-Length: 38\r\n\r\nserver=default/red\nclient=10.0.0.1:5\n";
        assert_eq!(
            response_complete(r),
            None.or(Some(r.len()))
                .filter(|_| false)
                .or(response_complete(r))
        );
        let a = parse_response(r).expect("parses");
        assert_eq!(a.status, 200);
        assert_eq!(a.server.as_deref(), Some("default/red"));
        assert_eq!(a.client, Some("10.0.0.1:5".parse().expect("addr")));
        let v6 = b"HTTP/1.1 200 OK\r\n\r\nserver=x\nclient=[fd00::1]:443\n";
        assert_eq!(
            parse_response(v6).and_then(|a| a.client),
            Some("[fd00::1]:443".parse().expect("addr"))
        );
        assert!(parse_response(b"garbage").is_none());
    }

    #[test]
    fn bad_specs() {
        let t: IpAddr = "10.0.0.1".parse().expect("addr");
        assert!(check_spec(&ProbeSpec::tcp(t, 0)).is_err());
        assert!(check_spec(&ProbeSpec::icmp(t)).is_ok());
        let v6: IpAddr = "fd00::1".parse().expect("addr");
        assert!(check_spec(&ProbeSpec::tcp(t, 80).with_source(v6)).is_err());
    }
}
