//! This module deals with the file server an outside host runs for threat feeds: files
//! (URL path -> contents) served over HTTP on port 80 and, when asked, over HTTPS on
//! port 443 with a certificate for the host's `hostnames` signed by a [`ScenarioCa`]
//! made at run time.
//!
//! Listening sockets are created on a thread inside the host's namespace (as in
//! [`crate::server`]) and then driven by tokio; connections are served by hyper
//! (HTTP/1.1) and, for HTTPS, tokio-rustls with the ring provider.
//!
//! What it answers:
//! - `GET`/`HEAD` of a served path (the URL path, the query ignored): `200` with the
//!   file's current contents, `Content-Type: text/plain`;
//! - an unknown path: `404` with the body `not found\n`;
//! - any other method: `405`.
//!
//! Run-time changes (the scenario's `serve:`, `fail:` and `recover:` steps):
//! - [`FeedServer::serve`] replaces (or adds) one file; the next request sees it.
//! - [`FeedServer::fail`] makes the whole host silent: it loads an nft table
//!   ([`FAULT_TABLE`]) into the host's own namespace that drops every packet in and out
//!   except on `lo`. Connections then time out (no SYN-ACK, no reset, no ICMP), as for
//!   a host that is down, instead of being refused. Chosen over "stop accepting"
//!   because a listening socket that does not accept still completes handshakes (the
//!   kernel's backlog), and a closed one answers with resets. [`FeedServer::recover`]
//!   deletes the table. [`fail_host`] / [`recover_host`] do the same for any outside
//!   host, server or not.
//! - [`FeedServer::set_delay`] holds every response back for a while (a slow server).
//!
//! Each request is recorded ([`FeedServer::requests`]) with its path, status and
//! headers, so tests and reports can check what a puller sent.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::task::JoinHandle;

use crate::netns::{NetNs, NetnsError};
use crate::nft::{self, NftError};

/// The HTTP port.
pub const HTTP_PORT: u16 = 80;
/// The HTTPS port.
pub const HTTPS_PORT: u16 = 443;
/// The nft table [`fail_host`] loads into an outside host's namespace.
pub const FAULT_TABLE: &str = "plab_fault";
/// How many requests a server remembers (the oldest are forgotten first).
pub const REQUEST_HISTORY: usize = 1024;

/// What went wrong with a feed server or the scenario CA.
#[derive(Debug, thiserror::Error)]
pub enum FeedServerError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("binding the feed server on {addr} in namespace {namespace}: {source}")]
    Bind {
        namespace: String,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("making the scenario certificates: {0}")]
    Certificate(String),
    #[error("configuring TLS for the feed server: {0}")]
    Tls(String),
    #[error("{action} host {namespace}: {source}")]
    Fault {
        action: &'static str,
        namespace: String,
        #[source]
        source: NftError,
    },
}

/// A certificate authority made for one scenario run. Its certificate is the only one a
/// [`crate::puller::Puller`] trusts; it signs the certificates of the feed servers.
pub struct ScenarioCa {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

impl std::fmt::Debug for ScenarioCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScenarioCa").finish_non_exhaustive()
    }
}

impl ScenarioCa {
    /// Makes a fresh CA (ECDSA P-256) whose subject is `policylab scenario CA <name>`.
    pub fn generate(name: &str) -> Result<ScenarioCa, FeedServerError> {
        let cert_err = |e: rcgen::Error| FeedServerError::Certificate(e.to_string());
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("policylab scenario CA {name}"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(cert_err)?;
        let cert = params.self_signed(&key).map_err(cert_err)?;
        Ok(ScenarioCa {
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a server certificate valid for `hostnames` (DNS names) and `addresses`.
    pub fn issue(
        &self,
        hostnames: &[String],
        addresses: &[IpAddr],
    ) -> Result<ServerIdentity, FeedServerError> {
        let cert_err = |e: rcgen::Error| FeedServerError::Certificate(e.to_string());
        let mut sans: Vec<String> = hostnames.to_vec();
        sans.extend(addresses.iter().map(IpAddr::to_string));
        let mut params = CertificateParams::new(sans).map_err(cert_err)?;
        let mut dn = DistinguishedName::new();
        let cn = hostnames
            .first()
            .cloned()
            .or_else(|| addresses.first().map(IpAddr::to_string))
            .unwrap_or_else(|| "policylab feed server".into());
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.is_ca = IsCa::NoCa;
        let key = KeyPair::generate().map_err(cert_err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(cert_err)?;
        Ok(ServerIdentity {
            chain: vec![cert.der().clone(), self.cert_der.clone()],
            key_der: key.serialize_der(),
        })
    }
}

/// A server's certificate chain (leaf first) and private key (PKCS#8 DER).
#[derive(Clone)]
pub struct ServerIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl ServerIdentity {
    fn tls_config(&self) -> Result<rustls::ServerConfig, FeedServerError> {
        let tls_err = |e: rustls::Error| FeedServerError::Tls(e.to_string());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .map_err(tls_err)
    }
}

/// How a [`FeedServer`] listens.
#[derive(Debug, Clone)]
pub struct FeedServerOptions {
    /// Listen on `0.0.0.0` (IPv4) and/or `[::]` (IPv6).
    pub families: crate::server::Families,
    /// The HTTP port (default [`HTTP_PORT`]).
    pub http_port: u16,
    /// Also serve HTTPS on `https_port` with this identity.
    pub https: Option<ServerIdentity>,
    /// The HTTPS port (default [`HTTPS_PORT`]).
    pub https_port: u16,
}

impl FeedServerOptions {
    /// HTTP on port 80 for the families of `addresses`.
    pub fn http(addresses: &[IpAddr]) -> FeedServerOptions {
        FeedServerOptions {
            families: crate::server::Families::of(addresses),
            http_port: HTTP_PORT,
            https: None,
            https_port: HTTPS_PORT,
        }
    }

    /// Adds HTTPS on port 443.
    pub fn with_https(mut self, identity: ServerIdentity) -> FeedServerOptions {
        self.https = Some(identity);
        self
    }
}

/// One request a feed server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedRequest {
    pub method: String,
    /// The URL path (no query).
    pub path: String,
    pub status: u16,
    pub https: bool,
    /// The client's address as the server saw it.
    pub client: IpAddr,
    /// Header names lower-cased, sorted by name (values of repeated headers joined by
    /// `, `).
    pub headers: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    files: Mutex<BTreeMap<String, Bytes>>,
    delay: Mutex<Duration>,
    requests: Mutex<std::collections::VecDeque<ServedRequest>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are replaced whole; a panic cannot leave them half-written.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A feed file server in one outside host's namespace. Dropping it stops serving (the
/// fault table, if loaded, stays until [`FeedServer::recover`] or the namespace goes).
pub struct FeedServer {
    ns: NetNs,
    state: Arc<State>,
    tasks: Vec<JoinHandle<()>>,
    listening: Vec<SocketAddr>,
}

impl std::fmt::Debug for FeedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedServer")
            .field("namespace", &self.ns.name())
            .field("listening", &self.listening)
            .finish_non_exhaustive()
    }
}

impl FeedServer {
    /// Starts serving `files` (URL path -> contents) in `ns`.
    pub async fn start(
        ns: &NetNs,
        files: BTreeMap<String, Vec<u8>>,
        opts: FeedServerOptions,
    ) -> Result<FeedServer, FeedServerError> {
        let state = Arc::new(State::default());
        *lock(&state.files) = files
            .into_iter()
            .map(|(k, v)| (k, Bytes::from(v)))
            .collect();
        let tls = match &opts.https {
            Some(id) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(id.tls_config()?))),
            None => None,
        };
        let mut wanted: Vec<(SocketAddr, bool)> = Vec::new();
        let mut unspecified = Vec::new();
        if opts.families.v4 {
            unspecified.push(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        }
        if opts.families.v6 {
            unspecified.push(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        }
        for ip in &unspecified {
            wanted.push((SocketAddr::new(*ip, opts.http_port), false));
            if tls.is_some() {
                wanted.push((SocketAddr::new(*ip, opts.https_port), true));
            }
        }
        let addrs: Vec<SocketAddr> = wanted.iter().map(|(a, _)| *a).collect();
        let sockets = ns
            .run_async(move || -> Vec<io::Result<Socket>> {
                addrs.iter().map(|a| bind_tcp(*a)).collect()
            })
            .await?;
        let mut server = FeedServer {
            ns: ns.clone(),
            state,
            tasks: Vec::new(),
            listening: Vec::new(),
        };
        for ((addr, https), sock) in wanted.into_iter().zip(sockets) {
            let bind_err = |source| FeedServerError::Bind {
                namespace: ns.name().to_string(),
                addr,
                source,
            };
            let sock = sock.map_err(bind_err)?;
            let listener = tokio::net::TcpListener::from_std(sock.into()).map_err(bind_err)?;
            let acceptor = if https { tls.clone() } else { None };
            server.tasks.push(tokio::spawn(accept_loop(
                listener,
                server.state.clone(),
                acceptor,
            )));
            server.listening.push(addr);
        }
        Ok(server)
    }

    /// The namespace it serves in.
    pub fn namespace(&self) -> &NetNs {
        &self.ns
    }

    /// The wildcard addresses it listens on.
    pub fn listening(&self) -> &[SocketAddr] {
        &self.listening
    }

    /// Replaces (or adds) the file at `path` (the scenario's `serve:` step).
    pub fn serve(&self, path: &str, contents: impl Into<Vec<u8>>) {
        lock(&self.state.files).insert(path.to_string(), Bytes::from(contents.into()));
    }

    /// Stops serving `path` (later requests get 404). Returns whether it was served.
    pub fn remove(&self, path: &str) -> bool {
        lock(&self.state.files).remove(path).is_some()
    }

    /// The served paths, sorted.
    pub fn paths(&self) -> Vec<String> {
        lock(&self.state.files).keys().cloned().collect()
    }

    /// Holds every later response back by `delay` before its head is sent.
    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.state.delay) = delay;
    }

    /// The requests answered so far (the last [`REQUEST_HISTORY`]), oldest first.
    pub fn requests(&self) -> Vec<ServedRequest> {
        lock(&self.state.requests).iter().cloned().collect()
    }

    /// Makes the host silent (see the module docs); `fail:`.
    pub async fn fail(&self) -> Result<(), FeedServerError> {
        fail_host(&self.ns).await
    }

    /// Undoes [`FeedServer::fail`]; `recover:`.
    pub async fn recover(&self) -> Result<(), FeedServerError> {
        recover_host(&self.ns).await
    }

    /// Stops serving (the listening sockets close).
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.listening.clear();
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The nft script [`fail_host`] loads: drop everything in and out except on `lo`, before
/// conntrack sees it.
pub fn fault_script() -> String {
    format!(
        "table inet {FAULT_TABLE} {{\n  chain fault_in {{\n    type filter hook prerouting priority -400; policy accept;\n    iifname != \"lo\" drop\n  }}\n  chain fault_out {{\n    type filter hook output priority -400; policy accept;\n    oifname != \"lo\" drop\n  }}\n}}\n"
    )
}

/// Makes an outside host silent: every packet to or from it (except on `lo`) is dropped
/// inside its own namespace, so connections to it time out. Idempotent.
pub async fn fail_host(ns: &NetNs) -> Result<(), FeedServerError> {
    let script = format!(
        "{}delete table inet {FAULT_TABLE}\n{}",
        fault_script_add(),
        fault_script()
    );
    nft::apply_async(ns, &script)
        .await
        .map_err(|source| FeedServerError::Fault {
            action: "failing",
            namespace: ns.name().to_string(),
            source,
        })
}

/// `add table` first so that the `delete` in the same batch always has a table to
/// delete (makes [`fail_host`] idempotent).
fn fault_script_add() -> String {
    format!("add table inet {FAULT_TABLE}\n")
}

/// Makes a failed outside host answer again. Idempotent.
pub async fn recover_host(ns: &NetNs) -> Result<(), FeedServerError> {
    let script = format!("{}delete table inet {FAULT_TABLE}\n", fault_script_add());
    nft::apply_async(ns, &script)
        .await
        .map_err(|source| FeedServerError::Fault {
            action: "recovering",
            namespace: ns.name().to_string(),
            source,
        })
}

/// Makes, binds and listens on a non-blocking TCP socket. Runs inside the namespace.
fn bind_tcp(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// How long one connection may take in all (a stuck client does not hold a task).
const CONNECTION_LIMIT: Duration = Duration::from_secs(120);

async fn accept_loop(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let (stream, client) = match listener.accept().await {
            Ok((stream, peer)) => (stream, peer.ip()),
            // Out of fds or similar: back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let work = async {
                match tls {
                    Some(acceptor) => {
                        // A failed handshake (a client that does not trust us) just
                        // ends the connection; the client reports it.
                        if let Ok(s) = acceptor.accept(stream).await {
                            serve_connection(TokioIo::new(s), state, true, client).await;
                        }
                    }
                    None => serve_connection(TokioIo::new(stream), state, false, client).await,
                }
            };
            let _ = tokio::time::timeout(CONNECTION_LIMIT, work).await;
        });
    }
}

async fn serve_connection<I>(io: I, state: Arc<State>, https: bool, client: IpAddr)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(answer(&state, req, https, client).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

async fn answer(
    state: &State,
    req: Request<Incoming>,
    https: bool,
    client: IpAddr,
) -> Response<Full<Bytes>> {
    let delay = *lock(&state.delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let path = req.uri().path().to_string();
    let file = lock(&state.files).get(&path).cloned();
    let (status, body) = match (req.method(), file) {
        (&Method::GET, Some(b)) => (StatusCode::OK, b),
        (&Method::HEAD, Some(_)) => (StatusCode::OK, Bytes::new()),
        (&Method::GET | &Method::HEAD, None) => {
            (StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n"))
        }
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            Bytes::from_static(b"method not allowed\n"),
        ),
    };
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    {
        let mut log = lock(&state.requests);
        if log.len() == REQUEST_HISTORY {
            log.pop_front();
        }
        log.push_back(ServedRequest {
            method: req.method().to_string(),
            path,
            status: status.as_u16(),
            https,
            client,
            headers,
        });
    }
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_script_drops_everything_but_loopback() {
        let s = fault_script();
        assert!(s.contains("iifname != \"lo\" drop"), "{s}");
        assert!(s.contains("oifname != \"lo\" drop"), "{s}");
        assert!(s.contains("hook prerouting priority -400"), "{s}");
    }

    #[test]
    fn ca_issues_certificates_for_names_and_addresses() {
        let ca = ScenarioCa::generate("unit").expect("ca");
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let id = ca
            .issue(
                &["feeds.example.test".to_string()],
                &["203.0.113.200".parse().expect("ip")],
            )
            .expect("leaf");
        assert_eq!(id.chain.len(), 2);
        assert_eq!(&id.chain[1], ca.cert_der());
        id.tls_config().expect("rustls accepts the chain and key");
    }
}
