//! HTTP routing: the REST paths and verbs of the Kubernetes API, mapped onto the store.

use super::discovery;
use super::resources::{self, Resource};
use super::scale;
use super::selector::Selector;
use super::status::ApiError;
use super::store::{Applier, Call, Deletion, PatchKind, Store, Target};
use super::watch::{Line, WatchRequest, error_event};
use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;

pub type Body = BoxBody<Bytes, Infallible>;

/// What a path names: a collection (in one namespace or across all), an object, its status, or
/// its scale.
struct Route {
    resource: &'static Resource,
    namespace: Option<String>,
    name: Option<String>,
    target: Target,
    /// The `scale` subresource, whose writes change the object's replicas (`target` is `Main`).
    scale: bool,
}

fn parse_path(path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let not_found = || ApiError::no_route(path);
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(not_found()),
    };
    let (namespace, rest) = match rest {
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() => (Some(namespace.to_string()), rest),
        _ => (None, rest),
    };
    let (plural, name, target, scale) = match rest {
        [plural] => (*plural, None, Target::Main, false),
        [plural, name] => (*plural, Some(name.to_string()), Target::Main, false),
        [plural, name, "status"] => (*plural, Some(name.to_string()), Target::Status, false),
        [plural, name, "scale"] => (*plural, Some(name.to_string()), Target::Main, true),
        _ => return Err(not_found()),
    };
    let resource = resources::find(group, version, plural).ok_or_else(not_found)?;
    let scoped_right =
        !matches!((resource.namespaced, &namespace, &name), (true, None, Some(_)) | (false, Some(_), _));
    if !scoped_right
        || (target == Target::Status && !resource.status_subresource)
        || (scale && !scale::scalable(resource))
    {
        return Err(not_found());
    }
    Ok(Route { resource, namespace, name, target, scale })
}

/// Decodes one `application/x-www-form-urlencoded` query component, as the client encodes them.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let body = serde_json::to_vec(value).expect("JSON values serialize");
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)).boxed())
        .expect("a valid response")
}

fn error_response(error: &ApiError) -> Response<Body> {
    let code = StatusCode::from_u16(error.code).expect("API errors use valid HTTP codes");
    json_response(code, &error.to_status())
}

/// A watch stream: newline-delimited JSON events, each sent when due, for as long as the store keeps
/// the stream open.
fn stream_response(
    first: Option<Bytes>,
    receiver: Option<tokio::sync::mpsc::UnboundedReceiver<Line>>,
) -> Response<Body> {
    let lines =
        futures::stream::iter(first).chain(futures::stream::unfold(receiver, |receiver| async move {
            let mut receiver = receiver?;
            let line = receiver.recv().await?;
            if let Some(at) = line.at {
                tokio::time::sleep_until(at).await;
            }
            Some((line.bytes, Some(receiver)))
        }));
    let body = StreamBody::new(lines.map(|line| Ok::<_, Infallible>(Frame::data(line))));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(BodyExt::boxed(body))
        .expect("a valid response")
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

const SELF_SUBJECT_REVIEWS: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";

/// The user a request impersonates (`Impersonate-User`), empty for none.
fn impersonated_user(headers: &http::HeaderMap) -> &str {
    headers.get("impersonate-user").and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The groups a request impersonates, one `Impersonate-Group` header each.
fn impersonated_groups(headers: &http::HeaderMap) -> Vec<String> {
    headers.get_all("impersonate-group").iter().filter_map(|v| v.to_str().ok()).map(String::from).collect()
}

/// Who the client is, as `kubectl auth whoami` asks. The test server authenticates nobody: the user
/// is the one the client impersonates, or `test-admin`; the groups are the impersonated ones.
fn self_subject_review(headers: &http::HeaderMap) -> Response<Body> {
    json_response(
        StatusCode::CREATED,
        &serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "SelfSubjectReview",
            "metadata": {"creationTimestamp": null},
            "status": {"userInfo": {
                "username": user_name(impersonated_user(headers)),
                "groups": impersonated_groups(headers),
            }},
        }),
    )
}

/// The name the server knows a client by: the user it impersonates, or `test-admin`.
fn user_name(impersonated: &str) -> &str {
    if impersonated.is_empty() { "test-admin" } else { impersonated }
}

/// The API group a path is under (empty for the core group), when it is an API path.
fn api_group(path: &str) -> Option<&str> {
    match path.trim_matches('/').split('/').collect::<Vec<_>>().as_slice() {
        ["api", ..] => Some(""),
        ["apis", group, ..] => Some(group),
        _ => None,
    }
}

/// `GET /apis/GROUP/VERSION` and `GET /api/VERSION`: the group version's resources, or `None` when
/// the path asks for something else.
fn discover(store: &Store, method: &Method, path: &str) -> Option<Response<Body>> {
    let (group, version) = match path.trim_matches('/').split('/').collect::<Vec<_>>().as_slice() {
        ["api", version] => ("", *version),
        ["apis", group, version] => (*group, *version),
        _ => return None,
    };
    if *method != Method::GET {
        return Some(error_response(&ApiError::method_not_allowed(method.as_str())));
    }
    Some(match discovery::resource_list(group, version).filter(|_| store.serves_group(group)) {
        Some(list) => json_response(StatusCode::OK, &list),
        None => error_response(&ApiError::no_route(path)),
    })
}

pub async fn handle(store: &Store, request: Request<Incoming>, max_request_bytes: usize) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return error_response(&ApiError::bad_request(format!("reading the request body: {e}"))),
    };
    if body.len() > max_request_bytes {
        return error_response(&ApiError::too_large(max_request_bytes));
    }
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let query = parse_query(parts.uri.query());
    if parts.method == Method::POST && parts.uri.path() == SELF_SUBJECT_REVIEWS {
        return self_subject_review(&parts.headers);
    }
    let path = parts.uri.path();
    if api_group(path).is_some_and(|group| !store.serves_group(group)) {
        return error_response(&ApiError::no_route(path));
    }
    if let Some(response) = discover(store, &parts.method, path) {
        return response;
    }
    let user = impersonated_user(&parts.headers);
    if let Ok(route) = parse_path(path) {
        store.record_call(
            user,
            &impersonated_groups(&parts.headers),
            &call_of(&parts.method, &route, &query),
        );
    }
    match serve(store, user_name(user), &parts.method, path, &query, content_type, &body) {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

/// The RBAC terms of a request.
fn call_of(method: &Method, route: &Route, query: &HashMap<String, String>) -> Call {
    let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let verb = match (method, route.name.is_some()) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if watch => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => "other",
    };
    let resource = match route.target {
        _ if route.scale => format!("{}/scale", route.resource.plural),
        Target::Main => route.resource.plural.to_string(),
        Target::Status => format!("{}/status", route.resource.plural),
    };
    (route.resource.group.to_string(), resource, verb.to_string())
}

fn serve(
    store: &Store,
    user: &str,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    content_type: &str,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let route = parse_path(path)?;
    let resource = route.resource;
    let namespace = route.namespace.as_deref().unwrap_or("");
    if let Some(code) = store.take_injected_failure(resource) {
        let (_, _, verb) = call_of(method, &route, query);
        let name = route.name.as_deref().unwrap_or("");
        return Err(ApiError::injected(code, user, resource, name, &verb, namespace));
    }
    let is_write = *method != Method::GET;
    if is_write && query.contains_key("dryRun") {
        // Refused rather than ignored: a dry run that wrote would mislead the test.
        return Err(ApiError::bad_request("dry runs are not supported by the test API server"));
    }
    if is_write && store.writes_forbidden(resource) {
        let verb = match *method {
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "write",
        };
        return Err(ApiError::forbidden(
            user,
            resource,
            route.name.as_deref().unwrap_or(""),
            verb,
            namespace,
        ));
    }
    if is_write && store.take_injected_conflict(resource) {
        return Err(ApiError::conflict(resource, route.name.as_deref().unwrap_or("")));
    }
    let ok = |object: Value| Ok(json_response(StatusCode::OK, &object));
    if route.scale {
        let name = route.name.as_deref().unwrap_or_default();
        return match *method {
            Method::GET => ok(scale::get(store, resource, namespace, name)?),
            Method::PUT => ok(scale::set(store, resource, namespace, name, &parse_json(body)?)?),
            Method::PATCH => {
                let media_type = content_type.split(';').next().unwrap_or("").trim();
                if !matches!(
                    media_type,
                    "application/merge-patch+json" | "application/strategic-merge-patch+json"
                ) {
                    return Err(ApiError::unsupported_media_type(media_type));
                }
                ok(scale::set(store, resource, namespace, name, &parse_json(body)?)?)
            }
            ref other => Err(ApiError::method_not_allowed(other.as_str())),
        };
    }
    match (method, route.name.as_deref()) {
        (&Method::GET, None) => {
            let selector = Selector::parse(
                query.get("labelSelector").map(String::as_str),
                query.get("fieldSelector").map(String::as_str),
            )?;
            if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                let from = match query.get("resourceVersion").map(String::as_str) {
                    None | Some("") | Some("0") => None,
                    Some(rv) => Some(
                        rv.parse()
                            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
                    ),
                };
                let send_initial_events = query.get("sendInitialEvents").is_some_and(|v| v == "true");
                let request = WatchRequest {
                    resource,
                    namespace: route.namespace,
                    selector,
                    from,
                    send_initial_events,
                };
                return Ok(match store.watch(request) {
                    Ok(receiver) => stream_response(None, Some(receiver)),
                    Err(error) => stream_response(Some(error_event(&error)), None),
                });
            }
            let (items, revision) = store.list(resource, route.namespace.as_deref(), &selector);
            ok(json!({
                "apiVersion": resource.api_version(),
                "kind": format!("{}List", resource.kind),
                "metadata": {"resourceVersion": revision.to_string()},
                "items": items,
            }))
        }
        (&Method::POST, None) => {
            let created = store.create(resource, namespace, parse_json(body)?)?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        (&Method::GET, Some(name)) => ok(store.get(resource, namespace, name)?),
        (&Method::PUT, Some(name)) => {
            ok(store.replace(resource, namespace, name, parse_json(body)?, route.target)?)
        }
        (&Method::PATCH, Some(name)) => {
            let media_type = content_type.split(';').next().unwrap_or("").trim();
            let (kind, patch) = match media_type {
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    (PatchKind::Merge, parse_json(body)?)
                }
                "application/json-patch+json" => (PatchKind::Json, parse_json(body)?),
                "application/apply-patch+yaml" => {
                    if query.get("fieldManager").is_none_or(String::is_empty) {
                        let cause = (
                            "fieldManager".to_string(),
                            "Required value: is required for apply patch".to_string(),
                        );
                        return Err(ApiError::invalid(resource, name, vec![cause]));
                    }
                    let patch = serde_yaml::from_slice(body).map_err(|e| {
                        ApiError::bad_request(format!("the applied configuration is not valid YAML: {e}"))
                    })?;
                    let manager = query.get("fieldManager").cloned().unwrap_or_default();
                    let force = query.get("force").is_some_and(|force| force == "true");
                    (PatchKind::Apply(Applier { manager, force }), patch)
                }
                other => return Err(ApiError::unsupported_media_type(other)),
            };
            let (object, created) = store.patch(resource, namespace, name, kind, &patch, route.target)?;
            let code = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(json_response(code, &object))
        }
        (&Method::DELETE, Some(name)) if route.target == Target::Main => {
            let options = if body.is_empty() { Value::Null } else { parse_json(body)? };
            match store.delete(resource, namespace, name, &options["preconditions"])? {
                Deletion::Pending(object) => ok(object),
                Deletion::Done(object) => ok(json!({
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": name,
                        "group": resource.group,
                        "kind": resource.plural,
                        "uid": object["metadata"]["uid"],
                    },
                })),
            }
        }
        (method, _) => Err(ApiError::method_not_allowed(method.as_str())),
    }
}
