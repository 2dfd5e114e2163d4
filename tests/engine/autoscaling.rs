//! An autoscaler owning `spec.replicas`, scale to zero, and `dynamicStableScale`: stable and canary
//! follow the replicas at every step, and weight never moves to pods that are not there.

use super::fixtures::*;
use super::world::World;
use bellwether::api::*;
use bellwether::engine::{Action, Traffic, UserAction};

fn scale(revision: &str, replicas: i32) -> Action {
    Action::ScaleReplicaSet { revision: revision.into(), replicas }
}

fn weights(canary: i32) -> Action {
    Action::SetTraffic(Traffic::split(canary))
}

fn message(world: &World) -> String {
    world.status.message.clone().unwrap_or_default()
}

fn dynamic() -> RolloutBuilder {
    rollout().edit(|spec| spec.strategy.canary.dynamic_stable_scale = true)
}

/// A canary of `web:2` at its first step's weight, every pod available.
fn at_first_step(builder: RolloutBuilder) -> (World, String, String) {
    let mut world = World::deployed(builder.build());
    let stable = world.revision();
    let canary = world.ship("web:2");
    world.settle();
    (world, stable, canary)
}

#[test]
fn stable_and_canary_follow_an_autoscaler_mid_canary() {
    let (mut world, stable, canary) =
        at_first_step(rollout().steps(vec![set_weight(25), pause_until_promoted()]));
    assert_eq!((world.replicas_of(&stable), world.replicas_of(&canary)), (Some(10), Some(3)));

    world.spec.replicas = 20;
    let d = world.step();
    assert!(d.actions.contains(&scale(&canary, 5)), "ceil(20 × 25%) canary pods: {:?}", d.actions);
    assert!(d.actions.contains(&scale(&stable, 20)), "stable follows the autoscaler: {:?}", d.actions);
    assert!(
        !d.actions.iter().any(|a| matches!(a, Action::SetTraffic(_))),
        "the weight stays: {:?}",
        d.actions
    );
    world.settle();

    world.spec.replicas = 4;
    let d = world.step();
    assert_eq!(d.actions, vec![scale(&canary, 1), scale(&stable, 4)]);
    assert_eq!(world.status.phase, Some(RolloutPhase::Paused), "still at the pause step");
}

#[test]
fn the_scale_subresource_reads_pods_of_every_revision_and_the_selector() {
    let (world, _, _) = at_first_step(rollout().steps(vec![set_weight(25), pause_until_promoted()]));
    // The status of a decision counts the ReplicaSets as observed: 10 stable and 3 canary pods.
    assert_eq!(world.status.replicas, Some(13));
    assert_eq!(world.status.selector.as_deref(), Some("app=web"));
}

#[test]
fn scaled_to_zero_mid_canary_holds_the_canary_with_all_traffic_on_stable() {
    let (mut world, stable, canary) =
        at_first_step(rollout().steps(vec![set_weight(30), pause_until_promoted()]));
    assert_eq!(world.canary_weight(), 30);

    world.spec.replicas = 0;
    let d = world.step();
    assert_eq!(d.actions.first(), Some(&weights(0)), "traffic leaves the canary first: {:?}", d.actions);
    assert!(
        d.actions.contains(&scale(&canary, 0)) && d.actions.contains(&scale(&stable, 0)),
        "{:?}",
        d.actions
    );
    assert_eq!(world.status.phase, Some(RolloutPhase::Paused));
    assert!(world.status.pause_conditions.iter().any(|c| c.reason == PauseReason::ScaledToZero));
    assert!(message(&world).contains("spec.replicas is 0"), "{}", message(&world));
    assert_eq!(world.status.stable_revision.as_deref(), Some(stable.as_str()), "nothing was promoted");
    world.settle();

    // Longer than the progress deadline at zero: nothing aborts.
    world.advance(30.0);
    world.settle();
    assert_eq!(world.status.abort, None);

    world.spec.replicas = 10;
    world.settle();
    let reasons: Vec<PauseReason> = world.status.pause_conditions.iter().map(|c| c.reason).collect();
    assert_eq!(reasons, vec![PauseReason::PauseStep], "the canary is back at its pause step");
    assert_eq!(world.canary_weight(), 30, "with its weight");
    assert_eq!((world.replicas_of(&stable), world.replicas_of(&canary)), (Some(10), Some(3)));
}

#[test]
fn a_new_revision_at_zero_replicas_waits_instead_of_skipping_the_canary() {
    let mut world =
        World::deployed(rollout().replicas(0).steps(vec![set_weight(50), pause_until_promoted()]).build());
    let stable = world.revision();
    let canary = world.ship("web:2");
    world.settle();
    assert_eq!(world.status.stable_revision.as_deref(), Some(stable.as_str()));
    assert_eq!(world.status.canary_revision.as_deref(), Some(canary.as_str()));
    assert!(world.status.pause_conditions.iter().any(|c| c.reason == PauseReason::ScaledToZero));

    world.spec.replicas = 2;
    world.settle();
    assert_eq!(world.canary_weight(), 50);
    assert_eq!(world.status.stable_revision.as_deref(), Some(stable.as_str()), "judged first, then promoted");
}

#[test]
fn dynamic_stable_scale_scales_stable_down_once_the_routes_carry_the_canary_weight() {
    let (world, stable, canary) =
        at_first_step(dynamic().steps(vec![set_weight(40), pause_until_promoted()]));
    assert_eq!(world.canary_weight(), 40);
    assert_eq!(world.replicas_of(&canary), Some(4));
    assert_eq!(world.replicas_of(&stable), Some(6), "ceil(10 × 60%)");
    assert_eq!(world.status.replicas, Some(10), "the canary costs no extra pods");
}

#[test]
fn dynamic_stable_scale_moves_weight_back_only_as_stable_pods_become_available() {
    let (mut world, stable, canary) = at_first_step(dynamic().steps(vec![
        set_weight(60),
        pause_until_promoted(),
        set_weight(20),
        pause_until_promoted(),
    ]));
    assert_eq!(world.replicas_of(&stable), Some(4));

    world.request(UserAction::Promote, "dana");
    let d = world.step();
    assert!(d.actions.contains(&scale(&stable, 8)), "stable first scales for 80%: {:?}", d.actions);
    assert!(!d.actions.iter().any(|a| matches!(a, Action::SetTraffic(_))), "{:?}", d.actions);
    assert!(message(&world).contains("stable"), "{}", message(&world));

    world.pods_become_ready_up_to(&stable, 6);
    let d = world.step();
    assert_eq!(d.actions, vec![weights(40)], "6 of 10 stable pods carry 60%");
    world.pods_become_ready();
    world.settle();
    assert_eq!(world.canary_weight(), 20);
    assert_eq!((world.replicas_of(&stable), world.replicas_of(&canary)), (Some(8), Some(2)));
}

#[test]
fn dynamic_stable_scale_abort_scales_stable_up_before_weight_moves_back() {
    let (mut world, stable, canary) =
        at_first_step(dynamic().steps(vec![set_weight(80), pause_until_promoted()]));
    assert_eq!(world.replicas_of(&stable), Some(2));

    world.request(UserAction::Abort, "erin");
    let d = world.step();
    assert_eq!(d.actions.first(), Some(&scale(&stable, 10)), "{:?}", d.actions);
    assert!(!d.actions.iter().any(|a| matches!(a, Action::SetTraffic(_))), "2 stable pods carry only 20%");
    assert_eq!(world.status.phase, Some(RolloutPhase::Degraded));
    assert!(message(&world).contains("weight moves back as they become available"), "{}", message(&world));

    world.pods_become_ready_up_to(&stable, 5);
    let d = world.step();
    assert_eq!(d.actions.first(), Some(&weights(50)), "{:?}", d.actions);
    world.pods_become_ready();
    world.settle();
    assert_eq!(world.canary_weight(), 0);
    assert_eq!(world.replicas_of(&stable), Some(10));
    assert!(world.replicas_of(&canary).is_some());
}

#[test]
fn dynamic_stable_scale_promotion_moves_traffic_to_the_new_stable_at_full_scale() {
    let (mut world, stable, canary) =
        at_first_step(dynamic().steps(vec![set_weight(50), pause_until_promoted()]));
    assert_eq!(world.replicas_of(&stable), Some(5));
    world.request(UserAction::Promote, "finn");
    world.settle();
    assert_eq!(world.status.stable_revision.as_deref(), Some(canary.as_str()));
    assert_eq!(world.canary_weight(), 0);
    assert_eq!(world.replicas_of(&canary), Some(10));
}

#[test]
fn without_dynamic_stable_scale_an_abort_moves_all_weight_at_once() {
    let (mut world, stable, _) = at_first_step(rollout().steps(vec![set_weight(80), pause_until_promoted()]));
    assert_eq!(world.replicas_of(&stable), Some(10));
    world.request(UserAction::Abort, "gus");
    let d = world.step();
    assert_eq!(d.actions.first(), Some(&weights(0)));
}
