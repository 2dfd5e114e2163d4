//! The fetch phase: reads everything a Rollout's decision depends on, fresh from the API server.
//!
//! The watch caches only say *when* to reconcile. A pass reads the Rollout and its objects again,
//! because a cache can lag behind the controller's own last write, and deciding on a status older
//! than the one already written could repeat a step or move a weight backwards.

use super::Context;
use crate::api::{
    AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, REVISION_LABEL, ROLLOUT_LABEL, Rollout,
    TemplateRef,
};
use crate::controller::error::{Error, is_not_found};
use crate::controller::replica_sets::replica_set_state;
use crate::controller::requests::{Malformed, requests};
use crate::controller::routes::{Services, route_state};
use crate::engine::{Observation, ServiceSelectors, assess, ended};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The kinds of route a Rollout manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// A managed route as read: its identity, and the object (`None` when it does not exist).
pub struct FetchedRoute {
    pub kind: RouteKind,
    pub namespace: String,
    pub name: String,
    pub object: Option<Value>,
}

/// What one pass works from.
pub struct Fetched {
    pub observation: Observation,
    pub routes: Vec<FetchedRoute>,
    /// The ReplicaSets owned by the Rollout, for the pod templates of revisions other than the
    /// current one.
    pub replica_sets: Vec<ReplicaSet>,
    /// Request annotations that cannot be read.
    pub malformed_requests: Vec<Malformed>,
    /// The UID of each AnalysisRun by name, so that deleting an old run never deletes a new one
    /// created under its name since.
    pub run_uids: BTreeMap<String, String>,
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

pub async fn fetch(ctx: &Context, rollout: &Rollout) -> Result<Fetched, Error> {
    let clock = ctx.clock();
    let namespace = rollout.namespace().unwrap_or_default();
    let name = rollout.name_any();
    let owned = ListParams::default().labels(&format!("{ROLLOUT_LABEL}={name}"));
    let uid = rollout.uid();
    let is_owned = |owners: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference]| {
        owners.iter().any(|o| Some(&o.uid) == uid.as_ref() && o.controller == Some(true))
    };

    let replica_sets: Vec<ReplicaSet> = Api::<ReplicaSet>::namespaced(ctx.client.clone(), &namespace)
        .list(&owned)
        .await
        .map_err(|e| Error::kube(format!("listing the ReplicaSets of {namespace}/{name}"), e))?
        .items
        .into_iter()
        .filter(|rs| is_owned(rs.owner_references()))
        .collect();
    // Runs labelled for this Rollout but not owned by it are kept, so that the engine can say why
    // it does not believe one that takes the name of a run it wants.
    let runs: Vec<AnalysisRun> = Api::<AnalysisRun>::namespaced(ctx.client.clone(), &namespace)
        .list(&owned)
        .await
        .map_err(|e| Error::kube(format!("listing the AnalysisRuns of {namespace}/{name}"), e))?
        .items;

    let canary = &rollout.spec.strategy.canary;
    let services = Services { stable: &canary.stable_service, canary: &canary.canary_service };
    let mut routes = Vec::new();
    for (kind, route_namespace, route_name) in route_refs(rollout) {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &route_namespace, &kind.api_resource());
        let object = match api.get(&route_name).await {
            Ok(route) => Some(serde_json::to_value(route).unwrap_or_default()),
            Err(e) if is_not_found(&e) => None,
            Err(e) => {
                return Err(Error::kube(
                    format!("reading {} {route_namespace}/{route_name}", kind.kind()),
                    e,
                ));
            }
        };
        routes.push(FetchedRoute { kind, namespace: route_namespace, name: route_name, object });
    }

    let (requests, malformed_requests) = requests(rollout.annotations());
    // The runs the Rollout waits for are judged again from their measurements; the others have
    // ended and decide nothing.
    let slots = rollout.status.as_ref().map(|s| [&s.step_analysis_run, &s.background_analysis_run]);
    let waited_for: Vec<&str> = slots.into_iter().flatten().flatten().map(|r| r.name.as_str()).collect();
    let observation = Observation {
        replica_sets: replica_sets.iter().filter_map(replica_set_state).collect(),
        routes: routes
            .iter()
            .map(|route| {
                let label = format!("{}/{}/{}", route.kind.kind(), route.namespace, route.name);
                match &route.object {
                    Some(object) => route_state(label, object, services),
                    None => crate::engine::RouteState { name: label, ..Default::default() },
                }
            })
            .collect(),
        services: ServiceSelectors {
            stable: selected_revision(ctx, &namespace, services.stable).await?,
            canary: selected_revision(ctx, &namespace, services.canary).await?,
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
        templates: templates(ctx, rollout, &namespace).await?,
        requests,
    };
    let run_uids = runs.iter().filter_map(|run| Some((run.name_any(), run.uid()?))).collect();
    Ok(Fetched { observation, routes, replica_sets, malformed_requests, run_uids })
}

/// The revision a Service selects, `None` when it selects none or does not exist.
async fn selected_revision(ctx: &Context, namespace: &str, name: &str) -> Result<Option<String>, Error> {
    match Api::<Service>::namespaced(ctx.client.clone(), namespace).get_opt(name).await {
        Ok(service) => Ok(service
            .and_then(|s| s.spec)
            .and_then(|spec| spec.selector)
            .and_then(|selector| selector.get(REVISION_LABEL).cloned())),
        Err(e) => Err(Error::kube(format!("reading Service {namespace}/{name}"), e)),
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

/// The templates the Rollout refers to that exist; validation names the missing ones.
async fn templates(
    ctx: &Context,
    rollout: &Rollout,
    namespace: &str,
) -> Result<crate::engine::Templates, Error> {
    let refs: BTreeSet<&TemplateRef> = template_refs(rollout).collect();
    let mut found = crate::engine::Templates::new();
    for reference in refs {
        let name = &reference.template_name;
        let spec = if reference.cluster_scope {
            Api::<ClusterAnalysisTemplate>::all(ctx.client.clone())
                .get_opt(name)
                .await
                .map_err(|e| Error::kube(format!("reading ClusterAnalysisTemplate {name}"), e))?
                .map(|t| t.spec.into())
        } else {
            Api::<AnalysisTemplate>::namespaced(ctx.client.clone(), namespace)
                .get_opt(name)
                .await
                .map_err(|e| Error::kube(format!("reading AnalysisTemplate {namespace}/{name}"), e))?
                .map(|t| t.spec)
        };
        if let Some(spec) = spec {
            found.insert(reference.clone(), spec);
        }
    }
    Ok(found)
}
