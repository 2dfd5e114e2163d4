//! The Rollout reconciler. Each pass runs in phases:
//!
//! 0. wait until the caches show this Rollout's last writes ([`crate::controller::caches`]);
//! 1. [`fetch`]: gather everything the decision depends on from the caches;
//! 2. decide: [`crate::engine::decide`], pure;
//! 3. write the new status, guarded by the resourceVersion of the cached Rollout, so that a pass
//!    working from a stale copy stops here, before any action;
//! 4. [`report`]: Events and metrics for what the decision says happened;
//! 5. [`apply`]: carry out the actions, in order, stopping at the first failure.
//!
//! A Rollout carries a finalizer: when it is deleted, every managed route goes back to stable before
//! the Rollout goes, so that deleting a Rollout mid-canary never leaves traffic on a canary that
//! garbage collection is about to remove; and a `workloadRef`'s Deployment gets its pods and its
//! traffic back first ([`workload`]).

mod apply;
mod build;
mod fetch;
mod prepared;
mod report;
mod workload;

pub use apply::FIELD_MANAGER;
pub use build::service_selector_patch;
pub use fetch::{RouteKind, route_refs, template_refs};
pub use prepared::Plans;

use super::Context;
use super::acting::Permit;
use super::caches::expectations::{Kind, OWN_WRITE_PATIENCE, REFUSED_WRITE_PATIENCE};
use super::caches::{newer_than, target, written};
use super::error::Error;
use crate::api::Rollout;
use crate::controller::routes::Services;
use crate::engine::{Input, Traffic, decide_prepared};
use chrono::Utc;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, Event as Finalizing, finalizer};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Holds a Rollout until its routes are back on stable.
pub const FINALIZER: &str = "bellwether.dev/traffic";

pub async fn reconcile(rollout: Arc<Rollout>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(permit) = ctx.acting.permit(&rollout.namespace().unwrap_or_default(), &rollout.name_any())
    else {
        return Ok(Action::await_change());
    };
    ctx.caches.wait_until_ready().await;
    let name = format!("{}/{}", rollout.namespace().unwrap_or_default(), rollout.name_any());
    let check = ctx.caches.check_rollout(&rollout);
    if !check.gave_up.is_empty() {
        let targets: Vec<String> = check.gave_up.iter().map(ToString::to_string).collect();
        tracing::warn!(rollout = %name, ?targets, "the caches never showed these writes; deciding anyway");
    }
    if !check.ready() {
        // The watch event of each awaited write reconciles the Rollout again when it arrives.
        tracing::debug!(rollout = %name, waiting = ?check.waiting, "waiting for the caches to show the last writes");
        return Ok(Action::requeue(check.recheck));
    }
    let started = Instant::now();
    let api = Api::<Rollout>::namespaced(ctx.client.clone(), &rollout.namespace().unwrap_or_default());
    let guard = (target(Kind::Rollout, rollout.as_ref()), newer_than(rollout.as_ref()));
    // A pass on a Rollout without the finalizer only adds it: the next pass waits until the cache
    // shows the Rollout that has it, rather than trying to add it again.
    let adding =
        rollout.metadata.deletion_timestamp.is_none() && !rollout.finalizers().iter().any(|f| f == FINALIZER);
    let result = finalizer(&api, FINALIZER, rollout.clone(), |event| async {
        match event {
            Finalizing::Apply(rollout) => pass(&ctx, &permit, &api, &rollout).await,
            Finalizing::Cleanup(rollout) => cleanup(&ctx, &permit, &rollout).await,
        }
    })
    .await
    .map_err(|error| match error {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
        // The finalizer patch is guarded by a `test` of the finalizers the cache showed; a cache
        // behind the API server fails it (422), which only means that the pass read something stale.
        finalizer::Error::AddFinalizer(kube::Error::Api(status))
        | finalizer::Error::RemoveFinalizer(kube::Error::Api(status))
            if status.code == 409 || status.code == 422 =>
        {
            let action = format!("updating the finalizer: {}", status.message);
            Error::Conflict { action, stale: Some(Box::new(guard.clone())) }
        }
        other => Error::Finalizer(other.to_string()),
    });
    if let Err(error) = &result {
        report::failed(&ctx, &rollout, error).await;
    }
    match &result {
        Err(Error::Conflict { stale: Some(stale), .. }) => {
            let (target, wanted) = stale.as_ref().clone();
            ctx.caches.expect_for_rollout(&rollout, target, wanted, REFUSED_WRITE_PATIENCE);
        }
        Ok(_) if adding => {
            let (target, wanted) = guard;
            ctx.caches.expect_for_rollout(&rollout, target, wanted, OWN_WRITE_PATIENCE);
        }
        _ => {}
    }
    ctx.metrics.reconcile("rollout", started.elapsed(), result.as_ref().err().map(Error::kind));
    result
}

/// Backs off after a failure; a conflict only means the pass read something stale, so it is
/// retried at once.
pub fn error_policy(rollout: Arc<Rollout>, error: &Error, _ctx: Arc<Context>) -> Action {
    let name = format!("{}/{}", rollout.namespace().unwrap_or_default(), rollout.name_any());
    match error {
        Error::Conflict { .. } => {
            tracing::debug!(rollout = %name, %error, "stale read; reconciling again");
            Action::requeue(Duration::from_millis(100))
        }
        // Whoever acts on it now reconciles it.
        Error::NotActing => Action::await_change(),
        Error::HandingBack { .. } => {
            tracing::debug!(rollout = %name, %error);
            Action::requeue(Duration::from_secs(1))
        }
        _ => {
            tracing::warn!(rollout = %name, %error, "reconcile failed");
            Action::requeue(Duration::from_secs(2))
        }
    }
}

async fn pass(
    ctx: &Context,
    permit: &Permit,
    api: &Api<Rollout>,
    rollout: &Rollout,
) -> Result<Action, Error> {
    let name = rollout.name_any();
    let namespace = rollout.namespace().unwrap_or_default();
    let fetched = fetch::fetch(&ctx.caches, rollout, ctx.clock());
    let status = rollout.status.clone().unwrap_or_default();
    let prepared = ctx.plans.get(rollout, &fetched);
    let input = Input {
        name: &name,
        generation: rollout.metadata.generation,
        spec: &rollout.spec,
        status: &status,
        observation: &fetched.observation,
        now: Utc::now(),
    };
    let decision = decide_prepared(input, &prepared);
    if !decision.actions.is_empty() {
        tracing::debug!(rollout = %format!("{namespace}/{name}"), actions = ?decision.actions, "carrying out");
    }
    apply::release_dropped_routes(ctx, permit, rollout, &fetched).await?;
    if decision.status != status {
        let mut updated = rollout.clone();
        updated.status = Some(decision.status.clone());
        let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() };
        permit.check()?;
        let stored = api.replace_status(&name, &params, &updated).await.map_err(|e| {
            Error::kube(format!("writing the status of Rollout {namespace}/{name}"), e)
                .refused_for(target(Kind::Rollout, rollout), newer_than(rollout))
        })?;
        ctx.caches.expect_for_rollout(
            rollout,
            target(Kind::Rollout, &stored),
            written(&stored, true),
            OWN_WRITE_PATIENCE,
        );
    }
    report::report(ctx, rollout, &status, &decision).await;
    report::malformed_requests(ctx, rollout, &fetched.malformed_requests).await;
    apply::apply(ctx, permit, rollout, &fetched, &prepared, &decision.actions).await?;
    apply::remove_requests(
        ctx,
        permit,
        rollout,
        &decision.status.progress.handled_requests,
        &fetched.malformed_requests,
    )
    .await?;
    let resync = ctx.resync;
    let wake = decision.requeue_after.and_then(|d| d.to_std().ok()).map_or(resync, |d| d.min(resync));
    Ok(Action::requeue(wake.max(Duration::from_millis(100))))
}

/// Sends every managed route back to stable and removes the header routes and mirrors this
/// Rollout added, first: a `workloadRef`'s hand-back may then wait for the Deployment's pods while
/// stable serves everything. Routes that are gone, or no longer reference both Services and carry
/// nothing this Rollout added, carry none of its canary's traffic and are left alone.
async fn cleanup(ctx: &Context, permit: &Permit, rollout: &Rollout) -> Result<Action, Error> {
    let fetched = fetch::fetch(&ctx.caches, rollout, ctx.clock());
    let (name, namespace) = (rollout.name_any(), rollout.namespace().unwrap_or_default());
    let services = Services::of(rollout, &name, &namespace);
    apply::set_traffic(ctx, permit, rollout, &fetched, services, &Traffic::default()).await?;
    apply::release_dropped_routes(ctx, permit, rollout, &fetched).await?;
    workload::hand_back(ctx, permit, rollout).await?;
    report::deleted(ctx, rollout);
    ctx.caches.forget_rollout(rollout);
    ctx.plans.forget(rollout);
    Ok(Action::await_change())
}
