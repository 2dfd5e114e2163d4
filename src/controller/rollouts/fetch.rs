//! The fetch phase: gathers everything a Rollout's decision depends on from the watch caches,
//! without a request of its own. The caches may lag; see [`crate::controller::caches`] for how a
//! pass never acts twice on the state it already acted on.

use crate::api::{AnalysisRun, Rollout, TemplateRef};
use crate::controller::caches::{CachedReplicaSet, Caches};
use crate::controller::replica_sets::replica_set_state;
use crate::controller::requests::{Malformed, requests};
use crate::controller::routes::{Services, route_state};
use crate::engine::{Clock, Observation, ServiceSelectors, assess, ended};
use kube::ResourceExt;
use kube::api::{ApiResource, GroupVersionKind};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The kinds of route a Rollout manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteKind {
    Http,
    Grpc,
}

impl RouteKind {
    pub fn kind(self) -> &'static str {
        match self {
            Self::Http => "HTTPRoute",
            Self::Grpc => "GRPCRoute",
        }
    }

    pub fn api_resource(self) -> ApiResource {
        ApiResource::from_gvk(&GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", self.kind()))
    }
}

/// A managed route as cached: its identity, and the object (`None` when it does not exist).
pub struct FetchedRoute {
    pub kind: RouteKind,
    pub namespace: String,
    pub name: String,
    pub object: Option<Value>,
}

/// What one pass works from.
#[derive(Default)]
pub struct Fetched {
    pub observation: Observation,
    pub routes: Vec<FetchedRoute>,
    /// Routes the status last reported that the spec no longer names, as cached: they may still
    /// carry the canary's weight, header routes or mirror, which nothing else would remove.
    pub dropped_routes: Vec<FetchedRoute>,
    /// The ReplicaSets owned by the Rollout: which revisions have one, and their UIDs.
    pub replica_sets: Vec<Arc<CachedReplicaSet>>,
    /// Request annotations that cannot be read.
    pub malformed_requests: Vec<Malformed>,
    /// The UID of each AnalysisRun by name, so that deleting an old run never deletes a new one
    /// created under its name since.
    pub run_uids: BTreeMap<String, String>,
    /// Each template the Rollout names and the resourceVersion the caches show of it (`None` when
    /// they show none), read together with `observation.templates`.
    pub template_versions: Vec<(TemplateRef, Option<String>)>,
    /// The resourceVersion of the `workloadRef`'s Deployment, read with `observation.workload`.
    pub workload_version: Option<String>,
}

/// A route as the engine and `status.routes` name it: `HTTPRoute/namespace/name`.
fn route_label(kind: RouteKind, namespace: &str, name: &str) -> String {
    format!("{}/{namespace}/{name}", kind.kind())
}

/// The route [`route_label`] names.
fn route_ref(label: &str) -> Option<(RouteKind, String, String)> {
    let mut parts = label.splitn(3, '/');
    let kind = match parts.next()? {
        "HTTPRoute" => RouteKind::Http,
        "GRPCRoute" => RouteKind::Grpc,
        _ => return None,
    };
    Some((kind, parts.next()?.to_string(), parts.next()?.to_string()))
}

/// Every managed route of `rollout`, in the order its spec lists them, with their namespaces.
pub fn route_refs(rollout: &Rollout) -> Vec<(RouteKind, String, String)> {
    let namespace = rollout.namespace().unwrap_or_default();
    let routing = &rollout.spec.strategy.canary.traffic_routing.gateway_api;
    let refs = |kind: RouteKind, list: &[crate::api::RouteRef]| {
        list.iter()
            .map(|r| (kind, r.namespace.clone().unwrap_or_else(|| namespace.clone()), r.name.clone()))
            .collect::<Vec<_>>()
    };
    let mut all = refs(RouteKind::Http, &routing.http_routes);
    all.extend(refs(RouteKind::Grpc, &routing.grpc_routes));
    all
}

pub fn fetch(caches: &Caches, rollout: &Rollout, clock: Clock) -> Fetched {
    let namespace = rollout.namespace().unwrap_or_default();
    let name = rollout.name_any();
    let uid = rollout.uid();
    let is_owned = |owners: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference]| {
        owners.iter().any(|o| Some(&o.uid) == uid.as_ref() && o.controller == Some(true))
    };

    let mut replica_sets = caches.replica_sets_of(&namespace, &name);
    replica_sets.retain(|rs| is_owned(rs.owner_references()));
    // Runs labelled for this Rollout but not owned by it are kept, so that the engine can say why
    // it does not believe one that takes the name of a run it wants.
    let runs: Vec<Arc<AnalysisRun>> = caches.runs_of(&namespace, &name);

    let services = Services::of(rollout, &name, &namespace);
    let cached = |(kind, route_namespace, route_name): (RouteKind, String, String)| {
        let object = caches
            .route(kind, &route_namespace, &route_name)
            .map(|route| serde_json::to_value(route.as_ref()).unwrap_or_default());
        FetchedRoute { kind, namespace: route_namespace, name: route_name, object }
    };
    let named = route_refs(rollout);
    let reported = rollout.status.iter().flat_map(|s| &s.routes).filter_map(|r| route_ref(&r.name));
    let dropped: Vec<_> = reported.filter(|r| !named.contains(r)).collect();
    let routes: Vec<FetchedRoute> = named.into_iter().map(cached).collect();
    let dropped_routes: Vec<FetchedRoute> =
        dropped.into_iter().map(cached).filter(|route| route.object.is_some()).collect();

    let (requests, malformed_requests) = requests(rollout.annotations());
    // The runs the Rollout waits for are judged again from their measurements; the others have
    // ended and decide nothing.
    let slots = rollout.status.as_ref().map(|s| [&s.step_analysis_run, &s.background_analysis_run]);
    let waited_for: Vec<&str> = slots.into_iter().flatten().flatten().map(|r| r.name.as_str()).collect();
    let selected_revision =
        |service: &str| caches.service(&namespace, service).and_then(|s| s.spec.selected_revision.clone());
    let templates: Vec<_> = template_refs(rollout)
        .collect::<BTreeSet<&TemplateRef>>()
        .into_iter()
        .map(|reference| (reference.clone(), caches.template(reference, &namespace)))
        .collect();
    let deployment = rollout.spec.workload_ref.as_ref().and_then(|w| caches.deployment(&namespace, &w.name));
    let observation = Observation {
        replica_sets: replica_sets.iter().filter_map(|rs| replica_set_state(rs)).collect(),
        routes: routes
            .iter()
            .map(|route| {
                let label = route_label(route.kind, &route.namespace, &route.name);
                match &route.object {
                    Some(object) => route_state(label, object, services),
                    None => crate::engine::RouteState { name: label, ..Default::default() },
                }
            })
            .collect(),
        services: ServiceSelectors {
            stable: selected_revision(services.stable),
            canary: selected_revision(services.canary),
        },
        analysis_runs: runs
            .iter()
            .map(|run| {
                let name = run.name_any();
                let status = run.status.as_ref();
                let owned = is_owned(run.owner_references());
                let created = crate::api::created_at(&run.metadata);
                let over = status.and_then(|s| s.phase).is_some_and(|p| p.is_terminal());
                if over && !waited_for.contains(&name.as_str()) {
                    return ended(&name, owned, &run.spec, status, created);
                }
                assess(&name, owned, &run.spec, status, created, clock)
            })
            .collect(),
        templates: templates
            .iter()
            .filter_map(|(reference, template)| Some((reference.clone(), template.as_ref()?.0.clone())))
            .collect(),
        requests,
        workload: deployment.as_ref().map(|d| d.state()),
    };
    let run_uids = runs.iter().filter_map(|run| Some((run.name_any(), run.uid()?))).collect();
    let template_versions = templates
        .into_iter()
        .map(|(reference, template)| (reference, template.and_then(|(_, version)| version)))
        .collect();
    let workload_version = deployment.and_then(|d| d.metadata.resource_version.clone());
    Fetched {
        observation,
        routes,
        dropped_routes,
        replica_sets,
        malformed_requests,
        run_uids,
        template_versions,
        workload_version,
    }
}

/// Every template reference of the Rollout's analysis steps and background analysis.
pub fn template_refs(rollout: &Rollout) -> impl Iterator<Item = &TemplateRef> {
    let canary = &rollout.spec.strategy.canary;
    canary
        .steps
        .iter()
        .filter_map(|step| step.analysis.as_ref())
        .flat_map(|analysis| &analysis.templates)
        .chain(canary.analysis.iter().flat_map(|analysis| &analysis.templates))
}

#[cfg(test)]
mod tests {
    use super::{RouteKind, route_label, route_ref};

    #[test]
    fn a_route_label_reads_back_as_its_route() {
        for kind in [RouteKind::Http, RouteKind::Grpc] {
            let label = route_label(kind, "shop", "checkout");
            assert_eq!(route_ref(&label), Some((kind, "shop".into(), "checkout".into())), "{label}");
        }
        assert_eq!(route_ref("TLSRoute/shop/checkout"), None);
        assert_eq!(route_ref("HTTPRoute/shop"), None);
    }
}
