//! The API calls the Bellwether controller makes, as RBAC names them. The chart's RBAC rules must
//! grant exactly these (tests/chart.rs), and the end-to-end suite checks that the controller makes
//! no call outside them (every e2e test, when its controller stops).

/// The API calls the controller makes, as (group, resource, verbs). This mirrors src/controller:
/// the reconcilers' watches (list, watch), reads, writes and status updates; the events Recorder
/// of kube-runtime (create, and patch for a repeated Event); and the Lease calls of
/// kube-lease-manager (get, create, patch) plus the controller's own reads of the Lease; the
/// notifier's reads of the `bellwether-notifications` ConfigMap and of webhook URL Secrets.
pub const CONTROLLER_CALLS: &[(&str, &str, &[&str])] = &[
    ("bellwether.dev", "rollouts", &["get", "list", "watch", "patch"]),
    ("bellwether.dev", "rollouts/status", &["update"]),
    ("bellwether.dev", "analysisruns", &["list", "watch", "create", "patch", "delete"]),
    ("bellwether.dev", "analysisruns/status", &["update"]),
    ("bellwether.dev", "analysistemplates", &["get", "list", "watch"]),
    ("bellwether.dev", "clusteranalysistemplates", &["get", "list", "watch"]),
    ("apps", "replicasets", &["list", "watch", "patch", "delete"]),
    ("", "services", &["get", "list", "watch", "patch"]),
    ("gateway.networking.k8s.io", "httproutes", &["get", "list", "watch", "patch"]),
    ("gateway.networking.k8s.io", "grpcroutes", &["get", "list", "watch", "patch"]),
    ("events.k8s.io", "events", &["create", "patch"]),
    ("", "configmaps", &["get"]),
    ("", "secrets", &["get"]),
    ("coordination.k8s.io", "leases", &["get", "create", "patch"]),
];
