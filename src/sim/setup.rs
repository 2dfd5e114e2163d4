//! What is simulated: one Rollout and the templates it references, read from manifests.

use super::analysis::Signal;
use crate::api::{AnalysisTemplate, ClusterAnalysisTemplate, PodTemplate, Rollout, RolloutSpec, TemplateRef};
use crate::engine::{Plan, Templates};
use bellwether_openapi::validate_manifest;
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Deserialize;
use serde_json::Value;

/// A Rollout and the templates it may reference.
#[derive(Clone, Debug)]
pub struct Setup {
    pub name: String,
    pub namespace: String,
    pub spec: RolloutSpec,
    pub templates: Templates,
}

/// Why manifests cannot be simulated.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{origin}: not valid YAML: {reason}")]
    Yaml { origin: String, reason: serde_yaml::Error },
    #[error("{origin}: {kind} {name} is invalid: {problems}")]
    Invalid { origin: String, kind: String, name: String, problems: String },
    #[error("no Rollout in the manifests")]
    NoRollout,
    #[error("{count} Rollouts in the manifests ({names}); pass one Rollout")]
    ManyRollouts { count: usize, names: String },
    #[error("Rollout {name} cannot run: {problems}")]
    Plan { name: String, problems: String },
}

const EXAMPLE: [(&str, &str); 3] = [
    ("examples/basic/rollout.yaml", include_str!("../../examples/basic/rollout.yaml")),
    ("examples/basic/analysis-templates.yaml", include_str!("../../examples/basic/analysis-templates.yaml")),
    ("examples/basic/recommended.yaml", include_str!("../../examples/basic/recommended.yaml")),
];

impl Setup {
    /// Each metric the templates define, once, and what the simulation measures for it.
    pub fn signals(&self) -> Vec<(String, Signal)> {
        let mut signals: Vec<(String, Signal)> = Vec::new();
        for metric in self.templates.values().flat_map(|t| &t.metrics) {
            if !signals.iter().any(|(name, _)| *name == metric.name) {
                signals.push((metric.name.clone(), Signal::of(metric)));
            }
        }
        signals
    }

    /// The bundled example: the `checkout` Rollout and its templates from `examples/basic`.
    pub fn example() -> Self {
        Self::from_manifests(EXAMPLE.iter().map(|(origin, text)| (origin.to_string(), text.to_string())))
            .expect("the bundled example is valid")
    }

    /// Reads (origin, YAML text) pairs, as [`Self::from_objects`] reads their documents.
    pub fn from_manifests(sources: impl IntoIterator<Item = (String, String)>) -> Result<Self, SetupError> {
        let mut objects = Vec::new();
        for (origin, text) in sources {
            for document in serde_yaml::Deserializer::from_str(&text) {
                let value = Value::deserialize(document)
                    .map_err(|reason| SetupError::Yaml { origin: origin.clone(), reason })?;
                objects.push((origin.clone(), value));
            }
        }
        Self::from_objects(objects)
    }

    /// Reads (origin, object) pairs; objects of other kinds (Services, routes) are skipped. Every
    /// Bellwether object is checked against its CRD schema, and the Rollout against the engine's
    /// own rules, so that a simulation never runs on a spec the cluster would reject.
    pub fn from_objects(objects: impl IntoIterator<Item = (String, Value)>) -> Result<Self, SetupError> {
        let mut rollouts = Vec::new();
        let mut templates = Templates::new();
        for (origin, json) in objects {
            let kind = json.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
            let is_ours = json
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|v| v.starts_with("bellwether.dev/"));
            if !is_ours {
                continue;
            }
            validate_manifest(&json).map_err(|errors| {
                let problems = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                invalid(&origin, &kind, &json, problems)
            })?;
            match kind.as_str() {
                "Rollout" => rollouts.push(
                    serde_json::from_value::<Rollout>(json.clone())
                        .map_err(|e| invalid(&origin, &kind, &json, e))?,
                ),
                "AnalysisTemplate" => {
                    let template: AnalysisTemplate = serde_json::from_value(json.clone())
                        .map_err(|e| invalid(&origin, &kind, &json, e))?;
                    let name = template.metadata.name.clone().unwrap_or_default();
                    templates
                        .insert(TemplateRef { template_name: name, cluster_scope: false }, template.spec);
                }
                "ClusterAnalysisTemplate" => {
                    let template: ClusterAnalysisTemplate = serde_json::from_value(json.clone())
                        .map_err(|e| invalid(&origin, &kind, &json, e))?;
                    let name = template.metadata.name.clone().unwrap_or_default();
                    templates.insert(
                        TemplateRef { template_name: name, cluster_scope: true },
                        template.spec.into(),
                    );
                }
                _ => {}
            }
        }
        let rollout = match rollouts.len() {
            0 => return Err(SetupError::NoRollout),
            1 => rollouts.remove(0),
            count => {
                let names =
                    rollouts.iter().filter_map(|r| r.metadata.name.clone()).collect::<Vec<_>>().join(", ");
                return Err(SetupError::ManyRollouts { count, names });
            }
        };
        let name = rollout.metadata.name.clone().unwrap_or_default();
        let mut rollout = rollout;
        if rollout.spec.template.is_none() && rollout.spec.workload_ref.take().is_some() {
            // The Deployment is not among the manifests: its revisions are simulated with a
            // template of the selector's labels, which is all a simulated pod needs.
            rollout.spec.template = Some(stand_in_template(&rollout.spec.selector));
        }
        if let Err(errors) = Plan::from_spec(&rollout.spec, &templates) {
            let problems = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            return Err(SetupError::Plan { name, problems });
        }
        Ok(Self {
            name,
            namespace: rollout.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            spec: rollout.spec,
            templates,
        })
    }
}

/// A pod template whose labels are `selector`'s match labels, with one container.
fn stand_in_template(selector: &LabelSelector) -> PodTemplate {
    PodTemplate::new(&PodTemplateSpec {
        metadata: Some(ObjectMeta { labels: selector.match_labels.clone(), ..ObjectMeta::default() }),
        spec: Some(PodSpec {
            containers: vec![Container { name: "app".into(), ..Container::default() }],
            ..PodSpec::default()
        }),
    })
}

fn invalid(origin: &str, kind: &str, value: &Value, problems: impl ToString) -> SetupError {
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_string();
    SetupError::Invalid {
        origin: origin.to_string(),
        kind: kind.to_string(),
        name,
        problems: problems.to_string(),
    }
}
