//! Events for people, recorded as kube's `Recorder` records them (an `events.k8s.io/v1` Event, and
//! a repeat within six minutes counted in the first one's `series`), but remembering only a
//! fingerprint and the name of each recent Event. kube's Recorder keeps a whole copy of every
//! Event it sent for six minutes and scans them all at each new one: with a fleet shipping at
//! once, that was tens of thousands of copies of about 2 KiB each. Here the memory is bounded too:
//! past [`MAX_RECENT`] recent Events the oldest is forgotten, and a repeat of it starts a new Event
//! instead of a series.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as EventObject;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Client, ResourceExt};
use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, PoisonError};

/// How long after an Event a repeat of it joins its series.
const REPEAT_WINDOW: SignedDuration = SignedDuration::from_mins(6);
/// The most recent Events remembered for folding repeats.
const MAX_RECENT: usize = 10_000;

pub struct Recorder {
    client: Client,
    reporter: Reporter,
    recent: Mutex<Recent>,
}

/// The Event of a fingerprint, as last sent.
#[derive(Clone, Debug, PartialEq)]
struct Sent {
    namespace: String,
    name: String,
    count: i32,
    at: Timestamp,
}

/// The Events sent in the last [`REPEAT_WINDOW`], at most [`MAX_RECENT`] of them.
#[derive(Default)]
struct Recent {
    sent: HashMap<u64, Sent>,
    /// Each send, oldest first. A fingerprint sent again appears again; its earlier sends are
    /// passed over when they come to the front.
    order: VecDeque<(u64, Timestamp)>,
}

impl Recent {
    /// The Event a repeat at `now` of `fingerprint` joins, if it is recent.
    fn repeat_of(&mut self, fingerprint: u64, now: Timestamp) -> Option<Sent> {
        self.forget_before(now - REPEAT_WINDOW);
        self.sent.get(&fingerprint).cloned()
    }

    fn remember(&mut self, fingerprint: u64, sent: Sent) {
        self.order.push_back((fingerprint, sent.at));
        self.sent.insert(fingerprint, sent);
        // Nothing is sent before Timestamp::MIN: this only keeps the bound.
        self.forget_before(Timestamp::MIN);
    }

    /// Forgets the Events last sent at or before `before`, and the oldest past [`MAX_RECENT`].
    fn forget_before(&mut self, before: Timestamp) {
        while let Some(&(fingerprint, at)) = self.order.front() {
            if at > before && self.order.len() <= MAX_RECENT {
                break;
            }
            self.order.pop_front();
            if self.sent.get(&fingerprint).is_some_and(|sent| sent.at == at) {
                self.sent.remove(&fingerprint);
            }
        }
    }
}

/// What makes two Events the same: kube's key (type, reason, action, what they regard) and the note.
fn fingerprint(event: &Event, regarding: &ObjectReference) -> u64 {
    let mut hasher = DefaultHasher::new();
    matches!(event.type_, EventType::Warning).hash(&mut hasher);
    (&event.reason, &event.action, &event.note).hash(&mut hasher);
    for reference in std::iter::once(regarding).chain(&event.secondary) {
        (&reference.kind, &reference.namespace, &reference.name, &reference.uid).hash(&mut hasher);
    }
    hasher.finish()
}

impl Recorder {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self { client, reporter, recent: Mutex::default() }
    }

    /// Records `event` about `regarding`: a new Event, or one more in the series of the same Event
    /// sent in the last six minutes.
    pub async fn publish(&self, event: &Event, regarding: &ObjectReference) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let fingerprint = fingerprint(event, regarding);
        let repeat = self.recent().repeat_of(fingerprint, now);
        let sent = match repeat {
            Some(earlier) => match self.count_again(&earlier, now).await {
                Ok(sent) => sent,
                // The Event was deleted meanwhile: this one starts anew.
                Err(kube::Error::Api(status)) if status.is_not_found() => {
                    self.create(event, regarding, now).await?
                }
                Err(error) => return Err(error),
            },
            None => self.create(event, regarding, now).await?,
        };
        self.recent().remember(fingerprint, sent);
        Ok(())
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn count_again(&self, earlier: &Sent, now: Timestamp) -> Result<Sent, kube::Error> {
        let count = earlier.count.max(1) + 1;
        let series = serde_json::json!({ "series": { "count": count, "lastObservedTime": MicroTime(now) } });
        Api::<EventObject>::namespaced(self.client.clone(), &earlier.namespace)
            .patch(&earlier.name, &PatchParams::default(), &Patch::Merge(&series))
            .await?;
        Ok(Sent { count, at: now, ..earlier.clone() })
    }

    async fn create(
        &self,
        event: &Event,
        regarding: &ObjectReference,
        now: Timestamp,
    ) -> Result<Sent, kube::Error> {
        let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".into());
        let controller = &self.reporter.controller;
        let object = EventObject {
            metadata: ObjectMeta {
                namespace: Some(namespace.clone()),
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_ref().unwrap_or(controller),
                    now.as_nanosecond()
                )),
                ..ObjectMeta::default()
            },
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            type_: Some(match event.type_ {
                EventType::Normal => "Normal".into(),
                EventType::Warning => "Warning".into(),
            }),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(self.reporter.instance.clone().unwrap_or_else(|| controller.clone())),
            ..EventObject::default()
        };
        let created = Api::<EventObject>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &object)
            .await?;
        Ok(Sent { namespace, name: created.name_any(), count: 1, at: now })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bellwether_testkit::apiserver::TestApiServer;
    use k8s_openapi::api::core::v1::Service;
    use kube::Resource;
    use kube::api::{DeleteParams, ListParams};

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn sent(name: &str, seconds: i64) -> Sent {
        Sent { namespace: "shop".into(), name: name.into(), count: 1, at: at(seconds) }
    }

    #[test]
    fn a_repeat_joins_the_event_sent_in_the_last_six_minutes() {
        let mut recent = Recent::default();
        recent.remember(1, sent("a", 0));
        assert_eq!(recent.repeat_of(1, at(359)).map(|s| s.name), Some("a".into()));
        assert_eq!(recent.repeat_of(2, at(359)), None, "another Event");
        assert_eq!(recent.repeat_of(1, at(360)), None, "six minutes later");
        assert!(recent.sent.is_empty() && recent.order.is_empty(), "forgotten");
    }

    #[test]
    fn a_series_stays_recent_from_its_last_repeat() {
        let mut recent = Recent::default();
        recent.remember(1, sent("a", 0));
        recent.remember(1, Sent { count: 2, ..sent("a", 300) });
        // The first send comes to the front and is passed over: the series was sent since.
        assert_eq!(recent.repeat_of(1, at(500)).map(|s| s.count), Some(2));
        assert_eq!(recent.order.len(), 1);
        assert_eq!(recent.repeat_of(1, at(660)), None);
    }

    #[test]
    fn past_the_bound_the_oldest_events_are_forgotten() {
        let mut recent = Recent::default();
        for i in 0..MAX_RECENT as u64 + 10 {
            recent.remember(i, sent("e", 1));
        }
        assert_eq!((recent.sent.len(), recent.order.len()), (MAX_RECENT, MAX_RECENT));
        assert_eq!(recent.repeat_of(9, at(2)), None);
        assert!(recent.repeat_of(10, at(2)).is_some());
    }

    fn event(action: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: "StepCompleted".into(),
            note: Some(action.into()),
            action: action.into(),
            secondary: None,
        }
    }

    #[tokio::test]
    async fn repeats_fold_into_a_series_and_a_deleted_event_starts_anew() {
        let server = TestApiServer::start().await;
        let services: Api<Service> = Api::namespaced(server.client(), "default");
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "checkout"}, "spec": {"ports": [{"port": 80}]}
        }))
        .unwrap();
        let service = services.create(&PostParams::default(), &service).await.unwrap();
        let regarding = service.object_ref(&());
        let reporter = Reporter { controller: "bellwether".into(), instance: Some("pod-a".into()) };
        let recorder = Recorder::new(server.client(), reporter);
        let events: Api<EventObject> = Api::namespaced(server.client(), "default");
        let recorded = || async {
            let mut listed = events.list(&ListParams::default()).await.unwrap().items;
            listed.sort_by_key(|e| e.note.clone());
            listed
                .iter()
                .map(|e| (e.note.clone().unwrap(), e.series.as_ref().map_or(1, |s| s.count)))
                .collect::<Vec<_>>()
        };

        for action in ["step 1 completed", "step 1 completed", "step 2 completed", "step 1 completed"] {
            recorder.publish(&event(action), &regarding).await.unwrap();
        }
        assert_eq!(recorded().await, [("step 1 completed".into(), 3), ("step 2 completed".into(), 1)]);
        let [first, _] = events.list(&ListParams::default()).await.unwrap().items.try_into().unwrap();
        assert_eq!(first.reporting_instance.as_deref(), Some("pod-a"));
        assert_eq!(first.regarding.and_then(|r| r.name).as_deref(), Some("checkout"));

        for event in events.list(&ListParams::default()).await.unwrap() {
            events.delete(&event.name_any(), &DeleteParams::default()).await.unwrap();
        }
        recorder.publish(&event("step 1 completed"), &regarding).await.unwrap();
        assert_eq!(recorded().await, [("step 1 completed".into(), 1)]);
    }
}
