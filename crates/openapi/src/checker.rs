//! The checker: a CRD's structural schema and CEL rules, applied to any manifest of its kind.

use crate::rules::Rules;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_core::cel::{self, ErrorKind};
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// One problem in a manifest, at one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The JSON path of the field, such as `spec.strategy.canary.steps[2].setWeight`. Map entries
    /// are written `labels[app]`. Empty when the problem is the whole object.
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(path: &str, message: impl Into<String>) -> Self {
        Self { path: path.to_string(), message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for FieldError {}

/// Why a validator could not be built from a CRD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("CRD {0} has no served storage version")]
    NoStorageVersion(String),
    #[error("CRD {crd} version {version} has no openAPIV3Schema")]
    NoSchema { crd: String, version: String },
}

/// The kind of object a CRD schema describes, used to check `apiVersion` and `kind`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResourceType {
    pub(crate) api_version: String,
    pub(crate) kind: String,
}

/// Validates objects against one OpenAPI v3 schema, such as one version of a CRD.
#[derive(Clone, Debug)]
pub struct SchemaValidator {
    schema: Value,
    /// The schema's CEL rules, compiled when the validator is built: compiling them on every check
    /// would be most of what a check costs. Shared by clones, as compiled rules cannot be copied.
    rules: Option<Arc<Rules>>,
    /// The schema's `pattern`s, compiled when the validator is built for the same reason.
    patterns: Patterns,
    /// Set when the schema is a CRD's: `apiVersion`, `kind` and `metadata` are then implicit fields
    /// of the root, as on every Kubernetes object.
    pub(crate) resource: Option<ResourceType>,
}

impl SchemaValidator {
    /// A validator for values of `schema`, checked as they are: no implicit object fields.
    pub fn new(schema: Value) -> Self {
        Self::with_resource(schema, None)
    }

    fn with_resource(schema: Value, resource: Option<ResourceType>) -> Self {
        let rules = Rules::compile(&schema).map(Arc::new);
        let mut patterns = Patterns::new();
        compile_patterns(&schema, &mut patterns);
        Self { schema, rules, patterns, resource }
    }

    /// A validator for the served storage version of `crd`.
    pub fn for_crd(crd: &CustomResourceDefinition) -> Result<Self, SchemaError> {
        let crd_name = crd.metadata.name.clone().unwrap_or_default();
        let version = crd
            .spec
            .versions
            .iter()
            .find(|v| v.served && v.storage)
            .ok_or_else(|| SchemaError::NoStorageVersion(crd_name.clone()))?;
        let schema = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok())
            .ok_or_else(|| SchemaError::NoSchema { crd: crd_name, version: version.name.clone() })?;
        let resource = ResourceType {
            api_version: format!("{}/{}", crd.spec.group, version.name),
            kind: crd.spec.names.kind.clone(),
        };
        Ok(Self::with_resource(schema, Some(resource)))
    }

    /// Validates a new object, as on create.
    pub fn validate(&self, object: &Value) -> Result<(), Vec<FieldError>> {
        self.check(object, None)
    }

    /// Validates an object that replaces `old`, as on update; CEL transition rules (those that use
    /// `oldSelf`, such as an immutable field) are evaluated too.
    pub fn validate_update(&self, object: &Value, old: &Value) -> Result<(), Vec<FieldError>> {
        self.check(object, Some(old))
    }

    fn check(&self, object: &Value, old: Option<&Value>) -> Result<(), Vec<FieldError>> {
        // The API server applies defaults before it validates, so the checks see defaulted fields.
        let defaulted = cel::apply_defaults(&self.schema, object);
        let mut errors = Vec::new();
        let mut checker = Checker { errors: &mut errors, patterns: &self.patterns };
        match &self.resource {
            Some(resource) => checker.resource_root(&self.schema, &defaulted, resource),
            None => checker.value(&self.schema, &defaulted, "", true),
        }
        let structurally_valid = errors.is_empty();
        // The rules run on what the API server would store: `null` pruned where it is not allowed.
        let admitted = prune_nulls(&self.schema, object);
        let old = old.map(|old| prune_nulls(&self.schema, old));
        if let Some(rules) = &self.rules {
            let admitted = cel::apply_defaults(&self.schema, &admitted);
            let old = old.map(|old| cel::apply_defaults(&self.schema, &old));
            for error in rules.validate(&admitted, old.as_ref()) {
                // A rule that evaluates to false is a finding. A rule that fails to evaluate on a
                // value of the wrong type only repeats the type error reported above.
                if error.kind == ErrorKind::ValidationFailure || structurally_valid {
                    errors.push(FieldError::new(&error.field_path, error.message));
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// Removes `null` values of fields that are not nullable, as the API server does before defaulting.
fn prune_nulls(schema: &Value, value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter_map(|(name, child)| {
                    let child_schema = schema
                        .get("properties")
                        .and_then(|p| p.get(name))
                        .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
                    match child_schema {
                        Some(s) if child.is_null() && !flag(s, "nullable") => None,
                        Some(s) => Some((name.clone(), prune_nulls(s, child))),
                        None => Some((name.clone(), child.clone())),
                    }
                })
                .collect(),
        ),
        Value::Array(items) => match schema.get("items") {
            Some(item_schema) => {
                Value::Array(items.iter().map(|item| prune_nulls(item_schema, item)).collect())
            }
            None => value.clone(),
        },
        _ => value.clone(),
    }
}

/// Regexes by their text in the schema.
type Patterns = HashMap<String, Result<Regex, regex::Error>>;

/// Compiles every string under a `pattern` key in `schema`. It does not tell a keyword from a
/// `pattern` field in an example or a default: compiling those too costs less than following the
/// schema's structure a second time.
fn compile_patterns(schema: &Value, patterns: &mut Patterns) {
    match schema {
        Value::Object(keywords) => {
            for (keyword, value) in keywords {
                match (keyword.as_str(), value) {
                    ("pattern", Value::String(pattern)) => {
                        patterns.entry(pattern.clone()).or_insert_with(|| Regex::new(pattern));
                    }
                    _ => compile_patterns(value, patterns),
                }
            }
        }
        Value::Array(values) => values.iter().for_each(|value| compile_patterns(value, patterns)),
        _ => {}
    }
}

/// Walks a value and its schema, collecting structural errors.
struct Checker<'a> {
    errors: &'a mut Vec<FieldError>,
    patterns: &'a Patterns,
}

impl Checker<'_> {
    fn push(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, message));
    }

    /// The root of a Kubernetes object: `apiVersion`, `kind` and `metadata` belong to every
    /// object even when the CRD's schema does not list them.
    fn resource_root(&mut self, schema: &Value, object: &Value, resource: &ResourceType) {
        let Some(fields) = object.as_object() else {
            self.push("", format!("a {} must be an object, got {}", resource.kind, describe(object)));
            return;
        };
        for (field, expected) in [("apiVersion", &resource.api_version), ("kind", &resource.kind)] {
            match fields.get(field) {
                Some(Value::String(s)) if s == expected => {}
                None => self.push(field, format!("required field is missing; expected {expected:?}")),
                Some(other) => self.push(field, format!("expected {expected:?}, got {}", describe(other))),
            }
        }
        match fields.get("metadata") {
            Some(metadata) => self.metadata(metadata),
            None => self.push("metadata", "required field is missing; an object needs at least a name"),
        }
        let rest: Map<String, Value> = fields
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.value(schema, &Value::Object(rest), "", true);
    }

    /// The parts of ObjectMeta a manifest author writes.
    fn metadata(&mut self, metadata: &Value) {
        let Some(fields) = metadata.as_object() else {
            self.push("metadata", format!("must be an object, got {}", describe(metadata)));
            return;
        };
        match (fields.get("name"), fields.get("generateName")) {
            (None, None) => self.push("metadata.name", "required field is missing"),
            (Some(Value::String(name)), _) => {
                if let Some(problem) = dns_subdomain_problem(name) {
                    self.push("metadata.name", format!("{name:?} is not a valid name: {problem}"));
                }
            }
            (Some(other), _) => {
                self.push("metadata.name", format!("must be a string, got {}", describe(other)))
            }
            (None, Some(_)) => {}
        }
        for field in ["namespace", "generateName"] {
            if let Some(value) = fields.get(field).filter(|v| !v.is_string()) {
                self.push(&format!("metadata.{field}"), format!("must be a string, got {}", describe(value)));
            }
        }
        for field in ["labels", "annotations"] {
            match fields.get(field) {
                None => {}
                Some(Value::Object(entries)) => {
                    for (key, value) in entries.iter().filter(|(_, v)| !v.is_string()) {
                        self.push(
                            &format!("metadata.{field}[{key}]"),
                            format!("must be a string, got {}", describe(value)),
                        );
                    }
                }
                Some(other) => self.push(
                    &format!("metadata.{field}"),
                    format!("must be a map of strings, got {}", describe(other)),
                ),
            }
        }
    }

    /// Checks `value` against `schema`. `strict` reports fields the schema does not declare; it is
    /// off inside `allOf`/`anyOf`/`oneOf`/`not`, whose branches only add constraints.
    fn value(&mut self, schema: &Value, value: &Value, path: &str, strict: bool) {
        if value.is_null() {
            if !flag(schema, "nullable") && strict {
                self.push(path, "must not be null; remove the field or give it a value");
            }
            return;
        }
        if !self.type_matches(schema, value, path) {
            return;
        }
        self.enumeration(schema, value, path);
        match value {
            Value::Number(_) => self.number(schema, value, path),
            Value::String(s) => self.string(schema, s, path),
            Value::Array(items) => self.array(schema, items, path, strict),
            Value::Object(fields) => self.object(schema, fields, path, strict),
            Value::Bool(_) | Value::Null => {}
        }
        self.combinators(schema, value, path);
    }

    fn type_matches(&mut self, schema: &Value, value: &Value, path: &str) -> bool {
        let matches = if flag(schema, "x-kubernetes-int-or-string") {
            value.is_string() || is_integer(value)
        } else {
            match schema.get("type").and_then(Value::as_str) {
                None => true,
                Some("object") => value.is_object(),
                Some("array") => value.is_array(),
                Some("string") => value.is_string(),
                Some("integer") => is_integer(value),
                Some("number") => value.is_number(),
                Some("boolean") => value.is_boolean(),
                Some(_) => true,
            }
        };
        if !matches {
            let expected = if flag(schema, "x-kubernetes-int-or-string") {
                "an integer or a string"
            } else {
                article(schema.get("type").and_then(Value::as_str).unwrap_or_default())
            };
            self.push(path, format!("must be {expected}, got {}", describe(value)));
        }
        matches
    }

    fn enumeration(&mut self, schema: &Value, value: &Value, path: &str) {
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            let allowed: Vec<String> =
                allowed.iter().filter(|v| !v.is_null()).map(Value::to_string).collect();
            self.push(path, format!("{value} is not one of {}", allowed.join(", ")));
        }
    }

    fn number(&mut self, schema: &Value, value: &Value, path: &str) {
        let x = value.as_f64().unwrap_or_default();
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if flag(schema, "exclusiveMinimum") && x <= min {
                self.push(path, format!("{value} must be greater than {}", number(min)));
            } else if x < min {
                self.push(path, format!("{value} is less than the minimum {}", number(min)));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if flag(schema, "exclusiveMaximum") && x >= max {
                self.push(path, format!("{value} must be less than {}", number(max)));
            } else if x > max {
                self.push(path, format!("{value} is greater than the maximum {}", number(max)));
            }
        }
        if let Some(step) = schema.get("multipleOf").and_then(Value::as_f64)
            && step > 0.0
            // A tolerance, because 0.3 / 0.1 is not exactly 3 in binary floating point.
            && ((x / step) - (x / step).round()).abs() > 1e-9
        {
            self.push(path, format!("{value} is not a multiple of {}", number(step)));
        }
        let fits = match schema.get("format").and_then(Value::as_str) {
            Some("int32") if is_integer(value) => value.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            Some("int64") if is_integer(value) => value.as_i64().is_some(),
            _ => true,
        };
        if !fits {
            let format = schema.get("format").and_then(Value::as_str).unwrap_or_default();
            self.push(path, format!("{value} is out of range for {format}"));
        }
    }

    fn string(&mut self, schema: &Value, s: &str, path: &str) {
        // Kubernetes counts characters, not bytes.
        let length = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && length < min
        {
            let message = if length == 0 {
                "must not be empty".to_string()
            } else {
                format!("{s:?} is shorter than the minimum length {min}")
            };
            self.push(path, message);
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && length > max
        {
            self.push(path, format!("is {length} characters long, more than the maximum {max}"));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            match self.patterns.get(pattern).expect("every pattern of the schema is compiled with it") {
                Ok(re) if re.is_match(s) => {}
                Ok(_) => self.push(path, format!("{s:?} does not match the pattern {pattern}")),
                Err(e) => {
                    self.push(path, format!("the schema's pattern {pattern} is not a valid regex: {e}"))
                }
            }
        }
    }

    fn array(&mut self, schema: &Value, items: &[Value], path: &str, strict: bool) {
        let count = items.len() as u64;
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && count < min
        {
            self.push(path, format!("has {count} {}, fewer than the minimum {min}", plural(count, "item")));
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && count > max
        {
            self.push(path, format!("has {count} {}, more than the maximum {max}", plural(count, "item")));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                self.value(item_schema, item, &format!("{path}[{i}]"), strict);
            }
        }
        self.list_uniqueness(schema, items, path);
    }

    /// `x-kubernetes-list-type: set` items, and `map` items' keys, must be unique.
    fn list_uniqueness(&mut self, schema: &Value, items: &[Value], path: &str) {
        let key_of = |item: &Value| -> Option<Value> {
            match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("set") => Some(item.clone()),
                Some("map") => {
                    let keys = schema.get("x-kubernetes-list-map-keys").and_then(Value::as_array)?;
                    let key: Map<String, Value> = keys
                        .iter()
                        .filter_map(Value::as_str)
                        .filter_map(|k| item.get(k).map(|v| (k.to_string(), v.clone())))
                        .collect();
                    Some(Value::Object(key))
                }
                _ => None,
            }
        };
        let mut seen: Vec<Value> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Some(key) = key_of(item) else { return };
            if seen.contains(&key) {
                self.push(&format!("{path}[{i}]"), format!("duplicate entry {key}"));
            } else {
                seen.push(key);
            }
        }
    }

    fn object(&mut self, schema: &Value, fields: &Map<String, Value>, path: &str, strict: bool) {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !fields.contains_key(name) {
                    self.push(&join(path, name), "required field is missing");
                }
            }
        }
        let count = fields.len() as u64;
        if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
            && count < min
        {
            self.push(path, format!("has {count} {}, fewer than the minimum {min}", plural(count, "field")));
        }
        if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
            && count > max
        {
            self.push(path, format!("has {count} {}, more than the maximum {max}", plural(count, "field")));
        }
        let preserve_unknown = flag(schema, "x-kubernetes-preserve-unknown-fields");
        let additional = schema.get("additionalProperties");
        for (name, value) in fields {
            if let Some(property) = properties.and_then(|p| p.get(name)) {
                self.value(property, value, &join(path, name), strict);
            } else if let Some(entry_schema) = additional.filter(|a| a.is_object()) {
                self.value(entry_schema, value, &format!("{path}[{name}]"), strict);
            } else if additional == Some(&Value::Bool(false))
                || (strict && !preserve_unknown && additional.is_none())
            {
                let known: Vec<&str> =
                    properties.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
                self.push(&join(path, name), unknown_field_message(name, &known));
            }
        }
    }

    /// `allOf`, `anyOf`, `oneOf` and `not`: in structural schemas they only add value checks.
    fn combinators(&mut self, schema: &Value, value: &Value, path: &str) {
        let patterns = self.patterns;
        let branch_errors = |branch: &Value| {
            let mut errors = Vec::new();
            Checker { errors: &mut errors, patterns }.value(branch, value, path, false);
            errors
        };
        for branch in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            self.errors.extend(branch_errors(branch));
        }
        if let Some(branches) = schema.get("anyOf").and_then(Value::as_array)
            && !branches.is_empty()
            && branches.iter().all(|b| !branch_errors(b).is_empty())
        {
            self.push(path, "does not match any of the allowed alternatives (anyOf)");
        }
        if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
            let matching = branches.iter().filter(|b| branch_errors(b).is_empty()).count();
            if matching != 1 {
                self.push(path, format!("must match exactly one alternative (oneOf), matches {matching}"));
            }
        }
        if let Some(branch) = schema.get("not")
            && branch_errors(branch).is_empty()
        {
            self.push(path, "matches a schema it must not match (not)");
        }
    }
}

pub(crate) fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}

fn is_integer(value: &Value) -> bool {
    value.is_i64() || value.is_u64()
}

pub(crate) fn join(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_string() } else { format!("{path}.{field}") }
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 { noun.to_string() } else { format!("{noun}s") }
}

fn article(type_name: &str) -> &'static str {
    match type_name {
        "object" => "an object",
        "array" => "an array",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean",
        _ => "of another type",
    }
}

/// Prints a schema bound the way it was meant: `100`, not `100.0`.
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { x.to_string() }
}

/// A short description of a JSON value for messages: its type and, when short, the value.
fn describe(value: &Value) -> String {
    let type_name = match value {
        Value::Null => return "null".to_string(),
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => return "an array".to_string(),
        Value::Object(_) => return "an object".to_string(),
    };
    let text = value.to_string();
    if text.chars().count() <= 40 { format!("{type_name} {text}") } else { format!("a long {type_name}") }
}

fn unknown_field_message(name: &str, known: &[&str]) -> String {
    let closest = known
        .iter()
        .map(|k| (strsim::levenshtein(&name.to_lowercase(), &k.to_lowercase()), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min();
    match closest {
        Some((_, suggestion)) => format!("unknown field {name:?}; did you mean {suggestion:?}?"),
        None if known.is_empty() => format!("unknown field {name:?}; this object has no fields"),
        None => format!("unknown field {name:?}; known fields: {}", known.join(", ")),
    }
}

/// Why a name is not an RFC 1123 DNS subdomain, the rule for most object names.
fn dns_subdomain_problem(name: &str) -> Option<&'static str> {
    static LABELS: OnceLock<Regex> = OnceLock::new();
    let re = LABELS.get_or_init(|| {
        Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$").expect("valid regex")
    });
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 253 {
        Some("it is longer than 253 characters")
    } else if !re.is_match(name) {
        Some("use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(schema: Value, value: Value) -> Vec<String> {
        match SchemaValidator::new(schema).validate(&value) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    fn object(properties: Value) -> Value {
        json!({"type": "object", "properties": properties})
    }

    #[test]
    fn reports_wrong_types_at_their_path() {
        let schema = object(json!({
            "replicas": {"type": "integer"},
            "name": {"type": "string"},
            "ratio": {"type": "number"},
            "paused": {"type": "boolean"},
            "steps": {"type": "array", "items": {"type": "object"}},
        }));
        let value = json!({"replicas": "three", "name": 3, "ratio": "x", "paused": "yes", "steps": [{}, 7]});
        let mut found = errors(schema, value);
        found.sort();
        assert_eq!(
            found,
            [
                "name: must be a string, got integer 3",
                "paused: must be a boolean, got string \"yes\"",
                "ratio: must be a number, got string \"x\"",
                "replicas: must be an integer, got string \"three\"",
                "steps[1]: must be an object, got integer 7",
            ]
        );
        assert_eq!(errors(json!({"type": "integer"}), json!(1.5)), ["must be an integer, got number 1.5"]);
        assert!(errors(json!({"type": "number"}), json!(2)).is_empty());
    }

    #[test]
    fn reports_missing_required_fields() {
        let schema = json!({
            "type": "object",
            "required": ["spec"],
            "properties": {"spec": {"type": "object", "required": ["selector"], "properties": {"selector": {}}}},
        });
        assert_eq!(errors(schema.clone(), json!({})), ["spec: required field is missing"]);
        assert_eq!(errors(schema, json!({"spec": {}})), ["spec.selector: required field is missing"]);
    }

    #[test]
    fn a_default_satisfies_required() {
        let schema = json!({
            "type": "object",
            "required": ["policy"],
            "properties": {"policy": {"type": "string", "default": "abort"}},
        });
        assert!(errors(schema, json!({})).is_empty());
    }

    #[test]
    fn reports_unknown_fields_with_a_suggestion() {
        let schema =
            object(json!({"stableService": {"type": "string"}, "canaryService": {"type": "string"}}));
        assert_eq!(
            errors(schema.clone(), json!({"stableSevice": "a"})),
            ["stableSevice: unknown field \"stableSevice\"; did you mean \"stableService\"?"]
        );
        assert_eq!(
            errors(schema, json!({"weight": 1})),
            ["weight: unknown field \"weight\"; known fields: canaryService, stableService"]
        );
    }

    #[test]
    fn preserve_unknown_fields_and_maps_accept_any_key() {
        let schema = object(json!({
            "template": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "closed": {"type": "object", "additionalProperties": false},
        }));
        let value =
            json!({"template": {"spec": {"containers": []}}, "labels": {"app": "checkout", "tier": 1}});
        assert_eq!(errors(schema.clone(), value), ["labels[tier]: must be a string, got integer 1"]);
        assert_eq!(
            errors(schema, json!({"closed": {"x": 1}})),
            ["closed.x: unknown field \"x\"; this object has no fields"]
        );
    }

    #[test]
    fn checks_numbers_against_bounds_and_formats() {
        let weight = json!({"type": "integer", "minimum": 0.0, "maximum": 100.0, "format": "int32"});
        assert_eq!(errors(weight.clone(), json!(150)), ["150 is greater than the maximum 100"]);
        assert_eq!(errors(weight.clone(), json!(-1)), ["-1 is less than the minimum 0"]);
        assert!(errors(weight, json!(100)).is_empty());
        let exclusive = json!({"type": "number", "minimum": 0, "exclusiveMinimum": true});
        assert_eq!(errors(exclusive, json!(0)), ["0 must be greater than 0"]);
        let int32 = json!({"type": "integer", "format": "int32"});
        assert_eq!(errors(int32.clone(), json!(3_000_000_000_i64)), ["3000000000 is out of range for int32"]);
        assert!(errors(int32, json!(-2_147_483_648_i64)).is_empty());
        let int64 = json!({"type": "integer", "format": "int64"});
        assert_eq!(errors(int64, json!(u64::MAX)), [format!("{} is out of range for int64", u64::MAX)]);
        assert_eq!(
            errors(json!({"type": "number", "multipleOf": 0.5}), json!(0.7)),
            ["0.7 is not a multiple of 0.5"]
        );
        assert!(errors(json!({"type": "number", "multipleOf": 0.1}), json!(0.3)).is_empty());
    }

    #[test]
    fn checks_strings() {
        let name = json!({"type": "string", "minLength": 1, "maxLength": 5});
        assert_eq!(errors(name.clone(), json!("")), ["must not be empty"]);
        assert_eq!(errors(name.clone(), json!("abcdef")), ["is 6 characters long, more than the maximum 5"]);
        assert!(errors(name, json!("ééééé")).is_empty(), "lengths count characters, not bytes");
        let duration = json!({"type": "string", "pattern": bellwether_api::DURATION_PATTERN});
        assert!(errors(duration.clone(), json!("1h30m")).is_empty());
        assert_eq!(
            errors(duration, json!("5 minutes")),
            [format!("\"5 minutes\" does not match the pattern {}", bellwether_api::DURATION_PATTERN)]
        );
        let broken = errors(json!({"type": "string", "pattern": "(a"}), json!("a"));
        assert!(
            matches!(broken.as_slice(), [e] if e.starts_with("the schema's pattern (a is not a valid regex: ")),
            "{broken:?}"
        );
        let policy = json!({"type": "string", "enum": ["abort", "pause"]});
        assert_eq!(errors(policy, json!("retry")), ["\"retry\" is not one of \"abort\", \"pause\""]);
    }

    #[test]
    fn checks_arrays() {
        let steps = json!({"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "integer"}});
        assert_eq!(errors(steps.clone(), json!([])), ["has 0 items, fewer than the minimum 1"]);
        assert_eq!(errors(steps.clone(), json!([1, 2, 3])), ["has 3 items, more than the maximum 2"]);
        assert_eq!(errors(steps, json!([1, "x"])), ["[1]: must be an integer, got string \"x\""]);
        let set = json!({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}});
        assert_eq!(errors(set, json!(["a", "b", "a"])), ["[2]: duplicate entry \"a\""]);
        let map = json!({
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "value": {"type": "string"}}},
        });
        let value = json!([{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]);
        assert_eq!(errors(map, value), ["[1]: duplicate entry {\"name\":\"a\"}"]);
    }

    #[test]
    fn null_is_allowed_only_where_nullable() {
        let schema = object(json!({
            "pause": {"type": "object", "nullable": true},
            "setWeight": {"type": "integer"},
        }));
        assert!(errors(schema.clone(), json!({"pause": null})).is_empty());
        assert_eq!(
            errors(schema, json!({"setWeight": null})),
            ["setWeight: must not be null; remove the field or give it a value"]
        );
    }

    #[test]
    fn cel_rules_see_pruned_nulls() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "has(self.a) != has(self.b)", "message": "exactly one of a or b"}],
        });
        assert_eq!(
            errors(schema, json!({"a": 1, "b": null})),
            ["b: must not be null; remove the field or give it a value"],
            "b is pruned before the rule runs, so the rule sees only a"
        );
    }

    #[test]
    fn combinators_add_value_checks() {
        let any_of = json!({"type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]});
        assert!(errors(any_of.clone(), json!("beta")).is_empty());
        assert_eq!(
            errors(any_of, json!("gamma")),
            ["does not match any of the allowed alternatives (anyOf)"]
        );
        let one_of = json!({
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
        });
        assert!(errors(one_of.clone(), json!({"a": 1})).is_empty());
        assert_eq!(
            errors(one_of, json!({"a": 1, "b": 2})),
            ["must match exactly one alternative (oneOf), matches 2"]
        );
        let not = json!({"type": "string", "not": {"enum": ["latest"]}});
        assert_eq!(errors(not, json!("latest")), ["matches a schema it must not match (not)"]);
    }

    #[test]
    fn cel_rules_report_their_message_at_their_path() {
        let schema = object(json!({
            "canary": {
                "type": "object",
                "properties": {"stable": {"type": "string"}, "canary": {"type": "string"}},
                "x-kubernetes-validations": [{"rule": "self.stable != self.canary", "message": "must differ"}],
            },
        }));
        assert_eq!(
            errors(schema, json!({"canary": {"stable": "a", "canary": "a"}})),
            ["canary: must differ"]
        );
    }

    #[test]
    fn cel_evaluation_errors_on_mistyped_values_are_not_repeated() {
        let schema = json!({
            "type": "object",
            "properties": {"replicas": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "self.replicas > 0", "message": "replicas must be positive"}],
        });
        assert_eq!(
            errors(schema.clone(), json!({"replicas": "three"})),
            ["replicas: must be an integer, got string \"three\""]
        );
        assert_eq!(errors(schema, json!({"replicas": 0})), ["replicas must be positive"]);
    }

    #[test]
    fn transition_rules_run_only_on_update() {
        let schema = object(json!({
            "selector": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "selector is immutable"}],
            },
        }));
        let validator = SchemaValidator::new(schema);
        let (old, new) = (json!({"selector": {"app": "a"}}), json!({"selector": {"app": "b"}}));
        assert_eq!(validator.validate(&new), Ok(()));
        assert_eq!(validator.validate_update(&new, &new), Ok(()));
        assert_eq!(
            validator.validate_update(&new, &old),
            Err(vec![FieldError::new("selector", "selector is immutable")])
        );
    }
}
