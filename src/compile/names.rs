//! Deterministic kernel names: chains, sets and NFLOG prefixes, derived from stable
//! hashes of their inputs (never from counters).

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::model::StageKind;
use crate::nft::Name;
use crate::resolve::{Direction, PolicyId};

/// Longest chain name the compiler makes (nft accepts 255; Calico's knftables
/// limit is 256). Longer names keep a readable head and end in `_` + a hash.
pub const MAX_CHAIN_NAME: usize = 64;
/// Set names follow Calico's IP set names: `cali40` / `cali60` + id, at most 31
/// characters.
pub const MAX_SET_NAME: usize = 31;

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn sha(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

/// Characters nft accepts in an unquoted name; anything else becomes `_` (the
/// hash suffix then keeps distinct inputs distinct).
fn legal(s: &str) -> (String, bool) {
    let mut changed = false;
    let out = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                changed = true;
                '_'
            }
        })
        .collect();
    (out, changed)
}

/// `prefix + id`, or when too long (or `id` needed legalising) `prefix + head of
/// id + "_" + 16 characters of base64url(sha256(id))`.
pub fn chain_name(prefix: &str, id: &str) -> Name {
    let (clean, changed) = legal(id);
    let full = format!("{prefix}{clean}");
    if !changed && full.len() <= MAX_CHAIN_NAME {
        if let Some(n) = Name::new(full) {
            return n;
        }
    }
    let hash = b64(&sha(id));
    let keep = MAX_CHAIN_NAME - prefix.len() - 17;
    let head: String = clean.chars().take(keep).collect();
    Name::new(format!("{prefix}{head}_{}", &hash[..16]))
        .unwrap_or_else(|| Name::new(format!("cali-x_{}", &hash[..16])).expect("legal name"))
}

/// Policy id as in Calico's chain names, with `.` for `/`: `gnp.name`,
/// `np.ns.name` (namespaces never contain dots, so this is unambiguous).
pub fn policy_id(id: &PolicyId) -> String {
    match &id.namespace {
        Some(ns) => format!("{}.{ns}.{}", id.kind.short(), id.name),
        None => format!("{}.{}", id.kind.short(), id.name),
    }
}

/// The chain-name prefix of a policy chain for one stage and direction:
/// `cali-pi-`/`cali-po-` for workloads (Calico's), `cali-hpi-`/`cali-hpo-` host
/// normal, `cali-fpi-`/`cali-fpo-` host forward, `cali-upi-`/`cali-upo-` host
/// untracked, `cali-dpi-` host pre-DNAT.
pub fn policy_prefix(stage: StageKind) -> &'static str {
    match stage {
        StageKind::WorkloadIngress => "cali-pi-",
        StageKind::WorkloadEgress => "cali-po-",
        StageKind::HostNormalIngress => "cali-hpi-",
        StageKind::HostNormalEgress => "cali-hpo-",
        StageKind::HostForwardIngress => "cali-fpi-",
        StageKind::HostForwardEgress => "cali-fpo-",
        StageKind::HostUntrackedIngress => "cali-upi-",
        StageKind::HostUntrackedEgress => "cali-upo-",
        StageKind::HostPreDnat => "cali-dpi-",
        _ => "cali-xpi-",
    }
}

/// Profile chains: `cali-pri-<name>` / `cali-pro-<name>` (workloads, Calico's) and
/// `cali-hpri-` / `cali-hpro-` (host endpoints).
pub fn profile_chain(name: &str, dir: Direction, host: bool) -> Name {
    let prefix = match (host, dir) {
        (false, Direction::Ingress) => "cali-pri-",
        (false, Direction::Egress) => "cali-pro-",
        (true, Direction::Ingress) => "cali-hpri-",
        (true, Direction::Egress) => "cali-hpro-",
    };
    chain_name(prefix, name)
}

/// The per-endpoint chain of one stage: `cali-tw-<iface>` / `cali-fw-<iface>` for
/// workloads; for the host endpoint on `iface`: `cali-fh-` / `cali-th-` (filter
/// INPUT/OUTPUT), `cali-fhfw-` / `cali-thfw-` (FORWARD), `cali-ufh-` / `cali-uth-`
/// (raw, untracked), `cali-dfh-` (mangle, pre-DNAT).
pub fn endpoint_chain(stage: StageKind, iface: &str) -> Name {
    let prefix = match stage {
        StageKind::WorkloadIngress => "cali-tw-",
        StageKind::WorkloadEgress => "cali-fw-",
        StageKind::HostNormalIngress => "cali-fh-",
        StageKind::HostNormalEgress => "cali-th-",
        StageKind::HostForwardIngress => "cali-fhfw-",
        StageKind::HostForwardEgress => "cali-thfw-",
        StageKind::HostUntrackedIngress => "cali-ufh-",
        StageKind::HostUntrackedEgress => "cali-uth-",
        StageKind::HostPreDnat => "cali-dfh-",
        _ => "cali-x-",
    };
    chain_name(prefix, iface)
}

/// The chain shared by workloads whose chain for `stage` has the same rules:
/// `cali-twp-` / `cali-fwp-` + 16 characters of base64url(sha256(rules)).
pub fn shared_chain(stage: StageKind, rules: &str) -> Name {
    let prefix = match stage {
        StageKind::WorkloadIngress => "cali-twp-",
        _ => "cali-fwp-",
    };
    chain_name(prefix, &b64(&sha(rules))[..16])
}

/// `cali40` / `cali60` + `kind` + `-` + id, truncated to 31 characters (Calico's IP
/// set names with `:` made `-`, as nft's `LegalizeSetName`).
pub fn set_name(v6: bool, id: &str) -> Name {
    let (clean, _) = legal(&id.replace(':', "-"));
    let full = format!("cali{}{clean}", if v6 { "60" } else { "40" });
    let cut: String = full.chars().take(MAX_SET_NAME).collect();
    Name::new(cut).unwrap_or_else(|| {
        Name::new(format!(
            "cali{}x-{}",
            if v6 { "60" } else { "40" },
            &b64(&sha(id))[..20]
        ))
        .expect("legal name")
    })
}

/// A hashed id for sets that are not selector sets (named ports, services):
/// `<kind>:` + base64url(sha256(kind + ":" + text)).
pub fn hashed_id(kind: &str, text: &str) -> String {
    format!("{kind}:{}", b64(&sha(&format!("{kind}:{text}"))))
}

/// The NFLOG prefix of one tag: `pl` + 14 characters of base64url(sha256(key)),
/// where `key` is the tag's canonical text (node, stage, decider, log flag).
/// `salt` > 0 only when two different tags collide (never observed; kept total).
pub fn log_prefix(key: &str, salt: u32) -> String {
    let text = if salt == 0 {
        key.to_string()
    } else {
        format!("{key}\u{0}{salt}")
    };
    format!("pl{}", &b64(&sha(&text))[..14])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::PolicyKind;
    use rstest::rstest;

    #[rstest]
    #[case("cali-pi-", "gnp.security.block", "cali-pi-gnp.security.block")]
    #[case("cali-tw-", "cali0123456789a", "cali-tw-cali0123456789a")]
    #[case(
        "cali-pi-",
        "np.default.a-very-long-policy-name-that-goes-on-and-on-and-on-forever",
        "cali-pi-np.default.a-very-long-policy-name-that_"
    )]
    #[case("cali-pri-", "we ird", "cali-pri-we_ird_")]
    fn chain_names(#[case] prefix: &str, #[case] id: &str, #[case] starts: &str) {
        let n = chain_name(prefix, id);
        assert!(n.as_str().starts_with(starts), "{n}");
        assert!(n.as_str().len() <= MAX_CHAIN_NAME, "{n}");
        assert_eq!(chain_name(prefix, id), n, "deterministic");
    }

    #[test]
    fn long_names_stay_distinct() {
        let a = "x".repeat(80) + "a";
        let b = "x".repeat(80) + "b";
        assert_ne!(chain_name("cali-pi-", &a), chain_name("cali-pi-", &b));
    }

    #[rstest]
    #[case(
        PolicyKind::GlobalNetworkPolicy,
        None,
        "security.block",
        "gnp.security.block"
    )]
    #[case(PolicyKind::NetworkPolicy, Some("prod"), "allow", "np.prod.allow")]
    #[case(PolicyKind::KubernetesNetworkPolicy, Some("d"), "x", "knp.d.x")]
    fn policy_ids(
        #[case] kind: PolicyKind,
        #[case] ns: Option<&str>,
        #[case] name: &str,
        #[case] want: &str,
    ) {
        let id = PolicyId {
            kind,
            namespace: ns.map(str::to_string),
            name: name.into(),
        };
        assert_eq!(policy_id(&id), want);
    }

    #[test]
    fn set_names_follow_calico() {
        let n = set_name(false, "s:qMt7iLlGDhvLnCjM0l9nzxbFoo-bar");
        assert_eq!(n.as_str(), "cali40s-qMt7iLlGDhvLnCjM0l9nzxb");
        assert_eq!(set_name(true, "s:abc").as_str(), "cali60s-abc");
    }

    #[test]
    fn log_prefixes_are_short_and_stable() {
        let p = log_prefix("node-1|x", 0);
        assert_eq!(p.len(), 16);
        assert_eq!(p, log_prefix("node-1|x", 0));
        assert_ne!(p, log_prefix("node-1|x", 1));
        assert_ne!(p, log_prefix("node-2|x", 0));
    }
}
