//! Leader election over the test API server's Leases, with a 3s lease so that takeovers after expiry
//! happen within the test. Waits are bounded polls with generous bounds.

use crate::apiserver::TestApiServer;
use bellwether::controller::leader::{Campaign, LeaderError, Leadership, LeaseConfig, lease_name};
use std::time::Duration;
use tokio::time::{sleep, timeout};

const BOUND: Duration = Duration::from_secs(30);

type Candidate = (Leadership, Campaign);

fn config(identity: &str) -> LeaseConfig {
    LeaseConfig {
        duration: Duration::from_secs(3),
        grace: Duration::from_secs(1),
        ..LeaseConfig::new("bellwether", lease_name(None), identity)
    }
}

async fn candidate(server: &TestApiServer, identity: &str) -> Candidate {
    Leadership::campaign(server.client(), config(identity)).await.expect("campaigning starts")
}

/// Two candidates once one of them leads: the leader first, then the standby.
async fn elected(server: &TestApiServer) -> (Candidate, Candidate) {
    let a = candidate(server, "a").await;
    let b = candidate(server, "b").await;
    let a_leads = async {
        tokio::select! {
            _ = a.0.acquired() => true,
            _ = b.0.acquired() => false,
        }
    };
    let a_leads = timeout(BOUND, a_leads).await.expect("one candidate becomes the leader");
    if a_leads { (a, b) } else { (b, a) }
}

#[tokio::test]
async fn two_instances_elect_exactly_one_leader() {
    let server = TestApiServer::start().await;
    let (leader, standby) = elected(&server).await;
    for _ in 0..20 {
        assert!(leader.0.is_leader(), "the leader keeps leading while it renews");
        assert!(!standby.0.is_leader(), "the standby stays passive");
        sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_released_lease_passes_to_the_standby() {
    let server = TestApiServer::start().await;
    let ((leadership, campaign), (standby, _campaign)) = elected(&server).await;
    campaign.release().await.expect("the lease is released");
    assert!(!leadership.is_leader(), "a released leader stops acting");
    timeout(BOUND, leadership.lost()).await.expect("releasing ends the leadership held");
    timeout(BOUND, standby.acquired()).await.expect("the standby takes the released lease");
    assert!(standby.is_leader());
}

#[tokio::test]
async fn an_aborted_leader_is_replaced_once_its_lease_expires() {
    let server = TestApiServer::start().await;
    let ((_, campaign), (standby, _campaign)) = elected(&server).await;
    drop(campaign);
    timeout(BOUND, standby.acquired()).await.expect("the standby takes the expired lease");
    assert!(standby.is_leader());
}

#[tokio::test]
async fn without_election_the_instance_always_leads() {
    let leadership = Leadership::always();
    assert!(leadership.is_leader());
    timeout(BOUND, leadership.clone().acquired()).await.expect("an instance that always leads has acquired");
    assert_eq!(lease_name(None), "bellwether-controller");
    assert_eq!(lease_name(Some("blue")), "bellwether-controller-blue");
}

#[tokio::test]
async fn a_grace_of_half_the_lease_or_more_is_refused() {
    let server = TestApiServer::start().await;
    let config = LeaseConfig { grace: Duration::from_secs(2), ..config("a") };
    let refused = Leadership::campaign(server.client(), config).await.map(|_| ());
    assert!(matches!(refused, Err(LeaderError::Timing { .. })), "{refused:?}");
}

/// Two controller processes with `--leader-elect` on one namespace, named `a` and `b`.
mod controllers {
    use crate::harness::{Cluster, Controller, eventually};
    use crate::rollouts::deploy_stable;
    use bellwether::api::RolloutPhase;
    use bellwether::controller::leader::lease_name;
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::events::v1::Event;
    use kube::api::ListParams;
    use serde_json::{Value, json};
    use std::time::{SystemTime, UNIX_EPOCH};

    /// A canary long enough at 10% for the test to hand over while it is there; the handover needs
    /// no more than the lease duration.
    fn steps() -> Value {
        json!([{"setWeight": 10}, {"pause": {"duration": "6s"}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}])
    }

    fn start(cluster: &Cluster, identity: &str) -> Controller {
        let namespace = cluster.namespace.as_str();
        Controller::start(
            cluster,
            &[
                "--leader-elect",
                "--leader-elect-namespace",
                namespace,
                "--identity",
                identity,
                "--lease-duration-seconds",
                "3",
            ],
        )
    }

    /// Who holds the Lease, once someone does.
    async fn holder(cluster: &Cluster, not: Option<&str>) -> String {
        eventually("a holder of the Lease", || async {
            let lease = cluster.api::<Lease>().get_opt(&lease_name(None)).await.ok().flatten()?;
            let holder = lease.spec?.holder_identity?;
            (Some(holder.as_str()) != not).then_some(holder)
        })
        .await
    }

    fn micros(at: SystemTime) -> i64 {
        at.duration_since(UNIX_EPOCH).expect("after 1970").as_micros() as i64
    }

    /// An Event about the Rollout: who reported it, why, and when it was first and last seen.
    #[derive(Debug)]
    struct Reported {
        instance: String,
        reason: String,
        first: i64,
        last: i64,
    }

    async fn reported(cluster: &Cluster) -> Vec<Reported> {
        let events = cluster.api::<Event>().list(&ListParams::default()).await.expect("listing Events");
        events
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("Rollout"))
            .map(|e| {
                let first = e.event_time.as_ref().map_or(0, |t| t.0.as_microsecond());
                let last = e.series.as_ref().map_or(first, |s| s.last_observed_time.0.as_microsecond());
                Reported {
                    instance: e.reporting_instance.unwrap_or_default(),
                    reason: e.reason.unwrap_or_default(),
                    first,
                    last,
                }
            })
            .collect()
    }

    /// Runs a canary on two controllers, takes the leader away with `hand_over` once the canary
    /// is at its first step, and checks that the standby finishes it and that neither acted out
    /// of turn.
    async fn hand_over_mid_canary(test: &str, hand_over: impl AsyncFnOnce(Controller)) {
        let cluster = Cluster::start(test).await;
        let (a, b) = (start(&cluster, "a"), start(&cluster, "b"));
        let leader = holder(&cluster, None).await;
        let (leading, standing_by, standby) = match leader.as_str() {
            "a" => (a, b, "b"),
            _ => (b, a, "a"),
        };
        deploy_stable(&cluster, steps()).await;
        let canary = cluster.ship(&cluster.rollout("2", steps())).await;
        eventually("the canary at 10%", || async {
            (cluster.weights().await == Some((10, 90))).then_some(())
        })
        .await;
        let before = reported(&cluster).await;
        assert!(before.iter().any(|e| e.reason == "CanaryStarted"), "{before:?}");
        assert!(before.iter().all(|e| e.instance == leader), "only the leader {leader} reports: {before:?}");

        let handed_over = micros(SystemTime::now());
        hand_over(leading).await;
        let gone = micros(SystemTime::now());
        assert_eq!(holder(&cluster, Some(leader.as_str())).await, standby, "the standby holds the Lease");
        cluster
            .rollout_until("the standby to promote the canary", |r| {
                r.status.as_ref().is_some_and(|s| {
                    s.phase == Some(RolloutPhase::Healthy)
                        && s.stable_revision.as_deref() == Some(canary.as_str())
                })
            })
            .await;
        standing_by.stop().await;

        let events = reported(&cluster).await;
        for event in &events {
            match event.instance.as_str() {
                i if i == leader => {
                    assert!(event.last <= gone, "the old leader acted after it went: {event:?}")
                }
                i if i == standby => {
                    assert!(event.first >= handed_over, "the standby acted while standing by: {event:?}")
                }
                _ => panic!("an Event from neither controller: {event:?}"),
            }
        }
        let taken_over: Vec<&str> =
            events.iter().filter(|e| e.instance == standby).map(|e| e.reason.as_str()).collect();
        assert!(taken_over.contains(&"Promoted"), "the standby's Events: {taken_over:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_leader_acts_and_a_stopped_leader_hands_over_at_once() {
        hand_over_mid_canary("leader-stop", Controller::stop).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_leader_is_replaced_once_its_lease_expires() {
        hand_over_mid_canary("leader-kill", async |leader: Controller| leader.kill()).await;
    }
}
