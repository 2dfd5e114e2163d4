//! What decisions derive from a Rollout's spec and templates ([`Prepared`]: the plan, or why there
//! is none, and the revision), kept for as long as neither changes, so that a pass does not
//! validate the spec and hash the pod template again: about three quarters of a decision.
//!
//! A kept plan is used only when the Rollout's UID and generation (which the API server bumps at
//! every change of the spec), the resourceVersion of every template it names and that of its
//! `workloadRef`'s Deployment are those it was derived from.

use super::fetch::Fetched;
use crate::api::{Rollout, TemplateRef};
use crate::engine::Prepared;
use kube::ResourceExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// What a kept plan was derived from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Source {
    uid: String,
    generation: i64,
    /// Each template the Rollout names, and its resourceVersion (`None` when it does not exist).
    templates: Vec<(TemplateRef, Option<String>)>,
    /// The resourceVersion of the `workloadRef`'s Deployment, whose pod template the plan used.
    workload: Option<String>,
}

/// A Rollout's namespace and name.
type RolloutKey = (String, String);

/// The plans kept, by Rollout, with what each was derived from.
#[derive(Default)]
pub struct Plans {
    kept: Mutex<HashMap<RolloutKey, (Source, Arc<Prepared>)>>,
}

impl Plans {
    /// The Rollout's prepared plan: the kept one if it was derived from what the caches show now,
    /// otherwise derived again from what `fetched` read and kept.
    pub fn get(&self, rollout: &Rollout, fetched: &Fetched) -> Arc<Prepared> {
        let source = rollout.uid().zip(rollout.metadata.generation).map(|(uid, generation)| Source {
            uid,
            generation,
            templates: fetched.template_versions.clone(),
            workload: fetched.workload_version.clone(),
        });
        let key = (rollout.namespace().unwrap_or_default(), rollout.name_any());
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if let (Some(source), Some((from, prepared))) = (&source, kept.get(&key))
            && source == from
        {
            return prepared.clone();
        }
        let observation = &fetched.observation;
        let workload = observation.workload.as_ref().map(|w| &w.template);
        let prepared = Arc::new(Prepared::new(&rollout.spec, &observation.templates, workload));
        match source {
            Some(source) => {
                kept.insert(key, (source, prepared.clone()));
            }
            None => {
                kept.remove(&key);
            }
        }
        prepared
    }

    /// Forgets the plan of a Rollout that is gone.
    pub fn forget(&self, rollout: &Rollout) {
        let key = (rollout.namespace().unwrap_or_default(), rollout.name_any());
        self.kept.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(generation: i64, image: &str) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "bellwether.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "generation": generation},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": image}]}},
                "strategy": {"canary": {
                    "stableService": "web-stable",
                    "canaryService": "web-canary",
                    "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}},
                    "steps": [{"setWeight": 10}, {"analysis": {"templates": [{"templateName": "errors"}]}}],
                }},
            },
        }))
        .expect("a valid Rollout")
    }

    /// What a pass read: the template the test Rollout names at `version`, and the Deployment
    /// at `workload`.
    fn read(version: Option<&str>, workload: Option<&str>) -> Fetched {
        let reference = TemplateRef { template_name: "errors".into(), cluster_scope: false };
        Fetched {
            template_versions: vec![(reference, version.map(str::to_string))],
            workload_version: workload.map(str::to_string),
            ..Fetched::default()
        }
    }

    #[test]
    fn a_plan_is_kept_while_the_spec_and_its_templates_are_unchanged() {
        let plans = Plans::default();
        let first = plans.get(&rollout(1, "web:1"), &read(Some("7"), None));
        assert!(Arc::ptr_eq(&first, &plans.get(&rollout(1, "web:1"), &read(Some("7"), None))));
        assert_eq!(*first, Prepared::new(&rollout(1, "web:1").spec, &Default::default(), None));
    }

    #[test]
    fn a_new_generation_a_changed_template_or_deployment_derives_the_plan_again() {
        let plans = Plans::default();
        let first = plans.get(&rollout(1, "web:1"), &read(Some("7"), None));
        let shipped = plans.get(&rollout(2, "web:2"), &read(Some("7"), None));
        assert!(!Arc::ptr_eq(&first, &shipped));
        assert_ne!(first.revision, shipped.revision, "the new pod template's revision");
        let template_changed = plans.get(&rollout(2, "web:2"), &read(Some("8"), None));
        assert!(!Arc::ptr_eq(&shipped, &template_changed));
        let template_gone = plans.get(&rollout(2, "web:2"), &read(None, None));
        assert!(!Arc::ptr_eq(&template_changed, &template_gone));
        let deployment_changed = plans.get(&rollout(2, "web:2"), &read(None, Some("3")));
        assert!(!Arc::ptr_eq(&template_gone, &deployment_changed));
    }

    #[test]
    fn a_rollout_without_a_generation_is_never_kept() {
        let plans = Plans::default();
        let mut unversioned = rollout(1, "web:1");
        unversioned.metadata.generation = None;
        let first = plans.get(&unversioned, &read(None, None));
        assert!(!Arc::ptr_eq(&first, &plans.get(&unversioned, &read(None, None))));
    }
}
