//! The values a Kubernetes API server fills into the pod template of a Deployment or a ReplicaSet
//! when it stores one, as one table: `DEFAULTS`.
//!
//! A template read back from the server is therefore not the template that was written: a
//! container gains `terminationMessagePath`, `imagePullPolicy` and more, the pod spec gains
//! `dnsPolicy`, `securityContext: {}` and more. [`fill_pod_template_defaults`] does what the server
//! does (the test API server uses it); [`strip_pod_template_defaults`] removes every value that
//! equals its default, so that a template and the same template as the server stored it come out
//! the same (revisions are hashed from that).
//!
//! Sources, from Kubernetes 1.33, the API version Bellwether is built against (later releases
//! have the same defaults for pod templates):
//! - `pkg/apis/apps/v1/zz_generated.defaults.go`: `SetObjectDefaults_Deployment` and
//!   `SetObjectDefaults_ReplicaSet` call, on `spec.template`, `SetDefaults_PodSpec` and the
//!   defaulters of every type inside a pod spec, and nothing else.
//! - `pkg/apis/core/v1/defaults.go`: those defaulters (`SetDefaults_PodSpec`, `_Container`,
//!   `_EphemeralContainer`, `_Probe`, `_HTTPGetAction`, `_ObjectFieldSelector`, `_Volume`,
//!   `_HostPathVolumeSource`, `_SecretVolumeSource`, `_ConfigMapVolumeSource`,
//!   `_DownwardAPIVolumeSource`, `_ProjectedVolumeSource`, `_ServiceAccountTokenProjection`,
//!   `_PersistentVolumeClaimSpec`); `pkg/util/parsers` for the image tag.
//! - `staging/src/k8s.io/api/core/v1/types.go`: the `+default=` markers, which the generated
//!   defaulters apply too (`ContainerPort.protocol`, `GRPCAction.service`, and the iSCSI, RBD, Azure
//!   disk and ScaleIO volume fields).
//! - Each field's documentation in the API reference agrees ("Defaults to /dev/termination-log",
//!   "Defaults to 0644", ...).
//!
//! What a template does not get, although a Pod does: `SetDefaults_Pod` (`enableServiceLinks`,
//! requests copied from limits, `hostPort` copied from `containerPort` under `hostNetwork`,
//! pod-level resources) runs for Pods only ("we only want this defaulting semantic to take place on
//! a v1.Pod and not a v1.PodTemplate", says its source). Not modelled: `SetDefaults_ResourceList`
//! rounds quantities up to whole milli-units, and the server writes quantities in their canonical
//! form (`cpu: 1000m` reads back as `1`); neither adds a field, and neither happens to a template
//! whose quantities are already canonical, as `kubectl get -o yaml` shows them.
//!
//! Workload fields outside the template (`replicas: 1`, a Deployment's strategy, history limit and
//! progress deadline) come from `pkg/apis/apps/v1/defaults.go`; they are not part of a revision.

use serde_json::{Map, Value};

/// One default: the server fills `field` of each object at `at` when the field is unset.
struct Default {
    /// The objects it applies to, as a path from the pod template: keys separated by `/`, `a|b`
    /// for either key, `*` for each item of a list.
    at: &'static str,
    field: &'static str,
    value: Filled,
    /// Whether Go holds the field as a value rather than a pointer: its zero value (`""`, `0`)
    /// then reads as unset, and the server fills it too.
    zero_is_unset: bool,
}

/// What the server fills in.
enum Filled {
    Text(&'static str),
    Number(i64),
    Flag(bool),
    EmptyObject,
    /// Worked out from the object it goes into; `None` where the server fills nothing.
    Derived(fn(&Map<String, Value>) -> Option<Value>),
}

const fn value(at: &'static str, field: &'static str, value: Filled) -> Default {
    Default { at, field, value, zero_is_unset: true }
}

const fn pointer(at: &'static str, field: &'static str, value: Filled) -> Default {
    Default { at, field, value, zero_is_unset: false }
}

/// The path of every container, init container and ephemeral container, followed by `$rest`.
macro_rules! containers {
    ($($rest:expr)?) => {
        concat!("spec/containers|initContainers|ephemeralContainers/*" $(, $rest)?)
    };
}

/// The path of every container's liveness, readiness and startup probe, followed by `$rest`.
macro_rules! probes {
    ($($rest:expr)?) => {
        containers!(concat!("/livenessProbe|readinessProbe|startupProbe" $(, $rest)?))
    };
}

/// Every default the API server fills into a Deployment's or a ReplicaSet's pod template.
const DEFAULTS: &[Default] = &[
    // SetDefaults_PodSpec.
    value("spec", "dnsPolicy", Filled::Text("ClusterFirst")),
    value("spec", "restartPolicy", Filled::Text("Always")),
    pointer("spec", "securityContext", Filled::EmptyObject),
    pointer("spec", "terminationGracePeriodSeconds", Filled::Number(30)),
    value("spec", "schedulerName", Filled::Text("default-scheduler")),
    // SetDefaults_Container, for containers, init containers and (as SetDefaults_EphemeralContainer)
    // ephemeral containers.
    value(containers!(), "imagePullPolicy", Filled::Derived(container_pull_policy)),
    value(containers!(), "terminationMessagePath", Filled::Text("/dev/termination-log")),
    value(containers!(), "terminationMessagePolicy", Filled::Text("File")),
    // ContainerPort.protocol: +default="TCP".
    value(containers!("/ports/*"), "protocol", Filled::Text("TCP")),
    // SetDefaults_ObjectFieldSelector, wherever a field selector appears.
    value(containers!("/env/*/valueFrom/fieldRef"), "apiVersion", Filled::Text("v1")),
    value("spec/volumes/*/downwardAPI/items/*/fieldRef", "apiVersion", Filled::Text("v1")),
    value(
        "spec/volumes/*/projected/sources/*/downwardAPI/items/*/fieldRef",
        "apiVersion",
        Filled::Text("v1"),
    ),
    // SetDefaults_Probe, for liveness, readiness and startup probes.
    value(probes!(), "timeoutSeconds", Filled::Number(1)),
    value(probes!(), "periodSeconds", Filled::Number(10)),
    value(probes!(), "successThreshold", Filled::Number(1)),
    value(probes!(), "failureThreshold", Filled::Number(3)),
    // SetDefaults_HTTPGetAction, in probes and in lifecycle hooks.
    value(probes!("/httpGet"), "path", Filled::Text("/")),
    value(probes!("/httpGet"), "scheme", Filled::Text("HTTP")),
    value(containers!("/lifecycle/postStart|preStop/httpGet"), "path", Filled::Text("/")),
    value(containers!("/lifecycle/postStart|preStop/httpGet"), "scheme", Filled::Text("HTTP")),
    // GRPCAction.service: +default="".
    pointer(probes!("/grpc"), "service", Filled::Text("")),
    // SetDefaults_Volume: a volume with no source is an emptyDir; an image volume's pull policy
    // follows its tag as a container's does (behind the ImageVolume feature gate).
    pointer("spec/volumes/*", "emptyDir", Filled::Derived(empty_dir_unless_sourced)),
    value("spec/volumes/*/image", "pullPolicy", Filled::Derived(image_volume_pull_policy)),
    // SetDefaults_HostPathVolumeSource: HostPathUnset, the empty type.
    pointer("spec/volumes/*/hostPath", "type", Filled::Text("")),
    // SetDefaults_{Secret,ConfigMap,DownwardAPI,Projected}VolumeSource: 0644.
    pointer("spec/volumes/*/secret", "defaultMode", Filled::Number(0o644)),
    pointer("spec/volumes/*/configMap", "defaultMode", Filled::Number(0o644)),
    pointer("spec/volumes/*/downwardAPI", "defaultMode", Filled::Number(0o644)),
    pointer("spec/volumes/*/projected", "defaultMode", Filled::Number(0o644)),
    // SetDefaults_ServiceAccountTokenProjection: an hour.
    pointer(
        "spec/volumes/*/projected/sources/*/serviceAccountToken",
        "expirationSeconds",
        Filled::Number(3600),
    ),
    // ISCSIVolumeSource.iscsiInterface: +default="default".
    value("spec/volumes/*/iscsi", "iscsiInterface", Filled::Text("default")),
    // RBDVolumeSource: +default="rbd", "admin", "/etc/ceph/keyring".
    value("spec/volumes/*/rbd", "pool", Filled::Text("rbd")),
    value("spec/volumes/*/rbd", "user", Filled::Text("admin")),
    value("spec/volumes/*/rbd", "keyring", Filled::Text("/etc/ceph/keyring")),
    // AzureDiskVolumeSource: +default=ref(AzureDataDiskCachingReadWrite), "ext4", false,
    // ref(AzureSharedBlobDisk).
    pointer("spec/volumes/*/azureDisk", "cachingMode", Filled::Text("ReadWrite")),
    pointer("spec/volumes/*/azureDisk", "fsType", Filled::Text("ext4")),
    pointer("spec/volumes/*/azureDisk", "readOnly", Filled::Flag(false)),
    pointer("spec/volumes/*/azureDisk", "kind", Filled::Text("Shared")),
    // ScaleIOVolumeSource: +default="ThinProvisioned", "xfs".
    value("spec/volumes/*/scaleIO", "storageMode", Filled::Text("ThinProvisioned")),
    value("spec/volumes/*/scaleIO", "fsType", Filled::Text("xfs")),
    // SetDefaults_PersistentVolumeClaimSpec, for an ephemeral volume's claim.
    pointer("spec/volumes/*/ephemeral/volumeClaimTemplate/spec", "volumeMode", Filled::Text("Filesystem")),
];

/// Fills into `template` (a `PodTemplateSpec` as JSON) every default that is unset, as the API
/// server does when it stores a Deployment or a ReplicaSet.
pub fn fill_pod_template_defaults(template: &mut Value) {
    for default in DEFAULTS {
        each_object(template, default.at, &mut |object| {
            if default.is_unset(object.get(default.field))
                && let Some(value) = default.value.in_object(object)
            {
                object.insert(default.field.to_string(), value);
            }
        });
    }
}

/// Removes from `template` (a `PodTemplateSpec` as JSON) every value that is its default, and
/// every zero value the server would fill: what is left is the same for a template and for the
/// same template as the API server stored it.
pub fn strip_pod_template_defaults(template: &mut Value) {
    for default in DEFAULTS {
        each_object(template, default.at, &mut |object| {
            let Some(current) = object.get(default.field) else { return };
            if default.is_unset(Some(current)) || default.value.is_in(object, current) {
                object.remove(default.field);
            }
        });
    }
}

impl Default {
    fn is_unset(&self, current: Option<&Value>) -> bool {
        match current {
            None | Some(Value::Null) => true,
            Some(Value::String(text)) => self.zero_is_unset && text.is_empty(),
            Some(Value::Number(number)) => self.zero_is_unset && number.as_f64() == Some(0.0),
            Some(_) => false,
        }
    }
}

impl Filled {
    fn in_object(&self, object: &Map<String, Value>) -> Option<Value> {
        match self {
            Self::Text(text) => Some(Value::from(*text)),
            Self::Number(number) => Some(Value::from(*number)),
            Self::Flag(flag) => Some(Value::from(*flag)),
            Self::EmptyObject => Some(Value::Object(Map::new())),
            Self::Derived(derive) => derive(object),
        }
    }

    /// Whether `current`, the field's value in `object`, is the default; [`Self::in_object`]
    /// compared, without building the value.
    fn is_in(&self, object: &Map<String, Value>, current: &Value) -> bool {
        match self {
            Self::Text(text) => current.as_str() == Some(*text),
            Self::Number(number) => current.as_i64() == Some(*number),
            Self::Flag(flag) => current.as_bool() == Some(*flag),
            Self::EmptyObject => current.as_object().is_some_and(Map::is_empty),
            Self::Derived(derive) => derive(object).as_ref() == Some(current),
        }
    }
}

/// Calls `visit` with each object at `path` (see [`Default::at`]) under `value`.
fn each_object(value: &mut Value, path: &str, visit: &mut impl FnMut(&mut Map<String, Value>)) {
    each_object_at(value, path.split('/'), visit);
}

fn each_object_at(
    value: &mut Value,
    mut steps: std::str::Split<'_, char>,
    visit: &mut impl FnMut(&mut Map<String, Value>),
) {
    match (steps.next(), value) {
        (None, Value::Object(object)) => visit(object),
        (Some("*"), Value::Array(items)) => {
            for item in items {
                each_object_at(item, steps.clone(), visit);
            }
        }
        (Some(keys), Value::Object(object)) => {
            for key in keys.split('|') {
                if let Some(inner) = object.get_mut(key) {
                    each_object_at(inner, steps.clone(), visit);
                }
            }
        }
        _ => {}
    }
}

fn container_pull_policy(container: &Map<String, Value>) -> Option<Value> {
    Some(pull_policy(container.get("image").and_then(Value::as_str).unwrap_or_default()))
}

fn image_volume_pull_policy(image: &Map<String, Value>) -> Option<Value> {
    Some(pull_policy(image.get("reference").and_then(Value::as_str).unwrap_or_default()))
}

/// `Always` for an image tagged `latest`, or with neither a tag nor a digest (which means
/// `latest`); `IfNotPresent` otherwise, and for a reference that does not parse, whose tag
/// `ParseImageName` leaves empty.
fn pull_policy(image: &str) -> Value {
    let latest = image_tag(image).is_some_and(|tag| tag == "latest");
    Value::from(if latest { "Always" } else { "IfNotPresent" })
}

/// The tag of an image reference (`[domain/]path[:tag][@digest]`): its own, `latest` when it has
/// neither a tag nor a digest, `None` when it has a digest only or does not parse.
fn image_tag(image: &str) -> Option<&str> {
    let (named, digest) = match image.split_once('@') {
        Some((named, digest)) => (named, Some(digest)),
        None => (image, None),
    };
    // A colon in the last component starts the tag; one before a slash is a registry's port.
    let last_slash = named.rfind('/').map_or(0, |at| at + 1);
    let (name, tag) = match named[last_slash..].rfind(':') {
        Some(colon) => (&named[..last_slash + colon], Some(&named[last_slash + colon + 1..])),
        None => (named, None),
    };
    let parses = repository_parses(name)
        && tag.is_none_or(tag_parses)
        && digest
            .is_none_or(|digest| digest.split_once(':').is_some_and(|(a, h)| !a.is_empty() && !h.is_empty()));
    match (parses, tag, digest) {
        (false, ..) => None,
        (true, Some(tag), _) => Some(tag),
        (true, None, None) => Some("latest"),
        (true, None, Some(_)) => None,
    }
}

/// Whether a repository name is one the reference grammar accepts: an optional domain (a first
/// component with a dot or a colon, `localhost`, or any capital), then lowercase path components
/// of letters and digits joined by `.`, `_` or `-`.
fn repository_parses(name: &str) -> bool {
    let mut components: Vec<&str> = name.split('/').collect();
    let first = components[0];
    let is_domain = components.len() > 1
        && (first.contains(['.', ':'])
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase()));
    if is_domain {
        components.remove(0);
    }
    components.iter().all(|component| {
        let edges = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        component.starts_with(edges)
            && component.ends_with(edges)
            && component.chars().all(|c| edges(c) || matches!(c, '.' | '_' | '-'))
    })
}

/// Whether a tag is one the reference grammar accepts: a word character, then up to 127 word
/// characters, dots and dashes.
fn tag_parses(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    tag.len() <= 128 && tag.starts_with(word) && tag.chars().all(|c| word(c) || matches!(c, '.' | '-'))
}

/// A volume with no source is an emptyDir: the default applies while emptyDir is the only source.
fn empty_dir_unless_sourced(volume: &Map<String, Value>) -> Option<Value> {
    let sourced = volume.iter().any(|(key, value)| key != "name" && key != "emptyDir" && !value.is_null());
    (!sourced).then(|| Value::Object(Map::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A template as a person writes one.
    fn written() -> Value {
        json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "name": "web",
                    "image": "registry.example/web:1.4",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "readinessProbe": {"httpGet": {"port": "http"}},
                    "livenessProbe": {"grpc": {"port": 9090}, "periodSeconds": 5},
                    "lifecycle": {"preStop": {"httpGet": {"path": "/drain", "port": 8080}}},
                    "resources": {"limits": {"cpu": "1", "memory": "256Mi"}},
                }],
                "initContainers": [{"name": "migrate", "image": "registry.example/migrate"}],
                "volumes": [
                    {"name": "scratch"},
                    {"name": "config", "configMap": {"name": "web"}},
                    {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
                ],
            },
        })
    }

    /// The same template as the API server stores it, field by field as `kubectl get -o yaml`
    /// shows a Deployment's.
    fn as_stored() -> Value {
        json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "name": "web",
                    "image": "registry.example/web:1.4",
                    "imagePullPolicy": "IfNotPresent",
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
                    "readinessProbe": {
                        "httpGet": {"path": "/", "port": "http", "scheme": "HTTP"},
                        "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3,
                    },
                    "livenessProbe": {
                        "grpc": {"port": 9090, "service": ""},
                        "timeoutSeconds": 1, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3,
                    },
                    "lifecycle": {"preStop": {"httpGet": {"path": "/drain", "port": 8080, "scheme": "HTTP"}}},
                    "resources": {"limits": {"cpu": "1", "memory": "256Mi"}},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }],
                "initContainers": [{
                    "name": "migrate",
                    "image": "registry.example/migrate",
                    "imagePullPolicy": "Always",
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }],
                "volumes": [
                    {"name": "scratch", "emptyDir": {}},
                    {"name": "config", "configMap": {"name": "web", "defaultMode": 420}},
                    {"name": "token", "projected": {
                        "defaultMode": 420,
                        "sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}],
                    }},
                ],
                "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30,
            },
        })
    }

    fn filled(mut template: Value) -> Value {
        fill_pod_template_defaults(&mut template);
        template
    }

    fn stripped(mut template: Value) -> Value {
        strip_pod_template_defaults(&mut template);
        template
    }

    #[test]
    fn it_fills_what_the_api_server_fills_and_nothing_more() {
        // Requests stay unset under limits, and there is no enableServiceLinks: those are a Pod's
        // defaults, not a template's.
        assert_eq!(filled(written()), as_stored());
        assert_eq!(filled(as_stored()), as_stored(), "filling twice changes nothing");
    }

    #[test]
    fn stripping_gives_back_the_template_as_written() {
        assert_eq!(stripped(as_stored()), written());
        assert_eq!(stripped(written()), written(), "a template without defaults is left as it is");
    }

    #[test]
    fn values_that_differ_from_the_defaults_are_kept_both_ways() {
        let chosen = json!({"spec": {
            "dnsPolicy": "Default",
            "securityContext": {"runAsNonRoot": true},
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "web", "image": "web:1", "imagePullPolicy": "Always",
                            "ports": [{"containerPort": 53, "protocol": "UDP"}]}],
            "volumes": [{"name": "fast", "emptyDir": {"medium": "Memory"}},
                        {"name": "key", "secret": {"secretName": "key", "defaultMode": 256}}],
        }});
        let filled = filled(chosen.clone());
        for (pointer, value) in [
            ("/spec/dnsPolicy", json!("Default")),
            ("/spec/securityContext", json!({"runAsNonRoot": true})),
            ("/spec/terminationGracePeriodSeconds", json!(0)),
            ("/spec/containers/0/imagePullPolicy", json!("Always")),
            ("/spec/containers/0/ports/0/protocol", json!("UDP")),
            ("/spec/volumes/0/emptyDir", json!({"medium": "Memory"})),
            ("/spec/volumes/1/secret/defaultMode", json!(256)),
        ] {
            assert_eq!(filled.pointer(pointer), Some(&value), "{pointer} in {filled:#}");
        }
        assert_eq!(stripped(filled), stripped(chosen));
    }

    #[test]
    fn a_zero_go_value_reads_as_unset_but_a_zero_pointer_does_not() {
        let zeros = json!({"spec": {
            "schedulerName": "",
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "web", "image": "web:1", "readinessProbe": {"exec": {"command": ["true"]}, "timeoutSeconds": 0}}],
        }});
        let filled = filled(zeros.clone());
        assert_eq!(filled["spec"]["schedulerName"], "default-scheduler");
        assert_eq!(filled["spec"]["containers"][0]["readinessProbe"]["timeoutSeconds"], 1);
        assert_eq!(filled["spec"]["terminationGracePeriodSeconds"], 0, "a pointer set to zero is set");
        assert_eq!(stripped(filled), stripped(zeros));
    }

    #[test]
    fn the_pull_policy_follows_the_tag() {
        for (image, policy) in [
            ("web", "Always"),
            ("web:latest", "Always"),
            ("library/web", "Always"),
            ("registry.example:5000/team/web", "Always"),
            ("registry.example:5000/team/web:latest", "Always"),
            ("web:latest@sha256:4c1b", "Always"),
            ("web:1.4", "IfNotPresent"),
            ("registry.example:5000/team/web:1.4", "IfNotPresent"),
            ("localhost/web:v2", "IfNotPresent"),
            ("web@sha256:4c1b", "IfNotPresent"),
            ("web:1.4@sha256:4c1b", "IfNotPresent"),
            // No reference parses from these, so the tag is empty rather than latest.
            ("", "IfNotPresent"),
            ("Web", "IfNotPresent"),
            ("web:", "IfNotPresent"),
        ] {
            let container = json!({"name": "c", "image": image});
            assert_eq!(
                container_pull_policy(container.as_object().unwrap()),
                Some(json!(policy)),
                "{image:?}"
            );
        }
        let volume =
            json!({"spec": {"volumes": [{"name": "models", "image": {"reference": "models:latest"}}]}});
        assert_eq!(filled(volume)["spec"]["volumes"][0]["image"]["pullPolicy"], "Always");
    }

    #[test]
    fn every_volume_source_gets_its_defaults() {
        let volumes = json!({"spec": {"volumes": [
            {"name": "a", "hostPath": {"path": "/var/log"}},
            {"name": "b", "secret": {"secretName": "b"}},
            {"name": "c", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            {"name": "d", "iscsi": {"targetPortal": "10.0.0.1:3260", "iqn": "iqn.x", "lun": 0}},
            {"name": "e", "rbd": {"monitors": ["m"], "image": "i"}},
            {"name": "f", "azureDisk": {"diskName": "f", "diskURI": "u"}},
            {"name": "g", "scaleIO": {"gateway": "g", "system": "s", "secretRef": {"name": "s"}}},
            {"name": "h", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}},
            {"name": "i", "projected": {"sources": [{"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
        ]}});
        let filled = filled(volumes.clone());
        for (pointer, value) in [
            ("/spec/volumes/0/hostPath/type", json!("")),
            ("/spec/volumes/1/secret/defaultMode", json!(420)),
            ("/spec/volumes/2/downwardAPI/defaultMode", json!(420)),
            ("/spec/volumes/2/downwardAPI/items/0/fieldRef/apiVersion", json!("v1")),
            ("/spec/volumes/3/iscsi/iscsiInterface", json!("default")),
            ("/spec/volumes/4/rbd/pool", json!("rbd")),
            ("/spec/volumes/4/rbd/user", json!("admin")),
            ("/spec/volumes/4/rbd/keyring", json!("/etc/ceph/keyring")),
            ("/spec/volumes/5/azureDisk/cachingMode", json!("ReadWrite")),
            ("/spec/volumes/5/azureDisk/fsType", json!("ext4")),
            ("/spec/volumes/5/azureDisk/readOnly", json!(false)),
            ("/spec/volumes/5/azureDisk/kind", json!("Shared")),
            ("/spec/volumes/6/scaleIO/storageMode", json!("ThinProvisioned")),
            ("/spec/volumes/6/scaleIO/fsType", json!("xfs")),
            ("/spec/volumes/7/ephemeral/volumeClaimTemplate/spec/volumeMode", json!("Filesystem")),
            ("/spec/volumes/8/projected/sources/0/downwardAPI/items/0/fieldRef/apiVersion", json!("v1")),
        ] {
            assert_eq!(filled.pointer(pointer), Some(&value), "{pointer}");
        }
        let sourced = |volume: &Value| volume.get("emptyDir").is_some();
        assert!(
            !filled["spec"]["volumes"].as_array().unwrap().iter().any(sourced),
            "no emptyDir beside a source"
        );
        assert_eq!(stripped(filled), volumes);
    }
}
