//! The resource types the server knows, as discovery would describe them.

/// One resource type: where it is served and how its writes behave.
#[derive(Debug, PartialEq, Eq)]
pub struct Resource {
    /// Empty for the core group, served under `/api/v1`.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// With a status subresource, writes to the main resource keep the stored `status` and writes to
    /// `/status` change nothing else.
    pub status_subresource: bool,
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// (group, plural), which names the resource. Resources are compared by it: each use of a
    /// `const` Resource may be its own copy.
    pub fn id(&self) -> (&'static str, &'static str) {
        (self.group, self.plural)
    }

    /// The name error messages use, such as `rollouts.bellwether.dev`.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

const fn resource(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    status_subresource: bool,
) -> Resource {
    Resource { group, version, plural, kind, namespaced, status_subresource }
}

pub const SERVICES: Resource = resource("", "v1", "services", "Service", true, true);
pub const PODS: Resource = resource("", "v1", "pods", "Pod", true, true);
pub const SECRETS: Resource = resource("", "v1", "secrets", "Secret", true, false);
pub const CONFIG_MAPS: Resource = resource("", "v1", "configmaps", "ConfigMap", true, false);
pub const CORE_EVENTS: Resource = resource("", "v1", "events", "Event", true, false);
pub const EVENTS: Resource = resource("events.k8s.io", "v1", "events", "Event", true, false);
pub const REPLICA_SETS: Resource = resource("apps", "v1", "replicasets", "ReplicaSet", true, true);
pub const DEPLOYMENTS: Resource = resource("apps", "v1", "deployments", "Deployment", true, true);
pub const JOBS: Resource = resource("batch", "v1", "jobs", "Job", true, true);
pub const LEASES: Resource = resource("coordination.k8s.io", "v1", "leases", "Lease", true, false);
pub const HTTP_ROUTES: Resource =
    resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", true, true);
pub const GRPC_ROUTES: Resource =
    resource("gateway.networking.k8s.io", "v1", "grpcroutes", "GRPCRoute", true, true);
pub const ROLLOUTS: Resource = resource("bellwether.dev", "v1alpha1", "rollouts", "Rollout", true, true);
pub const ANALYSIS_TEMPLATES: Resource =
    resource("bellwether.dev", "v1alpha1", "analysistemplates", "AnalysisTemplate", true, false);
pub const CLUSTER_ANALYSIS_TEMPLATES: Resource = resource(
    "bellwether.dev",
    "v1alpha1",
    "clusteranalysistemplates",
    "ClusterAnalysisTemplate",
    false,
    false,
);
pub const ANALYSIS_RUNS: Resource =
    resource("bellwether.dev", "v1alpha1", "analysisruns", "AnalysisRun", true, true);

pub static ALL: [&Resource; 16] = [
    &SERVICES,
    &PODS,
    &SECRETS,
    &CONFIG_MAPS,
    &CORE_EVENTS,
    &EVENTS,
    &REPLICA_SETS,
    &DEPLOYMENTS,
    &JOBS,
    &LEASES,
    &HTTP_ROUTES,
    &GRPC_ROUTES,
    &ROLLOUTS,
    &ANALYSIS_TEMPLATES,
    &CLUSTER_ANALYSIS_TEMPLATES,
    &ANALYSIS_RUNS,
];

pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    ALL.iter().copied().find(|r| r.group == group && r.version == version && r.plural == plural)
}
