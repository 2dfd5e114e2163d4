//! Watch streams: the retained history of changes, and the open streams they are sent to.
//!
//! Every change is one event with the resourceVersion it produced. The history keeps the most recent
//! events only; a watch that starts before the oldest of them answers 410 Gone, as the API server does
//! once etcd has compacted the revisions, and the client has to list again.

use super::resources::Resource;
use super::selector::Selector;
use super::status::ApiError;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::VecDeque;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Modified,
    Deleted,
}

struct Event {
    resource: &'static Resource,
    change: Change,
    /// The object before a modification, so that a filtered watch can tell an object that starts or
    /// stops matching its selector.
    old: Option<Value>,
    object: Value,
    revision: u64,
}

struct Watcher {
    resource: &'static Resource,
    namespace: Option<String>,
    selector: Selector,
    sender: UnboundedSender<Bytes>,
}

impl Watcher {
    fn sees(&self, object: &Value) -> bool {
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
        self.namespace.as_deref().is_none_or(|n| n == namespace) && self.selector.matches(object)
    }

    /// The event type this watcher gets for `event`, if any: a modification that moves an object
    /// into or out of the selection is an addition or a deletion for this watcher.
    fn event_type(&self, event: &Event) -> Option<&'static str> {
        if self.resource.id() != event.resource.id() {
            return None;
        }
        let now = self.sees(&event.object);
        match event.change {
            Change::Added => now.then_some("ADDED"),
            Change::Deleted => now.then_some("DELETED"),
            Change::Modified => match (event.old.as_ref().is_some_and(|old| self.sees(old)), now) {
                (true, true) => Some("MODIFIED"),
                (true, false) => Some("DELETED"),
                (false, true) => Some("ADDED"),
                (false, false) => None,
            },
        }
    }

    /// False once the client has gone away.
    fn send(&self, event_type: &str, object: &Value) -> bool {
        self.sender.send(encode(event_type, object)).is_ok()
    }
}

/// One line of a watch stream.
fn encode(event_type: &str, object: &Value) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({"type": event_type, "object": object})).expect("JSON values serialize");
    line.push(b'\n');
    Bytes::from(line)
}

/// The watch stream of a request that cannot be served, such as one from a compacted resourceVersion:
/// the API server answers those with an `ERROR` event that carries the Status.
pub fn error_event(error: &ApiError) -> Bytes {
    encode("ERROR", &error.to_status())
}

/// What a watch asks for.
pub struct WatchRequest {
    pub resource: &'static Resource,
    /// `None` watches every namespace.
    pub namespace: Option<String>,
    pub selector: Selector,
    /// Stream the changes after this revision; without it, start with an `ADDED` event for each
    /// current object, as a watch from resourceVersion 0 does.
    pub from: Option<u64>,
    /// A streaming list (`sendInitialEvents`): an `ADDED` event for each current object, then a
    /// bookmark that marks the end of them, then the changes.
    pub send_initial_events: bool,
}

pub struct WatchHub {
    history: VecDeque<Event>,
    history_limit: usize,
    /// The newest revision whose event is no longer retained.
    compacted: u64,
    watchers: Vec<Watcher>,
    expire_next: bool,
}

impl WatchHub {
    pub fn new(history_limit: usize) -> Self {
        Self {
            history: VecDeque::new(),
            history_limit,
            compacted: 0,
            watchers: Vec::new(),
            expire_next: false,
        }
    }

    pub fn emit(
        &mut self,
        resource: &'static Resource,
        change: Change,
        old: Option<&Value>,
        object: &Value,
        revision: u64,
    ) {
        let event = Event { resource, change, old: old.cloned(), object: object.clone(), revision };
        self.watchers.retain(|watcher| match watcher.event_type(&event) {
            Some(event_type) => watcher.send(event_type, &event.object),
            None => !watcher.sender.is_closed(),
        });
        self.history.push_back(event);
        while self.history.len() > self.history_limit {
            let dropped = self.history.pop_front().expect("longer than the limit");
            self.compacted = dropped.revision;
        }
    }

    /// Opens a stream for `request`. `current` is every stored object of the resource in the
    /// namespace watched, and `revision` the newest resourceVersion.
    pub fn subscribe<'a>(
        &mut self,
        request: WatchRequest,
        current: impl Iterator<Item = &'a Value>,
        revision: u64,
    ) -> Result<UnboundedReceiver<Bytes>, ApiError> {
        if std::mem::take(&mut self.expire_next) {
            return Err(ApiError::gone("too old resource version: expired by the test".to_string()));
        }
        let (sender, receiver) = unbounded_channel();
        let resource = request.resource;
        let watcher = Watcher { resource, namespace: request.namespace, selector: request.selector, sender };
        match request.from {
            Some(from) if from < self.compacted && !request.send_initial_events => {
                return Err(ApiError::gone(format!(
                    "too old resource version: {from} ({})",
                    self.compacted + 1
                )));
            }
            Some(from) if !request.send_initial_events => {
                for event in self.history.iter().filter(|e| e.revision > from) {
                    if let Some(event_type) = watcher.event_type(event) {
                        watcher.send(event_type, &event.object);
                    }
                }
            }
            _ => {
                for object in current.filter(|object| watcher.sees(object)) {
                    watcher.send("ADDED", object);
                }
                if request.send_initial_events {
                    let bookmark = json!({
                        "apiVersion": resource.api_version(),
                        "kind": resource.kind,
                        "metadata": {
                            "resourceVersion": revision.to_string(),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    });
                    watcher.send("BOOKMARK", &bookmark);
                }
            }
        }
        self.watchers.push(watcher);
        Ok(receiver)
    }

    /// Ends every open stream, as an API server restart or a load balancer timeout would.
    pub fn drop_all(&mut self) {
        self.watchers.clear();
    }

    pub fn expire_next(&mut self) {
        self.expire_next = true;
    }
}
