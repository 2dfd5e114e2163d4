//! `workloadRef`: a Rollout whose revisions come from an existing Deployment's pod template, which
//! takes the Deployment's traffic over only once it can carry all of it, and scales the Deployment
//! down as `scaleDown` says.

use super::fixtures::*;
use super::world::World;
use bellwether::api::*;
use bellwether::engine::{Action, ServiceRole, WorkloadState, revision_of};

/// A Deployment of 10 replicas, all available, running `web:1` with the fixture's labels.
fn deployment(image: &str) -> WorkloadState {
    let template: PodTemplate = serde_json::from_value(serde_json::json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": image}]}
    }))
    .expect("a template");
    WorkloadState { template, replicas: 10, available: 10 }
}

fn referencing(scale_down: ScaleDown) -> RolloutSpec {
    rollout().steps(vec![set_weight(20), pause_until_promoted()]).workload(scale_down).build()
}

fn world(scale_down: ScaleDown) -> World {
    let mut world = World::new(referencing(scale_down), at_minute(0.0));
    world.cluster.observation.workload = Some(deployment("web:1"));
    world
}

fn revision(world: &World) -> String {
    revision_of(&world.cluster.observation.workload.as_ref().expect("a Deployment").template.get())
}

fn scale_workload(d: &bellwether::engine::Decision) -> Option<i32> {
    d.actions.iter().find_map(|a| match a {
        Action::ScaleWorkload { replicas } => Some(*replicas),
        _ => None,
    })
}

#[test]
fn the_revision_is_the_deployments_template_and_the_services_wait_for_every_pod() {
    let mut world = world(ScaleDown::Never);
    let stable = revision(&world);
    let d = world.step();
    assert_eq!(d.actions, vec![Action::ScaleReplicaSet { revision: stable.clone(), replicas: 10 }]);
    assert_eq!(world.status.stable_revision.as_deref(), Some(stable.as_str()));

    // Until all 10 pods are available, the Deployment's pods keep the traffic.
    world.pods_become_ready_up_to(&stable, 9);
    let d = world.step();
    assert!(!d.actions.iter().any(|a| matches!(a, Action::PointService { .. })), "{:?}", d.actions);
    world.pods_become_ready();
    let d = world.step();
    assert_eq!(d.actions, vec![Action::PointService { role: ServiceRole::Stable, revision: stable }]);
    world.settle();
    assert_eq!(world.status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(
        world.cluster.observation.workload.as_ref().map(|w| w.replicas),
        Some(10),
        "never: left alone"
    );
}

#[test]
fn on_success_scales_the_deployment_to_zero_once_the_services_select_the_rollout() {
    let mut world = world(ScaleDown::OnSuccess);
    world.step();
    world.pods_become_ready();
    let d = world.step();
    assert_eq!(scale_workload(&d), None, "not before the Service selects the Rollout's pods");
    let d = world.step();
    assert_eq!(scale_workload(&d), Some(0));
    world.settle();
    assert_eq!(world.cluster.observation.workload.as_ref().map(|w| w.replicas), Some(0));
}

#[test]
fn progressively_scales_the_deployment_down_by_each_available_pod() {
    let mut world = world(ScaleDown::Progressively);
    let stable = revision(&world);
    world.step();
    world.pods_become_ready_up_to(&stable, 4);
    let d = world.step();
    assert_eq!(scale_workload(&d), Some(6), "10 replicas, 4 of the Rollout's available");
    world.apply(&Action::ScaleWorkload { replicas: 6 });
    world.pods_become_ready_up_to(&stable, 2);
    assert_eq!(scale_workload(&world.step()), None, "never scaled back up");
    world.pods_become_ready();
    world.settle();
    assert_eq!(world.cluster.observation.workload.as_ref().map(|w| w.replicas), Some(0));
}

#[test]
fn a_change_of_the_deployments_template_starts_a_canary() {
    let mut world = world(ScaleDown::OnSuccess);
    world.settle();
    let stable = revision(&world);
    world.cluster.observation.workload =
        Some(WorkloadState { replicas: 0, available: 0, ..deployment("web:2") });
    let canary = revision(&world);
    assert_ne!(stable, canary);
    world.settle();
    assert_eq!(world.status.canary_revision.as_deref(), Some(canary.as_str()));
    assert_eq!(world.canary_weight(), 20);
    assert_eq!(world.replicas_of(&canary), Some(2));
}

#[test]
fn a_missing_deployment_or_both_templates_is_an_invalid_spec_that_touches_nothing() {
    let mut world = world(ScaleDown::OnSuccess);
    world.cluster.observation.workload = None;
    let d = world.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    let message = world.status.message.clone().unwrap_or_default();
    assert!(message.contains("spec.workloadRef.name: Deployment \"web\" not found"), "{message}");

    let mut both = self::world(ScaleDown::OnSuccess);
    both.spec.template = rollout().build().template;
    let d = both.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    let message = both.status.message.clone().unwrap_or_default();
    assert!(message.contains("spec.workloadRef: must not be set with spec.template"), "{message}");
}

#[test]
fn a_deployment_whose_pods_the_selector_does_not_select_is_an_invalid_spec() {
    let mut world = world(ScaleDown::Never);
    world.cluster.observation.workload.as_mut().expect("a Deployment").template.modify(|template| {
        template.metadata.as_mut().expect("metadata").labels = Some([("app".into(), "other".into())].into());
    });
    let d = world.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    let message = world.status.message.clone().unwrap_or_default();
    assert!(message.contains("app=web does not match the template's labels"), "{message}");
}
