//! Handing traffic back to a `workloadRef`'s Deployment when its Rollout is deleted: the Deployment
//! is scaled back up to the Rollout's replicas, and once its pods are available (or the progress
//! deadline has passed), the revision is taken out of both Services' selectors, so that they select
//! the Deployment's pods again before garbage collection removes Bellwether's.

use super::Context;
use super::apply::{as_bellwether, scale_workload, wrote};
use super::build::service_selector_patch;
use crate::api::Rollout;
use crate::controller::acting::Permit;
use crate::controller::caches::expectations::Kind;
use crate::controller::error::{Error, is_not_found};
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::{Api, Patch};

/// How long a deleted Rollout waits for its Deployment's pods when it sets no progress deadline.
const DEFAULT_WAIT_SECONDS: i64 = 600;

/// Hands the Deployment its traffic back. Fails with [`Error::HandingBack`] while the Rollout must
/// wait for the Deployment's pods; succeeds once the Services select them, or when there is no
/// Deployment to hand back to.
pub async fn hand_back(ctx: &Context, permit: &Permit, rollout: &Rollout) -> Result<(), Error> {
    let Some(workload) = &rollout.spec.workload_ref else { return Ok(()) };
    let namespace = rollout.namespace().unwrap_or_default();
    let Some(deployment) = ctx.caches.deployment(&namespace, &workload.name) else { return Ok(()) };
    let replicas = rollout.spec.replicas.max(0);
    let state = deployment.state();
    let waiting = || Error::HandingBack {
        namespace: namespace.clone(),
        name: workload.name.clone(),
        available: state.available,
        replicas,
    };
    if state.replicas < replicas {
        permit.check()?;
        scale_workload(ctx, rollout, replicas).await?;
        return Err(waiting());
    }
    if state.available < replicas {
        if !waited_long_enough(rollout) {
            return Err(waiting());
        }
        tracing::warn!(
            rollout = %format!("{namespace}/{}", rollout.name_any()),
            available = state.available,
            replicas,
            "deleted: the Deployment's pods did not become available within the progress deadline; \
             handing its traffic back anyway"
        );
    }
    let canary = &rollout.spec.strategy.canary;
    let api = Api::<Service>::namespaced(ctx.client.clone(), &namespace);
    for service in [&canary.stable_service, &canary.canary_service] {
        let pointed =
            ctx.caches.service(&namespace, service).is_some_and(|s| s.spec.selected_revision.is_some());
        if !pointed {
            continue;
        }
        permit.check()?;
        match api.patch(service, &as_bellwether(), &Patch::Merge(service_selector_patch(None))).await {
            Ok(stored) => wrote(ctx, rollout, Kind::Service, &stored, true),
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(Error::kube(
                    format!("handing Service {namespace}/{service} back to its Deployment"),
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// Whether the Rollout has been deleted for longer than its progress deadline: past it, the
/// Deployment's pods are not waited for any more.
fn waited_long_enough(rollout: &Rollout) -> bool {
    let Some(deleted) = &rollout.metadata.deletion_timestamp else { return true };
    let limit = rollout.spec.progress_deadline_seconds.map_or(DEFAULT_WAIT_SECONDS, i64::from);
    chrono::Utc::now().timestamp() - deleted.0.as_second() >= limit
}
