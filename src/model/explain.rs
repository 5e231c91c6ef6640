//! Human-readable walk-throughs and flow-log policy strings (docs/semantics.md#flow-log-records) of a decision.

use std::fmt::{self, Write};

use super::{
    evaluate, DecidedBy, Decision, Destination, Flow, Packet, Stage, StageKind, StageResult, Step,
    Verdict,
};
use crate::resolve::{Action, PolicyId, World};

impl fmt::Display for DecidedBy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecidedBy::Rule {
                tier,
                policy,
                rule_index,
                action,
            } => write!(
                f,
                "rule {rule_index} ({}) of {policy} in tier {tier}",
                action_name(*action)
            ),
            DecidedBy::EndOfTier { tier, action, .. } => write!(
                f,
                "end of tier {tier} (no policy gave a verdict: {})",
                action.lower()
            ),
            DecidedBy::Profile { name, rule_index } => {
                write!(f, "rule {rule_index} of profile {name}")
            }
            DecidedBy::NoProfile => f.write_str("no tier and no profile gave a verdict (drop)"),
            DecidedBy::Failsafe => f.write_str("a failsafe port"),
            DecidedBy::DefaultForwardAllow => {
                f.write_str("forwarded traffic is allowed by default")
            }
            DecidedBy::NotPoliced => f.write_str("no Calico policy on this path"),
            DecidedBy::EndpointToHost(a) => {
                write!(
                    f,
                    "DefaultEndpointToHostAction {} (pod to its own host",
                    a.upper()
                )?;
                if *a == crate::resolve::EndpointToHostAction::Return {
                    f.write_str("; the host's INPUT chain accepts")?;
                }
                f.write_str(")")
            }
            DecidedBy::NoServiceEndpoint => f.write_str("the service has no usable endpoint"),
            DecidedBy::UntrackedReply => {
                f.write_str("the flow is untracked and its replies are not allowed")
            }
            DecidedBy::Unroutable => f.write_str("no route to the destination"),
        }
    }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Allow => "Allow",
        Action::Deny => "Deny",
        Action::Log => "Log",
        Action::Pass => "Pass",
    }
}

fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        132 => "sctp".into(),
        1 => "icmp".into(),
        58 => "icmpv6".into(),
        n => format!("proto {n}"),
    }
}

fn packet(p: &Packet) -> String {
    match p.proto {
        1 | 58 => format!(
            "{} -> {} {} type {} code {}",
            p.src,
            p.dst,
            proto_name(p.proto),
            p.icmp_type,
            p.icmp_code
        ),
        _ => format!(
            "{}:{} -> {}:{} {}",
            p.src,
            p.src_port,
            p.dst,
            p.dst_port,
            proto_name(p.proto)
        ),
    }
}

/// A readable walk-through of a flow: stage by stage, tier by tier, policy by
/// policy, rule by rule, ending in the verdict.
pub fn explain(world: &World, flow: &Flow) -> String {
    let d = evaluate(world, flow);
    let mut out = String::new();
    let src = match flow.src {
        super::FlowSource::Endpoint(i) => world
            .endpoints
            .get(i)
            .map(|e| e.display_name())
            .unwrap_or_else(|| format!("endpoint #{i}")),
        super::FlowSource::Ip(ip) => ip.to_string(),
    };
    let _ = writeln!(
        out,
        "Flow: from {src} to {} {} port {}",
        flow.dst,
        format!("{:?}", flow.protocol).to_lowercase(),
        flow.dst_port
    );
    for (i, stage) in d.trace.iter().enumerate() {
        explain_stage(world, &mut out, i + 1, stage);
    }
    let verdict = match d.verdict {
        Verdict::Allow => "ALLOW",
        Verdict::Deny => "DENY",
        Verdict::Refused => "REFUSED",
    };
    let _ = writeln!(out, "Verdict: {verdict}, decided by {}.", d.decided_by);
    let dest = match d.destination {
        Destination::Workload(e) => format!("workload {}", world.endpoints[e].display_name()),
        Destination::Host(n) => format!("host {}", world.nodes[n].name),
        Destination::Outside => "a host outside the cluster".to_string(),
    };
    if d.verdict == Verdict::Allow {
        let _ = writeln!(
            out,
            "The packet reaches {dest} at {}:{}; the destination sees the client as {}.",
            d.final_dst_ip, d.final_dst_port, d.client_ip_seen
        );
        if let Some(r) = &d.notracked_reply {
            let _ = writeln!(
                out,
                "The reply is untracked on {} ({}: {}) although the request was tracked there: \
                 conntrack never sees it.",
                r.node,
                r.stage.describe(),
                r.allowed_by
            );
            if r.cuts_after_handshake(flow.protocol) {
                let _ = writeln!(
                    out,
                    "The TCP handshake completes, but the client's next packet (its ACK) is an ACK \
                     in SYN_SENT for conntrack on {}: INVALID, dropped by `ct state invalid` \
                     (untracked reply). A connection opens; no data passes.",
                    r.node
                );
            }
        }
    } else {
        let _ = writeln!(
            out,
            "The packet does not reach {}:{}.",
            d.final_dst_ip, d.final_dst_port
        );
    }
    out
}

fn explain_stage(world: &World, out: &mut String, n: usize, stage: &Stage<'_>) {
    let ep = stage
        .endpoint
        .and_then(|e| world.endpoints.get(e))
        .map(|e| format!(", endpoint {}", e.display_name()))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Stage {n}: {}{} on node {}{ep}",
        stage.kind.describe(),
        if stage.reply {
            " (reply direction)"
        } else {
            ""
        },
        stage.node
    );
    let _ = writeln!(out, "  packet: {}", packet(&stage.packet));
    let policing = !matches!(
        stage.kind,
        StageKind::ServiceDnat
            | StageKind::ServiceSnat
            | StageKind::EndpointToHost
            | StageKind::Unpoliced
    );
    if policing && stage.steps.is_empty() {
        let _ = writeln!(out, "  no tier applies to this endpoint in this direction");
    }
    if matches!(
        stage.steps.first(),
        Some(Step::Profile { .. } | Step::NoProfile)
    ) {
        let _ = writeln!(
            out,
            "  no policy applies to this endpoint in this direction; its profiles decide"
        );
    }
    for step in &stage.steps {
        match step {
            Step::Tier { tier } => {
                let _ = writeln!(out, "  tier {tier}:");
            }
            Step::Policy { tier, policy } => {
                let found = world
                    .tiers
                    .iter()
                    .filter(|t| t.name == *tier)
                    .flat_map(|t| t.policies.iter())
                    .find(|p| p.id == **policy);
                let about = match found {
                    Some(p) => {
                        let order = p
                            .order
                            .map(|o| format!("order {o}, "))
                            .unwrap_or_else(|| "no order, ".to_string());
                        format!(
                            " ({order}applies here: its selector `{}` matches)",
                            p.selector.canonical()
                        )
                    }
                    None => String::new(),
                };
                let _ = writeln!(out, "    policy {policy}{about}:");
            }
            Step::Rule {
                rule_index,
                action,
                matched,
                mismatch,
                absent,
            } => {
                let what = if *absent {
                    "not present for this IP family (ipVersion/nets), skipped".to_string()
                } else if *matched {
                    match action {
                        Action::Log => "matches: Log, evaluation continues".to_string(),
                        Action::Pass => "matches: Pass, go to the next tier".to_string(),
                        a => format!("matches: {}", action_name(*a)),
                    }
                } else {
                    format!("no match: {}", why_not(mismatch.unwrap_or("")))
                };
                let _ = writeln!(
                    out,
                    "      rule {rule_index} ({}): {what}",
                    action_name(*action)
                );
            }
            Step::PolicyNoVerdict => {
                let _ = writeln!(out, "      no rule gave a verdict; next policy");
            }
            Step::EndOfTier { tier, drop } => {
                let _ = writeln!(
                    out,
                    "    end of tier {tier}: {}",
                    if *drop {
                        "drop (no policy passed or allowed the packet)"
                    } else {
                        "pass to the next tier (default action Pass, or untracked/pre-DNAT)"
                    }
                );
            }
            Step::Profile { name } => {
                let _ = writeln!(out, "  profile {name}:");
            }
            Step::NoProfile => {
                let _ = writeln!(out, "  no profile matched: drop");
            }
            Step::Failsafe { protocol, port } => {
                let _ = writeln!(
                    out,
                    "  failsafe {}:{port}: accepted before any policy",
                    proto_name(*protocol)
                );
            }
            Step::Note(s) => {
                let _ = writeln!(out, "  {s}");
            }
        }
    }
    let result = match stage.result {
        StageResult::Allow(by) => format!("allowed by {by}"),
        StageResult::Deny(by) => format!("denied by {by}"),
        StageResult::Continue => "no verdict here; the packet goes on".to_string(),
    };
    let _ = writeln!(out, "  => {result}");
    if matches!(
        (stage.kind, stage.result, stage.reply),
        (
            StageKind::HostUntrackedIngress | StageKind::HostPreDnat,
            StageResult::Allow(_),
            false
        )
    ) {
        let _ = writeln!(
            out,
            "     (this sets the accept mark: the host endpoint's normal and forward-ingress policies are skipped for this packet; workload policies still apply)"
        );
    }
}

/// Why a rule did not match, from the first field that failed.
fn why_not(field: &str) -> String {
    let (side, f) = match field.split_once('.') {
        Some((side, f)) => (side, f),
        None => ("", field),
    };
    let end = if side == "source" {
        "source"
    } else {
        "destination"
    };
    match f {
        "protocol" => "the packet's protocol is not the rule's `protocol`".into(),
        "notProtocol" => "the packet's protocol is the rule's `notProtocol`".into(),
        "icmp" => "the packet's ICMP type/code is not the rule's `icmp`".into(),
        "notICMP" => "the packet's ICMP type/code is the rule's `notICMP`".into(),
        "nets" => format!("the {end} address is not in `{side}.nets`"),
        "notNets" => format!("the {end} address is in `{side}.notNets`"),
        "selector" => format!(
            "the {end} is not selected by `{side}.selector` (no endpoint or network set with matching labels holds its address)"
        ),
        "notSelector" => format!("the {end} is selected by `{side}.notSelector`"),
        "services" => format!("the {end} is not the service named in `{side}.services`"),
        "ports" => format!("the {end} port is not in `{side}.ports`"),
        "notPorts" => format!("the {end} port is in `{side}.notPorts`"),
        "" => "a field does not match".into(),
        other => format!("`{field}` does not match ({other})"),
    }
}

/// One reporter's view: the policing stage and its flow-log policy strings (docs/semantics.md#flow-log-records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowLogPolicies {
    pub stage: StageKind,
    pub endpoint: Option<usize>,
    /// `<idx>|<tier>|<kindShort>:<ns>/<name>|<action>|<ruleIdx>` entries.
    pub policies: Vec<String>,
}

/// The flow-log policy strings of each policing stage of a decision (docs/semantics.md#flow-log-records):
/// one entry per tier that produced a verdict or passed (Log rules leave none),
/// end of tier with rule index -1 attributed to the tier's last applicable policy,
/// profile hits as `__PROFILE__|pro:<name>`.
pub fn flow_log_policies(decision: &Decision<'_>) -> Vec<FlowLogPolicies> {
    let mut all = Vec::new();
    for stage in &decision.trace {
        if matches!(
            stage.kind,
            StageKind::ServiceDnat
                | StageKind::ServiceSnat
                | StageKind::EndpointToHost
                | StageKind::Unpoliced
        ) {
            continue;
        }
        let mut policies = Vec::new();
        let mut tier: &str = "";
        let mut policy: Option<&PolicyId> = None;
        let mut profile: Option<&str> = None;
        for step in &stage.steps {
            match step {
                Step::Tier { tier: t } => {
                    tier = t;
                    profile = None;
                }
                Step::Policy { policy: p, .. } => policy = Some(p),
                Step::Profile { name } => profile = Some(name),
                Step::Rule {
                    rule_index,
                    action,
                    matched: true,
                    ..
                } if *action != Action::Log => {
                    let idx = policies.len();
                    let entry = match (profile, policy) {
                        (Some(name), _) => format!(
                            "{idx}|__PROFILE__|pro:{name}|{}|{rule_index}",
                            action.lower()
                        ),
                        (None, Some(p)) => {
                            format!("{idx}|{tier}|{p}|{}|{rule_index}", action.lower())
                        }
                        (None, None) => continue,
                    };
                    policies.push(entry);
                }
                Step::EndOfTier { tier: t, drop } => {
                    let idx = policies.len();
                    let action = if *drop { "deny" } else { "pass" };
                    match policy {
                        Some(p) => policies.push(format!("{idx}|{t}|{p}|{action}|-1")),
                        None => policies.push(format!("{idx}|{t}|eot:__NO_MATCH__|{action}")),
                    }
                }
                _ => {}
            }
        }
        all.push(FlowLogPolicies {
            stage: stage.kind,
            endpoint: stage.endpoint,
            policies,
        });
    }
    all
}
