//! `bellwether controller`: the long-running process. It serves `/healthz`, `/readyz` and
//! `/metrics`, campaigns for leadership when asked to, runs both reconcilers, and on SIGTERM or
//! Ctrl-C lets passes in flight finish and gives up its lease so a standby takes over at once.

use crate::controller::acting::Acting;
use crate::controller::alerts::{self, AlertAborts};
use crate::controller::leader::{Campaign, Leadership, LeaseConfig, lease_name};
use crate::controller::secrets::{ReadableSecrets, parse_readable_secret};
use crate::controller::shards::{ShardConfig, Shards, ShardsTask};
use crate::controller::{self, Config, Context};
use crate::metrics::providers::Providers;
use crate::server::alerts::{Credentials, Limits, RELOAD_INTERVAL, ServerTls, TlsError, TlsFiles};
use crate::server::{self, Health, Metrics};
use kube::Client;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(clap::Args, Debug, Clone)]
pub struct ControllerArgs {
    /// Manage Rollouts in this namespace only; every namespace when not given.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Manage only Rollouts labelled `bellwether.dev/instance-id=<ID>`, to split Rollouts between
    /// controller installations. Without it, only Rollouts without that label are managed.
    #[arg(long, value_name = "ID")]
    pub instance_id: Option<String>,
    /// Run as one of several replicas: only the holder of a Lease acts; the others keep their
    /// caches warm, stay ready, and take over when it stops.
    #[arg(long, conflicts_with = "shards")]
    pub leader_elect: bool,
    /// Run as one of several replicas that split the Rollouts into N shards, each a Lease one
    /// replica holds at a time: every replica acts on the Rollouts of the shards it holds, and the
    /// survivors take a stopped replica's shards. Every replica must be given the same N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub shards: Option<u32>,
    /// The namespace of the leader-election Lease (or of the shards' Leases); defaults to the
    /// namespace of the client's configuration (in a cluster, the controller's own).
    #[arg(long, value_name = "NAMESPACE")]
    pub leader_elect_namespace: Option<String>,
    /// This instance's name in the Lease and in the Events it records; defaults to `$POD_NAME`,
    /// then the host name.
    #[arg(long, value_name = "NAME")]
    pub identity: Option<String>,
    /// How long a Lease is valid without renewal: how soon a standby takes over from a leader
    /// that died without giving it up.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// Where `/healthz` and `/readyz` are served.
    #[arg(long, default_value = "0.0.0.0:8081")]
    pub health_addr: SocketAddr,
    /// Where `/metrics` is served, in the Prometheus text format.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Rollouts, and AnalysisRuns, reconciled at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u16,
    /// How often a Rollout is reconciled when nothing it reads changes. Changes arrive by watch,
    /// so this only bounds how long a missed event could go unnoticed.
    #[arg(long, value_name = "SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub resync_seconds: u64,
    /// Requests in flight at once to any one metrics server (scheme, host and port), PromQL
    /// queries, Datadog queries and web metrics alike, across every AnalysisRun.
    #[arg(long, default_value_t = 8)]
    pub prometheus_concurrency: usize,
    /// A URL prefix that `web` metrics may read, such as `https://slo.example.com/api/`: the same
    /// scheme, host and port, and a path under it. Repeat for more. None by default: a web metric is
    /// a request the controller makes from inside the cluster for whoever can write a template, so
    /// it reads only the endpoints named here.
    #[arg(long = "web-allowed-url-prefix", value_name = "URL", value_parser = parse_url_prefix)]
    pub web_allowed_url_prefixes: Vec<reqwest::Url>,
    /// Run the Jobs of `job` metrics, in the namespace of their AnalysisRun. Off by default: a job
    /// metric has the controller create pods for whoever can write an AnalysisTemplate, so each of
    /// its measurements is an error until this is given (and RBAC grants create, get, list and
    /// delete on batch/v1 Jobs).
    #[arg(long)]
    pub job_metrics: bool,
    /// A Secret the controller may read, as NAMESPACE/NAME: a template's Prometheus credentials or
    /// headers, a web metric's headers, Datadog's API and application keys, or a notification
    /// webhook's URL. Repeat for more. Every other Secret is refused before any request is made;
    /// grant the same ones, by name, in RBAC.
    #[arg(long = "readable-secret", value_name = "NAMESPACE/NAME", value_parser = parse_readable_secret)]
    pub readable_secrets: Vec<(String, String)>,
    /// The namespace whose Secrets the metrics of ClusterAnalysisTemplates may name; defaults to the
    /// namespace of the client's configuration (in a cluster, the controller's own).
    #[arg(long, value_name = "NAMESPACE")]
    pub cluster_secrets_namespace: Option<String>,
    /// Serve the Alertmanager webhook receiver (`POST /v1/alerts`) here: firing alerts abort the
    /// canaries of the Rollouts they match. Off when not given.
    #[arg(long, value_name = "ADDR")]
    pub alerts_addr: Option<SocketAddr>,
    /// The Secret with the receiver's credentials: a `token` key (bearer token), or `username` and
    /// `password` keys (basic auth). Required with `--alerts-addr`, unless
    /// `--alerts-insecure-no-auth` is given.
    #[arg(long, value_name = "NAME", requires = "alerts_addr", conflicts_with = "alerts_insecure_no_auth")]
    pub alerts_auth_secret: Option<String>,
    /// The namespace of `--alerts-auth-secret`; defaults to the namespace of the client's
    /// configuration (in a cluster, the controller's own).
    #[arg(long, value_name = "NAMESPACE", requires = "alerts_auth_secret")]
    pub alerts_auth_secret_namespace: Option<String>,
    /// Accept alerts without credentials. Anyone who can reach the port can then abort canaries.
    #[arg(long, requires = "alerts_addr")]
    pub alerts_insecure_no_auth: bool,
    /// The largest alert webhook body accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    pub alerts_max_body_bytes: usize,
    /// Authenticated alert webhook requests accepted per minute from one source address, in bursts
    /// of as many.
    #[arg(long, value_name = "N", default_value_t = 120)]
    pub alerts_rate_limit: u32,
    /// Alert webhook requests without valid credentials answered per minute from one source
    /// address (401); more are refused (429). They never take from `--alerts-rate-limit`.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub alerts_unauthenticated_rate_limit: u32,
    /// Serve the receiver over HTTPS with the certificate chain in this PEM file (leaf first), with
    /// `--alerts-tls-key-file`. Both are read at start, the controller refusing to start when they
    /// cannot be used, and again every few seconds: a changed pair is served once it is usable.
    #[arg(long, value_name = "FILE", requires_all = ["alerts_addr", "alerts_tls_key_file"])]
    pub alerts_tls_cert_file: Option<PathBuf>,
    /// The PEM private key of `--alerts-tls-cert-file`.
    #[arg(long, value_name = "FILE", requires = "alerts_tls_cert_file")]
    pub alerts_tls_key_file: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("cannot configure the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error("cannot listen on {addr} ({flag}): {source}")]
    Listen {
        flag: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("leader election: {0}")]
    Leader(#[from] crate::controller::leader::LeaderError),
    #[error("lost leadership; exiting so that a restart comes back as a standby")]
    LostLeadership,
    #[error("cannot wait for SIGTERM: {0}")]
    Signal(#[source] std::io::Error),
    #[error(
        "--alerts-addr needs credentials: --alerts-auth-secret NAME, or --alerts-insecure-no-auth to \
         accept unauthenticated alerts"
    )]
    AlertsWithoutAuth,
    #[error("cannot start the alert receiver: {0}")]
    AlertsCredentials(String),
    #[error("cannot start the alert receiver with --alerts-tls-cert-file and --alerts-tls-key-file: {0}")]
    AlertsTls(#[source] TlsError),
}

/// Logs to stderr, as text for people or JSON for log pipelines; `RUST_LOG` filters (default
/// `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs the controller process until SIGTERM or Ctrl-C.
pub async fn main(args: ControllerArgs) -> Result<(), ControllerError> {
    init_logging(args.log_format);
    let client = Client::try_default().await.map_err(ControllerError::Client)?;
    let shutdown = shutdown_on_signal().map_err(ControllerError::Signal)?;
    serve(client, &args, shutdown).await
}

/// A shutdown flag that turns true on the first SIGTERM or Ctrl-C.
pub fn shutdown_on_signal() -> std::io::Result<watch::Receiver<bool>> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });
    Ok(shutdown)
}

/// The process without its signal handling and logging: what `main` runs, and what the
/// end-to-end tests start and stop.
pub async fn serve(
    client: Client,
    args: &ControllerArgs,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ControllerError> {
    let listen = |flag, addr| async move {
        TcpListener::bind(addr).await.map_err(|source| ControllerError::Listen { flag, addr, source })
    };
    let health_listener = listen("--health-addr", args.health_addr).await?;
    let metrics_listener = listen("--metrics-addr", args.metrics_addr).await?;
    // A receiver that cannot authenticate requests (unless told to take them all) or cannot serve
    // its certificate must not start, and the process does not start without it: nothing runs yet
    // that would need stopping.
    let alerts = match args.alerts_addr {
        Some(addr) => {
            let tls = alert_tls(args).map_err(ControllerError::AlertsTls)?;
            let listener = listen("--alerts-addr", addr).await?;
            Some((listener, tls, alert_credentials(&client, args).await?))
        }
        None => None,
    };
    // A pass that has not beaten the heartbeat for this long means the reconcile loop is stuck.
    let health = Health::new(Duration::from_secs(30));
    health.expect("rollouts");
    health.expect("analysisruns");
    let metrics = Metrics::for_process();
    let stopped = |mut shutdown: watch::Receiver<bool>| async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    let health_server =
        tokio::spawn(server::serve_health(health_listener, health.clone(), stopped(shutdown.clone())));
    let metrics_server =
        tokio::spawn(server::serve_metrics(metrics_listener, metrics.clone(), stopped(shutdown.clone())));
    let config = Config {
        namespace: args.namespace.clone(),
        instance_id: args.instance_id.clone(),
        concurrency: args.concurrency.max(1),
        cluster_secrets_namespace: args
            .cluster_secrets_namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string()),
        resync: Duration::from_secs(args.resync_seconds),
        job_metrics: args.job_metrics,
    };
    let mut servers = vec![health_server.abort_handle(), metrics_server.abort_handle()];
    if let Some((listener, tls, (credentials, refresh))) = alerts {
        servers.extend(refresh.map(|refresh| tokio::spawn(refresh).abort_handle()));
        let tls = tls.map(|(tls, reload)| {
            servers.push(tokio::spawn(reload).abort_handle());
            tls
        });
        let sink = Arc::new(AlertAborts::new(client.clone(), config.clone(), metrics.clone()));
        let limits = Limits {
            max_body_bytes: args.alerts_max_body_bytes,
            per_minute: args.alerts_rate_limit,
            unauthenticated_per_minute: args.alerts_unauthenticated_rate_limit,
        };
        let serving = server::alerts::serve_alerts(
            listener,
            credentials,
            tls,
            limits,
            sink,
            metrics.clone(),
            stopped(shutdown.clone()),
        );
        let receiver = tokio::spawn(async move {
            if let Err(error) = serving.await {
                tracing::error!(%error, "the alert receiver stopped");
            }
        });
        servers.push(receiver.abort_handle());
    }

    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()))
        .unwrap_or_else(|| "bellwether".into());
    let lease = || {
        let namespace =
            args.leader_elect_namespace.clone().unwrap_or_else(|| client.default_namespace().to_string());
        let mut lease =
            LeaseConfig::new(namespace, lease_name(args.instance_id.as_deref()), identity.clone());
        lease.duration = Duration::from_secs(args.lease_duration_seconds);
        // Renewal must fail well before the lease can expire for others: a third of it.
        lease.grace = Duration::from_secs((args.lease_duration_seconds / 3).max(1));
        lease
    };
    let (acting, standing) = match (args.shards, args.leader_elect) {
        (Some(count), _) => {
            let lease = lease();
            let grace = lease.grace;
            let (shards, task) = Shards::start(client.clone(), ShardConfig { count, lease })?;
            (Acting::Sharded(shards), Standing::Shards(task, grace))
        }
        (None, true) => {
            let (leadership, campaign) = Leadership::campaign(client.clone(), lease()).await?;
            (Acting::Leader(leadership), Standing::Campaign(campaign))
        }
        (None, false) => (Acting::Leader(Leadership::always()), Standing::Alone),
    };

    let readable = ReadableSecrets::new(args.readable_secrets.iter().cloned());
    let (caches, watches) = controller::caches::watch(&client, &config);
    let context = Arc::new(Context::start(
        client,
        metrics,
        Providers::with_web_allowed(
            args.prometheus_concurrency.max(1),
            args.web_allowed_url_prefixes.clone(),
        ),
        acting,
        readable,
        caches,
        &config,
        &identity,
    ));
    tracing::info!(?config, leader_elect = args.leader_elect, shards = ?args.shards, "starting the controller");
    let acting = context.acting.clone();
    let lost = tokio::select! {
        _ = controller::run(context, config, watches, health, shutdown) => false,
        _ = acting.lost() => true,
    };
    match standing {
        Standing::Campaign(campaign) => {
            if let Err(error) = campaign.release().await {
                tracing::warn!(%error, "cannot give up the leader-election Lease; a standby takes over once it expires");
            }
        }
        Standing::Shards(task, grace) => task.leave(grace).await,
        Standing::Alone => {}
    }
    // On shutdown the servers stop with the same signal; a loop that ended on its own takes them
    // down with it, since a process that no longer reconciles must not look alive.
    for server in servers {
        server.abort();
    }
    if lost {
        // Work in flight cannot all be recalled; a fresh process starts as a standby with none.
        return Err(ControllerError::LostLeadership);
    }
    Ok(())
}

/// What this replica gives up when it stops: the leader-election Lease, or its shards.
enum Standing {
    Alone,
    Campaign(Campaign),
    Shards(ShardsTask, Duration),
}

/// The alert receiver's credentials, and the task that keeps them up to date with their Secret.
async fn alert_credentials(
    client: &Client,
    args: &ControllerArgs,
) -> Result<(watch::Receiver<Credentials>, Option<impl Future<Output = ()> + use<>>), ControllerError> {
    match (&args.alerts_auth_secret, args.alerts_insecure_no_auth) {
        (Some(name), _) => {
            let namespace = args
                .alerts_auth_secret_namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_string());
            let loaded = alerts::load_credentials(client, &namespace, name)
                .await
                .map_err(ControllerError::AlertsCredentials)?;
            let (current, credentials) = watch::channel(loaded);
            let refresh = alerts::refresh_credentials(client.clone(), namespace, name.clone(), current);
            Ok((credentials, Some(refresh)))
        }
        (None, true) => {
            tracing::warn!(
                "the alert receiver accepts alerts without credentials (--alerts-insecure-no-auth)"
            );
            Ok((watch::channel(Credentials::Disabled).1, None))
        }
        (None, false) => Err(ControllerError::AlertsWithoutAuth),
    }
}

/// The alert receiver's certificate, when it serves HTTPS, and the task that reads its files again.
fn alert_tls(
    args: &ControllerArgs,
) -> Result<Option<(ServerTls, impl Future<Output = ()> + use<>)>, TlsError> {
    let (Some(cert), Some(key)) = (&args.alerts_tls_cert_file, &args.alerts_tls_key_file) else {
        return Ok(None);
    };
    let files = TlsFiles { cert: cert.clone(), key: key.clone() };
    files.load(RELOAD_INTERVAL).map(Some)
}

/// A `--web-allowed-url-prefix`: an http(s) URL with a host, and no credentials, query or fragment.
fn parse_url_prefix(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} must be an http:// or https:// URL with a host"));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(format!("{text:?} must have no credentials, query or fragment: it is a prefix of paths"));
    }
    Ok(url)
}
