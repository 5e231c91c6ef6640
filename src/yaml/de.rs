//! This module deals with turning a spanned YAML [`Node`] into typed Rust values
//! with serde, keeping positions.
//!
//! `from_node::<T>(&node)` deserializes any `T: Deserialize`. Errors carry the span
//! of the node that caused them (for an unknown field, the key; for a missing field,
//! the mapping) and the dotted path to it. Fields of type [`Spanned<T>`] record where
//! their value was written, so later validation can point at it.
//!
//! Scalars deserialize leniently by their text when a string is asked for (the schema
//! pass in [`super::schema`] is what enforces YAML types the way the API server
//! does); numbers and booleans must type as such.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::{Deserialize, Serialize};

use super::node::{Node, Resolved, Value};
use crate::diag::{Diagnostic, FileId, Span, Spanned};

/// Deserializes `T` from a node. On failure, one diagnostic at the offending node.
pub fn from_node<'de, T: Deserialize<'de>>(node: &'de Node) -> Result<T, Diagnostic> {
    T::deserialize(NodeDe {
        node,
        path: String::new(),
    })
    .map_err(|e| e.into_diagnostic(node.span))
}

/// A deserialization error with the place it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError {
    pub span: Option<Span>,
    pub path: String,
    pub message: String,
}

impl DeError {
    fn located(mut self, span: Span, path: &str) -> DeError {
        if self.span.is_none() {
            self.span = Some(span);
            self.path = path.to_string();
        }
        self
    }

    pub fn into_diagnostic(self, fallback: Span) -> Diagnostic {
        let msg = if self.path.is_empty() {
            self.message
        } else {
            format!("{}: {}", self.path, self.message)
        };
        Diagnostic::error(self.span.unwrap_or(fallback), msg)
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            span: None,
            path: String::new(),
            message: msg.to_string(),
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut exp: Vec<&str> = expected.to_vec();
        exp.sort_unstable();
        DeError::custom(format!(
            "unknown field \"{field}\" (expected one of: {})",
            exp.join(", ")
        ))
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

struct NodeDe<'a> {
    node: &'a Node,
    path: String,
}

impl<'a> NodeDe<'a> {
    fn err(&self, msg: impl fmt::Display) -> DeError {
        DeError {
            span: Some(self.node.span),
            path: self.path.clone(),
            message: msg.to_string(),
        }
    }

    fn invalid_type(&self, exp: &dyn de::Expected) -> DeError {
        self.err(format_args!(
            "expected {exp}, found {}",
            self.node.describe()
        ))
    }

    fn int(&self) -> Option<i64> {
        match self.node.resolved()? {
            Resolved::Int(i) => Some(i),
            _ => None,
        }
    }
}

macro_rules! de_int {
    ($name:ident, $visit:ident, $ty:ty) => {
        fn $name<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.int() {
                Some(i) => match <$ty>::try_from(i) {
                    Ok(v) => visitor
                        .$visit(v)
                        .map_err(|e: DeError| e.located(self.node.span, &self.path)),
                    Err(_) => {
                        Err(self.err(format_args!("{i} is out of range for {}", stringify!($ty))))
                    }
                },
                None => Err(self.invalid_type(&visitor)),
            }
        }
    };
}

impl<'de> Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        let path = self.path.clone();
        let r = match &self.node.value {
            Value::Map(entries) => visitor.visit_map(NodeMap {
                entries,
                idx: 0,
                path: self.path.clone(),
                value: None,
            }),
            Value::Seq(items) => visitor.visit_seq(NodeSeq {
                items,
                idx: 0,
                path: self.path.clone(),
            }),
            Value::Scalar(s) => match s.resolve() {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(i) => visitor.visit_i64(i),
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Str(_) => visitor.visit_borrowed_str(&s.text),
            },
        };
        r.map_err(|e| e.located(span, &path))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.resolved() {
            Some(Resolved::Bool(b)) => visitor.visit_bool(b),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    de_int!(deserialize_i8, visit_i8, i8);
    de_int!(deserialize_i16, visit_i16, i16);
    de_int!(deserialize_i32, visit_i32, i32);
    de_int!(deserialize_i64, visit_i64, i64);
    de_int!(deserialize_u8, visit_u8, u8);
    de_int!(deserialize_u16, visit_u16, u16);
    de_int!(deserialize_u32, visit_u32, u32);
    de_int!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.resolved() {
            Some(Resolved::Int(i)) => visitor.visit_f64(i as f64),
            Some(Resolved::Float(f)) => visitor.visit_f64(f),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Scalar(s) => visitor
                .visit_borrowed_str(&s.text)
                .map_err(|e: DeError| e.located(self.node.span, &self.path)),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor.visit_unit()
        } else {
            Err(self.invalid_type(&visitor))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(items) => visitor
                .visit_seq(NodeSeq {
                    items,
                    idx: 0,
                    path: self.path.clone(),
                })
                .map_err(|e| e.located(self.node.span, &self.path)),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(entries) => visitor
                .visit_map(NodeMap {
                    entries,
                    idx: 0,
                    path: self.path.clone(),
                    value: None,
                })
                .map_err(|e| e.located(self.node.span, &self.path)),
            // `key:` with nothing after it is an empty mapping for optional maps.
            _ if self.node.is_null() => visitor.visit_map(NodeMap {
                entries: &[],
                idx: 0,
                path: self.path.clone(),
                value: None,
            }),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED_NAME {
            return visitor.visit_map(SpannedAccess {
                de: Some(self),
                state: 0,
            });
        }
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let span = self.node.span;
        let path = self.path.clone();
        match &self.node.value {
            Value::Scalar(s) => visitor
                .visit_enum(s.text.as_str().into_deserializer())
                .map_err(|e: DeError| e.located(span, &path)),
            Value::Map(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                visitor
                    .visit_enum(NodeEnum {
                        key: k,
                        value: v,
                        path: path.clone(),
                    })
                    .map_err(|e| e.located(span, &path))
            }
            _ => Err(self.err(format_args!(
                "expected a name or a mapping with one key, found {}",
                self.node.describe()
            ))),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct NodeSeq<'a> {
    items: &'a [Node],
    idx: usize,
    path: String,
}

impl<'de> SeqAccess<'de> for NodeSeq<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.get(self.idx) else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.path, self.idx);
        self.idx += 1;
        seed.deserialize(NodeDe {
            node: item,
            path: path.clone(),
        })
        .map(Some)
        .map_err(|e| e.located(item.span, &path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.idx)
    }
}

struct NodeMap<'a> {
    entries: &'a [(Node, Node)],
    idx: usize,
    path: String,
    value: Option<(&'a Node, String)>,
}

impl<'de> MapAccess<'de> for NodeMap<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((k, v)) = self.entries.get(self.idx) else {
            return Ok(None);
        };
        self.idx += 1;
        let key_text = k.scalar_text().unwrap_or_default();
        let path = join(&self.path, key_text);
        self.value = Some((v, path.clone()));
        seed.deserialize(NodeDe {
            node: k,
            path: self.path.to_string(),
        })
        .map(Some)
        .map_err(|e| e.located(k.span, &self.path))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (node, path) = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("value requested before key"))?;
        seed.deserialize(NodeDe {
            node,
            path: path.clone(),
        })
        .map_err(|e| e.located(node.span, &path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.idx)
    }
}

struct NodeEnum<'a> {
    key: &'a Node,
    value: &'a Node,
    path: String,
}

impl<'de> EnumAccess<'de> for NodeEnum<'de> {
    type Error = DeError;
    type Variant = NodeDe<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, NodeDe<'de>), DeError> {
        let name = self.key.scalar_text().unwrap_or_default();
        let path = join(&self.path, name);
        let v = seed
            .deserialize(NodeDe {
                node: self.key,
                path: self.path.clone(),
            })
            .map_err(|e| e.located(self.key.span, &self.path))?;
        Ok((
            v,
            NodeDe {
                node: self.value,
                path,
            },
        ))
    }
}

impl<'de> VariantAccess<'de> for NodeDe<'de> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        if self.node.is_null() {
            Ok(())
        } else {
            Err(self.err("this variant takes no value"))
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }
}

// ---------------------------------------------------------------------------------
// Spanned<T>: a struct with a magic name that NodeDe answers with the node's span.

const SPANNED_NAME: &str = "$__policylab_private_Spanned";
const SPANNED_FIELDS: &[&str] = &["$__file", "$__line", "$__col", "$__value"];

struct SpannedAccess<'a> {
    de: Option<NodeDe<'a>>,
    state: u8,
}

impl<'de> MapAccess<'de> for SpannedAccess<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        if self.state as usize >= SPANNED_FIELDS.len() {
            return Ok(None);
        }
        let key = SPANNED_FIELDS[self.state as usize];
        seed.deserialize(de::value::BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let state = self.state;
        self.state += 1;
        let span = self
            .de
            .as_ref()
            .map(|d| d.node.span)
            .ok_or_else(|| <DeError as de::Error>::custom("Spanned read twice"))?;
        match state {
            0 => seed.deserialize(span.file.0.into_deserializer()),
            1 => seed.deserialize(span.line.into_deserializer()),
            2 => seed.deserialize(span.col.into_deserializer()),
            _ => {
                let de = self
                    .de
                    .take()
                    .ok_or_else(|| <DeError as de::Error>::custom("Spanned read twice"))?;
                seed.deserialize(de)
            }
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Spanned<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value read from YAML")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
                let mut file = None;
                let mut line = None;
                let mut col = None;
                while let Some(k) = map.next_key::<&str>()? {
                    match k {
                        "$__file" => file = Some(map.next_value::<u32>()?),
                        "$__line" => line = Some(map.next_value::<u32>()?),
                        "$__col" => col = Some(map.next_value::<u32>()?),
                        "$__value" => {
                            let value = map.next_value::<T>()?;
                            let span = match (file, line, col) {
                                (Some(f), Some(l), Some(c)) => Span::new(FileId(f), l, c),
                                _ => Span::UNKNOWN,
                            };
                            return Ok(Spanned { span, value });
                        }
                        other => {
                            return Err(de::Error::unknown_field(other, SPANNED_FIELDS));
                        }
                    }
                }
                Err(de::Error::missing_field("$__value"))
            }
        }
        deserializer.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, V(std::marker::PhantomData))
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Sources;
    use crate::yaml::node::{parse_stream, Origin};
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Rule {
        action: Spanned<String>,
        #[serde(default)]
        ports: Vec<Port>,
        ip_version: Option<u8>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(untagged)]
    enum Port {
        Num(u16),
        Str(String),
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Spec {
        order: Option<f64>,
        rules: Vec<Rule>,
        labels: Option<BTreeMap<String, String>>,
    }

    fn load<T: for<'a> Deserialize<'a>>(text: &str) -> Result<T, Diagnostic> {
        let mut s = Sources::new();
        let f = s.add("t.yaml", text);
        let (docs, diags) = parse_stream(text, f, Origin::default());
        assert!(diags.is_empty(), "{diags:?}");
        from_node(&docs[0].root)
    }

    #[test]
    fn spans_and_values() {
        let s: Spec =
            load("order: 10\nrules:\n  - action: Allow\n    ports: [80, 'http', \"1:2\"]\n")
                .unwrap();
        assert_eq!(s.order, Some(10.0));
        assert_eq!(s.rules[0].action.value, "Allow");
        assert_eq!(
            (s.rules[0].action.span.line, s.rules[0].action.span.col),
            (3, 13)
        );
        assert_eq!(
            s.rules[0].ports,
            vec![
                Port::Num(80),
                Port::Str("http".into()),
                Port::Str("1:2".into())
            ]
        );
    }

    #[test]
    fn unknown_field_points_at_key_with_path() {
        let e = load::<Spec>("rules:\n  - action: Allow\n    prts: [1]\n").unwrap_err();
        assert_eq!((e.span.unwrap().line, e.span.unwrap().col), (3, 5));
        assert_eq!(
            e.message,
            "rules[0]: unknown field \"prts\" (expected one of: action, ipVersion, ports)"
        );
    }

    #[test]
    fn wrong_type_points_at_value() {
        let e = load::<Spec>("rules:\n  - action: Allow\n    ipVersion: 400\n").unwrap_err();
        assert_eq!((e.span.unwrap().line, e.span.unwrap().col), (3, 16));
        assert_eq!(e.message, "rules[0].ipVersion: 400 is out of range for u8");
        let e = load::<Spec>("order: high\nrules: []\n").unwrap_err();
        assert_eq!(e.message, "order: expected f64, found string \"high\"");
    }

    #[test]
    fn missing_field_points_at_mapping() {
        let e = load::<Spec>("order: 1\nrules:\n  - ports: [1]\n").unwrap_err();
        assert_eq!(e.message, "rules[0]: missing field `action`");
        assert_eq!(e.span.unwrap().line, 3);
    }
}
