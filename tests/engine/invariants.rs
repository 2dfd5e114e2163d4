//! Property tests: random step lists, random readiness and Gateway timelines, random analysis
//! outcomes and random user actions, with every decision checked against the engine's invariants.

use super::fixtures::*;
use super::world::World;
use bellwether::api::{AnalysisFailurePolicy, AnalysisPhase, CanaryStep, InconclusivePolicy, RolloutSpec};
use bellwether::engine::{Action, Decision, Input, Observation, UserAction, decide, validate};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum StepKind {
    Weight(i32),
    Pause(Option<u32>),
    Analysis,
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
    /// The template changes to another image (0 is the stable one).
    Ship(u8),
    TogglePaused,
}

fn step_kind() -> impl Strategy<Value = StepKind> {
    prop_oneof![
        3 => (0..=100i32).prop_map(StepKind::Weight),
        1 => prop::option::of(0..20u32).prop_map(StepKind::Pause),
        2 => Just(StepKind::Analysis),
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
        1 => (0..4u8).prop_map(Happening::Ship),
        1 => Just(Happening::TogglePaused),
    ]
}

#[derive(Clone, Debug)]
struct Scenario {
    replicas: i32,
    steps: Vec<StepKind>,
    background: Option<i32>,
    pause_on_failure: bool,
    abort_on_inconclusive: bool,
    /// Each entry: what happens, then how many of the decision's actions the controller manages
    /// to carry out before a (simulated) failure; 5 means all.
    timeline: Vec<(Happening, usize)>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (1..=15i32, prop::collection::vec(step_kind(), 1..7), any::<bool>(), any::<bool>(), any::<bool>())
        .prop_flat_map(|(replicas, steps, bg, pause_on_failure, abort_on_inconclusive)| {
            let n = steps.len() as i32;
            (
                Just(replicas),
                Just(steps),
                if bg { (0..n).prop_map(Some).boxed() } else { Just(None).boxed() },
                Just(pause_on_failure),
                Just(abort_on_inconclusive),
                prop::collection::vec((happening(), prop_oneof![4 => Just(5usize), 1 => 0..5usize]), 1..60),
            )
        })
        .prop_map(|(replicas, steps, background, pause_on_failure, abort_on_inconclusive, timeline)| {
            Scenario { replicas, steps, background, pause_on_failure, abort_on_inconclusive, timeline }
        })
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
    builder.build()
}

/// Checks one decision, taken on `observation` from `world.status` (the input status).
fn check(world: &World, observation: &Observation, decision: &Decision) -> Result<(), TestCaseError> {
    let input = &world.status;
    let output = &decision.status;
    let plan = validate(&world.spec, &observation.templates).expect("generated specs are valid");
    let n = plan.steps.len();
    let revision = world.revision();

    // Weights on a route always sum to 100.
    for action in &decision.actions {
        if let Action::SetWeights { canary, stable } = action {
            prop_assert_eq!(canary + stable, 100, "weights must sum to 100: {:?}", action);
        }
    }

    // Canary weight never exceeds the current step's weight.
    let in_flight = output.canary_revision.is_some() && output.abort.is_none() && !output.progress.promoting;
    let limit = match output.current_step_index {
        Some(i) if in_flight && (i as usize) < n => plan.weight_at(i as usize),
        _ => 0,
    };
    for action in &decision.actions {
        if let Action::SetWeights { canary, .. } = action {
            prop_assert!(
                *canary <= limit,
                "canary weight {} exceeds the step's {} ({:?})",
                canary,
                limit,
                output.step
            );
        }
    }

    // No weight goes to a revision without available pods.
    for action in &decision.actions {
        if let Action::SetWeights { canary, .. } = action
            && *canary > 0
        {
            prop_assert!(
                observation.available(&revision) > 0,
                "weight {} to canary {} with no available pods",
                canary,
                revision
            );
            prop_assert_eq!(
                observation.services.canary.as_deref(),
                Some(revision.as_str()),
                "weight to a canary Service that selects another revision"
            );
        }
    }

    // An abort's first mutation moves the weight to stable.
    if input.abort.is_none() && output.abort.is_some() {
        let traffic_already_off = observation.routes.iter().all(|r| r.weights.is_some_and(|w| w.canary == 0));
        match decision.actions.first() {
            Some(Action::SetWeights { canary: 0, stable: 100 }) => {}
            first => prop_assert!(
                traffic_already_off
                    && !decision.actions.iter().any(|a| matches!(a, Action::SetWeights { .. })),
                "an abort began with {:?}",
                first
            ),
        }
    }

    // Deciding again on the same input yields no new action and no new event.
    let again = decide(Input {
        name: "web",
        generation: Some(1),
        spec: &world.spec,
        status: output,
        observation,
        now: world.now,
    });
    prop_assert_eq!(&again.status, output, "a second decision changed the status");
    prop_assert!(again.events.is_empty(), "a second decision emitted events: {:?}", again.events);
    for action in &again.actions {
        prop_assert!(decision.actions.contains(action), "a second decision added {:?}", action);
    }

    // The rollout never moves past an analysis step whose run is not Successful, unless a person
    // promoted it.
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
            if matches!(plan.steps[k], bellwether::engine::Step::Analysis(_)) {
                let slot = format!("-step{k}");
                let passed = observation.analysis_runs.iter().any(|r| {
                    r.name.starts_with(&format!("web-{canary}-"))
                        && (r.name.ends_with(&slot) || r.name.contains(&format!("{slot}-rerun")))
                        && r.phase == Some(AnalysisPhase::Successful)
                });
                prop_assert!(passed, "moved past analysis step {} without a Successful run", k + 1);
            }
        }
    }

    prop_assert!(output.phase.is_some(), "every decision sets a phase");
    Ok(())
}

fn happen(world: &mut World, happening: &Happening) {
    let newest =
        world.observation.replica_sets.iter().max_by_key(|rs| rs.created_at).map(|rs| rs.revision.clone());
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
            for route in &mut world.observation.routes {
                for parent in &mut route.parents {
                    parent.observed_generation = route.generation - 1;
                }
            }
        }
        Happening::RunEnds(phase) => {
            if let Some(run) = world
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
            if *stale && let Some(request) = world.observation.requests.last_mut() {
                request.step = Some(request.step.unwrap_or(0) + 1);
            }
        }
        Happening::Ship(image) => {
            world.ship(&format!("web:{}", image + 1));
        }
        Happening::TogglePaused => world.spec.paused = !world.spec.paused,
    }
    // Gateways catch up again unless they were just told to lag.
    if !matches!(happening, Happening::GatewayLags) {
        for route in &mut world.observation.routes {
            for parent in &mut route.parents {
                parent.observed_generation = route.generation;
            }
        }
    }
}

/// Runs a scenario, checking every decision.
fn run(scenario: &Scenario) -> Result<(), TestCaseError> {
    let mut world = World::deployed(spec_of(scenario));
    world.ship("web:2");
    for (happening, applied) in &scenario.timeline {
        happen(&mut world, happening);
        let observation = world.observation.clone();
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
        let valid = validate(&world.spec, &world.observation.templates).is_ok();
        let decision = world.decide();
        if !valid {
            prop_assert!(decision.actions.is_empty());
            prop_assert!(world.status.conditions.iter().any(|c| c.type_ == "InvalidSpec" && c.status == "True"));
        }
    }
}
