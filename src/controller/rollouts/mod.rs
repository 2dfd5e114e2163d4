//! The Rollout reconciler. Each pass runs in phases:
//!
//! 1. [`fetch`]: read the Rollout and everything its decision depends on, fresh;
//! 2. decide: [`crate::engine::decide`], pure;
//! 3. write the new status, guarded by the resourceVersion read in 1, so that a pass working from
//!    a stale read stops here, before any action;
//! 4. [`report`]: Events and metrics for what the decision says happened;
//! 5. [`apply`]: carry out the actions, in order, stopping at the first failure.
//!
//! A Rollout carries a finalizer: when it is deleted, every managed route goes back to stable before
//! the Rollout goes, so that deleting a Rollout mid-canary never leaves traffic on a canary that
//! garbage collection is about to remove.

mod apply;
mod build;
mod fetch;
mod report;

pub use apply::FIELD_MANAGER;
pub use fetch::{RouteKind, route_refs, template_refs};

use super::Context;
use super::error::Error;
use crate::api::Rollout;
use crate::controller::routes::{RouteError, Services};
use crate::engine::{Input, RouteWeights, decide};
use chrono::Utc;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, Event as Finalizing, finalizer};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Holds a Rollout until its routes are back on stable.
pub const FINALIZER: &str = "bellwether.dev/traffic";

/// How often a Rollout is reconciled when nothing happens and the engine asks for no wake-up.
const RESYNC: Duration = Duration::from_secs(60);

pub async fn reconcile(rollout: Arc<Rollout>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.leadership.is_leader() {
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let api = Api::<Rollout>::namespaced(ctx.client.clone(), &rollout.namespace().unwrap_or_default());
    let result = finalizer(&api, FINALIZER, rollout, |event| async {
        match event {
            Finalizing::Apply(rollout) => pass(&ctx, &api, &rollout).await,
            Finalizing::Cleanup(rollout) => cleanup(&ctx, &rollout).await,
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
            Error::Conflict { action: format!("updating the finalizer: {}", status.message) }
        }
        other => Error::Finalizer(other.to_string()),
    });
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
        _ => {
            tracing::warn!(rollout = %name, %error, "reconcile failed");
            Action::requeue(Duration::from_secs(2))
        }
    }
}

async fn pass(ctx: &Context, api: &Api<Rollout>, cached: &Rollout) -> Result<Action, Error> {
    let name = cached.name_any();
    let namespace = cached.namespace().unwrap_or_default();
    let Some(rollout) = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube(format!("reading Rollout {namespace}/{name}"), e))?
    else {
        return Ok(Action::await_change());
    };
    let fetched = fetch::fetch(ctx, &rollout).await?;
    let status = rollout.status.clone().unwrap_or_default();
    let decision = decide(Input {
        name: &name,
        generation: rollout.metadata.generation,
        spec: &rollout.spec,
        status: &status,
        observation: &fetched.observation,
        now: Utc::now(),
    });
    if !decision.actions.is_empty() {
        tracing::debug!(rollout = %format!("{namespace}/{name}"), actions = ?decision.actions, "carrying out");
    }
    if decision.status != status {
        let mut updated = rollout.clone();
        updated.status = Some(decision.status.clone());
        let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() };
        api.replace_status(&name, &params, &updated)
            .await
            .map_err(|e| Error::kube(format!("writing the status of Rollout {namespace}/{name}"), e))?;
    }
    report::report(ctx, &rollout, &status, &decision).await;
    report::malformed_requests(ctx, &rollout, &fetched.malformed_requests).await;
    apply::apply(ctx, &rollout, &fetched, &decision.actions).await?;
    apply::remove_requests(
        ctx,
        &rollout,
        &decision.status.progress.handled_requests,
        &fetched.malformed_requests,
    )
    .await?;
    let wake = decision.requeue_after.and_then(|d| d.to_std().ok()).map_or(RESYNC, |d| d.min(RESYNC));
    Ok(Action::requeue(wake.max(Duration::from_millis(100))))
}

/// Sends every managed route back to stable. Routes that are gone, or no longer reference both
/// Services, carry no canary traffic of this Rollout and are left alone.
async fn cleanup(ctx: &Context, rollout: &Rollout) -> Result<Action, Error> {
    let fetched = fetch::fetch(ctx, rollout).await?;
    let canary = &rollout.spec.strategy.canary;
    let services = Services { stable: &canary.stable_service, canary: &canary.canary_service };
    let mut present = fetched;
    present.routes.retain(|route| {
        route.object.as_ref().is_some_and(|object| {
            !matches!(
                crate::controller::routes::weight_patch(
                    object,
                    services,
                    RouteWeights { canary: 0, stable: 100 }
                ),
                Err(RouteError::Unmanaged { .. })
            )
        })
    });
    apply::set_weights(ctx, &present, services, RouteWeights { canary: 0, stable: 100 }).await?;
    report::deleted(ctx, rollout);
    Ok(Action::await_change())
}
