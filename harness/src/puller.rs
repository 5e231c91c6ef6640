//! This module deals with pulling a GlobalThreatFeed's URL (`spec.pull.http.url`) over
//! real HTTP(S) from inside a lab namespace, as the intrusion-detection controller
//! would, and returning the raw body for the core's feed parser (`policylab::feed`).
//!
//! Decisions:
//! - **Where it runs.** A pull runs in the namespace the caller names, never in the
//!   machine's. The runner uses the fabric namespace: the controller's traffic is
//!   control-plane traffic, not scenario traffic, so no scenario policy applies to it,
//!   and the fabric routes to every outside host. The fabric's source address is its
//!   gateway address (`169.254.1.1`).
//! - **How.** reqwest (hyper + rustls, ring provider) on a current-thread tokio runtime
//!   on a fresh thread that has entered the namespace ([`NetNs::run_async`]): reqwest
//!   makes its sockets internally, and they are made in the thread's namespace.
//!   No proxy is ever used (environment proxies are ignored).
//! - **Names.** A URL's hostname is resolved only through the scenario's `hostnames`
//!   ([`Puller::resolve`]); any other name fails with [`PullError::UnknownHost`], and
//!   the machine's DNS is never asked. IP literals need no resolution.
//! - **Trust.** Exactly the certificates given to [`Puller::trust`] (the scenario CA)
//!   are trusted; no system roots. An untrusted certificate fails with
//!   [`PullError::Tls`].
//! - **Headers.** Only literal values: a `valueFrom` (configMap/secret reference) cannot
//!   exist in a scenario and fails with [`PullError::HeaderReference`] before any
//!   connection.
//! - **Errors.** Every failure is a distinct [`PullError`] whose `Display` is a
//!   deterministic message (no ports, no timings other than the configured timeout)
//!   fit for a feed's `status.errorConditions[].message`.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::CertificateDer;

use crate::netns::{NetNs, NetnsError};

/// The default timeout of one pull.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest body a pull accepts.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// `status.errorConditions[].type` for a failed pull.
pub const PULL_FAILED: &str = "PullFailed";

/// One header of `spec.pull.http.headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullHeader {
    pub name: String,
    pub value: HeaderValue,
}

/// Where a header's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// `value: ...`.
    Literal(String),
    /// `valueFrom: {configMapKeyRef | secretKeyRef}`, described (e.g.
    /// `secretKeyRef globalthreatfeed-x/token`): cannot be resolved in a scenario.
    Reference(String),
}

impl PullHeader {
    pub fn literal(name: impl Into<String>, value: impl Into<String>) -> PullHeader {
        PullHeader {
            name: name.into(),
            value: HeaderValue::Literal(value.into()),
        }
    }

    /// The header as a manifest gives it (`value` wins over `valueFrom`, as a missing
    /// value with a reference is the only way a reference is used).
    pub fn from_manifest(h: &policylab::manifest::types::FeedHeader) -> PullHeader {
        let value = match (&h.value, &h.value_from) {
            (Some(v), _) => HeaderValue::Literal(v.clone()),
            (None, Some(from)) => HeaderValue::Reference(describe_reference(from)),
            (None, None) => HeaderValue::Literal(String::new()),
        };
        PullHeader {
            name: h.name.value.clone(),
            value,
        }
    }
}

/// `configMapKeyRef name/key` or `secretKeyRef name/key` for a `valueFrom`.
fn describe_reference(from: &serde_json::Value) -> String {
    for kind in ["configMapKeyRef", "secretKeyRef"] {
        if let Some(r) = from.get(kind) {
            let field = |f: &str| r.get(f).and_then(|v| v.as_str()).unwrap_or("?").to_string();
            return format!("{kind} {}/{}", field("name"), field("key"));
        }
    }
    "valueFrom".to_string()
}

/// One pull: GET `url` with `headers`, within `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub url: String,
    pub headers: Vec<PullHeader>,
    pub timeout: Duration,
}

impl PullRequest {
    pub fn new(url: impl Into<String>) -> PullRequest {
        PullRequest {
            url: url.into(),
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn with_header(mut self, header: PullHeader) -> PullRequest {
        self.headers.push(header);
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> PullRequest {
        self.timeout = timeout;
        self
    }
}

/// A successful (2xx) pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullResponse {
    pub status: u16,
    /// The body, as text (for `policylab::feed`).
    pub body: String,
}

/// Why a pull failed. `Display` gives the message for `errorConditions`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullError {
    #[error("invalid feed URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("GET {url}: header {name:?} takes its value from {reference}, which cannot exist in a scenario; give a literal value")]
    HeaderReference {
        url: String,
        name: String,
        reference: String,
    },
    #[error("GET {url}: invalid header {name:?}: {reason}")]
    BadHeader {
        url: String,
        name: String,
        reason: String,
    },
    #[error("GET {url}: host {host:?} is not one of the scenario's outside hostnames")]
    UnknownHost { url: String, host: String },
    #[error("GET {url}: no answer from the server within {timeout:?} (connection timed out)")]
    ConnectTimeout { url: String, timeout: Duration },
    #[error("GET {url}: connection failed: {reason}")]
    Connect { url: String, reason: String },
    #[error("GET {url}: TLS failed: {reason}")]
    Tls { url: String, reason: String },
    #[error("GET {url}: no complete response within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("GET {url}: 404 Not Found")]
    NotFound { url: String },
    #[error("GET {url}: unexpected HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: the body is larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("GET {url}: the body is not UTF-8 text")]
    NotText { url: String },
    #[error("GET {url}: reading the response failed: {reason}")]
    Body { url: String, reason: String },
    #[error("GET {url}: the puller could not run in namespace {namespace}: {reason}")]
    Harness {
        url: String,
        namespace: String,
        reason: String,
    },
}

impl PullError {
    /// The `errorConditions[].type` for this error.
    pub fn condition_type(&self) -> &'static str {
        PULL_FAILED
    }
}

/// Pulls feeds from inside one namespace. Plain data: cheap to clone, no background
/// work; each [`Puller::pull`] uses its own thread, runtime and connection.
#[derive(Debug, Clone)]
pub struct Puller {
    ns: NetNs,
    roots: Vec<CertificateDer<'static>>,
    hosts: BTreeMap<String, Vec<IpAddr>>,
}

impl Puller {
    /// A puller running in `ns` that trusts nothing and resolves no name yet.
    pub fn new(ns: &NetNs) -> Puller {
        Puller {
            ns: ns.clone(),
            roots: Vec::new(),
            hosts: BTreeMap::new(),
        }
    }

    /// Trusts `ca` (DER) for HTTPS.
    pub fn trust(mut self, ca: CertificateDer<'static>) -> Puller {
        self.roots.push(ca);
        self
    }

    /// Resolves `hostname` (case-insensitive) to `addresses` (an outside host's).
    pub fn resolve(mut self, hostname: &str, addresses: &[IpAddr]) -> Puller {
        self.hosts
            .entry(hostname.to_ascii_lowercase())
            .or_default()
            .extend_from_slice(addresses);
        self
    }

    /// The namespace pulls run in.
    pub fn namespace(&self) -> &NetNs {
        &self.ns
    }

    /// GETs the feed. A 2xx answer is a [`PullResponse`]; everything else a
    /// [`PullError`].
    pub async fn pull(&self, req: &PullRequest) -> Result<PullResponse, PullError> {
        let url = req.url.clone();
        let parsed = check_url(&req.url)?;
        let mut headers = reqwest::header::HeaderMap::new();
        for h in &req.headers {
            let value = match &h.value {
                HeaderValue::Literal(v) => v,
                HeaderValue::Reference(r) => {
                    return Err(PullError::HeaderReference {
                        url,
                        name: h.name.clone(),
                        reference: r.clone(),
                    })
                }
            };
            let bad = |reason: String| PullError::BadHeader {
                url: url.clone(),
                name: h.name.clone(),
                reason,
            };
            let name = reqwest::header::HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|e| bad(e.to_string()))?;
            let value =
                reqwest::header::HeaderValue::from_str(value).map_err(|e| bad(e.to_string()))?;
            headers.append(name, value);
        }
        if let Some(host) = parsed.host_str() {
            let is_ip = host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok();
            if !is_ip && !self.hosts.contains_key(&host.to_ascii_lowercase()) {
                return Err(PullError::UnknownHost {
                    url,
                    host: host.to_string(),
                });
            }
        }
        let tls = self.tls_config(&url)?;
        let resolver = Arc::new(ScenarioResolver {
            hosts: self.hosts.clone(),
        });
        let timeout = req.timeout;
        let work_url = url.clone();
        let ran = self
            .ns
            .run_async(move || -> Result<PullResponse, PullError> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| PullError::Harness {
                        url: work_url.clone(),
                        namespace: String::new(),
                        reason: format!("starting a runtime: {e}"),
                    })?;
                rt.block_on(fetch(work_url, parsed, headers, timeout, tls, resolver))
            })
            .await;
        match ran {
            Ok(r) => r,
            Err(e) => Err(PullError::Harness {
                url,
                namespace: self.ns.name().to_string(),
                reason: harness_reason(&e),
            }),
        }
    }

    fn tls_config(&self, url: &str) -> Result<rustls::ClientConfig, PullError> {
        let harness = |reason: String| PullError::Harness {
            url: url.to_string(),
            namespace: self.ns.name().to_string(),
            reason,
        };
        let mut roots = rustls::RootCertStore::empty();
        for ca in &self.roots {
            roots
                .add(ca.clone())
                .map_err(|e| harness(format!("the scenario CA is not usable: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| harness(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }
}

fn harness_reason(e: &NetnsError) -> String {
    e.to_string()
}

fn check_url(url: &str) -> Result<reqwest::Url, PullError> {
    let bad = |reason: &str| PullError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(bad("the scheme must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(parsed)
}

/// Resolves only the scenario's hostnames.
struct ScenarioResolver {
    hosts: BTreeMap<String, Vec<IpAddr>>,
}

#[derive(Debug, thiserror::Error)]
#[error("host {0:?} is not one of the scenario's outside hostnames")]
struct UnknownName(String);

impl reqwest::dns::Resolve for ScenarioResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_ascii_lowercase();
        let found = self.hosts.get(&name).cloned();
        Box::pin(async move {
            match found {
                Some(addrs) => {
                    let it: reqwest::dns::Addrs =
                        Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
                    Ok(it)
                }
                None => {
                    Err(Box::new(UnknownName(name)) as Box<dyn std::error::Error + Send + Sync>)
                }
            }
        })
    }
}

async fn fetch(
    url: String,
    parsed: reqwest::Url,
    headers: reqwest::header::HeaderMap,
    timeout: Duration,
    tls: rustls::ClientConfig,
    resolver: Arc<ScenarioResolver>,
) -> Result<PullResponse, PullError> {
    let connected = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::builder()
        .no_proxy()
        .connector_layer(MarkConnected::layer(connected.clone()))
        .use_preconfigured_tls(tls)
        .dns_resolver(resolver)
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| PullError::Harness {
            url: url.clone(),
            namespace: String::new(),
            reason: format!("building the HTTP client: {e}"),
        })?;
    let work = async {
        let resp = client
            .get(parsed)
            .headers(headers)
            .send()
            .await
            .map_err(|e| classify(&url, timeout, &connected, &e))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(PullError::NotFound { url: url.clone() });
        }
        if !status.is_success() {
            return Err(PullError::Status {
                url: url.clone(),
                status: status.as_u16(),
            });
        }
        if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(PullError::TooLarge {
                url: url.clone(),
                limit: MAX_BODY,
            });
        }
        let mut resp = resp;
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| classify(&url, timeout, &connected, &e))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(PullError::TooLarge {
                    url: url.clone(),
                    limit: MAX_BODY,
                });
            }
            body.extend_from_slice(&chunk);
        }
        let body = String::from_utf8(body).map_err(|_| PullError::NotText { url: url.clone() })?;
        Ok(PullResponse {
            status: status.as_u16(),
            body,
        })
    };
    // reqwest enforces `timeout`; this outer bound only guards against a bug there.
    match tokio::time::timeout(timeout + Duration::from_secs(1), work).await {
        Ok(r) => r,
        Err(_) if connected.load(Ordering::SeqCst) => Err(PullError::Timeout { url, timeout }),
        Err(_) => Err(PullError::ConnectTimeout { url, timeout }),
    }
}

/// A connector wrapper that records that a connection was made (TCP connected and, for
/// https, the TLS handshake done).
#[derive(Clone)]
struct MarkConnected<S> {
    inner: S,
    flag: Arc<AtomicBool>,
}

impl MarkConnected<()> {
    fn layer<S>(
        flag: Arc<AtomicBool>,
    ) -> impl tower_layer::Layer<S, Service = MarkConnected<S>> + Clone {
        tower_layer::layer_fn(move |inner| MarkConnected {
            inner,
            flag: flag.clone(),
        })
    }
}

impl<S, R> tower_service::Service<R> for MarkConnected<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let fut = self.inner.call(req);
        let flag = self.flag.clone();
        Box::pin(async move {
            let r = fut.await;
            if r.is_ok() {
                flag.store(true, Ordering::SeqCst);
            }
            r
        })
    }
}

/// Sorts a reqwest error into a [`PullError`].
fn classify(url: &str, timeout: Duration, connected: &AtomicBool, e: &reqwest::Error) -> PullError {
    let url = url.to_string();
    // Walk the source chain for the errors that say the most.
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut io_kind = None;
    while let Some(s) = src {
        if let Some(t) = s.downcast_ref::<rustls::Error>() {
            return PullError::Tls {
                url,
                reason: tls_reason(t),
            };
        }
        if let Some(UnknownName(host)) = s.downcast_ref::<UnknownName>() {
            return PullError::UnknownHost {
                url,
                host: host.clone(),
            };
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            // The innermost kind is the most specific.
            io_kind = Some(io.kind());
            // An io::Error's `source()` skips the error it wraps (rustls errors travel
            // inside io::Error(Other, io::Error(InvalidData, rustls::Error))): descend
            // into it instead.
            if let Some(inner) = io.get_ref() {
                src = Some(inner);
                continue;
            }
        }
        src = s.source();
    }
    if e.is_timeout() {
        // The request's timeout covers connecting too: whether a connection (TCP and,
        // for https, TLS) was made tells a silent host from a slow server.
        return if connected.load(Ordering::SeqCst) {
            PullError::Timeout { url, timeout }
        } else {
            PullError::ConnectTimeout { url, timeout }
        };
    }
    if e.is_connect() {
        let reason = match io_kind {
            Some(std::io::ErrorKind::ConnectionRefused) => "connection refused".to_string(),
            Some(std::io::ErrorKind::HostUnreachable) => "host unreachable".to_string(),
            Some(std::io::ErrorKind::NetworkUnreachable) => "network unreachable".to_string(),
            Some(std::io::ErrorKind::TimedOut) => {
                return PullError::ConnectTimeout { url, timeout };
            }
            Some(kind) => kind.to_string(),
            None => "no connection".to_string(),
        };
        return PullError::Connect { url, reason };
    }
    if e.is_body() || e.is_decode() {
        return PullError::Body {
            url,
            reason: match io_kind {
                Some(kind) => kind.to_string(),
                None => "the connection ended early".to_string(),
            },
        };
    }
    PullError::Connect {
        url,
        reason: match io_kind {
            Some(std::io::ErrorKind::ConnectionReset) => "connection reset".to_string(),
            Some(std::io::ErrorKind::UnexpectedEof) => "the server closed the connection".into(),
            Some(kind) => kind.to_string(),
            None => "the request failed".to_string(),
        },
    }
}

fn tls_reason(e: &rustls::Error) -> String {
    use rustls::{CertificateError, Error};
    match e {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate is not signed by the scenario CA (unknown issuer)".into()
        }
        Error::InvalidCertificate(CertificateError::NotValidForName)
        | Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
            "the server's certificate is not valid for this host name".into()
        }
        Error::InvalidCertificate(c) => format!("invalid server certificate: {c:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://feeds.example.test/x").is_ok());
        assert!(matches!(
            check_url("ftp://feeds.example.test/x"),
            Err(PullError::BadUrl { .. })
        ));
        assert!(matches!(
            check_url("not a url"),
            Err(PullError::BadUrl { .. })
        ));
    }

    #[test]
    fn references_are_described() {
        let v = serde_json::json!({"secretKeyRef": {"name": "globalthreatfeed-x", "key": "token"}});
        assert_eq!(
            describe_reference(&v),
            "secretKeyRef globalthreatfeed-x/token"
        );
        let v = serde_json::json!({"configMapKeyRef": {"name": "c", "key": "k"}});
        assert_eq!(describe_reference(&v), "configMapKeyRef c/k");
    }

    #[test]
    fn messages_are_deterministic() {
        let e = PullError::ConnectTimeout {
            url: "http://h/x".into(),
            timeout: Duration::from_secs(2),
        };
        assert_eq!(
            e.to_string(),
            "GET http://h/x: no answer from the server within 2s (connection timed out)"
        );
        assert_eq!(e.condition_type(), "PullFailed");
    }
}
