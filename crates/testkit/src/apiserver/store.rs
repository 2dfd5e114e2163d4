//! The object store: JSON objects of any kind, kept by resource, one global resourceVersion counter,
//! and the write semantics of the API server (generation, status subresource, preconditions,
//! finalizers).

use super::defaults;
use super::patch;
use super::resources::Resource;
use super::selector::Selector;
use super::status::ApiError;
use super::validation::validate;
use super::watch::{Change, Line, WatchHub, WatchRequest};
use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::mpsc::UnboundedReceiver;

/// Which part of an object a write may change.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Main,
    Status,
}

pub enum PatchKind {
    /// JSON merge patch; strategic merge patches are served as this too.
    Merge,
    Json,
    /// Server-side apply, simplified: it creates a missing object and otherwise merges the applied
    /// fields like a merge patch, after checking the ownership of the applied fields (see [`Owners`]).
    Apply(Applier),
}

/// Who applies, and whether they take fields other managers own.
pub struct Applier {
    pub manager: String,
    pub force: bool,
}

/// A field of an object, as the keys leading to it; arrays are single fields.
type FieldPath = Vec<String>;

/// The fields each field manager has applied to one object and still owns, by manager.
///
/// Only applies own fields: a write by any other means owns nothing, and takes from every manager
/// the fields whose values it changes. An apply that would change a field another manager owns is a
/// conflict, unless forced, which takes the field. Applying a field with the value it already has
/// shares it. Fields a manager stops applying are not removed from the object.
type Owners = BTreeMap<String, BTreeSet<FieldPath>>;

/// What a delete did.
pub enum Deletion {
    /// The object has finalizers: it is marked for deletion and stays until they are removed.
    Pending(Value),
    /// The object is gone; this was its final state.
    Done(Value),
}

/// An object's (namespace, name); the namespace is empty for cluster-scoped objects.
pub type ObjectKey = (String, String);

/// One resource's objects. Ordered by namespace first, so that one namespace's objects are a range.
type Objects = BTreeMap<ObjectKey, Value>;

/// A stored object's resource, as [`Resource::id`], and its (namespace, name).
type Key = ((&'static str, &'static str), ObjectKey);

fn key(resource: &Resource, namespace: &str, name: &str) -> Key {
    (resource.id(), (namespace.to_string(), name.to_string()))
}

/// The (namespace, name) of a stored object.
pub fn object_key(object: &Value) -> ObjectKey {
    let metadata = &object["metadata"];
    let text = |field: &str| metadata[field].as_str().unwrap_or_default().to_string();
    (text("namespace"), text("name"))
}

/// The objects in `namespace`, or in every namespace for `None`, ordered by namespace and name.
fn in_namespace<'a>(objects: &'a Objects, namespace: Option<&'a str>) -> impl Iterator<Item = &'a Value> {
    // No name sorts before the empty one: a namespace's objects start at (namespace, ""), and
    // ("", "") precedes every key.
    let start = (namespace.unwrap_or_default().to_string(), String::new());
    objects
        .range(start..)
        .take_while(move |((ns, _), _)| namespace.is_none_or(|n| n == ns))
        .map(|(_, object)| object)
}

/// The RBAC terms of a request: (API group, resource with its subresource, verb).
pub type Call = (String, String, String);

/// Metadata the server owns: a write keeps the stored values whatever the client sends.
const SYSTEM_METADATA: [&str; 7] = [
    "uid",
    "creationTimestamp",
    "generation",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "namespace",
];

struct State {
    /// By resource, so that reading one resource touches none of the others' objects.
    objects: HashMap<(&'static str, &'static str), Objects>,
    revision: u64,
    hub: WatchHub,
    /// Writes still to be refused with 409, by plural.
    injected_conflicts: HashMap<String, usize>,
    /// Requests still to be answered with an error, by plural: the HTTP code and how many are left.
    injected_failures: HashMap<String, (u16, usize)>,
    /// How many requests were made in each RBAC terms, by the user they impersonated (empty for
    /// none).
    calls: BTreeMap<String, BTreeMap<Call, u64>>,
    /// The groups each user (as in `calls`) impersonated along with it.
    groups: BTreeMap<String, BTreeSet<String>>,
    /// Resources (by plural) that every write is refused for, as RBAC would.
    forbidden_writes: std::collections::HashSet<String>,
    /// API groups answered with 404 throughout, as for CRDs that are not installed.
    unserved_groups: std::collections::HashSet<String>,
    owners: HashMap<Key, Owners>,
}

pub struct Store {
    state: Mutex<State>,
}

fn now() -> Value {
    Value::String(Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    let metadata = object.as_object_mut().expect("objects are checked to be JSON objects").entry("metadata");
    let metadata = metadata.or_insert_with(|| json!({}));
    if !metadata.is_object() {
        *metadata = json!({});
    }
    metadata.as_object_mut().expect("made an object above")
}

fn text<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object["metadata"][field].as_str().filter(|s| !s.is_empty())
}

/// The part of an object whose changes bump `metadata.generation`.
fn generational(resource: &Resource, object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(fields) = object.as_object_mut() {
        fields.remove("metadata");
        if resource.status_subresource {
            fields.remove("status");
        }
    }
    object
}

fn require_object(body: &Value) -> Result<(), ApiError> {
    if body.is_object() {
        Ok(())
    } else {
        Err(ApiError::bad_request("the request body is not a JSON object"))
    }
}

/// The value of a field, if the object has it.
fn field<'a>(object: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    path.iter().try_fold(object, |value, key| value.get(key))
}

/// The fields an applied configuration sets: its non-null leaves, but not the type or identity.
fn applied_fields(applied: &Value) -> BTreeSet<FieldPath> {
    fn leaves(value: &Value, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        match value {
            Value::Null => {}
            Value::Object(fields) => {
                for (key, value) in fields {
                    path.push(key.clone());
                    leaves(value, path, out);
                    path.pop();
                }
            }
            _ => {
                out.insert(path.clone());
            }
        }
    }
    let mut out = BTreeSet::new();
    leaves(applied, &mut Vec::new(), &mut out);
    out.retain(|path| match path.as_slice() {
        [only] => only != "apiVersion" && only != "kind",
        [metadata, key, ..] if metadata == "metadata" => {
            key != "name" && !SYSTEM_METADATA.contains(&key.as_str())
        }
        _ => true,
    });
    out
}

impl State {
    fn object(&self, (resource, object): &Key) -> Option<&Value> {
        self.objects.get(resource)?.get(object)
    }

    fn insert(&mut self, (resource, object): Key, value: Value) {
        self.objects.entry(resource).or_default().insert(object, value);
    }

    fn remove(&mut self, (resource, object): &Key) {
        if let Some(objects) = self.objects.get_mut(resource) {
            objects.remove(object);
        }
    }

    fn bump(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    fn emit(&mut self, resource: &'static Resource, change: Change, old: Option<&Value>, object: &Value) {
        let revision = self.revision;
        self.hub.emit(resource, change, old, object, revision);
    }

    fn create(
        &mut self,
        resource: &'static Resource,
        namespace: &str,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        require_object(&object)?;
        let name = match (text(&object, "name"), text(&object, "generateName")) {
            (Some(name), _) => name.to_string(),
            // Random in the API server; a counter keeps tests reproducible.
            (None, Some(prefix)) => format!("{prefix}{:05x}", self.revision + 1),
            (None, None) => {
                let cause = (
                    "metadata.name".to_string(),
                    "Required value: name or generateName is required".to_string(),
                );
                return Err(ApiError::invalid(resource, "", vec![cause]));
            }
        };
        if text(&object, "namespace").is_some_and(|n| n != namespace) {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if text(&object, "resourceVersion").is_some() {
            return Err(ApiError::bad_request("resourceVersion should not be set on objects to be created"));
        }
        let key = key(resource, namespace, &name);
        if self.object(&key).is_some() {
            return Err(ApiError::already_exists(resource, &name));
        }
        let fields = object.as_object_mut().expect("checked above");
        fields.insert("apiVersion".into(), resource.api_version().into());
        fields.insert("kind".into(), resource.kind.into());
        if resource.status_subresource {
            fields.remove("status");
        }
        let revision = self.revision + 1;
        let metadata = metadata_mut(&mut object);
        metadata.insert("name".into(), name.clone().into());
        if resource.namespaced {
            metadata.insert("namespace".into(), namespace.into());
        } else {
            metadata.remove("namespace");
        }
        metadata.insert("uid".into(), format!("00000000-0000-4000-8000-{revision:012x}").into());
        metadata.insert("creationTimestamp".into(), now());
        metadata.insert("generation".into(), 1.into());
        metadata.remove("deletionTimestamp");
        metadata.remove("deletionGracePeriodSeconds");
        defaults::fill(resource, &mut object);
        validate(resource, &object, None)?;
        metadata_mut(&mut object).insert("resourceVersion".into(), self.bump().to_string().into());
        self.owners.remove(&key);
        self.insert(key, object.clone());
        self.emit(resource, Change::Added, None, &object);
        Ok(object)
    }

    /// Replaces a stored object with `new`, keeping what this kind of write may not change.
    fn update(
        &mut self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        new: Value,
        target: Target,
    ) -> Result<Value, ApiError> {
        require_object(&new)?;
        let key = key(resource, namespace, name);
        let current = self.object(&key).cloned().ok_or_else(|| ApiError::not_found(resource, name))?;
        if text(&new, "name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request("the name of the object does not match the name on the URL"));
        }
        if text(&new, "namespace").is_some_and(|n| n != namespace) {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if text(&new, "resourceVersion").is_some_and(|rv| Some(rv) != text(&current, "resourceVersion")) {
            return Err(ApiError::conflict(resource, name));
        }
        let mut next = match target {
            Target::Status => {
                let mut next = current.clone();
                let fields = next.as_object_mut().expect("stored objects are JSON objects");
                match new.get("status") {
                    Some(status) => fields.insert("status".into(), status.clone()),
                    None => fields.remove("status"),
                };
                next
            }
            Target::Main => {
                let mut next = new;
                let fields = next.as_object_mut().expect("checked above");
                fields.insert("apiVersion".into(), resource.api_version().into());
                fields.insert("kind".into(), resource.kind.into());
                if resource.status_subresource {
                    match current.get("status") {
                        Some(status) => fields.insert("status".into(), status.clone()),
                        None => fields.remove("status"),
                    };
                }
                let metadata = metadata_mut(&mut next);
                metadata.insert("name".into(), name.into());
                for field in SYSTEM_METADATA {
                    match current["metadata"].get(field) {
                        Some(value) => metadata.insert(field.into(), value.clone()),
                        None => metadata.remove(field),
                    };
                }
                defaults::fill(resource, &mut next);
                next
            }
        };
        if generational(resource, &next) != generational(resource, &current) {
            let generation = current["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            metadata_mut(&mut next).insert("generation".into(), generation.into());
        }
        if current["metadata"].get("deletionTimestamp").is_some() {
            let finalizers =
                |object: &Value| object["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
            let before = finalizers(&current);
            if finalizers(&next).iter().any(|f| !before.contains(f)) {
                let message = "Forbidden: no new finalizers can be added if the object is being deleted";
                return Err(ApiError::invalid(
                    resource,
                    name,
                    vec![("metadata.finalizers".into(), message.into())],
                ));
            }
        }
        if next == current {
            // The API server does not write, or bump the resourceVersion, for a no-op update.
            return Ok(current);
        }
        validate(resource, &next, Some(&current))?;
        metadata_mut(&mut next).insert("resourceVersion".into(), self.bump().to_string().into());
        let deleting = next["metadata"].get("deletionTimestamp").is_some();
        let finalized = next["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty);
        if deleting && finalized {
            self.owners.remove(&key);
            self.remove(&key);
            self.emit(resource, Change::Deleted, None, &next);
        } else {
            if let Some(owners) = self.owners.get_mut(&key) {
                for fields in owners.values_mut() {
                    fields.retain(|path| field(&current, path) == field(&next, path));
                }
            }
            self.insert(key, next.clone());
            self.emit(resource, Change::Modified, Some(&current), &next);
        }
        Ok(next)
    }
}

impl Store {
    pub fn new(hub: WatchHub) -> Self {
        Self {
            state: Mutex::new(State {
                objects: HashMap::new(),
                revision: 0,
                hub,
                injected_conflicts: HashMap::new(),
                injected_failures: HashMap::new(),
                forbidden_writes: Default::default(),
                unserved_groups: Default::default(),
                calls: BTreeMap::new(),
                groups: BTreeMap::new(),
                owners: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, resource: &'static Resource, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let state = self.lock();
        state
            .object(&key(resource, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(resource, name))
    }

    /// The matching objects, ordered by namespace and name, and the revision they are current at.
    /// `namespace` is `None` for a list across all namespaces.
    pub fn list(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        selector: &Selector,
    ) -> (Vec<Value>, u64) {
        let state = self.lock();
        let items = state
            .objects
            .get(&resource.id())
            .into_iter()
            .flat_map(|objects| in_namespace(objects, namespace))
            .filter(|object| selector.matches(object))
            .cloned()
            .collect();
        (items, state.revision)
    }

    /// The objects of `resource` written after revision `since`, each in its current state (`None`
    /// once deleted), and the revision they are current at; `None` if the retained history no
    /// longer reaches back to `since`.
    pub fn changed_since(
        &self,
        resource: &'static Resource,
        since: u64,
    ) -> Option<(BTreeMap<ObjectKey, Option<Value>>, u64)> {
        let state = self.lock();
        let keys = state.hub.changed_since(resource, since)?;
        let objects = state.objects.get(&resource.id());
        let changed =
            keys.into_iter().map(|key| (key.clone(), objects.and_then(|o| o.get(&key)).cloned())).collect();
        Some((changed, state.revision))
    }

    pub fn create(
        &self,
        resource: &'static Resource,
        namespace: &str,
        object: Value,
    ) -> Result<Value, ApiError> {
        self.lock().create(resource, namespace, object)
    }

    pub fn replace(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        object: Value,
        target: Target,
    ) -> Result<Value, ApiError> {
        self.lock().update(resource, namespace, name, object, target)
    }

    /// Applies a patch; the flag is true when an apply created the object.
    pub fn patch(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        patch: &Value,
        target: Target,
    ) -> Result<(Value, bool), ApiError> {
        let mut state = self.lock();
        let key = key(resource, namespace, name);
        let Some(current) = state.object(&key).cloned() else {
            if let PatchKind::Apply(applier) = kind
                && target == Target::Main
            {
                let mut object = patch.clone();
                require_object(&object)?;
                metadata_mut(&mut object).insert("name".into(), name.into());
                let created = state.create(resource, namespace, object)?;
                state.owners.entry(key).or_default().insert(applier.manager, applied_fields(patch));
                return Ok((created, true));
            }
            return Err(ApiError::not_found(resource, name));
        };
        let mut next = current.clone();
        let mut applied = None;
        match kind {
            PatchKind::Merge => patch::merge(&mut next, patch),
            PatchKind::Apply(applier) => {
                let typed = patch.get("apiVersion").is_some() && patch.get("kind").is_some();
                if !typed {
                    return Err(ApiError::bad_request("an applied configuration needs apiVersion and kind"));
                }
                let fields = applied_fields(patch);
                let owners = state.owners.entry(key.clone()).or_default();
                let changed: Vec<&FieldPath> =
                    fields.iter().filter(|path| field(patch, path) != field(&current, path)).collect();
                let conflicts: Vec<(&String, &FieldPath)> = owners
                    .iter()
                    .filter(|(manager, _)| **manager != applier.manager)
                    .flat_map(|(manager, owned)| {
                        changed.iter().filter(|path| owned.contains(**path)).map(move |path| (manager, *path))
                    })
                    .collect();
                if !conflicts.is_empty() && !applier.force {
                    return Err(ApiError::apply_conflict(&conflicts));
                }
                patch::merge(&mut next, patch);
                applied = Some((applier.manager, fields));
            }
            PatchKind::Json => patch::json_patch(&mut next, patch).map_err(ApiError::unprocessable_patch)?,
        }
        let updated = state.update(resource, namespace, name, next, target)?;
        if let Some((manager, fields)) = applied
            && state.object(&key).is_some()
        {
            state.owners.entry(key).or_default().insert(manager, fields);
        }
        Ok((updated, false))
    }

    /// Deletes an object, or marks it for deletion while it has finalizers. `preconditions` is the
    /// `preconditions` of the DeleteOptions, if any.
    pub fn delete(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        preconditions: &Value,
    ) -> Result<Deletion, ApiError> {
        let mut state = self.lock();
        let key = key(resource, namespace, name);
        let current = state.object(&key).cloned().ok_or_else(|| ApiError::not_found(resource, name))?;
        for field in ["uid", "resourceVersion"] {
            if preconditions[field].as_str().is_some_and(|expected| Some(expected) != text(&current, field)) {
                return Err(ApiError::conflict(resource, name));
            }
        }
        let finalizers = current["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
        if finalizers && current["metadata"].get("deletionTimestamp").is_some() {
            return Ok(Deletion::Pending(current));
        }
        let revision = state.bump().to_string();
        let mut next = current.clone();
        let metadata = metadata_mut(&mut next);
        metadata.insert("resourceVersion".into(), revision.into());
        if finalizers {
            metadata.insert("deletionTimestamp".into(), now());
            metadata.insert("deletionGracePeriodSeconds".into(), 0.into());
            let generation = metadata.get("generation").and_then(Value::as_i64).unwrap_or(0) + 1;
            metadata.insert("generation".into(), generation.into());
            state.insert(key, next.clone());
            state.emit(resource, Change::Modified, Some(&current), &next);
            Ok(Deletion::Pending(next))
        } else {
            state.owners.remove(&key);
            state.remove(&key);
            state.emit(resource, Change::Deleted, None, &next);
            Ok(Deletion::Done(next))
        }
    }

    /// See [`WatchHub::subscribe`].
    pub fn watch(&self, request: WatchRequest) -> Result<UnboundedReceiver<Line>, ApiError> {
        let mut state = self.lock();
        let State { objects, hub, revision, .. } = &mut *state;
        let namespace = request.namespace.clone();
        let current = objects
            .get(&request.resource.id())
            .into_iter()
            .flat_map(|objects| in_namespace(objects, namespace.as_deref()));
        hub.subscribe(request, current, *revision)
    }

    pub fn inject_conflicts(&self, plural: &str, count: usize) {
        self.lock().injected_conflicts.insert(plural.to_string(), count);
    }

    /// Whether this write to `resource` is one of the injected conflicts, counting it if so.
    pub fn take_injected_conflict(&self, resource: &Resource) -> bool {
        let mut state = self.lock();
        match state.injected_conflicts.get_mut(resource.plural) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    pub fn fail_requests(&self, plural: &str, code: u16, count: usize) {
        self.lock().injected_failures.insert(plural.to_string(), (code, count));
    }

    /// The HTTP code to answer this request for `resource` with, when it is one of the injected
    /// failures, counting it if so.
    pub fn take_injected_failure(&self, resource: &Resource) -> Option<u16> {
        let mut state = self.lock();
        match state.injected_failures.get_mut(resource.plural) {
            Some((code, left)) if *left > 0 => {
                *left -= 1;
                Some(*code)
            }
            _ => None,
        }
    }

    pub fn record_call(&self, user: &str, groups: &[String], call: &Call) {
        let mut state = self.lock();
        let counts = state.calls.entry(user.to_string()).or_default();
        *counts.entry(call.clone()).or_default() += 1;
        state.groups.entry(user.to_string()).or_default().extend(groups.iter().cloned());
    }

    /// Every group `user` impersonated in a call.
    pub fn groups_of(&self, user: &str) -> BTreeSet<String> {
        self.lock().groups.get(user).cloned().unwrap_or_default()
    }

    pub fn stop_serving_group(&self, group: &str) {
        self.lock().unserved_groups.insert(group.to_string());
    }

    pub fn serves_group(&self, group: &str) -> bool {
        !self.lock().unserved_groups.contains(group)
    }

    /// How many requests `user` made in each (group, resource, verb).
    pub fn counts_of(&self, user: &str) -> BTreeMap<Call, u64> {
        self.lock().calls.get(user).cloned().unwrap_or_default()
    }

    pub fn forbid_writes(&self, plural: &str) {
        self.lock().forbidden_writes.insert(plural.to_string());
    }

    pub fn writes_forbidden(&self, resource: &Resource) -> bool {
        self.lock().forbidden_writes.contains(resource.plural)
    }

    pub fn drop_watches(&self) {
        self.lock().hub.drop_all();
    }

    pub fn expire_next_watch(&self) {
        self.lock().hub.expire_next();
    }
}
