//! The plugin's connection to a cluster: kubectl's own flags (`--kubeconfig`, `--context`,
//! `-n/--namespace`, `--as`, `--as-group`, `--request-timeout`), so that `kubectl bellwether` reaches
//! the cluster and namespace kubectl would, as the user kubectl would.

use crate::api::Rollout;
use crate::cli::kube_error::{self, describe};
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::PathBuf;
use std::time::Duration;

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
    /// Act as this user (impersonation), as kubectl's --as; the requests are recorded as theirs.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Act as a member of this group too, with --as; repeat it for more groups.
    #[arg(long = "as-group", global = true, value_name = "GROUP", requires = "as_user")]
    pub as_groups: Vec<String>,
    /// How long to wait for each request to the API server: seconds (30) or a duration (30s, 1m);
    /// 0, the default, waits as long as it takes.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_request_timeout)]
    pub request_timeout: Option<Duration>,
}

/// The longest `--request-timeout`: a day. Far longer ones overflow the clock arithmetic of the
/// HTTP client's timers, which panics in its connection task.
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// A `--request-timeout` as kubectl reads it: a whole number of seconds, or a number with a unit.
pub fn parse_request_timeout(text: &str) -> Result<Duration, String> {
    let timeout = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().map(Duration::from_secs).map_err(|_| format!("{text} seconds is too long"))?
    } else {
        crate::api::Duration::new(text)
            .parse()
            .map_err(|e| e.to_string())?
            .to_std()
            .map_err(|e| e.to_string())?
    };
    if timeout > MAX_REQUEST_TIMEOUT {
        return Err(format!("{text} is longer than a day; 0 waits as long as it takes"));
    }
    Ok(timeout)
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot read the kubeconfig {path}: {reason}")]
    Kubeconfig { path: String, reason: String },
    #[error("cannot configure a client: {0}")]
    Config(String),
    #[error("cannot reach the Kubernetes API at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error(
        "the Kubernetes API at {server} does not serve {api_version}: Bellwether's CRDs are not installed \
         in this cluster. Install them with the Helm chart (helm install bellwether charts/bellwether \
         --namespace bellwether --create-namespace), or on their own with kubectl apply -f crds/ (both \
         from Bellwether's source)"
    )]
    NoCrds { server: String, api_version: String },
    #[error("the Kubernetes API at {server} refused the request: {reason}")]
    Refused { server: String, reason: String },
    #[error("cannot call the Kubernetes API at {server}: {reason}")]
    Failed { server: String, reason: String },
}

/// A client for one cluster, the namespace to work in, and the API server's address to name in
/// errors.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
    pub server: String,
}

/// A client for the cluster these flags name, once the API server has answered that it serves
/// Bellwether's API: a cluster that cannot be reached, or has no CRDs, is told apart here from a
/// rollout that does not exist.
pub async fn connect(args: &KubeArgs) -> Result<Cluster, ConnectError> {
    let cluster = client(args).await?;
    cluster.check().await?;
    Ok(cluster)
}

/// A client for the cluster these flags name, without a call to it.
pub async fn client(args: &KubeArgs) -> Result<Cluster, ConnectError> {
    let options = KubeConfigOptions { context: args.context.clone(), ..KubeConfigOptions::default() };
    let mut config = match &args.kubeconfig {
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
    if let Some(user) = &args.as_user {
        config.auth_info.impersonate = Some(user.clone());
        if !args.as_groups.is_empty() {
            config.auth_info.impersonate_groups = Some(args.as_groups.clone());
        }
    }
    if let Some(timeout) = args.request_timeout.filter(|t| !t.is_zero()) {
        // kube has no deadline for a whole request; these bound every step of one, so a request
        // to a server that does not answer fails after about this long.
        config.connect_timeout = Some(timeout);
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
    }
    let namespace = args.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
    let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
    let client = Client::try_from(config).map_err(|e| ConnectError::Config(e.to_string()))?;
    Ok(Cluster { client, namespace, server })
}

impl Cluster {
    /// Asks the API server, by discovery, whether it serves Bellwether's Rollouts.
    pub async fn check(&self) -> Result<(), ConnectError> {
        let api_version = <Rollout as kube::Resource>::api_version(&()).to_string();
        let server = self.server.clone();
        match self.client.list_api_group_resources(&api_version).await {
            Ok(list) if list.resources.iter().any(|r| r.name == "rollouts") => Ok(()),
            Ok(_) => Err(ConnectError::NoCrds { server, api_version }),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                Err(ConnectError::NoCrds { server, api_version })
            }
            Err(error @ kube::Error::Api(_)) => {
                Err(ConnectError::Refused { server, reason: describe(&error) })
            }
            Err(error) if kube_error::is_unreachable(&error) => {
                Err(ConnectError::Unreachable { server, reason: describe(&error) })
            }
            Err(error) => Err(ConnectError::Failed { server, reason: describe(&error) }),
        }
    }

    /// What a command that worked with this cluster failed of, in words: when the connection
    /// itself failed, naming the server.
    pub fn explain(&self, error: &(dyn std::error::Error + 'static)) -> String {
        match kube_error::find(error) {
            Some(cause) if kube_error::is_unreachable(cause) => {
                format!("cannot reach the Kubernetes API at {}: {error}", self.server)
            }
            _ => error.to_string(),
        }
    }
}

/// A call to the API server that failed, and what it was for.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {}", describe(source))]
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
