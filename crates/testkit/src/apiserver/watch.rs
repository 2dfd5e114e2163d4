//! Watch streams: the retained history of changes, and the open streams they are sent to.
//!
//! Every change is one event with the resourceVersion it produced. The history keeps the most recent
//! events only; a watch that starts before the oldest of them answers 410 Gone, as the API server does
//! once etcd has compacted the revisions, and the client has to list again.
//!
//! Watches of the resources given a delay lag as a watch cache that falls behind does: each change
//! event is held back a random time, up to the resource's maximum, and never sent before the events
//! sent earlier on the same stream.

use super::resources::Resource;
use super::selector::Selector;
use super::status::ApiError;
use super::store::{ObjectKey, object_key};
use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::time::Instant;

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

/// One line of a watch stream, and when to send it: `None` at once.
pub struct Line {
    pub bytes: Bytes,
    pub at: Option<Instant>,
}

struct Watcher {
    resource: &'static Resource,
    namespace: Option<String>,
    selector: Selector,
    sender: UnboundedSender<Line>,
    /// The longest a change event may be delayed, if this watch lags.
    lag: Option<Duration>,
    /// When the last change event sent is due; the next one is never due before it.
    last_due: Instant,
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

    /// Sends an event at once; false once the client has gone away.
    fn send(&self, event_type: &str, object: &Value) -> bool {
        self.sender.send(Line { bytes: encode(event_type, object), at: None }).is_ok()
    }

    /// Sends a change event, late if this watch lags; false once the client has gone away.
    fn send_change(&mut self, event_type: &str, object: &Value, rng: &mut ChaCha8Rng) -> bool {
        let at = self.lag.map(|max| {
            self.last_due = self.last_due.max(Instant::now() + rng.gen_range(Duration::ZERO..=max));
            self.last_due
        });
        self.sender.send(Line { bytes: encode(event_type, object), at }).is_ok()
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
    /// The longest delay of a change event, by the plural of the resources whose watches lag.
    delays: Vec<(String, Duration)>,
    /// Draws the delays, from a seed so that a run can be repeated.
    rng: ChaCha8Rng,
}

impl WatchHub {
    /// A hub that retains `history_limit` events, and delays the change events of watches of the
    /// resources named in `delays` by up to their duration, drawn from `seed`.
    pub fn new(history_limit: usize, delays: Vec<(String, Duration)>, seed: u64) -> Self {
        Self {
            history: VecDeque::new(),
            history_limit,
            compacted: 0,
            watchers: Vec::new(),
            expire_next: false,
            delays,
            rng: ChaCha8Rng::seed_from_u64(seed),
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
        let rng = &mut self.rng;
        self.watchers.retain_mut(|watcher| match watcher.event_type(&event) {
            Some(event_type) => watcher.send_change(event_type, &event.object, rng),
            None => !watcher.sender.is_closed(),
        });
        self.history.push_back(event);
        while self.history.len() > self.history_limit {
            let dropped = self.history.pop_front().expect("longer than the limit");
            self.compacted = dropped.revision;
        }
    }

    /// The (namespace, name) of every object of `resource` changed after revision `since`, or
    /// `None` if the history no longer reaches back to it.
    pub fn changed_since(&self, resource: &Resource, since: u64) -> Option<BTreeSet<ObjectKey>> {
        if since < self.compacted {
            return None;
        }
        let start = self.history.partition_point(|event| event.revision <= since);
        let changed = self.history.range(start..).filter(|event| event.resource.id() == resource.id());
        Some(changed.map(|event| object_key(&event.object)).collect())
    }

    /// Opens a stream for `request`. `current` is every stored object of the resource in the
    /// namespace watched, and `revision` the newest resourceVersion.
    pub fn subscribe<'a>(
        &mut self,
        request: WatchRequest,
        current: impl Iterator<Item = &'a Value>,
        revision: u64,
    ) -> Result<UnboundedReceiver<Line>, ApiError> {
        if std::mem::take(&mut self.expire_next) {
            return Err(ApiError::gone("too old resource version: expired by the test".to_string()));
        }
        let (sender, receiver) = unbounded_channel();
        let resource = request.resource;
        let lag = self.delays.iter().find(|(plural, _)| plural == resource.plural).map(|(_, max)| *max);
        let mut watcher = Watcher {
            resource,
            namespace: request.namespace,
            selector: request.selector,
            sender,
            lag,
            last_due: Instant::now(),
        };
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
                        watcher.send_change(event_type, &event.object, &mut self.rng);
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
