//! `status.actions`: who moved each canary, and what Bellwether itself did, kept in status.

use super::fixtures::*;
use super::world::World;
use bellwether::api::*;
use bellwether::engine::UserAction;

fn record<'a>(world: &'a World, action: &str) -> &'a ActionRecord {
    world.status.actions.iter().find(|r| r.action == action).unwrap_or_else(|| panic!("no {action}"))
}

#[test]
fn a_promotion_by_one_person_and_an_abort_by_another_are_both_recorded() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(20), pause_until_promoted()]).build());
    let first = world.ship("web:2");
    world.settle();
    world.advance(1.0);
    world.request(UserAction::Promote, "alice");
    world.settle();
    let promoted_at = world.now;
    assert_eq!(world.status.stable_revision.as_deref(), Some(first.as_str()));

    let second = world.ship("web:3");
    world.settle();
    world.advance(2.0);
    world.request(UserAction::Abort, "bob");
    world.settle();

    let promote = record(&world, "promote");
    assert_eq!((promote.by.as_str(), promote.revision.as_deref()), ("alice", Some(first.as_str())));
    assert_eq!(promote.at, promoted_at);
    let abort = record(&world, "abort");
    assert_eq!((abort.by.as_str(), abort.revision.as_deref()), ("bob", Some(second.as_str())));
    assert_eq!(abort.at, promoted_at + chrono::Duration::minutes(2));
    let aborted = record(&world, "Aborted");
    assert_eq!(aborted.by, "bob");
    assert!(aborted.reason.starts_with("UserAbort"), "{}", aborted.reason);
    let actions: Vec<(&str, &str)> =
        world.status.actions.iter().map(|r| (r.action.as_str(), r.by.as_str())).collect();
    assert_eq!(
        actions,
        [
            ("abort", "bob"),
            ("Aborted", "bob"),
            ("StepCompleted", "bellwether"),
            ("CanaryStarted", "bellwether"),
            ("Promoted", "bellwether"),
            ("promote", "alice"),
            ("StepCompleted", "bellwether"),
            ("StepCompleted", "bellwether"),
            ("CanaryStarted", "bellwether"),
        ],
        "newest first; a request comes right after what it did at once (here, skipping the pause)"
    );
}

#[test]
fn a_request_that_does_not_apply_is_recorded_as_ignored_and_the_list_is_bounded() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(20), pause_until_promoted()]).build());
    world.request(UserAction::Abort, "mallory");
    world.decide();
    let ignored = record(&world, "abort");
    assert_eq!(ignored.by, "mallory");
    assert!(ignored.reason.starts_with("ignored: no canary is in progress"), "{}", ignored.reason);

    world.ship("web:2");
    world.settle();
    for i in 0..15 {
        world.request(UserAction::Pause, &format!("user{i}"));
        world.decide();
        world.request(UserAction::Resume, &format!("user{i}"));
        world.decide();
    }
    assert_eq!(world.status.actions.len(), 20, "at most 20 kept");
    assert_eq!(world.status.actions[0].action, "resume", "newest first");
    assert_eq!(world.status.actions[0].by, "user14");
}
