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
