//! `set image` and `undo`: conveniences for clusters without GitOps, which change the Rollout's pod
//! template directly. (With GitOps, change the template in Git instead: these would be drift.)
//!
//! Both write `spec.template` with a JSON patch guarded by the Rollout's generation, so a spec
//! changed since it was read is never overwritten; the command fails and can be run again. The
//! guard is the generation, not the resourceVersion: the controller writes the status every few
//! seconds during a canary, and a status write changes no spec, so it must not fail the command.

use crate::api::{REVISION_LABEL, Rollout};
use crate::cli::cluster::{CallError, failed};
use crate::controller::replica_sets::replica_set_name;
use crate::engine::revision_of;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("rollout {name} not found in namespace {namespace}")]
    NotFound { name: String, namespace: String },
    #[error("{0:?} is not CONTAINER=IMAGE")]
    ImageArg(String),
    #[error("the pod template has no container named {container}; it has {known}")]
    NoContainer { container: String, known: String },
    #[error("{0}")]
    NoRevision(String),
    #[error("the Rollout changed while this command ran; nothing was written, run it again")]
    Changed,
    #[error(
        "rollout {name} takes its pod template from Deployment {deployment} (workloadRef): change the \
         Deployment instead; nothing was written"
    )]
    Workload { name: String, deployment: String },
    #[error(transparent)]
    Call(#[from] CallError),
}

async fn read(api: &Api<Rollout>, namespace: &str, name: &str) -> Result<Rollout, EditError> {
    api.get_opt(name)
        .await
        .map_err(failed(format!("reading Rollout {namespace}/{name}")))?
        .ok_or_else(|| EditError::NotFound { name: name.into(), namespace: namespace.into() })
}

/// The pod template the Rollout embeds; a Rollout whose template is a Deployment's cannot be
/// edited here.
fn embedded_template(rollout: &Rollout) -> Result<PodTemplateSpec, EditError> {
    rollout.spec.embedded_template().ok_or_else(|| EditError::Workload {
        name: rollout.metadata.name.clone().unwrap_or_default(),
        deployment: rollout.spec.workload_ref.as_ref().map(|w| w.name.clone()).unwrap_or_default(),
    })
}

/// Writes `template` as the Rollout's pod template, guarded by the generation it was read at;
/// returns the new revision.
async fn write_template(
    api: &Api<Rollout>,
    rollout: &Rollout,
    template: &PodTemplateSpec,
) -> Result<String, EditError> {
    let name = rollout.metadata.name.clone().unwrap_or_default();
    let patch = json!([
        {"op": "test", "path": "/metadata/generation", "value": rollout.metadata.generation},
        {"op": "replace", "path": "/spec/template", "value": template},
    ]);
    let patch = Patch::<()>::Json(serde_json::from_value(patch).expect("a valid JSON patch"));
    match api.patch(&name, &PatchParams::default(), &patch).await {
        Ok(_) => Ok(revision_of(template)),
        Err(kube::Error::Api(status)) if status.code == 422 || status.code == 409 => Err(EditError::Changed),
        Err(e) => Err(failed(format!("writing the pod template of Rollout {name}"))(e).into()),
    }
}

/// Sets the image of one container (`CONTAINER=IMAGE`); returns the new revision.
pub async fn set_image(
    client: &Client,
    namespace: &str,
    name: &str,
    assignment: &str,
) -> Result<String, EditError> {
    let (container, image) = assignment
        .split_once('=')
        .filter(|(c, i)| !c.is_empty() && !i.is_empty())
        .ok_or_else(|| EditError::ImageArg(assignment.into()))?;
    let api: Api<Rollout> = Api::namespaced(client.clone(), namespace);
    let rollout = read(&api, namespace, name).await?;
    let mut template = embedded_template(&rollout)?;
    let known: Vec<String> =
        template.spec.iter().flat_map(|s| &s.containers).map(|c| c.name.clone()).collect();
    let containers = template.spec.as_mut().map(|spec| &mut spec.containers);
    let Some(target) = containers.and_then(|list| list.iter_mut().find(|c| c.name == container)) else {
        return Err(EditError::NoContainer { container: container.into(), known: known.join(", ") });
    };
    target.image = Some(image.to_string());
    write_template(&api, &rollout, &template).await
}

/// Puts back the pod template of `to` (a revision), or by default of the stable revision while a
/// canary is in progress, or of the stable revision before the current one otherwise. The template
/// comes from that revision's ReplicaSet, kept for `revisionHistoryLimit`; returns the revision.
pub async fn undo(
    client: &Client,
    namespace: &str,
    name: &str,
    to: Option<&str>,
) -> Result<String, EditError> {
    let api: Api<Rollout> = Api::namespaced(client.clone(), namespace);
    let rollout = read(&api, namespace, name).await?;
    embedded_template(&rollout)?;
    let status = rollout.status.clone().unwrap_or_default();
    let target = match to {
        Some(revision) => revision.to_string(),
        None if status.canary_revision.is_some() => status.stable_revision.clone().ok_or_else(|| {
            EditError::NoRevision("the rollout has no stable revision to go back to".into())
        })?,
        None => status
            .history
            .iter()
            .filter(|entry| entry.outcome == crate::api::RolloutOutcome::Promoted)
            .map(|entry| entry.revision.clone())
            .find(|revision| Some(revision) != status.stable_revision.as_ref())
            .ok_or_else(|| {
                EditError::NoRevision("no earlier stable revision is recorded to go back to".into())
            })?,
    };
    let rs_name = replica_set_name(name, &target);
    let replica_set = Api::<ReplicaSet>::namespaced(client.clone(), namespace)
        .get_opt(&rs_name)
        .await
        .map_err(failed(format!("reading ReplicaSet {namespace}/{rs_name}")))?
        .ok_or_else(|| {
            EditError::NoRevision(format!(
                "revision {target} has no ReplicaSet {rs_name} any more (beyond revisionHistoryLimit?)"
            ))
        })?;
    let mut template = replica_set
        .spec
        .and_then(|s| s.template)
        .ok_or_else(|| EditError::NoRevision(format!("ReplicaSet {rs_name} has no pod template")))?;
    // The ReplicaSet's pods carry the revision label, which Bellwether adds; the Rollout's own
    // template does not.
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(REVISION_LABEL);
    }
    write_template(&api, &rollout, &template).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use bellwether_testkit::apiserver::TestApiServer;
    use kube::api::PostParams;

    fn example() -> Rollout {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/basic/rollout.yaml");
        serde_yaml::from_str(&std::fs::read_to_string(path).expect("the example")).expect("a Rollout")
    }

    fn with_image(rollout: &Rollout, image: &str) -> PodTemplateSpec {
        let mut template = rollout.spec.embedded_template().expect("an embedded template");
        template.spec.as_mut().expect("a pod spec").containers[0].image = Some(image.into());
        template
    }

    #[tokio::test]
    async fn a_status_write_after_the_read_does_not_fail_the_edit_but_a_spec_change_does() {
        let server = TestApiServer::start().await;
        let api: Api<Rollout> = Api::namespaced(server.client(), "shop");
        let read = api.create(&PostParams::default(), &example()).await.expect("creating the Rollout");
        let name = read.metadata.name.clone().expect("a name");

        // The controller writes the status in between: the template is still the one read.
        let status = json!({"status": {"message": "step 1/3"}});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("a status write");
        let template = with_image(&read, "registry.k8s.io/pause:3.9");
        assert_eq!(write_template(&api, &read, &template).await.expect("written"), revision_of(&template));
        let written = api.get(&name).await.expect("the Rollout");
        assert_eq!(written.spec.embedded_template(), Some(template));
        assert_eq!(written.status.as_ref().and_then(|s| s.message.as_deref()), Some("step 1/3"));

        // Someone changed the spec in between: nothing is written over it.
        let stale = written.clone();
        let other = with_image(&written, "registry.k8s.io/pause:3.10");
        write_template(&api, &written, &other).await.expect("the other change");
        let refused = write_template(&api, &stale, &with_image(&stale, "registry.k8s.io/pause:3.8")).await;
        assert!(matches!(refused, Err(EditError::Changed)), "{refused:?}");
        assert_eq!(api.get(&name).await.expect("the Rollout").spec.embedded_template(), Some(other));
    }
}
