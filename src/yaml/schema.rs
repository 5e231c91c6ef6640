//! This module deals with OpenAPI v3 schemas, as CRDs write them, and with checking a
//! YAML tree against one the way the Kubernetes API server does with strict field
//! validation.
//!
//! - [`Schema`]: a schema parsed from a [`Node`] (so schemas are YAML files read with
//!   our own parser). It keeps what the CRDs use: types, properties, required, items,
//!   additionalProperties, enum, default, format, bounds, pattern, anyOf/oneOf/allOf,
//!   the `x-kubernetes-*` extensions, and the `x-kubernetes-validations` (CEL) rules
//!   as data ([`ValidationRule`], see [`Schema::validations`] and
//!   [`Schema::rule_sites`]); CEL is not interpreted here.
//! - [`Schema::validate`]: walks a document and reports every problem, each at the
//!   span of the offending node (an unknown field at its key).
//! - [`Schemas::for_kind`]: the embedded schemas of the kinds policylab reads, parsed
//!   once on first use: the Calico v3 CRDs (`src/schema/crds/`) and hand-written ones
//!   for the kinds without a CRD (`src/schema/*.yaml`).
//!
//! Messages (`<path>` is dotted: `spec.ingress[0].destination.ports[1]`; keys of maps
//! are written `.key`, or `[key]` when the key has other characters than letters,
//! digits, `-` and `_`):
//! - `unknown field "<path>" (expected one of: a, b, c)`, plus `; did you mean "b"?`
//!   when a field is within edit distance 2 (or differs only in case);
//! - `<path>: expected string, found boolean `true` (quote it: "true")`: the hint is
//!   given whenever a string is expected and a plain scalar typed as something else;
//! - `<path>: unsupported value "Egres" (expected one of: Ingress, Egress)`;
//! - `<path>: required field missing` (at the span of the mapping that lacks it).
//!
//! Kubernetes semantics that are reproduced:
//! - `field: null` (or `field:`) is the same as an absent field, unless the field is
//!   required (then it is reported as missing) or `nullable`.
//! - An integer field accepts a float with no fraction (`80.0`): kubectl sends it as
//!   JSON `80`. A number field accepts integers and floats.
//! - A map key is matched as kubectl sends it: the key `on` is the boolean `true`, so
//!   it is the field `"true"`.
//! - `metadata` is checked against the k8s ObjectMeta for every kind, CRD kinds too
//!   (a CRD only says `metadata: {type: object}`; the API server checks ObjectMeta).
//!
//! Guarantees: validation never stops at the first problem and never panics on user
//! input; it reports problems in document order.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

use regex::Regex;
use serde_json::Value as Json;

use super::node::{parse_stream, Node, Origin, Resolved, Style, Value};
use crate::diag::{Diagnostic, Diagnostics, Sources, Span};

/// A JSON-schema type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl Type {
    /// The name used in schemas (`object`, `array`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Type::Object => "object",
            Type::Array => "array",
            Type::String => "string",
            Type::Integer => "integer",
            Type::Number => "number",
            Type::Boolean => "boolean",
        }
    }

    /// The name used in "expected ..." messages.
    fn expected(self) -> &'static str {
        match self {
            Type::Object => "a mapping",
            Type::Array => "a list",
            t => t.name(),
        }
    }

    fn parse(s: &str) -> Option<Type> {
        Some(match s {
            "object" => Type::Object,
            "array" => Type::Array,
            "string" => Type::String,
            "integer" => Type::Integer,
            "number" => Type::Number,
            "boolean" => Type::Boolean,
            _ => return None,
        })
    }
}

/// `x-kubernetes-list-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListType {
    /// The list is replaced as a whole; no constraint on its items.
    Atomic,
    /// Scalar items, each at most once.
    Set,
    /// Object items, unique by `x-kubernetes-list-map-keys`.
    Map,
}

/// `additionalProperties`.
#[derive(Debug, Clone, Default)]
pub enum AdditionalProperties {
    /// Not written.
    #[default]
    Unset,
    /// `additionalProperties: true|false`.
    Allowed(bool),
    /// A map whose values follow this schema.
    Schema(Box<Schema>),
}

/// A `pattern`, with its source kept for messages.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    regex: Regex,
}

impl Pattern {
    pub fn is_match(&self, s: &str) -> bool {
        self.regex.is_match(s)
    }
}

/// One `x-kubernetes-validations` entry: a CEL rule and what to say when it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationRule {
    pub rule: String,
    pub message: Option<String>,
    pub message_expression: Option<String>,
    /// `FieldValueInvalid`, `FieldValueForbidden`, ...
    pub reason: Option<String>,
    pub field_path: Option<String>,
}

/// An OpenAPI v3 schema (one node of it).
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// `type`; `None` accepts any type.
    pub ty: Option<Type>,
    pub description: Option<String>,
    /// `properties`, sorted by name.
    pub properties: BTreeMap<String, Schema>,
    pub required: Vec<String>,
    pub items: Option<Box<Schema>>,
    pub additional_properties: AdditionalProperties,
    /// `enum`, as JSON values.
    pub enum_values: Option<Vec<Json>>,
    /// `default`, recorded (defaulting is not applied by the validator).
    pub default: Option<Json>,
    /// `format`; `int32`, `int64`, `date-time`, `ip` and `ipv4` are checked, others
    /// are recorded.
    pub format: Option<String>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub exclusive_minimum: bool,
    pub exclusive_maximum: bool,
    pub multiple_of: Option<f64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub min_properties: Option<u64>,
    pub max_properties: Option<u64>,
    pub unique_items: bool,
    pub pattern: Option<Pattern>,
    pub any_of: Vec<Schema>,
    pub one_of: Vec<Schema>,
    pub all_of: Vec<Schema>,
    pub not: Option<Box<Schema>>,
    pub nullable: bool,
    /// `x-kubernetes-int-or-string`: an integer or a string.
    pub int_or_string: bool,
    /// `x-kubernetes-preserve-unknown-fields`: fields not in `properties` are kept.
    pub preserve_unknown_fields: bool,
    pub embedded_resource: bool,
    pub list_type: Option<ListType>,
    pub list_map_keys: Vec<String>,
    /// `x-kubernetes-map-type` (`granular` or `atomic`), recorded.
    pub map_type: Option<String>,
    /// `x-kubernetes-validations`, recorded for the module that implements them.
    pub validations: Vec<ValidationRule>,
    /// `x-policylab-enum-ignore-case`: `enum` strings match in any ASCII case
    /// (policylab's own scenario schema: `protocol: tcp` and `TCP`).
    pub enum_ignore_case: bool,
}

/// Named schemas that others refer to with `$ref: "#/definitions/<Name>"`.
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    map: BTreeMap<String, Schema>,
}

impl Definitions {
    /// Reads a mapping of name to schema. A schema may refer only to the definitions
    /// written above it.
    pub fn from_node(node: &Node) -> Result<Definitions, Vec<Diagnostic>> {
        let mut defs = Definitions::default();
        let mut errors = Vec::new();
        let Some(entries) = node.as_map() else {
            return Err(vec![Diagnostic::error(
                node.span,
                "definitions must be a mapping of name to schema",
            )]);
        };
        for (k, v) in entries {
            let name = k.scalar_text().unwrap_or_default().to_string();
            let mut r = Reader {
                defs: Some(&defs),
                errors: Vec::new(),
            };
            let s = r.schema(v);
            errors.append(&mut r.errors);
            defs.map.insert(name, s);
        }
        if errors.is_empty() {
            Ok(defs)
        } else {
            Err(errors)
        }
    }

    pub fn get(&self, name: &str) -> Option<&Schema> {
        self.map.get(name)
    }
}

/// Where a schema carries `x-kubernetes-validations` rules in a document: the node
/// they apply to (`self` in CEL) and its dotted path.
#[derive(Debug, Clone)]
pub struct RuleSite<'s, 'n> {
    pub path: String,
    pub schema: &'s Schema,
    pub node: &'n Node,
}

impl RuleSite<'_, '_> {
    pub fn rules(&self) -> &[ValidationRule] {
        &self.schema.validations
    }
}

// ---------------------------------------------------------------------------------
// Reading schemas.

struct Reader<'d> {
    defs: Option<&'d Definitions>,
    errors: Vec<Diagnostic>,
}

impl Reader<'_> {
    fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.errors.push(Diagnostic::error(span, msg));
    }

    fn string(&mut self, key: &str, v: &Node) -> Option<String> {
        match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.err(v.span, format!("schema keyword `{key}` takes a string"));
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, v: &Node) -> bool {
        match v.resolved() {
            Some(Resolved::Bool(b)) => b,
            _ => {
                self.err(v.span, format!("schema keyword `{key}` takes a boolean"));
                false
            }
        }
    }

    fn number(&mut self, key: &str, v: &Node) -> Option<f64> {
        match v.resolved() {
            Some(Resolved::Int(i)) => Some(i as f64),
            Some(Resolved::Float(f)) if f.is_finite() => Some(f),
            _ => {
                self.err(v.span, format!("schema keyword `{key}` takes a number"));
                None
            }
        }
    }

    fn count(&mut self, key: &str, v: &Node) -> Option<u64> {
        match v.resolved() {
            Some(Resolved::Int(i)) if i >= 0 => Some(i as u64),
            _ => {
                self.err(
                    v.span,
                    format!("schema keyword `{key}` takes a non-negative integer"),
                );
                None
            }
        }
    }

    fn strings(&mut self, key: &str, v: &Node) -> Vec<String> {
        match v.as_seq() {
            Some(items) => items.iter().filter_map(|i| self.string(key, i)).collect(),
            None => {
                self.err(
                    v.span,
                    format!("schema keyword `{key}` takes a list of strings"),
                );
                Vec::new()
            }
        }
    }

    fn schemas(&mut self, key: &str, v: &Node) -> Vec<Schema> {
        match v.as_seq() {
            Some(items) => items.iter().map(|i| self.schema(i)).collect(),
            None => {
                self.err(
                    v.span,
                    format!("schema keyword `{key}` takes a list of schemas"),
                );
                Vec::new()
            }
        }
    }

    fn schema(&mut self, node: &Node) -> Schema {
        let Some(entries) = node.as_map() else {
            self.err(node.span, "a schema must be a mapping");
            return Schema::default();
        };
        if let Some((_, r)) = node.entry("$ref") {
            return self.reference(node, r);
        }
        let mut s = Schema::default();
        for (k, v) in entries {
            let key = k.scalar_text().unwrap_or_default();
            match key {
                "type" => {
                    if let Some(t) = self.string(key, v) {
                        match Type::parse(&t) {
                            Some(t) => s.ty = Some(t),
                            None => self.err(v.span, format!("unknown schema type `{t}`")),
                        }
                    }
                }
                "description" => s.description = self.string(key, v),
                "title" | "example" | "externalDocs" => {}
                "properties" => match v.as_map() {
                    Some(props) => {
                        for (pk, pv) in props {
                            let name = pk.scalar_text().unwrap_or_default().to_string();
                            let ps = self.schema(pv);
                            s.properties.insert(name, ps);
                        }
                    }
                    None => self.err(v.span, "schema keyword `properties` takes a mapping"),
                },
                "required" => s.required = self.strings(key, v),
                "items" => {
                    if v.as_seq().is_some() {
                        self.err(v.span, "tuple `items` (a list of schemas) is not supported");
                    } else {
                        s.items = Some(Box::new(self.schema(v)));
                    }
                }
                "additionalProperties" => {
                    s.additional_properties = match v.resolved() {
                        Some(Resolved::Bool(b)) => AdditionalProperties::Allowed(b),
                        _ => AdditionalProperties::Schema(Box::new(self.schema(v))),
                    }
                }
                "enum" => match v.as_seq() {
                    Some(items) => s.enum_values = Some(items.iter().map(Node::to_json).collect()),
                    None => self.err(v.span, "schema keyword `enum` takes a list"),
                },
                "default" => s.default = Some(v.to_json()),
                "format" => s.format = self.string(key, v),
                "minimum" => s.minimum = self.number(key, v),
                "maximum" => s.maximum = self.number(key, v),
                "exclusiveMinimum" => s.exclusive_minimum = self.boolean(key, v),
                "exclusiveMaximum" => s.exclusive_maximum = self.boolean(key, v),
                "multipleOf" => s.multiple_of = self.number(key, v),
                "minLength" => s.min_length = self.count(key, v),
                "maxLength" => s.max_length = self.count(key, v),
                "minItems" => s.min_items = self.count(key, v),
                "maxItems" => s.max_items = self.count(key, v),
                "minProperties" => s.min_properties = self.count(key, v),
                "maxProperties" => s.max_properties = self.count(key, v),
                "uniqueItems" => s.unique_items = self.boolean(key, v),
                "pattern" => {
                    if let Some(p) = self.string(key, v) {
                        match compile_pattern(&p) {
                            Ok(regex) => s.pattern = Some(Pattern { source: p, regex }),
                            Err(e) => self.err(v.span, format!("invalid pattern: {e}")),
                        }
                    }
                }
                "anyOf" => s.any_of = self.schemas(key, v),
                "oneOf" => s.one_of = self.schemas(key, v),
                "allOf" => s.all_of = self.schemas(key, v),
                "not" => s.not = Some(Box::new(self.schema(v))),
                "nullable" => s.nullable = self.boolean(key, v),
                "x-kubernetes-int-or-string" => s.int_or_string = self.boolean(key, v),
                "x-kubernetes-preserve-unknown-fields" => {
                    s.preserve_unknown_fields = self.boolean(key, v)
                }
                "x-kubernetes-embedded-resource" => s.embedded_resource = self.boolean(key, v),
                "x-policylab-enum-ignore-case" => s.enum_ignore_case = self.boolean(key, v),
                "x-kubernetes-list-type" => {
                    s.list_type = match self.string(key, v).as_deref() {
                        Some("atomic") => Some(ListType::Atomic),
                        Some("set") => Some(ListType::Set),
                        Some("map") => Some(ListType::Map),
                        Some(other) => {
                            self.err(v.span, format!("unknown list type `{other}`"));
                            None
                        }
                        None => None,
                    }
                }
                "x-kubernetes-list-map-keys" => s.list_map_keys = self.strings(key, v),
                "x-kubernetes-map-type" => s.map_type = self.string(key, v),
                "x-kubernetes-validations" => match v.as_seq() {
                    Some(items) => {
                        for item in items {
                            if let Some(rule) = self.rule(item) {
                                s.validations.push(rule);
                            }
                        }
                    }
                    None => self.err(v.span, "x-kubernetes-validations takes a list"),
                },
                other => self.err(k.span, format!("unsupported schema keyword `{other}`")),
            }
        }
        fold_enum_all_of(&mut s);
        s
    }

    fn reference(&mut self, node: &Node, r: &Node) -> Schema {
        let mut description = None;
        for (k, v) in node.as_map().unwrap_or_default() {
            match k.scalar_text().unwrap_or_default() {
                "$ref" => {}
                "description" => description = self.string("description", v),
                other => self.err(
                    k.span,
                    format!("`{other}` cannot be written next to `$ref` (only `description` can)"),
                ),
            }
        }
        let target = r.as_str().unwrap_or_default();
        let Some(name) = target.strip_prefix("#/definitions/") else {
            self.err(
                r.span,
                "`$ref` must be of the form \"#/definitions/<Name>\"",
            );
            return Schema::default();
        };
        match self.defs.and_then(|d| d.get(name)) {
            Some(s) => {
                let mut s = s.clone();
                if description.is_some() {
                    s.description = description;
                }
                s
            }
            None => {
                self.err(r.span, format!("`$ref` to an unknown definition `{name}`"));
                Schema::default()
            }
        }
    }

    fn rule(&mut self, node: &Node) -> Option<ValidationRule> {
        let mut rule = ValidationRule {
            rule: String::new(),
            message: None,
            message_expression: None,
            reason: None,
            field_path: None,
        };
        let Some(entries) = node.as_map() else {
            self.err(node.span, "a validation rule must be a mapping");
            return None;
        };
        for (k, v) in entries {
            let key = k.scalar_text().unwrap_or_default();
            match key {
                "rule" => rule.rule = self.string(key, v).unwrap_or_default(),
                "message" => rule.message = self.string(key, v),
                "messageExpression" => rule.message_expression = self.string(key, v),
                "reason" => rule.reason = self.string(key, v),
                "fieldPath" => rule.field_path = self.string(key, v),
                "optionalOldSelf" => {}
                other => self.err(k.span, format!("unsupported validation rule key `{other}`")),
            }
        }
        if rule.rule.is_empty() {
            self.err(node.span, "a validation rule needs a `rule`");
            return None;
        }
        Some(rule)
    }
}

/// Compiles a pattern once per process: the CRDs repeat the same few patterns
/// (`^.*` on every int-or-string) dozens of times.
fn compile_pattern(p: &str) -> Result<Regex, regex::Error> {
    static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(r) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(p) {
        return Ok(r.clone());
    }
    let r = Regex::new(p)?;
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(p.to_string(), r.clone());
    Ok(r)
}

/// `allOf: [{enum: A}, {enum: B}]` (kubebuilder writes it when a named string type has
/// an enum and the field narrows it, as Tier's defaultAction) is the enum A ∩ B; fold
/// it so that a bad value gets one message listing what is allowed.
fn fold_enum_all_of(s: &mut Schema) {
    if s.all_of.is_empty() {
        return;
    }
    let only_enums = s.all_of.iter().all(|b| {
        b.enum_values.is_some()
            && b.ty.is_none_or(|t| Some(t) == s.ty)
            && b.properties.is_empty()
            && b.items.is_none()
            && b.pattern.is_none()
            && b.validations.is_empty()
            && b.any_of.is_empty()
            && b.all_of.is_empty()
            && b.one_of.is_empty()
    });
    if !only_enums {
        return;
    }
    let mut values = s.enum_values.take();
    for b in s.all_of.drain(..) {
        let e = b.enum_values.unwrap_or_default();
        values = Some(match values {
            None => e,
            Some(v) => v.into_iter().filter(|x| e.contains(x)).collect(),
        });
    }
    s.enum_values = values;
}

impl Schema {
    /// Reads a schema. Unknown schema keywords are errors (so a typo in a hand-written
    /// schema is caught); `$ref` is an error without definitions.
    pub fn from_node(node: &Node) -> Result<Schema, Vec<Diagnostic>> {
        Schema::read(node, None)
    }

    /// Reads a schema that may refer to `defs` with `$ref: "#/definitions/<Name>"`.
    pub fn from_node_with(node: &Node, defs: &Definitions) -> Result<Schema, Vec<Diagnostic>> {
        Schema::read(node, Some(defs))
    }

    fn read(node: &Node, defs: Option<&Definitions>) -> Result<Schema, Vec<Diagnostic>> {
        let mut r = Reader {
            defs,
            errors: Vec::new(),
        };
        let s = r.schema(node);
        if r.errors.is_empty() {
            Ok(s)
        } else {
            Err(r.errors)
        }
    }

    /// Reads `spec.versions[name=<version>].schema.openAPIV3Schema` of a
    /// CustomResourceDefinition.
    pub fn from_crd(crd: &Node, version: &str) -> Result<Schema, Vec<Diagnostic>> {
        let schema = crd
            .get("spec")
            .and_then(|s| s.get("versions"))
            .and_then(Node::as_seq)
            .and_then(|vs| {
                vs.iter()
                    .find(|v| v.get("name").and_then(Node::as_str) == Some(version))
            })
            .and_then(|v| v.get("schema"))
            .and_then(|s| s.get("openAPIV3Schema"));
        match schema {
            Some(s) => Schema::from_node(s),
            None => Err(vec![Diagnostic::error(
                crd.span,
                format!("no spec.versions[name={version}].schema.openAPIV3Schema in this CRD"),
            )]),
        }
    }

    /// The schema of a property.
    pub fn property(&self, name: &str) -> Option<&Schema> {
        self.properties.get(name)
    }

    /// The schema at a path written as [`Schema::validations`] writes it
    /// (`spec.ingress[*].destination`, `metadata.labels.*`); `""` is this schema.
    pub fn at(&self, path: &str) -> Option<&Schema> {
        let mut s = self;
        for seg in path.split('.').filter(|p| !p.is_empty()) {
            let (name, mut rest) = match seg.find("[*]") {
                Some(i) => (&seg[..i], &seg[i..]),
                None => (seg, ""),
            };
            s = match name {
                "" => s,
                "*" => match &s.additional_properties {
                    AdditionalProperties::Schema(a) => a,
                    _ => return None,
                },
                n => s.properties.get(n)?,
            };
            while let Some(r) = rest.strip_prefix("[*]") {
                s = s.items.as_deref()?;
                rest = r;
            }
            if !rest.is_empty() {
                return None;
            }
        }
        Some(s)
    }

    /// Every schema node below this one (properties, items, additionalProperties),
    /// this one first, with its path (`spec.ingress[*].action`, `metadata.labels.*`).
    pub fn for_each(&self, f: &mut dyn FnMut(&str, &Schema)) {
        fn go(s: &Schema, path: &mut String, f: &mut dyn FnMut(&str, &Schema)) {
            f(path, s);
            let len = path.len();
            for (name, p) in &s.properties {
                push_field(path, name);
                go(p, path, f);
                path.truncate(len);
            }
            if let Some(items) = &s.items {
                path.push_str("[*]");
                go(items, path, f);
                path.truncate(len);
            }
            if let AdditionalProperties::Schema(a) = &s.additional_properties {
                push_field(path, "*");
                go(a, path, f);
                path.truncate(len);
            }
        }
        go(self, &mut String::new(), f)
    }

    /// Every `x-kubernetes-validations` rule with the path of the schema node it is
    /// written on (`""` for the root, `spec`, `spec.ingress[*]`, ...).
    pub fn validations(&self) -> impl Iterator<Item = (String, &ValidationRule)> + '_ {
        let mut out: Vec<(String, &ValidationRule)> = Vec::new();
        fn go<'a>(s: &'a Schema, path: &mut String, out: &mut Vec<(String, &'a ValidationRule)>) {
            out.extend(s.validations.iter().map(|r| (path.clone(), r)));
            let len = path.len();
            for (name, p) in &s.properties {
                push_field(path, name);
                go(p, path, out);
                path.truncate(len);
            }
            if let Some(items) = &s.items {
                path.push_str("[*]");
                go(items, path, out);
                path.truncate(len);
            }
            if let AdditionalProperties::Schema(a) = &s.additional_properties {
                push_field(path, "*");
                go(a, path, out);
                path.truncate(len);
            }
        }
        go(self, &mut String::new(), &mut out);
        out.into_iter()
    }

    /// The nodes of a document where validation rules apply, in document order, with
    /// their concrete paths (`spec.ingress[0].destination`). Nulls and nodes of the
    /// wrong type are skipped (validation reports them).
    pub fn rule_sites<'s, 'n>(&'s self, node: &'n Node) -> Vec<RuleSite<'s, 'n>> {
        fn go<'s, 'n>(
            s: &'s Schema,
            node: &'n Node,
            path: &mut String,
            out: &mut Vec<RuleSite<'s, 'n>>,
        ) {
            if node.is_null() {
                return;
            }
            if !s.validations.is_empty() {
                out.push(RuleSite {
                    path: path.clone(),
                    schema: s,
                    node,
                });
            }
            let len = path.len();
            match &node.value {
                Value::Map(entries) => {
                    for (k, v) in entries {
                        let key = json_key(k);
                        if let Some(p) = s.properties.get(key.as_ref()) {
                            push_field(path, &key);
                            go(p, v, path, out);
                        } else if let AdditionalProperties::Schema(a) = &s.additional_properties {
                            push_key(path, &key);
                            go(a, v, path, out);
                        }
                        path.truncate(len);
                    }
                }
                Value::Seq(items) => {
                    if let Some(is) = &s.items {
                        for (i, item) in items.iter().enumerate() {
                            push_index(path, i);
                            go(is, item, path, out);
                            path.truncate(len);
                        }
                    }
                }
                Value::Scalar(_) => {}
            }
        }
        let mut out = Vec::new();
        go(self, node, &mut String::new(), &mut out);
        out
    }

    /// Checks a document against this schema and reports every problem.
    pub fn validate(&self, node: &Node, diags: &mut Diagnostics) {
        let mut w = Walker {
            errors: Vec::new(),
            paths: Vec::new(),
            path: String::new(),
            structural: true,
        };
        w.check(self, node);
        diags.extend(w.errors);
    }

    /// Checks `node`, found at `path` of a larger document (messages use the full
    /// path), and returns every problem with the path where it was found (the field
    /// for an unknown or missing field, else the offending node), in document order.
    pub fn validate_at(&self, node: &Node, path: &str) -> Vec<(String, Diagnostic)> {
        let mut w = Walker {
            errors: Vec::new(),
            paths: Vec::new(),
            path: path.to_string(),
            structural: true,
        };
        w.check(self, node);
        w.paths.into_iter().zip(w.errors).collect()
    }

    /// Accepts anything: no type, nothing to check.
    fn is_any(&self) -> bool {
        self.ty.is_none() && !self.int_or_string
    }

    /// Whether fields not in `properties` are unknown fields.
    fn is_closed(&self) -> bool {
        !self.preserve_unknown_fields
            && matches!(
                self.additional_properties,
                AdditionalProperties::Unset | AdditionalProperties::Allowed(false)
            )
            && (self.ty == Some(Type::Object) || !self.properties.is_empty())
    }

    /// `anyOf: [{type: integer}, {type: string}]` as written next to
    /// `x-kubernetes-int-or-string` (the type check already covers it).
    fn any_of_is_int_or_string(&self) -> bool {
        self.int_or_string
            && self.any_of.len() == 2
            && self.any_of.iter().all(|b| {
                matches!(b.ty, Some(Type::Integer) | Some(Type::String))
                    && b.enum_values.is_none()
                    && b.pattern.is_none()
                    && b.minimum.is_none()
                    && b.maximum.is_none()
            })
    }
}

// ---------------------------------------------------------------------------------
// Paths.

fn push_field(path: &mut String, name: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
}

/// A key of a map (additionalProperties): `.key`, or `[key]` when the key has other
/// characters than letters, digits, `-` and `_` (`metadata.labels[app.kubernetes.io/name]`).
fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if plain {
        push_field(path, key);
    } else {
        path.push('[');
        path.push_str(key);
        path.push(']');
    }
}

fn push_index(path: &mut String, i: usize) {
    use std::fmt::Write;
    let _ = write!(path, "[{i}]");
}

/// A mapping key as kubectl sends it in JSON: YAML 1.1 types plain keys too, so `on`
/// is `"true"` and `0x10` is `"16"`.
fn json_key(k: &Node) -> Cow<'_, str> {
    match k.resolved() {
        Some(Resolved::Str(s)) => Cow::Borrowed(s),
        Some(Resolved::Bool(b)) => Cow::Borrowed(if b { "true" } else { "false" }),
        Some(Resolved::Int(i)) => Cow::Owned(i.to_string()),
        Some(Resolved::Float(f)) => Cow::Owned(f.to_string()),
        Some(Resolved::Null) => Cow::Borrowed("null"),
        None => Cow::Borrowed(""),
    }
}

// ---------------------------------------------------------------------------------
// Validation.

struct Walker {
    errors: Vec<Diagnostic>,
    /// The path at which each of `errors` was raised.
    paths: Vec<String>,
    path: String,
    /// Whether unknown fields are reported: yes for the schema itself, no inside
    /// anyOf/oneOf/allOf/not branches (value validations, as in Kubernetes).
    structural: bool,
}

/// An integral finite float, as kubectl would send it as a JSON integer.
fn float_as_int(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64)
}

impl Walker {
    fn error(&mut self, span: Span, msg: String) {
        self.errors.push(Diagnostic::error(span, msg));
        self.paths.push(self.path.clone());
    }

    /// `<path>: <msg>`, or `<msg>` at the root.
    fn error_here(&mut self, span: Span, msg: std::fmt::Arguments<'_>) {
        let m = if self.path.is_empty() {
            msg.to_string()
        } else {
            format!("{}: {}", self.path, msg)
        };
        self.error(span, m);
    }

    fn branch(&self) -> Walker {
        Walker {
            errors: Vec::new(),
            paths: Vec::new(),
            path: self.path.clone(),
            structural: false,
        }
    }

    fn check(&mut self, s: &Schema, node: &Node) {
        let resolved = node.resolved();
        if matches!(resolved, Some(Resolved::Null)) && (s.nullable || s.is_any()) {
            return;
        }
        if !self.check_type(s, node, resolved) {
            return;
        }
        match &node.value {
            Value::Map(entries) => self.check_object(s, node, entries),
            Value::Seq(items) => self.check_array(s, node, items),
            Value::Scalar(_) => {
                if let Some(r) = resolved {
                    self.check_scalar(s, node, r)
                }
            }
        }
        self.check_combinators(s, node);
    }

    fn check_type(&mut self, s: &Schema, node: &Node, r: Option<Resolved<'_>>) -> bool {
        let (ok, expected) = if s.int_or_string {
            let ok = match r {
                Some(Resolved::Int(_)) | Some(Resolved::Str(_)) => true,
                Some(Resolved::Float(f)) => float_as_int(f).is_some(),
                _ => false,
            };
            (ok, "integer or string")
        } else if let Some(t) = s.ty {
            let ok = match (t, &node.value, r) {
                (Type::Object, Value::Map(_), _) => true,
                (Type::Array, Value::Seq(_), _) => true,
                (Type::String, _, Some(Resolved::Str(_))) => true,
                (Type::Boolean, _, Some(Resolved::Bool(_))) => true,
                (Type::Integer, _, Some(Resolved::Int(_))) => true,
                (Type::Integer, _, Some(Resolved::Float(f))) => float_as_int(f).is_some(),
                (Type::Number, _, Some(Resolved::Int(_))) => true,
                (Type::Number, _, Some(Resolved::Float(f))) => f.is_finite(),
                _ => false,
            };
            (ok, t.expected())
        } else {
            return true;
        };
        if ok {
            return true;
        }
        let hint = type_hint(s, node, r);
        self.error_here(
            node.span,
            format_args!("expected {expected}, found {}{hint}", node.describe()),
        );
        false
    }

    fn check_object(&mut self, s: &Schema, node: &Node, entries: &[(Node, Node)]) {
        let len = self.path.len();
        for (k, v) in entries {
            let key = json_key(k);
            if let Some(p) = s.properties.get(key.as_ref()) {
                push_field(&mut self.path, &key);
                if v.is_null() && !p.nullable {
                    // Kubernetes drops a null field that is not nullable: absent.
                    if s.required.iter().any(|r| *r == *key) {
                        let m = format!("{}: required field missing (it is null)", self.path);
                        self.error(v.span, m);
                    }
                } else {
                    self.check(p, v);
                }
            } else if let AdditionalProperties::Schema(a) = &s.additional_properties {
                push_key(&mut self.path, &key);
                self.check(a, v);
            } else if self.structural && s.is_closed() {
                push_field(&mut self.path, &key);
                let m = unknown_field_message(&self.path, &key, k, s);
                self.error(k.span, m);
            }
            self.path.truncate(len);
        }
        for r in &s.required {
            if !entries.iter().any(|(k, _)| json_key(k) == r.as_str()) {
                push_field(&mut self.path, r);
                let m = format!("{}: required field missing", self.path);
                self.error(node.span, m);
                self.path.truncate(len);
            }
        }
        let n = entries.len() as u64;
        if let Some(min) = s.min_properties.filter(|&m| n < m) {
            self.error_here(
                node.span,
                format_args!("too few fields: {n}, at least {min} required"),
            );
        }
        if let Some(max) = s.max_properties.filter(|&m| n > m) {
            self.error_here(
                node.span,
                format_args!("too many fields: {n}, at most {max} allowed"),
            );
        }
    }

    fn check_array(&mut self, s: &Schema, node: &Node, items: &[Node]) {
        let len = self.path.len();
        if let Some(is) = &s.items {
            for (i, item) in items.iter().enumerate() {
                push_index(&mut self.path, i);
                self.check(is, item);
                self.path.truncate(len);
            }
        }
        let n = items.len() as u64;
        if let Some(min) = s.min_items.filter(|&m| n < m) {
            self.error_here(
                node.span,
                format_args!("too few items: {n}, at least {min} required"),
            );
        }
        if let Some(max) = s.max_items.filter(|&m| n > m) {
            self.error_here(
                node.span,
                format_args!("too many items: {n}, at most {max} allowed"),
            );
        }
        match s.list_type {
            Some(ListType::Set) => self.check_unique(items, "the list is a set"),
            Some(ListType::Map) => self.check_map_keys(s, items),
            _ if s.unique_items => self.check_unique(items, "items must be unique"),
            _ => {}
        }
    }

    fn check_unique(&mut self, items: &[Node], why: &str) {
        if items.len() < 2 {
            return;
        }
        let mut seen = HashSet::with_capacity(items.len());
        let len = self.path.len();
        for (i, item) in items.iter().enumerate() {
            if !seen.insert(canonical(item)) {
                push_index(&mut self.path, i);
                let m = format!(
                    "{}: duplicate value {} ({why})",
                    self.path,
                    short_value(item)
                );
                self.path.truncate(len);
                self.error(item.span, m);
            }
        }
    }

    fn check_map_keys(&mut self, s: &Schema, items: &[Node]) {
        if s.list_map_keys.is_empty() || items.len() < 2 {
            return;
        }
        let mut seen = HashSet::with_capacity(items.len());
        let len = self.path.len();
        for (i, item) in items.iter().enumerate() {
            if item.as_map().is_none() {
                continue;
            }
            let key: Vec<String> = s
                .list_map_keys
                .iter()
                .map(|k| {
                    let v = item.get(k).map(Node::to_json).unwrap_or(Json::Null);
                    format!("{k}={v}")
                })
                .collect();
            let key = key.join(", ");
            if !seen.insert(key.clone()) {
                push_index(&mut self.path, i);
                let m = format!(
                    "{}: duplicate entry with {key} (the list is a map keyed by {})",
                    self.path,
                    s.list_map_keys.join(", ")
                );
                self.path.truncate(len);
                self.error(item.span, m);
            }
        }
    }

    fn check_scalar(&mut self, s: &Schema, node: &Node, r: Resolved<'_>) {
        if let Some(values) = &s.enum_values {
            let matches = |v: &Json| match (v, r) {
                (Json::String(a), Resolved::Str(b)) if s.enum_ignore_case => {
                    a.eq_ignore_ascii_case(b)
                }
                _ => enum_matches(v, r),
            };
            if !values.iter().any(matches) {
                let list: Vec<String> = values.iter().map(enum_display).collect();
                self.error_here(
                    node.span,
                    format_args!(
                        "unsupported value {} (expected one of: {})",
                        short_value(node),
                        list.join(", ")
                    ),
                );
            }
        }
        match r {
            Resolved::Str(t) => self.check_string(s, node, t),
            Resolved::Int(i) => self.check_number(s, node, i as f64, Some(i)),
            Resolved::Float(f) => self.check_number(s, node, f, float_as_int(f)),
            Resolved::Bool(_) | Resolved::Null => {}
        }
    }

    fn check_string(&mut self, s: &Schema, node: &Node, t: &str) {
        if s.min_length.is_some() || s.max_length.is_some() {
            let n = t.chars().count() as u64;
            if let Some(min) = s.min_length.filter(|&m| n < m) {
                self.error_here(
                    node.span,
                    format_args!("too short: {n} characters, at least {min} required"),
                );
            }
            if let Some(max) = s.max_length.filter(|&m| n > m) {
                self.error_here(
                    node.span,
                    format_args!("too long: {n} characters, at most {max} allowed"),
                );
            }
        }
        if let Some(p) = &s.pattern {
            if !p.is_match(t) {
                self.error_here(
                    node.span,
                    format_args!(
                        "{} does not match the pattern {}",
                        short_value(node),
                        p.source
                    ),
                );
            }
        }
        let ip = match s.format.as_deref() {
            Some("ip") => Some((t.parse::<std::net::IpAddr>().is_ok(), "an IP address")),
            Some("ipv4") => Some((t.parse::<std::net::Ipv4Addr>().is_ok(), "an IPv4 address")),
            _ => None,
        };
        if let Some((false, what)) = ip {
            self.error_here(
                node.span,
                format_args!("{} is not {what}", short_value(node)),
            );
        }
        if s.format.as_deref() == Some("date-time") && !is_rfc3339(t) {
            self.error_here(
                node.span,
                format_args!(
                    "{} is not a date-time (RFC 3339, e.g. 2024-01-31T12:00:00Z)",
                    short_value(node)
                ),
            );
        }
    }

    fn check_number(&mut self, s: &Schema, node: &Node, x: f64, int: Option<i64>) {
        let shown = node.scalar_text().unwrap_or_default();
        if let Some(min) = s.minimum {
            if x < min || (s.exclusive_minimum && x == min) {
                let rel = if s.exclusive_minimum {
                    "greater than"
                } else {
                    "at least"
                };
                self.error_here(
                    node.span,
                    format_args!("{shown} is out of range: must be {rel} {min}"),
                );
            }
        }
        if let Some(max) = s.maximum {
            if x > max || (s.exclusive_maximum && x == max) {
                let rel = if s.exclusive_maximum {
                    "less than"
                } else {
                    "at most"
                };
                self.error_here(
                    node.span,
                    format_args!("{shown} is out of range: must be {rel} {max}"),
                );
            }
        }
        if let Some(m) = s.multiple_of {
            if m != 0.0 && (x / m).fract() != 0.0 {
                self.error_here(node.span, format_args!("{shown} is not a multiple of {m}"));
            }
        }
        if s.format.as_deref() == Some("int32") {
            if let Some(i) = int {
                if i32::try_from(i).is_err() {
                    self.error_here(node.span, format_args!("{shown} is out of range for int32"));
                }
            }
        }
    }

    fn check_combinators(&mut self, s: &Schema, node: &Node) {
        for b in &s.all_of {
            let structural = std::mem::replace(&mut self.structural, false);
            self.check(b, node);
            self.structural = structural;
        }
        if !s.any_of.is_empty() && !s.any_of_is_int_or_string() {
            let results: Vec<Vec<Diagnostic>> =
                s.any_of.iter().map(|b| self.run_branch(b, node)).collect();
            if !results.iter().any(Vec::is_empty) {
                self.report_no_branch(node, &results, "anyOf");
            }
        }
        if !s.one_of.is_empty() {
            let results: Vec<Vec<Diagnostic>> =
                s.one_of.iter().map(|b| self.run_branch(b, node)).collect();
            let passing = results.iter().filter(|r| r.is_empty()).count();
            if passing == 0 {
                self.report_no_branch(node, &results, "oneOf");
            } else if passing > 1 {
                self.error_here(
                    node.span,
                    format_args!("matches more than one of the allowed forms (oneOf)"),
                );
            }
        }
        if let Some(n) = &s.not {
            if self.run_branch(n, node).is_empty() {
                self.error_here(
                    node.span,
                    format_args!("matches a form that is not allowed (not)"),
                );
            }
        }
    }

    fn run_branch(&self, b: &Schema, node: &Node) -> Vec<Diagnostic> {
        let mut w = self.branch();
        w.check(b, node);
        w.errors
    }

    fn report_no_branch(&mut self, node: &Node, results: &[Vec<Diagnostic>], kw: &str) {
        let closest = results
            .iter()
            .min_by_key(|r| r.len())
            .and_then(|r| r.first())
            .map(|d| format!(": {}", d.message))
            .unwrap_or_default();
        self.error_here(
            node.span,
            format_args!("does not match any of the allowed forms ({kw}){closest}"),
        );
    }
}

/// The hint after "expected X, found Y".
fn type_hint(s: &Schema, node: &Node, r: Option<Resolved<'_>>) -> String {
    let Some(sc) = node.scalar() else {
        return String::new();
    };
    let wants_string = s.ty == Some(Type::String) && !s.int_or_string;
    let plain = sc.style == Style::Plain && sc.tag.is_none();
    match r {
        Some(Resolved::Null) if wants_string && plain && sc.text.is_empty() => {
            " (write \"\" for an empty string)".to_string()
        }
        Some(Resolved::Bool(_) | Resolved::Int(_) | Resolved::Float(_) | Resolved::Null)
            if wants_string && plain =>
        {
            format!(" (quote it: {:?})", sc.text)
        }
        Some(Resolved::Float(f)) if !f.is_finite() => " (not a finite number)".to_string(),
        Some(Resolved::Str(t)) if !plain || sc.tag.is_some() => {
            // A quoted number or boolean where one is expected.
            let typed = super::node::resolve_plain(t);
            let fits = matches!(
                (s.ty, typed),
                (Some(Type::Integer), Resolved::Int(_))
                    | (Some(Type::Number), Resolved::Int(_) | Resolved::Float(_))
                    | (Some(Type::Boolean), Resolved::Bool(_))
            );
            if fits && !s.int_or_string {
                " (remove the quotes)".to_string()
            } else {
                String::new()
            }
        }
        _ => String::new(),
    }
}

/// A value in messages: strings quoted, other scalars as written.
fn short_value(node: &Node) -> String {
    match node.resolved() {
        Some(Resolved::Str(t)) => format!("{t:?}"),
        Some(_) => node.scalar_text().unwrap_or_default().to_string(),
        None => node.describe(),
    }
}

fn canonical(node: &Node) -> String {
    match node.resolved() {
        Some(Resolved::Str(t)) => format!("s{t}"),
        Some(Resolved::Int(i)) => format!("n{i}"),
        Some(Resolved::Float(f)) => match float_as_int(f) {
            Some(i) => format!("n{i}"),
            None => format!("n{f}"),
        },
        Some(Resolved::Bool(b)) => format!("b{b}"),
        Some(Resolved::Null) => "null".to_string(),
        None => format!("j{}", node.to_json()),
    }
}

fn enum_matches(v: &Json, r: Resolved<'_>) -> bool {
    match (v, r) {
        (Json::String(a), Resolved::Str(b)) => a == b,
        (Json::Bool(a), Resolved::Bool(b)) => *a == b,
        (Json::Null, Resolved::Null) => true,
        (Json::Number(a), Resolved::Int(b)) => a.as_f64() == Some(b as f64),
        (Json::Number(a), Resolved::Float(b)) => a.as_f64() == Some(b),
        _ => false,
    }
}

fn enum_display(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn unknown_field_message(path: &str, key: &str, key_node: &Node, s: &Schema) -> String {
    let mut m = format!("unknown field {path:?}");
    if s.properties.is_empty() {
        m.push_str(" (this object has no fields)");
    } else {
        let names: Vec<&str> = s.properties.keys().map(String::as_str).collect();
        m.push_str(&format!(" (expected one of: {})", names.join(", ")));
        if let Some(best) = suggest(key, &names) {
            m.push_str(&format!("; did you mean {best:?}?"));
        }
    }
    if let Some(text) = key_node.scalar_text() {
        if text != key {
            m.push_str(&format!(
                " (YAML reads the key `{text}` as {key}; quote it to use it as written)"
            ));
        }
    }
    m
}

/// The allowed name closest to `key`: equal but for case, or within edit distance 2
/// (and not as far as the whole of the shorter word).
fn suggest<'a>(key: &str, names: &[&'a str]) -> Option<&'a str> {
    let lk = key.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for &n in names {
        let ln = n.to_lowercase();
        let d = edit_distance(&lk, &ln);
        let shorter = lk.chars().count().min(ln.chars().count());
        if (d == 0 || (d <= 2 && d < shorter)) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, n));
        }
    }
    best.map(|(_, n)| n)
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, as metav1.Time reads it.
fn is_rfc3339(t: &str) -> bool {
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !matches!(b[10], b'T' | b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', rest @ ..] => {
            rest.len() == 5
                && rest[..2].iter().all(u8::is_ascii_digit)
                && rest[2] == b':'
                && rest[3..].iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------
// The embedded schemas.

/// The schemas of the kinds policylab reads, parsed once on first use.
pub struct Schemas;

enum Source {
    /// A CustomResourceDefinition; its `v3` schema is used.
    Crd(&'static str, &'static str),
    /// A hand-written schema that may use the shared definitions.
    Plain(&'static str, &'static str),
}

struct Entry {
    api_version: &'static str,
    kind: &'static str,
    source: Source,
}

macro_rules! crd {
    ($kind:literal, $file:literal) => {
        Entry {
            api_version: "projectcalico.org/v3",
            kind: $kind,
            source: Source::Crd($file, include_str!(concat!("../schema/crds/", $file))),
        }
    };
}

macro_rules! plain {
    ($api:literal, $kind:literal, $file:literal) => {
        Entry {
            api_version: $api,
            kind: $kind,
            source: Source::Plain($file, include_str!(concat!("../schema/", $file))),
        }
    };
}

const KINDS: usize = 19;

static ENTRIES: [Entry; KINDS] = [
    crd!(
        "GlobalNetworkPolicy",
        "projectcalico.org_globalnetworkpolicies.yaml"
    ),
    crd!(
        "FelixConfiguration",
        "projectcalico.org_felixconfigurations.yaml"
    ),
    crd!(
        "GlobalNetworkSet",
        "projectcalico.org_globalnetworksets.yaml"
    ),
    crd!("HostEndpoint", "projectcalico.org_hostendpoints.yaml"),
    crd!("NetworkPolicy", "projectcalico.org_networkpolicies.yaml"),
    crd!("NetworkSet", "projectcalico.org_networksets.yaml"),
    crd!(
        "StagedGlobalNetworkPolicy",
        "projectcalico.org_stagedglobalnetworkpolicies.yaml"
    ),
    crd!(
        "StagedKubernetesNetworkPolicy",
        "projectcalico.org_stagedkubernetesnetworkpolicies.yaml"
    ),
    crd!(
        "StagedNetworkPolicy",
        "projectcalico.org_stagednetworkpolicies.yaml"
    ),
    crd!("Tier", "projectcalico.org_tiers.yaml"),
    plain!(
        "projectcalico.org/v3",
        "GlobalThreatFeed",
        "projectcalico.org_globalthreatfeeds.yaml"
    ),
    plain!(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        "networking.k8s.io_networkpolicies.yaml"
    ),
    plain!(
        "policy.networking.k8s.io/v1alpha1",
        "AdminNetworkPolicy",
        "policy.networking.k8s.io_adminnetworkpolicies.yaml"
    ),
    plain!(
        "policy.networking.k8s.io/v1alpha1",
        "BaselineAdminNetworkPolicy",
        "policy.networking.k8s.io_baselineadminnetworkpolicies.yaml"
    ),
    plain!("v1", "Namespace", "v1_namespaces.yaml"),
    plain!("v1", "ServiceAccount", "v1_serviceaccounts.yaml"),
    plain!("v1", "Pod", "v1_pods.yaml"),
    plain!("v1", "Service", "v1_services.yaml"),
    plain!("apps/v1", "Deployment", "apps_v1_deployments.yaml"),
];

static CELLS: [OnceLock<Schema>; KINDS] = [const { OnceLock::new() }; KINDS];
static DEFINITIONS: OnceLock<Definitions> = OnceLock::new();
const DEFINITIONS_FILE: &str = "definitions.yaml";
const DEFINITIONS_TEXT: &str = include_str!("../schema/definitions.yaml");

/// Parses an embedded YAML file; its problems are bugs of policylab, so they panic
/// with `file:line:col` messages.
fn embedded_node(file: &str, text: &str) -> Node {
    let mut sources = Sources::new();
    let id = sources.add(format!("src/schema/{file}"), text);
    let (mut docs, diags) = parse_stream(text, id, Origin::default());
    if !diags.is_empty() || docs.len() != 1 {
        let mut ds = Diagnostics::new();
        ds.extend(diags);
        panic!(
            "embedded schema {file} must be one YAML document:\n{}",
            ds.render(&sources)
        );
    }
    docs.swap_remove(0).root
}

fn embedded_or_panic<T>(file: &str, text: &str, r: Result<T, Vec<Diagnostic>>) -> T {
    r.unwrap_or_else(|errors| {
        let mut sources = Sources::new();
        sources.add(format!("src/schema/{file}"), text);
        let mut ds = Diagnostics::new();
        ds.extend(errors);
        panic!(
            "embedded schema {file} is invalid:\n{}",
            ds.render(&sources)
        )
    })
}

static SCENARIO: OnceLock<Definitions> = OnceLock::new();
const SCENARIO_FILE: &str = "scenario.yaml";
const SCENARIO_TEXT: &str = include_str!("../schema/scenario.yaml");

impl Schemas {
    /// The schemas of the scenario file (`src/schema/scenario.yaml`): `Scenario` (the
    /// whole file), its entries (`Node`, `Pod`, `Outside`, ...), `Probe` (the long
    /// form) and one `<Verb>Step` per step verb (`ProbeStep`, `ApplyStep`, ...).
    pub fn scenario() -> &'static Definitions {
        SCENARIO.get_or_init(|| {
            let node = embedded_node(SCENARIO_FILE, SCENARIO_TEXT);
            embedded_or_panic(SCENARIO_FILE, SCENARIO_TEXT, Definitions::from_node(&node))
        })
    }

    /// The schema of a kind, or `None` for a kind policylab does not know.
    pub fn for_kind(api_version: &str, kind: &str) -> Option<&'static Schema> {
        let i = ENTRIES
            .iter()
            .position(|e| e.api_version == api_version && e.kind == kind)?;
        Some(CELLS[i].get_or_init(|| load(&ENTRIES[i])))
    }

    /// Every known (apiVersion, kind).
    pub fn kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
        ENTRIES.iter().map(|e| (e.api_version, e.kind))
    }

    /// The shared definitions of the hand-written schemas (ObjectMeta, LabelSelector,
    /// PodSpec, ...).
    pub fn definitions() -> &'static Definitions {
        DEFINITIONS.get_or_init(|| {
            let node = embedded_node(DEFINITIONS_FILE, DEFINITIONS_TEXT);
            embedded_or_panic(
                DEFINITIONS_FILE,
                DEFINITIONS_TEXT,
                Definitions::from_node(&node),
            )
        })
    }
}

fn load(e: &Entry) -> Schema {
    let defs = Schemas::definitions();
    match e.source {
        Source::Crd(file, text) => {
            let node = embedded_node(file, text);
            let mut s = embedded_or_panic(file, text, Schema::from_crd(&node, "v3"));
            // The API server checks ObjectMeta for every kind; the CRD only says
            // `metadata: {type: object}`.
            let meta = defs
                .get("ObjectMeta")
                .expect("ObjectMeta is defined")
                .clone();
            s.properties.insert("metadata".to_string(), meta);
            s
        }
        Source::Plain(file, text) => {
            let node = embedded_node(file, text);
            embedded_or_panic(file, text, Schema::from_node_with(&node, defs))
        }
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
