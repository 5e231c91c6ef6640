//! This module deals with Calico's and Kubernetes' own validation of a typed resource:
//! the rules the API server (CRD CEL rules, libcalico-go's validator, the Kubernetes
//! validators) applies after the schema.
//!
//! Input: a [`Resource`] that passed the schema check, plus a [`Context`] (its YAML
//! tree and, when known, the file text) used to point at keys and inside strings.
//! Output: diagnostics only. Every problem is reported (validation never stops at the
//! first one), at the span of the offending value, as `<field path>: <message>` with
//! the API's own message where it has one.
//!
//! Decisions where the API leaves room (written down so they are not re-litigated):
//! - Protocol names are case-sensitive, as in libcalico-go's validator (decision
//!   `protocol-names-case-sensitive`): `tcp` is `protocol name invalid`, with a hint to write `TCP`.
//! - A named port in a rule must match `^[a-zA-Z0-9_.-]{1,128}$` (the parser) and
//!   also be a valid Kubernetes port name (the validator's `portName` tag): `http_alt`
//!   is rejected, since no container port can have that name.
//! - A rule's `nets`/`notNets` take CIDRs as the validator checks them (`net` tag plus
//!   `scanNets`): a prefix length is required (`10.0.0.1` alone is `invalid CIDR`)
//!   and host bits must be clear. Network sets use `ParseCIDROrIP`: bare addresses
//!   are `/32` or `/128`, and host bits are only a warning (the set holds the network).
//! - `GlobalThreatFeed.spec.pull.period`: the API stores any string and the
//!   controller silently falls back to 24h when it does not parse. policylab never
//!   applies a silent default (docs/scenario-format.md: "never a silent default"), so an
//!   unparsable period, or one below the controller's minimum of 5m, is an error.
//! - A policylab resource needs a fixed `metadata.name` (it is referred to by name);
//!   `generateName` alone is rejected.
//! - `metadata.namespace` on a cluster-scoped kind is an error (kubectl would drop
//!   it silently; a scenario that writes it almost certainly meant something else).
//!
//! Guarantee: never panics, whatever the resource holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use super::names::{self, CalicoNameRule};
use super::types::*;
use super::values::{
    parse_go_duration, parse_ip, parse_net, port_name_problems, PortSpec, Protocol,
};
use crate::diag::{Diagnostics, Span, Spanned};
use crate::selector;
use crate::yaml::{value_char_span, Node, Value};

// ---------------------------------------------------------------------------------
// Context: the YAML tree behind a typed resource.

/// What validation needs besides the typed resource: the document's tree (to find
/// keys and the style of scalars) and the text of the file its spans point into.
pub struct Context<'a> {
    root: Option<&'a Node>,
    text: Option<&'a str>,
    scalars: HashMap<Span, &'a Node>,
}

impl<'a> Context<'a> {
    /// A context for the document rooted at `root`; `text` is the whole text of the
    /// file the spans point into (for inline manifests, the outer file).
    pub fn new(root: &'a Node, text: Option<&'a str>) -> Context<'a> {
        fn index<'n>(n: &'n Node, out: &mut HashMap<Span, &'n Node>) {
            match &n.value {
                Value::Scalar(_) => {
                    out.entry(n.span).or_insert(n);
                }
                Value::Seq(items) => items.iter().for_each(|i| index(i, out)),
                Value::Map(entries) => entries.iter().for_each(|(_, v)| index(v, out)),
            }
        }
        let mut scalars = HashMap::new();
        index(root, &mut scalars);
        Context {
            root: Some(root),
            text,
            scalars,
        }
    }

    /// A context with no tree (resources built in code): positions come from the
    /// typed values only.
    pub fn detached() -> Context<'static> {
        Context {
            root: None,
            text: None,
            scalars: HashMap::new(),
        }
    }

    fn node(&self, path: &Path) -> Option<&'a Node> {
        let mut n = self.root?;
        for seg in &path.0 {
            n = match seg {
                Seg::Key(k) => n.get(k)?,
                Seg::Idx(i) => n.as_seq()?.get(*i)?,
            };
        }
        Some(n)
    }

    /// The span of the key that ends `path` (`spec.egress` → the `egress` key).
    fn key_span(&self, path: &Path) -> Option<Span> {
        let (Seg::Key(k), parent) = path.0.split_last()? else {
            return None;
        };
        let parent = self.node(&Path(parent.to_vec()))?;
        parent.entry(k).map(|(k, _)| k.span)
    }

    /// The span of the deepest node that exists along `path`.
    fn near(&self, path: &Path, fallback: Span) -> Span {
        let mut best = self.root.map(|r| r.span).unwrap_or(fallback);
        for n in 0..=path.0.len() {
            match self.node(&Path(path.0[..n].to_vec())) {
                Some(node) => best = node.span,
                None => break,
            }
        }
        best
    }

    /// Where character `offset` of the string value `s` is.
    fn char_span(&self, s: &Spanned<String>, offset: usize) -> Span {
        match self.scalars.get(&s.span) {
            Some(node) => value_char_span(node, offset, self.text),
            None => Span::new(
                s.span.file,
                s.span.line,
                s.span.col.saturating_add(offset as u32),
            ),
        }
    }
}

// ---------------------------------------------------------------------------------
// Field paths

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Idx(usize),
}

/// A field path, printed `spec.egress[0].destination.ports[1]`; map keys with other
/// characters than letters, digits, `-` and `_` print as `[key]`.
#[derive(Debug, Clone, Default)]
struct Path(Vec<Seg>);

impl Path {
    fn root(key: &str) -> Path {
        Path(vec![Seg::Key(key.to_string())])
    }
    fn key(&self, k: &str) -> Path {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }
    fn idx(&self, i: usize) -> Path {
        let mut p = self.clone();
        p.0.push(Seg::Idx(i));
        p
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k)
                    if !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
                {
                    write!(f, ".{k}")?
                }
                Seg::Key(k) => write!(f, "[{k}]")?,
                Seg::Idx(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// Entry point

/// Checks `res` as the API server would after the schema, reporting every problem.
pub fn validate(res: &Resource, ctx: &Context<'_>, diags: &mut Diagnostics) {
    let mut v = V {
        ctx,
        diags,
        doc: res.span,
    };
    v.metadata(res);
    match &res.body {
        Body::Policy(spec) => v.policy(res, spec),
        Body::Tier(spec) => v.tier(res, spec),
        Body::NetworkSet(spec) => v.network_set(res, spec),
        Body::HostEndpoint(spec) => v.host_endpoint(spec),
        Body::ThreatFeed(spec) => v.threat_feed(spec),
        Body::FelixConfiguration(spec) => v.felix_configuration(res, spec),
        Body::K8sNetworkPolicy(spec) => v.k8s_network_policy(spec),
        Body::AdminPolicy(spec) => v.admin_policy(res, spec),
        Body::Pod(spec) => v.pod_spec(&Path::root("spec"), spec),
        Body::Service(spec) => v.service(spec),
        Body::Deployment(spec) => v.deployment(spec),
        Body::Namespace | Body::ServiceAccount => {}
    }
}

struct V<'c, 'a, 'd> {
    ctx: &'c Context<'a>,
    diags: &'d mut Diagnostics,
    /// Where the document starts: the fallback position.
    doc: Span,
}

const NAMESPACE_LABEL: &str = "projectcalico.org/namespace";
use crate::resolve::NAMESPACE_NAME_LABEL;
const GLOBAL_ONLY_IN_NS_SELECTOR: &str =
    "global() can only be used in an EntityRule namespaceSelector";

/// Each port of a list with where it is written; `None` when it did not parse.
type ParsedPorts = Vec<(Span, Option<PortSpec>)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Ingress,
    Egress,
}

fn one_of(values: &[&str]) -> String {
    values.join(", ")
}

impl V<'_, '_, '_> {
    fn err(&mut self, span: Span, path: &Path, msg: impl fmt::Display) {
        self.diags.error(span, format!("{path}: {msg}"));
    }

    fn warn(&mut self, span: Span, path: &Path, msg: impl fmt::Display) {
        self.diags.warning(span, format!("{path}: {msg}"));
    }

    /// The span of `path`'s node, or of the deepest node on the way there.
    fn near(&self, path: &Path) -> Span {
        self.ctx.near(path, self.doc)
    }

    /// The span of the key ending `path` (`http:`), or `value` (for a mapping-valued
    /// field the value's span is its first inner key, a worse place to point at).
    fn field_span(&self, path: &Path, value: Span) -> Span {
        self.ctx.key_span(path).unwrap_or(value)
    }

    /// The span of the key ending `path`, or `near(path)`.
    fn key_or_near(&self, path: &Path) -> Span {
        self.ctx.key_span(path).unwrap_or_else(|| self.near(path))
    }

    fn unsupported(&mut self, span: Span, path: &Path, got: &str, allowed: &[&str]) {
        let hint = allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(got))
            .map(|a| format!("; names are case-sensitive: write {a}"))
            .unwrap_or_default();
        self.err(
            span,
            path,
            format!(
                "unsupported value {got:?} (expected one of: {}){hint}",
                one_of(allowed)
            ),
        );
    }

    // -----------------------------------------------------------------------------
    // metadata

    fn metadata(&mut self, res: &Resource) {
        let m = &res.metadata;
        let meta = Path::root("metadata");
        let kind = res.kind;
        match &m.name {
            Some(n) if !n.value.is_empty() => {
                let problems = match kind {
                    Kind::NetworkPolicy | Kind::StagedNetworkPolicy => {
                        names::calico_name(CalicoNameRule::NetworkPolicy, &n.value)
                    }
                    Kind::GlobalNetworkPolicy | Kind::StagedGlobalNetworkPolicy => {
                        names::calico_name(CalicoNameRule::GlobalNetworkPolicy, &n.value)
                    }
                    Kind::Tier => names::calico_name(CalicoNameRule::Tier, &n.value),
                    Kind::NetworkSet
                    | Kind::GlobalNetworkSet
                    | Kind::HostEndpoint
                    | Kind::GlobalThreatFeed
                    | Kind::FelixConfiguration => {
                        names::calico_name(CalicoNameRule::Subdomain, &n.value)
                    }
                    Kind::Namespace => names::dns1123_label(&n.value),
                    Kind::Service => names::dns1035_label(&n.value),
                    Kind::K8sNetworkPolicy
                    | Kind::AdminNetworkPolicy
                    | Kind::BaselineAdminNetworkPolicy
                    | Kind::StagedKubernetesNetworkPolicy
                    | Kind::Pod
                    | Kind::ServiceAccount
                    | Kind::Deployment => names::dns1123_subdomain(&n.value),
                };
                for p in problems {
                    self.err(n.span, &meta.key("name"), p);
                }
            }
            Some(n) => self.err(n.span, &meta.key("name"), "must not be empty"),
            None => {
                let span = self.key_or_near(&meta);
                let msg = if m.generate_name.is_some() {
                    "required field missing (policylab refers to objects by name; generateName is not supported)"
                } else {
                    "required field missing"
                };
                self.err(span, &meta.key("name"), msg);
            }
        }
        if let Some(ns) = &m.namespace {
            let path = meta.key("namespace");
            if kind.is_namespaced() {
                for p in names::dns1123_label(&ns.value) {
                    self.err(ns.span, &path, p);
                }
            } else {
                self.err(
                    ns.span,
                    &path,
                    format!(
                        "{} is cluster-scoped and has no namespace; remove metadata.namespace",
                        kind.name()
                    ),
                );
            }
        }
        if let Some(labels) = &m.labels {
            let reserved = matches!(kind, Kind::NetworkSet | Kind::GlobalNetworkSet);
            self.labels(&meta.key("labels"), labels, reserved);
            // Decision `namespace-name-label`: the API server owns this label.
            if kind == Kind::Namespace {
                if let Some(v) = labels.get(NAMESPACE_NAME_LABEL) {
                    if v.value != m.name() {
                        self.err(
                            v.span,
                            &meta.key("labels").key(NAMESPACE_NAME_LABEL),
                            format!(
                                "must be {:?}: the API server sets {NAMESPACE_NAME_LABEL} to the namespace's name and it cannot be changed",
                                m.name()
                            ),
                        );
                    }
                }
            }
        }
        if let Some(ann) = &m.annotations {
            let path = meta.key("annotations");
            for k in ann.keys() {
                let span = self.key_or_near(&path.key(k));
                for p in names::qualified_name(&k.to_lowercase()) {
                    self.err(span, &path, format!("invalid key {k:?}: {p}"));
                }
            }
        }
    }

    /// Label keys and values, as Kubernetes validates them. With `reserved`, the
    /// Calico-owned `projectcalico.org/namespace` is rejected (network sets).
    fn labels(&mut self, path: &Path, labels: &BTreeMap<String, Spanned<String>>, reserved: bool) {
        for (k, v) in labels {
            let key_span = self.key_or_near(&path.key(k));
            for p in names::qualified_name(k) {
                self.err(key_span, path, format!("invalid label key {k:?}: {p}"));
            }
            if reserved && k == NAMESPACE_LABEL {
                self.err(
                    key_span,
                    path,
                    format!("{NAMESPACE_LABEL} is not a valid label name (Calico sets it on namespaced network sets itself)"),
                );
            }
            for p in names::label_value(&v.value) {
                self.err(v.span, &path.key(k), format!("invalid label value: {p}"));
            }
        }
    }

    // -----------------------------------------------------------------------------
    // Selectors

    /// Parses a selector, reporting a syntax error at its exact character.
    fn selector(&mut self, path: &Path, s: &Spanned<String>) -> bool {
        match selector::parse(&s.value) {
            Ok(_) => true,
            Err(e) => {
                let span = self.ctx.char_span(s, e.offset);
                self.err(span, path, format!("invalid selector: {}", e.message));
                false
            }
        }
    }

    /// A selector that must not use `global()` (CEL: `!self.x.contains('global(')`).
    fn selector_no_global(&mut self, path: &Path, s: &Spanned<String>) {
        self.selector(path, s);
        if let Some(at) = s.value.find("global(") {
            let offset = s.value[..at].chars().count();
            let span = self.ctx.char_span(s, offset);
            self.err(span, path, GLOBAL_ONLY_IN_NS_SELECTOR);
        }
    }

    // -----------------------------------------------------------------------------
    // Policies

    fn policy(&mut self, res: &Resource, spec: &PolicySpec) {
        let global = matches!(
            res.kind,
            Kind::GlobalNetworkPolicy | Kind::StagedGlobalNetworkPolicy
        );
        let staged = matches!(
            res.kind,
            Kind::StagedNetworkPolicy | Kind::StagedGlobalNetworkPolicy
        );
        let sp = Path::root("spec");

        // Fields the kind does not have (the schema rejects them first; this keeps
        // the typed check honest on its own).
        if !global {
            for (name, present) in [
                ("namespaceSelector", spec.namespace_selector.is_some()),
                ("doNotTrack", spec.do_not_track.is_some()),
                ("preDNAT", spec.pre_dnat.is_some()),
                ("applyOnForward", spec.apply_on_forward.is_some()),
            ] {
                if present {
                    let span = self.key_or_near(&sp.key(name));
                    self.err(
                        span,
                        &sp.key(name),
                        format!(
                            "not a field of {} (only the global kinds have it)",
                            res.kind.name()
                        ),
                    );
                }
            }
        }
        if !staged {
            if let Some(a) = &spec.staged_action {
                let span = self.key_or_near(&sp.key("stagedAction"));
                let _ = a;
                self.err(
                    span,
                    &sp.key("stagedAction"),
                    format!(
                        "not a field of {} (only staged policies have it)",
                        res.kind.name()
                    ),
                );
            }
        }

        if let Some(t) = &spec.tier {
            for p in names::calico_name(CalicoNameRule::Tier, &t.value) {
                self.err(t.span, &sp.key("tier"), p);
            }
        }
        if let Some(s) = &spec.selector {
            self.selector_no_global(&sp.key("selector"), s);
        }
        if let Some(s) = &spec.service_account_selector {
            self.selector_no_global(&sp.key("serviceAccountSelector"), s);
        }
        if let Some(s) = &spec.namespace_selector {
            self.selector_no_global(&sp.key("namespaceSelector"), s);
        }

        let mut seen = BTreeSet::new();
        for (i, t) in spec.types.iter().flatten().enumerate() {
            let path = sp.key("types").idx(i);
            if !matches!(t.value.as_str(), "Ingress" | "Egress") {
                self.unsupported(t.span, &path, &t.value, &["Ingress", "Egress"]);
            } else if !seen.insert(t.value.as_str()) {
                self.err(
                    t.span,
                    &path,
                    format!("'{}' type specified more than once", t.value),
                );
            }
        }

        if staged
            && spec
                .staged_action
                .as_ref()
                .is_some_and(|a| a.value == "Delete")
        {
            let anything = spec.order.is_some()
                || spec.selector.is_some()
                || spec.namespace_selector.is_some()
                || spec.service_account_selector.is_some()
                || spec.types.is_some()
                || spec.ingress.is_some()
                || spec.egress.is_some()
                || spec.do_not_track.is_some()
                || spec.pre_dnat.is_some()
                || spec.apply_on_forward.is_some()
                || spec.performance_hints.is_some();
            if anything {
                let span = spec
                    .staged_action
                    .as_ref()
                    .map(|a| a.span)
                    .unwrap_or(self.doc);
                self.err(
                    span,
                    &sp.key("stagedAction"),
                    "Spec fields, except Tier, should all be zero-value if stagedAction is Delete",
                );
            }
        }

        if global {
            self.global_flags(spec);
        }

        for (i, r) in spec.ingress.iter().flatten().enumerate() {
            self.rule(&sp.key("ingress").idx(i), r, Dir::Ingress, global);
        }
        for (i, r) in spec.egress.iter().flatten().enumerate() {
            self.rule(&sp.key("egress").idx(i), r, Dir::Egress, global);
        }
    }

    /// The CEL rules of the GlobalNetworkPolicy spec about doNotTrack, preDNAT and
    /// applyOnForward.
    fn global_flags(&mut self, spec: &PolicySpec) {
        let sp = Path::root("spec");
        let on = |f: &Option<Spanned<bool>>| f.as_ref().is_some_and(|b| b.value);
        let dnt = on(&spec.do_not_track);
        let pre = on(&spec.pre_dnat);
        let aof = on(&spec.apply_on_forward);
        let span_of = |f: &Option<Spanned<bool>>| f.as_ref().map(|b| b.span);
        if dnt && pre {
            let span = span_of(&spec.pre_dnat).unwrap_or(self.doc);
            self.err(
                span,
                &sp.key("preDNAT"),
                "preDNAT and doNotTrack cannot both be true",
            );
        }
        if pre && spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
            let span = self.key_or_near(&sp.key("egress"));
            self.err(
                span,
                &sp.key("egress"),
                "preDNAT policy cannot have any egress rules",
            );
        }
        if pre {
            for (i, t) in spec.types.iter().flatten().enumerate() {
                if t.value == "Egress" {
                    self.err(
                        t.span,
                        &sp.key("types").idx(i),
                        "preDNAT policy cannot have 'Egress' type",
                    );
                }
            }
        }
        if (dnt || pre) && !aof {
            let span = span_of(&spec.apply_on_forward)
                .or(if pre {
                    span_of(&spec.pre_dnat)
                } else {
                    span_of(&spec.do_not_track)
                })
                .unwrap_or(self.doc);
            let which = if pre { "preDNAT" } else { "doNotTrack" };
            self.err(
                span,
                &sp.key("applyOnForward"),
                format!("applyOnForward must be true if either preDNAT or doNotTrack is true (this policy sets {which})"),
            );
        }
    }

    fn rule(&mut self, p: &Path, r: &Spanned<Rule>, dir: Dir, global: bool) {
        let rule = &r.value;
        const ACTIONS: [&str; 4] = ["Allow", "Deny", "Log", "Pass"];
        if !ACTIONS.contains(&rule.action.value.as_str()) {
            self.unsupported(
                rule.action.span,
                &p.key("action"),
                &rule.action.value,
                &ACTIONS,
            );
        }
        let ip_version = rule.ip_version.as_ref().and_then(|v| match v.value {
            4 | 6 => Some(v.value),
            other => {
                self.err(
                    v.span,
                    &p.key("ipVersion"),
                    format!("unsupported value {other} (expected one of: 4, 6)"),
                );
                None
            }
        });
        // Outer None: not written; inner None: written but invalid (already reported).
        let proto = rule
            .protocol
            .as_ref()
            .map(|x| self.protocol(&p.key("protocol"), x));
        let not_proto = rule
            .not_protocol
            .as_ref()
            .map(|x| self.protocol(&p.key("notProtocol"), x));

        for (name, icmp) in [("icmp", &rule.icmp), ("notICMP", &rule.not_icmp)] {
            if let Some(icmp) = icmp {
                self.icmp(&p.key(name), icmp);
            }
        }
        if let Some(icmp) = &rule.icmp {
            let ok = matches!(proto, Some(Some(pr)) if pr.is_icmp_v4() || pr.is_icmp_v6());
            if !matches!(proto, Some(None)) && !ok {
                self.err(
                    self.field_span(&p.key("icmp"), icmp.span),
                    &p.key("icmp"),
                    "ICMP fields require protocol to be ICMP or ICMPv6",
                );
            }
        }
        if let (Some(v), Some(span)) = (ip_version, rule.ip_version.as_ref().map(|v| v.span)) {
            for pr in [proto, not_proto].into_iter().flatten().flatten() {
                if pr.is_icmp_v4() && v != 4 {
                    self.err(
                        span,
                        &p.key("ipVersion"),
                        "protocol ICMP requires ipVersion 4",
                    );
                }
                if pr.is_icmp_v6() && v != 6 {
                    self.err(
                        span,
                        &p.key("ipVersion"),
                        "protocol ICMPv6 requires ipVersion 6",
                    );
                }
            }
        }

        let src = rule.source.as_ref();
        let dst = rule.destination.as_ref();
        let mut ports: Vec<(Path, ParsedPorts)> = Vec::new();
        for (side, e) in [("source", src), ("destination", dst)] {
            let Some(e) = e else { continue };
            let ep = p.key(side);
            self.entity(&ep, e);
            for (field, list) in [("ports", &e.value.ports), ("notPorts", &e.value.not_ports)] {
                if let Some(list) = list {
                    let parsed = self.ports(&ep.key(field), list);
                    if !parsed.is_empty() {
                        ports.push((ep.key(field), parsed));
                    }
                }
            }
        }
        match proto {
            None => {
                for (path, list) in &ports {
                    let numeric = list.iter().position(|(_, ps)| {
                        matches!(ps, Some(PortSpec::Single(_) | PortSpec::Range(..)))
                    });
                    if let Some(i) = numeric {
                        self.err(
                            list[i].0,
                            &path.idx(i),
                            "rules with numeric port or port range must set protocol to TCP or UDP or SCTP",
                        );
                    }
                }
            }
            Some(Some(pr)) if !pr.supports_ports() => {
                for (path, list) in &ports {
                    self.err(
                        list[0].0,
                        path,
                        format!("rules that specify ports must set protocol to TCP or UDP or SCTP (protocol is {pr})"),
                    );
                }
            }
            _ => {}
        }

        self.rule_nets(p, rule, ip_version);

        if let Some(http) = &rule.http {
            let hp = p.key("http");
            let http_span = self.field_span(&hp, http.span);
            if rule.action.value != "Allow" {
                self.err(http_span, &hp, "HTTP match is only valid on Allow rules");
            }
            if let Some(Some(pr)) = proto {
                if pr.number() != 6 {
                    let span = rule.protocol.as_ref().map(|x| x.span).unwrap_or(http_span);
                    self.err(
                        span,
                        &p.key("protocol"),
                        "rules with HTTP match must have protocol TCP or unset",
                    );
                }
            }
            if dir == Dir::Egress {
                let msg = if global {
                    "not allowed in egress rules"
                } else {
                    "not allowed in egress rule"
                };
                self.err(http_span, &hp, msg);
            }
            self.http(&hp, http);
        }

        // Services: where they may appear, and what they exclude.
        if let Some(d) = dst {
            if d.value.services.is_some()
                && (d.value.ports.as_ref().is_some_and(|l| !l.is_empty())
                    || d.value.not_ports.as_ref().is_some_and(|l| !l.is_empty()))
            {
                let (field, list) = match &d.value.ports {
                    Some(l) if !l.is_empty() => ("ports", l),
                    _ => (
                        "notPorts",
                        d.value.not_ports.as_ref().expect("checked above"),
                    ),
                };
                self.err(
                    list[0].span,
                    &p.key("destination").key(field),
                    "ports and notPorts cannot be specified with services",
                );
            }
        }
        let (wrong_side, right_side) = match dir {
            Dir::Egress => (("source", src), ("destination", dst)),
            Dir::Ingress => (("destination", dst), ("source", src)),
        };
        if let (side, Some(e)) = wrong_side {
            if let Some(s) = &e.value.services {
                let msg = match dir {
                    Dir::Egress => "not allowed in egress rule source",
                    Dir::Ingress => "not allowed in ingress rule destination",
                };
                let sp = p.key(side).key("services");
                self.err(self.field_span(&sp, s.span), &sp, msg);
            }
        }
        if global {
            if let (side, Some(e)) = right_side {
                if let Some(s) = &e.value.services {
                    if s.value
                        .namespace
                        .as_ref()
                        .is_none_or(|n| n.value.is_empty())
                    {
                        self.err(
                            self.field_span(&p.key(side).key("services"), s.span),
                            &p.key(side).key("services").key("namespace"),
                            "must specify a namespace (a global policy has no namespace of its own)",
                        );
                    }
                }
            }
        }
    }

    fn protocol(&mut self, path: &Path, v: &Spanned<IntOrString>) -> Option<Protocol> {
        match Protocol::parse(&v.value) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(v.span, path, e);
                None
            }
        }
    }

    fn icmp(&mut self, path: &Path, icmp: &Spanned<IcmpFields>) {
        if let Some(t) = &icmp.value.icmp_type {
            if !(0..=254).contains(&t.value) {
                self.err(
                    t.span,
                    &path.key("type"),
                    format!("{} is out of range: must be 0 to 254", t.value),
                );
            }
        }
        if let Some(c) = &icmp.value.code {
            if !(0..=255).contains(&c.value) {
                self.err(
                    c.span,
                    &path.key("code"),
                    format!("{} is out of range: must be 0 to 255", c.value),
                );
            }
            if icmp.value.icmp_type.is_none() {
                self.err(
                    c.span,
                    &path.key("code"),
                    "ICMP code specified without an ICMP type",
                );
            }
        }
    }

    fn ports(
        &mut self,
        path: &Path,
        list: &[Spanned<IntOrString>],
    ) -> Vec<(Span, Option<PortSpec>)> {
        list.iter()
            .enumerate()
            .map(|(i, port)| match PortSpec::parse(&port.value) {
                Ok(ps) => (port.span, Some(ps)),
                Err(msg) => {
                    self.err(port.span, &path.idx(i), msg);
                    (port.span, None)
                }
            })
            .collect()
    }

    fn entity(&mut self, p: &Path, e: &Spanned<EntityRule>) {
        let ent = &e.value;
        if let Some(s) = &ent.selector {
            self.selector_no_global(&p.key("selector"), s);
        }
        if let Some(s) = &ent.not_selector {
            self.selector(&p.key("notSelector"), s);
        }
        if let Some(s) = &ent.namespace_selector {
            let path = p.key("namespaceSelector");
            let parsed = self.selector(&path, s);
            let trimmed = s.value.trim_matches(|c| c == ' ' || c == '\t');
            if parsed && s.value.contains("global(") && trimmed != "global()" {
                self.err(
                    s.span,
                    &path,
                    "global() cannot be combined with other selectors",
                );
            }
        }
        if let Some(sa) = &ent.service_accounts {
            if let Some(s) = &sa.value.selector {
                self.selector(&p.key("serviceAccounts").key("selector"), s);
            }
        }
        if let Some(svc) = &ent.services {
            let sp = p.key("services");
            let svc_span = self.field_span(&sp, svc.span);
            let nonempty =
                |s: &Option<Spanned<String>>| s.as_ref().is_some_and(|s| !s.value.is_empty());
            if !nonempty(&svc.value.name) {
                self.err(svc_span, &sp, "services must specify a service name");
            }
            if nonempty(&ent.namespace_selector) {
                self.err(
                    svc_span,
                    &sp,
                    "cannot specify NamespaceSelector and Services on the same rule",
                );
            }
            if ent.service_accounts.is_some() {
                self.err(
                    svc_span,
                    &sp,
                    "cannot specify ServiceAccounts and Services on the same rule",
                );
            }
            if nonempty(&ent.selector) || nonempty(&ent.not_selector) {
                self.err(
                    svc_span,
                    &sp,
                    "cannot specify Selector/NotSelector and Services on the same rule",
                );
            }
            let has = |l: &Option<Vec<Spanned<String>>>| l.as_ref().is_some_and(|l| !l.is_empty());
            if has(&ent.nets) || has(&ent.not_nets) {
                self.err(
                    svc_span,
                    &sp,
                    "cannot specify Nets/NotNets and Services on the same rule",
                );
            }
        }
    }

    /// libcalico-go's `scanNets` over source/destination nets/notNets of one rule.
    fn rule_nets(&mut self, p: &Path, rule: &Rule, ip_version: Option<i64>) {
        let mut first_family: Option<bool> = None; // Some(true) = IPv4
        let mut seen_v4 = false;
        let mut seen_v6 = false;
        for (side, e) in [("source", &rule.source), ("destination", &rule.destination)] {
            let Some(e) = e else { continue };
            for (field, negated, list) in [
                ("nets", false, &e.value.nets),
                ("notNets", true, &e.value.not_nets),
            ] {
                let Some(list) = list else { continue };
                let path = p.key(side).key(field);
                let mut families: Vec<(usize, bool)> = Vec::new();
                for (i, n) in list.iter().enumerate() {
                    let ip = path.idx(i);
                    match parse_net(&n.value) {
                        Err(why) => self.err(n.span, &ip, format!("invalid CIDR: {why}")),
                        Ok(w) => {
                            if !w.has_prefix {
                                let plen = if w.is_v4() { 32 } else { 128 };
                                self.err(
                                    n.span,
                                    &ip,
                                    format!("invalid CIDR {:?}: rule nets need a prefix length (for one address write {}/{plen})", n.value, n.value),
                                );
                                continue;
                            }
                            if w.host_bits_set() {
                                self.err(
                                    n.span,
                                    &ip,
                                    format!(
                                        "invalid CIDR {:?}: host bits are set (the network is {})",
                                        n.value,
                                        w.network()
                                    ),
                                );
                            } else if negated && w.prefix == 0 {
                                self.err(
                                    n.span,
                                    &ip,
                                    "catch-all CIDR in negation creates logical contradiction (matches no traffic)",
                                );
                            }
                            families.push((i, w.is_v4()));
                        }
                    }
                }
                let v4 = families.iter().any(|(_, f)| *f);
                let v6 = families.iter().any(|(_, f)| !*f);
                if let Some(ver) = ip_version {
                    if let Some((i, _)) = families.iter().find(|(_, f)| *f != (ver == 4)) {
                        self.err(
                            list[*i].span,
                            &path.idx(*i),
                            "rule IP version doesn't match CIDR version",
                        );
                    }
                }
                if let Some((_, f)) = families.first() {
                    first_family.get_or_insert(*f);
                }
                if (v4 && seen_v6) || (v6 && seen_v4) || (v4 && v6) {
                    let first = first_family.unwrap_or(true);
                    if let Some((i, _)) = families.iter().find(|(_, f)| *f != first) {
                        self.err(
                            list[*i].span,
                            &path.idx(*i),
                            "rule contains both IPv4 and IPv6 CIDRs",
                        );
                    }
                }
                seen_v4 |= v4;
                seen_v6 |= v6;
            }
        }
    }

    fn http(&mut self, hp: &Path, http: &Spanned<HttpMatch>) {
        if let Some(methods) = &http.value.methods {
            let set: BTreeSet<&String> = methods.iter().collect();
            if set.len() != methods.len() {
                let span = self.near(&hp.key("methods"));
                self.err(
                    span,
                    &hp.key("methods"),
                    format!("Invalid methods (duplicates): [{}]", methods.join(" ")),
                );
            }
        }
        for (i, path) in http.value.paths.iter().flatten().enumerate() {
            let pp = hp.key("paths").idx(i);
            let span = self.near(&pp);
            let exact = path.exact.as_deref().unwrap_or("");
            let prefix = path.prefix.as_deref().unwrap_or("");
            if !exact.is_empty() && !prefix.is_empty() {
                self.err(
                    span,
                    &pp,
                    "Invalid path match. Both 'exact' and 'prefix' are set",
                );
                continue;
            }
            let v = if exact.is_empty() { prefix } else { exact };
            if v.is_empty() {
                self.err(
                    span,
                    &pp,
                    "Invalid path match. Either 'exact' or 'prefix' must be set",
                );
            } else if !v.starts_with('/') || v.contains(['?', ' ', '#']) {
                self.err(
                    span,
                    &pp,
                    format!("Invalid path {v}. (must start with `/` and not contain `?` or `#`"),
                );
            }
        }
    }

    // -----------------------------------------------------------------------------
    // Tier

    fn tier(&mut self, res: &Resource, spec: &TierSpec) {
        let sp = Path::root("spec");
        let action = spec.default_action.as_ref();
        if let Some(a) = action {
            if !matches!(a.value.as_str(), "Pass" | "Deny") {
                self.unsupported(
                    a.span,
                    &sp.key("defaultAction"),
                    &a.value,
                    &["Pass", "Deny"],
                );
            }
        }
        // (order, default action) of the reserved tiers; defaultAction defaults to Deny.
        let reserved = match res.metadata.name() {
            "default" => Some((1_000_000.0, "1000000", "Deny")),
            "kube-admin" => Some((1000.0, "1000", "Pass")),
            "kube-baseline" => Some((10_000_000.0, "10000000", "Pass")),
            _ => None,
        };
        let Some((order, order_text, want)) = reserved else {
            return;
        };
        let name = res.metadata.name();
        // Where to point when a field is missing: the `spec:` key, else the name.
        let name_span = self
            .ctx
            .key_span(&sp)
            .or(res.metadata.name.as_ref().map(|n| n.span))
            .unwrap_or(self.doc);
        if spec.order.as_ref().is_none_or(|o| o.value != order) {
            let span = spec.order.as_ref().map(|o| o.span).unwrap_or(name_span);
            self.err(
                span,
                &sp.key("order"),
                format!("{name} tier order must be {order_text}"),
            );
        }
        let got = action.map(|a| a.value.as_str()).unwrap_or("Deny");
        if got != want {
            let span = action.map(|a| a.span).unwrap_or(name_span);
            let defaulted = if action.is_none() {
                " (it defaults to Deny)"
            } else {
                ""
            };
            self.err(
                span,
                &sp.key("defaultAction"),
                format!("The '{name}' tier must have default action '{want}'{defaulted}"),
            );
        }
    }

    // -----------------------------------------------------------------------------
    // Network sets and host endpoints

    fn network_set(&mut self, _res: &Resource, spec: &NetworkSetSpec) {
        let path = Path::root("spec").key("nets");
        for (i, n) in spec.nets.iter().flatten().enumerate() {
            match parse_net(&n.value) {
                Err(why) => self.err(n.span, &path.idx(i), format!("invalid CIDR: {why}")),
                Ok(w) if w.host_bits_set() => self.warn(
                    n.span,
                    &path.idx(i),
                    format!(
                        "{:?} has host bits set; the set holds the whole network {}",
                        n.value,
                        w.network()
                    ),
                ),
                Ok(_) => {}
            }
        }
    }

    fn host_endpoint(&mut self, spec: &HostEndpointSpec) {
        let sp = Path::root("spec");
        let spec_span = self.key_or_near(&sp);
        match &spec.node {
            Some(n) if !n.value.is_empty() => {
                for p in names::dns1123_subdomain(&n.value) {
                    self.err(n.span, &sp.key("node"), p);
                }
            }
            Some(n) => self.err(n.span, &sp.key("node"), "node must be specified"),
            None => self.err(spec_span, &sp.key("node"), "node must be specified"),
        }
        let iface = spec.interface_name.as_ref().filter(|i| !i.value.is_empty());
        let ips = spec.expected_ips.as_ref().filter(|l| !l.is_empty());
        if iface.is_none() && ips.is_none() {
            self.err(
                spec_span,
                &sp,
                "at least one of interfaceName or expectedIPs must be specified",
            );
        }
        if let Some(i) = iface {
            let ok = i.value == "*"
                || (i.value.len() <= 15
                    && i.value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')));
            if !ok {
                self.err(
                    i.span,
                    &sp.key("interfaceName"),
                    "invalid interface name: 1 to 15 characters from a-z, A-Z, 0-9, '_', '.', '-', or \"*\" for every interface",
                );
            }
        }
        for (i, ip) in spec.expected_ips.iter().flatten().enumerate() {
            if parse_ip(&ip.value).is_none() {
                let hint = if parse_net(&ip.value).is_ok() {
                    " (expectedIPs are single addresses, not CIDRs)"
                } else {
                    ""
                };
                self.err(
                    ip.span,
                    &sp.key("expectedIPs").idx(i),
                    format!("invalid IP address {:?}{hint}", ip.value),
                );
            }
        }
        for (i, prof) in spec.profiles.iter().flatten().enumerate() {
            for p in names::calico_name(CalicoNameRule::Subdomain, &prof.value) {
                self.err(prof.span, &sp.key("profiles").idx(i), p);
            }
        }
        for (i, port) in spec.ports.iter().flatten().enumerate() {
            let pp = sp.key("ports").idx(i);
            let port = &port.value;
            if port.name.value.is_empty() {
                self.err(port.name.span, &pp.key("name"), "required field missing");
            }
            for p in port_name_problems(&port.name.value) {
                self.err(port.name.span, &pp.key("name"), p);
            }
            if let Some(pr) = self.protocol(&pp.key("protocol"), &port.protocol) {
                if !pr.supports_ports() {
                    self.err(
                        port.protocol.span,
                        &pp.key("protocol"),
                        "EndpointPort protocol does not support ports.",
                    );
                }
            }
            if !(1..=65535).contains(&port.port.value) {
                self.err(
                    port.port.span,
                    &pp.key("port"),
                    "must be between 1 and 65535, inclusive",
                );
            }
        }
    }

    // -----------------------------------------------------------------------------
    // GlobalThreatFeed

    /// FelixConfiguration: the CRD's CEL rules and libcalico-go's `ProtoPort`
    /// checks (protocol tcp/udp/sctp, port 0..65535, `net` a CIDR or address).
    fn felix_configuration(&mut self, res: &Resource, spec: &FelixConfigurationSpec) {
        let sp = Path::root("spec");
        let name = res.metadata.name();
        let per_node = name == "default" || name.starts_with("node.");
        match &spec.node_selector {
            Some(sel) if per_node => self.err(
                sel.span,
                &sp.key("nodeSelector"),
                "nodeSelector must not be set on the 'default' or per-node ('node.*') FelixConfiguration",
            ),
            // Decision `felix-configuration-scope`.
            Some(sel) => self.err(
                sel.span,
                &sp.key("nodeSelector"),
                "selector-scoped FelixConfiguration is not supported by policylab: use `default` or `node.<name>`",
            ),
            None if !per_node => {
                if let Some(n) = &res.metadata.name {
                    self.err(
                        n.span,
                        &Path::root("metadata").key("name"),
                        format!("FelixConfiguration `{name}` applies to no node: Felix reads only `default` and `node.<name>`"),
                    );
                }
            }
            None => {}
        }
        // Values that would change a probe or a log line and that policylab does
        // not model are rejected, never listed as "no effect".
        let unmodelled =
            "policylab does not model this value (it would change what probes or log lines show)";
        for (field, value, ok) in [
            (
                "iptablesFilterDenyAction",
                &spec.iptables_filter_deny_action,
                &["", "drop"][..],
            ),
            (
                "nftablesFilterDenyAction",
                &spec.nftables_filter_deny_action,
                &["", "drop"][..],
            ),
            ("interfacePrefix", &spec.interface_prefix, &["", "cali"][..]),
            ("ipForwarding", &spec.ip_forwarding, &["enabled"][..]),
        ] {
            if let Some(v) = value {
                if !ok.contains(&v.value.to_ascii_lowercase().as_str()) {
                    self.err(
                        v.span,
                        &sp.key(field),
                        format!("`{}`: {unmodelled}", v.value),
                    );
                }
            }
        }
        for (field, value, ok) in [
            ("ipv6Support", &spec.ipv6_support, true),
            (
                "disableConntrackInvalidCheck",
                &spec.disable_conntrack_invalid_check,
                false,
            ),
            ("bpfEnabled", &spec.bpf_enabled, false),
        ] {
            if let Some(v) = value {
                if v.value != ok {
                    self.err(
                        v.span,
                        &sp.key(field),
                        format!("`{}`: {unmodelled}", v.value),
                    );
                }
            }
        }
        if let Some(v) = &spec.log_action_rate_limit {
            self.err(
                v.span,
                &sp.key("logActionRateLimit"),
                format!("`{}`: {unmodelled}", v.value),
            );
        }
        if let Some(p) = &spec.log_prefix {
            if p.value.contains('%') {
                self.err(
                    p.span,
                    &sp.key("logPrefix"),
                    "the %t, %k, %n and %p specifiers are not supported by policylab",
                );
            }
        }
        if let (Some(r), Some(_)) = (&spec.route_table_range, &spec.route_table_ranges) {
            self.err(
                r.span,
                &sp,
                "routeTableRange and routeTableRanges cannot both be set",
            );
        }
        if let Some(r) = &spec.route_table_range {
            let v = &r.value;
            if !(v.min >= 1 && v.max >= v.min && v.max <= 250) {
                self.err(
                    r.span,
                    &sp.key("routeTableRange"),
                    "must be a range of route table indices within 1..250",
                );
            }
        }
        for (i, r) in spec.route_table_ranges.iter().flatten().enumerate() {
            let p = sp.key("routeTableRanges").idx(i);
            if r.value.min < 1 {
                self.err(r.span, &p, "min must be >= 1");
            }
            if r.value.min > r.value.max {
                self.err(r.span, &p, "min must not be greater than max");
            }
        }
        for (field, value, v6) in [
            ("natOutgoingAddress", &spec.nat_outgoing_address, false),
            (
                "deviceRouteSourceAddress",
                &spec.device_route_source_address,
                false,
            ),
            (
                "deviceRouteSourceAddressIPv6",
                &spec.device_route_source_address_ipv6,
                true,
            ),
        ] {
            let Some(a) = value else { continue };
            if a.value.is_empty() {
                continue;
            }
            let ok = parse_ip(&a.value).is_some_and(|ip| ip.is_ipv6() == v6);
            if !ok {
                let fam = if v6 { "IPv6" } else { "IPv4" };
                self.err(
                    a.span,
                    &sp.key(field),
                    format!("{field} must be a valid {fam} address"),
                );
            }
        }
        for (field, list) in [
            (
                "failsafeInboundHostPorts",
                &spec.failsafe_inbound_host_ports,
            ),
            (
                "failsafeOutboundHostPorts",
                &spec.failsafe_outbound_host_ports,
            ),
        ] {
            for (i, pp) in list.iter().flatten().enumerate() {
                let p = sp.key(field).idx(i);
                if let Some(proto) = &pp.value.protocol {
                    let ok = ["tcp", "udp", "sctp"]
                        .iter()
                        .any(|x| proto.value.eq_ignore_ascii_case(x));
                    if !ok {
                        self.unsupported(
                            proto.span,
                            &p.key("protocol"),
                            &proto.value,
                            &["TCP", "UDP", "SCTP"],
                        );
                    }
                }
                let port = &pp.value.port;
                if !(0..=65535).contains(&port.value) {
                    self.err(
                        port.span,
                        &p.key("port"),
                        format!("port {} out of range 0..65535", port.value),
                    );
                }
                if let Some(net) = &pp.value.net {
                    if let Err(e) = parse_net(&net.value) {
                        self.err(net.span, &p.key("net"), e);
                    }
                }
            }
        }
    }

    fn threat_feed(&mut self, spec: &ThreatFeedSpec) {
        let sp = Path::root("spec");
        for (field, value, allowed) in [
            ("content", &spec.content, &["IPSet", "DomainNameSet"][..]),
            ("mode", &spec.mode, &["Enabled", "Disabled"][..]),
            ("feedType", &spec.feed_type, &["Builtin", "Custom"][..]),
        ] {
            if let Some(v) = value {
                if !allowed.contains(&v.value.as_str()) {
                    self.unsupported(v.span, &sp.key(field), &v.value, allowed);
                }
            }
        }
        if let Some(d) = &spec.description {
            let n = d.value.chars().count();
            if n > 256 {
                self.err(
                    d.span,
                    &sp.key("description"),
                    format!("Too long: may not be more than 256 characters (it has {n})"),
                );
            }
        }
        if let Some(g) = &spec.global_network_set {
            let gp = sp.key("globalNetworkSet");
            if spec
                .content
                .as_ref()
                .is_some_and(|c| c.value == "DomainNameSet")
            {
                let span = self.key_or_near(&gp);
                self.err(
                    span,
                    &gp,
                    "DomainNameSet does not support syncing with a GlobalNetworkSet",
                );
            }
            if spec.pull.is_none() {
                let span = self.key_or_near(&gp);
                self.err(span, &gp, "a feed synced into a GlobalNetworkSet needs spec.pull (there is nothing to sync without it)");
            }
            if let Some(labels) = &g.value.labels {
                self.labels(&gp.key("labels"), labels, true);
            }
        }
        let Some(pull) = &spec.pull else { return };
        let pp = sp.key("pull");
        if let Some(period) = &pull.value.period {
            let path = pp.key("period");
            match parse_go_duration(&period.value) {
                None => self.err(
                    period.span,
                    &path,
                    format!("invalid duration {:?}: expected a Go duration such as 24h, 30m or 1h30m (policylab does not fall back to the default 24h)", period.value),
                ),
                Some(d) if d < std::time::Duration::from_secs(300) => self.err(
                    period.span,
                    &path,
                    format!("{:?} is below the minimum pull period 5m", period.value),
                ),
                Some(_) => {}
            }
        }
        let Some(http) = &pull.value.http else {
            let span = self.key_or_near(&pp);
            self.err(span, &pp.key("http"), "required field missing");
            return;
        };
        let hp = pp.key("http");
        match &http.value.url {
            None => {
                let span = self.key_or_near(&hp);
                self.err(span, &hp.key("url"), "required field missing");
            }
            Some(u) => {
                let rest = u
                    .value
                    .strip_prefix("https://")
                    .or_else(|| u.value.strip_prefix("http://"));
                match rest {
                    None => self.err(
                        u.span,
                        &hp.key("url"),
                        "should match '^https?://' (only http and https feeds can be pulled)",
                    ),
                    Some(r) if r.split(['/', '?', '#']).next().unwrap_or("").is_empty() => {
                        self.err(u.span, &hp.key("url"), "invalid URL: no host")
                    }
                    Some(_) => {}
                }
            }
        }
        if let Some(fmt) = &http.value.format {
            let fp = hp.key("format");
            let f = &fmt.value;
            let count = [
                f.newline_delimited.is_some(),
                f.json.is_some(),
                f.csv.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if count > 1 {
                self.err(
                    self.field_span(&fp, fmt.span),
                    &fp,
                    "only one format type may be specified",
                );
            }
            if let Some(j) = &f.json {
                if j.path.as_ref().is_none_or(|p| p.value.is_empty()) {
                    let span = self.key_or_near(&fp.key("json"));
                    self.err(span, &fp.key("json").key("path"), "required field missing");
                }
            }
            if let Some(c) = &f.csv {
                let cp = fp.key("csv");
                let name = c.field_name.as_ref().filter(|n| !n.value.is_empty());
                match (&c.field_num, name) {
                    (Some(_), Some(n)) => {
                        self.err(n.span, &cp, "fieldNum and fieldName are mutually exclusive")
                    }
                    (None, None) => {
                        let span = self.key_or_near(&cp);
                        self.err(span, &cp, "one of fieldNum or fieldName is required");
                    }
                    _ => {}
                }
                for (field, d) in [
                    ("columnDelimiter", &c.column_delimiter),
                    ("commentDelimiter", &c.comment_delimiter),
                ] {
                    if let Some(d) = d {
                        if d.value.chars().count() > 1 {
                            self.err(d.span, &cp.key(field), "must be a single character");
                        }
                    }
                }
                if c.record_size.is_some_and(|n| n <= 0) {
                    let span = self.near(&cp.key("recordSize"));
                    self.err(span, &cp.key("recordSize"), "must be greater than 0");
                }
            }
        }
        for (i, h) in http.value.headers.iter().flatten().enumerate() {
            if h.value.value.is_some() && h.value.value_from.is_some() {
                self.err(
                    h.span,
                    &hp.key("headers").idx(i),
                    "value and valueFrom are mutually exclusive",
                );
            }
        }
    }

    // -----------------------------------------------------------------------------
    // Kubernetes kinds

    fn label_selector(&mut self, path: &Path, sel: &LabelSelector) {
        if let Some(ml) = &sel.match_labels {
            self.labels(&path.key("matchLabels"), ml, false);
        }
        for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
            let rp = path.key("matchExpressions").idx(i);
            let r = &req.value;
            for p in names::qualified_name(&r.key.value) {
                self.err(r.key.span, &rp.key("key"), p);
            }
            let has_values = r.values.as_ref().is_some_and(|v| !v.is_empty());
            match r.operator.value.as_str() {
                "In" | "NotIn" => {
                    if !has_values {
                        self.err(
                            r.operator.span,
                            &rp.key("values"),
                            "must be specified when `operator` is 'In' or 'NotIn'",
                        );
                    }
                }
                "Exists" | "DoesNotExist" => {
                    if has_values {
                        let span = self.key_or_near(&rp.key("values"));
                        self.err(
                            span,
                            &rp.key("values"),
                            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                        );
                    }
                }
                other => self.unsupported(
                    r.operator.span,
                    &rp.key("operator"),
                    other,
                    &["In", "NotIn", "Exists", "DoesNotExist"],
                ),
            }
            for (j, v) in r.values.iter().flatten().enumerate() {
                for p in names::label_value(v) {
                    let span = self.near(&rp.key("values").idx(j));
                    self.err(span, &rp.key("values").idx(j), p);
                }
            }
        }
    }

    fn k8s_network_policy(&mut self, spec: &K8sNetworkPolicySpec) {
        let sp = Path::root("spec");
        if let Some(ps) = &spec.pod_selector {
            self.label_selector(&sp.key("podSelector"), ps);
        }
        for (i, t) in spec.policy_types.iter().flatten().enumerate() {
            if !matches!(t.value.as_str(), "Ingress" | "Egress") {
                self.unsupported(
                    t.span,
                    &sp.key("policyTypes").idx(i),
                    &t.value,
                    &["Ingress", "Egress"],
                );
            }
        }
        for (i, r) in spec.ingress.iter().flatten().enumerate() {
            let rp = sp.key("ingress").idx(i);
            self.k8s_ports(&rp.key("ports"), r.value.ports.as_deref().unwrap_or(&[]));
            self.k8s_peers(&rp.key("from"), r.value.from.as_deref().unwrap_or(&[]));
        }
        for (i, r) in spec.egress.iter().flatten().enumerate() {
            let rp = sp.key("egress").idx(i);
            self.k8s_ports(&rp.key("ports"), r.value.ports.as_deref().unwrap_or(&[]));
            self.k8s_peers(&rp.key("to"), r.value.to.as_deref().unwrap_or(&[]));
        }
    }

    /// AdminNetworkPolicy / BaselineAdminNetworkPolicy: the CRDs' CEL rules and the
    /// label selectors (the schema has done the rest).
    fn admin_policy(&mut self, res: &Resource, spec: &AdminPolicySpec) {
        let sp = Path::root("spec");
        if res.kind == Kind::BaselineAdminNetworkPolicy {
            if let Some(n) = &res.metadata.name {
                if n.value != "default" {
                    self.err(
                        n.span,
                        &Path::root("metadata").key("name"),
                        "Only one baseline admin network policy with metadata.name=\"default\" can be created in the cluster",
                    );
                }
            }
        }
        if let Some(s) = &spec.subject {
            self.admin_peer(&sp.key("subject"), s, &["namespaces", "pods"]);
        }
        for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
            let rules = if dir == "ingress" {
                &spec.ingress
            } else {
                &spec.egress
            };
            for (i, r) in rules.iter().flatten().enumerate() {
                let rp = sp.key(dir).idx(i);
                let list = if dir == "ingress" {
                    &r.value.from
                } else {
                    &r.value.to
                };
                let fields: &[&str] = if dir == "ingress" {
                    &["namespaces", "pods"]
                } else {
                    &["namespaces", "pods", "networks", "nodes"]
                };
                for (j, peer) in list.iter().flatten().enumerate() {
                    self.admin_peer(&rp.key(peers).idx(j), peer, fields);
                }
                for (j, port) in r.value.ports.iter().flatten().enumerate() {
                    let pp = rp.key("ports").idx(j);
                    let p = &port.value;
                    let set = usize::from(p.port_number.is_some())
                        + usize::from(p.port_range.is_some())
                        + usize::from(p.named_port.is_some());
                    self.exactly_one(
                        port.span,
                        &pp,
                        set,
                        &["portNumber", "portRange", "namedPort"],
                    );
                    if let Some(range) = &port.value.port_range {
                        if range.value.start.value >= range.value.end.value {
                            self.err(
                                range.value.start.span,
                                &pp.key("portRange"),
                                "Start port must be less than End port",
                            );
                        }
                    }
                    if let Some(n) = &port.value.named_port {
                        for why in port_name_problems(&n.value) {
                            self.err(n.span, &pp.key("namedPort"), why);
                        }
                    }
                }
            }
        }
    }

    /// The CRDs' `minProperties: 1` / `maxProperties: 1` on a subject, peer or port.
    fn exactly_one(&mut self, span: Span, path: &Path, set: usize, fields: &[&str]) {
        if set != 1 {
            self.err(
                span,
                path,
                format!(
                    "exactly one of {} must be set, found {set}",
                    fields.join(", ")
                ),
            );
        }
    }

    fn admin_peer(&mut self, path: &Path, spanned: &Spanned<AdminPeer>, fields: &[&str]) {
        let peer = &spanned.value;
        let set = usize::from(peer.namespaces.is_some())
            + usize::from(peer.pods.is_some())
            + usize::from(peer.networks.is_some())
            + usize::from(peer.nodes.is_some());
        self.exactly_one(spanned.span, path, set, fields);
        if let Some(n) = &peer.namespaces {
            self.label_selector(&path.key("namespaces"), n);
        }
        if let Some(p) = &peer.pods {
            let pp = path.key("pods");
            self.label_selector(&pp.key("namespaceSelector"), &p.namespace_selector);
            self.label_selector(&pp.key("podSelector"), &p.pod_selector);
        }
        if let Some(n) = &peer.nodes {
            self.label_selector(&path.key("nodes"), &n.value);
        }
        for (i, net) in peer.networks.iter().flatten().enumerate() {
            if !parse_net(&net.value).is_ok_and(|n| n.has_prefix) {
                self.err(
                    net.span,
                    &path.key("networks").idx(i),
                    "Invalid CIDR format provided",
                );
            }
        }
    }

    fn k8s_protocol(&mut self, path: &Path, p: &Option<Spanned<String>>) {
        if let Some(p) = p {
            if !matches!(p.value.as_str(), "TCP" | "UDP" | "SCTP") {
                self.unsupported(p.span, path, &p.value, &["TCP", "UDP", "SCTP"]);
            }
        }
    }

    fn k8s_ports(&mut self, path: &Path, ports: &[Spanned<K8sPort>]) {
        for (i, port) in ports.iter().enumerate() {
            let pp = path.idx(i);
            let p = &port.value;
            self.k8s_protocol(&pp.key("protocol"), &p.protocol);
            let numeric = match &p.port {
                None => None,
                Some(v) => match &v.value {
                    IntOrString::Int(n) => {
                        if !(1..=65535).contains(n) {
                            self.err(
                                v.span,
                                &pp.key("port"),
                                "must be between 1 and 65535, inclusive",
                            );
                        }
                        Some(*n)
                    }
                    IntOrString::Str(s) => {
                        for why in port_name_problems(s) {
                            self.err(v.span, &pp.key("port"), why);
                        }
                        None
                    }
                },
            };
            if let Some(end) = &p.end_port {
                let ep = pp.key("endPort");
                match (&p.port, numeric) {
                    (None, _) => self.err(
                        end.span,
                        &ep,
                        "may not be specified when `port` is not specified",
                    ),
                    (Some(_), None) => self.err(
                        end.span,
                        &ep,
                        "may not be specified when `port` is non-numeric",
                    ),
                    (Some(_), Some(start)) => {
                        if end.value < start {
                            self.err(
                                end.span,
                                &ep,
                                format!("must be greater than or equal to `port` ({start})"),
                            );
                        } else if end.value > 65535 {
                            self.err(end.span, &ep, "must be between 1 and 65535, inclusive");
                        }
                    }
                }
            }
        }
    }

    fn k8s_peers(&mut self, path: &Path, peers: &[Spanned<K8sPeer>]) {
        for (i, peer) in peers.iter().enumerate() {
            let pp = path.idx(i);
            let p = &peer.value;
            if let Some(s) = &p.pod_selector {
                self.label_selector(&pp.key("podSelector"), s);
            }
            if let Some(s) = &p.namespace_selector {
                self.label_selector(&pp.key("namespaceSelector"), s);
            }
            match &p.ip_block {
                Some(b) => {
                    if p.pod_selector.is_some() || p.namespace_selector.is_some() {
                        self.err(
                            self.field_span(&pp.key("ipBlock"), b.span),
                            &pp,
                            "may not specify both ipBlock and another peer",
                        );
                    }
                    self.ip_block(&pp.key("ipBlock"), &b.value);
                }
                None => {
                    if p.pod_selector.is_none() && p.namespace_selector.is_none() {
                        self.err(peer.span, &pp, "must specify a peer");
                    }
                }
            }
        }
    }

    fn ip_block(&mut self, path: &Path, b: &IpBlock) {
        const MSG: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";
        let cidr = match parse_net(&b.cidr.value) {
            Ok(w) if w.has_prefix => Some(w.network()),
            Ok(_) => {
                self.err(
                    b.cidr.span,
                    &path.key("cidr"),
                    format!(
                        "{MSG}; for one address write {}/{}",
                        b.cidr.value,
                        if b.cidr.value.contains(':') { 128 } else { 32 }
                    ),
                );
                None
            }
            Err(why) => {
                self.err(b.cidr.span, &path.key("cidr"), format!("{MSG}: {why}"));
                None
            }
        };
        for (i, e) in b.except.iter().flatten().enumerate() {
            let ep = path.key("except").idx(i);
            match parse_net(&e.value) {
                Ok(w) if w.has_prefix => {
                    if let Some(c) = cidr {
                        let n = w.network();
                        let inside = c.contains(&n) && n.prefix_len() > c.prefix_len();
                        if !inside {
                            self.err(
                                e.span,
                                &ep,
                                format!("must be a strict subset of `cidr` ({c})"),
                            );
                        }
                    }
                }
                Ok(_) => self.err(e.span, &ep, MSG),
                Err(why) => self.err(e.span, &ep, format!("{MSG}: {why}")),
            }
        }
    }

    fn service(&mut self, spec: &ServiceSpec) {
        let sp = Path::root("spec");
        let ty = spec
            .service_type
            .as_ref()
            .map(|t| t.value.as_str())
            .unwrap_or("ClusterIP");
        if let Some(t) = &spec.service_type {
            if t.value == "ExternalName" {
                self.err(t.span, &sp.key("type"), "ExternalName services are not supported by policylab (expected one of: ClusterIP, NodePort, LoadBalancer)");
            } else if !matches!(ty, "ClusterIP" | "NodePort" | "LoadBalancer") {
                self.unsupported(
                    t.span,
                    &sp.key("type"),
                    &t.value,
                    &["ClusterIP", "NodePort", "LoadBalancer"],
                );
            }
        }
        let exposed = matches!(ty, "NodePort" | "LoadBalancer");
        if let Some(sel) = &spec.selector {
            let path = sp.key("selector");
            for (k, v) in sel {
                let span = self.key_or_near(&path.key(k));
                for p in names::qualified_name(k) {
                    self.err(span, &path, format!("invalid label key {k:?}: {p}"));
                }
                for p in names::label_value(v) {
                    let span = self.near(&path.key(k));
                    self.err(span, &path.key(k), format!("invalid label value: {p}"));
                }
            }
        }
        if spec.ports.is_empty() {
            let span = self.key_or_near(&sp.key("ports"));
            self.err(
                span,
                &sp.key("ports"),
                "required field missing (a service needs at least one port)",
            );
        }
        let mut names_seen = BTreeSet::new();
        let mut node_ports = BTreeSet::new();
        let mut port_proto = BTreeSet::new();
        let many = spec.ports.len() > 1;
        for (i, port) in spec.ports.iter().enumerate() {
            let pp = sp.key("ports").idx(i);
            let p = &port.value;
            let proto = p
                .protocol
                .as_ref()
                .map(|x| x.value.as_str())
                .unwrap_or("TCP");
            self.k8s_protocol(&pp.key("protocol"), &p.protocol);
            match &p.name {
                Some(n) if !n.is_empty() => {
                    let span = self.near(&pp.key("name"));
                    // A Service port name is a DNS-1123 label (up to 63 characters,
                    // `ValidateDNS1123Label` in the Service validator); the
                    // 15-character IANA_SVC_NAME rule is for container ports.
                    for why in names::dns1123_label(n) {
                        self.err(span, &pp.key("name"), why);
                    }
                    if !names_seen.insert(n.clone()) {
                        self.err(span, &pp.key("name"), format!("duplicate port name {n:?}"));
                    }
                }
                _ if many => self.err(
                    port.span,
                    &pp.key("name"),
                    "required field missing (every port needs a name when there are several)",
                ),
                _ => {}
            }
            if !(1..=65535).contains(&p.port.value) {
                self.err(
                    p.port.span,
                    &pp.key("port"),
                    "must be between 1 and 65535, inclusive",
                );
            } else if !port_proto.insert((p.port.value, proto.to_string())) {
                self.err(
                    p.port.span,
                    &pp,
                    format!("duplicate port {}/{proto}", p.port.value),
                );
            }
            if let Some(t) = &p.target_port {
                match &t.value {
                    IntOrString::Int(n) if !(1..=65535).contains(n) => self.err(
                        t.span,
                        &pp.key("targetPort"),
                        "must be between 1 and 65535, inclusive",
                    ),
                    IntOrString::Int(_) => {}
                    IntOrString::Str(s) => {
                        for why in port_name_problems(s) {
                            self.err(t.span, &pp.key("targetPort"), why);
                        }
                    }
                }
            }
            if let Some(np) = &p.node_port {
                let path = pp.key("nodePort");
                if !exposed {
                    self.err(
                        np.span,
                        &path,
                        format!("may not be used when `type` is '{ty}'"),
                    );
                } else if !(30000..=32767).contains(&np.value) {
                    self.err(np.span, &path, format!("{}: provided port is not in the valid range. The range of valid ports is 30000-32767", np.value));
                } else if !node_ports.insert((np.value, proto.to_string())) {
                    self.err(
                        np.span,
                        &path,
                        format!("duplicate nodePort {}/{proto}", np.value),
                    );
                }
            }
        }
        if let Some(etp) = &spec.external_traffic_policy {
            let path = sp.key("externalTrafficPolicy");
            if !matches!(etp.value.as_str(), "Cluster" | "Local") {
                self.unsupported(etp.span, &path, &etp.value, &["Cluster", "Local"]);
            } else if !exposed {
                self.err(
                    etp.span,
                    &path,
                    "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
                );
            }
        }
        if let Some(ip) = &spec.load_balancer_ip {
            let path = sp.key("loadBalancerIP");
            if ty != "LoadBalancer" {
                self.err(
                    ip.span,
                    &path,
                    "may only be used when `type` is 'LoadBalancer'",
                );
            }
            if parse_ip(&ip.value).is_none() {
                self.err(
                    ip.span,
                    &path,
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                );
            }
        }
        if let Some(ip) = &spec.cluster_ip {
            if !ip.value.is_empty() && ip.value != "None" && parse_ip(&ip.value).is_none() {
                self.err(
                    ip.span,
                    &sp.key("clusterIP"),
                    "must be empty, 'None', or a valid IP address",
                );
            }
        }
    }

    fn pod_spec(&mut self, sp: &Path, spec: &PodSpec) {
        if spec.containers.is_empty() {
            let span = self.key_or_near(&sp.key("containers"));
            self.err(
                span,
                &sp.key("containers"),
                "required field missing (a pod needs at least one container)",
            );
        }
        for (field, sa) in [
            ("serviceAccountName", &spec.service_account_name),
            ("serviceAccount", &spec.service_account),
        ] {
            if let Some(sa) = sa {
                for p in names::dns1123_subdomain(&sa.value) {
                    self.err(sa.span, &sp.key(field), p);
                }
            }
        }
        let mut seen = BTreeSet::new();
        for (c, container) in spec.containers.iter().enumerate() {
            for (i, port) in container.ports.iter().enumerate() {
                let pp = sp.key("containers").idx(c).key("ports").idx(i);
                let p = &port.value;
                if !(1..=65535).contains(&p.container_port.value) {
                    self.err(
                        p.container_port.span,
                        &pp.key("containerPort"),
                        "must be between 1 and 65535, inclusive",
                    );
                }
                self.k8s_protocol(&pp.key("protocol"), &p.protocol);
                if let Some(n) = &p.name {
                    for why in port_name_problems(&n.value) {
                        self.err(n.span, &pp.key("name"), why);
                    }
                    if !seen.insert(n.value.clone()) {
                        self.err(
                            n.span,
                            &pp.key("name"),
                            format!("duplicate port name {:?}", n.value),
                        );
                    }
                }
            }
        }
    }

    fn deployment(&mut self, spec: &DeploymentSpec) {
        let sp = Path::root("spec");
        if let Some(r) = &spec.replicas {
            if r.value < 0 {
                self.err(
                    r.span,
                    &sp.key("replicas"),
                    "must be greater than or equal to 0",
                );
            }
        }
        let labels = spec.template.metadata.labels();
        if let Some(l) = &spec.template.metadata.labels {
            self.labels(&sp.key("template").key("metadata").key("labels"), l, false);
        }
        match &spec.selector {
            None => {
                let span = self.key_or_near(&sp);
                self.err(span, &sp.key("selector"), "required field missing");
            }
            Some(sel) => {
                self.label_selector(&sp.key("selector"), sel);
                let empty = sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
                    && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty());
                if empty {
                    let span = self.key_or_near(&sp.key("selector"));
                    self.err(
                        span,
                        &sp.key("selector"),
                        "empty selector is invalid for deployment",
                    );
                } else if !label_selector_matches(sel, &labels) {
                    let lp = sp.key("template").key("metadata").key("labels");
                    let span = self.ctx.key_span(&lp).unwrap_or_else(|| self.near(&lp));
                    self.err(span, &lp, "selector does not match template labels");
                }
            }
        }
        self.pod_spec(&sp.key("template").key("spec"), &spec.template.spec);
    }
}

/// Kubernetes label-selector semantics (matchLabels AND matchExpressions).
pub fn label_selector_matches(sel: &LabelSelector, labels: &Labels) -> bool {
    let ml = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(&v.value));
    let me = sel.match_expressions.iter().flatten().all(|r| {
        let r = &r.value;
        let got = labels.get(&r.key.value);
        let values = r.values.as_deref().unwrap_or(&[]);
        match r.operator.value.as_str() {
            "In" => got.is_some_and(|g| values.contains(g)),
            "NotIn" => got.is_none_or(|g| !values.contains(g)),
            "Exists" => got.is_some(),
            "DoesNotExist" => got.is_none(),
            _ => false,
        }
    });
    ml && me
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
