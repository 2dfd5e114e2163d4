//! A Rollout's pod template, held as the compact JSON of a Kubernetes `PodTemplateSpec`.
//!
//! `PodTemplateSpec` is large in memory even when nearly empty: 1.8 KiB inline, and 2.1 KiB more
//! per container. The controller caches every Rollout but reads the template only when a spec
//! changes (for the revision and the plan) and when it applies the current revision's ReplicaSet;
//! as JSON a typical template is a few hundred bytes. On the wire it is the `PodTemplateSpec`
//! itself.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Equal templates are equal here too: the JSON is always written from the typed template, whose
/// fields serialize in one order and whose maps are sorted.
#[derive(Clone, PartialEq, Eq)]
pub struct PodTemplate {
    json: Box<str>,
}

impl PodTemplate {
    pub fn new(template: &PodTemplateSpec) -> Self {
        let json = serde_json::to_string(template).expect("a PodTemplateSpec always serializes");
        Self { json: json.into() }
    }

    /// The template, read again from its JSON: take it once where it is needed.
    pub fn get(&self) -> PodTemplateSpec {
        // The JSON was written from a PodTemplateSpec, and k8s-openapi's types read back what they
        // write.
        serde_json::from_str(&self.json).expect("the JSON of a PodTemplateSpec reads back")
    }

    /// Changes the template.
    pub fn modify(&mut self, change: impl FnOnce(&mut PodTemplateSpec)) {
        let mut template = self.get();
        change(&mut template);
        *self = Self::new(&template);
    }
}

impl From<PodTemplateSpec> for PodTemplate {
    fn from(template: PodTemplateSpec) -> Self {
        Self::new(&template)
    }
}

impl Default for PodTemplate {
    fn default() -> Self {
        Self::new(&PodTemplateSpec::default())
    }
}

impl fmt::Debug for PodTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PodTemplate").field(&self.json).finish()
    }
}

impl Serialize for PodTemplate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PodTemplate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        PodTemplateSpec::deserialize(deserializer).map(|template| Self::new(&template))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> serde_json::Value {
        json!({
            "metadata": {"labels": {"app": "checkout", "tier": "web"}},
            "spec": {"containers": [{
                "name": "app", "image": "shop:1",
                "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}},
                "ports": [{"containerPort": 8080, "name": "http"}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}}
            }]}
        })
    }

    #[test]
    fn it_reads_and_writes_as_the_kubernetes_template_does() {
        let typed: PodTemplateSpec = serde_json::from_value(template()).unwrap();
        let held: PodTemplate = serde_json::from_value(template()).unwrap();
        assert_eq!(held.get(), typed);
        assert_eq!(serde_json::to_value(&held).unwrap(), serde_json::to_value(&typed).unwrap());
        assert_eq!(held, PodTemplate::new(&typed));
    }

    #[test]
    fn what_the_kubernetes_template_refuses_it_refuses() {
        let error =
            serde_json::from_value::<PodTemplate>(json!({"spec": {"containers": "app"}})).unwrap_err();
        assert!(error.to_string().contains("invalid type"), "{error}");
    }

    #[test]
    fn a_change_is_kept_and_makes_it_unequal() {
        let original: PodTemplate = serde_json::from_value(template()).unwrap();
        let mut changed = original.clone();
        changed.modify(|t| t.spec.as_mut().unwrap().containers[0].image = Some("shop:2".into()));
        assert_ne!(changed, original);
        assert_eq!(changed.get().spec.unwrap().containers[0].image.as_deref(), Some("shop:2"));
    }
}
