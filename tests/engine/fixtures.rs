//! Builders for Rollout specs, templates and times, so that each test states only what matters.

use bellwether::api::*;
use bellwether::engine::Templates;
use chrono::{DateTime, TimeZone, Utc};
use std::collections::BTreeMap;

/// `minutes` after a fixed start, as a timestamp.
pub fn at_minute(minutes: f64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
        + chrono::Duration::milliseconds((minutes * 60_000.0) as i64)
}

pub struct RolloutBuilder {
    spec: RolloutSpec,
}

/// A Rollout named `web` with 10 replicas of `web:1` and no steps yet.
pub fn rollout() -> RolloutBuilder {
    let spec: RolloutSpec = serde_json::from_value(serde_json::json!({
        "replicas": 10,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]}
        },
        "strategy": {"canary": {
            "stableService": "web-stable",
            "canaryService": "web-canary",
            "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}},
            "steps": [{"setWeight": 20}]
        }}
    }))
    .expect("fixture spec parses");
    RolloutBuilder { spec }
}

impl RolloutBuilder {
    pub fn replicas(mut self, n: i32) -> Self {
        self.spec.replicas = n;
        self
    }

    pub fn image(mut self, image: &str) -> Self {
        self.spec.template.as_mut().expect("an embedded template").modify(|template| {
            let spec = template.spec.as_mut().expect("template has a pod spec");
            spec.containers[0].image = Some(image.into());
        });
        self
    }

    pub fn steps(mut self, steps: Vec<CanaryStep>) -> Self {
        self.spec.strategy.canary.steps = steps;
        self
    }

    pub fn background(mut self, template: &str, starting_step: i32) -> Self {
        self.spec.strategy.canary.analysis = Some(BackgroundAnalysis {
            templates: vec![template_ref(template)],
            args: Vec::new(),
            starting_step: Some(starting_step),
        });
        self
    }

    pub fn on_failure(mut self, policy: AnalysisFailurePolicy) -> Self {
        self.spec.strategy.canary.on_analysis_failure = policy;
        self
    }

    pub fn on_inconclusive(mut self, policy: InconclusivePolicy) -> Self {
        self.spec.strategy.canary.on_inconclusive = policy;
        self
    }

    pub fn progress_deadline_seconds(mut self, seconds: i32) -> Self {
        self.spec.progress_deadline_seconds = Some(seconds);
        self
    }

    pub fn revision_history_limit(mut self, n: i32) -> Self {
        self.spec.revision_history_limit = Some(n);
        self
    }

    pub fn analysis_run_history_limit(mut self, successful: i32, unsuccessful: i32) -> Self {
        self.spec.analysis_run_history_limit =
            Some(AnalysisRunHistoryLimit { successful: Some(successful), unsuccessful: Some(unsuccessful) });
        self
    }

    /// Takes the pod template from the Deployment `web` instead of embedding it.
    pub fn workload(mut self, scale_down: ScaleDown) -> Self {
        self.spec.template = None;
        self.spec.workload_ref = Some(WorkloadRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
            scale_down,
        });
        self
    }

    pub fn edit(mut self, edit: impl FnOnce(&mut RolloutSpec)) -> Self {
        edit(&mut self.spec);
        self
    }

    pub fn build(self) -> RolloutSpec {
        self.spec
    }
}

pub fn set_weight(weight: i32) -> CanaryStep {
    CanaryStep { set_weight: Some(weight), ..CanaryStep::default() }
}

pub fn pause_for(duration: &str) -> CanaryStep {
    CanaryStep { pause: Some(PauseStep { duration: Some(Duration::new(duration)) }), ..CanaryStep::default() }
}

pub fn pause_until_promoted() -> CanaryStep {
    CanaryStep { pause: Some(PauseStep { duration: None }), ..CanaryStep::default() }
}

pub fn analysis(template: &str) -> CanaryStep {
    CanaryStep {
        analysis: Some(AnalysisStep {
            templates: vec![template_ref(template)],
            args: Vec::new(),
            duration: None,
            timeout: None,
        }),
        ..CanaryStep::default()
    }
}

/// A `setHeaderRoute` step matching `X-Canary: <name>`, or removing the route (`adds` false).
pub fn header_route(name: &str, adds: bool) -> CanaryStep {
    let headers = match adds {
        true => {
            vec![HeaderMatch { name: "X-Canary".into(), type_: HeaderMatchType::Exact, value: name.into() }]
        }
        false => Vec::new(),
    };
    CanaryStep {
        set_header_route: Some(HeaderRouteStep { name: name.into(), headers }),
        ..CanaryStep::default()
    }
}

/// A `setMirrorRoute` step: a percent, or `None` to remove the mirror.
pub fn mirror_route(name: &str, percent: Option<i32>) -> CanaryStep {
    CanaryStep {
        set_mirror_route: Some(MirrorRouteStep { name: name.into(), percent }),
        ..CanaryStep::default()
    }
}

pub fn template_ref(name: &str) -> TemplateRef {
    TemplateRef { template_name: name.into(), cluster_scope: false }
}

/// An error-rate template: at most 1% errors, three healthy measurements to pass.
pub fn error_rate_template() -> AnalysisTemplateSpec {
    serde_json::from_value(serde_json::json!({
        "metrics": [{
            "name": "error-rate",
            "interval": "1m",
            "count": 3,
            "provider": {"prometheus": {"address": "http://prometheus:9090", "query": "sum(rate(errors[1m]))"}},
            "threshold": {"max": 0.01}
        }]
    }))
    .expect("fixture template parses")
}

/// The templates that exist: `error-rate` only.
pub fn templates() -> Templates {
    BTreeMap::from([(template_ref("error-rate"), error_rate_template())])
}
