//! Header routes and mirrors: they exist exactly during their steps, reach only a canary with pods
//! behind its Service, move with the weights, and leave nothing behind.

use super::fixtures::*;
use super::world::World;
use bellwether::api::*;
use bellwether::engine::{Action, Exposure, Traffic, UserAction};

fn exposure(world: &World) -> Option<Exposure> {
    world.cluster.observation.routes[0].exposure.clone()
}

fn header_routes(world: &World) -> Vec<String> {
    exposure(world).map(|e| e.header_routes.into_keys().collect()).unwrap_or_default()
}

fn mirror(world: &World) -> Option<i32> {
    exposure(world).and_then(|e| e.mirror)
}

fn message(world: &World) -> String {
    world.status.message.clone().unwrap_or_default()
}

/// Header route → mirror 40% → header route removed → 20% → pause: a canary of `web:2` shipped.
fn shipped() -> (World, String, String) {
    let spec = rollout()
        .steps(vec![
            header_route("testers", true),
            pause_until_promoted(),
            mirror_route("shadow", Some(40)),
            pause_until_promoted(),
            header_route("testers", false),
            set_weight(20),
            pause_until_promoted(),
        ])
        .build();
    let mut world = World::deployed(spec);
    let stable = world.revision();
    let canary = world.ship("web:2");
    (world, stable, canary)
}

fn promote(world: &mut World) {
    world.request(UserAction::Promote, "alice");
    world.settle();
}

#[test]
fn each_step_exposes_the_canary_as_the_steps_so_far_say_and_promotion_removes_it_all() {
    let (mut world, stable, canary) = shipped();
    let first = world.step();
    assert!(
        !first.actions.iter().any(|a| matches!(a, Action::SetTraffic(t) if !t.exposure.is_empty())),
        "no header route before the canary has pods: {:?}",
        first.actions
    );
    world.pods_become_ready();
    world.settle();
    assert_eq!(header_routes(&world), ["testers"], "{}", message(&world));
    assert_eq!(world.canary_weight(), 0, "a header route needs no weight");
    assert_eq!(world.replicas_of(&canary), Some(1), "one pod serves the testers");
    assert_eq!(world.status.exposure.header_routes, ["testers"]);
    assert_eq!(world.status.current_step_index, Some(1));
    assert!(world.status.routes[0].ready, "{:?}", world.status.routes);

    promote(&mut world);
    assert_eq!(mirror(&world), Some(40));
    assert_eq!(header_routes(&world), ["testers"], "still in force: no step removed it");
    assert_eq!(world.replicas_of(&canary), Some(4), "sized for the 40% mirrored to it");
    assert_eq!(world.status.exposure.mirror, Some(MirrorStatus { name: "shadow".into(), percent: 40 }));

    promote(&mut world);
    assert_eq!(world.status.current_step_index, Some(6));
    assert!(header_routes(&world).is_empty(), "step 5 removed it");
    assert_eq!((mirror(&world), world.canary_weight()), (Some(40), 20));
    assert_eq!(world.replicas_of(&canary), Some(6), "its 20% and copies of 40% of every request");

    promote(&mut world);
    assert_eq!(world.status.stable_revision.as_deref(), Some(canary.as_str()));
    assert_eq!(exposure(&world), Some(Exposure::default()), "nothing survives a promotion");
    assert!(world.status.exposure.is_empty());
    assert_ne!(stable, canary);
}

#[test]
fn an_abort_withdraws_header_routes_and_mirrors_with_its_first_mutation() {
    let (mut world, _, _) = shipped();
    world.settle();
    promote(&mut world);
    assert_eq!((header_routes(&world).len(), mirror(&world)), (1, Some(40)));
    world.request(UserAction::Abort, "bob");
    let d = world.step();
    assert_eq!(d.actions.first(), Some(&Action::SetTraffic(Traffic::split(0))), "{:?}", d.actions);
    world.settle();
    assert_eq!(exposure(&world), Some(Exposure::default()));
    assert_eq!(world.status.phase, Some(RolloutPhase::Degraded));
}

#[test]
fn a_new_revision_takes_the_old_canarys_header_route_off_before_its_service_moves() {
    let (mut world, _, _) = shipped();
    world.settle();
    assert_eq!(header_routes(&world), ["testers"]);
    let newer = world.ship("web:3");
    let d = world.step();
    let off = d.actions.iter().position(|a| *a == Action::SetTraffic(Traffic::split(0)));
    assert!(off.is_some(), "the superseded canary's header route goes: {:?}", d.actions);
    assert!(
        !d.actions.iter().any(|a| matches!(a, Action::PointService { revision, .. } if *revision == newer)),
        "the canary Service waits until no route can send it requests: {:?}",
        d.actions
    );
    world.settle();
    assert_eq!(header_routes(&world), ["testers"], "the new canary's own header route");
    assert_eq!(world.cluster.observation.services.canary.as_deref(), Some(newer.as_str()));
}

#[test]
fn a_gateway_that_refuses_the_route_holds_the_step_with_its_reason_until_the_deadline() {
    let (mut world, _, _) = shipped();
    world.step();
    world.pods_become_ready();
    let d = world.step();
    assert!(d.actions.iter().any(|a| matches!(a, Action::SetTraffic(t) if !t.exposure.is_empty())));
    for parent in &mut world.cluster.observation.routes[0].parents {
        parent.refusal = Some("Accepted=False, UnsupportedValue: header matching is not supported".into());
    }
    world.step();
    assert_eq!(world.status.current_step_index, Some(0), "held at the header route");
    assert!(
        message(&world)
            .contains("refused it: Accepted=False, UnsupportedValue: header matching is not supported"),
        "{}",
        message(&world)
    );
    let route = &world.status.routes[0];
    assert!(!route.ready && route.message.as_deref().is_some_and(|m| m.contains("UnsupportedValue")));
    world.advance(11.0);
    world.step();
    let abort = world.status.abort.clone().expect("the progress deadline aborts");
    assert_eq!(abort.reason, "ProgressDeadlineExceeded");
    assert!(abort.message.contains("UnsupportedValue"), "{}", abort.message);
}

#[test]
fn a_hand_edited_rule_is_put_back_and_a_user_pause_keeps_what_is_in_force() {
    let (mut world, _, _) = shipped();
    world.settle();
    world.cluster.observation.routes[0].exposure = None;
    let d = world.step();
    assert!(
        d.actions.iter().any(|a| matches!(a, Action::SetTraffic(t) if t.exposure.header_routes.len() == 1))
    );
    world.settle();
    world.request(UserAction::Pause, "carol");
    world.settle();
    assert_eq!(world.status.phase, Some(RolloutPhase::Paused));
    world.cluster.observation.routes[0].exposure = Some(Exposure::default());
    world.settle();
    assert_eq!(header_routes(&world), ["testers"], "a paused canary keeps its header route");
}

#[test]
fn a_canary_whose_pods_are_gone_at_an_indefinite_pause_gets_no_requests_meanwhile() {
    let (mut world, _, canary) = shipped();
    world.settle();
    assert_eq!(header_routes(&world), ["testers"]);
    world.pods_become_ready_up_to(&canary, 0);
    let d = world.step();
    assert_eq!(d.actions.first(), Some(&Action::SetTraffic(Traffic::split(0))), "{:?}", d.actions);
    world.settle();
    assert_eq!(exposure(&world), Some(Exposure::default()));
    assert_eq!(world.status.phase, Some(RolloutPhase::Paused), "still at its pause, waiting for a person");
    world.pods_become_ready();
    world.settle();
    assert_eq!(header_routes(&world), ["testers"], "back once its pods are");
}

#[test]
fn steps_that_remove_what_is_not_in_force_or_stack_mirrors_are_invalid_and_touch_nothing() {
    let cases = [
        (
            vec![header_route("testers", false)],
            "spec.strategy.canary.steps[0].setHeaderRoute.name: removes header route \"testers\", which no \
             earlier step added",
        ),
        (
            vec![mirror_route("a", Some(5)), mirror_route("b", Some(10))],
            "spec.strategy.canary.steps[1].setMirrorRoute.name: mirror \"a\" is still in force: remove it \
             first, or set its percent",
        ),
        (
            vec![mirror_route("a", None)],
            "spec.strategy.canary.steps[0].setMirrorRoute.name: removes mirror \"a\", which no earlier step added",
        ),
        (
            vec![header_route("a", true), header_route("a", true)],
            "spec.strategy.canary.steps[1].setHeaderRoute.name: header route \"a\" is already in force: remove \
             it first, or give this one another name",
        ),
        (
            ["a", "b", "c", "d", "e"].iter().map(|n| header_route(n, true)).collect(),
            "spec.strategy.canary.steps[4].setHeaderRoute.name: 5 header routes would be in force at once, \
             more than 4: remove one first",
        ),
    ];
    for (steps, expected) in cases {
        let mut world = World::deployed(rollout().build());
        world.spec.strategy.canary.steps = steps;
        world.ship("web:2");
        let d = world.step();
        assert!(d.actions.is_empty(), "{:?}", d.actions);
        assert!(message(&world).contains(expected), "{}\nnot in\n{}", expected, message(&world));
    }
}
