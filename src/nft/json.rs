//! A [`Table`] in the JSON schema of the `nftables` crate (0.6), for `nft -j -f`.
//!
//! The value is built with the crate's typed schema, converted once to a
//! `serde_json::Value` and patched where the crate serializes what nft 1.0.6
//! rejects (the crate's `Statement::Notrack` is the bare string `"notrack"`): `"notrack"` becomes `{"notrack": null}`. Verdicts in
//! our interface maps are `goto` objects, which the crate serializes correctly.
//!
//! What the JSON cannot carry: chain and set comments (the crate's `Chain` has no
//! comment field, and nft 1.0.6 ignores `comment` on chains and sets in JSON
//! input). They are text-only; rules keep their comments. Everything else lists
//! identically to the text rendering (checked by the harness's kernel test).

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;

use nftables::expr::{
    self as ex, BinaryOperation, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField,
    SetItem,
};
use nftables::schema::{self, NfCmd, NfListObject, NfObject, Nftables};
use nftables::stmt::{self as st, Operator, Statement as S};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use serde_json::Value;

use super::{
    ChainType, Dir, Element, Family, Hook, Match, Rule, SetType, Statement, Table, Verdict,
};

type E = Expression<'static>;

fn s(text: impl Into<String>) -> E {
    Expression::String(Cow::Owned(text.into()))
}

fn num(n: impl Into<u32>) -> E {
    Expression::Number(n.into())
}

fn meta(key: MetaKey) -> E {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn payload(proto: &str, field: &str) -> E {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Owned(proto.to_string()),
            field: Cow::Owned(field.to_string()),
        },
    )))
}

fn set_of(items: Vec<E>) -> E {
    Expression::Named(NamedExpression::Set(
        items.into_iter().map(SetItem::Element).collect(),
    ))
}

fn one_or_set(mut items: Vec<E>) -> E {
    if items.len() == 1 {
        items.remove(0)
    } else {
        set_of(items)
    }
}

fn matches(left: E, right: E, negate: bool) -> S<'static> {
    S::Match(st::Match {
        left,
        right,
        op: if negate { Operator::NEQ } else { Operator::EQ },
    })
}

fn fam(f: Family) -> &'static str {
    match f {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    }
}

fn dir_field(d: Dir) -> &'static str {
    match d {
        Dir::Saddr => "saddr",
        Dir::Daddr => "daddr",
    }
}

fn port_field(d: Dir) -> &'static str {
    match d {
        Dir::Saddr => "sport",
        Dir::Daddr => "dport",
    }
}

fn net(n: &ipnet::IpNet) -> E {
    if n.prefix_len() == n.max_prefix_len() {
        s(n.addr().to_string())
    } else {
        Expression::Named(NamedExpression::Prefix(ex::Prefix {
            addr: Box::new(s(n.network().to_string())),
            len: u32::from(n.prefix_len()),
        }))
    }
}

fn port_range(a: u16, b: u16) -> E {
    if a == b {
        num(a)
    } else {
        Expression::Range(Box::new(ex::Range {
            range: [num(a), num(b)],
        }))
    }
}

fn mark_and(mask: u32) -> E {
    Expression::BinaryOperation(Box::new(BinaryOperation::AND(
        meta(MetaKey::Mark),
        num(mask),
    )))
}

fn match_stmts(m: &Match, out: &mut Vec<S<'static>>) {
    match m {
        Match::Nfproto(f) => out.push(matches(
            meta(MetaKey::Nfproto),
            s(match f {
                Family::V4 => "ipv4",
                Family::V6 => "ipv6",
            }),
            false,
        )),
        Match::Iifname(i) => out.push(matches(meta(MetaKey::Iifname), s(i.clone()), false)),
        Match::Oifname(i) => out.push(matches(meta(MetaKey::Oifname), s(i.clone()), false)),
        Match::Addr {
            family,
            dir,
            nets,
            negate,
        } => out.push(matches(
            payload(fam(*family), dir_field(*dir)),
            one_or_set(nets.iter().map(net).collect()),
            *negate,
        )),
        Match::AddrInSet {
            family,
            dir,
            set,
            negate,
        } => out.push(matches(
            payload(fam(*family), dir_field(*dir)),
            s(format!("@{set}")),
            *negate,
        )),
        Match::L4proto { protos, negate } => out.push(matches(
            meta(MetaKey::L4proto),
            one_or_set(protos.iter().map(|p| num(*p)).collect()),
            *negate,
        )),
        Match::Port {
            dir,
            ranges,
            negate,
        } => out.push(matches(
            payload("th", port_field(*dir)),
            one_or_set(ranges.iter().map(|(a, b)| port_range(*a, *b)).collect()),
            *negate,
        )),
        Match::AddrProtoPortInSet {
            family,
            dir,
            set,
            negate,
        } => out.push(matches(
            Expression::Named(NamedExpression::Concat(vec![
                payload(fam(*family), dir_field(*dir)),
                meta(MetaKey::L4proto),
                payload("th", port_field(*dir)),
            ])),
            s(format!("@{set}")),
            *negate,
        )),
        Match::Icmp {
            family,
            icmp_type,
            code,
            negate,
        } => {
            let p = family.icmp();
            match code {
                None => out.push(matches(payload(p, "type"), num(*icmp_type), *negate)),
                Some(c) if !*negate => {
                    out.push(matches(payload(p, "type"), num(*icmp_type), false));
                    out.push(matches(payload(p, "code"), num(*c), false));
                }
                Some(c) => out.push(matches(
                    Expression::Named(NamedExpression::Concat(vec![
                        payload(p, "type"),
                        payload(p, "code"),
                    ])),
                    set_of(vec![Expression::Named(NamedExpression::Concat(vec![
                        num(*icmp_type),
                        num(*c),
                    ]))]),
                    true,
                )),
            }
        }
        Match::CtState(states) => out.push(S::Match(st::Match {
            left: Expression::Named(NamedExpression::CT(ex::CT {
                key: Cow::Borrowed("state"),
                family: None,
                dir: None,
            })),
            right: Expression::List(states.iter().map(|x| s(*x)).collect()),
            op: Operator::IN,
        })),
        Match::MarkBit { mask, set } => out.push(matches(
            mark_and(*mask),
            num(if *set { *mask } else { 0 }),
            false,
        )),
        Match::DaddrLocal => out.push(matches(
            Expression::Named(NamedExpression::Fib(ex::Fib {
                result: ex::FibResult::Type,
                flags: HashSet::from([ex::FibFlag::Daddr]),
            })),
            s("local"),
            false,
        )),
        Match::TcpSynOnly => out.push(matches(
            Expression::BinaryOperation(Box::new(BinaryOperation::AND(
                payload("tcp", "flags"),
                num(0x12u32),
            ))),
            num(0x2u32),
            false,
        )),
        Match::IcmpTypes { family, types } => out.push(matches(
            payload(family.icmp(), "type"),
            one_or_set(types.iter().map(|t| num(*t)).collect()),
            false,
        )),
    }
}

fn nat(family: Family, addr: IpAddr, port: Option<u16>) -> st::NAT<'static> {
    st::NAT {
        addr: Some(s(addr.to_string())),
        family: Some(match family {
            Family::V4 => st::NATFamily::IP,
            Family::V6 => st::NATFamily::IP6,
        }),
        port: port.map(num),
        flags: None,
    }
}

fn statement(x: &Statement) -> S<'static> {
    match x {
        Statement::Counter => S::Counter(st::Counter::Anonymous(None)),
        Statement::SetMark(m) => S::Mangle(st::Mangle {
            key: meta(MetaKey::Mark),
            value: Expression::BinaryOperation(Box::new(BinaryOperation::OR(vec![
                meta(MetaKey::Mark),
                num(*m),
            ]))),
        }),
        Statement::ClearMark(m) => S::Mangle(st::Mangle {
            key: meta(MetaKey::Mark),
            value: mark_and(!*m),
        }),
        Statement::Nflog { group, prefix } => S::Log(Some(st::Log {
            prefix: Some(Cow::Owned(prefix.clone())),
            ..st::Log::new(Some(u32::from(*group)))
        })),
        Statement::Notrack => S::Notrack,
        Statement::Dnat { family, addr, port } => S::DNAT(Some(nat(*family, *addr, *port))),
        Statement::Snat { family, addr } => S::SNAT(Some(nat(*family, *addr, None))),
        Statement::Masquerade => S::Masquerade(None),
    }
}

fn verdict(v: &Verdict) -> S<'static> {
    let target = |n: &super::Name| st::JumpTarget {
        target: Cow::Owned(n.to_string()),
    };
    match v {
        Verdict::Accept => S::Accept(None),
        Verdict::Drop => S::Drop(None),
        Verdict::Return => S::Return(None),
        Verdict::Jump(n) => S::Jump(target(n)),
        Verdict::Goto(n) => S::Goto(target(n)),
        Verdict::Reject => S::Reject(None),
        Verdict::IfaceVmap { output, entries } => {
            let mut sorted: Vec<&(String, super::Name)> = entries.iter().collect();
            sorted.sort();
            S::VerdictMap(st::VerdictMap {
                key: meta(if *output {
                    MetaKey::Oifname
                } else {
                    MetaKey::Iifname
                }),
                data: Expression::Named(NamedExpression::Set(
                    sorted
                        .into_iter()
                        .map(|(i, c)| {
                            SetItem::Mapping(
                                s(i.clone()),
                                Expression::Verdict(ex::Verdict::Goto(target(c))),
                            )
                        })
                        .collect(),
                )),
            })
        }
    }
}

fn rule_exprs(r: &Rule) -> Vec<S<'static>> {
    let mut out = vec![];
    for m in &r.matches {
        match_stmts(m, &mut out);
    }
    out.extend(r.statements.iter().map(statement));
    if let Some(v) = &r.verdict {
        out.push(verdict(v));
    }
    out
}

fn element(e: &Element) -> E {
    match e {
        Element::Net(n) => net(n),
        Element::Addr(a) => s(a.to_string()),
        Element::AddrProtoPort(a, p, port) => Expression::Named(NamedExpression::Concat(vec![
            s(a.to_string()),
            num(*p),
            num(*port),
        ])),
    }
}

impl Table {
    /// The table as the `nftables` crate's typed schema: `add table`, `delete
    /// table`, then the table, its sets, chains and rules (one atomic batch, like
    /// the text script). Serialize it with [`Table::to_nftables_json`], which
    /// patches what the crate serializes wrongly.
    pub fn to_nftables(&self) -> Nftables<'static> {
        let name: Cow<'static, str> = Cow::Owned(self.name.to_string());
        let table = || schema::Table {
            family: NfFamily::INet,
            name: name.clone(),
            handle: None,
        };
        let mut objects = vec![
            NfObject::CmdObject(NfCmd::Add(NfListObject::Table(table()))),
            NfObject::CmdObject(NfCmd::Delete(NfListObject::Table(table()))),
            NfObject::CmdObject(NfCmd::Add(NfListObject::Table(table()))),
        ];
        for set in &self.sets {
            use schema::SetType as T;
            let ty = match set.set_type {
                SetType::Ipv4 => schema::SetTypeValue::Single(T::Ipv4Addr),
                SetType::Ipv6 => schema::SetTypeValue::Single(T::Ipv6Addr),
                SetType::Ipv4ProtoPort => schema::SetTypeValue::Concatenated(Cow::Owned(vec![
                    T::Ipv4Addr,
                    T::InetProto,
                    T::InetService,
                ])),
                SetType::Ipv6ProtoPort => schema::SetTypeValue::Concatenated(Cow::Owned(vec![
                    T::Ipv6Addr,
                    T::InetProto,
                    T::InetService,
                ])),
            };
            let elements: Vec<E> = set.elements().iter().map(element).collect();
            objects.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Set(
                Box::new(schema::Set {
                    family: NfFamily::INet,
                    table: name.clone(),
                    name: Cow::Owned(set.name.to_string()),
                    set_type: ty,
                    flags: set
                        .interval
                        .then(|| HashSet::from([schema::SetFlag::Interval])),
                    elem: (!elements.is_empty()).then(|| Cow::Owned(elements)),
                    comment: set
                        .comment
                        .as_deref()
                        .map(|c| Cow::Owned(crate::nft::comment_text(c))),
                    ..schema::Set::default()
                }),
            ))));
        }
        for c in &self.chains {
            let mut chain = schema::Chain {
                family: NfFamily::INet,
                table: name.clone(),
                name: Cow::Owned(c.name.to_string()),
                ..schema::Chain::default()
            };
            if let Some(b) = &c.base {
                chain._type = Some(match b.chain_type {
                    ChainType::Filter => NfChainType::Filter,
                    ChainType::Nat => NfChainType::NAT,
                    ChainType::Route => NfChainType::Route,
                });
                chain.hook = Some(match b.hook {
                    Hook::Prerouting => NfHook::Prerouting,
                    Hook::Input => NfHook::Input,
                    Hook::Forward => NfHook::Forward,
                    Hook::Output => NfHook::Output,
                    Hook::Postrouting => NfHook::Postrouting,
                });
                chain.prio = Some(b.priority);
                chain.policy = Some(if b.policy_accept {
                    NfChainPolicy::Accept
                } else {
                    NfChainPolicy::Drop
                });
            }
            objects.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Chain(chain))));
        }
        for c in &self.chains {
            for r in &c.rules {
                objects.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(
                    schema::Rule {
                        family: NfFamily::INet,
                        table: name.clone(),
                        chain: Cow::Owned(c.name.to_string()),
                        expr: Cow::Owned(rule_exprs(r)),
                        handle: None,
                        index: None,
                        comment: r
                            .comment
                            .as_deref()
                            .map(|c| Cow::Owned(crate::nft::comment_text(c))),
                    },
                ))));
            }
        }
        Nftables {
            objects: Cow::Owned(objects),
        }
    }

    /// The JSON `nft -j -f -` loads: [`Table::to_nftables`] serialized and patched
    /// (`"notrack"` → `{"notrack": null}`, which nft 1.0.6 requires).
    pub fn to_nftables_json(&self) -> Value {
        let mut v = serde_json::to_value(self.to_nftables()).unwrap_or(Value::Null);
        patch(&mut v);
        v
    }
}

/// Rewrites the crate's bare-string statements nft rejects into objects.
fn patch(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(exprs)) = map.get_mut("expr") {
                for e in exprs.iter_mut() {
                    if e.as_str() == Some("notrack") {
                        *e = serde_json::json!({ "notrack": null });
                    }
                }
            }
            for (_, x) in map.iter_mut() {
                patch(x);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(patch),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Chain, Name};
    use super::*;

    #[test]
    fn notrack_is_patched_and_vmaps_goto_objects() {
        let n = |s: &str| Name::new(s).expect("name");
        let t = Table {
            name: n("policylab"),
            sets: vec![],
            chains: vec![Chain {
                name: n("c"),
                base: None,
                comment: None,
                rules: vec![
                    Rule {
                        matches: vec![Match::MarkBit {
                            mask: 0x10000,
                            set: true,
                        }],
                        statements: vec![Statement::Notrack],
                        verdict: Some(Verdict::Accept),
                        comment: None,
                    },
                    Rule {
                        verdict: Some(Verdict::IfaceVmap {
                            output: false,
                            entries: vec![("cali1".into(), n("x"))],
                        }),
                        ..Rule::default()
                    },
                ],
            }],
        };
        let json = t.to_nftables_json().to_string();
        assert!(json.contains(r#"{"notrack":null}"#), "{json}");
        // No bare string statement left (nft rejects it).
        assert!(!json.contains(r#""notrack","#) && !json.contains(r#""notrack"]"#));
        assert!(json.contains(r#"{"goto":{"target":"x"}}"#), "{json}");
        assert!(
            json.contains(r#"{"delete":{"table""#),
            "replaces the table: {json}"
        );
    }
}
