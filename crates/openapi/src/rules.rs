//! A schema's CEL rules (`x-kubernetes-validations`), compiled once and run on every check.
//!
//! kube-cel's `Validator::validate` compiles each rule it meets on every call, and compiling is most
//! of what a check costs. Its `validate_compiled` reuses compiled rules but visits sibling fields in
//! hash-map order, so errors at sibling fields would change order from one validator to the next.
//! This walk visits the nodes in `Validator::validate`'s order (the schema's) and hands each node
//! that has rules to `validate_compiled`, compiled without the rules below it: every rule runs once,
//! at its own node, with the value kube-cel's own walk would give it.
//!
//! kube-cel stops at 64 levels of nesting, counted from where its walk starts: the root in its own
//! walk, the node of the rules here. Only a schema nested deeper than that could tell them apart.

use crate::checker::{flag, join};
use kube_core::cel::{self, CompiledSchema, ValidationError};
use serde_json::{Map, Value};

thread_local! {
    // Building a validator registers every Kubernetes CEL function; do it once per thread.
    static CEL: cel::Validator = cel::Validator::new();
}

/// One node of a schema, reduced to the rules at and below it. Children without rules anywhere below
/// them are left out, so a check does not visit the parts of an object that no rule looks at.
#[derive(Debug)]
pub(crate) struct Rules {
    /// The node's own rules, compiled along with the shape of the values below it: kube-cel reads
    /// their formats, maps and embedded objects to turn a value into CEL.
    own: Option<CompiledSchema>,
    /// In the schema's order, which is the order kube-cel's walk reports their errors in.
    properties: Vec<(String, Rules)>,
    items: Option<Box<Rules>>,
    /// The `additionalProperties` of a map, and the declared fields it does not cover.
    map_values: Option<(Box<Rules>, Vec<String>)>,
    /// `allOf`, `oneOf` and `anyOf` branches: their rules apply to the node's value, at its path.
    branches: Vec<Rules>,
}

impl Rules {
    /// The rules of `schema`, or `None` when it has none.
    pub(crate) fn compile(schema: &Value) -> Option<Self> {
        let has_own =
            schema.get("x-kubernetes-validations").and_then(Value::as_array).is_some_and(|r| !r.is_empty());
        let own = has_own.then(|| cel::compile_schema(&without_other_nodes(schema, true)));
        let declared = schema.get("properties").and_then(Value::as_object);
        let properties: Vec<(String, Rules)> = declared
            .into_iter()
            .flatten()
            .filter_map(|(name, property)| Some((name.clone(), Self::compile(property)?)))
            .collect();
        let items = schema.get("items").and_then(Self::compile).map(Box::new);
        // kube-cel does not look into the values of a map whose unknown fields are preserved.
        let map_values = schema
            .get("additionalProperties")
            .filter(|a| a.is_object() && !flag(schema, "x-kubernetes-preserve-unknown-fields"))
            .and_then(Self::compile)
            .map(|rules| (Box::new(rules), declared.into_iter().flat_map(|d| d.keys().cloned()).collect()));
        let branches: Vec<Rules> = ["allOf", "oneOf", "anyOf"]
            .into_iter()
            .filter_map(|keyword| schema.get(keyword).and_then(Value::as_array))
            .flatten()
            .filter_map(Self::compile)
            .collect();
        let empty = own.is_none()
            && properties.is_empty()
            && items.is_none()
            && map_values.is_none()
            && branches.is_empty();
        (!empty).then_some(Self { own, properties, items, map_values, branches })
    }

    /// Runs the rules on `object`, and the transition rules too when there is an `old` object. Both
    /// must have the schema's defaults applied, as the API server applies them before the rules run.
    pub(crate) fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<ValidationError> {
        let mut errors = Vec::new();
        CEL.with(|validator| self.walk(validator, object, old, "", &mut errors));
        errors
    }

    fn walk(
        &self,
        validator: &cel::Validator,
        value: &Value,
        old: Option<&Value>,
        path: &str,
        errors: &mut Vec<ValidationError>,
    ) {
        if let Some(own) = &self.own
            && let Err(found) = validator.validate_compiled(own, value, old)
        {
            errors.extend(found.into_iter().map(|mut error| {
                error.field_path = under(path, &error.field_path);
                error
            }));
        }
        if let Some(fields) = value.as_object() {
            for (name, rules) in &self.properties {
                if let Some(field) = fields.get(name) {
                    rules.walk(validator, field, old.and_then(|o| o.get(name)), &join(path, name), errors);
                }
            }
        }
        if let (Some(rules), Some(items)) = (&self.items, value.as_array()) {
            for (i, item) in items.iter().enumerate() {
                let old_item = old.and_then(Value::as_array).and_then(|o| o.get(i));
                rules.walk(validator, item, old_item, &format!("{path}[{i}]"), errors);
            }
        }
        if let (Some((rules, declared)), Some(fields)) = (&self.map_values, value.as_object()) {
            for (key, field) in fields.iter().filter(|(key, _)| !declared.contains(key)) {
                rules.walk(validator, field, old.and_then(|o| o.get(key)), &join(path, key), errors);
            }
        }
        for branch in &self.branches {
            branch.walk(validator, value, old, path, errors);
        }
    }
}

/// `schema` with only what kube-cel needs for the rules of this one node: its own rules if
/// `keep_rules`, and the shape of the values below it. The rules below run at their own nodes;
/// the `allOf`, `oneOf` and `anyOf` branches are nodes of their own; and the defaults were applied
/// to the whole object already, where a second pass could fill fields inside a default's value.
fn without_other_nodes(schema: &Value, keep_rules: bool) -> Value {
    let Value::Object(keywords) = schema else { return schema.clone() };
    let mut kept = Map::new();
    for (keyword, value) in keywords {
        let value = match keyword.as_str() {
            "allOf" | "oneOf" | "anyOf" | "default" => continue,
            "x-kubernetes-validations" if !keep_rules => continue,
            "items" | "additionalProperties" => without_other_nodes(value, false),
            "properties" => match value {
                Value::Object(properties) => Value::Object(
                    properties
                        .iter()
                        .map(|(name, property)| (name.clone(), without_other_nodes(property, false)))
                        .collect(),
                ),
                _ => value.clone(),
            },
            _ => value.clone(),
        };
        kept.insert(keyword.clone(), value);
    }
    Value::Object(kept)
}

/// The path of an error that kube-cel reports at `relative` when its walk starts at `path`, as its
/// walk from the root would report it. A rule's `fieldPath` may start with a `.`.
fn under(path: &str, relative: &str) -> String {
    match relative {
        "" => path.to_string(),
        _ if relative.starts_with('.') => format!("{path}{relative}"),
        _ => join(path, relative),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A schema with a rule at every kind of node kube-cel visits, rules at sibling fields (whose
    /// errors must keep their order), and the value conversions the rules depend on.
    fn schema() -> Value {
        let named = |rule: &str, message: &str| {
            json!({
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "weight": {
                            "type": "integer",
                            "default": 1,
                            "x-kubernetes-validations": [{"rule": "self <= 100", "message": "at most 100"}],
                        },
                    },
                    "x-kubernetes-validations": [
                        {"rule": rule, "message": message, "fieldPath": ".name"},
                        {"rule": "self.name != 'y'", "message": "not y", "fieldPath": "name"},
                    ],
                },
            })
        };
        json!({
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "!has(self.a) || !has(self.b) || size(self.b) >= size(self.a)", "message": "b shorter than a"},
                {"rule": "!has(self.dashed__dash__name) || self.dashed__dash__name > 0", "message": "escaped name"},
                {"rule": "self ==", "message": "never compiles"},
            ],
            "properties": {
                "a": named("self.name != 'x'", "not x"),
                "b": named("self.name.size() < 5", "short names"),
                "dashed-name": {"type": "integer"},
                "since": {
                    "type": "string",
                    "format": "date-time",
                    "x-kubernetes-validations": [{
                        "rule": "self > timestamp('2020-01-01T00:00:00Z')",
                        "messageExpression": "'too early: ' + string(self)",
                    }],
                },
                "labels": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "string",
                        "x-kubernetes-validations": [{"rule": "size(self) < 5", "message": "long label"}],
                    },
                    "x-kubernetes-validations": [{"rule": "!('app-name' in self) || self['app-name'] != ''"}],
                },
                "opaque": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "additionalProperties": {"x-kubernetes-validations": [{"rule": "false"}]},
                },
                "immutable": {
                    "type": "string",
                    "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}],
                },
                "growing": {
                    "type": "integer",
                    "x-kubernetes-validations": [{
                        "rule": "oldSelf == null || self >= oldSelf",
                        "message": "must not shrink",
                        "optionalOldSelf": true,
                    }],
                },
                "either": {
                    "type": "object",
                    "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                    "allOf": [{"x-kubernetes-validations": [{"rule": "has(self.x)", "message": "x is required"}]}],
                    "x-kubernetes-validations": [{"rule": "self.x > 0", "message": "x positive"}],
                },
                "defaulted": {
                    "type": "object",
                    "default": {},
                    "properties": {"inner": {"type": "integer", "default": 5}},
                    "x-kubernetes-validations": [{"rule": "!has(self.inner)", "message": "a default is not defaulted"}],
                },
            },
        })
    }

    #[test]
    fn compiled_rules_give_what_kube_cels_own_walk_gives() {
        let schema = schema();
        let rules = Rules::compile(&schema).expect("the schema has rules");
        let reference = cel::Validator::new();
        let valid = json!({
            "a": [{"name": "a"}],
            "b": [{"name": "b"}],
            "since": "2024-05-01T00:00:00Z",
            "labels": {"app-name": "web"},
            "immutable": "v1",
            "growing": 2,
            "either": {"x": 1},
        });
        let broken = json!({
            "a": [{"name": "x"}, {"name": "y", "weight": 101}],
            "b": [{"name": "toolong"}],
            "dashed-name": -1,
            "since": "2019-05-01T00:00:00Z",
            "labels": {"app-name": "", "tier": "backend"},
            "opaque": {"anything": 1},
            "immutable": "v2",
            "growing": 1,
            "either": {"y": 1},
        });
        for (object, old) in
            [(&valid, None), (&broken, None), (&valid, Some(&broken)), (&broken, Some(&valid))]
        {
            let expected = match reference.validate(&schema, object, old) {
                Ok(()) => Vec::new(),
                Err(errors) => errors.into_vec(),
            };
            let object = cel::apply_defaults(&schema, object);
            let old = old.map(|old| cel::apply_defaults(&schema, old));
            assert_eq!(rules.validate(&object, old.as_ref()), expected, "object {object}, old {old:?}");
        }
    }

    #[test]
    fn a_schema_without_rules_compiles_to_none() {
        let schema =
            json!({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}}}});
        assert!(Rules::compile(&schema).is_none());
    }
}
