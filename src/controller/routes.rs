//! Gateway API routes (HTTPRoute and GRPCRoute, which share the shape that matters here): what a
//! route shows the engine, and the JSON patch that moves its weights.
//!
//! A rule is managed when its `backendRefs` reference both the stable and the canary Service.
//! `rules` and `backendRefs` are atomic lists, so weights change by a JSON patch of exactly the
//! `/spec/rules/i/backendRefs/j/weight` paths, each guarded by a `test` of the backendRef's name
//! and of the route's `resourceVersion`: a route edited since it was read makes the patch fail
//! (422) instead of writing weights into someone else's rule, and the next pass reads it again.
//! Server-side apply would take over the user's whole rule list and fight GitOps tools.

use crate::engine::{ParentState, RouteState, RouteWeights};
use serde_json::{Value, json};

/// The two Services a Rollout splits traffic between.
#[derive(Clone, Copy, Debug)]
pub struct Services<'a> {
    pub stable: &'a str,
    pub canary: &'a str,
}

/// Why a route's weights cannot be patched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("{route}: no rule references both {stable} and {canary}")]
    Unmanaged { route: String, stable: String, canary: String },
    #[error("{route}: metadata.resourceVersion is missing")]
    NoResourceVersion { route: String },
}

/// A managed rule: its index and the indexes of its stable and canary backendRefs.
struct ManagedRule {
    rule: usize,
    stable: usize,
    canary: usize,
}

/// The Gateway API default weight of a backendRef without one.
const DEFAULT_WEIGHT: i64 = 1;

fn namespace(route: &Value) -> &str {
    route.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default")
}

/// Whether a backendRef is the core Service `name` in the route's namespace.
fn is_service(backend: &Value, name: &str, route_namespace: &str) -> bool {
    let field = |key: &str| backend.get(key).and_then(Value::as_str);
    field("name") == Some(name)
        && field("group").is_none_or(str::is_empty)
        && field("kind").is_none_or(|k| k == "Service")
        && field("namespace").is_none_or(|ns| ns == route_namespace)
}

fn managed_rules(route: &Value, services: Services<'_>) -> Vec<ManagedRule> {
    let ns = namespace(route);
    let rules = route.pointer("/spec/rules").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    rules
        .iter()
        .enumerate()
        .filter_map(|(rule, value)| {
            let refs = value.get("backendRefs").and_then(Value::as_array)?;
            let find = |name| refs.iter().position(|r| is_service(r, name, ns));
            Some(ManagedRule { rule, stable: find(services.stable)?, canary: find(services.canary)? })
        })
        .collect()
}

/// Whether some rule of `route` references both Services, so that Bellwether has weights to shift.
pub fn is_managed(route: &Value, services: Services<'_>) -> bool {
    !managed_rules(route, services).is_empty()
}

fn weight(route: &Value, rule: usize, backend: usize) -> i64 {
    route
        .pointer(&format!("/spec/rules/{rule}/backendRefs/{backend}/weight"))
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_WEIGHT)
}

/// What the engine sees of `route`, named `name` (`HTTPRoute/shop/checkout`): the weights its
/// managed rules carry when they all agree, its generation, and each parent's `Accepted` condition.
pub fn route_state(name: String, route: &Value, services: Services<'_>) -> RouteState {
    let mut weights = managed_rules(route, services).into_iter().map(|m| RouteWeights {
        canary: weight(route, m.rule, m.canary) as i32,
        stable: weight(route, m.rule, m.stable) as i32,
    });
    let first = weights.next();
    let agreed = first.filter(|first| weights.all(|w| w == *first));
    let ns = namespace(route);
    let parents = route
        .pointer("/status/parents")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|parent| {
            let reference = |key: &str| parent.pointer(&format!("/parentRef/{key}")).and_then(Value::as_str);
            let accepted = parent.get("conditions").and_then(Value::as_array).and_then(|conditions| {
                conditions.iter().find(|c| c.get("type").and_then(Value::as_str) == Some("Accepted"))
            });
            ParentState {
                name: format!(
                    "{}/{}/{}",
                    reference("kind").unwrap_or("Gateway").to_lowercase(),
                    reference("namespace").unwrap_or(ns),
                    reference("name").unwrap_or_default()
                ),
                accepted: accepted.and_then(|c| c.get("status")).and_then(Value::as_str) == Some("True"),
                observed_generation: accepted
                    .and_then(|c| c.get("observedGeneration"))
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
            }
        })
        .collect();
    RouteState {
        name,
        weights: agreed,
        generation: route.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0),
        parents,
    }
}

/// The JSON patch (RFC 6902) that gives every managed rule of `route` these weights, or `None`
/// when it already carries them.
pub fn weight_patch(
    route: &Value,
    services: Services<'_>,
    weights: RouteWeights,
) -> Result<Option<Value>, RouteError> {
    let name = route.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let label = format!("{}/{name}", namespace(route));
    let managed = managed_rules(route, services);
    if managed.is_empty() {
        return Err(RouteError::Unmanaged {
            route: label,
            stable: services.stable.into(),
            canary: services.canary.into(),
        });
    }
    let resource_version = route
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .ok_or(RouteError::NoResourceVersion { route: label })?;
    let mut ops = vec![json!({"op": "test", "path": "/metadata/resourceVersion", "value": resource_version})];
    for m in &managed {
        for (backend, service, wanted) in
            [(m.stable, services.stable, weights.stable), (m.canary, services.canary, weights.canary)]
        {
            if weight(route, m.rule, backend) == i64::from(wanted)
                && route.pointer(&format!("/spec/rules/{}/backendRefs/{backend}/weight", m.rule)).is_some()
            {
                continue;
            }
            let path = format!("/spec/rules/{}/backendRefs/{backend}", m.rule);
            ops.push(json!({"op": "test", "path": format!("{path}/name"), "value": service}));
            ops.push(json!({"op": "add", "path": format!("{path}/weight"), "value": wanted}));
        }
    }
    Ok((ops.len() > 1).then_some(Value::Array(ops)))
}
