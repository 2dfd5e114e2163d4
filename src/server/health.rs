//! Liveness and readiness, as the controller reports them.
//!
//! Liveness asks only whether the reconcile loop still runs: a dependency that is down (the API
//! server, Prometheus) is not fixed by restarting the pod, so it must not fail the probe.
//! Readiness asks whether the watch caches are synced. It does not depend on leadership, so that
//! standbys in leader election stay ready.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The health of the process, shared between the controller (which reports) and the health server
/// (which answers probes). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    stall_limit: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last_beat: Instant,
    stopped: bool,
    /// Every expected cache, and whether it has synced.
    caches: BTreeMap<String, bool>,
}

impl Health {
    /// The loop counts as stalled once no beat has come for `stall_limit`. The clock starts now,
    /// so the loop has `stall_limit` to start up.
    pub fn new(stall_limit: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                stall_limit,
                state: Mutex::new(State {
                    last_beat: Instant::now(),
                    stopped: false,
                    caches: BTreeMap::new(),
                }),
            }),
        }
    }

    /// Records that the reconcile loop is alive. A beat after [`Health::stopped`] means that the
    /// loop was started again, and makes the process live again.
    pub fn beat(&self) {
        let mut state = self.state();
        state.last_beat = Instant::now();
        state.stopped = false;
    }

    /// Records that the reconcile loop has ended: the process is no longer live.
    pub fn stopped(&self) {
        self.state().stopped = true;
    }

    /// Registers a watch cache that must sync before the process is ready. Call it before the
    /// health server starts, so that no probe sees the process ready too early.
    pub fn expect(&self, cache: impl Into<String>) {
        self.state().caches.entry(cache.into()).or_insert(false);
    }

    /// Records that `cache` has synced.
    pub fn synced(&self, cache: impl Into<String>) {
        self.state().caches.insert(cache.into(), true);
    }

    /// `Ok` while the reconcile loop runs, or why it is not live.
    pub fn liveness(&self) -> Result<(), String> {
        let state = self.state();
        if state.stopped {
            return Err("the reconcile loop stopped".to_owned());
        }
        let since = state.last_beat.elapsed();
        if since >= self.inner.stall_limit {
            return Err(format!(
                "the reconcile loop has not run for {} (limit {})",
                seconds(since),
                seconds(self.inner.stall_limit)
            ));
        }
        Ok(())
    }

    /// `Ok` once every expected cache has synced, or which have not.
    pub fn readiness(&self) -> Result<(), String> {
        let state = self.state();
        let unsynced: Vec<&str> =
            state.caches.iter().filter(|(_, synced)| !**synced).map(|(cache, _)| cache.as_str()).collect();
        if unsynced.is_empty() {
            Ok(())
        } else {
            Err(format!("caches not synced yet: {}", unsynced.join(", ")))
        }
    }

    /// The state stays meaningful after a panic elsewhere, so a poisoned lock is used as is.
    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whole seconds, or milliseconds below one second.
fn seconds(duration: Duration) -> String {
    if duration >= Duration::from_secs(1) {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}
