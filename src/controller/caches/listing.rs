//! Which watch caches have listed once, and a wait for all of them that wakes every waiter.
//!
//! kube-runtime's own `Store::wait_until_ready` keeps its value behind a one-shot channel, which
//! holds a single waker: of several futures waiting at once, only the one that polled last is
//! woken, and the others wait until something else happens to poll them. A controller starting
//! with many Rollouts has many passes waiting at once, so passes wait here instead.

use tokio::sync::watch;

/// A kind of object the controller caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cached {
    Rollouts,
    ReplicaSets,
    AnalysisRuns,
    Services,
    Deployments,
    HttpRoutes,
    GrpcRoutes,
    AnalysisTemplates,
    ClusterAnalysisTemplates,
    ConfigMaps,
}

impl Cached {
    pub const ALL: [Self; 10] = [
        Self::Rollouts,
        Self::ReplicaSets,
        Self::AnalysisRuns,
        Self::Services,
        Self::Deployments,
        Self::HttpRoutes,
        Self::GrpcRoutes,
        Self::AnalysisTemplates,
        Self::ClusterAnalysisTemplates,
        Self::ConfigMaps,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Rollouts => "Rollouts",
            Self::ReplicaSets => "ReplicaSets",
            Self::AnalysisRuns => "AnalysisRuns",
            Self::Services => "Services",
            Self::Deployments => "Deployments",
            Self::HttpRoutes => "HTTPRoutes",
            Self::GrpcRoutes => "GRPCRoutes",
            Self::AnalysisTemplates => "AnalysisTemplates",
            Self::ClusterAnalysisTemplates => "ClusterAnalysisTemplates",
            Self::ConfigMaps => "ConfigMaps",
        }
    }
}

/// The kinds not listed yet.
pub struct Listing(watch::Sender<Vec<Cached>>);

impl Default for Listing {
    fn default() -> Self {
        Self(watch::Sender::new(Cached::ALL.to_vec()))
    }
}

impl Listing {
    /// Records that the cache of `kind` has listed (again, after a watch restarted: no change).
    pub fn listed(&self, kind: Cached) {
        self.0.send_if_modified(|unlisted| {
            let before = unlisted.len();
            unlisted.retain(|k| *k != kind);
            unlisted.len() != before
        });
    }

    /// Waits until every cache has listed once.
    pub async fn wait(&self) {
        // The sender lives in `self`, so the wait ends only when everything has listed.
        let _ = self.0.subscribe().wait_for(Vec::is_empty).await;
    }

    /// The kinds not listed yet.
    pub fn unlisted(&self) -> Vec<&'static str> {
        self.0.borrow().iter().map(|kind| kind.name()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use futures::stream::FuturesUnordered;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn every_waiter_is_woken_once_every_cache_has_listed() {
        let listing = Arc::new(Listing::default());
        // Waiters in a set that polls only the futures woken (as the reconcilers hold their
        // passes), and others in tasks of their own, all waiting at once.
        let mut passes: FuturesUnordered<_> = (0..10)
            .map(|_| {
                let listing = listing.clone();
                async move { listing.wait().await }
            })
            .collect();
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let listing = listing.clone();
                tokio::spawn(async move { listing.wait().await })
            })
            .collect();
        assert!(futures::poll!(passes.next()).is_pending());
        tokio::task::yield_now().await;
        for kind in Cached::ALL {
            assert!(listing.unlisted().contains(&kind.name()));
            assert!(futures::poll!(passes.next()).is_pending(), "{kind:?} was not the last to list");
            listing.listed(kind);
            listing.listed(kind);
        }
        assert!(listing.unlisted().is_empty());
        let all = async {
            while passes.next().await.is_some() {}
            futures::future::join_all(tasks).await
        };
        let woken = tokio::time::timeout(Duration::from_secs(10), all).await.expect("every waiter woken");
        assert!(woken.into_iter().all(|task| task.is_ok()));
        // And a wait that starts after is over at once.
        assert!(futures::poll!(std::pin::pin!(listing.wait())).is_ready());
    }
}
