//! What the Rollout believes of its AnalysisRuns and routes: a run's measurements rather than the
//! phase it records, only the runs it created with the spec it recorded, and only traffic it read
//! back; and a paused canary's traffic held where it was paused.

use super::fixtures::*;
use super::world::World;
use bellwether::api::*;
use bellwether::engine::{Action, AnalysisRunState, Clock, EventKind, RouteWeights, Traffic, assess};
use chrono::Duration;
use proptest::prelude::*;

/// A canary at its analysis step (20%), with the step's run created, and that run's spec.
fn at_analysis() -> (World, String, AnalysisRunSpec) {
    let mut world = World::deployed(rollout().steps(vec![set_weight(20), analysis("error-rate")]).build());
    world.ship("web:2");
    world.settle();
    let run = world.status.step_analysis_run.clone().expect("the step's run is recorded");
    let spec = world
        .log
        .iter()
        .find_map(|(_, action)| match action {
            Action::CreateAnalysisRun(request) if request.name == run.name => Some(request.spec.clone()),
            _ => None,
        })
        .expect("the run was created");
    (world, run.name, spec)
}

/// A status as its reconciler would write it, with `values` of the step's `error-rate` a minute
/// apart, and then `phase` written over it.
fn status(world: &World, values: &[f64], phase: AnalysisPhase) -> AnalysisRunStatus {
    let measurements = values
        .iter()
        .enumerate()
        .map(|(i, v)| Measurement {
            at: world.now + Duration::minutes(i as i64),
            value: Some(*v),
            ..Measurement::default()
        })
        .collect();
    AnalysisRunStatus {
        phase: Some(phase),
        message: Some("error-rate: healthy for 3 measurements".into()),
        started_at: Some(world.now),
        metric_results: vec![MetricResult {
            name: "error-rate".into(),
            phase,
            message: None,
            measurements,
            hysteresis: None,
            consecutive_errors: 0,
        }],
    }
}

/// Puts what the fetch phase would make of the run into the observation.
fn observe(world: &mut World, state: AnalysisRunState) {
    let runs = &mut world.cluster.observation.analysis_runs;
    runs.retain(|r| r.name != state.name);
    runs.push(state);
}

fn aborted_with(world: &mut World, reason: &str) -> String {
    let decisions = world.settle();
    let events: Vec<_> = decisions.iter().flat_map(|d| d.events.clone()).collect();
    let distrusted = events.iter().find(|e| e.reason == reason && e.kind == EventKind::Warning);
    assert!(distrusted.is_some(), "no {reason} Event in {events:?}");
    assert_eq!(world.status.phase, Some(RolloutPhase::Degraded), "{:?}", world.status.message);
    assert_eq!(world.canary_weight(), 0);
    assert!(world.status.stable_revision.as_deref() != world.status.canary_revision.as_deref());
    world.status.abort.clone().expect("aborted").message
}

#[test]
fn a_successful_phase_written_over_failing_measurements_is_not_believed() {
    let (mut world, name, spec) = at_analysis();
    let forged = status(&world, &[0.2, 0.3, 0.25], AnalysisPhase::Successful);
    let clock = Clock::at(world.now + Duration::minutes(3));
    let state = assess(&name, true, &spec, Some(&forged), None, clock);
    observe(&mut world, state);
    let message = aborted_with(&mut world, "AnalysisRunDistrusted");
    assert!(message.contains("records Successful, but its measurements say Failed"), "{message}");
    assert_ne!(world.status.history[0].outcome, RolloutOutcome::Promoted);
}

#[test]
fn the_same_measurements_with_their_own_phase_pass() {
    let (mut world, name, spec) = at_analysis();
    let honest = status(&world, &[0.001, 0.002, 0.001], AnalysisPhase::Successful);
    let clock = Clock::at(world.now + Duration::minutes(3));
    let state = assess(&name, true, &spec, Some(&honest), None, clock);
    observe(&mut world, state);
    world.settle();
    assert_eq!(world.status.stable_revision, Some(world.revision()), "{:?}", world.status.message);
}

#[test]
fn a_run_whose_spec_was_changed_is_not_believed() {
    let (mut world, name, mut spec) = at_analysis();
    let prometheus = spec.metrics[0].provider.prometheus.as_mut().unwrap();
    prometheus.address = "http://elsewhere:9090".into();
    let honest = status(&world, &[0.001, 0.002, 0.001], AnalysisPhase::Successful);
    let state = assess(&name, true, &spec, Some(&honest), None, Clock::at(world.now));
    observe(&mut world, state);
    let message = aborted_with(&mut world, "AnalysisRunDistrusted");
    assert!(message.contains("spec was changed after Bellwether created it"), "{message}");
}

#[test]
fn a_run_terminated_by_someone_else_is_not_a_pass() {
    let (mut world, name, mut spec) = at_analysis();
    spec.terminate = true;
    let terminated = AnalysisRunStatus {
        phase: Some(AnalysisPhase::Successful),
        message: Some("terminated: 1 of 1 metrics running".into()),
        ..status(&world, &[0.001], AnalysisPhase::Running)
    };
    let state = assess(&name, true, &spec, Some(&terminated), None, Clock::at(world.now));
    observe(&mut world, state);
    let message = aborted_with(&mut world, "AnalysisRunDistrusted");
    assert!(message.contains("terminated by someone else"), "{message}");
}

#[test]
fn a_run_that_another_rollout_owns_is_not_believed() {
    let (mut world, name, spec) = at_analysis();
    let honest = status(&world, &[0.001, 0.002, 0.001], AnalysisPhase::Successful);
    let state = assess(&name, false, &spec, Some(&honest), None, Clock::at(world.now));
    observe(&mut world, state);
    let message = aborted_with(&mut world, "AnalysisRunDistrusted");
    assert!(message.contains("is not owned by this Rollout"), "{message}");
}

#[test]
fn a_run_made_ahead_under_the_canarys_run_name_is_passed_over() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(20), analysis("error-rate")]).build());
    let canary = world.ship("web:2");
    let forged_name = format!("web-{canary}-0-step1");
    let spec: AnalysisRunSpec = serde_json::from_value(serde_json::json!({
        "metrics": error_rate_template().metrics,
        "revision": canary,
    }))
    .unwrap();
    let forged = status(&world, &[0.001, 0.002, 0.001], AnalysisPhase::Successful);
    let state = assess(&forged_name, true, &spec, Some(&forged), None, Clock::at(world.now));
    observe(&mut world, state);
    world.settle();
    let run = world.status.step_analysis_run.clone().expect("the step's own run");
    assert_eq!(run.name, format!("web-{canary}-1-step1"), "a new attempt number, past the existing run");
    assert_eq!(world.status.current_step_index, Some(1), "waiting for its own run");
}

#[test]
fn a_run_the_rollout_recorded_no_spec_for_is_not_believed() {
    let (mut world, name, spec) = at_analysis();
    // As a status written by an older Bellwether, or a rerun whose name someone took first.
    world.status.step_analysis_run.as_mut().unwrap().spec_hash = None;
    let honest = status(&world, &[0.001, 0.002, 0.001], AnalysisPhase::Successful);
    let state = assess(&name, true, &spec, Some(&honest), None, Clock::at(world.now));
    observe(&mut world, state);
    let message = aborted_with(&mut world, "AnalysisRunDistrusted");
    assert!(message.contains("this Rollout recorded no spec for it"), "{message}");
}

#[test]
fn a_run_nobody_measures_ends_the_analysis_in_error() {
    let (mut world, name, spec) = at_analysis();
    let created = world.now;
    // Due at once (no initialDelay), then a grace of three 1m intervals.
    world.advance(2.9);
    let state = assess(&name, true, &spec, None, Some(created), Clock::at(world.now));
    observe(&mut world, state);
    world.settle();
    assert_eq!(world.status.phase, Some(RolloutPhase::Progressing), "within the grace it waits");
    world.advance(0.2);
    let state = assess(&name, true, &spec, None, Some(created), Clock::at(world.now));
    observe(&mut world, state);
    world.settle();
    let abort = world.status.abort.clone().expect("aborted");
    assert!(
        abort.message.contains("error-rate: a measurement is 3m06s overdue (it has never been measured)"),
        "{}",
        abort.message
    );
    // A controller that has only just started measuring gives the run its grace again.
    let restarted = Clock { now: world.now, measuring_since: world.now - Duration::seconds(30) };
    let state = assess(&name, true, &spec, None, Some(created), restarted);
    assert_eq!(state.phase, Some(AnalysisPhase::Running), "{:?}", state.message);
}

#[test]
fn an_abort_whose_route_cannot_be_written_does_not_claim_the_traffic_is_on_stable() {
    let (mut world, _, _) = at_analysis();
    world.finish_run("step1", AnalysisPhase::Failed, "error-rate: 0.034 > max 0.01");
    // The abort's weight change is refused: the route still sends 20% to the canary.
    let decision = world.decide();
    assert_eq!(decision.actions[0], Action::SetTraffic(Traffic::split(0)));
    let message = world.status.message.clone().unwrap_or_default();
    assert!(!message.contains("all traffic on stable"), "{message}");
    assert!(
        message.contains("moving all traffic to stable") && message.contains("canary=20 stable=80"),
        "{message}"
    );
    world.settle();
    let message = world.status.message.clone().unwrap_or_default();
    assert!(message.contains("all traffic on stable"), "once the route is read back at 0: {message}");
}

#[test]
fn a_paused_canary_puts_hand_edited_weights_back() {
    let steps = vec![set_weight(10), set_weight(50), pause_until_promoted()];
    let mut world = World::deployed(rollout().steps(steps).build());
    world.ship("web:2");
    world.settle();
    world.spec.paused = true;
    world.settle();
    assert_eq!(world.canary_weight(), 50);
    world.cluster.observation.routes[0].weights = Some(RouteWeights { canary: 90, stable: 10 });
    let decision = world.step();
    assert_eq!(decision.actions, vec![Action::SetTraffic(Traffic::split(50))]);
    assert_eq!(world.canary_weight(), 50);
    assert_eq!(world.status.phase, Some(RolloutPhase::Paused));
}

#[test]
fn an_empty_alert_matcher_is_an_invalid_spec() {
    let mut world = World::deployed(rollout().build());
    world.spec.strategy.canary.abort_on_alerts =
        vec![AlertMatcher { match_labels: Default::default(), any_namespace: false }];
    world.settle();
    let message = world.status.message.clone().unwrap_or_default();
    assert!(message.contains("abortOnAlerts[0].matchLabels: must name at least one label"), "{message}");
}

/// What someone with write access to the run, or to the route, does between two measurements.
#[derive(Clone, Debug)]
enum Edit {
    Nothing,
    WritePhase(AnalysisPhase),
    PointElsewhere,
    Terminate,
    Disown,
    SetRouteWeight(i32),
}

fn edits() -> impl Strategy<Value = Edit> {
    prop_oneof![
        6 => Just(Edit::Nothing),
        2 => prop_oneof![
            Just(AnalysisPhase::Successful),
            Just(AnalysisPhase::Inconclusive),
            Just(AnalysisPhase::Running),
            Just(AnalysisPhase::Pending),
        ].prop_map(Edit::WritePhase),
        1 => Just(Edit::PointElsewhere),
        1 => Just(Edit::Terminate),
        1 => Just(Edit::Disown),
        1 => (0..=100i32).prop_map(Edit::SetRouteWeight),
    ]
}

/// Measured error ratios: healthy, breaching, and what a broken query returns.
fn ratios() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        4 => (0.0..0.009f64).prop_map(Some),
        3 => (0.011..1.0f64).prop_map(Some),
        1 => Just(Some(f64::INFINITY)),
        1 => Just(Some(f64::NEG_INFINITY)),
        1 => Just(Some(f64::NAN)),
        1 => Just(None),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// However the run's status, spec and owner and the route are edited between measurements,
    /// the canary moves past its analysis step only when the measurements themselves pass it.
    #[test]
    fn only_passing_measurements_move_the_canary_past_its_analysis(
        samples in prop::collection::vec((ratios(), edits()), 1..25),
    ) {
        let spec = rollout().steps(vec![set_weight(20), analysis("breach"), set_weight(60)]).build();
        let mut world = World::new(spec, at_minute(0.0));
        let template: AnalysisTemplateSpec = serde_json::from_value(serde_json::json!({"metrics": [{
            "name": "error-rate",
            "interval": "1m",
            "count": 3,
            "provider": {"prometheus": {"address": "http://prometheus:9090", "query": "errors"}},
            "threshold": {"max": 0.01, "hysteresis": {"breachFor": "2m"}},
        }]})).unwrap();
        world.cluster.observation.templates.insert(template_ref("breach"), template);
        world.settle();
        let canary = world.ship("web:2");
        world.settle();
        let reference = world.status.step_analysis_run.clone().expect("the step's run");
        let spec = world.log.iter().find_map(|(_, a)| match a {
            Action::CreateAnalysisRun(r) if r.name == reference.name => Some(r.spec.clone()),
            _ => None,
        }).expect("created");
        let created = world.now;
        let mut status: Option<AnalysisRunStatus> = None;
        for (ratio, edit) in samples {
            world.advance(1.0);
            let measurement = Measurement { at: world.now, value: ratio, ..Measurement::default() };
            status = Some(bellwether::engine::record(&spec, status.as_ref(), vec![("error-rate".into(), measurement)], Clock::at(world.now)));
            let measurements = status.as_ref().unwrap().metric_results[0].measurements.clone();
            let truth = bellwether::engine::judge_metric(&spec.metrics[0], &measurements, created, None);
            let (mut seen_spec, mut seen_status, mut owned) = (spec.clone(), status.clone().unwrap(), true);
            match edit {
                Edit::Nothing => {}
                Edit::WritePhase(phase) => seen_status.phase = Some(phase),
                Edit::PointElsewhere => {
                    seen_spec.metrics[0].provider.prometheus.as_mut().unwrap().address = "http://elsewhere".into()
                }
                Edit::Terminate => seen_spec.terminate = true,
                Edit::Disown => owned = false,
                Edit::SetRouteWeight(w) => {
                    world.cluster.observation.routes[0].weights = Some(RouteWeights { canary: w, stable: 100 - w })
                }
            }
            let state = assess(&reference.name, owned, &seen_spec, Some(&seen_status), Some(created), Clock::at(world.now));
            observe(&mut world, state);
            world.step();
            world.pods_become_ready();
            let advanced = world.status.current_step_index.is_some_and(|i| i > 1)
                || world.status.stable_revision.as_deref() == Some(canary.as_str());
            prop_assert!(
                !advanced || truth.phase == AnalysisPhase::Successful,
                "advanced past the analysis on {:?}: {:?}", truth.phase, world.status.message
            );
            if world.status.abort.is_some() || advanced {
                break;
            }
        }
    }
}
