//! The engine's invariants (DESIGN §3), checked on one decision. The simulation checks every
//! decision it takes, and the engine's property tests check every decision of random timelines.

use crate::api::{AnalysisPhase, RolloutPhase, RolloutSpec, RolloutStatus};
use crate::engine::{
    Action, DEFAULT_MAX_ALERT_ABORTS_PER_HOUR, Decision, Input, Observation, Plan, Step, Traffic, UserAction,
    decide, pod_template, revision_of, share,
};
use chrono::{DateTime, Utc};

/// One decision and everything it was taken on.
pub struct Decided<'a> {
    pub name: &'a str,
    pub spec: &'a RolloutSpec,
    /// The status the decision started from.
    pub input: &'a RolloutStatus,
    pub observation: &'a Observation,
    pub now: DateTime<Utc>,
    pub decision: &'a Decision,
}

/// Checks `decided` against every invariant and returns the first one it breaks.
pub fn check(decided: &Decided<'_>) -> Result<(), String> {
    let Decided { name, spec, input, observation, now, decision } = *decided;
    let output = &decision.status;
    let Ok(plan) = Plan::from_spec(spec, &observation.templates) else {
        return if decision.actions.is_empty() {
            Ok(())
        } else {
            Err(format!("an invalid spec was acted on: {:?}", decision.actions))
        };
    };
    let n = plan.steps.len();
    let workload = observation.workload.as_ref().map(|w| &w.template);
    let revision = revision_of(&pod_template(spec, workload).map(|t| t.get()).unwrap_or_default());
    let traffic: Vec<&Traffic> = decision
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::SetTraffic(traffic) => Some(traffic),
            _ => None,
        })
        .collect();
    let weights = traffic.iter().map(|t| (t.weights.canary, t.weights.stable));

    let in_flight = output.canary_revision.is_some() && output.abort.is_none() && !output.progress.promoting;
    // The weight in force at the current step. Past the last step, which only a pause holds the
    // canary at (a promote while paused), that is still the last step's: a promotion moves weight
    // only once it has begun, and then only to stable.
    let limit = match output.current_step_index {
        Some(i) if in_flight => spec.strategy.canary.weight_at(i.max(0) as usize),
        _ => 0,
    };
    // With dynamicStableScale, weight moves back to stable only as its pods become available: a
    // canary keeps part of what every route gives it now, even past its step, for a while.
    let dynamic = spec.strategy.canary.dynamic_stable_scale;
    let carried_canary = observation.routes.iter().filter_map(|r| r.weights.map(|w| w.canary)).min();
    let carried_stable =
        observation.routes.iter().map(|r| r.weights.map_or(100, |w| w.stable)).max().unwrap_or(100);
    let stable_revision = observation.services.stable.as_ref().or(input.stable_revision.as_ref());
    for (canary, stable) in weights {
        if canary + stable != 100 {
            return Err(format!("weights must sum to 100: canary {canary}, stable {stable}"));
        }
        let retreating = dynamic && carried_canary.is_some_and(|carried| canary <= carried);
        if canary > limit && !retreating {
            return Err(format!("canary weight {canary} exceeds the step's {limit} ({:?})", output.step));
        }
        if dynamic && stable > carried_stable {
            let available = stable_revision.map_or(0, |s| observation.available(s));
            let needed = share(plan.replicas, stable);
            if available < needed {
                return Err(format!(
                    "weight {stable} to stable {stable_revision:?} with {available} available pods: it needs {needed}"
                ));
            }
        }
        if canary > 0 && !retreating && observation.available(&revision) == 0 {
            return Err(format!("weight {canary} to canary {revision} with no available pods"));
        }
        if canary > 0 && !retreating && observation.services.canary.as_deref() != Some(revision.as_str()) {
            return Err(format!("weight {canary} to a canary Service that does not select {revision}"));
        }
    }

    // Header routes and mirrors exist exactly during their steps: what a decision sets is what the
    // steps up to the current one left in force (the one before it, while a step that changes them
    // is paused), only to a canary with pods behind the canary Service, and nothing once the
    // canary is aborted, promoting or gone.
    let exposing = output.canary_revision.is_some() && output.abort.is_none() && !output.progress.promoting;
    for t in traffic.iter().filter(|t| !t.exposure.is_empty()) {
        let step = output.current_step_index.unwrap_or(0).max(0) as usize;
        let in_force = [Some(step), step.checked_sub(1)]
            .into_iter()
            .flatten()
            .any(|i| i < n && plan.exposure_at(i).exposure == t.exposure);
        if !exposing || !in_force {
            return Err(format!(
                "{} set at step {step} of {:?} (aborted {}, promoting {}), where the steps have {}",
                t.exposure.describe(),
                output.canary_revision,
                output.abort.is_some(),
                output.progress.promoting,
                plan.exposure_at(step).exposure.describe()
            ));
        }
        if observation.available(&revision) == 0
            || observation.services.canary.as_deref() != Some(revision.as_str())
        {
            return Err(format!(
                "{} set for canary {revision} with no pods behind it",
                t.exposure.describe()
            ));
        }
    }

    // An aborted canary, or none, keeps nothing Bellwether added: a decision that sees a route
    // carrying any of it (or rules it cannot read) withdraws it. With no canary, that is once
    // stable has pods behind its Service to take the requests back.
    let stable_serves = output.stable_revision.as_ref().is_some_and(|s| observation.available(s) > 0)
        && observation.services.stable.is_some();
    let ended = output.abort.is_some() || (output.canary_revision.is_none() && stable_serves);
    let left_behind = observation.routes.iter().any(|r| r.exposure.as_ref().is_none_or(|e| !e.is_empty()));
    if ended && left_behind && !traffic.iter().any(|t| t.exposure.is_empty()) {
        return Err(format!(
            "the canary ended ({:?}) with header routes or mirrors on the routes, and nothing removes them",
            output.abort.as_ref().map(|a| &a.reason)
        ));
    }

    // A `workloadRef`'s Deployment keeps the pods that serve until Bellwether's can: before the
    // Services select a revision, it goes down only by the stable pods available; and never up.
    if let Some(workload) = &observation.workload {
        let taken_over = observation.services.stable.is_some();
        let stable_available = output.stable_revision.as_deref().map_or(0, |s| observation.available(s));
        for action in &decision.actions {
            let Action::ScaleWorkload { replicas } = action else { continue };
            if *replicas > workload.replicas {
                return Err(format!("the Deployment was scaled up from {} to {replicas}", workload.replicas));
            }
            if !taken_over && replicas + stable_available < plan.replicas {
                return Err(format!(
                    "the Deployment was scaled to {replicas} with {stable_available} of the Rollout's {} pods \
                     available and the Services still selecting the Deployment's",
                    plan.replicas
                ));
            }
        }
    }

    if input.abort.is_none() && output.abort.is_some() {
        let traffic_already_off = !observation.canary_traffic_possible();
        // With dynamicStableScale the move is as large as stable's available pods allow, and when
        // they allow none, stable's scale-up comes first.
        let first_moves_traffic = match decision.actions.first() {
            Some(Action::SetTraffic(t)) if !t.exposure.is_empty() => false,
            Some(Action::SetTraffic(t)) if t.weights.canary == 0 => true,
            // Emitted only where a route differs: it moves weight back, or withdraws header routes
            // and mirrors, or both.
            Some(Action::SetTraffic(t)) => dynamic && carried_canary.is_some_and(|c| t.weights.canary <= c),
            Some(Action::ScaleReplicaSet { revision, replicas }) => {
                dynamic
                    && Some(revision) == input.stable_revision.as_ref()
                    && observation.replica_set(revision).is_none_or(|rs| *replicas >= rs.replicas)
            }
            _ => false,
        };
        let no_weight_change = traffic.is_empty();
        let stable_scaling_up = dynamic
            && input
                .stable_revision
                .as_ref()
                .and_then(|s| observation.replica_set(s))
                .is_some_and(|rs| rs.replicas >= plan.replicas);
        if !(first_moves_traffic || (no_weight_change && (traffic_already_off || stable_scaling_up))) {
            return Err(format!("an abort began with {:?}", decision.actions.first()));
        }
    }

    let again = decide(Input { name, generation: Some(1), spec, status: output, observation, now });
    if again.status != *output {
        return Err("a second decision on the same observation changed the status".into());
    }
    if !again.events.is_empty() {
        return Err(format!("a second decision emitted events: {:?}", again.events));
    }
    if let Some(action) = again.actions.iter().find(|a| !decision.actions.contains(a)) {
        return Err(format!("a second decision added {action:?}"));
    }

    // Moving past an analysis step needs a Successful run, unless a person promoted. Missing data
    // never makes a run Successful unless a metric says `noData: pass`, so this is also "missing
    // data never promotes".
    let promoted_by_hand = input.progress.promote_full
        || observation.requests.iter().any(|r| {
            matches!(r.action, UserAction::Promote | UserAction::PromoteFull)
                && !input.progress.handled_requests.contains(&r.id)
                && output.progress.handled_requests.contains(&r.id)
        });
    let same_canary = input.canary_revision.is_some() && input.canary_revision == output.canary_revision;
    let promoted_now = input.canary_revision.is_some() && output.stable_revision == input.canary_revision;
    if !promoted_by_hand && input.abort.is_none() && (same_canary || promoted_now) {
        let from = input.current_step_index.unwrap_or(0) as usize;
        let to = if promoted_now { n } else { output.current_step_index.unwrap_or(0) as usize };
        let canary = input.canary_revision.clone().unwrap_or_default();
        for k in from..to.min(n) {
            if matches!(plan.steps[k], Step::Analysis(_)) {
                let slot = format!("-step{k}");
                let passed = observation.analysis_runs.iter().any(|r| {
                    r.name.starts_with(&format!("{name}-{canary}-"))
                        && (r.name.ends_with(&slot) || r.name.contains(&format!("{slot}-rerun")))
                        && r.phase == Some(AnalysisPhase::Successful)
                });
                if !passed {
                    return Err(format!("moved past analysis step {} without a Successful run", k + 1));
                }
            }
        }
    }

    alert_aborts_within_their_limit(spec, input, output, now)?;

    if output.phase.is_none() {
        return Err("a decision left the phase unset".into());
    }
    kstatus_agrees(output)
}

/// The kstatus conditions agree with the phase: exactly one of `Ready`, `Reconciling` and `Stalled`
/// is True; `Ready` only when Healthy with all traffic verified on stable; `Stalled` exactly when
/// Degraded or the spec is invalid.
fn kstatus_agrees(status: &RolloutStatus) -> Result<(), String> {
    let is_true = |kind: &str| status.conditions.iter().any(|c| c.type_ == kind && c.status == "True");
    let (ready, reconciling, stalled) = (is_true("Ready"), is_true("Reconciling"), is_true("Stalled"));
    if [ready, reconciling, stalled].iter().filter(|t| **t).count() != 1 {
        return Err(format!("not exactly one of Ready, Reconciling, Stalled: {:?}", status.conditions));
    }
    let traffic_home = status.weights.verified && status.weights.canary == 0;
    if ready && !(status.phase == Some(RolloutPhase::Healthy) && traffic_home) {
        return Err(format!("Ready in phase {:?} with weights {:?}", status.phase, status.weights));
    }
    let should_stall = status.phase == Some(RolloutPhase::Degraded) || is_true("InvalidSpec");
    if stalled != should_stall {
        return Err(format!("Stalled is {stalled} in phase {:?}: {:?}", status.phase, status.conditions));
    }
    Ok(())
}

/// No hour holds more alert-driven aborts than `maxAlertAbortsPerHour`, and each one is counted
/// when it happens.
fn alert_aborts_within_their_limit(
    spec: &RolloutSpec,
    input: &RolloutStatus,
    output: &RolloutStatus,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let limit = spec.strategy.canary.max_alert_aborts_per_hour.unwrap_or(DEFAULT_MAX_ALERT_ABORTS_PER_HOUR);
    let times = &output.alert_aborts;
    for (i, start) in times.iter().enumerate() {
        let within = times[i..].iter().filter(|t| **t - *start < chrono::Duration::hours(1)).count();
        if within as i32 > limit.max(0) {
            return Err(format!("{within} alert-driven aborts within an hour, beyond the limit of {limit}"));
        }
    }
    let alert_abort = |status: &RolloutStatus| status.abort.as_ref().is_some_and(|a| a.alert.is_some());
    if !alert_abort(input) && alert_abort(output) && times.last() != Some(&now) {
        return Err("an alert-driven abort was not counted".into());
    }
    Ok(())
}
