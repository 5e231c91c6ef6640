//! [`Decider`]: an owned, comparable "who decided", shared by the model's
//! [`DecidedBy`], the report, and the kernel's NFLOG attribution.
//!
//! The kernel dataplane decodes its NFLOG prefixes into a [`Decider`]; the model's
//! decisions convert into one with [`Decider::from`]; the runner compares the two
//! with `==`. Its `Display` is the report's form (one line, stable).

use std::fmt;

use super::DecidedBy;
use crate::resolve::{Action, EndpointToHostAction, PolicyId};

/// Who decided a stage or a flow, owned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decider {
    /// Rule `rule_index` (0-based, as in flow logs) of a policy in a tier.
    Rule {
        tier: String,
        policy: PolicyId,
        rule_index: usize,
        action: Action,
    },
    /// The end of a tier: no policy gave a verdict. `policy` is the tier's last
    /// applicable policy (flow logs attribute the end of tier to it).
    EndOfTier {
        tier: String,
        policy: PolicyId,
        action: Action,
    },
    Profile {
        name: String,
        rule_index: usize,
    },
    NoProfile,
    Failsafe,
    DefaultForwardAllow,
    NotPoliced,
    /// `defaultEndpointToHostAction` of the workload's node.
    EndpointToHost(EndpointToHostAction),
    NoServiceEndpoint,
    UntrackedReply,
    Unroutable,
    /// An outside host that is `fail:`ed: it neither answers nor sends (set by the
    /// runner, never by the model).
    HostDown {
        host: String,
    },
}

impl From<DecidedBy<'_>> for Decider {
    fn from(d: DecidedBy<'_>) -> Decider {
        match d {
            DecidedBy::Rule {
                tier,
                policy,
                rule_index,
                action,
            } => Decider::Rule {
                tier: tier.to_string(),
                policy: policy.clone(),
                rule_index,
                action,
            },
            DecidedBy::EndOfTier {
                tier,
                policy,
                action,
            } => Decider::EndOfTier {
                tier: tier.to_string(),
                policy: policy.clone(),
                action,
            },
            DecidedBy::Profile { name, rule_index } => Decider::Profile {
                name: name.to_string(),
                rule_index,
            },
            DecidedBy::NoProfile => Decider::NoProfile,
            DecidedBy::Failsafe => Decider::Failsafe,
            DecidedBy::DefaultForwardAllow => Decider::DefaultForwardAllow,
            DecidedBy::NotPoliced => Decider::NotPoliced,
            DecidedBy::EndpointToHost(a) => Decider::EndpointToHost(a),
            DecidedBy::NoServiceEndpoint => Decider::NoServiceEndpoint,
            DecidedBy::UntrackedReply => Decider::UntrackedReply,
            DecidedBy::Unroutable => Decider::Unroutable,
        }
    }
}

impl Decider {
    /// The policy this decider belongs to, if any (what `by: <name>` names).
    pub fn policy(&self) -> Option<&PolicyId> {
        match self {
            Decider::Rule { policy, .. } | Decider::EndOfTier { policy, .. } => Some(policy),
            _ => None,
        }
    }
}

impl fmt::Display for Decider {
    /// The report's form: `tier security, gnp:security.block-ip-list rule 0 (deny)`,
    /// `end of tier security (deny, last policy gnp:security.x)`, `profile kns.default
    /// rule 0`, `no profile`, `failsafe`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decider::Rule {
                tier,
                policy,
                rule_index,
                action,
            } => write!(
                f,
                "tier {tier}, {policy} rule {rule_index} ({})",
                action.lower()
            ),
            Decider::EndOfTier {
                tier,
                policy,
                action,
            } => write!(
                f,
                "end of tier {tier} ({}, last policy {policy})",
                action.lower()
            ),
            Decider::Profile { name, rule_index } => {
                write!(f, "profile {name} rule {rule_index}")
            }
            Decider::NoProfile => f.write_str("no profile (drop)"),
            Decider::Failsafe => f.write_str("failsafe"),
            Decider::DefaultForwardAllow => f.write_str("default forward allow"),
            Decider::NotPoliced => f.write_str("not policed"),
            Decider::EndpointToHost(EndpointToHostAction::Accept) => {
                f.write_str("endpoint to host (accept)")
            }
            Decider::EndpointToHost(EndpointToHostAction::Return) => {
                f.write_str("endpoint to host (return: the host's INPUT chain accepts)")
            }
            Decider::EndpointToHost(EndpointToHostAction::Drop) => {
                f.write_str("endpoint to host (drop)")
            }
            Decider::NoServiceEndpoint => f.write_str("no service endpoint"),
            Decider::UntrackedReply => {
                f.write_str("conntrack INVALID (doNotTrack: one direction bypassed conntrack)")
            }
            Decider::Unroutable => f.write_str("unroutable"),
            Decider::HostDown { host } => write!(f, "outside host {host} is down"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::PolicyKind;

    #[test]
    fn converts_and_displays() {
        let id = PolicyId {
            kind: PolicyKind::GlobalNetworkPolicy,
            namespace: None,
            name: "security.block".into(),
        };
        let d: Decider = DecidedBy::Rule {
            tier: "security",
            policy: &id,
            rule_index: 1,
            action: Action::Deny,
        }
        .into();
        assert_eq!(d.policy(), Some(&id));
        assert_eq!(
            d.to_string(),
            "tier security, gnp:security.block rule 1 (deny)"
        );
        assert_eq!(
            Decider::from(DecidedBy::NoProfile).to_string(),
            "no profile (drop)"
        );
    }
}
