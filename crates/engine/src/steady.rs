//! No canary in flight: the first deploy, and keeping the stable revision whole.

use super::action::{Action, EventKind, ServiceRole};
use super::pass::Pass;
use bellwether_api::ScaleDown;

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
        if available > 0 && self.may_take_over(&stable) {
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

    /// Whether the stable Service may select `stable`. A Service of a `workloadRef`'s Deployment
    /// selects the Deployment's pods and Bellwether's alike until it is pointed at a revision; it
    /// is pointed only once the revision can carry all of the Deployment's traffic.
    fn may_take_over(&self, stable: &str) -> bool {
        self.spec.workload_ref.is_none()
            || self.obs.services.stable.is_some()
            || self.obs.available(stable) >= self.plan.replicas
    }

    /// Scales a `workloadRef`'s Deployment down as its `scaleDown` says: to 0 once the Services
    /// select Bellwether's revisions, and with `progressively`, before then by every available
    /// stable pod. Never up: its pods serve nothing Bellwether's cannot.
    pub fn scale_workload(&mut self) {
        let (Some(reference), Some(workload)) = (&self.spec.workload_ref, &self.obs.workload) else { return };
        let Some(stable) = self.status.stable_revision.as_deref() else { return };
        let taken_over = self.obs.services.stable.is_some();
        let wanted = match reference.scale_down {
            ScaleDown::Never => return,
            ScaleDown::OnSuccess if !taken_over => return,
            ScaleDown::Progressively if !taken_over => {
                (self.plan.replicas - self.obs.available(stable)).clamp(0, workload.replicas)
            }
            ScaleDown::OnSuccess | ScaleDown::Progressively => 0,
        };
        if workload.replicas != wanted {
            self.actions.push(Action::ScaleWorkload { replicas: wanted });
        }
    }
}
