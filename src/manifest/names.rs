//! This module deals with the name and label formats of the Kubernetes and Calico APIs:
//! DNS-1123 labels and subdomains, DNS-1035 labels, qualified names (label keys) and
//! label values, and Calico's policy and tier name rules.
//!
//! Each check returns the API's own messages (`k8s.io/apimachinery/pkg/util/validation`
//! and libcalico-go's validator), empty when the value is valid. Pure string code.

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && alnum(b[0])
        && alnum(b[b.len() - 1])
        && b.iter().all(|&c| alnum(c) || c == b'-')
}

fn is_subdomain(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_label)
}

/// Kubernetes `IsDNS1123Label` (namespace names).
pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    if !is_label(s) {
        out.push(format!(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{DNS1123_LABEL_FMT}')"
        ));
    }
    out
}

/// Kubernetes `IsDNS1123Subdomain` (most object names).
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 253 {
        out.push("must be no more than 253 characters".to_string());
    }
    if !is_subdomain(s) {
        out.push(format!(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '{DNS1123_SUBDOMAIN_FMT}')"
        ));
    }
    out
}

/// Kubernetes `IsDNS1035Label` (Service names).
pub fn dns1035_label(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    if !ok {
        out.push("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string());
    }
    out
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Kubernetes `IsQualifiedName` (label keys, annotation keys): `[prefix/]name`.
pub fn qualified_name(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                out.push("prefix part must be non-empty".to_string());
            } else {
                out.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            out.push(format!(
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{QUALIFIED_NAME_FMT}') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ));
            return out;
        }
    };
    if name.is_empty() {
        out.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        out.push("name part must be no more than 63 characters".to_string());
    }
    if !name.is_empty() && !is_qualified_name_part(name) {
        out.push(format!(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{QUALIFIED_NAME_FMT}')"
        ));
    }
    out
}

/// Kubernetes `IsValidLabelValue`.
pub fn label_value(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    if !s.is_empty() && !is_qualified_name_part(s) {
        out.push(format!(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '{LABEL_VALUE_FMT}')"
        ));
    }
    out
}

/// The name rule of a Calico kind, checked by libcalico-go's validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalicoNameRule {
    /// NetworkPolicy, StagedNetworkPolicy: a DNS-1123 label, optionally `label.label`
    /// (one dot), or `knp.default.<subdomain>`.
    NetworkPolicy,
    /// GlobalNetworkPolicy, StagedGlobalNetworkPolicy: `[label.]label`.
    GlobalNetworkPolicy,
    /// Tier: a DNS-1123 label of at most 63 characters.
    Tier,
    /// Every other kind: a DNS-1123 subdomain.
    Subdomain,
}

/// libcalico-go's messages for a name that fails `rule`, empty when it is valid.
pub fn calico_name(rule: CalicoNameRule, s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let max = if rule == CalicoNameRule::Tier {
        63
    } else {
        253
    };
    if s.len() > max {
        out.push(format!("name is too long by {} bytes", s.len() - max));
    }
    let label_msg = || {
        format!(
            "name must consist of lower case alphanumeric characters or '-' (regex: {DNS1123_LABEL_FMT})"
        )
    };
    match rule {
        CalicoNameRule::NetworkPolicy => {
            let ok = match s.split_once('.') {
                None => is_label(s),
                Some((a, b)) => {
                    (is_label(a) && is_label(b))
                        || ["knp.default.", "ossg.default."]
                            .iter()
                            .any(|p| s.strip_prefix(p).is_some_and(is_subdomain))
                }
            };
            if !ok {
                out.push(format!("{} with at most one '.'", label_msg()));
            }
        }
        CalicoNameRule::GlobalNetworkPolicy => {
            let ok = match s.split_once('.') {
                None => is_label(s),
                Some((a, b)) => is_label(a) && is_label(b),
            };
            if !ok {
                out.push(format!("{} with at most one '.'", label_msg()));
            }
        }
        CalicoNameRule::Tier => {
            if !is_label(s) {
                out.push(label_msg());
            }
        }
        CalicoNameRule::Subdomain => {
            if !is_subdomain(s) {
                out.push(format!(
                    "name must consist of lower case alphanumeric characters, '-' or '.' (regex: {DNS1123_SUBDOMAIN_FMT})"
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("a", true)]
    #[case("a-b.c", true)]
    #[case("example.com/x", true)]
    #[case("projectcalico.org/namespace", true)]
    #[case("IP-blacklist", true)]
    #[case("a b", false)]
    #[case("/x", false)]
    #[case("a/b/c", false)]
    #[case("-a", false)]
    #[case("Example.com/x", false)]
    #[case("", false)]
    fn qualified_names(#[case] s: &str, #[case] ok: bool) {
        assert_eq!(
            qualified_name(s).is_empty(),
            ok,
            "{s}: {:?}",
            qualified_name(s)
        );
    }

    #[rstest]
    #[case("", true)]
    #[case("true", true)]
    #[case("a.b_c-d", true)]
    #[case("a b", false)]
    #[case("-x", false)]
    fn label_values(#[case] s: &str, #[case] ok: bool) {
        assert_eq!(label_value(s).is_empty(), ok, "{s}");
        assert!(!label_value(&"x".repeat(64)).is_empty());
    }

    #[rstest]
    #[case(CalicoNameRule::NetworkPolicy, "allow-egress", true)]
    #[case(CalicoNameRule::NetworkPolicy, "security.block-ip", true)]
    #[case(CalicoNameRule::NetworkPolicy, "a.b.c", false)]
    #[case(CalicoNameRule::NetworkPolicy, "knp.default.a.b.c", true)]
    #[case(
        CalicoNameRule::GlobalNetworkPolicy,
        "tigera-security.block-training-ipthreatfeed",
        true
    )]
    #[case(CalicoNameRule::GlobalNetworkPolicy, "knp.default.x", false)]
    #[case(CalicoNameRule::GlobalNetworkPolicy, "Deny", false)]
    #[case(CalicoNameRule::Tier, "security", true)]
    #[case(CalicoNameRule::Tier, "sec.urity", false)]
    #[case(CalicoNameRule::Subdomain, "training.ip.threatfeed", true)]
    #[case(CalicoNameRule::Subdomain, "ip_protect", false)]
    fn calico_names(#[case] rule: CalicoNameRule, #[case] s: &str, #[case] ok: bool) {
        assert_eq!(calico_name(rule, s).is_empty(), ok, "{s}");
    }
}
