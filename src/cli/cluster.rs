//! The plugin's connection to a cluster: kubectl's own flags (`--kubeconfig`, `--context`,
//! `-n/--namespace`), so that `kubectl bellwether` reaches the cluster and namespace kubectl would.

use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct KubeArgs {
    /// The kubeconfig file; defaults to $KUBECONFIG, then ~/.kube/config.
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; defaults to its current context.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace; defaults to the context's.
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot read the kubeconfig {path}: {reason}")]
    Kubeconfig { path: String, reason: String },
    #[error("cannot configure a client: {0}")]
    Config(String),
}

/// A client for the cluster these flags name, and the namespace to work in.
pub async fn connect(args: &KubeArgs) -> Result<(Client, String), ConnectError> {
    let options = KubeConfigOptions { context: args.context.clone(), ..KubeConfigOptions::default() };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| ConnectError::Kubeconfig {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
        }
        None => kube::Config::from_kubeconfig(&options).await,
    }
    .map_err(|e| ConnectError::Config(e.to_string()))?;
    let namespace = args.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(|e| ConnectError::Config(e.to_string()))?;
    Ok((client, namespace))
}

/// A call to the API server that failed, and what it was for.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {source}")]
pub struct CallError {
    pub action: String,
    #[source]
    pub source: Box<kube::Error>,
}

/// Wraps a client error with what the call was for, for `map_err`.
pub fn failed(action: impl Into<String>) -> impl FnOnce(kube::Error) -> CallError {
    let action = action.into();
    move |source| CallError { action, source: Box::new(source) }
}

/// The Events about the Rollout `name`. The API's field selectors for Events differ between
/// servers, so they are listed and filtered here.
pub async fn rollout_events(client: &Client, namespace: &str, name: &str) -> Result<Vec<Event>, CallError> {
    let events = Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map_err(failed(format!("listing the Events of Rollout {namespace}/{name}")))?;
    Ok(events
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.name.as_deref() == Some(name) && r.kind.as_deref().is_none_or(|k| k == "Rollout")
            })
        })
        .collect())
}
