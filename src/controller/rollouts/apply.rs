//! The apply phase: carries out the engine's actions in order, stopping at the first failure. The
//! next pass re-derives whatever is still missing, so a half-done list is never resumed blindly.
//!
//! Each write records what the caches must show before the Rollout's next pass
//! ([`crate::controller::caches::expectations`]).

use super::Context;
use super::build::{analysis_run, service_selector_patch, terminate_patch};
use super::fetch::{Fetched, FetchedRoute, RouteKind};
use crate::api::{AnalysisRun, Rollout};
use crate::controller::acting::Permit;
use crate::controller::caches::expectations::{Kind, OWN_WRITE_PATIENCE, Target, Wanted};
use crate::controller::caches::{newer_than, target, written};
use crate::controller::error::{Error, is_already_exists, is_not_found};
use crate::controller::replica_sets::{replica_set, replica_set_name, replicas_patch};
use crate::controller::requests::{Malformed, REQUEST_PREFIX, removal_patch};
use crate::controller::routes::{RouteError, Services, traffic_patch};
use crate::engine::{Action, Prepared, ServiceRole, Traffic};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions};
use kube::{Resource, ResourceExt};

/// The field manager of every write, so that `managedFields` shows what Bellwether owns.
pub const FIELD_MANAGER: &str = "bellwether";

/// A merge or JSON patch, recorded in `managedFields` under Bellwether's name.
pub(super) fn as_bellwether() -> PatchParams {
    PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() }
}

/// A route patch: a field the cluster's route CRD does not know is refused, not dropped. With
/// Gateway API CRDs older than v1.4, a header-route rule's `name` would otherwise be dropped and
/// the rule left for good (nothing would know it as Bellwether's), and older than v1.3 a mirror's
/// `percent`, mirroring every request.
pub(super) fn route_patch_params() -> PatchParams {
    as_bellwether().validation_strict()
}

/// The Rollout's next pass waits until the caches show `stored`, as a write returned it.
pub(super) fn wrote(ctx: &Context, rollout: &Rollout, kind: Kind, stored: &impl Resource, existed: bool) {
    ctx.caches.expect_for_rollout(
        rollout,
        target(kind, stored),
        written(stored, existed),
        OWN_WRITE_PATIENCE,
    );
}

/// The Rollout's next pass waits until the caches no longer show the object with `uid`.
fn deleted(ctx: &Context, rollout: &Rollout, kind: Kind, name: &str, uid: Option<String>) {
    let Some(uid) = uid else { return };
    let target = Target { kind, namespace: rollout.namespace().unwrap_or_default(), name: name.to_string() };
    ctx.caches.expect_for_rollout(rollout, target, Wanted::Gone { uid }, OWN_WRITE_PATIENCE);
}

/// Carries out `actions` for `rollout`, whose current revision and pod template are those the
/// pass's plan derived.
pub async fn apply(
    ctx: &Context,
    permit: &Permit,
    rollout: &Rollout,
    fetched: &Fetched,
    current: &Prepared,
    actions: &[Action],
) -> Result<(), Error> {
    for action in actions {
        permit.check()?;
        apply_one(ctx, permit, rollout, fetched, current, action).await?;
    }
    Ok(())
}

async fn apply_one(
    ctx: &Context,
    permit: &Permit,
    rollout: &Rollout,
    fetched: &Fetched,
    current: &Prepared,
    action: &Action,
) -> Result<(), Error> {
    let namespace = rollout.namespace().unwrap_or_default();
    let name = rollout.name_any();
    let canary = &rollout.spec.strategy.canary;
    match action {
        Action::SetTraffic(traffic) => {
            let services = Services::of(rollout, &name, &namespace);
            set_traffic(ctx, permit, rollout, fetched, services, traffic).await
        }
        Action::PointService { role, revision } => {
            let service = match role {
                ServiceRole::Stable => &canary.stable_service,
                ServiceRole::Canary => &canary.canary_service,
            };
            let api = Api::<Service>::namespaced(ctx.client.clone(), &namespace);
            let patch = Patch::Merge(service_selector_patch(Some(revision)));
            match api.patch(service, &as_bellwether(), &patch).await {
                Ok(stored) => {
                    wrote(ctx, rollout, Kind::Service, &stored, true);
                    Ok(())
                }
                Err(e) if is_not_found(&e) => {
                    Err(Error::Missing { kind: "Service", namespace, name: service.clone() })
                }
                Err(e) => {
                    Err(Error::kube(format!("pointing Service {namespace}/{service} at {revision}"), e))
                }
            }
        }
        Action::ScaleReplicaSet { revision, replicas } => {
            scale_replica_set(ctx, rollout, fetched, current, revision, *replicas).await
        }
        Action::ScaleWorkload { replicas } => scale_workload(ctx, rollout, *replicas).await,
        Action::DeleteReplicaSet { revision } => {
            let rs_name = replica_set_name(&name, revision);
            let uid = fetched.replica_sets.iter().find(|rs| rs.name_any() == rs_name).and_then(|rs| rs.uid());
            match Api::<ReplicaSet>::namespaced(ctx.client.clone(), &namespace)
                .delete(&rs_name, &DeleteParams::default())
                .await
            {
                Ok(_) => {
                    deleted(ctx, rollout, Kind::ReplicaSet, &rs_name, uid);
                    Ok(())
                }
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
                Ok(stored) => {
                    wrote(ctx, rollout, Kind::AnalysisRun, &stored, false);
                    Ok(())
                }
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
                Ok(stored) => {
                    wrote(ctx, rollout, Kind::AnalysisRun, &stored, true);
                    Ok(())
                }
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
            let gone = Wanted::Gone { uid: uid.clone() };
            match Api::<AnalysisRun>::namespaced(ctx.client.clone(), &namespace).delete(run, &params).await {
                Ok(_) => {
                    deleted(ctx, rollout, Kind::AnalysisRun, run, Some(uid.clone()));
                    Ok(())
                }
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => {
                    let target = Target { kind: Kind::AnalysisRun, namespace, name: run.clone() };
                    Err(Error::kube(format!("deleting AnalysisRun {}/{run}", target.namespace), e)
                        .refused_for(target, gone))
                }
            }
        }
    }
}

/// Removes the annotations of requests that status records as handled, and of those that cannot
/// be read. A request rewritten since the fetch fails its guard (422) and waits for the next pass.
pub async fn remove_requests(
    ctx: &Context,
    permit: &Permit,
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
    permit.check()?;
    let stored = Api::<Rollout>::namespaced(ctx.client.clone(), &namespace)
        .patch(&name, &as_bellwether(), &patch)
        .await
        .map_err(|e| {
            Error::guarded(format!("removing handled requests from Rollout {namespace}/{name}"), e)
                .refused_for(target(Kind::Rollout, rollout), newer_than(rollout))
        })?;
    wrote(ctx, rollout, Kind::Rollout, &stored, true);
    Ok(())
}

/// Scales the ReplicaSet of `revision` to `replicas`. The current revision's is applied whole
/// (server-side apply, with the Rollout's pod template), which also creates it; any other
/// revision's already exists, and only its replicas change, so that the caches need not keep the
/// pod template of every ReplicaSet.
async fn scale_replica_set(
    ctx: &Context,
    rollout: &Rollout,
    fetched: &Fetched,
    current: &Prepared,
    revision: &str,
    replicas: i32,
) -> Result<(), Error> {
    let namespace = rollout.namespace().unwrap_or_default();
    let rs_name = replica_set_name(&rollout.name_any(), revision);
    let existed = fetched.replica_sets.iter().any(|rs| rs.name_any() == rs_name);
    let api = Api::<ReplicaSet>::namespaced(ctx.client.clone(), &namespace);
    let stored = if revision == current.revision {
        let object = replica_set(rollout, &current.template, revision, replicas);
        api.patch(&rs_name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&object)).await
    } else if existed {
        api.patch(&rs_name, &as_bellwether(), &Patch::Merge(replicas_patch(replicas))).await
    } else {
        return Err(Error::UnknownRevision { revision: revision.to_string() });
    };
    let stored = stored
        .map_err(|e| Error::kube(format!("scaling ReplicaSet {namespace}/{rs_name} to {replicas}"), e))?;
    wrote(ctx, rollout, Kind::ReplicaSet, &stored, existed);
    Ok(())
}

/// Scales the Deployment of the Rollout's `workloadRef` with a merge patch of its replicas.
pub(super) async fn scale_workload(ctx: &Context, rollout: &Rollout, replicas: i32) -> Result<(), Error> {
    let namespace = rollout.namespace().unwrap_or_default();
    let Some(workload) = &rollout.spec.workload_ref else { return Ok(()) };
    let api = Api::<Deployment>::namespaced(ctx.client.clone(), &namespace);
    match api.patch(&workload.name, &as_bellwether(), &Patch::Merge(replicas_patch(replicas))).await {
        Ok(stored) => {
            wrote(ctx, rollout, Kind::Deployment, &stored, true);
            Ok(())
        }
        Err(e) if is_not_found(&e) => {
            Err(Error::Missing { kind: "Deployment", namespace, name: workload.name.clone() })
        }
        Err(e) => {
            Err(Error::kube(format!("scaling Deployment {namespace}/{} to {replicas}", workload.name), e))
        }
    }
}

/// Patches every managed route that does not carry `traffic` yet. Each patch is guarded by the
/// route's resourceVersion, so a route changed since the fetch fails the pass instead of being
/// overwritten; the next pass waits for the cache to show the newer copy.
///
/// Traffic that exposes the canary stops at the first route that fails: the routes before it carry
/// the new traffic, the rest the old, and the status says which. Traffic that exposes nothing (an
/// abort, a promotion, a canary being replaced) goes on past a failed route to every other one, so
/// that one deleted or broken route does not keep the canary's traffic on the rest; a missing or
/// no longer managed route carries none of it and is passed over.
pub async fn set_traffic(
    ctx: &Context,
    permit: &Permit,
    rollout: &Rollout,
    fetched: &Fetched,
    services: Services<'_>,
    traffic: &Traffic,
) -> Result<(), Error> {
    let mut first_error = None;
    for route in &fetched.routes {
        match patch_route(ctx, permit, rollout, route, services, traffic).await {
            Ok(()) => {}
            Err(Error::Missing { .. } | Error::Route(RouteError::Unmanaged { .. })) if !traffic.exposes() => {
            }
            Err(error) if traffic.exposes() => return Err(error),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Takes the canary's traffic off the routes the spec no longer names: all weight to stable, and
/// no header route or mirror of this Rollout's. Done before the status forgets them, so a route
/// that refuses is tried again at the next pass.
pub async fn release_dropped_routes(
    ctx: &Context,
    permit: &Permit,
    rollout: &Rollout,
    fetched: &Fetched,
) -> Result<(), Error> {
    let (name, namespace) = (rollout.name_any(), rollout.namespace().unwrap_or_default());
    let services = Services::of(rollout, &name, &namespace);
    for route in &fetched.dropped_routes {
        match patch_route(ctx, permit, rollout, route, services, &Traffic::default()).await {
            Ok(()) | Err(Error::Missing { .. } | Error::Route(RouteError::Unmanaged { .. })) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Patches one route to carry `traffic`, when it does not yet.
async fn patch_route(
    ctx: &Context,
    permit: &Permit,
    rollout: &Rollout,
    route: &FetchedRoute,
    services: Services<'_>,
    traffic: &Traffic,
) -> Result<(), Error> {
    let missing = || Error::Missing {
        kind: route.kind.kind(),
        namespace: route.namespace.clone(),
        name: route.name.clone(),
    };
    let Some(object) = &route.object else { return Err(missing()) };
    let Some(patch) = traffic_patch(object, services, traffic)? else { return Ok(()) };
    // traffic_patch builds only `test`, `add` and `remove` ops with string paths: always a valid
    // patch.
    let patch = Patch::<()>::Json(serde_json::from_value(patch).expect("a valid JSON patch"));
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &route.namespace, &route.kind.api_resource());
    let action = format!(
        "setting canary={} stable={} ({}) on {} {}/{}",
        traffic.weights.canary,
        traffic.weights.stable,
        traffic.exposure.describe(),
        route.kind.kind(),
        route.namespace,
        route.name
    );
    let kind = match route.kind {
        RouteKind::Http => Kind::HttpRoute,
        RouteKind::Grpc => Kind::GrpcRoute,
    };
    permit.check()?;
    match api.patch(&route.name, &route_patch_params(), &patch).await {
        Ok(stored) => {
            wrote(ctx, rollout, kind, &stored, true);
            Ok(())
        }
        Err(e) if is_not_found(&e) => Err(missing()),
        Err(e) => {
            let target = Target { kind, namespace: route.namespace.clone(), name: route.name.clone() };
            let version = object.pointer("/metadata/resourceVersion").and_then(serde_json::Value::as_str);
            let newer = Wanted::NewerThan { version: version.unwrap_or_default().to_string() };
            Err(Error::guarded(action, e).refused_for(target, newer))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::route_patch_params;

    #[test]
    fn route_patches_refuse_fields_the_crd_does_not_know() {
        let patch =
            kube::api::Patch::<()>::Json(serde_json::from_value(serde_json::json!([])).expect("a patch"));
        let request =
            kube::core::Request::new("/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes")
                .patch("checkout", &route_patch_params(), &patch)
                .expect("a request");
        let query = request.uri().query().unwrap_or_default().to_string();
        assert!(query.contains("fieldValidation=Strict"), "{query}");
        assert!(query.contains("fieldManager=bellwether"), "{query}");
    }
}
