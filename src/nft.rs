//! This module deals with nftables rulesets as values: a typed tree of tables,
//! chains, sets and rules, rendered to `nft -f` script text by `Display`.
//!
//! The compiler builds a [`Table`]; the harness loads its rendering with one
//! `nft -f -` inside a scenario namespace. The text that is snapshotted is exactly the
//! text that is loaded.
//!
//! Guarantees:
//! - Rendering cannot fail and is deterministic: sets, chains and elements are
//!   emitted in the order the value holds them; set elements are sorted and
//!   de-duplicated on construction.
//! - A table renders as `table inet <name>` preceded by an idempotent
//!   `add table` + `delete table`, so loading the script replaces the whole table in
//!   one atomic transaction and touches nothing else.
//! - Names are checked on construction: only `[A-Za-z0-9_.-]`, at most 255 bytes,
//!   never an nft keyword, so that `nft list chain` works on every chain we make.
//! - [`Table::set_update_script`] gives, when two tables differ only in their sets'
//!   elements, the script that changes those elements in place (`delete element` +
//!   `add element`, one transaction): a large threat feed's update then costs its
//!   difference, not a reload of the whole table.

mod json;

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use ipnet::IpNet;

/// A name of a chain, set or table that is safe to print unquoted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

/// Words nft parses as keywords where a chain or set name may stand.
const KEYWORDS: &[&str] = &[
    "accept", "drop", "reject", "return", "jump", "goto", "continue", "queue", "fwd", "dup",
    "table", "chain", "set", "map", "rule", "counter", "log", "ip", "ip6", "inet", "tcp", "udp",
    "sctp", "icmp", "meta", "ct", "type", "hook", "priority", "policy", "flags", "elements",
    "limit", "nat", "filter", "route", "netdev", "arp", "bridge", "element", "comment",
];

impl Name {
    /// Returns `None` for names nft would not accept unquoted or would misparse.
    pub fn new(s: impl Into<String>) -> Option<Name> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= 255
            && s.as_bytes()[0].is_ascii_alphabetic()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            && !KEYWORDS.contains(&s.as_str());
        ok.then_some(Name(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainType {
    Filter,
    Nat,
    Route,
}

/// A base chain's attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseChain {
    pub chain_type: ChainType,
    pub hook: Hook,
    /// Numeric priority: raw −300, mangle −150, dstnat −100, filter 0, srcnat 100.
    pub priority: i32,
    pub policy_accept: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: Name,
    pub base: Option<BaseChain>,
    /// Shown as a comment on the chain: which policy or endpoint it belongs to.
    pub comment: Option<String>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetType {
    Ipv4,
    Ipv6,
    /// `ipv4_addr . inet_proto . inet_service`, for named ports.
    Ipv4ProtoPort,
    Ipv6ProtoPort,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Element {
    Net(IpNet),
    Addr(IpAddr),
    AddrProtoPort(IpAddr, u8, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub name: Name,
    pub set_type: SetType,
    /// Interval sets hold CIDRs; hash sets hold single addresses (fast updates).
    pub interval: bool,
    pub comment: Option<String>,
    elements: Vec<Element>,
}

impl Set {
    /// An interval set's prefixes are aggregated (nested ones dropped, adjacent ones
    /// merged: the same addresses), because nft rejects a named interval set whose
    /// elements overlap ("conflicting intervals"); two network sets holding
    /// `10.244.1.0/24` and `10.244.1.10/32` under one selector are everyday input.
    pub fn new(name: Name, set_type: SetType, interval: bool, mut elements: Vec<Element>) -> Set {
        if interval {
            let mut nets = Vec::new();
            let mut rest = Vec::new();
            for e in elements {
                match e {
                    Element::Net(n) => nets.push(n),
                    Element::Addr(a) => nets.push(IpNet::from(a)),
                    other => rest.push(other),
                }
            }
            elements = IpNet::aggregate(&nets)
                .into_iter()
                .map(Element::Net)
                .collect();
            elements.extend(rest);
        }
        elements.sort();
        elements.dedup();
        Set {
            name,
            set_type,
            interval,
            comment: None,
            elements,
        }
    }

    pub fn elements(&self) -> &[Element] {
        &self.elements
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    Saddr,
    Daddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// nft's name of the family's ICMP protocol (`icmp`, `icmpv6`).
    pub fn icmp(self) -> &'static str {
        match self {
            Family::V4 => "icmp",
            Family::V6 => "icmpv6",
        }
    }
}

/// One match expression of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// `meta nfproto ipv4|ipv6`
    Nfproto(Family),
    /// `iifname "x"` / `oifname "x"` (a trailing `*` is a wildcard).
    Iifname(String),
    Oifname(String),
    /// `ip saddr 10.0.0.0/8` (negated: `!=`).
    Addr {
        family: Family,
        dir: Dir,
        nets: Vec<IpNet>,
        negate: bool,
    },
    /// `ip saddr @set` (negated: `!= @set`).
    AddrInSet {
        family: Family,
        dir: Dir,
        set: Name,
        negate: bool,
    },
    /// `meta l4proto { 6, 17 }`
    L4proto {
        protos: Vec<u8>,
        negate: bool,
    },
    /// `th dport { 80, 1000-2000 }` (TCP, UDP and SCTP share the transport header).
    Port {
        dir: Dir,
        ranges: Vec<(u16, u16)>,
        negate: bool,
    },
    /// `ip saddr . meta l4proto . th sport @set` (named ports).
    AddrProtoPortInSet {
        family: Family,
        dir: Dir,
        set: Name,
        negate: bool,
    },
    /// `icmp type 8` / `icmpv6 type 128 code 0`.
    Icmp {
        family: Family,
        icmp_type: u8,
        code: Option<u8>,
        negate: bool,
    },
    /// `ct state established,related` (a bitmask match; nft lists it so, and so
    /// does the JSON form).
    CtState(Vec<&'static str>),
    /// `meta mark & 0x10000 == 0x10000` (set) or `== 0` (clear).
    MarkBit {
        mask: u32,
        set: bool,
    },
    /// `fib daddr type local`
    DaddrLocal,
    /// `tcp flags & 0x12 == 0x2`: a TCP SYN without ACK (a connection's first
    /// packet).
    TcpSynOnly,
    /// `icmpv6 type { 133, 134, 135, 136 }` (a list of types; `icmp` for IPv4).
    IcmpTypes {
        family: Family,
        types: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    Counter,
    /// `meta mark set meta mark | 0x10000`
    SetMark(u32),
    /// `meta mark set meta mark & 0xfffeffff`
    ClearMark(u32),
    /// `log prefix "..." group N` (NFLOG; the prefix is escaped on rendering).
    Nflog {
        group: u16,
        prefix: String,
    },
    Notrack,
    /// `dnat ip to 10.0.0.1:80`
    Dnat {
        family: Family,
        addr: IpAddr,
        port: Option<u16>,
    },
    /// `snat ip to 172.18.0.11`
    Snat {
        family: Family,
        addr: IpAddr,
    },
    Masquerade,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Return,
    Jump(Name),
    Goto(Name),
    /// `reject` (ICMP port unreachable / ICMPv6 port unreachable, as kube-proxy).
    Reject,
    /// `iifname vmap { "a" : goto c1, ... }` (or `oifname`): dispatch by interface.
    /// Entries are sorted by interface name on rendering; an empty map is never
    /// rendered by the compiler (nft rejects it).
    IfaceVmap {
        output: bool,
        entries: Vec<(String, Name)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub statements: Vec<Statement>,
    pub verdict: Option<Verdict>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: Name,
    pub sets: Vec<Set>,
    pub chains: Vec<Chain>,
}

/// The longest comment nft takes (`NFTNL_UDATA_COMMENT_MAXLEN`, bytes).
pub const COMMENT_MAX: usize = 128;

/// A comment as nft is given it: quoted (see [`quote`]) and, when longer than
/// [`COMMENT_MAX`] bytes, cut at a character boundary and ended with `...`, so a
/// chain, set or rule comment never makes a table unloadable. The cut is a pure
/// function of the text; nothing reads comments back (attribution uses the NFLOG
/// prefixes of the legend).
pub fn comment_text(s: &str) -> String {
    let mut c = cleaned(s);
    if c.len() > COMMENT_MAX {
        let mut cut = COMMENT_MAX - 3;
        while !c.is_char_boundary(cut) {
            cut -= 1;
        }
        c.truncate(cut);
        c.push_str("...");
    }
    c
}

fn quote(s: &str) -> String {
    format!("\"{}\"", cleaned(s))
}

fn cleaned(s: &str) -> String {
    // nft strings cannot contain a double quote; policylab never emits one but user
    // text (policy names in comments) is filtered to stay loadable.
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c == '"' {
                '\''
            } else if c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    cleaned
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        })
    }
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dir::Saddr => "saddr",
            Dir::Daddr => "daddr",
        })
    }
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    if items.len() == 1 {
        items[0].to_string()
    } else {
        let inner: Vec<String> = items.iter().map(ToString::to_string).collect();
        format!("{{ {} }}", inner.join(", "))
    }
}

fn neg(n: bool) -> &'static str {
    if n {
        "!= "
    } else {
        ""
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::Nfproto(Family::V4) => f.write_str("meta nfproto ipv4"),
            Match::Nfproto(Family::V6) => f.write_str("meta nfproto ipv6"),
            Match::Iifname(i) => write!(f, "iifname {}", quote(i)),
            Match::Oifname(i) => write!(f, "oifname {}", quote(i)),
            Match::Addr {
                family,
                dir,
                nets,
                negate,
            } => {
                write!(f, "{family} {dir} {}{}", neg(*negate), list(nets))
            }
            Match::AddrInSet {
                family,
                dir,
                set,
                negate,
            } => {
                write!(f, "{family} {dir} {}@{set}", neg(*negate))
            }
            Match::L4proto { protos, negate } => {
                write!(f, "meta l4proto {}{}", neg(*negate), list(protos))
            }
            Match::Port {
                dir,
                ranges,
                negate,
            } => {
                let items: Vec<String> = ranges
                    .iter()
                    .map(|(a, b)| {
                        if a == b {
                            a.to_string()
                        } else {
                            format!("{a}-{b}")
                        }
                    })
                    .collect();
                let d = match dir {
                    Dir::Saddr => "sport",
                    Dir::Daddr => "dport",
                };
                write!(f, "th {d} {}{}", neg(*negate), list(&items))
            }
            Match::AddrProtoPortInSet {
                family,
                dir,
                set,
                negate,
            } => {
                let d = match dir {
                    Dir::Saddr => "sport",
                    Dir::Daddr => "dport",
                };
                write!(
                    f,
                    "{family} {dir} . meta l4proto . th {d} {}@{set}",
                    neg(*negate)
                )
            }
            Match::Icmp {
                family,
                icmp_type,
                code,
                negate,
            } => {
                let p = family.icmp();
                match code {
                    None => write!(f, "{p} type {}{icmp_type}", neg(*negate)),
                    Some(c) if !*negate => write!(f, "{p} type {icmp_type} {p} code {c}"),
                    // NOT (type AND code) as one concatenated comparison.
                    Some(c) => write!(f, "{p} type . {p} code != {{ {icmp_type} . {c} }}"),
                }
            }
            Match::CtState(states) => write!(f, "ct state {}", states.join(",")),
            Match::MarkBit { mask, set } => {
                write!(
                    f,
                    "meta mark & {mask:#x} == {:#x}",
                    if *set { *mask } else { 0 }
                )
            }
            Match::DaddrLocal => f.write_str("fib daddr type local"),
            Match::TcpSynOnly => f.write_str("tcp flags & 0x12 == 0x2"),
            Match::IcmpTypes { family, types } => {
                let p = family.icmp();
                write!(f, "{p} type {}", list(types))
            }
        }
    }
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Counter => f.write_str("counter"),
            Statement::SetMark(m) => write!(f, "meta mark set meta mark | {m:#x}"),
            Statement::ClearMark(m) => write!(f, "meta mark set meta mark & {:#x}", !m),
            Statement::Nflog { group, prefix } => {
                write!(f, "log prefix {} group {group}", quote(prefix))
            }
            Statement::Notrack => f.write_str("notrack"),
            Statement::Dnat { family, addr, port } => match (addr, port) {
                (IpAddr::V6(a), Some(p)) => write!(f, "dnat {family} to [{a}]:{p}"),
                (a, Some(p)) => write!(f, "dnat {family} to {a}:{p}"),
                (a, None) => write!(f, "dnat {family} to {a}"),
            },
            Statement::Snat { family, addr } => write!(f, "snat {family} to {addr}"),
            Statement::Masquerade => f.write_str("masquerade"),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept => f.write_str("accept"),
            Verdict::Drop => f.write_str("drop"),
            Verdict::Return => f.write_str("return"),
            Verdict::Jump(c) => write!(f, "jump {c}"),
            Verdict::Goto(c) => write!(f, "goto {c}"),
            Verdict::Reject => f.write_str("reject"),
            Verdict::IfaceVmap { output, entries } => {
                let mut sorted: Vec<&(String, Name)> = entries.iter().collect();
                sorted.sort();
                let items: Vec<String> = sorted
                    .iter()
                    .map(|(i, c)| format!("{} : goto {c}", quote(i)))
                    .collect();
                write!(
                    f,
                    "{} vmap {{ {} }}",
                    if *output { "oifname" } else { "iifname" },
                    items.join(", ")
                )
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.matches.iter().map(ToString::to_string).collect();
        parts.extend(self.statements.iter().map(ToString::to_string));
        if let Some(v) = &self.verdict {
            parts.push(v.to_string());
        }
        if let Some(c) = &self.comment {
            parts.push(format!("comment {}", quote(&comment_text(c))));
        }
        f.write_str(&parts.join(" "))
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Element::Net(n) => write!(f, "{n}"),
            Element::Addr(a) => write!(f, "{a}"),
            Element::AddrProtoPort(a, p, port) => write!(f, "{a} . {p} . {port}"),
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        // Replace the table atomically: make sure it exists, delete it, re-create it.
        let _ = writeln!(out, "add table inet {}", self.name);
        let _ = writeln!(out, "delete table inet {}", self.name);
        let _ = writeln!(out, "table inet {} {{", self.name);
        for s in &self.sets {
            let ty = match s.set_type {
                SetType::Ipv4 => "ipv4_addr",
                SetType::Ipv6 => "ipv6_addr",
                SetType::Ipv4ProtoPort => "ipv4_addr . inet_proto . inet_service",
                SetType::Ipv6ProtoPort => "ipv6_addr . inet_proto . inet_service",
            };
            let _ = writeln!(out, "\tset {} {{", s.name);
            let _ = writeln!(out, "\t\ttype {ty}");
            if s.interval {
                let _ = writeln!(out, "\t\tflags interval");
            }
            if let Some(c) = &s.comment {
                let _ = writeln!(out, "\t\tcomment {}", quote(&comment_text(c)));
            }
            if !s.elements.is_empty() {
                let items: Vec<String> = s.elements.iter().map(ToString::to_string).collect();
                let _ = writeln!(out, "\t\telements = {{ {} }}", items.join(", "));
            }
            let _ = writeln!(out, "\t}}");
        }
        for c in &self.chains {
            let _ = writeln!(out, "\tchain {} {{", c.name);
            if let Some(cm) = &c.comment {
                let _ = writeln!(out, "\t\tcomment {}", quote(&comment_text(cm)));
            }
            if let Some(b) = &c.base {
                let ty = match b.chain_type {
                    ChainType::Filter => "filter",
                    ChainType::Nat => "nat",
                    ChainType::Route => "route",
                };
                let hook = match b.hook {
                    Hook::Prerouting => "prerouting",
                    Hook::Input => "input",
                    Hook::Forward => "forward",
                    Hook::Output => "output",
                    Hook::Postrouting => "postrouting",
                };
                let pol = if b.policy_accept { "accept" } else { "drop" };
                let _ = writeln!(
                    out,
                    "\t\ttype {ty} hook {hook} priority {}; policy {pol};",
                    b.priority
                );
            }
            for r in &c.rules {
                let _ = writeln!(out, "\t\t{r}");
            }
            let _ = writeln!(out, "\t}}");
        }
        let _ = writeln!(out, "}}");
        f.write_str(&out)
    }
}

impl Table {
    /// The `nft -f` script that turns the loaded table `old` into `self` by changing
    /// set elements only (`delete element` for the elements `old` has and `self` has
    /// not, then `add element` for the new ones; one transaction, so a probe sees the
    /// old set or the new one), or `None` when
    /// anything else differs (name, chains, a set's name, type, flags or comment):
    /// then the whole table must be reloaded. An empty script means no change. An
    /// interval set losing any element is flushed and refilled instead (nft deletes
    /// interval elements in time proportional to the set's size each).
    pub fn set_update_script(&self, old: &Table) -> Option<String> {
        if self.name != old.name || self.chains != old.chains || self.sets.len() != old.sets.len() {
            return None;
        }
        let mut out = String::new();
        for (new, was) in self.sets.iter().zip(&old.sets) {
            if new.name != was.name
                || new.set_type != was.set_type
                || new.interval != was.interval
                || new.comment != was.comment
            {
                return None;
            }
            // Both element lists are sorted and de-duplicated: one merge walk.
            let (mut gone, mut added) = (Vec::new(), Vec::new());
            let (mut i, mut j) = (0, 0);
            while i < was.elements.len() || j < new.elements.len() {
                match (was.elements.get(i), new.elements.get(j)) {
                    (Some(a), Some(b)) if a == b => {
                        i += 1;
                        j += 1;
                    }
                    (Some(a), Some(b)) if a < b => {
                        gone.push(a);
                        i += 1;
                    }
                    (Some(a), None) => {
                        gone.push(a);
                        i += 1;
                    }
                    (_, Some(b)) => {
                        added.push(b);
                        j += 1;
                    }
                    (None, None) => break,
                }
            }
            // nft 1.0.6 deletes an interval set's elements in time proportional to
            // deletions x set size (measured: 500 from 100,000 take 65 s, 10,000 from
            // 10,000 take 30 s); a flush and a full add is linear (100,000 in ~1 s).
            // A hash set deletes in time linear in the deletions, but deleting more
            // elements than the set keeps costs more than refilling it (measured:
            // shrinking 100,000 to 2 by deletes 0.48 s, flush + add 2: ~20 ms).
            if (new.interval && !gone.is_empty()) || gone.len() > new.elements.len() {
                let _ = writeln!(out, "flush set inet {} {}", self.name, new.name);
                gone = Vec::new();
                added = new.elements.iter().collect();
            }
            for (verb, elements) in [("delete", gone), ("add", added)] {
                if elements.is_empty() {
                    continue;
                }
                let items: Vec<String> = elements.iter().map(ToString::to_string).collect();
                let _ = writeln!(
                    out,
                    "{verb} element inet {} {} {{ {} }}",
                    self.name,
                    new.name,
                    items.join(", ")
                );
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::new(s).unwrap()
    }

    /// nft takes comments of at most 128 bytes (checked on nft 1.0.6: 128 loads,
    /// 129 is "comment too long"); a longer one is cut at a character boundary.
    #[test]
    fn comments_are_cut_to_nfts_limit() {
        let fits = "a".repeat(COMMENT_MAX);
        assert_eq!(comment_text(&fits), fits);
        let long = "a".repeat(COMMENT_MAX + 1);
        let cut = comment_text(&long);
        assert_eq!(cut.len(), COMMENT_MAX);
        assert!(cut.ends_with("..."));
        let wide = "é".repeat(100); // 200 bytes
        let cut = comment_text(&wide);
        assert!(cut.len() <= COMMENT_MAX && cut.ends_with("..."), "{cut}");
        assert_eq!(comment_text("say \"hi\""), "say 'hi'");
        let r = Rule {
            matches: vec![],
            statements: vec![],
            verdict: Some(Verdict::Accept),
            comment: Some("x".repeat(300)),
        };
        let text = r.to_string();
        let quoted = text
            .split_once("comment ")
            .map(|(_, c)| c)
            .unwrap_or_default();
        assert_eq!(quoted.len(), COMMENT_MAX + 2, "{text}");
    }

    /// A named interval set never holds overlapping elements (nft: "conflicting
    /// intervals"): nested prefixes go, adjacent ones merge, the addresses stay.
    #[test]
    fn interval_sets_aggregate_their_prefixes() {
        let net = |s: &str| Element::Net(s.parse().unwrap());
        let s = Set::new(
            n("s"),
            SetType::Ipv4,
            true,
            vec![
                net("10.244.1.0/24"),
                net("10.244.1.10/32"),
                Element::Addr("10.244.1.20".parse().unwrap()),
                net("192.0.2.0/25"),
                net("192.0.2.128/25"),
                net("198.51.100.7/32"),
            ],
        );
        assert_eq!(
            s.elements(),
            &[
                net("10.244.1.0/24"),
                net("192.0.2.0/24"),
                net("198.51.100.7/32")
            ]
        );
        // A hash set keeps its addresses as they are.
        let h = Set::new(
            n("h"),
            SetType::Ipv4,
            false,
            vec![
                Element::Addr("10.0.0.2".parse().unwrap()),
                Element::Addr("10.0.0.1".parse().unwrap()),
            ],
        );
        assert_eq!(h.elements().len(), 2);
    }

    #[test]
    fn names_reject_keywords_and_odd_characters() {
        assert!(Name::new("pol-in-gnp-security.block").is_some());
        assert!(Name::new("fwd").is_none());
        assert!(Name::new("a b").is_none());
        assert!(Name::new("1abc").is_none());
        assert!(Name::new("").is_none());
    }

    #[test]
    fn rule_renders_matches_statements_verdict_comment() {
        let r = Rule {
            matches: vec![
                Match::AddrInSet {
                    family: Family::V4,
                    dir: Dir::Daddr,
                    set: n("sel-abc"),
                    negate: false,
                },
                Match::L4proto {
                    protos: vec![6],
                    negate: false,
                },
                Match::Port {
                    dir: Dir::Daddr,
                    ranges: vec![(80, 80), (30000, 32767)],
                    negate: true,
                },
            ],
            statements: vec![
                Statement::SetMark(0x10000),
                Statement::Nflog {
                    group: 1,
                    prefix: "AP0|gnp:x\"y".into(),
                },
            ],
            verdict: Some(Verdict::Return),
            comment: Some("rule 0".into()),
        };
        assert_eq!(
            r.to_string(),
            "ip daddr @sel-abc meta l4proto 6 th dport != { 80, 30000-32767 } meta mark set meta mark | 0x10000 log prefix \"AP0|gnp:x'y\" group 1 return comment \"rule 0\""
        );
    }

    #[test]
    fn table_replaces_itself_atomically_and_sorts_elements() {
        let t = Table {
            name: n("policylab"),
            sets: vec![Set::new(
                n("s1"),
                SetType::Ipv4,
                true,
                vec![
                    Element::Net("203.0.113.0/24".parse().unwrap()),
                    Element::Net("192.0.2.55/32".parse().unwrap()),
                    Element::Net("192.0.2.55/32".parse().unwrap()),
                ],
            )],
            chains: vec![Chain {
                name: n("forward-hook"),
                base: Some(BaseChain {
                    chain_type: ChainType::Filter,
                    hook: Hook::Forward,
                    priority: 0,
                    policy_accept: true,
                }),
                comment: None,
                rules: vec![Rule {
                    matches: vec![Match::CtState(vec!["established", "related"])],
                    verdict: Some(Verdict::Accept),
                    ..Rule::default()
                }],
            }],
        };
        let text = t.to_string();
        assert_eq!(
            text,
            "add table inet policylab\ndelete table inet policylab\ntable inet policylab {\n\tset s1 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 192.0.2.55/32, 203.0.113.0/24 }\n\t}\n\tchain forward-hook {\n\t\ttype filter hook forward priority 0; policy accept;\n\t\tct state established,related accept\n\t}\n}\n"
        );
    }

    #[test]
    fn set_update_script_changes_elements_only() {
        let net = |s: &str| Element::Net(s.parse().unwrap());
        let table = |elements: Vec<Element>| Table {
            name: n("policylab"),
            sets: vec![
                Set::new(n("feed"), SetType::Ipv4, true, elements),
                Set::new(n("other"), SetType::Ipv4, true, vec![net("10.0.0.0/8")]),
            ],
            chains: vec![],
        };
        let old = table(vec![net("192.0.2.1/32"), net("198.51.100.0/24")]);
        let grown = table(vec![
            net("192.0.2.1/32"),
            net("198.51.100.0/24"),
            net("203.0.113.7/32"),
        ]);
        assert_eq!(
            grown.set_update_script(&old).unwrap(),
            "add element inet policylab feed { 203.0.113.7/32 }\n"
        );
        assert_eq!(old.set_update_script(&old).unwrap(), "");
        // An interval set losing an element is flushed and refilled.
        let new = table(vec![net("198.51.100.0/24"), net("203.0.113.7/32")]);
        assert_eq!(
            new.set_update_script(&old).unwrap(),
            "flush set inet policylab feed\nadd element inet policylab feed { 198.51.100.0/24, 203.0.113.7/32 }\n"
        );
        assert_eq!(
            table(vec![]).set_update_script(&old).unwrap(),
            "flush set inet policylab feed\n"
        );
        // A hash set gets the difference.
        let addr = |s: &str| Element::Addr(s.parse().unwrap());
        let hash = |elements: Vec<Element>| Table {
            name: n("policylab"),
            sets: vec![Set::new(n("h"), SetType::Ipv4, false, elements)],
            chains: vec![],
        };
        assert_eq!(
            hash(vec![addr("192.0.2.2"), addr("192.0.2.3")])
                .set_update_script(&hash(vec![addr("192.0.2.1"), addr("192.0.2.2")]))
                .unwrap(),
            "delete element inet policylab h { 192.0.2.1 }\nadd element inet policylab h { 192.0.2.3 }\n"
        );
        // A hash set losing more than it keeps is flushed and refilled.
        assert_eq!(
            hash(vec![addr("192.0.2.9")])
                .set_update_script(&hash(vec![addr("192.0.2.1"), addr("192.0.2.2")]))
                .unwrap(),
            "flush set inet policylab h\nadd element inet policylab h { 192.0.2.9 }\n"
        );
        // Anything beyond elements needs a reload.
        let mut flags = new.clone();
        flags.sets[0].interval = false;
        assert!(flags.set_update_script(&old).is_none());
        let mut chains = new.clone();
        chains.chains.push(Chain {
            name: n("c"),
            base: None,
            comment: None,
            rules: vec![],
        });
        assert!(chains.set_update_script(&old).is_none());
        let mut fewer = new;
        fewer.sets.pop();
        assert!(fewer.set_update_script(&old).is_none());
    }
}
