//! What the caches keep of an HTTPRoute or a GRPCRoute: the fields decisions and route patches
//! read, under their Gateway API names, so that the cached copy serializes to the JSON
//! [`crate::controller::routes`] reads. Everything else (hostnames, parentRefs, managed fields,
//! conditions other than `Accepted`, `ResolvedRefs` and `PartiallyInvalid`) is skipped while the watch event is read:
//! kept as generic JSON, a route took about 8 KiB of memory.

use kube::Resource;
use kube::api::ApiResource;
use kube::core::{DynamicResourceScope, ObjectMeta};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CachedRoute {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Spec,
    #[serde(default)]
    pub status: Status,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Spec {
    /// Every rule, whole and in order: patches address a rule by its position, and header-route
    /// rules are copies of the managed rules' matches, filters and backends.
    #[serde(default)]
    pub rules: Vec<CompactJson>,
}

/// A JSON value kept as its compact text: a route's rule takes the bytes of its JSON instead of
/// a tree of maps (about a tenth of the memory), and is read back whole when a pass serializes the
/// route for [`crate::controller::routes`].
#[derive(Clone, Debug, Default)]
pub struct CompactJson(Box<str>);

impl Serialize for CompactJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value: serde_json::Value = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        value.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CompactJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(Self(value.to_string().into_boxed_str()))
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Status {
    #[serde(default)]
    pub parents: Vec<Parent>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Parent {
    #[serde(default)]
    pub parent_ref: ParentRef,
    /// Only `Accepted`, `ResolvedRefs` and `PartiallyInvalid` are kept
    /// ([`CachedRoute::keep_acceptance`]).
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ParentRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl CachedRoute {
    /// Drops the conditions no decision reads.
    pub fn keep_acceptance(&mut self) {
        for parent in &mut self.status.parents {
            parent
                .conditions
                .retain(|condition| ["Accepted", "ResolvedRefs"].contains(&condition.type_.as_str()));
        }
    }
}

impl Resource for CachedRoute {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(resource: &ApiResource) -> Cow<'_, str> {
        resource.group.as_str().into()
    }

    fn version(resource: &ApiResource) -> Cow<'_, str> {
        resource.version.as_str().into()
    }

    fn kind(resource: &ApiResource) -> Cow<'_, str> {
        resource.kind.as_str().into()
    }

    fn api_version(resource: &ApiResource) -> Cow<'_, str> {
        resource.api_version.as_str().into()
    }

    fn plural(resource: &ApiResource) -> Cow<'_, str> {
        resource.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
