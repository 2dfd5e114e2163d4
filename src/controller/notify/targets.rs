//! Which webhooks a notice goes to: the namespace's (the `bellwether-notifications` ConfigMap, from
//! its watch cache) and the Rollout's own, looked up when the notice is sent so that a change to
//! either applies to the next notice without a restart.

use crate::api::{NAMESPACE_CONFIGMAP, NAMESPACE_CONFIGMAP_KEY, NotificationTarget};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::{ObjectRef, Store};

/// The namespace's targets cannot be read; the Rollout's own are sent all the same.
#[derive(Debug, thiserror::Error)]
#[error("ConfigMap {namespace}/{NAMESPACE_CONFIGMAP}: {reason}")]
pub struct NamespaceTargetsError {
    pub namespace: String,
    pub reason: String,
}

/// The targets of every Rollout in `namespace`: none when it has no `bellwether-notifications`
/// ConfigMap. `config_maps` caches those ConfigMaps.
pub fn namespace_targets(
    config_maps: &Store<ConfigMap>,
    namespace: &str,
) -> Result<Vec<NotificationTarget>, NamespaceTargetsError> {
    match config_maps.get(&ObjectRef::new(NAMESPACE_CONFIGMAP).within(namespace)) {
        None => Ok(Vec::new()),
        Some(config_map) => parse_targets(&config_map)
            .map_err(|reason| NamespaceTargetsError { namespace: namespace.into(), reason }),
    }
}

/// The targets a `bellwether-notifications` ConfigMap lists. A ConfigMap without the key is a
/// mistake worth reporting, not an empty list: it was made to hold targets.
pub fn parse_targets(config_map: &ConfigMap) -> Result<Vec<NotificationTarget>, String> {
    let text = config_map
        .data
        .as_ref()
        .and_then(|data| data.get(NAMESPACE_CONFIGMAP_KEY))
        .ok_or_else(|| format!("has no key {NAMESPACE_CONFIGMAP_KEY:?}"))?;
    serde_yaml::from_str::<Option<Vec<NotificationTarget>>>(text)
        .map(Option::unwrap_or_default)
        .map_err(|error| format!("key {NAMESPACE_CONFIGMAP_KEY:?} is not a list of targets: {error}"))
}
