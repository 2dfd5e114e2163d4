//! Revisions: a stable hash of the canonical pod template.
//!
//! The canonical template is the template without the values a Kubernetes API server fills in
//! (see `pod_defaults`). A ReplicaSet or a Deployment read back from a server carries those
//! defaults, a Rollout's template usually does not, and both must name the same revision: `undo`
//! writes a ReplicaSet's template back into the Rollout, and a Rollout may take its template from
//! a Deployment. The defaults are removed rather than filled in so that a template written without
//! them, as most are, hashes as it always has, and existing Rollouts keep their revisions.

use crate::pod_defaults::strip_pod_template_defaults;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// Characters that cannot spell words, as Kubernetes uses for pod-template-hash.
const ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

/// The revision of a pod template: ten characters, the same for the same template on every
/// machine and every version of Bellwether, because it hashes canonical JSON (sorted keys) with
/// FNV-1a rather than anything that depends on the Rust toolchain.
///
/// It is also the same for the template as an API server stores it, defaults filled in: values
/// equal to their defaults are left out of the hash. So a template that spells a default out
/// (`protocol: TCP`, `imagePullPolicy: IfNotPresent` on a tagged image, `emptyDir: {}`) has a
/// different revision from the one earlier versions of Bellwether gave it; after the upgrade its
/// Rollout starts one canary of the same template.
pub fn revision_of(template: &PodTemplateSpec) -> String {
    let mut value = serde_json::to_value(template).unwrap_or(Value::Null);
    strip_pod_template_defaults(&mut value);
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    let mut hash = fnv1a64(canonical.as_bytes());
    let mut out = String::with_capacity(10);
    for _ in 0..10 {
        out.push(ALPHABET[(hash % 27) as usize] as char);
        hash /= 27;
    }
    out
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

pub(super) fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_defaults::fill_pod_template_defaults;
    use proptest::prelude::*;
    use serde_json::json;

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web", "tier": "front"}},
            "spec": {"containers": [{"name": "web", "image": image}]}
        }))
        .unwrap()
    }

    #[test]
    fn same_template_same_revision_and_key_order_does_not_matter() {
        let a = template("web:1");
        let b: PodTemplateSpec = serde_json::from_value(json!({
            "spec": {"containers": [{"image": "web:1", "name": "web"}]},
            "metadata": {"labels": {"tier": "front", "app": "web"}}
        }))
        .unwrap();
        assert_eq!(revision_of(&a), revision_of(&b));
        assert_eq!(revision_of(&a).len(), 10);
    }

    #[test]
    fn a_new_image_is_a_new_revision() {
        assert_ne!(revision_of(&template("web:1")), revision_of(&template("web:2")));
    }

    #[test]
    fn revision_is_pinned_across_releases() {
        // Changing the hash would make every running Rollout start a canary of its own stable
        // revision after an upgrade. This value must never change.
        assert_eq!(revision_of(&template("web:1")), "98hmc26f8s");
        // Ports and probes have defaults; written without them, they hash as before defaults
        // were left out.
        let with_ports_and_probe = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{
                "name": "web", "image": "web:1",
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
            }]},
        }))
        .unwrap();
        assert_eq!(revision_of(&with_ports_and_probe), "rt9f2bcwgv");
    }

    fn defaulted(template: &PodTemplateSpec) -> PodTemplateSpec {
        let mut value = serde_json::to_value(template).unwrap();
        fill_pod_template_defaults(&mut value);
        serde_json::from_value(value).expect("a defaulted template reads as a template")
    }

    #[test]
    fn the_template_the_api_server_stored_is_the_same_revision() {
        let written = template("web:1");
        let stored = defaulted(&written);
        assert_ne!(stored, written, "the server filled something in");
        assert_eq!(revision_of(&stored), revision_of(&written));
        assert_ne!(revision_of(&defaulted(&template("web:2"))), revision_of(&written));
    }

    #[test]
    fn a_value_other_than_the_default_is_a_new_revision() {
        let mut never = template("web:1");
        never.spec.as_mut().unwrap().containers[0].image_pull_policy = Some("Never".into());
        assert_ne!(revision_of(&never), revision_of(&template("web:1")));
        assert_eq!(revision_of(&defaulted(&never)), revision_of(&never));
    }

    /// Templates with the fields the API server defaults, each unset, set to its default, or set
    /// to something else.
    fn templates() -> impl Strategy<Value = Value> {
        fn maybe(values: &'static [&'static str]) -> impl Strategy<Value = Option<&'static str>> {
            prop::option::of(prop::sample::select(values))
        }
        let probe = (maybe(&["/", "/ready"]), maybe(&["HTTP", "HTTPS"]), prop::option::of(0..4i64)).prop_map(
            |(path, scheme, timeout)| json!({"httpGet": {"port": 8080, "path": path, "scheme": scheme}, "timeoutSeconds": timeout}),
        );
        let container = (
            prop::sample::select(&["web", "web:latest", "web:1", "registry.example:5000/web:2", "web@sha256:4c1b"][..]),
            maybe(&["Always", "IfNotPresent", "Never"]),
            maybe(&["TCP", "UDP"]),
            "[a-z]{0,3}",
            maybe(&["v1"]),
            prop::option::of(probe),
            maybe(&["/dev/termination-log", "/tmp/log"]),
        )
            .prop_map(|(image, pull, protocol, value, field_api, probe, message_path)| {
                json!({
                    "name": "app", "image": image, "imagePullPolicy": pull,
                    "ports": [{"containerPort": 8080, "protocol": protocol}],
                    "env": [
                        {"name": "VALUE", "value": value},
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name", "apiVersion": field_api}}},
                    ],
                    "readinessProbe": probe,
                    "terminationMessagePath": message_path,
                })
            });
        let volume = prop_oneof![
            Just(json!({"name": "v"})),
            Just(json!({"name": "v", "emptyDir": {}})),
            Just(json!({"name": "v", "emptyDir": {"medium": "Memory"}})),
            prop::option::of(prop::sample::select(&[420, 256][..]))
                .prop_map(|mode| json!({"name": "v", "configMap": {"name": "c", "defaultMode": mode}})),
        ];
        (
            prop::collection::vec(container, 1..3),
            prop::collection::vec(volume, 0..3),
            maybe(&["ClusterFirst", "Default"]),
            prop::option::of(prop::sample::select(&[0, 30, 60][..])),
            prop::option::of(Just(json!({}))),
        )
            .prop_map(|(containers, volumes, dns, grace, security)| {
                let mut template = json!({
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": containers, "volumes": volumes, "dnsPolicy": dns,
                        "terminationGracePeriodSeconds": grace, "securityContext": security,
                    },
                });
                drop_nulls(&mut template);
                template
            })
    }

    /// Leaves out the fields a strategy chose not to set, as a person would.
    fn drop_nulls(value: &mut Value) {
        match value {
            Value::Object(fields) => {
                fields.retain(|_, field| !field.is_null());
                fields.values_mut().for_each(drop_nulls);
            }
            Value::Array(items) => items.iter_mut().for_each(drop_nulls),
            _ => {}
        }
    }

    fn typed(value: Value) -> PodTemplateSpec {
        serde_json::from_value(value).expect("a valid template")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Defaults alone never make a new revision; a new image or env value always does.
        #[test]
        fn only_a_real_change_makes_a_new_revision(template in templates(), other in "[A-Z]{1,3}") {
            let written = typed(template.clone());
            prop_assert_eq!(revision_of(&defaulted(&written)), revision_of(&written));

            let mut new_image = template.clone();
            new_image["spec"]["containers"][0]["image"] = json!("web:next");
            prop_assert_ne!(revision_of(&typed(new_image)), revision_of(&written));

            let mut new_value = template;
            new_value["spec"]["containers"][0]["env"][0]["value"] = json!(other);
            prop_assert_ne!(revision_of(&defaulted(&typed(new_value))), revision_of(&written));
        }
    }
}
