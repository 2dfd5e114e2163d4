//! One test per rule of the engine, each a scenario: given a spec, a status and what the cluster
//! shows at a time, expect these actions, this phase and this message.

use super::fixtures::*;
use super::world::World;
use bellwether::api::*;
use bellwether::engine::{Action, EventKind, RouteWeights, ServiceRole, Traffic, UserAction};

fn web_v2(world: &mut World) -> String {
    world.ship("web:2")
}

fn phase(world: &World) -> RolloutPhase {
    world.status.phase.expect("phase is always set")
}

fn message(world: &World) -> String {
    world.status.message.clone().unwrap_or_default()
}

fn scale(revision: &str, replicas: i32) -> Action {
    Action::ScaleReplicaSet { revision: revision.into(), replicas }
}

fn weights(canary: i32) -> Action {
    Action::SetTraffic(Traffic::split(canary))
}

fn point(role: ServiceRole, revision: &str) -> Action {
    Action::PointService { role, revision: revision.into() }
}

// ----- initial deploy -----

#[test]
fn initial_deploy_goes_straight_to_full_scale_without_steps() {
    let mut world =
        World::new(rollout().steps(vec![set_weight(20), pause_until_promoted()]).build(), at_minute(0.0));
    let first = world.step();
    let revision = world.revision();
    assert_eq!(first.actions, vec![scale(&revision, 10)], "no traffic moves before a pod is available");
    assert_eq!(world.status.stable_revision.as_deref(), Some(revision.as_str()));
    assert_eq!(phase(&world), RolloutPhase::Progressing);
    assert!(
        message(&world).contains("waiting for 10 pods to become available (0 available)"),
        "{}",
        message(&world)
    );

    world.pods_become_ready();
    let second = world.step();
    assert_eq!(
        second.actions,
        vec![point(ServiceRole::Stable, &revision)],
        "routes already carry stable 100, and the canary Service selects no revision until a canary \
         points it at itself, so only the stable Service moves"
    );
    world.settle();
    assert_eq!(phase(&world), RolloutPhase::Healthy);
    assert_eq!(world.status.canary_revision, None);
    assert_eq!(world.status.step, None);
}

// ----- setWeight -----

#[test]
fn set_weight_scales_the_canary_then_waits_for_pods_then_moves_weight() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(25), pause_until_promoted()]).build());
    let stable = world.revision();
    let canary = web_v2(&mut world);

    let d = world.step();
    assert_eq!(d.actions, vec![point(ServiceRole::Canary, &canary), scale(&canary, 3)]);
    assert_eq!(world.status.canary_revision.as_deref(), Some(canary.as_str()));
    assert_eq!(world.status.stable_revision.as_deref(), Some(stable.as_str()));
    assert_eq!(message(&world), "step 1/2: waiting for 3 canary pods to become available (0 available)");
    assert!(d.events.iter().any(|e| e.reason == "CanaryStarted"));

    world.pods_become_ready_up_to(&canary, 2);
    let d = world.step();
    assert!(d.actions.is_empty(), "2 of 3 pods is not enough for weight: {:?}", d.actions);
    assert_eq!(message(&world), "step 1/2: waiting for 3 canary pods to become available (2 available)");

    world.pods_become_ready();
    let d = world.step();
    assert_eq!(d.actions, vec![weights(25)]);
    assert_eq!(world.status.weights, Weights { canary: 25, stable: 75, verified: false });
    assert_eq!(world.replicas_of(&stable), Some(10), "stable stays at full scale so an abort is instant");

    let d = world.step();
    assert!(
        d.events.iter().any(|e| e.reason == "StepCompleted" && e.message.contains("step 1/2 (setWeight 25)"))
    );
    assert_eq!(world.status.current_step_index, Some(1));
    assert_eq!(world.status.weights, Weights { canary: 25, stable: 75, verified: true });
}

#[test]
fn weight_is_verified_only_when_every_parent_accepted_the_new_generation() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(50), pause_until_promoted()]).build());
    web_v2(&mut world);
    world.settle();
    assert_eq!(world.status.current_step_index, Some(1));

    // Simulate a Gateway that has not yet processed the route's latest generation.
    let mut lagging = World::deployed(rollout().steps(vec![set_weight(50), pause_until_promoted()]).build());
    web_v2(&mut lagging);
    lagging.step();
    lagging.pods_become_ready();
    lagging.step();
    lagging.cluster.observation.routes[0].parents[0].observed_generation -= 1;
    lagging.step();
    assert_eq!(lagging.status.current_step_index, Some(0));
    assert!(!lagging.status.weights.verified);
    assert_eq!(
        message(&lagging),
        "step 1/2: waiting for routes to carry canary weight 50: HTTPRoute/default/web not yet accepted by gateway/default/public"
    );
}

// ----- pauses -----

#[test]
fn a_timed_pause_waits_for_its_duration() {
    let mut world =
        World::deployed(rollout().steps(vec![set_weight(10), pause_for("5m"), set_weight(50)]).build());
    web_v2(&mut world);
    world.settle();
    assert_eq!(world.status.current_step_index, Some(1));
    assert_eq!(phase(&world), RolloutPhase::Progressing, "a timed pause needs no person");
    let end = format_time(world.now + chrono::Duration::minutes(5));
    assert_eq!(message(&world), format!("step 2/3: pausing for 5m until {end}"));
    let d = world.decide();
    assert_eq!(d.requeue_after, Some(chrono::Duration::minutes(5)));

    world.advance(4.0);
    world.settle();
    assert_eq!(world.status.current_step_index, Some(1));
    assert_eq!(message(&world), format!("step 2/3: pausing for 5m until {end}"));

    world.advance(1.0);
    world.settle();
    assert_eq!(world.canary_weight(), 0, "promoted after the last step: all traffic on stable");
    assert_eq!(world.status.stable_revision, Some(world.revision()));
}

#[test]
fn a_waiting_canary_keeps_its_status_as_time_passes() {
    // A status that changed with the clock alone would be written at every pass, and each write
    // reconciles the Rollout again.
    let mut world =
        World::deployed(rollout().steps(vec![set_weight(10), pause_for("10m"), set_weight(50)]).build());
    web_v2(&mut world);
    world.settle();
    let timed = world.status.clone();
    world.advance(3.0);
    world.decide();
    assert_eq!(world.status, timed, "a timed pause");

    world.request(UserAction::Pause, "gina");
    world.settle();
    let paused = world.status.clone();
    assert_eq!(
        message(&world),
        format!("step 2/3: paused by a user since {}; resume to continue", format_time(world.now))
    );
    world.advance(30.0);
    world.decide();
    assert_eq!(world.status, paused, "a pause by a user");
}

#[test]
fn a_timed_pause_ends_only_once_the_route_carries_the_canary_weight_again() {
    let mut world =
        World::deployed(rollout().steps(vec![set_weight(10), pause_for("5m"), set_weight(50)]).build());
    web_v2(&mut world);
    world.settle();
    assert_eq!(world.status.current_step_index, Some(1));

    // Someone deletes the route during the pause; the pause runs out while it is gone.
    world.cluster.observation.routes[0].weights = None;
    world.decide();
    assert_eq!(
        message(&world),
        format!(
            "step 2/3: pausing for 5m until {}, but the routes do not carry its weight: \
             HTTPRoute/default/web not found or its rules do not reference both Services",
            format_time(world.now + chrono::Duration::minutes(5))
        )
    );
    world.advance(6.0);
    let d = world.decide();
    assert_eq!(world.status.current_step_index, Some(1), "no bake time without the canary's traffic");
    assert_eq!(d.actions, [Action::SetTraffic(Traffic::split(10))]);
    assert_eq!(
        message(&world),
        "step 2/3: pause over, but the routes do not carry its weight: \
         HTTPRoute/default/web not found or its rules do not reference both Services"
    );

    // It is back, at 10%: the rollout goes on to 50% and beyond.
    world.step();
    world.settle();
    assert_eq!(world.canary_weight(), 0, "promoted after the last step: all traffic on stable");
    assert_eq!(world.status.stable_revision, Some(world.revision()));
}

#[test]
fn an_indefinite_pause_waits_for_a_promote() {
    let mut world = World::deployed(
        rollout().steps(vec![set_weight(10), pause_until_promoted(), set_weight(50)]).build(),
    );
    web_v2(&mut world);
    world.settle();
    world.advance(600.0);
    world.settle();
    assert_eq!(phase(&world), RolloutPhase::Paused);
    assert_eq!(world.status.pause_conditions[0].reason, PauseReason::PauseStep);
    assert_eq!(message(&world), "step 2/3: paused until promoted");

    world.request(UserAction::Promote, "alice");
    let decisions = world.settle();
    let events: Vec<_> = decisions.iter().flat_map(|d| d.events.clone()).collect();
    assert!(events.iter().any(|e| e.reason == "UserRequest" && e.message == "promote requested by alice: step 2/3 skipped"));
    assert!(world.status.pause_conditions.is_empty());
    assert_eq!(world.status.stable_revision, Some(world.revision()));
}

// ----- analysis -----

#[test]
fn an_analysis_step_waits_for_its_run_and_advances_only_when_successful() {
    let mut world = World::deployed(
        rollout().steps(vec![set_weight(20), analysis("error-rate"), set_weight(60)]).build(),
    );
    let canary = web_v2(&mut world);
    world.settle();
    assert_eq!(world.status.current_step_index, Some(1));
    let run = world.status.step_analysis_run.clone().expect("the step's run is recorded");
    assert_eq!(run.name, format!("web-{canary}-0-step1"));
    assert!(world.log.iter().any(|(_, a)| matches!(a, Action::CreateAnalysisRun(r) if r.name == run.name)));

    world.advance(30.0);
    world.settle();
    assert_eq!(
        world.status.current_step_index,
        Some(1),
        "a running analysis holds the step however long it takes"
    );
    assert_eq!(world.canary_weight(), 20);

    world.finish_run("step1", AnalysisPhase::Successful, "error-rate: 3 healthy measurements");
    world.settle();
    assert_eq!(world.status.stable_revision.as_deref(), Some(canary.as_str()));
}

#[test]
fn a_failed_analysis_aborts_and_the_first_mutation_moves_traffic_to_stable() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(30), analysis("error-rate")]).build());
    let stable = world.revision();
    let canary = web_v2(&mut world);
    world.settle();
    world.finish_run("step1", AnalysisPhase::Failed, "error-rate: 0.034 > max 0.01 for 2m05s");
    let d = world.step();
    assert_eq!(d.actions[0], weights(0), "the first mutation of an abort moves all traffic to stable");
    assert_eq!(phase(&world), RolloutPhase::Degraded);
    let abort = world.status.abort.clone().unwrap();
    assert_eq!(abort.reason, "AnalysisFailed");
    assert_eq!(abort.metric.as_deref(), Some("error-rate"));
    assert_eq!(abort.value.as_deref(), Some("0.034"));
    assert_eq!(abort.by, "bellwether");
    assert!(message(&world).contains("error-rate: 0.034 > max 0.01 for 2m05s"), "{}", message(&world));
    assert!(d.events.iter().any(|e| e.kind == EventKind::Warning && e.reason == "RolloutAborted"));
    assert_eq!(world.status.history[0].outcome, RolloutOutcome::Aborted);

    world.settle();
    assert_eq!(
        world.cluster.observation.services.canary.as_deref(),
        Some(stable.as_str()),
        "after the abort both Services select stable"
    );
    assert_eq!(world.replicas_of(&canary), Some(3), "canary pods are kept for the abort scale-down delay");
    world.advance(0.5);
    world.settle();
    assert_eq!(world.replicas_of(&canary), Some(0), "scaled down after abortScaleDownDelaySeconds (30s)");
    assert_eq!(phase(&world), RolloutPhase::Degraded, "stays Degraded until a retry or a new template");
}

#[test]
fn a_failed_analysis_pauses_when_the_policy_says_pause() {
    let spec = rollout()
        .steps(vec![set_weight(30), analysis("error-rate")])
        .on_failure(AnalysisFailurePolicy::Pause)
        .build();
    let mut world = World::deployed(spec);
    web_v2(&mut world);
    world.settle();
    world.finish_run("step1", AnalysisPhase::Failed, "error-rate: 0.02 > max 0.01");
    world.settle();
    assert_eq!(phase(&world), RolloutPhase::Paused);
    assert_eq!(world.status.pause_conditions[0].reason, PauseReason::AnalysisFailed);
    assert_eq!(world.canary_weight(), 30, "pause holds the split for a person to judge");

    world.request(UserAction::Resume, "bob");
    world.settle();
    let rerun = world.status.step_analysis_run.clone().unwrap();
    assert!(rerun.name.ends_with("-step1-rerun1"), "resume runs the analysis again: {}", rerun.name);
    assert_eq!(phase(&world), RolloutPhase::Progressing);
}

#[test]
fn inconclusive_pauses_by_default_and_aborts_when_configured() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(30), analysis("error-rate")]).build());
    web_v2(&mut world);
    world.settle();
    world.finish_run("step1", AnalysisPhase::Inconclusive, "error-rate: no data for 3 measurements");
    world.settle();
    assert_eq!(phase(&world), RolloutPhase::Paused);
    assert_eq!(world.status.pause_conditions[0].reason, PauseReason::InconclusiveAnalysis);
    assert_eq!(
        world.status.stable_revision,
        world.status.history.first().map(|h| h.revision.clone()).or(world.status.stable_revision.clone())
    );
    assert!(world.status.canary_revision.is_some(), "missing data never promotes");

    let spec = rollout()
        .steps(vec![set_weight(30), analysis("error-rate")])
        .on_inconclusive(InconclusivePolicy::Abort)
        .build();
    let mut world = World::deployed(spec);
    web_v2(&mut world);
    world.settle();
    world.finish_run("step1", AnalysisPhase::Inconclusive, "error-rate: no data");
    world.settle();
    assert_eq!(phase(&world), RolloutPhase::Degraded);
    assert_eq!(world.status.abort.unwrap().reason, "AnalysisInconclusive");
}

#[test]
fn background_analysis_fails_the_rollout_at_any_step() {
    let spec = rollout()
        .steps(vec![set_weight(10), pause_for("10m"), set_weight(50), pause_for("10m")])
        .background("error-rate", 1)
        .build();
    let mut world = World::deployed(spec);
    let canary = web_v2(&mut world);
    world.settle();
    let background = world.status.background_analysis_run.clone().expect("background starts at step 2");
    assert_eq!(background.name, format!("web-{canary}-0-background"));
    world.advance(10.0);
    world.settle();
    assert_eq!(world.status.current_step_index, Some(3));
    assert_eq!(world.canary_weight(), 50);
    world.finish_run("background", AnalysisPhase::Failed, "latency-p99: 0.9 > max 0.5");
    let d = world.step();
    assert_eq!(d.actions[0], weights(0));
    assert_eq!(phase(&world), RolloutPhase::Degraded);
}

#[test]
fn background_analysis_ends_when_the_canary_is_promoted() {
    let spec = rollout().steps(vec![set_weight(10), pause_for("1m")]).background("error-rate", 0).build();
    let mut world = World::deployed(spec);
    web_v2(&mut world);
    world.settle();
    world.advance(1.0);
    world.settle();
    assert!(world.status.canary_revision.is_none());
    assert!(
        world.cluster.observation.analysis_runs.iter().all(|r| r.terminating),
        "the background run was told to stop"
    );
}

// ----- promotion -----

#[test]
fn promotion_scales_up_then_switches_the_stable_service_then_moves_weight() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(20)]).build());
    let old = world.revision();
    let canary = web_v2(&mut world);
    world.step();
    world.pods_become_ready();
    world.step();
    let log_start = world.log.len();
    let d = world.step();
    assert_eq!(d.actions, vec![scale(&canary, 10)], "1. scale the canary to full and wait");
    assert_eq!(message(&world), "promoting: waiting for 10 canary pods to become available (2 available)");
    world.pods_become_ready();
    world.settle();
    let promotion: Vec<Action> = world.log[log_start..].iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(
        &promotion[..3],
        &[scale(&canary, 10), point(ServiceRole::Stable, &canary), weights(0)],
        "2. point stableService at the new revision, 3. then move all traffic to stable"
    );
    assert_eq!(world.status.stable_revision.as_deref(), Some(canary.as_str()), "4. record the new stable");
    assert_eq!(world.status.history[0].outcome, RolloutOutcome::Promoted);
    assert_eq!(world.replicas_of(&old), Some(10), "5. the old stable waits for scaleDownDelaySeconds");
    world.advance(0.5);
    world.settle();
    assert_eq!(world.replicas_of(&old), Some(0));
    assert_eq!(phase(&world), RolloutPhase::Healthy);
}

// ----- a new revision, a reverted template -----

#[test]
fn a_new_revision_during_a_canary_replaces_it_quietly_and_starts_at_step_one() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(40), pause_until_promoted()]).build());
    let first = web_v2(&mut world);
    world.settle();
    assert_eq!(world.canary_weight(), 40);
    let second = world.ship("web:3");
    let d = world.step();
    assert_eq!(d.actions[0], weights(0), "traffic leaves the replaced canary before anything else");
    assert!(
        !d.actions.iter().any(|a| *a == point(ServiceRole::Canary, &second)),
        "the canary Service waits for zero weight"
    );
    assert!(d.events.iter().any(|e| e.reason == "Superseded"));
    assert_eq!(world.status.history[0].outcome, RolloutOutcome::Superseded);
    assert_eq!(world.status.canary_revision.as_deref(), Some(second.as_str()));
    assert_eq!(world.status.current_step_index, Some(0));
    assert!(world.status.abort.is_none(), "replacing a canary is not an abort");
    world.settle();
    world.advance(0.5);
    world.settle();
    assert_eq!(world.replicas_of(&first), Some(0));
    assert_eq!(world.canary_weight(), 40);
    assert_eq!(phase(&world), RolloutPhase::Paused);
}

#[test]
fn reverting_the_template_to_stable_is_healthy_at_once() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(40), pause_until_promoted()]).build());
    let stable = world.revision();
    web_v2(&mut world);
    world.settle();
    world.ship("web:1");
    let d = world.step();
    assert_eq!(d.actions[0], weights(0));
    assert!(d.events.iter().any(|e| e.reason == "RolledBack"));
    assert_eq!(world.status.canary_revision, None);
    world.settle();
    assert_eq!(phase(&world), RolloutPhase::Healthy);
    assert_eq!(world.status.stable_revision.as_deref(), Some(stable.as_str()));
}

#[test]
fn reverting_the_template_ends_a_degraded_rollout() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(40), analysis("error-rate")]).build());
    web_v2(&mut world);
    world.settle();
    world.finish_run("step1", AnalysisPhase::Failed, "bad");
    world.settle();
    assert_eq!(phase(&world), RolloutPhase::Degraded);
    world.ship("web:1");
    world.settle();
    assert_eq!(phase(&world), RolloutPhase::Healthy);
    assert!(world.status.abort.is_none());
}

// ----- progress deadline -----

#[test]
fn a_canary_that_never_becomes_available_aborts_at_the_progress_deadline() {
    let spec = rollout().steps(vec![set_weight(20)]).progress_deadline_seconds(300).build();
    let mut world = World::deployed(spec);
    web_v2(&mut world);
    world.step();
    world.advance(4.9);
    world.step();
    assert_eq!(phase(&world), RolloutPhase::Progressing);
    world.advance(0.1);
    world.step();
    assert_eq!(phase(&world), RolloutPhase::Degraded);
    let abort = world.status.abort.clone().unwrap();
    assert_eq!(abort.reason, "ProgressDeadlineExceeded");
    assert_eq!(
        abort.message,
        "step 1/1: waiting for 2 canary pods to become available (0 available); no progress for 5m (progressDeadlineSeconds)"
    );
}

// ----- invalid spec -----

fn assert_invalid(spec: RolloutSpec, expected: &str) {
    let mut world = World::deployed(rollout().build());
    world.spec = spec;
    let d = world.decide();
    assert!(d.actions.is_empty(), "an invalid spec touches nothing: {:?}", d.actions);
    let condition = world.status.conditions.iter().find(|c| c.type_ == "InvalidSpec").unwrap();
    assert_eq!(condition.status, "True");
    assert!(condition.message.contains(expected), "{:?} should contain {expected:?}", condition.message);
    assert!(d.events.iter().any(|e| e.reason == "InvalidSpec" && e.kind == EventKind::Warning));
}

#[test]
fn an_invalid_spec_sets_invalid_spec_and_touches_nothing() {
    assert_invalid(
        rollout().image("web:2").steps(vec![set_weight(150)]).build(),
        "spec.strategy.canary.steps[0].setWeight: 150 is outside 0..100",
    );
    assert_invalid(
        rollout().image("web:2").steps(vec![]).build(),
        "spec.strategy.canary.steps: must have at least one step",
    );
    assert_invalid(
        rollout().image("web:2").steps(vec![analysis("no-such-template")]).build(),
        "spec.strategy.canary.steps[0].analysis.templates[0].templateName: AnalysisTemplate \"no-such-template\" not found",
    );
    assert_invalid(
        rollout().image("web:2").steps(vec![pause_for("-5m")]).build(),
        "spec.strategy.canary.steps[0].pause.duration: duration \"-5m\" is negative",
    );
    assert_invalid(
        rollout()
            .image("web:2")
            .steps(vec![CanaryStep {
                set_weight: Some(10),
                pause: Some(PauseStep::default()),
                ..CanaryStep::default()
            }])
            .build(),
        "spec.strategy.canary.steps[0]: must have exactly one of setWeight, pause, analysis, setHeaderRoute or \
         setMirrorRoute",
    );
    assert_invalid(
        rollout().image("web:2").edit(|s| s.strategy.canary.canary_service = "web-stable".into()).build(),
        "spec.strategy.canary.canaryService: must differ from stableService",
    );
    assert_invalid(
        rollout()
            .image("web:2")
            .edit(|s| s.selector.match_labels = Some([("app".to_string(), "api".to_string())].into()))
            .build(),
        "spec.selector.matchLabels: app=api does not match the template's labels",
    );
    assert_invalid(
        rollout().image("web:2").analysis_run_history_limit(-1, 5).build(),
        "spec.analysisRunHistoryLimit.successful: -1 is not from 0 to 100",
    );
    assert_invalid(
        rollout().image("web:2").analysis_run_history_limit(5, 101).build(),
        "spec.analysisRunHistoryLimit.unsuccessful: 101 is not from 0 to 100",
    );
}

#[test]
fn duplicate_metric_names_across_templates_are_invalid() {
    let mut world = World::deployed(rollout().build());
    world.cluster.observation.templates.insert(template_ref("error-rate-copy"), error_rate_template());
    world.spec = rollout()
        .image("web:2")
        .steps(vec![CanaryStep {
            analysis: Some(AnalysisStep {
                templates: vec![template_ref("error-rate"), template_ref("error-rate-copy")],
                args: vec![],
                duration: None,
                timeout: None,
            }),
            ..CanaryStep::default()
        }])
        .build();
    let d = world.decide();
    assert!(d.actions.is_empty());
    assert!(message(&world).contains("metric \"error-rate\" is defined twice"), "{}", message(&world));
}

#[test]
fn a_fixed_spec_clears_invalid_spec() {
    let mut world = World::deployed(rollout().build());
    world.spec = rollout().image("web:2").steps(vec![set_weight(150)]).build();
    world.decide();
    world.spec = rollout().image("web:2").steps(vec![set_weight(15)]).build();
    world.settle();
    let condition = world.status.conditions.iter().find(|c| c.type_ == "InvalidSpec").unwrap();
    assert_eq!(condition.status, "False");
    assert_eq!(world.canary_weight(), 0, "promoted: all traffic back on stable");
    assert_eq!(world.status.stable_revision, Some(world.revision()));
}

// ----- user actions -----

#[test]
fn abort_by_a_user_names_them_and_retry_starts_again() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(20), pause_until_promoted()]).build());
    let canary = web_v2(&mut world);
    world.settle();
    world.request(UserAction::Abort, "carol");
    let d = world.step();
    assert_eq!(d.actions[0], weights(0));
    let abort = world.status.abort.clone().unwrap();
    assert_eq!((abort.reason.as_str(), abort.by.as_str()), ("UserAbort", "carol"));
    assert!(
        d.events.iter().any(|e| e.message == "abort requested by carol: all traffic goes back to stable")
    );
    world.settle();

    world.request(UserAction::Retry, "carol");
    world.settle();
    assert!(world.status.abort.is_none());
    assert_eq!(world.status.progress.attempt, 1);
    assert_eq!(world.status.canary_revision.as_deref(), Some(canary.as_str()));
    assert_eq!(world.canary_weight(), 20);
    assert_eq!(phase(&world), RolloutPhase::Paused);
}

#[test]
fn promote_full_skips_every_remaining_step_and_analysis() {
    let mut world = World::deployed(
        rollout().steps(vec![set_weight(10), analysis("error-rate"), pause_until_promoted()]).build(),
    );
    let canary = web_v2(&mut world);
    world.settle();
    world.request(UserAction::PromoteFull, "dave");
    world.settle();
    assert_eq!(world.status.stable_revision.as_deref(), Some(canary.as_str()));
    assert!(world.cluster.observation.analysis_runs.iter().all(|r| r.terminating));
}

#[test]
fn a_stale_promote_for_another_step_is_ignored() {
    let mut world = World::deployed(
        rollout().steps(vec![set_weight(10), pause_until_promoted(), pause_until_promoted()]).build(),
    );
    web_v2(&mut world);
    world.settle();
    world.request(UserAction::Promote, "erin");
    let stale = world.cluster.observation.requests.last().cloned().unwrap();
    world.settle();
    assert_eq!(world.status.current_step_index, Some(2));
    world.cluster.observation.requests.push(bellwether::engine::UserRequest { id: "late".into(), ..stale });
    let d = world.step();
    assert_eq!(
        world.status.current_step_index,
        Some(2),
        "the late copy of a step-2 promote must not skip step 3"
    );
    assert!(d.events.iter().any(|e| e.kind == EventKind::Warning
        && e.message.contains("ignored: it was for step 2, but the canary is at step 3/3")));
}

#[test]
fn the_same_request_acts_once() {
    let mut world = World::deployed(
        rollout().steps(vec![set_weight(10), pause_until_promoted(), pause_until_promoted()]).build(),
    );
    web_v2(&mut world);
    world.settle();
    let id = world.request(UserAction::Promote, "frank");
    world.settle();
    assert_eq!(world.status.current_step_index, Some(2));
    assert!(world.status.progress.handled_requests.contains(&id));
    world.settle();
    assert_eq!(
        world.status.current_step_index,
        Some(2),
        "the request is still in the annotation but already handled"
    );
}

#[test]
fn pause_holds_and_resume_continues_without_losing_pause_time() {
    let mut world =
        World::deployed(rollout().steps(vec![set_weight(10), pause_for("10m"), set_weight(50)]).build());
    web_v2(&mut world);
    world.settle();
    world.advance(4.0);
    world.request(UserAction::Pause, "gina");
    world.settle();
    assert_eq!(phase(&world), RolloutPhase::Paused);
    world.advance(30.0);
    world.settle();
    assert_eq!(world.status.current_step_index, Some(1), "nothing moves while paused");
    world.request(UserAction::Resume, "gina");
    world.settle();
    assert_eq!(
        message(&world),
        format!("step 2/3: pausing for 10m until {}", format_time(world.now + chrono::Duration::minutes(6))),
        "the pause clock stopped while paused"
    );
    world.advance(6.0);
    world.settle();
    assert_eq!(world.status.stable_revision, Some(world.revision()));
}

#[test]
fn spec_paused_holds_the_canary_until_cleared() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(10), set_weight(50)]).build());
    web_v2(&mut world);
    world.spec.paused = true;
    world.settle();
    assert_eq!(phase(&world), RolloutPhase::Paused);
    assert_eq!(message(&world), "paused: spec.paused is set");
    world.spec.paused = false;
    world.settle();
    assert_eq!(world.status.stable_revision, Some(world.revision()));
}

#[test]
fn a_promote_while_spec_paused_moves_weight_down_to_a_lower_step_and_never_back_up() {
    let steps = vec![set_weight(90), pause_until_promoted(), set_weight(40), pause_until_promoted()];
    let mut world = World::deployed(rollout().steps(steps).build());
    let canary = web_v2(&mut world);
    world.settle();
    world.spec.paused = true;
    world.settle();
    assert_eq!((world.canary_weight(), world.replicas_of(&canary)), (90, Some(9)));

    // The step is now setWeight 40: the weight follows it down while paused, and the pods stay
    // until the route carries less.
    world.request(UserAction::Promote, "ivy");
    let decision = world.step();
    assert_eq!(world.status.current_step_index, Some(2));
    assert_eq!(decision.actions, vec![weights(40)]);
    world.settle();
    assert_eq!((world.canary_weight(), world.replicas_of(&canary)), (40, Some(4)));
    assert_eq!(phase(&world), RolloutPhase::Paused);

    // A hand edit back to the old step's weight is put back to the step's, not the old one.
    world.cluster.observation.routes[0].weights = Some(RouteWeights { canary: 90, stable: 10 });
    let decision = world.step();
    assert_eq!(decision.actions, vec![weights(40)]);
}

#[test]
fn requests_that_do_not_apply_are_ignored_with_a_reason() {
    let mut world = World::deployed(rollout().build());
    world.request(UserAction::Abort, "hal");
    let d = world.step();
    assert!(d.actions.is_empty());
    assert!(
        d.events.iter().any(|e| e.message == "abort requested by hal: ignored: no canary is in progress")
    );
}

// ----- clean-up -----

#[test]
fn old_replica_sets_beyond_the_history_limit_are_deleted() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(50)]).revision_history_limit(1).build());
    let first = world.revision();
    for image in ["web:2", "web:3", "web:4"] {
        world.ship(image);
        world.settle();
        world.advance(1.0);
        world.settle();
    }
    let kept: Vec<&str> =
        world.cluster.observation.replica_sets.iter().map(|rs| rs.revision.as_str()).collect();
    assert_eq!(kept.len(), 2, "the stable revision plus one old one: {kept:?}");
    assert!(!kept.contains(&first.as_str()));
}

/// Runs one canary of `image` whose step analysis ends in `phase`, and lets it settle a minute.
fn canary_with_analysis(world: &mut World, image: &str, phase: AnalysisPhase) {
    world.ship(image);
    world.settle();
    world.finish_run("step1", phase, "done");
    world.settle();
    world.advance(1.0);
    world.settle();
}

fn run_names(world: &World) -> Vec<String> {
    world.cluster.observation.analysis_runs.iter().map(|r| r.name.clone()).collect()
}

#[test]
fn ended_analysis_runs_beyond_the_history_limit_are_deleted_oldest_first_per_outcome() {
    let spec = rollout().steps(vec![set_weight(50), analysis("error-rate")]).analysis_run_history_limit(1, 2);
    let mut world = World::deployed(spec.build());
    let mut passed = Vec::new();
    for image in ["web:2", "web:3", "web:4"] {
        canary_with_analysis(&mut world, image, AnalysisPhase::Successful);
        passed.push(world.revision());
    }
    let mut failed = Vec::new();
    for image in ["web:5", "web:6", "web:7"] {
        canary_with_analysis(&mut world, image, AnalysisPhase::Failed);
        failed.push(world.revision());
    }
    let names = run_names(&world);
    let of = |revision: &str| names.iter().any(|n| n.contains(revision));
    assert_eq!(names.len(), 3, "one successful and two unsuccessful runs kept: {names:?}");
    assert!(of(&passed[2]) && !of(&passed[0]) && !of(&passed[1]), "the newest successful run: {names:?}");
    assert!(of(&failed[1]) && of(&failed[2]) && !of(&failed[0]), "the two newest unsuccessful: {names:?}");
    let deleted = world.log.iter().filter(|(_, a)| matches!(a, Action::DeleteAnalysisRun { .. })).count();
    assert_eq!(deleted, 3, "each old run deleted once");
}

#[test]
fn runs_are_kept_while_waited_for_and_runs_of_others_are_never_deleted() {
    let spec = rollout().steps(vec![set_weight(50), analysis("error-rate"), analysis("error-rate")]);
    let mut world = World::deployed(spec.analysis_run_history_limit(0, 0).build());
    world.ship("web:2");
    world.settle();
    let step1 = run_names(&world);
    assert_eq!(step1.len(), 1, "{step1:?}");
    world.finish_run("step1", AnalysisPhase::Successful, "done");
    world.settle();
    assert!(!run_names(&world).contains(&step1[0]), "a finished run no longer waited for goes at limit 0");
    let step2 = run_names(&world);
    assert_eq!(step2.len(), 1, "the run of the step in progress: {step2:?}");

    let mut foreign = world.cluster.observation.analysis_runs[0].clone();
    foreign.name = "someone-elses-run".into();
    foreign.owned = false;
    foreign.created_at = None;
    world.cluster.observation.analysis_runs.push(foreign.clone());
    world.settle();
    assert!(
        world.log.iter().all(|(_, a)| *a != Action::TerminateAnalysisRun { name: foreign.name.clone() }),
        "a running run labelled for the Rollout that it does not own is not stopped either"
    );
    world.cluster.observation.analysis_runs.last_mut().unwrap().phase = Some(AnalysisPhase::Failed);
    world.finish_run("step2", AnalysisPhase::Failed, "error-rate too high");
    world.settle();
    assert_eq!(phase(&world), RolloutPhase::Degraded);
    assert!(
        message(&world).contains("error-rate too high"),
        "the abort keeps its reason: {}",
        message(&world)
    );
    assert_eq!(
        run_names(&world),
        ["someone-elses-run"],
        "once the abort is recorded its run goes too at limit 0; a run labelled for the Rollout that it does \
         not own stays"
    );
}

#[test]
fn deciding_twice_on_the_same_input_changes_nothing_new() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(20), analysis("error-rate")]).build());
    web_v2(&mut world);
    for _ in 0..6 {
        let first = world.decide();
        let second = world.decide();
        assert_eq!(first.status, second.status);
        assert!(second.events.is_empty(), "{:?}", second.events);
        assert!(second.actions.iter().all(|a| first.actions.contains(a)));
        for action in &first.actions {
            world.apply(action);
        }
        world.pods_become_ready();
    }
}

#[test]
fn a_query_with_an_unknown_variable_or_undeclared_arg_is_invalid() {
    let mut world = World::deployed(rollout().build());
    let mut typo = error_rate_template();
    typo.metrics[0].provider.prometheus.as_mut().unwrap().query =
        "sum(rate(errors{revision=\"{{canary.revison}}\", job=\"{{args.job}}\"}[1m]))".into();
    world.cluster.observation.templates.insert(template_ref("error-rate"), typo);
    world.spec = rollout().image("web:2").steps(vec![analysis("error-rate")]).build();
    let d = world.decide();
    assert!(d.actions.is_empty());
    assert!(
        message(&world).contains(
            "AnalysisTemplate \"error-rate\" metrics[0].provider.prometheus.query: unknown variable {{canary.revison}}; did you mean {{canary.revision}}?"
        ),
        "{}",
        message(&world)
    );
}
