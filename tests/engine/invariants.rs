//! Property tests: random step lists, random readiness and Gateway timelines, random analysis
//! outcomes and random user actions, with every decision checked against the engine's invariants.

use super::fixtures::*;
use super::world::World;
use bellwether::api::{
    AnalysisFailurePolicy, AnalysisPhase, CanaryStep, FiringAlert, InconclusivePolicy, RolloutSpec, ScaleDown,
};
use bellwether::engine::{Decision, Observation, Plan, UserAction, WorkloadState};
use bellwether::sim::invariants::{self, Decided};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum StepKind {
    Weight(i32),
    Pause(Option<u32>),
    Analysis,
    /// Adds header route `h<n>`, or removes it (`true`).
    HeaderRoute(u8, bool),
    /// Sets the mirror's percent, or removes it.
    Mirror(Option<i32>),
}

#[derive(Clone, Debug)]
enum Happening {
    /// Seconds pass.
    Tick(u32),
    /// Every ReplicaSet gets all its pods.
    PodsReady,
    /// The newest ReplicaSet gets some of its pods.
    SomePodsReady(i32),
    /// The newest ReplicaSet loses its pods.
    PodsLost,
    /// A Gateway falls one generation behind on every route.
    GatewayLags,
    /// A running analysis ends.
    RunEnds(AnalysisPhase),
    /// A person sends a request; `stale` ones name an older step.
    Request(UserAction, bool),
    /// One of a few alerts fires and its abort request arrives.
    Alert(u8),
    /// The template changes to another image (0 is the stable one).
    Ship(u8),
    TogglePaused,
    /// An autoscaler sets `spec.replicas`, to zero sometimes.
    Autoscale(i32),
    /// Someone edits Bellwether's rules or mirror filters on every route.
    RoutesEdited,
    /// Every Gateway refuses the routes' current generation.
    GatewayRefuses,
}

fn step_kind() -> impl Strategy<Value = StepKind> {
    prop_oneof![
        3 => (0..=100i32).prop_map(StepKind::Weight),
        1 => prop::option::of(0..20u32).prop_map(StepKind::Pause),
        2 => Just(StepKind::Analysis),
        1 => (0..3u8, prop::bool::weighted(0.3)).prop_map(|(name, remove)| StepKind::HeaderRoute(name, remove)),
        1 => prop::option::weighted(0.7, 1..=100i32).prop_map(StepKind::Mirror),
    ]
}

fn user_action() -> impl Strategy<Value = UserAction> {
    prop_oneof![
        Just(UserAction::Promote),
        Just(UserAction::PromoteFull),
        Just(UserAction::Abort),
        Just(UserAction::Retry),
        Just(UserAction::Pause),
        Just(UserAction::Resume),
    ]
}

fn happening() -> impl Strategy<Value = Happening> {
    prop_oneof![
        6 => (0..900u32).prop_map(Happening::Tick),
        5 => Just(Happening::PodsReady),
        2 => (0..10i32).prop_map(Happening::SomePodsReady),
        1 => Just(Happening::PodsLost),
        2 => Just(Happening::GatewayLags),
        4 => prop_oneof![
            3 => Just(AnalysisPhase::Successful),
            1 => Just(AnalysisPhase::Failed),
            1 => Just(AnalysisPhase::Inconclusive),
            1 => Just(AnalysisPhase::Error),
        ].prop_map(Happening::RunEnds),
        2 => (user_action(), any::<bool>()).prop_map(|(a, stale)| Happening::Request(a, stale)),
        1 => (0..4u8).prop_map(Happening::Alert),
        1 => (0..4u8).prop_map(Happening::Ship),
        1 => Just(Happening::TogglePaused),
        2 => prop_oneof![1 => Just(0), 6 => 1..=20i32].prop_map(Happening::Autoscale),
        1 => Just(Happening::RoutesEdited),
        1 => Just(Happening::GatewayRefuses),
    ]
}

#[derive(Clone, Debug)]
struct Scenario {
    replicas: i32,
    steps: Vec<StepKind>,
    background: Option<i32>,
    pause_on_failure: bool,
    abort_on_inconclusive: bool,
    /// `maxAlertAbortsPerHour`, or the default.
    alert_limit: Option<i32>,
    dynamic_stable_scale: bool,
    /// A `workloadRef` to a Deployment of the Rollout's replicas, scaled down as this says, instead
    /// of an embedded template.
    workload: Option<ScaleDown>,
    /// Each entry: what happens, then how many of the decision's actions the controller manages
    /// to carry out before a (simulated) failure; 5 means all.
    timeline: Vec<(Happening, usize)>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        1..=15i32,
        prop::collection::vec(step_kind(), 1..7),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(0..3i32),
        any::<bool>(),
        prop::option::of(prop_oneof![
            Just(ScaleDown::Never),
            Just(ScaleDown::OnSuccess),
            Just(ScaleDown::Progressively)
        ]),
    )
        .prop_flat_map(
            |(
                replicas,
                steps,
                bg,
                pause_on_failure,
                abort_on_inconclusive,
                alert_limit,
                dynamic,
                workload,
            )| {
                let n = steps.len() as i32;
                (
                    Just(replicas),
                    Just(steps),
                    if bg { (0..n).prop_map(Some).boxed() } else { Just(None).boxed() },
                    Just(pause_on_failure),
                    Just(abort_on_inconclusive),
                    Just(alert_limit),
                    Just(dynamic),
                    Just(workload),
                    prop::collection::vec(
                        (happening(), prop_oneof![4 => Just(5usize), 1 => 0..5usize]),
                        1..60,
                    ),
                )
            },
        )
        .prop_map(
            |(
                replicas,
                steps,
                background,
                pause_on_failure,
                abort_on_inconclusive,
                alert_limit,
                dynamic_stable_scale,
                workload,
                timeline,
            )| {
                Scenario {
                    replicas,
                    steps,
                    background,
                    pause_on_failure,
                    abort_on_inconclusive,
                    alert_limit,
                    dynamic_stable_scale,
                    workload,
                    timeline,
                }
            },
        )
}

fn spec_of(scenario: &Scenario) -> RolloutSpec {
    let steps: Vec<CanaryStep> = scenario
        .steps
        .iter()
        .map(|s| match s {
            StepKind::Weight(w) => set_weight(*w),
            StepKind::Pause(None) => pause_until_promoted(),
            StepKind::Pause(Some(m)) => pause_for(&format!("{m}m")),
            StepKind::Analysis => analysis("error-rate"),
            StepKind::HeaderRoute(name, remove) => header_route(&format!("h{name}"), !remove),
            StepKind::Mirror(percent) => mirror_route("shadow", *percent),
        })
        .collect();
    let mut builder = rollout().replicas(scenario.replicas).steps(steps);
    if let Some(start) = scenario.background {
        builder = builder.background("error-rate", start);
    }
    if scenario.pause_on_failure {
        builder = builder.on_failure(AnalysisFailurePolicy::Pause);
    }
    if scenario.abort_on_inconclusive {
        builder = builder.on_inconclusive(InconclusivePolicy::Abort);
    }
    if let Some(scale_down) = scenario.workload {
        builder = builder.workload(scale_down);
    }
    let alert_limit = scenario.alert_limit;
    let dynamic = scenario.dynamic_stable_scale;
    builder
        .edit(|spec| {
            spec.strategy.canary.max_alert_aborts_per_hour = alert_limit;
            spec.strategy.canary.dynamic_stable_scale = dynamic;
        })
        .build()
}

/// Checks one decision, taken on `observation` from `world.status` (the input status).
fn check(world: &World, observation: &Observation, decision: &Decision) -> Result<(), TestCaseError> {
    invariants::check(&Decided {
        name: "web",
        spec: &world.spec,
        input: &world.status,
        observation,
        now: world.now,
        decision,
    })
    .map_err(TestCaseError::fail)
}

fn happen(world: &mut World, happening: &Happening) {
    let newest = world
        .cluster
        .observation
        .replica_sets
        .iter()
        .max_by_key(|rs| rs.created_at)
        .map(|rs| rs.revision.clone());
    match happening {
        Happening::Tick(seconds) => world.advance(f64::from(*seconds) / 60.0),
        Happening::PodsReady => world.pods_become_ready(),
        Happening::SomePodsReady(n) => {
            if let Some(revision) = newest {
                world.pods_become_ready_up_to(&revision, *n);
            }
        }
        Happening::PodsLost => {
            if let Some(revision) = newest {
                world.pods_become_ready_up_to(&revision, 0);
            }
        }
        Happening::GatewayLags => {
            for route in &mut world.cluster.observation.routes {
                for parent in &mut route.parents {
                    parent.observed_generation = route.generation - 1;
                }
            }
        }
        Happening::RunEnds(phase) => {
            if let Some(run) = world
                .cluster
                .observation
                .analysis_runs
                .iter_mut()
                .find(|r| r.phase == Some(AnalysisPhase::Running) && !r.terminating)
            {
                run.phase = Some(*phase);
                run.message = Some(format!("{phase:?}"));
            }
        }
        Happening::Request(action, stale) => {
            world.request(*action, "prop");
            if *stale && let Some(request) = world.cluster.observation.requests.last_mut() {
                request.step = Some(request.step.unwrap_or(0) + 1);
            }
        }
        Happening::Alert(n) => {
            world.alert(&FiringAlert {
                name: format!("Alert{n}"),
                labels: [("alertname".to_string(), format!("Alert{n}"))].into(),
                generator_url: String::new(),
                starts_at: None,
            });
        }
        Happening::Ship(image) => {
            world.ship(&format!("web:{}", image + 1));
        }
        Happening::TogglePaused => world.spec.paused = !world.spec.paused,
        Happening::Autoscale(replicas) => world.spec.replicas = *replicas,
        Happening::RoutesEdited => {
            for route in &mut world.cluster.observation.routes {
                route.exposure = None;
            }
        }
        Happening::GatewayRefuses => {
            for route in &mut world.cluster.observation.routes {
                for parent in &mut route.parents {
                    parent.refusal = Some("Accepted=False, UnsupportedValue".into());
                }
            }
        }
    }
    if !matches!(happening, Happening::GatewayRefuses) {
        for route in &mut world.cluster.observation.routes {
            for parent in &mut route.parents {
                parent.refusal = None;
            }
        }
    }
    // Gateways catch up again unless they were just told to lag.
    if !matches!(happening, Happening::GatewayLags) {
        for route in &mut world.cluster.observation.routes {
            for parent in &mut route.parents {
                parent.observed_generation = route.generation;
            }
        }
    }
}

/// Runs a scenario, checking every decision.
fn run(scenario: &Scenario) -> Result<(), TestCaseError> {
    let mut world = World::new(spec_of(scenario), at_minute(0.0));
    if scenario.workload.is_some() {
        // The takeover itself is part of the timeline, checked like every later decision; new
        // revisions come from the timeline's `Ship`s.
        let template = rollout().build().template.expect("the fixture's template");
        let replicas = scenario.replicas;
        world.cluster.observation.workload = Some(WorkloadState { template, replicas, available: replicas });
    } else {
        world.settle();
        world.ship("web:2");
    }
    for (happening, applied) in &scenario.timeline {
        happen(&mut world, happening);
        let observation = world.cluster.observation.clone();
        let before = world.status.clone();
        let decision = world.decide();
        world.status = before;
        check(&world, &observation, &decision)?;
        world.status = decision.status.clone();
        for action in decision.actions.iter().take(*applied) {
            world.apply(action);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_decision_keeps_the_invariants(scenario in scenario()) {
        run(&scenario)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Arbitrary, even invalid, specs never panic and never act when invalid.
    #[test]
    fn no_spec_panics_and_invalid_specs_touch_nothing(
        weights in prop::collection::vec(-50..200i32, 0..6),
        replicas in -5..30i32,
        deadline in prop::option::of(-10..1000i32),
        pause in "[-0-9a-z]{0,6}",
    ) {
        let mut steps: Vec<CanaryStep> = weights.iter().map(|w| set_weight(*w)).collect();
        steps.push(pause_for(&pause));
        let spec = rollout().image("web:2").replicas(replicas).steps(steps).edit(|s| s.progress_deadline_seconds = deadline).build();
        let mut world = World::deployed(rollout().build());
        world.spec = spec;
        let valid = Plan::from_spec(&world.spec, &world.cluster.observation.templates).is_ok();
        let decision = world.decide();
        if !valid {
            prop_assert!(decision.actions.is_empty());
            prop_assert!(world.status.conditions.iter().any(|c| c.type_ == "InvalidSpec" && c.status == "True"));
        }
    }
}

/// Found by the property above: a background analysis fails (pausing the rollout), the template
/// moves to another revision and back, and time passes.
#[test]
fn a_failed_background_run_then_a_revision_round_trip_keeps_the_invariants() {
    let scenario = Scenario {
        replicas: 1,
        steps: vec![StepKind::Pause(Some(3)), StepKind::Pause(None)],
        background: Some(1),
        pause_on_failure: true,
        abort_on_inconclusive: false,
        alert_limit: None,
        dynamic_stable_scale: false,
        workload: None,
        timeline: vec![
            (Happening::Tick(0), 5),
            (Happening::Tick(180), 5),
            (Happening::RunEnds(AnalysisPhase::Failed), 5),
            (Happening::Ship(2), 5),
            (Happening::TogglePaused, 5),
            (Happening::TogglePaused, 5),
            (Happening::Ship(1), 5),
            (Happening::Tick(197), 5),
        ],
    };
    run(&scenario).unwrap();
}

/// Found by the property above: paused at `setWeight 96`, a promote moves the canary on to
/// `setWeight 73`, and a hand edit of the routes is put back while still paused.
#[test]
fn a_promote_down_to_a_lower_weight_while_paused_keeps_the_invariants() {
    let scenario = Scenario {
        replicas: 13,
        steps: vec![StepKind::Weight(96), StepKind::Weight(73)],
        background: None,
        pause_on_failure: false,
        abort_on_inconclusive: false,
        alert_limit: Some(2),
        dynamic_stable_scale: false,
        workload: None,
        timeline: vec![
            (Happening::TogglePaused, 5),
            (Happening::TogglePaused, 5),
            (Happening::PodsReady, 5),
            (Happening::TogglePaused, 5),
            (Happening::Request(UserAction::Promote, false), 5),
            (Happening::RoutesEdited, 5),
        ],
    };
    run(&scenario).unwrap();
}

/// Found by the property above: paused at the last step, a promote moves the canary past it, and
/// a hand edit of the routes is put back to the last step's weight, still in force until the
/// promotion moves the traffic.
#[test]
fn a_promote_past_the_last_step_while_paused_keeps_the_invariants() {
    let scenario = Scenario {
        replicas: 5,
        steps: vec![StepKind::Analysis, StepKind::Weight(50)],
        background: None,
        pause_on_failure: false,
        abort_on_inconclusive: true,
        alert_limit: Some(2),
        dynamic_stable_scale: false,
        workload: None,
        timeline: vec![
            (Happening::Tick(0), 5),
            (Happening::RunEnds(AnalysisPhase::Successful), 5),
            (Happening::PodsReady, 5),
            (Happening::Autoscale(7), 5),
            (Happening::RoutesEdited, 5),
            (Happening::TogglePaused, 5),
            (Happening::Request(UserAction::Promote, false), 5),
            (Happening::RoutesEdited, 5),
        ],
    };
    run(&scenario).unwrap();
}
