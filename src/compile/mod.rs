//! This module deals with rendering policy for the kernel: it compiles a resolved
//! [`World`] into one nftables table per node namespace, in Calico's layout, so
//! that the kernel reproduces the reference model ([`crate::model`]) probe for
//! probe, including who decided.
//!
//! Input: a [`World`]. Output: [`Compiled`]: per node an [`nft::Table`] (family
//! `inet`, named [`TABLE`]) and the NFLOG legend that decodes the kernel's log
//! prefixes into (node, stage, [`Decider`]).
//!
//! # Layout (per node; mirrors `model::path`, one stage per chain)
//! Base chains, in hook order:
//! - `raw-PREROUTING` (prerouting, −300): ICMPv6 ND accept; `iifname eth0` → the
//!   eth0 host endpoint's untracked ingress chain `cali-ufh-eth0` (only when it has
//!   doNotTrack policy).
//! - `raw-OUTPUT` (output, −300): the no-endpoint service checks for host sources
//!   (`kube-noep`, kube-proxy decides before any policy, decision `service-endpoint-choice`), then
//!   `oifname eth0` → `cali-uth-eth0` (untracked egress).
//! - `mangle-PREROUTING` (prerouting, −150): established accept; accept mark set
//!   (untracked allow) → accept; `iifname eth0` → `cali-dfh-eth0` (pre-DNAT).
//! - `nat-PREROUTING` / `nat-OUTPUT` (−100) → `kube-services` (DNAT, decision `service-endpoint-choice`;
//!   masquerade mark for `Cluster` NodePort/LB traffic, decision `service-snat`).
//! - `filter-INPUT` (0): conntrack fast path (established/related accept, invalid
//!   drop = untracked reply, decision `untracked-reply-check`); `lo` accept; `kube-noep`; from a pod:
//!   `cali-from-wl-dispatch` (egress) then endpoint-to-host accept; accept mark →
//!   accept (decision `accept-mark-skips-hep`); `eth0` → `cali-fh-eth0` (host normal ingress) or, without
//!   a host endpoint, not policed.
//! - `filter-FORWARD` (0): fast path; `kube-noep`; mark the packet forwarded;
//!   `iifname eth0` without the accept mark → `cali-fhfw-eth0`; `iifname cali*` →
//!   `cali-from-wl-dispatch`; `oifname eth0` → `cali-thfw-eth0`.
//! - `filter-OUTPUT` (0): fast path; to `lo` or a pod: not policed (decision `host-to-local-not-policed`);
//!   accept mark → accept; `oifname eth0` → `cali-th-eth0`.
//! - `filter-POSTROUTING` (postrouting, 110, after source NAT so that workload
//!   ingress sees the masqueraded client as the model does): forwarded packets to a
//!   pod → `cali-to-wl-dispatch` (ingress); untracked packets → `cali-untracked-to-wl`:
//!   a request (TCP SYN, ICMP echo request) gets its ingress policy and is then
//!   dropped (decision `untracked-reply-check`), anything else is an untracked reply and accepted.
//! - `nat-POSTROUTING` (100): masquerade-marked packets → `snat` to the node address.
//!
//! Endpoint chains (`cali-tw-<iface>`, `cali-fw-<iface>` for pods, dispatched with
//! interface verdict maps; `cali-fh-`, `cali-th-`, `cali-fhfw-`, `cali-thfw-`,
//! `cali-ufh-`, `cali-uth-`, `cali-dfh-` + `eth0` for the host endpoint) follow
//! docs/semantics.md#endpoint-chains: clear the accept and pass marks; host endpoints: failsafes (decision `failsafe-stages`);
//! per tier: clear pass, `pass clear → jump <policy chain>`, `accept set → return`
//! (untracked: `notrack accept`; pre-DNAT: `accept`), end of tier `pass clear →
//! drop`; normal stages: profiles, then "no profile" drop; forward stages: default
//! forward allow (decision `default-forward-allow`).
//!
//! Policy chains: one per policy, stage and direction (the NFLOG prefix names the
//! stage): `cali-pi-`/`cali-po-` (workload), `cali-hpi-`/`cali-hpo-` (host
//! normal), `cali-fpi-`/`cali-fpo-` (host forward), `cali-upi-`/`cali-upo-` (host
//! untracked), `cali-dpi-` (pre-DNAT), + `<kind>.<ns>.<name>` or `<kind>.<name>`;
//! profiles `cali-pri-`/`cali-pro-` (`cali-hpri-`/`cali-hpro-` on host endpoints)
//! + the profile name. Names longer than 64 keep a head and end in a hash.
//!
//! Each rule: Allow → `set accept mark, NFLOG, return`; Pass → `set pass mark,
//! NFLOG, return`; Deny → `NFLOG, drop`; Log → NFLOG in [`NFLOG_GROUP_LOG_RULE`],
//! processing continues.
//!
//! Sets (docs/semantics.md#ip-sets): selector sets `cali40s-<uid>` / `cali60s-<uid>` (Calico's names),
//! hash sets when every member is a single address, interval sets when a network
//! set adds CIDRs; named ports `cali40n-…` (`address . protocol . port`); service
//! matches `cali40svc-…` / `cali40svcnoport-…`; `cali40all-pods` (kube-proxy's "from a
//! pod").
//!
//! # Marks
//! [`MARK_ACCEPT`] 0x10000 and [`MARK_PASS`] 0x20000 (Calico's defaults, docs/semantics.md#marks),
//! [`MARK_FORWARDED`] 0x80000 (set in FORWARD, read in POSTROUTING),
//! [`MARK_MASQ`] 0x4000 (kube-proxy's masquerade bit).
//!
//! # Attribution
//! Every rule that decides carries `log prefix "<p>" group <g>`: group 1
//! ([`NFLOG_GROUP_DENY`]) for drops (deny rules, end of tier, no profile, no local
//! service endpoint, untracked reply), group 2 ([`NFLOG_GROUP_ALLOW`])
//! for allows and passes (allow and pass rules, profile allows, failsafe in filter,
//! default forward allow, endpoint to host, not policed). Log-action rules use
//! group 3 ([`NFLOG_GROUP_LOG_RULE`]); rejects (a service without any endpoint) use
//! group 4 ([`NFLOG_GROUP_REJECT`]). The probe's "dropped by" listens to group 1
//! only. `ct state invalid` drops are tagged `UntrackedReply` at stage
//! `HostUntrackedIngress` (INPUT, FORWARD) or `HostUntrackedEgress` (OUTPUT); the
//! drop of an untracked request reaching a pod at `WorkloadIngress`. The
//! prefix is `pl` + 14 characters of a hash of the tag; [`Compiled::decode`]
//! turns it back into a [`LogTag`]. Tracked chains only see the first packet of a
//! connection (conntrack fast path), so a probe yields one log per deciding stage;
//! untracked (raw) chains see every packet and log each one.
//!
//! Guarantees: pure and deterministic (chains sorted by name after the base chains,
//! sets sorted by name); never panics on a resolved world.

mod names;
mod rules;

use std::collections::BTreeMap;
use std::net::IpAddr;

pub use names::{chain_name, endpoint_chain, policy_id, MAX_CHAIN_NAME};
use rules::{failsafe_matches, rule_alternatives, target_port, Sets};

use crate::lab::calico_host_iface;
use crate::model::{Decider, StageKind};
use crate::nft::{
    self, BaseChain, Chain, ChainType, Dir, Family, Hook, Match, Name, Rule, Statement, Table,
    Verdict,
};
use crate::resolve::{Action, Direction, EndpointKind, EndpointToHostAction, StageClass, World};

/// The table every node gets (family `inet`).
pub const TABLE: &str = "policylab";
/// NFLOG group of every rule that drops or rejects (deny, end of tier, no
/// profile, no service endpoint, untracked reply): a probe's "dropped by".
pub const NFLOG_GROUP_DENY: u16 = 1;
/// NFLOG group of every rule that allows or passes (allow, pass, profile allow,
/// failsafe, default forward allow, endpoint to host, not policed).
pub const NFLOG_GROUP_ALLOW: u16 = 2;
/// NFLOG group of Log-action rules (they become `calico-packet:` lines).
pub const NFLOG_GROUP_LOG_RULE: u16 = 3;
/// NFLOG group of rules that reject (a service without endpoints: the client sees
/// a refusal, not a timeout, so a drop listener must not claim it).
pub const NFLOG_GROUP_REJECT: u16 = 4;

/// The NFLOG group of a rule with this action.
pub fn action_group(action: Action) -> u16 {
    match action {
        Action::Deny => NFLOG_GROUP_DENY,
        Action::Allow | Action::Pass => NFLOG_GROUP_ALLOW,
        Action::Log => NFLOG_GROUP_LOG_RULE,
    }
}
/// Calico's accept mark (docs/semantics.md#marks).
pub const MARK_ACCEPT: u32 = 0x10000;
/// Calico's pass mark (docs/semantics.md#marks).
pub const MARK_PASS: u32 = 0x20000;
/// Set in filter FORWARD; filter POSTROUTING only polices forwarded packets.
pub const MARK_FORWARDED: u32 = 0x80000;
/// kube-proxy's masquerade mark: NodePort/LoadBalancer traffic under `Cluster`.
pub const MARK_MASQ: u32 = 0x4000;
/// The uplink every node has (the model's only host-endpoint interface).
pub const UPLINK: &str = "eth0";
/// ICMPv6 neighbour discovery and MLD types, always accepted (as Calico does).
const ICMPV6_ND: [u8; 8] = [130, 131, 132, 133, 134, 135, 136, 143];

/// What one NFLOG prefix stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTag {
    /// The node (namespace) whose table holds the rule.
    pub node: String,
    pub stage: StageKind,
    pub decider: Decider,
    /// [`NFLOG_GROUP_DENY`], [`NFLOG_GROUP_ALLOW`] or [`NFLOG_GROUP_LOG_RULE`] (a
    /// Log-action rule, not a verdict).
    pub group: u16,
}

/// The compiler's output.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// One table per node, by node name.
    pub tables: BTreeMap<String, nft::Table>,
    /// NFLOG prefix → what it stands for.
    pub legend: BTreeMap<String, LogTag>,
}

impl Compiled {
    /// Decodes a prefix as the kernel reports it (trailing spaces and NULs are
    /// ignored).
    pub fn decode(&self, prefix: &str) -> Option<&LogTag> {
        self.legend
            .get(prefix.trim_end_matches(|c: char| c == '\0' || c.is_whitespace()))
    }
}

/// Compiles every node's table. Pure and deterministic.
pub fn compile(world: &World) -> Compiled {
    let mut legend = BTreeMap::new();
    let mut tables = BTreeMap::new();
    for n in 0..world.nodes.len() {
        let table = NodeCx::new(world, n, &mut legend).table();
        tables.insert(world.nodes[n].name.clone(), table);
    }
    Compiled { tables, legend }
}

fn n(s: &str) -> Name {
    Name::new(s).unwrap_or_else(|| chain_name("cali-x-", s))
}

fn mark(mask: u32, set: bool) -> Match {
    Match::MarkBit { mask, set }
}

fn rule(matches: Vec<Match>, statements: Vec<Statement>, verdict: Option<Verdict>) -> Rule {
    Rule {
        matches,
        statements,
        verdict,
        comment: None,
    }
}

fn commented(mut r: Rule, c: impl Into<String>) -> Rule {
    let mut c: String = c.into();
    if c.len() > 120 {
        let mut cut = 117;
        while !c.is_char_boundary(cut) {
            cut -= 1;
        }
        c.truncate(cut);
        c.push_str("...");
    }
    r.comment = Some(c);
    r
}

fn ct(states: &[&'static str]) -> Match {
    Match::CtState(states.to_vec())
}

fn stage_of(class: StageClass, dir: Direction, host: bool) -> StageKind {
    match (host, class, dir) {
        (false, _, Direction::Ingress) => StageKind::WorkloadIngress,
        (false, _, Direction::Egress) => StageKind::WorkloadEgress,
        (true, StageClass::Normal, Direction::Ingress) => StageKind::HostNormalIngress,
        (true, StageClass::Normal, Direction::Egress) => StageKind::HostNormalEgress,
        (true, StageClass::Forward, Direction::Ingress) => StageKind::HostForwardIngress,
        (true, StageClass::Forward, Direction::Egress) => StageKind::HostForwardEgress,
        (true, StageClass::Untracked, Direction::Ingress) => StageKind::HostUntrackedIngress,
        (true, StageClass::Untracked, Direction::Egress) => StageKind::HostUntrackedEgress,
        (true, StageClass::PreDnat, _) => StageKind::HostPreDnat,
    }
}

struct NodeCx<'w, 'l> {
    w: &'w World,
    node: usize,
    sets: Sets<'w>,
    chains: BTreeMap<Name, Chain>,
    legend: &'l mut BTreeMap<String, LogTag>,
}

impl<'w, 'l> NodeCx<'w, 'l> {
    fn new(w: &'w World, node: usize, legend: &'l mut BTreeMap<String, LogTag>) -> Self {
        NodeCx {
            w,
            node,
            sets: Sets::new(w),
            chains: BTreeMap::new(),
            legend,
        }
    }

    fn node_name(&self) -> &'w str {
        &self.w.nodes[self.node].name
    }

    /// The NFLOG statement of one tag (registered in the legend).
    /// kube-proxy's refusal (no endpoints) or drop (none local) of a service,
    /// logged as [`Decider::NoServiceEndpoint`].
    fn no_endpoint_rule(
        &mut self,
        matches: Vec<Match>,
        group: u16,
        verdict: Verdict,
        comment: String,
    ) -> Rule {
        let log = self.log(StageKind::ServiceDnat, Decider::NoServiceEndpoint, group);
        commented(rule(matches, vec![log], Some(verdict)), comment)
    }

    fn log(&mut self, stage: StageKind, decider: Decider, group: u16) -> Statement {
        let tag = LogTag {
            node: self.node_name().to_string(),
            stage,
            decider,
            group,
        };
        let key = format!(
            "{}\u{0}{:?}\u{0}{:?}\u{0}{}",
            tag.node, tag.stage, tag.decider, tag.group
        );
        let mut salt = 0;
        let prefix = loop {
            let p = names::log_prefix(&key, salt);
            match self.legend.get(&p) {
                None => {
                    self.legend.insert(p.clone(), tag);
                    break p;
                }
                Some(t) if *t == tag => break p,
                Some(_) => salt += 1,
            }
        };
        Statement::Nflog { group, prefix }
    }

    fn add_chain(&mut self, name: Name, comment: String, rules: Vec<Rule>) {
        self.chains.insert(
            name.clone(),
            Chain {
                name,
                base: None,
                comment: Some(comment),
                rules,
            },
        );
    }

    /// The chain of one policy's rules in one direction, for one stage.
    fn policy_chain(&mut self, stage: StageKind, tier: usize, pol: usize, dir: Direction) -> Name {
        let w = self.w;
        let t = &w.tiers[tier];
        let p = &t.policies[pol];
        let name = chain_name(names::policy_prefix(stage), &policy_id(&p.id));
        if self.chains.contains_key(&name) {
            return name;
        }
        let mut out = vec![];
        for (ri, r) in p.rules(dir).iter().enumerate() {
            let action = r.action();
            let decider = Decider::Rule {
                tier: t.name.clone(),
                policy: p.id.clone(),
                rule_index: ri,
                action,
            };
            let log = self.log(stage, decider, action_group(action));
            for alt in rule_alternatives(&mut self.sets, r) {
                out.push(match action {
                    Action::Allow => rule(
                        alt,
                        vec![Statement::SetMark(MARK_ACCEPT), log.clone()],
                        Some(Verdict::Return),
                    ),
                    Action::Pass => rule(
                        alt,
                        vec![Statement::SetMark(MARK_PASS), log.clone()],
                        Some(Verdict::Return),
                    ),
                    Action::Deny => rule(alt, vec![log.clone()], Some(Verdict::Drop)),
                    Action::Log => rule(alt, vec![log.clone()], None),
                });
            }
        }
        self.add_chain(
            name.clone(),
            format!(
                "{} {} rules of {} (tier {})",
                stage.describe(),
                dir_word(dir),
                p.id,
                t.name
            ),
            out,
        );
        name
    }

    /// The chain of one profile's rules in one direction.
    fn profile_chain(
        &mut self,
        stage: StageKind,
        profile: usize,
        dir: Direction,
        host: bool,
    ) -> Name {
        let w = self.w;
        let pr = &w.profiles[profile];
        let name = names::profile_chain(&pr.name, dir, host);
        if self.chains.contains_key(&name) {
            return name;
        }
        let mut out = vec![];
        for (ri, r) in pr.rules(dir).iter().enumerate() {
            let action = r.action();
            let decider = Decider::Profile {
                name: pr.name.clone(),
                rule_index: ri,
            };
            let log = match action {
                Action::Pass => None,
                a => Some(self.log(stage, decider, action_group(a))),
            };
            for alt in rule_alternatives(&mut self.sets, r) {
                out.push(match (action, &log) {
                    (Action::Allow, Some(l)) => rule(
                        alt,
                        vec![Statement::SetMark(MARK_ACCEPT), l.clone()],
                        Some(Verdict::Return),
                    ),
                    (Action::Deny, Some(l)) => rule(alt, vec![l.clone()], Some(Verdict::Drop)),
                    (Action::Log, Some(l)) => rule(alt, vec![l.clone()], None),
                    // Pass: stop this profile, go on with the next one.
                    _ => rule(alt, vec![], Some(Verdict::Return)),
                });
            }
        }
        self.add_chain(
            name.clone(),
            format!("profile {} {} rules", pr.name, dir_word(dir)),
            out,
        );
        name
    }

    /// One endpoint's chain for one stage class and direction (docs/semantics.md#endpoint-chains).
    fn endpoint_chain(
        &mut self,
        ep: usize,
        class: StageClass,
        dir: Direction,
        iface: &str,
    ) -> Name {
        let w = self.w;
        let e = &w.endpoints[ep];
        let host = e.kind == EndpointKind::Host;
        let stage = stage_of(class, dir, host);
        let name = endpoint_chain(stage, iface);
        let mut out = vec![rule(
            vec![],
            vec![Statement::ClearMark(MARK_ACCEPT | MARK_PASS)],
            None,
        )];
        // Failsafes (docs/semantics.md#failsafe-ports, decision `failsafe-stages`).
        let felix = &w.nodes[self.node].felix;
        let (inb, outb) = (&felix.failsafe_inbound[..], &felix.failsafe_outbound[..]);
        let (failsafe, logged): (Vec<Vec<Match>>, bool) = match stage {
            StageKind::HostNormalIngress => (failsafe_matches(inb, Dir::Daddr, Dir::Saddr), true),
            StageKind::HostNormalEgress => (failsafe_matches(outb, Dir::Daddr, Dir::Daddr), true),
            StageKind::HostPreDnat => (failsafe_matches(inb, Dir::Daddr, Dir::Saddr), false),
            StageKind::HostUntrackedIngress => {
                let mut v = failsafe_matches(inb, Dir::Daddr, Dir::Saddr);
                v.extend(failsafe_matches(outb, Dir::Saddr, Dir::Saddr));
                (v, false)
            }
            StageKind::HostUntrackedEgress => {
                let mut v = failsafe_matches(outb, Dir::Daddr, Dir::Daddr);
                v.extend(failsafe_matches(inb, Dir::Saddr, Dir::Daddr));
                (v, false)
            }
            _ => (vec![], false),
        };
        for m in failsafe {
            let statements = if logged {
                vec![self.log(stage, Decider::Failsafe, NFLOG_GROUP_ALLOW)]
            } else {
                vec![]
            };
            out.push(commented(
                rule(m, statements, Some(Verdict::Accept)),
                "Failsafe",
            ));
        }
        let after_accept = match class {
            StageClass::Normal | StageClass::Forward => (vec![], Verdict::Return),
            StageClass::Untracked => (vec![Statement::Notrack], Verdict::Accept),
            StageClass::PreDnat => (vec![], Verdict::Accept),
        };
        for tp in e.plans.get(class, dir) {
            let t = &w.tiers[tp.tier];
            out.push(commented(
                rule(vec![], vec![Statement::ClearMark(MARK_PASS)], None),
                format!("Start of tier {}", t.name),
            ));
            for &pi in &tp.policies {
                let chain = self.policy_chain(stage, tp.tier, pi, dir);
                out.push(rule(
                    vec![mark(MARK_PASS, false)],
                    vec![],
                    Some(Verdict::Jump(chain)),
                ));
                out.push(commented(
                    rule(
                        vec![mark(MARK_ACCEPT, true)],
                        after_accept.0.clone(),
                        Some(after_accept.1.clone()),
                    ),
                    "Return if policy accepted",
                ));
            }
            if let (true, Some(&last)) = (tp.end_drop, tp.policies.last()) {
                let log = self.log(
                    stage,
                    Decider::EndOfTier {
                        tier: t.name.clone(),
                        policy: t.policies[last].id.clone(),
                        action: Action::Deny,
                    },
                    NFLOG_GROUP_DENY,
                );
                out.push(commented(
                    rule(vec![mark(MARK_PASS, false)], vec![log], Some(Verdict::Drop)),
                    format!("End of tier {}. Drop if no policies passed packet", t.name),
                ));
            } else if let Some(&last) = tp.policies.last() {
                // A tier whose default action is Pass: logged like an explicit
                // pass, so the kernel's flow logs name it (decision
                // `kernel-flow-logs`); the next tier starts with the mark cleared.
                let log = self.log(
                    stage,
                    Decider::EndOfTier {
                        tier: t.name.clone(),
                        policy: t.policies[last].id.clone(),
                        action: Action::Pass,
                    },
                    NFLOG_GROUP_ALLOW,
                );
                out.push(commented(
                    rule(vec![mark(MARK_PASS, false)], vec![log], None),
                    format!("End of tier {}. Pass if no policy decided", t.name),
                ));
            }
        }
        match class {
            StageClass::Normal => {
                for &pi in &e.profile_refs {
                    let chain = self.profile_chain(stage, pi, dir, host);
                    out.push(rule(vec![], vec![], Some(Verdict::Jump(chain))));
                    out.push(commented(
                        rule(vec![mark(MARK_ACCEPT, true)], vec![], Some(Verdict::Return)),
                        "Return if profile accepted",
                    ));
                }
                let log = self.log(stage, Decider::NoProfile, NFLOG_GROUP_DENY);
                out.push(commented(
                    rule(vec![], vec![log], Some(Verdict::Drop)),
                    "Drop if no profiles matched",
                ));
            }
            StageClass::Forward => {
                let log = self.log(stage, Decider::DefaultForwardAllow, NFLOG_GROUP_ALLOW);
                out.push(commented(
                    rule(
                        vec![],
                        vec![Statement::SetMark(MARK_ACCEPT), log],
                        Some(Verdict::Return),
                    ),
                    "Allow forwarded traffic by default",
                ));
            }
            StageClass::Untracked | StageClass::PreDnat => {}
        }
        if host {
            self.add_chain(
                name.clone(),
                format!("{} of {}", stage.describe(), e.display_name()),
                out,
            );
            return name;
        }
        // Workloads with the same policy walk (replicas, pods with equal labels)
        // share one chain, named after a hash of its rules; the per-interface
        // chain jumps to it with a goto.
        let shared = names::shared_chain(stage, &format!("{out:?}"));
        if !self.chains.contains_key(&shared) {
            self.add_chain(
                shared.clone(),
                format!(
                    "{} policy walk (shared by equal endpoints)",
                    stage.describe()
                ),
                out,
            );
        }
        self.add_chain(
            name.clone(),
            format!("{} of {}", stage.describe(), e.display_name()),
            vec![rule(vec![], vec![], Some(Verdict::Goto(shared)))],
        );
        name
    }

    /// `kube-services` (nat) and `kube-noep` (filter) rules: kube-proxy's DNAT,
    /// masquerade mark, and the refusal or drop of services without a usable
    /// endpoint (decisions `service-endpoint-choice` and `service-snat`).
    fn services(&mut self) -> (Vec<Rule>, Vec<Rule>) {
        let w = self.w;
        let node = &w.nodes[self.node];
        let mut nat = vec![];
        let mut noep = vec![];
        for svc in &w.services {
            for sp in &svc.ports {
                for v6 in [false, true] {
                    let fam = if v6 { Family::V6 } else { Family::V4 };
                    let here = [Some(node.ip), node.ipv6]
                        .into_iter()
                        .flatten()
                        .find(|ip| ip.is_ipv6() == v6);
                    let mut addrs: Vec<(IpAddr, u16, bool)> = vec![];
                    if let Some(c) = svc.cluster_ip.filter(|c| c.is_ipv6() == v6) {
                        addrs.push((c, sp.port, false));
                    }
                    if let Some(lb) = svc.load_balancer_ip.filter(|c| c.is_ipv6() == v6) {
                        addrs.push((lb, sp.port, true));
                    }
                    if let (Some(np), Some(h)) = (sp.node_port, here) {
                        addrs.push((h, np, true));
                    }
                    let choose = |local_only: bool| {
                        svc.endpoints.iter().copied().find(|&e| {
                            let ep = &w.endpoints[e];
                            ep.ip_of_family(v6).is_some() && !(local_only && ep.node != node.name)
                        })
                    };
                    let dnat = |e: usize| Statement::Dnat {
                        family: fam,
                        addr: w.endpoints[e]
                            .ip_of_family(v6)
                            .unwrap_or(IpAddr::from([0u8; 4])),
                        port: Some(target_port(w, e, &sp.target, sp.protocol).unwrap_or(sp.port)),
                    };
                    let refused = svc.endpoints.is_empty();
                    let comment = format!("{}/{} port {}", svc.namespace, svc.name, sp.port);
                    for (addr, port, external) in addrs {
                        let m = vec![
                            Match::L4proto {
                                protos: vec![sp.protocol],
                                negate: false,
                            },
                            Match::Addr {
                                family: fam,
                                dir: Dir::Daddr,
                                nets: vec![addr.into()],
                                negate: false,
                            },
                            Match::Port {
                                dir: Dir::Daddr,
                                ranges: vec![(port, port)],
                                negate: false,
                            },
                        ];
                        let masq = external && !svc.local;
                        // Decision `service-hairpin`: kube-proxy's endpoint chain
                        // marks a connection from the endpoint itself for
                        // masquerade (`-s <endpoint> -j KUBE-MARK-MASQ`).
                        let hairpin = |m: &Vec<Match>, e: Option<usize>| -> Option<Rule> {
                            let e = e?;
                            if masq {
                                return None;
                            }
                            let ep = w.endpoints[e].ip_of_family(v6)?;
                            let mut m = m.clone();
                            m.push(Match::Addr {
                                family: fam,
                                dir: Dir::Saddr,
                                nets: vec![ep.into()],
                                negate: false,
                            });
                            Some(rule(m, vec![Statement::SetMark(MARK_MASQ), dnat(e)], None))
                        };
                        let to = |e: Option<usize>| match e {
                            Some(e) => {
                                let mut s = vec![];
                                if masq {
                                    s.push(Statement::SetMark(MARK_MASQ));
                                }
                                s.push(dnat(e));
                                (s, None)
                            }
                            // No endpoint: no DNAT; kube-noep refuses or drops it.
                            None => (vec![], Some(Verdict::Accept)),
                        };
                        let (no_ep_verdict, no_ep_group) = if refused {
                            (Verdict::Reject, NFLOG_GROUP_REJECT)
                        } else {
                            (Verdict::Drop, NFLOG_GROUP_DENY)
                        };
                        if external && svc.local {
                            let pods = self.sets.all_pods(v6);
                            let pod_src = |negate| Match::AddrInSet {
                                family: fam,
                                dir: Dir::Saddr,
                                set: pods.clone(),
                                negate,
                            };
                            // Pod sources use every endpoint (kube-proxy short-circuit).
                            let mut m1 = m.clone();
                            m1.push(pod_src(false));
                            if let Some(r) = hairpin(&m1, choose(false)) {
                                nat.push(commented(r, format!("{comment} hairpin")));
                            }
                            let (s, v) = to(choose(false));
                            nat.push(commented(rule(m1, s, v), format!("{comment} from pods")));
                            let (s, v) = to(choose(true));
                            nat.push(commented(
                                rule(m.clone(), s, v),
                                format!("{comment} local endpoints"),
                            ));
                            if choose(false).is_none() {
                                noep.push(self.no_endpoint_rule(
                                    m,
                                    no_ep_group,
                                    no_ep_verdict,
                                    format!("{comment} has no endpoints"),
                                ));
                            } else if choose(true).is_none() {
                                let mut m2 = m;
                                m2.push(pod_src(true));
                                noep.push(self.no_endpoint_rule(
                                    m2,
                                    NFLOG_GROUP_DENY,
                                    Verdict::Drop,
                                    format!("{comment} has no local endpoints"),
                                ));
                            }
                        } else {
                            if let Some(r) = hairpin(&m, choose(false)) {
                                nat.push(commented(r, format!("{comment} hairpin")));
                            }
                            let (s, v) = to(choose(false));
                            nat.push(commented(rule(m.clone(), s, v), comment.clone()));
                            if choose(false).is_none() {
                                noep.push(self.no_endpoint_rule(
                                    m,
                                    no_ep_group,
                                    no_ep_verdict,
                                    format!("{comment} has no endpoints"),
                                ));
                            }
                        }
                    }
                }
            }
        }
        (nat, noep)
    }

    fn table(mut self) -> Table {
        let w = self.w;
        let node = &w.nodes[self.node];
        let hep = node.eth0_hep;
        let nd = || Match::IcmpTypes {
            family: Family::V6,
            types: ICMPV6_ND.to_vec(),
        };
        let iif = |s: &str| Match::Iifname(s.to_string());
        let oif = |s: &str| Match::Oifname(s.to_string());

        // Workload chains and their dispatch maps.
        let mut from_wl = vec![];
        let mut to_wl = vec![];
        for (i, e) in w.endpoints.iter().enumerate() {
            if e.kind != EndpointKind::Workload || e.node_index != Some(self.node) {
                continue;
            }
            let Some(ns) = &e.namespace else { continue };
            let iface = calico_host_iface(ns, &e.name);
            let fw = self.endpoint_chain(i, StageClass::Normal, Direction::Egress, &iface);
            let tw = self.endpoint_chain(i, StageClass::Normal, Direction::Ingress, &iface);
            from_wl.push((iface.clone(), fw));
            to_wl.push((iface, tw));
        }
        for (name, entries, output) in [
            ("cali-from-wl-dispatch", from_wl, false),
            ("cali-to-wl-dispatch", to_wl, true),
        ] {
            let mut rules = vec![];
            if !entries.is_empty() {
                rules.push(rule(
                    vec![],
                    vec![],
                    Some(Verdict::IfaceVmap { output, entries }),
                ));
            }
            rules.push(commented(
                rule(vec![], vec![], Some(Verdict::Drop)),
                "Unknown interface",
            ));
            self.add_chain(n(name), "workload dispatch by interface".into(), rules);
        }

        // Host endpoint chains (the eth0 host endpoint only, decision `hep-for-eth0`).
        let hep_chain = |cx: &mut Self, class: StageClass, dir: Direction| -> Option<Name> {
            let h = hep?;
            let plans = w.endpoints[h].plans.get(class, dir);
            if matches!(class, StageClass::Untracked | StageClass::PreDnat) && plans.is_empty() {
                // No policy in this table for this HEP: the model's no-op stage.
                return None;
            }
            Some(cx.endpoint_chain(h, class, dir, UPLINK))
        };
        let ufh = hep_chain(&mut self, StageClass::Untracked, Direction::Ingress);
        let uth = hep_chain(&mut self, StageClass::Untracked, Direction::Egress);
        let dfh = hep_chain(&mut self, StageClass::PreDnat, Direction::Ingress);
        let fh = hep_chain(&mut self, StageClass::Normal, Direction::Ingress);
        let th = hep_chain(&mut self, StageClass::Normal, Direction::Egress);
        let fhfw = hep_chain(&mut self, StageClass::Forward, Direction::Ingress);
        let thfw = hep_chain(&mut self, StageClass::Forward, Direction::Egress);

        // Services.
        let (nat_rules, noep_rules) = self.services();
        let has_noep = !noep_rules.is_empty();
        self.add_chain(
            n("kube-services"),
            "kube-proxy service DNAT".into(),
            nat_rules,
        );
        if has_noep {
            self.add_chain(
                n("kube-noep"),
                "kube-proxy: services without a usable endpoint".into(),
                noep_rules,
            );
        }
        let noep = || rule(vec![], vec![], Some(Verdict::Jump(n("kube-noep"))));

        let fast_path = |cx: &mut Self, stage: StageKind| {
            let log = cx.log(stage, Decider::UntrackedReply, NFLOG_GROUP_DENY);
            vec![
                rule(
                    vec![ct(&["established", "related"])],
                    vec![],
                    Some(Verdict::Accept),
                ),
                commented(
                    rule(vec![ct(&["invalid"])], vec![log], Some(Verdict::Drop)),
                    "Conntrack invalid (reply of an untracked flow)",
                ),
            ]
        };
        let not_policed =
            |cx: &mut Self| cx.log(StageKind::Unpoliced, Decider::NotPoliced, NFLOG_GROUP_ALLOW);

        // raw PREROUTING
        let mut raw_pre = vec![rule(vec![nd()], vec![], Some(Verdict::Accept))];
        if let Some(c) = &ufh {
            raw_pre.push(rule(
                vec![iif(UPLINK)],
                vec![],
                Some(Verdict::Jump(c.clone())),
            ));
        }
        // raw OUTPUT
        let mut raw_out = vec![];
        if has_noep {
            raw_out.push(noep());
        }
        raw_out.push(rule(vec![nd()], vec![], Some(Verdict::Accept)));
        if let Some(c) = &uth {
            raw_out.push(rule(
                vec![oif(UPLINK)],
                vec![],
                Some(Verdict::Jump(c.clone())),
            ));
        }
        // mangle PREROUTING
        let mut mangle_pre = vec![
            rule(
                vec![ct(&["established", "related"])],
                vec![],
                Some(Verdict::Accept),
            ),
            commented(
                rule(vec![mark(MARK_ACCEPT, true)], vec![], Some(Verdict::Accept)),
                "Accepted by untracked policy",
            ),
        ];
        if let Some(c) = &dfh {
            mangle_pre.push(rule(
                vec![iif(UPLINK)],
                vec![],
                Some(Verdict::Jump(c.clone())),
            ));
        }
        let svc_jump = || rule(vec![], vec![], Some(Verdict::Jump(n("kube-services"))));
        // filter INPUT
        let mut input = fast_path(&mut self, StageKind::HostUntrackedIngress);
        input.push(rule(vec![iif("lo")], vec![], Some(Verdict::Accept)));
        input.push(rule(vec![nd()], vec![], Some(Verdict::Accept)));
        if has_noep {
            input.push(noep());
        }
        input.push(rule(
            vec![iif("cali*")],
            vec![],
            Some(Verdict::Jump(n("cali-from-wl-dispatch"))),
        ));
        // `defaultEndpointToHostAction` (decision `felix-configuration`). RETURN
        // hands the packet back to the host's INPUT chain, which in a lab node has
        // no other rule and policy accept: accepted, logged as RETURN.
        let e2h_action = self.w.nodes[self.node].felix.endpoint_to_host;
        let (group, verdict) = match e2h_action {
            EndpointToHostAction::Drop => (NFLOG_GROUP_DENY, Verdict::Drop),
            EndpointToHostAction::Accept | EndpointToHostAction::Return => {
                (NFLOG_GROUP_ALLOW, Verdict::Accept)
            }
        };
        let e2h = self.log(
            StageKind::EndpointToHost,
            Decider::EndpointToHost(e2h_action),
            group,
        );
        input.push(commented(
            rule(vec![iif("cali*")], vec![e2h], Some(verdict)),
            format!("DefaultEndpointToHostAction {}", e2h_action.upper()),
        ));
        input.push(commented(
            rule(vec![mark(MARK_ACCEPT, true)], vec![], Some(Verdict::Accept)),
            "Accepted by untracked or pre-DNAT policy",
        ));
        match &fh {
            Some(c) => {
                input.push(rule(
                    vec![iif(UPLINK)],
                    vec![],
                    Some(Verdict::Jump(c.clone())),
                ));
                input.push(rule(vec![iif(UPLINK)], vec![], Some(Verdict::Accept)));
            }
            None => {
                let l = not_policed(&mut self);
                input.push(commented(
                    rule(vec![iif(UPLINK)], vec![l], Some(Verdict::Accept)),
                    "No host endpoint",
                ));
            }
        }
        // filter FORWARD
        let mut forward = fast_path(&mut self, StageKind::HostUntrackedIngress);
        if has_noep {
            forward.push(noep());
        }
        forward.push(rule(vec![], vec![Statement::SetMark(MARK_FORWARDED)], None));
        if let Some(c) = &fhfw {
            forward.push(rule(
                vec![iif(UPLINK), mark(MARK_ACCEPT, false)],
                vec![],
                Some(Verdict::Jump(c.clone())),
            ));
        }
        forward.push(rule(
            vec![iif("cali*")],
            vec![],
            Some(Verdict::Jump(n("cali-from-wl-dispatch"))),
        ));
        if let Some(c) = &thfw {
            forward.push(rule(
                vec![oif(UPLINK)],
                vec![],
                Some(Verdict::Jump(c.clone())),
            ));
        }
        // filter OUTPUT
        let mut output = fast_path(&mut self, StageKind::HostUntrackedEgress);
        output.push(rule(vec![nd()], vec![], Some(Verdict::Accept)));
        for o in ["lo", "cali*"] {
            let l = not_policed(&mut self);
            output.push(commented(
                rule(vec![oif(o)], vec![l], Some(Verdict::Accept)),
                "Host to itself or a local pod: not policed",
            ));
        }
        output.push(commented(
            rule(vec![mark(MARK_ACCEPT, true)], vec![], Some(Verdict::Accept)),
            "Accepted by untracked policy",
        ));
        if let Some(c) = &th {
            output.push(rule(
                vec![oif(UPLINK)],
                vec![],
                Some(Verdict::Jump(c.clone())),
            ));
            output.push(rule(vec![oif(UPLINK)], vec![], Some(Verdict::Accept)));
        }
        // filter POSTROUTING (after source NAT)
        let untracked = self.log(
            StageKind::WorkloadIngress,
            Decider::UntrackedReply,
            NFLOG_GROUP_DENY,
        );
        let post = vec![
            rule(
                vec![ct(&["established", "related"])],
                vec![],
                Some(Verdict::Accept),
            ),
            commented(
                rule(
                    vec![mark(MARK_FORWARDED, false)],
                    vec![],
                    Some(Verdict::Accept),
                ),
                "Host-originated: not policed",
            ),
            rule(
                vec![oif("cali*"), ct(&["untracked"])],
                vec![],
                Some(Verdict::Jump(n("cali-untracked-to-wl"))),
            ),
            rule(
                vec![oif("cali*")],
                vec![],
                Some(Verdict::Jump(n("cali-to-wl-dispatch"))),
            ),
        ];
        // Untracked packets to a pod (decision `untracked-reply-check`). A request (recognisable without
        // conntrack: TCP SYN, ICMP echo request) gets the pod's ingress policy, then
        // is dropped: its reply will have no conntrack entry. Anything else is the
        // reply to a pod's own flow, allowed by untracked policy: accepted.
        let mut to_request = vec![];
        for request in [
            Match::TcpSynOnly,
            Match::IcmpTypes {
                family: Family::V4,
                types: vec![8],
            },
            Match::IcmpTypes {
                family: Family::V6,
                types: vec![128],
            },
        ] {
            to_request.push(rule(
                vec![request],
                vec![],
                Some(Verdict::Goto(n("cali-untracked-request"))),
            ));
        }
        to_request.push(commented(
            rule(vec![], vec![], Some(Verdict::Accept)),
            "Untracked reply to a pod's own flow",
        ));
        self.add_chain(
            n("cali-untracked-to-wl"),
            "untracked packets to a local pod".into(),
            to_request,
        );
        self.add_chain(
            n("cali-untracked-request"),
            "untracked request to a local pod: ingress policy, then dropped".into(),
            vec![
                rule(
                    vec![],
                    vec![],
                    Some(Verdict::Jump(n("cali-to-wl-dispatch"))),
                ),
                commented(
                    rule(vec![], vec![untracked], Some(Verdict::Drop)),
                    "Untracked request to a local pod: its reply has no conntrack entry",
                ),
            ],
        );

        // nat POSTROUTING: masquerade (decision `service-snat`).
        let mut snat = vec![];
        for (fam, ip) in [(Family::V4, Some(node.ip)), (Family::V6, node.ipv6)] {
            let Some(ip) = ip.filter(|ip| ip.is_ipv6() == (fam == Family::V6)) else {
                continue;
            };
            snat.push(rule(
                vec![Match::Nfproto(fam), mark(MARK_MASQ, true)],
                vec![Statement::Snat {
                    family: fam,
                    addr: ip,
                }],
                None,
            ));
        }

        let base = |name: &str, ty: ChainType, hook: Hook, priority: i32, rules: Vec<Rule>| Chain {
            name: n(name),
            base: Some(BaseChain {
                chain_type: ty,
                hook,
                priority,
                policy_accept: true,
            }),
            comment: None,
            rules,
        };
        let mut chains = vec![
            base(
                "raw-PREROUTING",
                ChainType::Filter,
                Hook::Prerouting,
                -300,
                raw_pre,
            ),
            base("raw-OUTPUT", ChainType::Filter, Hook::Output, -300, raw_out),
            base(
                "mangle-PREROUTING",
                ChainType::Filter,
                Hook::Prerouting,
                -150,
                mangle_pre,
            ),
            base(
                "nat-PREROUTING",
                ChainType::Nat,
                Hook::Prerouting,
                -100,
                vec![svc_jump()],
            ),
            base(
                "nat-OUTPUT",
                ChainType::Nat,
                Hook::Output,
                -100,
                vec![svc_jump()],
            ),
            base("filter-INPUT", ChainType::Filter, Hook::Input, 0, input),
            base(
                "filter-FORWARD",
                ChainType::Filter,
                Hook::Forward,
                0,
                forward,
            ),
            base("filter-OUTPUT", ChainType::Filter, Hook::Output, 0, output),
            base(
                "nat-POSTROUTING",
                ChainType::Nat,
                Hook::Postrouting,
                100,
                snat,
            ),
            base(
                "filter-POSTROUTING",
                ChainType::Filter,
                Hook::Postrouting,
                110,
                post,
            ),
        ];
        chains.extend(self.chains.into_values());
        Table {
            name: n(TABLE),
            sets: self.sets.sets.into_values().collect(),
            chains,
        }
    }
}

fn dir_word(dir: Direction) -> &'static str {
    match dir {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}
