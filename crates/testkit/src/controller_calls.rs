//! The API calls the Bellwether controller makes, as RBAC names them. The chart's RBAC rules must
//! grant exactly these (tests/chart/rendered.rs), and the end-to-end suite checks that the controller makes
//! no call outside them (every e2e test, when its controller stops).

/// The API calls the controller makes, as (group, resource, verbs). This mirrors src/controller:
/// the watches its caches are fed by (list, watch; a pass reads nothing else), writes and status
/// updates (Deployments: a `workloadRef`'s, scaled down and, when its Rollout is deleted, back up); the alert receiver's list of Rollouts and its read after a conflict; the events
/// Recorder of kube-runtime (create, and patch for a repeated Event); the Lease calls of
/// kube-lease-manager (get, create, patch) plus the controller's own reads of the Lease, and with
/// sharding the member Leases (applied, listed, and deleted once long expired); the
/// watch of the `bellwether-notifications` ConfigMaps, and reads of Secrets named in templates and
/// notification targets.
pub const CONTROLLER_CALLS: &[(&str, &str, &[&str])] = &[
    ("bellwether.dev", "rollouts", &["get", "list", "watch", "patch"]),
    ("bellwether.dev", "rollouts/status", &["update"]),
    ("bellwether.dev", "analysisruns", &["list", "watch", "create", "patch", "delete"]),
    ("bellwether.dev", "analysisruns/status", &["update"]),
    ("bellwether.dev", "analysistemplates", &["list", "watch"]),
    ("bellwether.dev", "clusteranalysistemplates", &["list", "watch"]),
    ("apps", "replicasets", &["list", "watch", "patch", "delete"]),
    ("apps", "deployments", &["list", "watch", "patch"]),
    ("", "services", &["list", "watch", "patch"]),
    ("gateway.networking.k8s.io", "httproutes", &["list", "watch", "patch"]),
    ("gateway.networking.k8s.io", "grpcroutes", &["list", "watch", "patch"]),
    ("events.k8s.io", "events", &["create", "patch"]),
    ("", "configmaps", &["list", "watch"]),
    ("", "secrets", &["get"]),
    ("coordination.k8s.io", "leases", &["get", "list", "create", "patch", "delete"]),
];

/// The calls the controller makes besides when started with `--job-metrics`: the Jobs of job
/// metrics, created, read by name while they run, listed by their run's label and deleted. The
/// chart grants them only with `jobMetrics: true`.
pub const JOB_METRIC_CALLS: &[(&str, &str, &[&str])] =
    &[("batch", "jobs", &["get", "list", "create", "delete"])];
