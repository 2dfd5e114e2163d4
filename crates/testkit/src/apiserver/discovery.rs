//! Discovery: the resources of one API group version, as `GET /apis/GROUP/VERSION` (or `/api/v1`)
//! lists them, so that a client can tell a group the server does not serve (such as Bellwether's,
//! before its CRDs are installed) from an object that does not exist.

use super::resources::ALL;
use serde_json::{Value, json};

/// The `APIResourceList` of `group` (empty for the core group) at `version`; `None` when the server
/// serves no resource there.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = ALL
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .flat_map(|r| {
            let main = json!({
                "name": r.plural,
                "singularName": r.kind.to_ascii_lowercase(),
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            });
            let status = r.status_subresource.then(|| {
                json!({
                    "name": format!("{}/status", r.plural),
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": ["get", "patch", "update"],
                })
            });
            std::iter::once(main).chain(status)
        })
        .collect();
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    (!resources.is_empty()).then(|| {
        json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        })
    })
}
