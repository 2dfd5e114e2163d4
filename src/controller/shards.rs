//! Horizontal sharding (`--shards N`): Rollouts map to N shards by a stable hash of their namespace
//! and name, and each shard is a `coordination.k8s.io/v1` Lease that one controller replica holds at
//! a time, exactly as a single replica holds the leader-election Lease ([`super::leader`]): a
//! replica acts on a Rollout only while it holds the Lease of the Rollout's shard, and checks that
//! before each write.
//!
//! Which replica should hold which shard comes from membership: every replica renews a member
//! Lease of its own (`<lease>-member-<identity>`) every `grace / 2`, and the live members (those
//! whose member Lease has not expired) split the shards by rendezvous hashing with bounded loads:
//! each shard goes to the member with the highest hash of (shard, member) among those below their
//! share, so the split is even (plain rendezvous hashing gives one of three replicas none of six
//! shards about one time in eleven). Every replica computes the same split from the same members,
//! and a member joining or leaving moves mostly the shards it gains or loses.
//!
//! - A replica campaigns for the shards assigned to it. A shard still held by another replica (one
//!   that has not yet seen the new split) is taken once that replica hands it over or its Lease
//!   expires.
//! - A replica hands over a shard no longer assigned to it: it stops starting passes on the shard,
//!   waits for the passes in flight to finish, and then releases the Lease, so that the new holder
//!   never acts beside a pass of the old one.
//! - A replica that dies stops renewing both its member Lease and its shard Leases: within one
//!   lease duration (and one poll) the survivors see it gone, the split gives them its shards, and
//!   its shard Leases have expired for them to take.
//! - Losing a shard Lease it did not hand over (a renewal that failed) is final for the process, as
//!   losing leadership is: it exits and comes back with no pass in flight.
//!
//! - Every member Lease says how many shards its replica has (`bellwether.dev/shards`). While the
//!   live members disagree (a rolling update that changes `--shards`), shard `k` means different
//!   Rollouts to different replicas, so none holds any shard until only one number is left.
//!
//! On shutdown a replica hands over every shard and leaves the membership, so that the others take
//! its shards at once instead of after the lease duration.

use super::leader::{Campaign, LeaderError, Leadership, LeaseConfig};
use super::stable_hash;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::sync::{OwnedRwLockReadGuard, RwLock, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// The field manager of the member Leases.
const FIELD_MANAGER: &str = "bellwether";

/// The label of a member Lease that says how many shards its replica splits the Rollouts into.
const SHARDS_LABEL: &str = "bellwether.dev/shards";

/// Member Leases expired for this many lease durations are deleted: they name replicas long gone.
const STALE_MEMBER_DURATIONS: u32 = 10;

/// The shard of the Rollout `namespace/name` among `count` shards: the same in every replica and
/// every release, since it depends on nothing else.
pub fn shard_of(namespace: &str, name: &str, count: u32) -> u32 {
    (stable_hash(&format!("{namespace}/{name}")) % u64::from(count.max(1))) as u32
}

/// Which member should hold each of `count` shards: each shard goes to the member with the
/// highest hash of (shard, member) that is below its share (`count` over the members, the
/// remainder going one each to the first members to need it), so every member holds the same
/// number of shards or one more, whatever the hashes; `None` for every shard without members. Every replica computes the same split from the same members, and a
/// member joining or leaving moves mostly the shards it gains or loses.
pub fn split(count: u32, members: &BTreeSet<String>) -> Vec<Option<&str>> {
    let size = members.len().max(1) as u32;
    // Every member holds `least` shards, and `extra` of them one more.
    let (least, extra) = (count / size, count % size);
    let mut load: BTreeMap<&str, u32> = BTreeMap::new();
    let mut above = 0;
    (0..count)
        .map(|shard| {
            let mut ranked: Vec<&str> = members.iter().map(String::as_str).collect();
            // Highest hash first, the lowest name on a tie.
            ranked.sort_by_key(|member| {
                (std::cmp::Reverse(stable_hash(&format!("{shard}/{member}"))), *member)
            });
            let room = |held: u32| held < least || (held == least && above < extra);
            let member = ranked.into_iter().find(|member| room(load.get(member).copied().unwrap_or(0)))?;
            let held = load.entry(member).or_default();
            if *held == least {
                above += 1;
            }
            *held += 1;
            Some(member)
        })
        .collect()
}

/// The Leases of sharding, their timing, and who this replica is.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    /// How many shards the Rollouts are split into; the same in every replica.
    pub count: u32,
    /// The namespace of every Lease, and the prefix of their names (the leader-election Lease's
    /// name): shards are `<prefix>-shard-<k>`, members `<prefix>-member-<identity>`.
    pub lease: LeaseConfig,
}

impl ShardConfig {
    fn shard_lease(&self, shard: u32) -> LeaseConfig {
        LeaseConfig { name: format!("{}-shard-{shard}", self.lease.name), ..self.lease.clone() }
    }

    fn member_prefix(&self) -> String {
        format!("{}-member-", self.lease.name)
    }

    fn poll(&self) -> Duration {
        self.lease.grace / 2
    }
}

/// One shard, as this replica sees it.
#[derive(Default)]
struct Slot {
    /// The campaign's view of the shard's Lease, while this replica campaigns for it.
    leadership: Mutex<Option<Leadership>>,
    /// Passes on the shard hold a read guard; handing the shard over takes the write guard, so
    /// that no pass is in flight when the Lease goes.
    in_flight: Arc<RwLock<()>>,
    /// Set while the shard is handed over: no pass starts or writes.
    handing_over: AtomicBool,
}

impl Slot {
    fn held(&self) -> bool {
        !self.handing_over.load(Ordering::SeqCst)
            && self
                .leadership
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .is_some_and(Leadership::is_leader)
    }
}

struct Inner {
    config: ShardConfig,
    slots: Vec<Slot>,
    /// The shards this replica holds.
    held: watch::Sender<BTreeSet<u32>>,
    /// Turns true when a shard Lease was lost without being handed over.
    lost: watch::Sender<bool>,
}

/// The shards this replica holds. Cheap to clone; every clone sees the same shards.
#[derive(Clone)]
pub struct Shards {
    inner: Arc<Inner>,
}

/// Leave to act on one shard, held for a pass.
pub struct ShardPermit {
    inner: Arc<Inner>,
    shard: u32,
    _in_flight: OwnedRwLockReadGuard<()>,
}

impl ShardPermit {
    /// Whether this replica still holds the shard: checked before each write.
    pub fn holds(&self) -> bool {
        self.inner.slots[self.shard as usize].held()
    }
}

/// The background work of sharding; [`ShardsTask::leave`] hands every shard over on shutdown.
pub struct ShardsTask {
    task: JoinHandle<()>,
    stop: oneshot::Sender<()>,
}

impl ShardsTask {
    /// Hands over every shard this replica holds and leaves the membership, waiting at most the
    /// lease grace for the API server.
    pub async fn leave(self, grace: Duration) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(grace * 2, &mut task).await.is_err() {
            warn!("handing the shards over took too long; their Leases expire on their own");
            task.abort();
        }
    }
}

impl Shards {
    /// Joins the membership and starts campaigning for the shards assigned to this replica.
    pub fn start(client: Client, config: ShardConfig) -> Result<(Self, ShardsTask), LeaderError> {
        let lease = &config.lease;
        let whole = |d: Duration| d.subsec_nanos() == 0;
        if !whole(lease.duration)
            || !whole(lease.grace)
            || lease.grace.is_zero()
            || lease.grace * 2 >= lease.duration
        {
            return Err(LeaderError::Timing { duration: lease.duration, grace: lease.grace });
        }
        let slots = (0..config.count).map(|_| Slot::default()).collect();
        let inner = Arc::new(Inner {
            config,
            slots,
            held: watch::Sender::new(BTreeSet::new()),
            lost: watch::Sender::new(false),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(manage(client, inner.clone(), stopped));
        Ok((Self { inner }, ShardsTask { task, stop }))
    }

    pub fn count(&self) -> u32 {
        self.inner.config.count
    }

    /// Leave to act on the Rollout `namespace/name`, when this replica holds its shard and is not
    /// handing it over.
    pub fn permit(&self, namespace: &str, name: &str) -> Option<ShardPermit> {
        let shard = shard_of(namespace, name, self.count());
        let slot = &self.inner.slots[shard as usize];
        if !slot.held() {
            return None;
        }
        // A hand-over waiting for the write guard keeps new passes out.
        let guard = slot.in_flight.clone().try_read_owned().ok()?;
        Some(ShardPermit { inner: self.inner.clone(), shard, _in_flight: guard })
    }

    /// A receiver of the shards this replica holds.
    pub fn held(&self) -> watch::Receiver<BTreeSet<u32>> {
        self.inner.held.subscribe()
    }

    /// Resolves when a shard Lease was lost without being handed over; the process should exit.
    pub async fn lost(&self) {
        let mut lost = self.inner.lost.subscribe();
        let _ = lost.wait_for(|lost| *lost).await;
    }
}

/// Renews the membership and follows the split, every poll, until stopped; then hands every
/// shard over and leaves.
async fn manage(client: Client, inner: Arc<Inner>, mut stopped: oneshot::Receiver<()>) {
    let config = &inner.config;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &config.lease.namespace);
    let mut campaigns: Vec<Option<Held>> = (0..config.count).map(|_| None).collect();
    let mut ticks = tokio::time::interval(config.poll());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = ticks.tick() => {}
        }
        if let Err(error) = renew_membership(&leases, config, true).await {
            warn!(%error, "cannot renew this replica's member Lease");
        }
        let members = match members(&leases, config).await {
            Ok(members) => members,
            Err(error) => {
                warn!(%error, "cannot list the member Leases; the shards stay as they are");
                continue;
            }
        };
        let Some(members) = members else {
            warn!(
                shards = config.count,
                "another replica splits the Rollouts into another number of shards; acting on none until it is gone"
            );
            for shard in 0..config.count {
                hand_over(&inner, shard, campaigns[shard as usize].take()).await;
            }
            continue;
        };
        let split = split(config.count, &members);
        for shard in 0..config.count {
            let assigned = split[shard as usize] == Some(config.lease.identity.as_str());
            let campaign = &mut campaigns[shard as usize];
            match (campaign.is_some(), assigned) {
                (false, true) => match campaign_for(&client, &inner, shard).await {
                    Ok(started) => *campaign = Some(started),
                    Err(error) => warn!(%error, shard, "cannot campaign for a shard"),
                },
                (true, false) => hand_over(&inner, shard, campaign.take()).await,
                _ => {}
            }
        }
    }
    for shard in 0..config.count {
        hand_over(&inner, shard, campaigns[shard as usize].take()).await;
    }
    if let Err(error) = renew_membership(&leases, config, false).await {
        warn!(%error, "cannot leave the membership; this replica counts as a member until its Lease expires");
    }
}

/// A campaign for one shard, and the signal that ends following it.
struct Held {
    campaign: Campaign,
    /// Dropped when the shard is handed over, so that the loss of the Lease that follows is not
    /// taken for a failure.
    _following: oneshot::Sender<()>,
}

/// Starts campaigning for `shard`, and follows the campaign: a shard won is announced, and one
/// lost without a hand-over ends the process.
async fn campaign_for(client: &Client, inner: &Arc<Inner>, shard: u32) -> Result<Held, LeaderError> {
    let (leadership, campaign) =
        Leadership::campaign(client.clone(), inner.config.shard_lease(shard)).await?;
    *inner.slots[shard as usize].leadership.lock().unwrap_or_else(PoisonError::into_inner) =
        Some(leadership.clone());
    let (following, mut handed_over) = oneshot::channel::<()>();
    let inner = inner.clone();
    tokio::spawn(async move {
        // A hand-over is looked at first: it releases the Lease, and the loss that follows must
        // not be taken for a failure when both are ready at once.
        tokio::select! {
            biased;
            _ = &mut handed_over => return,
            _ = leadership.acquired() => {}
        }
        info!(shard, "holding a shard");
        inner.held.send_modify(|held| {
            held.insert(shard);
        });
        let failed = tokio::select! {
            biased;
            _ = &mut handed_over => false,
            _ = leadership.lost() => true,
        };
        inner.held.send_modify(|held| {
            held.remove(&shard);
        });
        if failed {
            warn!(shard, "lost a shard's Lease without handing it over");
            inner.lost.send_replace(true);
        }
    });
    Ok(Held { campaign, _following: following })
}

/// Stops acting on `shard`, waits for its passes in flight, and releases its Lease.
async fn hand_over(inner: &Inner, shard: u32, held: Option<Held>) {
    let Some(Held { campaign, _following: following }) = held else { return };
    let slot = &inner.slots[shard as usize];
    slot.handing_over.store(true, Ordering::SeqCst);
    drop(following);
    let leading = slot
        .leadership
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .is_some_and(Leadership::is_leader);
    if leading {
        let _quiet = slot.in_flight.write().await;
        match campaign.release().await {
            Ok(()) => info!(shard, "handed a shard over"),
            Err(error) => warn!(%error, shard, "cannot release a shard's Lease; it expires on its own"),
        }
    }
    // A campaign that never led is dropped: it holds nothing to release.
    *slot.leadership.lock().unwrap_or_else(PoisonError::into_inner) = None;
    slot.handing_over.store(false, Ordering::SeqCst);
}

/// Writes this replica's member Lease: renewed now while `member`, or with no holder when leaving.
async fn renew_membership(
    leases: &Api<Lease>,
    config: &ShardConfig,
    member: bool,
) -> Result<(), kube::Error> {
    let name = format!("{}{}", config.member_prefix(), config.lease.identity);
    let now = k8s_openapi::jiff::Timestamp::now();
    let labels = [(SHARDS_LABEL.to_string(), config.count.to_string())].into();
    let lease = Lease {
        metadata: ObjectMeta { name: Some(name.clone()), labels: Some(labels), ..ObjectMeta::default() },
        spec: Some(LeaseSpec {
            holder_identity: member.then(|| config.lease.identity.clone()),
            lease_duration_seconds: Some(config.lease.duration.as_secs() as i32),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }),
    };
    let mut applied = serde_json::to_value(&lease).expect("a Lease serializes");
    applied["apiVersion"] = "coordination.k8s.io/v1".into();
    applied["kind"] = "Lease".into();
    if !member {
        // An apply that leaves a field out keeps it; a null removes it.
        applied["spec"]["holderIdentity"] = serde_json::Value::Null;
    }
    leases.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&applied)).await.map(drop)
}

/// The live members (the holders of member Leases that have not expired), or `None` while a live
/// member splits the Rollouts into another number of shards: its shard `k` is not this replica's
/// shard `k`, so the two could act on the same Rollout, and neither acts until only one number is
/// left (during a rolling update that changes `--shards`, until the old replicas are gone). Members
/// gone for long are deleted on the way, by whichever live member sorts first.
async fn members(leases: &Api<Lease>, config: &ShardConfig) -> Result<Option<BTreeSet<String>>, kube::Error> {
    let prefix = config.member_prefix();
    let listed = leases.list(&ListParams::default()).await?;
    let now = SystemTime::now();
    let mut live = BTreeSet::new();
    let mut agreed = true;
    let mut stale = Vec::new();
    for lease in listed.items.iter().filter(|lease| lease.name_any().starts_with(&prefix)) {
        let Some(spec) = &lease.spec else { continue };
        let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
        let renewed: Option<SystemTime> = spec.renew_time.as_ref().map(|t| t.0.into());
        let expires = renewed.map(|at| at + duration);
        match (&spec.holder_identity, expires) {
            (Some(holder), Some(expires)) if expires > now => {
                live.insert(holder.clone());
                let count = lease.labels().get(SHARDS_LABEL);
                agreed &= count.is_some_and(|count| *count == config.count.to_string());
            }
            _ if expires.is_none_or(|at| at + duration * STALE_MEMBER_DURATIONS < now) => {
                stale.push(lease.name_any())
            }
            _ => {}
        }
    }
    live.insert(config.lease.identity.clone());
    if live.first() == Some(&config.lease.identity) {
        for name in stale {
            if let Err(error) = leases.delete(&name, &DeleteParams::default()).await {
                warn!(%error, lease = %name, "cannot delete a stale member Lease");
            }
        }
    }
    Ok(agreed.then_some(live))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_rollouts_shard_depends_on_its_namespace_and_name_only() {
        assert_eq!(shard_of("shop", "web", 16), shard_of("shop", "web", 16));
        let spread: BTreeSet<u32> = (0..200).map(|i| shard_of("shop", &format!("app-{i}"), 16)).collect();
        assert_eq!(spread.len(), 16, "200 Rollouts reach every one of 16 shards");
        assert!((0..200).all(|i| shard_of("shop", &format!("app-{i}"), 3) < 3));
        assert_eq!(shard_of("shop", "web", 1), 0);
    }

    fn loads<'a>(split: &[Option<&'a str>]) -> BTreeMap<&'a str, u32> {
        let mut loads = BTreeMap::new();
        for member in split.iter().flatten() {
            *loads.entry(*member).or_insert(0) += 1;
        }
        loads
    }

    #[test]
    fn every_member_holds_its_share_or_one_less() {
        let names = ["a", "b", "c", "d", "e"];
        for size in 1..=names.len() {
            let group = members(&names[..size]);
            for count in 1..=40u32 {
                let split = split(count, &group);
                assert!(split.iter().all(Option::is_some), "every shard is held");
                let share = count.div_ceil(size as u32);
                let loads = loads(&split);
                let expected = (count as usize).min(size);
                assert_eq!(loads.len(), expected, "{count} shards over {size}: {loads:?}");
                assert!(
                    loads.values().all(|&n| n == share || n + 1 == share),
                    "{count} over {size}: {loads:?}"
                );
            }
        }
    }

    #[test]
    fn three_replicas_of_six_shards_each_hold_two() {
        // The identities of the e2e test: plain rendezvous hashing left one of them with none.
        let three = members(&["a", "b", "c"]);
        let split = split(6, &three);
        assert!(loads(&split).values().all(|&n| n == 2), "{split:?}");
    }

    #[test]
    fn a_member_leaving_moves_mostly_its_own_shards() {
        let three = members(&["a", "b", "c"]);
        let two = members(&["a", "c"]);
        for count in [6, 16, 64] {
            let before = split(count, &three);
            let after = split(count, &two);
            let own = before.iter().filter(|m| **m == Some("b")).count();
            let moved = before.iter().zip(&after).filter(|(was, is)| was != is).count();
            assert!(moved <= own + own / 2 + 1, "{count} shards: {moved} moved, b held {own}");
        }
    }

    fn replica(
        server: &bellwether_testkit::apiserver::TestApiServer,
        identity: &str,
        count: u32,
    ) -> (Shards, ShardsTask) {
        let mut lease = LeaseConfig::new("default", "bellwether-controller", identity);
        lease.duration = Duration::from_secs(3);
        lease.grace = Duration::from_secs(1);
        Shards::start(server.client(), ShardConfig { count, lease }).expect("valid timing")
    }

    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "gave up waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_that_disagree_on_the_number_of_shards_act_on_none() {
        let server = bellwether_testkit::apiserver::TestApiServer::start().await;
        let (old, old_task) = replica(&server, "old", 2);
        until("the old replica holding both shards", || old.held().borrow().len() == 2).await;

        // A replica with another number of shards joins, as in a rolling update that changes it:
        // its shard 1 is not the old replica's shard 1, so neither may act.
        let (new, new_task) = replica(&server, "new", 4);
        until("the old replica giving its shards up", || old.held().borrow().is_empty()).await;
        for _ in 0..20 {
            assert!(new.held().borrow().is_empty(), "the new replica acted beside the old one");
            assert!(old.held().borrow().is_empty(), "the old replica acted beside the new one");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Once the old replica is gone, the new one takes every shard.
        old_task.leave(Duration::from_secs(1)).await;
        until("the new replica holding every shard", || new.held().borrow().len() == 4).await;
        new_task.leave(Duration::from_secs(1)).await;
    }

    #[test]
    fn nobody_is_assigned_without_members() {
        assert_eq!(split(3, &BTreeSet::new()), vec![None, None, None]);
        assert_eq!(split(2, &members(&["only"])), vec![Some("only"), Some("only")]);
    }
}
