//! How many pods stable runs beside a canary, and how fast weight may move back to it: the rules
//! that let an autoscaler own `spec.replicas` and `dynamicStableScale` spare stable's pods.

use super::pass::Pass;
use super::replicas::{share, weight_capacity};
use bellwether_api::PauseReason;

impl Pass<'_> {
    fn dynamic_stable_scale(&self) -> bool {
        self.spec.strategy.canary.dynamic_stable_scale
    }

    /// Stable's pods while a canary is in flight: every replica, or with `dynamicStableScale`,
    /// enough for the larger of the stable weight a route still carries and the one wanted, so
    /// that stable scales down only once the routes carry less, and up before they carry more.
    pub fn stable_replicas(&self) -> i32 {
        if !self.dynamic_stable_scale() {
            return self.plan.replicas;
        }
        let carried =
            self.obs.routes.iter().map(|r| r.weights.map_or(100, |w| w.stable)).max().unwrap_or(100);
        share(self.plan.replicas, carried.max(self.status.weights.stable))
    }

    /// The canary weight to set on the routes now, when `wanted` is asked for. Without
    /// `dynamicStableScale` stable always has the pods for all traffic, and this is `wanted`. With
    /// it, weight moves back to stable only as far as stable's available pods carry it: the canary
    /// keeps the rest, but never more than any route gives it now.
    pub fn servable_canary_weight(&self, wanted: i32) -> i32 {
        if !self.dynamic_stable_scale() {
            return wanted;
        }
        let carried = self.obs.routes.iter().filter_map(|r| r.weights.map(|w| w.canary)).min().unwrap_or(0);
        wanted.max(carried.min(100 - self.stable_capacity()))
    }

    /// The most weight the revision behind the stable Service can carry with its available pods.
    fn stable_capacity(&self) -> i32 {
        let stable = self.obs.services.stable.as_ref().or(self.status.stable_revision.as_ref());
        let available = stable.map_or(0, |s| self.obs.available(s));
        weight_capacity(available, self.plan.replicas)
    }

    /// Why weight waits to move back to stable, when it does.
    pub fn stable_lag(&self, wanted: i32) -> Option<String> {
        let set = self.servable_canary_weight(wanted);
        (set > wanted).then(|| {
            let stable =
                self.obs.services.stable.clone().or(self.status.stable_revision.clone()).unwrap_or_default();
            let needed = share(self.plan.replicas, 100 - wanted);
            format!(
                "stable {stable} has {} of the {needed} available pods that {}% of the traffic needs; \
                 weight moves back as they become available",
                self.obs.available(&stable),
                100 - wanted
            )
        })
    }

    /// `spec.replicas` is 0: no pods to judge the canary on. All traffic stays on stable, both
    /// revisions follow the autoscaler to zero, and the canary waits at its step, with no progress
    /// deadline running, until replicas is above 0.
    pub fn hold_at_zero(&mut self, stable: &str) {
        self.ensure_weights(0);
        let revision = self.revision.clone();
        if self.obs.replica_set(&revision).is_some() {
            self.ensure_scale(&revision, 0);
        }
        self.ensure_scale(stable, 0);
        self.status.progress.waiting_since = None;
        let message = format!(
            "{}: spec.replicas is 0, so there are no pods to judge canary {revision} on; all traffic stays \
             on stable and the canary resumes when replicas is above 0",
            self.step_label()
        );
        self.hold_pause(PauseReason::ScaledToZero, &message);
    }
}
