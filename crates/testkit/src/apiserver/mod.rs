//! An in-process Kubernetes API server for the controller's end-to-end tests.
//!
//! It serves the REST API over HTTP/1 on a 127.0.0.1 port, so the unmodified kube-rs client talks to
//! it as to a real one: get, list, watch, create, replace, delete and the four patch types, with
//! resourceVersions, generations, the status subresource, finalizers and `metav1.Status` errors.
//! Bellwether's custom resources are validated against their CRDs and the Gateway API routes against
//! the official CRDs. Deployments and ReplicaSets get the defaults a real API server fills in, their
//! pod templates' included, so that tests read them back as from a cluster (see `defaults`).
//! Simulated controllers make ReplicaSets available and routes Accepted, and run Jobs: a Job's first
//! container's command runs as a process on this machine, and its status follows it (see `jobs`).
//!
//! Simplifications, none of which the controller should depend on:
//! - Strategic merge patch is a JSON merge patch, and server-side apply merges the applied fields like
//!   one. Only applies own fields: an apply conflicts with the fields other managers applied, and
//!   writes by other means own nothing; fields a manager stops applying stay (see `store::Owners`).
//! - CRD defaults are checked by validation but not stored; unknown fields are rejected, not pruned.
//!   Built-in kinds (Services, Secrets, ConfigMaps, Deployments, ReplicaSets, Jobs, Events, Leases)
//!   are stored without validation, but for a Job's containers and `restartPolicy`; only
//!   Deployments and ReplicaSets get defaults.
//! - `limit` is ignored: a list is one page. Watches do not time out, and the only bookmark is the one
//!   that ends the initial events of a streaming list (`sendInitialEvents`).
//! - `metadata.generation` is kept for every kind. Deleting starts no garbage collection of dependents:
//!   an object whose owner is deleted stays (a Job an AnalysisRun owned among them), whatever the
//!   `propagationPolicy`.
//! - Jobs create no pods: their commands run on this machine (see `jobs`).
//! - Dry runs are refused rather than ignored.
//! - The simulated Gateway accepts every parent a route names; no Gateway objects are needed. A
//!   route annotated [`REFUSE_ANNOTATION`] is refused instead (`Accepted=False`) by every parent.
//!
//! It serves discovery of each group version (`GET /apis/GROUP/VERSION`), so that a client can tell
//! a group that is not served from an object that does not exist.
//!
//! Behaviours a test can ask for, to see the controller cope with them: injected 409 conflicts,
//! forbidden writes, requests answered with a server error or a refusal, dropped watches, a watch
//! answered 410 Gone, lagging watches, and an API group that is not served (CRDs that are not
//! installed). The watches of
//! the resources named in [`Options::watch_delays`] lag as a controller's watch cache that falls
//! behind the API server does: each change event arrives a random time late, up to a maximum, drawn
//! from a seeded generator, and the events of one stream stay in order.
//!
//! The server stops when the handle is dropped.

mod controllers;
mod defaults;
mod discovery;
mod jobs;
mod patch;
mod resources;
mod routes;
mod scale;
mod selector;
mod status;
mod store;
mod validation;
mod watch;

pub use controllers::{GATEWAY_CONTROLLER, REFUSE_ANNOTATION};
pub use patch::json_patch;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use watch::WatchHub;

/// How the server behaves; [`Options::default`] suits most tests.
pub struct Options {
    /// How many change events are retained for watches to resume from; a watch from an older
    /// resourceVersion answers 410 Gone.
    pub history_limit: usize,
    /// How often the simulated controllers run.
    pub tick: Duration,
    /// How long a ReplicaSet's pods take to become ready after its spec changes.
    pub replica_set_delay: Duration,
    /// The largest request body a write may have; larger ones are refused with 413, as the real
    /// API server refuses those over 3 MiB.
    pub max_request_bytes: usize,
    /// Watches of the resources of these plurals (such as `"rollouts"`) lag, as a controller's
    /// watch cache that falls behind the API server does: each change event such a watch sends is
    /// held back for a random time between zero and the duration, but never sent before the events
    /// sent earlier on the same stream, so that no stream is reordered. The initial events of a new
    /// watch and the bookmark that ends them are sent at once. Empty by default: no watch lags.
    pub watch_delays: Vec<(String, Duration)>,
    /// Seeds the random delays of `watch_delays`.
    pub watch_delay_seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            history_limit: 10_000,
            tick: Duration::from_millis(20),
            replica_set_delay: Duration::from_millis(200),
            max_request_bytes: 3 * 1024 * 1024,
            watch_delays: Vec::new(),
            watch_delay_seed: 0,
        }
    }
}

pub struct TestApiServer {
    address: SocketAddr,
    store: Arc<Store>,
    tasks: Vec<JoinHandle<()>>,
}

impl TestApiServer {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding a 127.0.0.1 port");
        let address = listener.local_addr().expect("a bound listener has an address");
        let hub = WatchHub::new(options.history_limit, options.watch_delays, options.watch_delay_seed);
        let store = Arc::new(Store::new(hub));
        let server = tokio::spawn(serve(listener, store.clone(), options.max_request_bytes));
        let controllers =
            tokio::spawn(controllers::run(store.clone(), options.tick, options.replica_set_delay));
        Self { address, store, tasks: vec![server, controllers] }
    }

    /// A client for this server, configured as for a real one but without credentials.
    pub fn client(&self) -> kube::Client {
        let url = format!("http://{}", self.address).parse().expect("a valid URL");
        kube::Client::try_from(kube::Config::new(url)).expect("a client for the test API server")
    }

    /// A client that says it is `user` (by impersonation, which this server takes at its word), so
    /// that its calls can be told from the test's own; see [`CallLog`].
    pub fn client_as(&self, user: &str) -> kube::Client {
        let url = format!("http://{}", self.address).parse().expect("a valid URL");
        let mut config = kube::Config::new(url);
        config.auth_info.impersonate = Some(user.to_string());
        kube::Client::try_from(config).expect("a client for the test API server")
    }

    /// The record of the API calls made to this server, which outlives the server.
    pub fn call_log(&self) -> CallLog {
        CallLog(self.store.clone())
    }

    /// A kubeconfig for this server, for a client in another process (such as the controller
    /// binary) to reach it.
    pub fn kubeconfig(&self) -> String {
        self.kubeconfig_with_user("{}")
    }

    /// A kubeconfig whose client says it is `user`, as [`Self::client_as`] does, so that a process's
    /// calls can be told from the test's own in the [`CallLog`].
    pub fn kubeconfig_as(&self, user: &str) -> String {
        self.kubeconfig_with_user(&format!("{{as: {user:?}}}"))
    }

    fn kubeconfig_with_user(&self, user: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: http://{}\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\n\
             current-context: test\nusers:\n- name: test\n  user: {user}\n",
            self.address
        )
    }

    /// Answers the next `count` writes to resources of this plural (such as `"rollouts"`) with
    /// 409 Conflict, as if another client had written first.
    pub fn inject_conflicts(&self, plural: &str, count: usize) {
        self.store.inject_conflicts(plural, count);
    }

    /// Refuses every write to resources of this plural with 403 Forbidden, as RBAC would for a user
    /// who may only read them.
    pub fn forbid_writes(&self, plural: &str) {
        self.store.forbid_writes(plural);
    }

    /// Answers every request under this API group (such as `bellwether.dev`) with 404, discovery
    /// included, as an API server does for a group whose CRDs are not installed.
    pub fn stop_serving_group(&self, group: &str) {
        self.store.stop_serving_group(group);
    }

    /// Answers the next `count` requests for resources of this plural (reads, watches and writes
    /// alike) with the HTTP `code`, as an API server that fails or refuses them would: 403 as RBAC
    /// words it, 429, 500 or 503. `usize::MAX` makes it permanent.
    pub fn fail_requests(&self, plural: &str, code: u16, count: usize) {
        assert!(status::ApiError::can_inject(code), "the test API server cannot inject HTTP {code}");
        self.store.fail_requests(plural, code, count);
    }

    /// Ends every open watch stream.
    pub fn drop_watches(&self) {
        self.store.drop_watches();
    }

    /// Answers the next watch request with 410 Gone, as if its resourceVersion had been compacted.
    pub fn expire_next_watch(&self) {
        self.store.expire_next_watch();
    }
}

/// The API calls made to a test API server, by user.
#[derive(Clone)]
pub struct CallLog(Arc<Store>);

impl CallLog {
    /// Every (API group, resource with subresource, verb) that `user` called.
    pub fn calls_of(&self, user: &str) -> BTreeSet<(String, String, String)> {
        self.0.counts_of(user).into_keys().collect()
    }

    /// Every group `user` said it acts as (by impersonation, `Impersonate-Group`) in its calls.
    pub fn groups_of(&self, user: &str) -> BTreeSet<String> {
        self.0.groups_of(user)
    }

    /// How many requests `user` made so far in each (API group, resource with subresource, verb).
    /// Counts only grow, so the calls made between two snapshots are their difference.
    pub fn counts_of(&self, user: &str) -> BTreeMap<(String, String, String), u64> {
        self.0.counts_of(user)
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Accepts connections until aborted; aborting drops the set, which ends every connection with it.
async fn serve(listener: TcpListener, store: Arc<Store>, max_request_bytes: usize) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Such as running out of file descriptors: let connections close rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let store = store.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let store = store.clone();
                async move { Ok::<_, Infallible>(routes::handle(&store, request, max_request_bytes).await) }
            });
            // A client that hangs up mid-request is no failure of the server.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
        // Reap finished connections so that the set does not grow for the life of the server.
        while connections.try_join_next().is_some() {}
    }
}
