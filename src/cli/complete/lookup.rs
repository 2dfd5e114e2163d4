//! The names completion reads from the cluster and the kubeconfig: briefly, since a person is
//! waiting on a key press, and quietly, since any failure simply lists nothing.

use super::Candidate;
use crate::api::Rollout;
use crate::cli::cluster::{KubeArgs, client};
use kube::api::{Api, ListParams};
use kube::config::Kubeconfig;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a completion waits for the cluster before it offers nothing.
const PATIENCE: Duration = Duration::from_secs(3);

/// The Rollouts of the namespace the flags name, each with its phase and step.
pub async fn rollouts(kube: &KubeArgs) -> Vec<Candidate> {
    let listed = async {
        let cluster = client(kube).await.ok()?;
        let api: Api<Rollout> = Api::namespaced(cluster.client, &cluster.namespace);
        api.list(&ListParams::default()).await.ok()
    };
    let Ok(Some(rollouts)) = tokio::time::timeout(PATIENCE, listed).await else {
        return Vec::new();
    };
    rollouts
        .items
        .into_iter()
        .filter_map(|rollout| {
            let status = rollout.status.unwrap_or_default();
            let phase = status.phase.map_or("Pending", |p| p.as_str());
            let help = match status.step {
                Some(step) => format!("{phase}, step {step}"),
                None => phase.to_string(),
            };
            Some(Candidate { word: rollout.metadata.name?, help })
        })
        .collect()
}

/// The namespaces that hold Rollouts, each with how many: the ones worth switching to. A person
/// who may not list Rollouts across namespaces is offered none.
pub async fn namespaces(kube: &KubeArgs) -> Vec<Candidate> {
    let listed = async {
        let cluster = client(kube).await.ok()?;
        Api::<Rollout>::all(cluster.client).list(&ListParams::default()).await.ok()
    };
    let Ok(Some(rollouts)) = tokio::time::timeout(PATIENCE, listed).await else {
        return Vec::new();
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for namespace in rollouts.items.into_iter().filter_map(|r| r.metadata.namespace) {
        *counts.entry(namespace).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(namespace, count)| Candidate {
            word: namespace,
            help: format!("{count} rollout{}", if count == 1 { "" } else { "s" }),
        })
        .collect()
}

/// The contexts of the kubeconfig the flags name (or `$KUBECONFIG`, or `~/.kube/config`), each with
/// its cluster.
pub fn contexts(kube: &KubeArgs) -> Vec<Candidate> {
    let kubeconfig = match &kube.kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    };
    let Ok(kubeconfig) = kubeconfig else { return Vec::new() };
    kubeconfig
        .contexts
        .into_iter()
        .map(|named| Candidate {
            help: named.context.map(|c| format!("cluster {}", c.cluster)).unwrap_or_default(),
            word: named.name,
        })
        .collect()
}
