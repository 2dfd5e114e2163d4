//! The apply phase: carries out the engine's actions in order, stopping at the first failure. The
//! next pass re-derives whatever is still missing, so a half-done list is never resumed blindly.

use super::Context;
use super::build::{analysis_run, service_selector_patch, terminate_patch};
use super::fetch::Fetched;
use crate::api::{AnalysisRun, Rollout};
use crate::controller::error::{Error, is_already_exists, is_not_found};
use crate::controller::replica_sets::{replica_set, replica_set_name};
use crate::controller::requests::{Malformed, REQUEST_PREFIX, removal_patch};
use crate::controller::routes::{Services, weight_patch};
use crate::engine::{Action, RouteWeights, ServiceRole, revision_of};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{PodTemplateSpec, Service};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions};

/// The field manager of every write, so that `managedFields` shows what Bellwether owns.
pub const FIELD_MANAGER: &str = "bellwether";

/// A merge or JSON patch, recorded in `managedFields` under Bellwether's name.
fn as_bellwether() -> PatchParams {
    PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() }
}

pub async fn apply(
    ctx: &Context,
    rollout: &Rollout,
    fetched: &Fetched,
    actions: &[Action],
) -> Result<(), Error> {
    for action in actions {
        apply_one(ctx, rollout, fetched, action).await?;
    }
    Ok(())
}

async fn apply_one(
    ctx: &Context,
    rollout: &Rollout,
    fetched: &Fetched,
    action: &Action,
) -> Result<(), Error> {
    let namespace = rollout.namespace().unwrap_or_default();
    let name = rollout.name_any();
    let canary = &rollout.spec.strategy.canary;
    match action {
        Action::SetWeights(RouteWeights { canary: c, stable: s }) => {
            let services = Services { stable: &canary.stable_service, canary: &canary.canary_service };
            set_weights(ctx, fetched, services, RouteWeights { canary: *c, stable: *s }).await
        }
        Action::PointService { role, revision } => {
            let service = match role {
                ServiceRole::Stable => &canary.stable_service,
                ServiceRole::Canary => &canary.canary_service,
            };
            let api = Api::<Service>::namespaced(ctx.client.clone(), &namespace);
            let patch = Patch::Merge(service_selector_patch(revision));
            match api.patch(service, &as_bellwether(), &patch).await {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => {
                    Err(Error::Missing { kind: "Service", namespace, name: service.clone() })
                }
                Err(e) => {
                    Err(Error::kube(format!("pointing Service {namespace}/{service} at {revision}"), e))
                }
            }
        }
        Action::ScaleReplicaSet { revision, replicas } => {
            let template = template_of(rollout, fetched, revision)?;
            let object = replica_set(rollout, revision, &template, *replicas);
            let rs_name = replica_set_name(&name, revision);
            Api::<ReplicaSet>::namespaced(ctx.client.clone(), &namespace)
                .patch(&rs_name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&object))
                .await
                .map(drop)
                .map_err(|e| {
                    Error::kube(format!("scaling ReplicaSet {namespace}/{rs_name} to {replicas}"), e)
                })
        }
        Action::DeleteReplicaSet { revision } => {
            let rs_name = replica_set_name(&name, revision);
            match Api::<ReplicaSet>::namespaced(ctx.client.clone(), &namespace)
                .delete(&rs_name, &DeleteParams::default())
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(Error::kube(format!("deleting ReplicaSet {namespace}/{rs_name}"), e)),
            }
        }
        Action::CreateAnalysisRun(request) => {
            let run = analysis_run(rollout, request);
            match Api::<AnalysisRun>::namespaced(ctx.client.clone(), &namespace)
                .create(&PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }, &run)
                .await
            {
                Ok(_) => Ok(()),
                // Names are deterministic: the run was created by an earlier pass.
                Err(e) if is_already_exists(&e) => Ok(()),
                Err(e) => Err(Error::kube(format!("creating AnalysisRun {namespace}/{}", request.name), e)),
            }
        }
        Action::TerminateAnalysisRun { name: run } => {
            match Api::<AnalysisRun>::namespaced(ctx.client.clone(), &namespace)
                .patch(run, &as_bellwether(), &Patch::Merge(terminate_patch()))
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(Error::kube(format!("terminating AnalysisRun {namespace}/{run}"), e)),
            }
        }
        Action::DeleteAnalysisRun { name: run } => {
            // Only the run the pass saw: one created under the same name since fails the UID
            // precondition (409), and the next pass decides again.
            let Some(uid) = fetched.run_uids.get(run) else { return Ok(()) };
            let params = DeleteParams {
                preconditions: Some(Preconditions { uid: Some(uid.clone()), resource_version: None }),
                ..DeleteParams::default()
            };
            match Api::<AnalysisRun>::namespaced(ctx.client.clone(), &namespace).delete(run, &params).await {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(Error::kube(format!("deleting AnalysisRun {namespace}/{run}"), e)),
            }
        }
    }
}

/// Removes the annotations of requests that status records as handled, and of those that cannot
/// be read. A request rewritten since the fetch fails its guard (422) and waits for the next pass.
pub async fn remove_requests(
    ctx: &Context,
    rollout: &Rollout,
    handled: &[String],
    malformed: &[Malformed],
) -> Result<(), Error> {
    let annotations = rollout.annotations();
    let keys: Vec<String> = handled
        .iter()
        .map(|id| format!("{REQUEST_PREFIX}{id}"))
        .chain(malformed.iter().map(|m| m.key.clone()))
        .collect();
    let Some(patch) = removal_patch(annotations, &keys) else { return Ok(()) };
    let namespace = rollout.namespace().unwrap_or_default();
    let name = rollout.name_any();
    let patch = Patch::<()>::Json(serde_json::from_value(patch).expect("a valid JSON patch"));
    Api::<Rollout>::namespaced(ctx.client.clone(), &namespace)
        .patch(&name, &as_bellwether(), &patch)
        .await
        .map(drop)
        .map_err(|e| Error::guarded(format!("removing handled requests from Rollout {namespace}/{name}"), e))
}

/// The pod template of `revision`: the Rollout's own when it is the current revision, otherwise the
/// one its existing ReplicaSet runs.
fn template_of(rollout: &Rollout, fetched: &Fetched, revision: &str) -> Result<PodTemplateSpec, Error> {
    if revision_of(&rollout.spec.template) == revision {
        return Ok(rollout.spec.template.clone());
    }
    fetched
        .replica_sets
        .iter()
        .filter(|rs| rs.labels().get(crate::api::REVISION_LABEL).map(String::as_str) == Some(revision))
        .find_map(|rs| rs.spec.as_ref().and_then(|spec| spec.template.clone()))
        .ok_or_else(|| Error::UnknownRevision { revision: revision.to_string() })
}

/// Patches every managed route that does not carry `weights` yet. Each patch is guarded by the
/// route's resourceVersion, so a route changed since the fetch fails the pass instead of being
/// overwritten; the next pass reads it again.
pub async fn set_weights(
    ctx: &Context,
    fetched: &Fetched,
    services: Services<'_>,
    weights: RouteWeights,
) -> Result<(), Error> {
    for route in &fetched.routes {
        let Some(object) = &route.object else {
            return Err(Error::Missing {
                kind: route.kind.kind(),
                namespace: route.namespace.clone(),
                name: route.name.clone(),
            });
        };
        let Some(patch) = weight_patch(object, services, weights)? else { continue };
        // weight_patch builds only `test` and `add` ops with string paths: always a valid patch.
        let patch = Patch::<()>::Json(serde_json::from_value(patch).expect("a valid JSON patch"));
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &route.namespace, &route.kind.api_resource());
        let action = format!(
            "setting canary={} stable={} on {} {}/{}",
            weights.canary,
            weights.stable,
            route.kind.kind(),
            route.namespace,
            route.name
        );
        match api.patch(&route.name, &as_bellwether(), &patch).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {
                return Err(Error::Missing {
                    kind: route.kind.kind(),
                    namespace: route.namespace.clone(),
                    name: route.name.clone(),
                });
            }
            Err(e) => return Err(Error::guarded(action, e)),
        }
    }
    Ok(())
}
