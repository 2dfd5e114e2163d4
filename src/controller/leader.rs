//! Leader election with `--leader-elect`: several controller replicas run, their watch caches warm,
//! but only the holder of a `coordination.k8s.io/v1` Lease reconciles and writes.
//!
//! [`kube_lease_manager`] takes and renews the Lease. It locks a free Lease with a server-side apply
//! without `force`, so two candidates cannot both take it: the second apply conflicts on
//! `holderIdentity`. It renews `2 × grace` before the lease expires and takes an expired lease from
//! a holder that stopped renewing.
//!
//! What it does not do is tell its holder that a renewal failed: when the API server is unreachable
//! its view stays "leader" while other replicas may take the lease once it expires. So the campaign
//! reads the Lease itself every `grace / 2` and keeps a deadline of `renewTime + duration - grace`,
//! `renewTime` being the time this instance wrote at its last renewal, by its own clock:
//!
//! - **The guarantee:** a leader that has not seen its own renewal on the server reports
//!   [`Leadership::lost`], and [`Leadership::is_leader`] turns false, at that deadline, which is
//!   `grace` before any other replica may take the lease — as long as the clocks of the replicas
//!   differ by less than `grace`. A renewal that hangs or fails changes nothing in that: the deadline
//!   is a local timer. Only writes already in flight at the deadline may still land.
//! - Leadership is only reported once such a read has shown this instance's renewal, so the deadline
//!   never starts from an unconfirmed lock.
//! - Losing leadership is final for a campaign: the controller should exit and be restarted as a
//!   standby rather than go back to standby in-process. Reconciles, requeues and writes in flight
//!   cannot all be revoked at once; a fresh process starts with none of them, as client-go's leader
//!   election recommends too.
//!
//! A standby also reads the Lease every `grace / 2`: the lease manager sleeps until the lease it
//! last saw expires, so when it sees the lease released it starts afresh and takes the lease at once
//! instead of after up to a whole `duration`.

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseManagerError, LeaseParams};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tracing::{info, warn};

/// The Lease name when the controller is not sharded.
pub const DEFAULT_LEASE_NAME: &str = "bellwether-controller";

/// The Lease the controllers of one instance (shard) elect their leader with: instances sharing a
/// cluster each have a leader of their own.
pub fn lease_name(instance_id: Option<&str>) -> String {
    match instance_id {
        Some(id) => format!("{DEFAULT_LEASE_NAME}-{id}"),
        None => DEFAULT_LEASE_NAME.to_string(),
    }
}

/// Which Lease to campaign for, as whom, and its timing.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// Unique among the replicas, such as the pod name.
    pub identity: String,
    /// How long the lease lasts after a renewal: how long a standby waits for a leader that died.
    /// Whole seconds, as the Lease stores it.
    pub duration: Duration,
    /// How long before its lease expires the leader stops acting if no renewal succeeded; it bounds
    /// the clock difference between replicas that leadership tolerates. Whole seconds, and less than
    /// half the duration, because the leader renews `2 × grace` before expiry.
    pub grace: Duration,
}

impl LeaseConfig {
    /// The lease timing of client-go's leader election: a 15s lease, renewals confirmed within 10s.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
            grace: Duration::from_secs(5),
        }
    }
}

impl LeaseConfig {
    /// Whole seconds, as the Lease stores them; the grace at least 1s and less than half the
    /// duration, because the lease manager renews `2 × grace` before expiry.
    pub fn check_timing(&self) -> Result<(), LeaderError> {
        let whole = |d: Duration| d.subsec_nanos() == 0;
        if whole(self.duration)
            && whole(self.grace)
            && !self.grace.is_zero()
            && self.grace * 2 < self.duration
        {
            Ok(())
        } else {
            Err(LeaderError::Timing { duration: self.duration, grace: self.grace })
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error(
        "lease duration {duration:?} and grace {grace:?} must be whole seconds, the grace at least 1s and \
         less than half the duration"
    )]
    Timing { duration: Duration, grace: Duration },
    #[error("cannot get or create the Lease {namespace}/{name}: {source}")]
    Setup {
        namespace: String,
        name: String,
        #[source]
        source: Box<LeaseManagerError>,
    },
    #[error("cannot release the Lease {namespace}/{name}: {source}")]
    Release {
        namespace: String,
        name: String,
        #[source]
        source: Box<LeaseManagerError>,
    },
    #[error("releasing the Lease {namespace}/{name} took longer than {waited:?}; it expires on its own")]
    ReleaseTimedOut { namespace: String, name: String, waited: Duration },
    #[error("the leader election task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Standby,
    Leader,
    /// Leadership held and then lost or given up; final.
    Lost,
}

/// Whether this instance may act. Cheap to clone; every clone sees the same campaign.
#[derive(Clone, Debug)]
pub struct Leadership {
    role: watch::Receiver<Role>,
}

impl Leadership {
    /// Without `--leader-elect`: always the leader.
    pub fn always() -> Self {
        let (_, role) = watch::channel(Role::Leader);
        Self { role }
    }

    /// Starts campaigning for the Lease in the background, creating it if missing.
    pub async fn campaign(
        client: kube::Client,
        config: LeaseConfig,
    ) -> Result<(Self, Campaign), LeaderError> {
        config.check_timing()?;
        let manager = lease_manager(&client, &config).await.map_err(|source| LeaderError::Setup {
            namespace: config.namespace.clone(),
            name: config.name.clone(),
            source: Box::new(source),
        })?;
        let (sender, role) = watch::channel(Role::Standby);
        let sender = Arc::new(sender);
        let (stop, stopped) = oneshot::channel();
        let leases = Api::namespaced(client.clone(), &config.namespace);
        let run = Run { client, leases, config: config.clone(), role: sender.clone() };
        let task = tokio::spawn(run.campaign(Arc::new(manager), stopped));
        Ok((Self { role }, Campaign { task: Some(task), stop: Some(stop), role: sender, config }))
    }

    pub fn is_leader(&self) -> bool {
        *self.role.borrow() == Role::Leader
    }

    /// Resolves when this instance becomes the leader, at once if it is; never after leadership was
    /// lost or the campaign ended.
    pub async fn acquired(&self) {
        self.wait_for(Role::Leader).await;
    }

    /// Resolves when this instance loses the leadership it held, or gives it up with
    /// [`Campaign::release`]. The controller should then stop acting and exit (see the module docs).
    /// Never resolves for [`Leadership::always`].
    pub async fn lost(&self) {
        self.wait_for(Role::Lost).await;
    }

    async fn wait_for(&self, role: Role) {
        let mut receiver = self.role.clone();
        if receiver.wait_for(|current| *current == role).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The background campaign. [`Campaign::release`] gives the lease up on shutdown; dropping it
/// stops campaigning without releasing, like a crash: the lease then expires on its own.
pub struct Campaign {
    task: Option<JoinHandle<Result<(), LeaderError>>>,
    stop: Option<oneshot::Sender<()>>,
    role: Arc<watch::Sender<Role>>,
    config: LeaseConfig,
}

impl Campaign {
    /// Stops acting, then releases the lease if this instance holds it, so that a standby takes
    /// over at once. Waits at most the lease grace for the API server.
    pub async fn release(mut self) -> Result<(), LeaderError> {
        step_down(&self.role);
        if let Some(stop) = self.stop.take() {
            // The task may have ended already, having lost leadership; then there is nothing to release.
            let _ = stop.send(());
        }
        let mut task = self.task.take().expect("only release and drop take the task");
        let waited = self.config.grace;
        match timeout(waited, &mut task).await {
            Ok(result) => result?,
            Err(_) => {
                task.abort();
                Err(LeaderError::ReleaseTimedOut {
                    namespace: self.config.namespace.clone(),
                    name: self.config.name.clone(),
                    waited,
                })
            }
        }
    }
}

impl Drop for Campaign {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            step_down(&self.role);
            task.abort();
        }
    }
}

/// Stops acting: a leader becomes [`Role::Lost`], a standby stays one.
fn step_down(role: &watch::Sender<Role>) {
    role.send_if_modified(|current| {
        let was_leader = *current == Role::Leader;
        if was_leader {
            *current = Role::Lost;
        }
        was_leader
    });
}

async fn lease_manager(
    client: &kube::Client,
    config: &LeaseConfig,
) -> Result<LeaseManager, LeaseManagerError> {
    // The manager renews when `2 × grace` remain, leaving the last `grace` before the deadline for
    // retries.
    let params = LeaseParams::new(&config.identity, config.duration.as_secs(), 2 * config.grace.as_secs());
    LeaseManager::new(client.clone(), &config.name, &config.namespace, params, LeaseCreateMode::AutoCreate)
        .await
}

type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Runs [`LeaseManager::changed`] after a delay. The future shares the manager rather than borrowing
/// it, so that the campaign can replace the manager while it runs.
fn changed(manager: &Arc<LeaseManager>, delay: Duration) -> Pending<Result<bool, LeaseManagerError>> {
    let manager = manager.clone();
    Box::pin(async move {
        sleep(delay).await;
        manager.changed().await
    })
}

struct Run {
    client: kube::Client,
    leases: Api<Lease>,
    config: LeaseConfig,
    role: Arc<watch::Sender<Role>>,
}

impl Run {
    /// Reads the Lease after `delay`, giving up on a read that takes longer than the next one would.
    fn read(&self, delay: Duration) -> Pending<Option<Lease>> {
        let leases = self.leases.clone();
        let name = self.config.name.clone();
        let poll = self.poll();
        Box::pin(async move {
            sleep(delay).await;
            match timeout(poll, leases.get(&name)).await {
                Ok(Ok(lease)) => Some(lease),
                Ok(Err(error)) => {
                    warn!(%error, lease = %name, "cannot read the leader election Lease");
                    None
                }
                Err(_) => {
                    warn!(lease = %name, "reading the leader election Lease timed out");
                    None
                }
            }
        })
    }

    fn poll(&self) -> Duration {
        self.config.grace / 2
    }

    /// When this instance must stop acting, if the Lease shows it as the holder.
    fn deadline(&self, lease: &Lease) -> Option<Instant> {
        let spec = lease.spec.as_ref()?;
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return None;
        }
        let renewed: SystemTime = spec.renew_time.as_ref()?.0.into();
        let deadline = renewed + self.config.duration - self.config.grace;
        let left = deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
        Some(Instant::now() + left)
    }

    fn lose(&self, why: &str) {
        warn!(lease = %self.config.name, identity = %self.config.identity, "lost leadership: {why}");
        self.role.send_replace(Role::Lost);
    }

    async fn campaign(
        self,
        mut manager: Arc<LeaseManager>,
        mut stopped: oneshot::Receiver<()>,
    ) -> Result<(), LeaderError> {
        let poll = self.poll();
        let mut changing = changed(&manager, Duration::ZERO);
        let mut reading = self.read(Duration::ZERO);
        // Whether the lease manager holds the lock, and until when a read confirmed it.
        let mut holds = false;
        let mut deadline: Option<Instant> = None;
        loop {
            let leader = *self.role.borrow() == Role::Leader;
            tokio::select! {
                biased;
                _ = &mut stopped => {
                    drop(changing);
                    return manager.release().await.map_err(|source| LeaderError::Release {
                        namespace: self.config.namespace.clone(),
                        name: self.config.name.clone(),
                        source: Box::new(source),
                    });
                }
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if leader => {
                    self.lose("no renewal confirmed before the deadline");
                    return Ok(());
                }
                result = &mut changing => {
                    let retry = match result {
                        Ok(true) => {
                            holds = true;
                            reading = self.read(Duration::ZERO);
                            Duration::ZERO
                        }
                        Ok(false) if leader => {
                            self.lose("another instance holds the lease");
                            return Ok(());
                        }
                        Ok(false) => {
                            holds = false;
                            Duration::ZERO
                        }
                        Err(error) => {
                            warn!(%error, lease = %self.config.name, "leader election failed; retrying");
                            poll
                        }
                    };
                    changing = changed(&manager, retry);
                }
                lease = &mut reading => {
                    reading = self.read(poll);
                    let Some(lease) = lease else { continue };
                    match self.deadline(&lease) {
                        Some(until) if holds => {
                            deadline = Some(until);
                            if !leader && until > Instant::now() {
                                info!(lease = %self.config.name, identity = %self.config.identity, "became the leader");
                                self.role.send_replace(Role::Leader);
                            }
                        }
                        Some(_) => {}
                        None if leader => {
                            self.lose("the Lease names another holder");
                            return Ok(());
                        }
                        None => {
                            let free = lease.spec.as_ref().is_none_or(|spec| spec.holder_identity.is_none());
                            if free && !holds {
                                // The manager sleeps until the lease it last saw expires; a fresh one
                                // takes the released lease now.
                                if let Ok(Ok(fresh)) = timeout(poll, lease_manager(&self.client, &self.config)).await {
                                    manager = Arc::new(fresh);
                                    changing = changed(&manager, Duration::ZERO);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
