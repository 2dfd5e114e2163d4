//! Gateway API routes (HTTPRoute and GRPCRoute, which share the shape that matters here): what a
//! route shows the engine, and the JSON patch that makes it carry the traffic the engine wants.
//!
//! A rule is managed when its `backendRefs` reference both the stable and the canary Service.
//! `rules`, `backendRefs` and `filters` are atomic lists, so every change is a JSON patch of exact
//! paths, guarded by a `test` of the route's `resourceVersion` and of what each path holds: a route
//! edited since it was read makes the patch fail (422) instead of writing into someone else's rule,
//! and the next pass reads it again. Server-side apply would take over the user's whole rule list
//! and fight GitOps tools.
//!
//! Besides weights, Bellwether adds two things, and only ever touches what it added:
//! - **header-route rules**: per header route and managed rule, a copy of the managed rule (its
//!   matches with the header matches added, its filters and timeouts) whose only backend is the
//!   canary. More header matches win over fewer in Gateway API precedence, so the copy takes the
//!   matching requests whatever the weights. It is named
//!   `<header route>-<j>.<rollout>.<namespace>.bellwether.dev` (rule names are standard since
//!   Gateway API v1.4), which says whose it is.
//! - **mirror filters**: a `RequestMirror` filter to the canary Service on each managed rule.

use crate::api::Rollout;
use crate::engine::{Exposure, ParentState, RouteState, RouteWeights, Traffic};
use bellwether_api::{HeaderMatch, HeaderMatchType};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The Rollout whose traffic a route carries, and the two Services it splits it between.
#[derive(Clone, Copy, Debug)]
pub struct Services<'a> {
    /// The Rollout's name and namespace: the rules it adds are named after them.
    pub rollout: &'a str,
    pub namespace: &'a str,
    pub stable: &'a str,
    pub canary: &'a str,
}

impl<'a> Services<'a> {
    /// Those of `rollout`, whose name and namespace are `name` and `namespace`.
    pub fn of(rollout: &'a Rollout, name: &'a str, namespace: &'a str) -> Self {
        let canary = &rollout.spec.strategy.canary;
        Self { rollout: name, namespace, stable: &canary.stable_service, canary: &canary.canary_service }
    }
}

/// Why a route cannot be patched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("{route}: no rule references both {stable} and {canary}")]
    Unmanaged { route: String, stable: String, canary: String },
    #[error("{route}: metadata.resourceVersion is missing")]
    NoResourceVersion { route: String },
    #[error(
        "{route}: rule {rule} already matches header {header:?}, so header route {header_route:?} cannot \
         add its own match on it"
    )]
    HeaderTaken { route: String, rule: usize, header: String, header_route: String },
    #[error("{route}: the rule name {name:?} is longer than the 253 characters a route allows")]
    NameTooLong { route: String, name: String },
    #[error(
        "{route}: {header_routes} header route(s) would take the route to {rules} rules, more than the \
         {MAX_RULES} Gateway API allows: each adds a rule per managed rule"
    )]
    TooManyRules { route: String, header_routes: usize, rules: usize },
    #[error(
        "{route}: its header routes would take the route to {matches} matches across its rules, more than \
         the {MAX_MATCHES} Gateway API allows"
    )]
    TooManyMatches { route: String, matches: usize },
    #[error(
        "{route}: header route {header_route:?} would give a match of rule {rule} {headers} header matches, \
         more than the {MAX_HEADERS} Gateway API allows"
    )]
    TooManyHeaders { route: String, rule: usize, header_route: String, headers: usize },
}

/// Gateway API's limits on a route: rules, matches across its rules, header matches per match.
const MAX_RULES: usize = 16;
const MAX_MATCHES: usize = 128;
const MAX_HEADERS: usize = 16;

/// A managed rule: its index and the indexes of its stable and canary backendRefs.
struct ManagedRule {
    rule: usize,
    stable: usize,
    canary: usize,
}

/// The Gateway API default weight of a backendRef without one.
const DEFAULT_WEIGHT: i64 = 1;
/// What the names of the rules Bellwether adds end with, after the Rollout's name.
const OWNED_SUFFIX: &str = "bellwether.dev";
const MIRROR: &str = "RequestMirror";

fn namespace(route: &Value) -> &str {
    route.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default")
}

fn label(route: &Value) -> String {
    let name = route.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    format!("{}/{name}", namespace(route))
}

fn rules(route: &Value) -> &[Value] {
    route.pointer("/spec/rules").and_then(Value::as_array).map_or(&[][..], Vec::as_slice)
}

fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value.get(key).and_then(Value::as_array).map_or(&[][..], Vec::as_slice)
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
    rules(route)
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

/// The name of the rule that header route `header_route` adds beside managed rule `j`:
/// `<header route>-<j>.<rollout>.<namespace>.bellwether.dev`.
fn owned_rule_name(header_route: &str, j: usize, services: Services<'_>) -> String {
    format!("{header_route}-{j}.{}.{}.{OWNED_SUFFIX}", services.rollout, services.namespace)
}

/// The header route and managed-rule position a rule's name says it was added for, when this
/// Rollout added it. The header route's name and the namespace are DNS labels, so
/// `x.a.b.ns.bellwether.dev` is not mistaken for Rollout `b`'s rule when it is Rollout `a.b`'s, and
/// Rollouts of one name in two namespaces sharing a route keep to their own rules.
fn owned_by<'a>(name: &'a str, services: Services<'_>) -> Option<(&'a str, usize)> {
    let prefix = name
        .strip_suffix(OWNED_SUFFIX)?
        .strip_suffix('.')?
        .strip_suffix(services.namespace)?
        .strip_suffix('.')?
        .strip_suffix(services.rollout)?
        .strip_suffix('.')?;
    if prefix.contains('.') {
        return None;
    }
    let (header_route, j) = prefix.rsplit_once('-')?;
    Some((header_route, j.parse().ok()?))
}

/// Whether a filter is a mirror to the canary Service: one Bellwether added.
fn is_canary_mirror(filter: &Value, services: Services<'_>, route_namespace: &str) -> bool {
    filter.get("type").and_then(Value::as_str) == Some(MIRROR)
        && filter
            .pointer("/requestMirror/backendRef")
            .is_some_and(|b| is_service(b, services.canary, route_namespace))
}

/// The percent a mirror filter copies: `percent`, a `fraction` that is a whole percent, or 100.
fn mirror_percent(filter: &Value) -> Option<i32> {
    let mirror = filter.get("requestMirror")?;
    if let Some(fraction) = mirror.get("fraction") {
        let numerator = fraction.get("numerator")?.as_i64()?;
        let denominator = fraction.get("denominator").and_then(Value::as_i64).unwrap_or(100);
        let percent = (denominator > 0 && (numerator * 100) % denominator == 0)
            .then(|| numerator * 100 / denominator)?;
        return i32::try_from(percent).ok();
    }
    mirror.get("percent").and_then(Value::as_i64).map_or(Some(100), |p| i32::try_from(p).ok())
}

/// A rule with the defaults an API server fills in spelled out, so that the rule Bellwether
/// builds and the one it reads back compare equal: no matches is one `PathPrefix /` match (for a
/// GRPCRoute the same stand-in serves both sides), header and path types are `Exact` and
/// `PathPrefix`, backendRefs are core Services of weight 1.
fn normalized(rule: &Value) -> Value {
    let mut rule = rule.clone();
    let Some(fields) = rule.as_object_mut() else { return rule };
    let matches = fields.entry("matches").or_insert_with(|| json!([{}]));
    if matches.as_array().is_some_and(Vec::is_empty) {
        *matches = json!([{}]);
    }
    for m in matches.as_array_mut().into_iter().flatten() {
        let Some(m) = m.as_object_mut() else { continue };
        if !m.get("method").is_some_and(Value::is_object) {
            let path = m.entry("path").or_insert_with(|| json!({}));
            if let Some(path) = path.as_object_mut() {
                path.entry("type").or_insert_with(|| json!("PathPrefix"));
                path.entry("value").or_insert_with(|| json!("/"));
            }
        }
        for header in m.get_mut("headers").and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(header) = header.as_object_mut() {
                header.entry("type").or_insert_with(|| json!("Exact"));
            }
        }
        if m.get("headers").and_then(Value::as_array).is_some_and(Vec::is_empty) {
            m.remove("headers");
        }
    }
    if fields.get("filters").and_then(Value::as_array).is_some_and(Vec::is_empty) {
        fields.remove("filters");
    }
    for backend in fields.get_mut("backendRefs").and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(backend) = backend.as_object_mut() {
            backend.entry("group").or_insert_with(|| json!(""));
            backend.entry("kind").or_insert_with(|| json!("Service"));
            backend.entry("weight").or_insert_with(|| json!(DEFAULT_WEIGHT));
        }
    }
    rule
}

fn header_json(header: &HeaderMatch) -> Value {
    json!({"name": header.name, "type": header.type_.as_str(), "value": header.value})
}

fn parse_header(value: &Value) -> Option<HeaderMatch> {
    let type_ = match value.get("type").and_then(Value::as_str).unwrap_or("Exact") {
        "Exact" => HeaderMatchType::Exact,
        "RegularExpression" => HeaderMatchType::RegularExpression,
        _ => return None,
    };
    Some(HeaderMatch {
        name: value.get("name")?.as_str()?.to_string(),
        type_,
        value: value.get("value")?.as_str()?.to_string(),
    })
}

/// The rule header route `header_route` adds beside `managed` (the `j`th managed rule): a copy of
/// it whose matches also require `headers` and whose only backend is the canary, without the
/// mirror Bellwether put on the managed rule.
fn owned_rule(
    route: &Value,
    managed: &ManagedRule,
    j: usize,
    header_route: &str,
    headers: &[HeaderMatch],
    services: Services<'_>,
) -> Result<Value, RouteError> {
    let source = &rules(route)[managed.rule];
    let mut rule: Map<String, Value> = source.as_object().cloned().unwrap_or_default();
    let name = owned_rule_name(header_route, j, services);
    if name.len() > 253 {
        return Err(RouteError::NameTooLong { route: label(route), name });
    }
    rule.insert("name".into(), json!(name));
    let mut matches = list(source, "matches").to_vec();
    if matches.is_empty() {
        matches.push(json!({}));
    }
    for m in &mut matches {
        let existing = list(m, "headers");
        if let Some(taken) = headers.iter().find(|h| {
            existing.iter().any(|e| e["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(&h.name)))
        }) {
            return Err(RouteError::HeaderTaken {
                route: label(route),
                rule: managed.rule,
                header: taken.name.clone(),
                header_route: header_route.into(),
            });
        }
        let mut all = existing.to_vec();
        all.extend(headers.iter().map(header_json));
        // The schema makes every match an object; anything else is left for the API server to
        // refuse, rather than indexed into.
        if let Some(fields) = m.as_object_mut() {
            fields.insert("headers".into(), Value::Array(all));
        }
    }
    rule.insert("matches".into(), Value::Array(matches));
    let ns = namespace(route);
    let filters: Vec<Value> =
        list(source, "filters").iter().filter(|f| !is_canary_mirror(f, services, ns)).cloned().collect();
    if filters.is_empty() {
        rule.remove("filters");
    } else {
        rule.insert("filters".into(), Value::Array(filters));
    }
    let mut canary = list(source, "backendRefs")[managed.canary].clone();
    if let Some(fields) = canary.as_object_mut() {
        fields.insert("weight".into(), json!(DEFAULT_WEIGHT));
    }
    rule.insert("backendRefs".into(), json!([canary]));
    Ok(Value::Object(rule))
}

/// Whether `route` can take `exposure`'s header routes within Gateway API's limits, and each
/// header-route rule can be built: a route that cannot is named with the limit it would break,
/// instead of the API server refusing the patch.
pub fn check_capacity(route: &Value, services: Services<'_>, exposure: &Exposure) -> Result<(), RouteError> {
    let managed = managed_rules(route, services);
    let others: Vec<&Value> = rules(route)
        .iter()
        .filter(|r| r.get("name").and_then(Value::as_str).is_none_or(|n| owned_by(n, services).is_none()))
        .collect();
    let header_routes = exposure.header_routes.len();
    let count = others.len() + header_routes * managed.len();
    if count > MAX_RULES {
        return Err(RouteError::TooManyRules { route: label(route), header_routes, rules: count });
    }
    let matches_of = |rule: &Value| list(rule, "matches").len().max(1);
    let matches = others.iter().map(|r| matches_of(r)).sum::<usize>()
        + header_routes * managed.iter().map(|m| matches_of(&rules(route)[m.rule])).sum::<usize>();
    if matches > MAX_MATCHES {
        return Err(RouteError::TooManyMatches { route: label(route), matches });
    }
    for (header_route, headers) in &exposure.header_routes {
        for (j, m) in managed.iter().enumerate() {
            owned_rule(route, m, j, header_route, headers, services)?;
            let most = list(&rules(route)[m.rule], "matches").iter().map(|x| list(x, "headers").len()).max();
            let total = most.unwrap_or(0) + headers.len();
            if total > MAX_HEADERS {
                return Err(RouteError::TooManyHeaders {
                    route: label(route),
                    rule: m.rule,
                    header_route: header_route.clone(),
                    headers: total,
                });
            }
        }
    }
    Ok(())
}

/// The header routes whose rules `route` carries and the percent its mirrors copy, when they are
/// exactly what Bellwether would build from the managed rules; `None` when they are not.
fn exposure(route: &Value, services: Services<'_>) -> Option<Exposure> {
    let managed = managed_rules(route, services);
    if !stray_mirrors(route, &managed, services).is_empty() {
        return None;
    }
    let ns = namespace(route);
    let mut owned: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    for (index, rule) in rules(route).iter().enumerate() {
        let Some(name) = rule.get("name").and_then(Value::as_str) else { continue };
        if let Some((header_route, j)) = owned_by(name, services) {
            owned.entry(header_route).or_default().push((j, index));
        }
    }
    let mut header_routes = BTreeMap::new();
    for (header_route, mut found) in owned {
        found.sort_unstable();
        if found.iter().map(|(j, _)| *j).ne(0..managed.len()) {
            return None;
        }
        // The header matches the first copy adds to the first match of its managed rule.
        let first = &rules(route)[found[0].1];
        let own = list(list(first, "matches").first()?, "headers");
        let source =
            list(&rules(route)[managed[0].rule], "matches").first().map_or(0, |m| list(m, "headers").len());
        let headers: Vec<HeaderMatch> = own.get(source..)?.iter().map(parse_header).collect::<Option<_>>()?;
        if headers.is_empty() {
            return None;
        }
        for ((j, index), m) in found.iter().zip(&managed) {
            let built = owned_rule(route, m, *j, header_route, &headers, services).ok()?;
            if normalized(&built) != normalized(&rules(route)[*index]) {
                return None;
            }
        }
        header_routes.insert(header_route.to_string(), headers);
    }
    let mut percents = managed.iter().map(|m| {
        let mirrors: Vec<&Value> = list(&rules(route)[m.rule], "filters")
            .iter()
            .filter(|f| is_canary_mirror(f, services, ns))
            .collect();
        match mirrors.as_slice() {
            [] => Some(None),
            [one] => mirror_percent(one).map(Some),
            _ => None,
        }
    });
    let first = percents.next().flatten()?;
    if !percents.all(|p| p == Some(first)) {
        return None;
    }
    Some(Exposure { header_routes, mirror: first })
}

/// What a parent's condition of `kind` says against the route's current generation, when it is
/// `status` for it: `Accepted=False, UnsupportedValue: <message>`.
fn condition_against(conditions: &[Value], generation: i64, kind: &str, status: &str) -> Option<String> {
    let condition = conditions.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(kind))?;
    let text = |key: &str| condition.get(key).and_then(Value::as_str).unwrap_or_default();
    let current = condition.get("observedGeneration").and_then(Value::as_i64).unwrap_or(0) >= generation;
    (current && text("status") == status).then(|| {
        let message = text("message");
        let message = if message.is_empty() { String::new() } else { format!(": {message}") };
        format!("{kind}={status}, {}{message}", text("reason"))
    })
}

/// What the engine sees of `route`, named `name` (`HTTPRoute/shop/checkout`): the weights its
/// managed rules carry when they all agree, the header routes and mirror it carries, its
/// generation, and each parent's acceptance.
pub fn route_state(name: String, route: &Value, services: Services<'_>) -> RouteState {
    let mut weights = managed_rules(route, services).into_iter().map(|m| RouteWeights {
        canary: weight(route, m.rule, m.canary) as i32,
        stable: weight(route, m.rule, m.stable) as i32,
    });
    let first = weights.next();
    let agreed = first.filter(|first| weights.all(|w| w == *first));
    let ns = namespace(route);
    let generation = route.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    let parents = list(route.get("status").unwrap_or(&Value::Null), "parents")
        .iter()
        .map(|parent| {
            let reference = |key: &str| parent.pointer(&format!("/parentRef/{key}")).and_then(Value::as_str);
            let conditions = list(parent, "conditions");
            let accepted =
                conditions.iter().find(|c| c.get("type").and_then(Value::as_str) == Some("Accepted"));
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
                refusal: condition_against(conditions, generation, "Accepted", "False"),
                partial: condition_against(conditions, generation, "ResolvedRefs", "False")
                    .or_else(|| condition_against(conditions, generation, "PartiallyInvalid", "True")),
            }
        })
        .collect();
    RouteState { name, weights: agreed, exposure: exposure(route, services), generation, parents }
}

/// The JSON patch (RFC 6902) that makes `route` carry `traffic`, or `None` when it already does.
/// Weights and mirrors change in place on the managed rules; header-route rules that are no longer
/// wanted, or no longer match their managed rule, are removed (last first, each guarded by a
/// `test` of its name), and the missing ones are appended.
pub fn traffic_patch(
    route: &Value,
    services: Services<'_>,
    traffic: &Traffic,
) -> Result<Option<Value>, RouteError> {
    let managed = managed_rules(route, services);
    let strays = stray_mirrors(route, &managed, services);
    let owns_rules = rules(route)
        .iter()
        .filter_map(|rule| rule.get("name").and_then(Value::as_str))
        .any(|name| owned_by(name, services).is_some());
    // Without a managed rule there are no weights to set, but the rules and mirrors this Rollout
    // added are still removed: left behind, they would send requests to the canary Service for good.
    if managed.is_empty() && !owns_rules && strays.is_empty() {
        return Err(RouteError::Unmanaged {
            route: label(route),
            stable: services.stable.into(),
            canary: services.canary.into(),
        });
    }
    let resource_version = route
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .ok_or(RouteError::NoResourceVersion { route: label(route) })?;
    check_capacity(route, services, &traffic.exposure)?;
    let mut ops = vec![json!({"op": "test", "path": "/metadata/resourceVersion", "value": resource_version})];
    let weights = traffic.weights;
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
        let wanted = traffic.exposure.mirror.map(|p| (p, mirror_filter(route, m, p)));
        mirror_ops(route, m.rule, wanted, services, &mut ops);
    }
    for rule in strays {
        mirror_ops(route, rule, None, services, &mut ops);
    }
    header_route_ops(route, &managed, services, &traffic.exposure, &mut ops)?;
    Ok((ops.len() > 1).then_some(Value::Array(ops)))
}

/// The rules other than the managed ones and Bellwether's own that mirror to the canary Service:
/// a rule that stopped being managed (its canary backendRef removed) keeps the mirror Bellwether
/// put on it, and only Bellwether mirrors to the canary Service.
fn stray_mirrors(route: &Value, managed: &[ManagedRule], services: Services<'_>) -> Vec<usize> {
    let ns = namespace(route);
    rules(route)
        .iter()
        .enumerate()
        .filter(|(i, _)| !managed.iter().any(|m| m.rule == *i))
        .filter(|(_, rule)| {
            rule.get("name").and_then(Value::as_str).is_none_or(|n| owned_by(n, services).is_none())
        })
        .filter(|(_, rule)| list(rule, "filters").iter().any(|f| is_canary_mirror(f, services, ns)))
        .map(|(i, _)| i)
        .collect()
}

/// The mirror filter to the canary Service of `managed`'s canary backendRef, copying `percent`.
fn mirror_filter(route: &Value, managed: &ManagedRule, percent: i32) -> Value {
    let canary = &list(&rules(route)[managed.rule], "backendRefs")[managed.canary];
    let mut backend = Map::new();
    for key in ["group", "kind", "name", "namespace", "port"] {
        if let Some(value) = canary.get(key) {
            backend.insert(key.into(), value.clone());
        }
    }
    json!({"type": MIRROR, "requestMirror": {"backendRef": backend, "percent": percent}})
}

/// Ops that leave exactly one canary mirror copying `percent` on a managed rule, or none.
fn mirror_ops(
    route: &Value,
    rule_index: usize,
    wanted: Option<(i32, Value)>,
    services: Services<'_>,
    ops: &mut Vec<Value>,
) {
    let ns = namespace(route);
    let rule = &rules(route)[rule_index];
    let filters = list(rule, "filters");
    let ours: Vec<usize> = filters
        .iter()
        .enumerate()
        .filter(|(_, f)| is_canary_mirror(f, services, ns))
        .map(|(i, _)| i)
        .collect();
    let keep = match &wanted {
        Some((p, _)) => ours.iter().copied().find(|i| mirror_percent(&filters[*i]) == Some(*p)),
        None => None,
    };
    let base = format!("/spec/rules/{rule_index}/filters");
    let doomed: Vec<usize> = ours.iter().copied().filter(|i| Some(*i) != keep).collect();
    let remaining = filters.len() - doomed.len();
    let emptied = !doomed.is_empty() && remaining == 0;
    for i in doomed.into_iter().rev() {
        ops.push(json!({"op": "test", "path": format!("{base}/{i}/type"), "value": MIRROR}));
        ops.push(json!({"op": "test", "path": format!("{base}/{i}/requestMirror/backendRef/name"), "value": services.canary}));
        ops.push(json!({"op": "remove", "path": format!("{base}/{i}")}));
    }
    match (wanted, keep) {
        (Some((_, filter)), None) if rule.get("filters").is_some() => {
            ops.push(json!({"op": "add", "path": format!("{base}/-"), "value": filter}));
        }
        (Some((_, filter)), None) => ops.push(json!({"op": "add", "path": base, "value": [filter]})),
        // Bellwether's mirrors were all the filters there were: leave none behind.
        (None, _) if emptied => ops.push(json!({"op": "remove", "path": base})),
        _ => {}
    }
}

/// Ops that leave exactly the wanted header-route rules on the route, each matching its managed
/// rule as it is now.
fn header_route_ops(
    route: &Value,
    managed: &[ManagedRule],
    services: Services<'_>,
    exposure: &Exposure,
    ops: &mut Vec<Value>,
) -> Result<(), RouteError> {
    let mut wanted: Vec<Value> = Vec::new();
    for (header_route, headers) in &exposure.header_routes {
        for (j, m) in managed.iter().enumerate() {
            wanted.push(owned_rule(route, m, j, header_route, headers, services)?);
        }
    }
    let mut kept = vec![false; wanted.len()];
    let mut doomed = Vec::new();
    for (index, rule) in rules(route).iter().enumerate() {
        let Some(name) = rule.get("name").and_then(Value::as_str) else { continue };
        if owned_by(name, services).is_none() {
            continue;
        }
        let same = wanted.iter().position(|w| normalized(w) == normalized(rule));
        match same {
            Some(at) if !kept[at] => kept[at] = true,
            _ => doomed.push((index, name)),
        }
    }
    for (index, name) in doomed.into_iter().rev() {
        ops.push(json!({"op": "test", "path": format!("/spec/rules/{index}/name"), "value": name}));
        ops.push(json!({"op": "remove", "path": format!("/spec/rules/{index}")}));
    }
    for (rule, kept) in wanted.into_iter().zip(kept) {
        if !kept {
            ops.push(json!({"op": "add", "path": "/spec/rules/-", "value": rule}));
        }
    }
    Ok(())
}
