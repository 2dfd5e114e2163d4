//! Revisions: a stable hash of the canonical pod template.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// Characters that cannot spell words, as Kubernetes uses for pod-template-hash.
const ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

/// The revision of a pod template: ten characters, the same for the same template on every
/// machine and every version of Bellwether, because it hashes canonical JSON (sorted keys) with
/// FNV-1a rather than anything that depends on the Rust toolchain.
pub fn revision_of(template: &PodTemplateSpec) -> String {
    let value = serde_json::to_value(template).unwrap_or(Value::Null);
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

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"app": "web", "tier": "front"}},
            "spec": {"containers": [{"name": "web", "image": image}]}
        }))
        .unwrap()
    }

    #[test]
    fn same_template_same_revision_and_key_order_does_not_matter() {
        let a = template("web:1");
        let b: PodTemplateSpec = serde_json::from_value(serde_json::json!({
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
    }
}
