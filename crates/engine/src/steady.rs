//! No canary in flight: the first deploy, and keeping the stable revision whole.

use super::action::{EventKind, ServiceRole};
use super::pass::Pass;

impl Pass<'_> {
    /// The first revision has nothing to be compared with: it goes to full scale and is stable.
    pub fn initial_deploy(&mut self) {
        let revision = self.revision.clone();
        self.status.stable_revision = Some(revision.clone());
        self.event(
            EventKind::Normal,
            "InitialDeploy",
            format!("revision {revision} is the first: deployed at full scale without steps"),
        );
        self.steady();
    }

    /// Keeps the stable revision at full scale with all traffic. Traffic and Service changes wait
    /// for at least one available stable pod, so that no weight goes to a revision without pods.
    pub fn steady(&mut self) {
        let Some(stable) = self.status.stable_revision.clone() else { return };
        let available = self.obs.available(&stable);
        if available > 0 {
            let traffic_off = self.ensure_weights(0);
            self.ensure_service(ServiceRole::Stable, &stable);
            // A canary Service that selects no revision yet selects the user's pods, which are all
            // stable's until a canary starts, and a canary points it at itself before it takes
            // traffic: it is pointed only once it selects some revision, such as an aborted
            // canary's.
            if traffic_off && self.obs.services.canary.is_some() {
                self.ensure_service(ServiceRole::Canary, &stable);
            }
        }
        self.ensure_scale(&stable, self.plan.replicas);
        let replicas = self.plan.replicas;
        if available >= replicas {
            self.say(format!("revision {stable} is stable: {available}/{replicas} pods available"));
        } else {
            self.say(format!(
                "revision {stable}: waiting for {replicas} pods to become available ({available} available)"
            ));
        }
    }
}
