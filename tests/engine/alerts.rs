//! Aborts that firing alerts ask for: what they record, when they are ignored, and the hourly
//! limit beyond which they escalate instead.

use super::fixtures::*;
use super::world::World;
use bellwether::api::*;
use bellwether::engine::{Action, Decision, EventKind, Traffic, UserAction, describe_alert};
use std::collections::BTreeMap;

fn high_error_rate() -> FiringAlert {
    let labels: BTreeMap<String, String> =
        [("alertname", "CheckoutSLOBurn"), ("service", "checkout"), ("severity", "page")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    FiringAlert {
        name: "CheckoutSLOBurn".into(),
        labels,
        generator_url: "http://prometheus:9090/graph?g0.expr=slo_burn".into(),
        starts_at: None,
    }
}

fn canary_at_20_percent() -> World {
    let mut world = World::deployed(rollout().steps(vec![set_weight(20), pause_until_promoted()]).build());
    world.ship("web:2");
    world.settle();
    assert_eq!(world.canary_weight(), 20);
    world
}

fn reasons(decision: &Decision) -> Vec<&str> {
    decision.events.iter().map(|e| e.reason.as_str()).collect()
}

#[test]
fn a_firing_alert_aborts_a_paused_canary_and_says_which_alert() {
    let mut world = canary_at_20_percent();
    assert_eq!(world.status.phase, Some(RolloutPhase::Paused));
    world.alert(&high_error_rate());
    let d = world.step();
    assert_eq!(d.actions[0], Action::SetTraffic(Traffic::split(0)), "traffic leaves the canary first");
    let abort = world.status.abort.clone().expect("aborted");
    assert_eq!((abort.reason.as_str(), abort.by.as_str()), ("AlertFiring", "alertmanager"));
    assert_eq!(abort.alert, Some(high_error_rate()));
    let expected = "alert CheckoutSLOBurn {service=\"checkout\", severity=\"page\"} is firing \
                    (http://prometheus:9090/graph?g0.expr=slo_burn)";
    assert_eq!(abort.message, expected);
    let event = d.events.iter().find(|e| e.reason == "RolloutAborted").expect("an abort Event");
    assert_eq!(event.kind, EventKind::Warning);
    assert!(event.message.contains(expected), "{}", event.message);
    assert_eq!(world.status.alert_aborts, vec![world.now]);
    world.settle();
    assert_eq!(world.status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(world.canary_weight(), 0);
}

#[test]
fn a_firing_alert_aborts_a_progressing_canary() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(20), pause_for("10m")]).build());
    world.ship("web:2");
    world.settle();
    assert_eq!(world.status.phase, Some(RolloutPhase::Progressing));
    world.alert(&high_error_rate());
    world.settle();
    assert_eq!(world.status.abort.as_ref().map(|a| a.reason.as_str()), Some("AlertFiring"));
    assert_eq!(world.canary_weight(), 0);
}

#[test]
fn a_healthy_rollout_is_not_touched_by_an_alert() {
    let mut world = World::deployed(rollout().steps(vec![set_weight(20), pause_until_promoted()]).build());
    let before = world.status.clone();
    world.alert(&high_error_rate());
    let d = world.step();
    assert!(d.actions.is_empty());
    assert_eq!(reasons(&d), ["AlertIgnored"]);
    assert_eq!(d.events[0].kind, EventKind::Normal);
    assert!(
        d.events[0].message.ends_with("not acted on: no canary is in progress"),
        "{}",
        d.events[0].message
    );
    assert_eq!(world.status.phase, before.phase);
    assert!(world.status.alert_aborts.is_empty(), "an ignored alert does not count against the limit");
}

#[test]
fn an_alert_sent_for_an_older_canary_does_not_abort_the_new_one() {
    let mut world = canary_at_20_percent();
    world.alert(&high_error_rate());
    let stale = world.cluster.observation.requests.pop().unwrap();
    world.ship("web:3");
    world.settle();
    world.cluster.observation.requests.push(stale);
    let d = world.step();
    assert!(world.status.abort.is_none());
    assert_eq!(reasons(&d), ["AlertIgnored"]);
    assert!(d.events[0].message.contains("it was sent for canary"), "{}", d.events[0].message);
}

#[test]
fn an_alert_for_an_aborted_canary_is_ignored() {
    let mut world = canary_at_20_percent();
    world.request(UserAction::Abort, "carol");
    world.settle();
    world.alert(&high_error_rate());
    let d = world.step();
    assert_eq!(reasons(&d), ["AlertIgnored"]);
    assert_eq!(world.status.abort.as_ref().map(|a| a.by.as_str()), Some("carol"));
    assert!(world.status.alert_aborts.is_empty());
}

#[test]
fn beyond_the_hourly_limit_an_alert_escalates_and_the_canary_carries_on() {
    let mut world = canary_at_20_percent();
    world.spec.strategy.canary.max_alert_aborts_per_hour = Some(2);
    for _ in 0..2 {
        world.alert(&high_error_rate());
        world.settle();
        assert!(world.status.abort.is_some());
        world.advance(5.0);
        world.request(UserAction::Retry, "carol");
        world.settle();
        assert!(world.status.abort.is_none());
    }
    world.alert(&high_error_rate());
    let d = world.step();
    assert!(world.status.abort.is_none(), "the third alert-driven abort within an hour does not act");
    assert_eq!(reasons(&d), ["AlertAbortEscalated"]);
    assert_eq!(d.events[0].kind, EventKind::Warning);
    assert!(
        d.events[0]
            .message
            .contains("2 alert-driven aborts in the last hour reached maxAlertAbortsPerHour (2)"),
        "{}",
        d.events[0].message
    );
    assert!(d.events[0].message.contains("CheckoutSLOBurn"));
    world.settle();
    assert_eq!(world.canary_weight(), 20);

    // An hour after the first abort, one counts no longer.
    world.advance(51.0);
    world.request(UserAction::Retry, "carol");
    world.alert(&FiringAlert { name: "CheckoutLatency".into(), ..high_error_rate() });
    world.settle();
    assert_eq!(world.status.abort.as_ref().map(|a| a.reason.as_str()), Some("AlertFiring"));
    assert_eq!(world.status.alert_aborts.len(), 2, "the oldest abort left the window");
}

#[test]
fn a_limit_of_zero_makes_every_alert_escalate() {
    let mut world = canary_at_20_percent();
    world.spec.strategy.canary.max_alert_aborts_per_hour = Some(0);
    world.alert(&high_error_rate());
    let d = world.step();
    assert_eq!(reasons(&d), ["AlertAbortEscalated"]);
    assert!(world.status.abort.is_none());
}

#[test]
fn the_same_alert_sent_again_acts_once() {
    let mut world = canary_at_20_percent();
    world.alert(&high_error_rate());
    world.settle();
    world.alert(&high_error_rate());
    let d = world.step();
    assert!(d.events.is_empty(), "{:?}", d.events);
    assert_eq!(world.status.alert_aborts.len(), 1);
}

#[test]
fn an_alert_without_other_labels_or_link_reads_cleanly() {
    let alert = FiringAlert {
        name: "Down".into(),
        labels: [("alertname".to_string(), "Down".to_string())].into(),
        generator_url: String::new(),
        starts_at: None,
    };
    assert_eq!(describe_alert(&alert), "alert Down {} is firing");
}
