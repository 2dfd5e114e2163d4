//! The kstatus conditions at every phase: `Ready` only when Healthy with all traffic verified on
//! stable, `Reconciling` while work is in flight (the step as its reason), `Stalled` when Degraded
//! or InvalidSpec; exactly one of the three True at a time.

use super::fixtures::*;
use super::world::World;
use bellwether::api::*;
use bellwether::engine::UserAction;

/// The True one of `Ready`, `Reconciling` and `Stalled`, with its reason.
fn kstatus(world: &World) -> (String, String) {
    let conditions = &world.status.conditions;
    let get = |kind: &str| conditions.iter().find(|c| c.type_ == kind).unwrap_or_else(|| panic!("no {kind}"));
    let true_ones: Vec<&Condition> = ["Ready", "Reconciling", "Stalled"]
        .iter()
        .map(|kind| get(kind))
        .filter(|c| c.status == "True")
        .collect();
    assert_eq!(true_ones.len(), 1, "exactly one is True: {conditions:?}");
    (true_ones[0].type_.clone(), true_ones[0].reason.clone())
}

fn is(kind: &str, reason: &str) -> (String, String) {
    (kind.to_string(), reason.to_string())
}

#[test]
fn every_phase_has_its_kstatus_conditions() {
    let mut world =
        World::new(rollout().steps(vec![set_weight(20), pause_until_promoted()]).build(), at_minute(0.0));
    world.step();
    assert_eq!(world.status.phase, Some(RolloutPhase::Progressing));
    assert_eq!(kstatus(&world), is("Reconciling", "StablePods"), "a first deploy, pods not available");
    assert_eq!(world.status.observed_generation, Some(1));

    world.pods_become_ready();
    world.settle();
    assert_eq!(world.status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(kstatus(&world), is("Ready", "Healthy"));

    world.ship("web:2");
    world.step();
    assert_eq!(world.status.phase, Some(RolloutPhase::Progressing));
    assert_eq!(kstatus(&world), is("Reconciling", "Step1Of2"), "a canary waiting for its pods");

    world.pods_become_ready();
    world.settle();
    assert_eq!(world.status.phase, Some(RolloutPhase::Paused));
    assert_eq!(kstatus(&world), is("Reconciling", "Step2Of2"), "paused for a person: not Ready, not Stalled");

    world.request(UserAction::Abort, "ops");
    world.settle();
    assert_eq!(world.status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(kstatus(&world), is("Stalled", "UserAbort"));

    world.request(UserAction::Retry, "ops");
    world.request(UserAction::PromoteFull, "ops");
    world.settle();
    assert_eq!(world.status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(kstatus(&world), is("Ready", "Healthy"), "promoted");

    world.spec.strategy.canary.steps = vec![set_weight(150)];
    world.step();
    assert_eq!(kstatus(&world), is("Stalled", "InvalidSpec"));
    let ready = world.status.conditions.iter().find(|c| c.type_ == "Ready").expect("Ready");
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "InvalidSpec"));
}

#[test]
fn healthy_is_ready_only_once_the_routes_carry_all_traffic_to_stable() {
    let mut world = World::deployed(rollout().build());
    world.cluster.observation.routes[0].weights =
        Some(bellwether::engine::RouteWeights { canary: 10, stable: 90 });
    world.decide();
    assert_eq!(kstatus(&world), is("Reconciling", "Traffic"), "a route edited by hand is put back first");
}
