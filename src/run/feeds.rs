//! This module deals with the threat feeds' state along a scenario: when each
//! GlobalThreatFeed is pulled, what it got, and the GlobalNetworkSet it becomes.
//!
//! # Rules (docs/semantics.md#threat-feeds, docs/scenario-format.md#steps)
//! - An enabled feed (`spec.mode` Enabled, the default) with `pull.http.url` is
//!   pulled when it is applied (created, or its spec changed) and then every
//!   `spec.pull.period` (default 24h) of scenario time: an `advance` that reaches
//!   or passes the next due time pulls. An `advance` spanning several periods pulls
//!   once, at the last due time (nothing can change between two due times inside
//!   one step), and the next pull is due one period later.
//! - The list is the file the outside host whose `hostnames` include the URL's host
//!   (or whose address is the URL's host) serves at the URL's path (query and
//!   fragment ignored). The scheme and port are ignored: the lab serves feed files
//!   over plain HTTP on port 80, also for `https://` URLs (there is no TLS in the lab).
//! - A pull fails when no outside host has the name, the host is failed, the path
//!   is not served (404), or the text cannot be read as a whole (see
//!   [`crate::feed`]). A failed pull keeps the last good list; the status records
//!   the error (like `errorConditions`) and `lastSuccessfulSync` stays at the last
//!   good pull. Garbage lines of a good pull are reported with the pull.
//! - With `spec.globalNetworkSet`, the list becomes GlobalNetworkSet
//!   `threatfeed.<name>` with exactly the feed's labels (it replaces one the user
//!   applied with that name, as the controller overwrites it). A feed that never
//!   pulled successfully has no set. A Disabled feed is not pulled and has no set
//!   and raises no alerts; deleting a feed removes its set.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;

use crate::diag::Spanned;
use crate::feed::{self, FeedFormat, LineProblem};
use crate::inventory::Inventory;
use crate::manifest::types::{NetworkSetSpec, ObjectMeta, ThreatFeedSpec};
use crate::manifest::{Body, Kind, Resource, ResourceKey};

/// The default `spec.pull.period`.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(24 * 3600);

/// One pull of one feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedPull {
    pub feed: String,
    /// Scenario time of the pull.
    #[serde(serialize_with = "ser_duration")]
    pub at: Duration,
    pub url: String,
    pub result: PullResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "result")]
pub enum PullResult {
    Ok {
        entries: usize,
        /// Lines that were skipped.
        problems: Vec<LineProblem>,
        /// Entries added and removed compared with the previous list.
        added: usize,
        removed: usize,
    },
    Failed {
        message: String,
        /// The size of the list kept (the last good one), if any.
        kept: Option<usize>,
    },
}

/// A feed's state after a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedStatus {
    pub name: String,
    pub enabled: bool,
    pub url: Option<String>,
    /// `threatfeed.<name>` when the feed syncs into a GlobalNetworkSet and has a list.
    pub network_set: Option<String>,
    /// The current list (the last good pull's).
    pub nets: Vec<IpNet>,
    #[serde(serialize_with = "ser_duration_opt")]
    pub last_successful_sync: Option<Duration>,
    /// The last pull's error, cleared by a good pull.
    pub error: Option<String>,
    #[serde(serialize_with = "ser_duration_opt")]
    pub next_pull: Option<Duration>,
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::fmt_duration(*d))
}

fn ser_duration_opt<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&super::fmt_duration(*d)),
        None => s.serialize_none(),
    }
}

/// What of a feed's spec matters for pulling; a change is a new apply.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    enabled: bool,
    url: Option<String>,
    period: Duration,
    format: FeedFormat,
    labels: Option<BTreeMap<String, String>>,
}

impl Config {
    fn of(spec: &ThreatFeedSpec) -> Config {
        let pull = spec.pull.as_ref().map(|p| &p.value);
        Config {
            enabled: spec.mode.as_ref().is_none_or(|m| m.value != "Disabled"),
            url: pull
                .and_then(|p| p.http.as_ref())
                .and_then(|h| h.value.url.as_ref())
                .map(|u| u.value.clone()),
            period: pull
                .and_then(|p| p.period.as_ref())
                .and_then(|p| crate::manifest::values::parse_go_duration(&p.value))
                .unwrap_or(DEFAULT_PERIOD),
            format: FeedFormat::from_spec(spec),
            labels: spec.global_network_set.as_ref().map(|g| {
                g.value
                    .labels
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.value.clone()))
                    .collect()
            }),
        }
    }
}

#[derive(Debug, Clone)]
struct State {
    config: Config,
    /// The resource, for the span of the injected set.
    resource: Resource,
    nets: Option<Vec<IpNet>>,
    last_ok: Option<Duration>,
    error: Option<String>,
    next_due: Option<Duration>,
}

/// Every feed's state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Feeds {
    feeds: BTreeMap<String, State>,
}

impl Feeds {
    /// Follows the inventory after a step: new or changed feeds are pulled now,
    /// deleted ones forgotten.
    pub(crate) fn sync(
        &mut self,
        now: Duration,
        inv: &Inventory,
        failed: &BTreeSet<String>,
    ) -> Vec<FeedPull> {
        let mut present = BTreeSet::new();
        let mut pulls = Vec::new();
        for (k, r) in &inv.resources {
            let Body::ThreatFeed(spec) = &r.body else {
                continue;
            };
            if k.kind != Kind::GlobalThreatFeed {
                continue;
            }
            present.insert(k.name.clone());
            let config = Config::of(spec);
            let fresh = match self.feeds.get(&k.name) {
                Some(s) => s.config != config,
                None => true,
            };
            if !fresh {
                continue;
            }
            let keep = self.feeds.remove(&k.name);
            let mut st = State {
                config,
                resource: Resource::clone(r),
                nets: keep.as_ref().and_then(|s| s.nets.clone()),
                last_ok: keep.as_ref().and_then(|s| s.last_ok),
                error: None,
                next_due: None,
            };
            if st.config.enabled && st.config.url.is_some() {
                pulls.push(pull(&k.name, &mut st, now, inv, failed));
            } else {
                st.nets = None;
            }
            self.feeds.insert(k.name.clone(), st);
        }
        self.feeds.retain(|n, _| present.contains(n));
        pulls
    }

    /// The clock moved to `now`: pulls every feed that is due.
    pub(crate) fn advance(
        &mut self,
        now: Duration,
        inv: &Inventory,
        failed: &BTreeSet<String>,
    ) -> Vec<FeedPull> {
        let mut pulls = Vec::new();
        let names: Vec<String> = self.feeds.keys().cloned().collect();
        for name in names {
            let Some(st) = self.feeds.get_mut(&name) else {
                continue;
            };
            let Some(due) = st.next_due.filter(|d| *d <= now) else {
                continue;
            };
            let period = st.config.period.max(Duration::from_secs(1));
            let periods = ((now - due).as_nanos() / period.as_nanos()) as u32;
            let at = due + period * periods;
            pulls.push(pull(&name, st, at, inv, failed));
        }
        pulls
    }

    /// Puts each feed's GlobalNetworkSet into the inventory.
    pub(crate) fn inject(&self, inv: &mut Inventory) {
        for (name, st) in &self.feeds {
            let (Some(labels), Some(nets), true) = (&st.config.labels, &st.nets, st.config.enabled)
            else {
                continue;
            };
            let span = st.resource.span;
            let set_name = format!("threatfeed.{name}");
            let mut annotations = BTreeMap::new();
            annotations.insert(
                "tigera.io/creator".to_string(),
                "intrusion-detection-controller".to_string(),
            );
            let res = Resource {
                kind: Kind::GlobalNetworkSet,
                span,
                metadata: ObjectMeta {
                    name: Some(Spanned::new(span, set_name.clone())),
                    namespace: None,
                    labels: Some(
                        labels
                            .iter()
                            .map(|(k, v)| (k.clone(), Spanned::new(span, v.clone())))
                            .collect(),
                    ),
                    annotations: Some(annotations),
                    generate_name: None,
                },
                body: Body::NetworkSet(NetworkSetSpec {
                    nets: Some(
                        nets.iter()
                            .map(|n| Spanned::new(span, n.to_string()))
                            .collect(),
                    ),
                }),
            };
            inv.resources.insert(
                ResourceKey {
                    kind: Kind::GlobalNetworkSet,
                    namespace: None,
                    name: set_name,
                },
                std::sync::Arc::new(res),
            );
        }
    }

    pub(crate) fn statuses(&self) -> Vec<FeedStatus> {
        self.feeds
            .iter()
            .map(|(name, st)| FeedStatus {
                name: name.clone(),
                enabled: st.config.enabled,
                url: st.config.url.clone(),
                network_set: (st.config.enabled && st.config.labels.is_some() && st.nets.is_some())
                    .then(|| format!("threatfeed.{name}")),
                nets: if st.config.enabled {
                    st.nets.clone().unwrap_or_default()
                } else {
                    Vec::new()
                },
                last_successful_sync: st.last_ok,
                error: st.error.clone(),
                next_pull: st.next_due,
            })
            .collect()
    }
}

fn pull(
    name: &str,
    st: &mut State,
    at: Duration,
    inv: &Inventory,
    failed: &BTreeSet<String>,
) -> FeedPull {
    let url = st.config.url.clone().unwrap_or_default();
    st.next_due = Some(at + st.config.period);
    let result = match fetch(&url, inv, failed).and_then(|text| {
        feed::parse(&st.config.format, &text).map_err(|e| format!("parsing the list: {e}"))
    }) {
        Ok(list) => {
            let old: BTreeSet<IpNet> = st.nets.iter().flatten().copied().collect();
            let new: BTreeSet<IpNet> = list.nets.iter().copied().collect();
            let r = PullResult::Ok {
                entries: list.nets.len(),
                problems: list.problems,
                added: new.difference(&old).count(),
                removed: old.difference(&new).count(),
            };
            st.nets = Some(list.nets);
            st.last_ok = Some(at);
            st.error = None;
            r
        }
        Err(message) => {
            st.error = Some(message.clone());
            PullResult::Failed {
                message,
                kept: st.nets.as_ref().map(Vec::len),
            }
        }
    };
    FeedPull {
        feed: name.to_string(),
        at,
        url,
        result,
    }
}

/// The host of an `http(s)://` URL (an IPv6 literal without its brackets);
/// `None` for another scheme.
pub(crate) fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    Some(authority_host(authority))
}

fn authority_host(authority: &str) -> &str {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(h) = authority.strip_prefix('[') {
        h.split(']').next().unwrap_or(h)
    } else {
        authority.split(':').next().unwrap_or(authority)
    }
}

/// The text served at `url`, or why there is none.
fn fetch(url: &str, inv: &Inventory, failed: &BTreeSet<String>) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("GET {url}: not an http(s) URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let host = authority_host(authority);
    let server = inv
        .outside
        .iter()
        .find(|h| {
            h.hostnames.iter().any(|n| n.eq_ignore_ascii_case(host))
                || h.ips.iter().any(|ip| ip.to_string() == host)
        })
        .ok_or_else(|| {
            format!("GET {url}: cannot resolve `{host}` (no outside host lists it in `hostnames`)")
        })?;
    if failed.contains(&server.name) {
        return Err(format!(
            "GET {url}: outside host {} does not answer (failed)",
            server.name
        ));
    }
    server
        .files
        .get(path)
        .map(|f| f.contents.clone())
        .ok_or_else(|| {
            format!(
                "GET {url}: 404 Not Found (outside host {} serves no `{path}`)",
                server.name
            )
        })
}
