//! Which AnalysisRuns the run reconciler measures: only those it can vouch for.

use bellwether::api::{AnalysisRun, AnalysisRunRef, AnalysisRunSpec, Rollout, RolloutStatus};
use bellwether::engine::spec_hash;
use bellwether::engine::{Entitlement, entitlement};
use chrono::{DateTime, Duration, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn now() -> DateTime<Utc> {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn rollout() -> Rollout {
    let mut rollout: Rollout =
        serde_yaml::from_str(include_str!("../../examples/basic/rollout.yaml")).expect("the example parses");
    rollout.metadata.uid = Some("6c4f7a52-5d1e-4a51-9a0e-3f1f2d1b2c3d".into());
    rollout
}

/// A run of the example's error-rate metric, created `age` ago.
fn run(name: &str, age: Duration) -> AnalysisRun {
    let spec: AnalysisRunSpec = serde_json::from_value(serde_json::json!({
        "metrics": [{
            "name": "error-rate",
            "provider": {"prometheus": {"address": "http://prometheus:9090", "query": "up"}},
            "threshold": {"max": 0.01},
        }],
        "revision": "abc",
    }))
    .unwrap();
    let mut run = AnalysisRun::new(name, spec);
    run.metadata.namespace = Some("shop".into());
    let created = k8s_openapi::jiff::Timestamp::from_second((now() - age).timestamp()).unwrap();
    run.metadata.creation_timestamp = Some(Time(created));
    run
}

/// The Rollout with `run` in its step slot, recorded with `hash`.
fn naming(run: &AnalysisRun, hash: Option<String>) -> Rollout {
    let mut rollout = rollout();
    rollout.status = Some(RolloutStatus {
        step_analysis_run: Some(AnalysisRunRef {
            name: run.metadata.name.clone().unwrap(),
            spec_hash: hash,
            phase: None,
            message: None,
        }),
        ..RolloutStatus::default()
    });
    rollout
}

#[test]
fn a_run_its_rollout_names_with_its_spec_is_measured() {
    let run = run("checkout-abc-0-step1", Duration::minutes(5));
    let owner = naming(&run, Some(spec_hash(&run.spec)));
    assert_eq!(entitlement(&run, Some(&owner), now()), Entitlement::Measure);
}

#[test]
fn a_run_whose_spec_was_changed_is_not_measured() {
    let mut run = run("checkout-abc-0-step1", Duration::minutes(5));
    let owner = naming(&run, Some(spec_hash(&run.spec)));
    run.spec.metrics[0].provider.prometheus.as_mut().unwrap().address = "http://attacker:80".into();
    let Entitlement::Refused(why) = entitlement(&run, Some(&owner), now()) else { panic!("measured") };
    assert_eq!(why, "its spec is not the one Rollout checkout created it with");
    let owner = naming(&run, None);
    assert!(matches!(entitlement(&run, Some(&owner), now()), Entitlement::Refused(_)), "no recorded hash");
}

#[test]
fn a_run_no_managed_rollout_owns_is_not_measured() {
    let run = run("stray", Duration::minutes(5));
    let Entitlement::Refused(why) = entitlement(&run, None, now()) else { panic!("measured") };
    assert_eq!(why, "no Rollout that this controller manages owns it");
}

#[test]
fn a_run_its_owner_does_not_name_waits_while_young_and_is_refused_after() {
    let young = run("checkout-abc-0-step1", Duration::seconds(5));
    assert_eq!(entitlement(&young, Some(&rollout()), now()), Entitlement::NotYetNamed);
    let old = run("checkout-abc-0-step1", Duration::minutes(5));
    let Entitlement::Refused(why) = entitlement(&old, Some(&rollout()), now()) else { panic!("measured") };
    assert_eq!(why, "Rollout checkout does not name it");
    let mut terminated = old;
    terminated.spec.terminate = true;
    assert_eq!(
        entitlement(&terminated, Some(&rollout()), now()),
        Entitlement::RecordTermination,
        "its end is recorded, with nothing measured"
    );
}
