//! Offline validation of manifests: the structural OpenAPI v3 checks and the CEL rules
//! (`x-kubernetes-validations`) that the API server applies to a custom resource, without a cluster.
//!
//! Two differences from the API server are deliberate, because this is what a linter is for:
//! fields the schema does not know are reported as errors (the API server prunes them silently),
//! and so are `null` values of fields that are not nullable (the API server drops them).

mod checker;
mod rules;

pub use checker::{FieldError, SchemaError, SchemaValidator};

use serde_json::Value;
use std::sync::OnceLock;

/// Validates a Bellwether manifest (a Rollout, AnalysisTemplate, ClusterAnalysisTemplate or
/// AnalysisRun) as the API server would on create: the schema and the CEL rules of its CRD.
pub fn validate_manifest(manifest: &Value) -> Result<(), Vec<FieldError>> {
    bellwether_validator(manifest)?.validate(manifest)
}

/// Validates a Bellwether manifest that replaces `old`, as the API server would on update. This
/// adds the transition rules, such as the immutable Rollout selector.
pub fn validate_manifest_update(manifest: &Value, old: &Value) -> Result<(), Vec<FieldError>> {
    let validator = bellwether_validator(manifest)?;
    let old_kind = old.get("kind").unwrap_or(&Value::Null);
    if manifest.get("kind") != Some(old_kind) {
        return Err(vec![FieldError::new(
            "kind",
            format!("was {old_kind}; an update cannot change the kind of an object"),
        )]);
    }
    validator.validate_update(manifest, old)
}

fn bellwether_validators() -> &'static [SchemaValidator] {
    static VALIDATORS: OnceLock<Vec<SchemaValidator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        bellwether_api::crds()
            .iter()
            .map(|crd| SchemaValidator::for_crd(crd).expect("every derived CRD has a served storage schema"))
            .collect()
    })
}

fn bellwether_validator(manifest: &Value) -> Result<&'static SchemaValidator, Vec<FieldError>> {
    let validators = bellwether_validators();
    let resources = || validators.iter().filter_map(|v| v.resource.as_ref());
    let kinds = || resources().map(|r| r.kind.as_str());
    let fail = |path: &str, message: String| Err(vec![FieldError::new(path, message)]);
    let Some(api_version) = manifest.get("apiVersion").and_then(Value::as_str) else {
        let mut served: Vec<&str> = resources().map(|r| r.api_version.as_str()).collect();
        served.dedup();
        return fail(
            "apiVersion",
            format!("required field is missing; Bellwether objects use {}", served.join(" or ")),
        );
    };
    let Some(kind) = manifest.get("kind").and_then(Value::as_str) else {
        return fail(
            "kind",
            format!("required field is missing; one of {}", kinds().collect::<Vec<_>>().join(", ")),
        );
    };
    let Some(validator) = validators.iter().find(|v| v.resource.as_ref().is_some_and(|r| r.kind == kind))
    else {
        return fail(
            "kind",
            format!(
                "unknown kind {kind:?}: Bellwether's kinds are {}",
                kinds().collect::<Vec<_>>().join(", ")
            ),
        );
    };
    let expected = validator.resource.as_ref().map(|r| r.api_version.as_str()).unwrap_or_default();
    if api_version != expected {
        return fail("apiVersion", format!("{kind} is served as {expected}, not {api_version:?}"));
    }
    Ok(validator)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout() -> Value {
        json!({
            "apiVersion": "bellwether.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "checkout", "namespace": "shop", "labels": {"app": "checkout"}},
            "spec": {
                "selector": {"matchLabels": {"app": "checkout"}},
                "template": {"metadata": {"labels": {"app": "checkout"}}, "spec": {"containers": []}},
                "strategy": {"canary": {
                    "stableService": "checkout-stable",
                    "canaryService": "checkout-canary",
                    "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "checkout"}]}},
                    "steps": [{"setWeight": 10}, {"pause": {}}],
                }},
            },
        })
    }

    fn messages(result: Result<(), Vec<FieldError>>) -> Vec<String> {
        result.err().unwrap_or_default().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_minimal_rollout_is_valid() {
        assert_eq!(validate_manifest(&rollout()), Ok(()));
    }

    #[test]
    fn picks_the_crd_by_api_version_and_kind() {
        let mut manifest = rollout();
        manifest["kind"] = json!("Canary");
        assert_eq!(
            messages(validate_manifest(&manifest)),
            ["kind: unknown kind \"Canary\": Bellwether's kinds are Rollout, AnalysisTemplate, \
                 ClusterAnalysisTemplate, AnalysisRun"]
        );
        let mut manifest = rollout();
        manifest["apiVersion"] = json!("bellwether.dev/v1");
        assert_eq!(
            messages(validate_manifest(&manifest)),
            ["apiVersion: Rollout is served as bellwether.dev/v1alpha1, not \"bellwether.dev/v1\""]
        );
        let mut manifest = rollout();
        manifest.as_object_mut().map(|m| m.remove("apiVersion"));
        assert_eq!(
            messages(validate_manifest(&manifest)),
            ["apiVersion: required field is missing; Bellwether objects use bellwether.dev/v1alpha1"]
        );
    }

    #[test]
    fn checks_the_metadata_every_object_has() {
        let mut manifest = rollout();
        manifest["metadata"] = json!({"name": "Checkout_v2", "labels": {"replicas": 3}});
        assert_eq!(
            messages(validate_manifest(&manifest)),
            [
                "metadata.name: \"Checkout_v2\" is not a valid name: use lowercase letters, digits, '-' and \
                 '.', starting and ending with a letter or digit",
                "metadata.labels[replicas]: must be a string, got integer 3",
            ]
        );
        manifest["metadata"] = json!({"namespace": "shop"});
        assert_eq!(messages(validate_manifest(&manifest)), ["metadata.name: required field is missing"]);
    }

    #[test]
    fn an_update_keeps_the_selector_and_the_kind() {
        let old = rollout();
        let mut new = rollout();
        new["spec"]["replicas"] = json!(5);
        assert_eq!(validate_manifest_update(&new, &old), Ok(()));
        new["spec"]["selector"]["matchLabels"]["app"] = json!("checkout-v2");
        assert_eq!(
            messages(validate_manifest_update(&new, &old)),
            ["spec.selector: selector is immutable; create a new Rollout to change it"]
        );
        let mut template = rollout();
        template["kind"] = json!("AnalysisTemplate");
        assert_eq!(
            messages(validate_manifest_update(&rollout(), &template)),
            ["kind: was \"AnalysisTemplate\"; an update cannot change the kind of an object"]
        );
    }

    #[test]
    fn a_bare_pause_is_not_a_step() {
        let mut manifest = rollout();
        manifest["spec"]["strategy"]["canary"]["steps"][1] = json!({"pause": null});
        assert_eq!(
            messages(validate_manifest(&manifest)),
            [
                "spec.strategy.canary.steps[1].pause: must not be null; remove the field or give it a value",
                "spec.strategy.canary.steps[1]: a step must have exactly one of setWeight, pause, analysis, setHeaderRoute or setMirrorRoute",
            ]
        );
    }
}
