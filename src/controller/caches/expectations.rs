//! Expectations: what the controller wrote, and waits to see in its caches before it decides
//! again on the same subject (a Rollout, or an AnalysisRun).
//!
//! A pass decides from watch caches, and a cache shows a write only once its watch event arrives.
//! A pass that ran before then would decide from the state the last pass already acted on: it
//! would repeat the action (a route patch refused by its guard, a ReplicaSet applied twice) or
//! write a status from a stale Rollout (refused by its resourceVersion guard). Neither is unsafe,
//! but both cost API calls and retries, so the next pass waits instead, until every object it
//! wrote shows at least the resourceVersion the write returned.
//!
//! A write refused as stale (409, or a failed `test` guard) says that a newer version exists: the
//! next pass waits for it briefly rather than retrying from the same stale copy.
//!
//! Nothing waits forever: an expectation not met within its patience is given up, with a warning,
//! and the pass decides from what the cache shows. resourceVersions are compared as numbers, as
//! the API server's are; one that is not a number is seen only when equal.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The kinds of object a pass writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Rollout,
    ReplicaSet,
    AnalysisRun,
    Service,
    Deployment,
    HttpRoute,
    GrpcRoute,
}

/// One object, by kind, namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// What a cache shows of an object: its UID and resourceVersion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub uid: String,
    pub version: String,
}

/// What the cache must show before the subject is decided on again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// The object as written, or a later version of it. `existed` is false for a create, whose
    /// object the cache has not shown yet; an object that existed and is missing was deleted since.
    Written { uid: String, version: String, existed: bool },
    /// A version newer than the one a refused write was guarded by.
    NewerThan { version: String },
    /// The object deleted: gone from the cache, or replaced by one with another UID.
    Gone { uid: String },
}

impl Wanted {
    /// Whether `seen` (the cache's copy, `None` when it has none) meets this.
    pub fn met_by(&self, seen: Option<&Seen>) -> bool {
        match (self, seen) {
            (Self::Written { existed, .. }, None) => *existed,
            (Self::Written { uid, version, .. }, Some(seen)) => {
                seen.uid != *uid || at_least(&seen.version, version)
            }
            (Self::NewerThan { .. }, None) => true,
            (Self::NewerThan { version }, Some(seen)) => {
                seen.version != *version && at_least(&seen.version, version)
            }
            (Self::Gone { .. }, None) => true,
            (Self::Gone { uid }, Some(seen)) => seen.uid != *uid,
        }
    }
}

/// Whether resourceVersion `seen` is `wanted` or later.
fn at_least(seen: &str, wanted: &str) -> bool {
    match (seen.parse::<u64>(), wanted.parse::<u64>()) {
        (Ok(seen), Ok(wanted)) => seen >= wanted,
        _ => seen == wanted,
    }
}

/// How long a pass waits for its own write to show before it gives up and decides anyway.
pub const OWN_WRITE_PATIENCE: Duration = Duration::from_secs(30);
/// How long a pass waits for the newer copy a refused write implies.
pub const REFUSED_WRITE_PATIENCE: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
struct Expected {
    target: Target,
    wanted: Wanted,
    until: Instant,
}

/// Whether a subject may be decided on now.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Check {
    /// Still waited for; the subject is decided on once these show, or are given up.
    pub waiting: Vec<Target>,
    /// When to look again at the latest, if nothing shows before.
    pub recheck: Duration,
    /// Not met in time, and given up.
    pub gave_up: Vec<Target>,
}

impl Check {
    pub fn ready(&self) -> bool {
        self.waiting.is_empty()
    }
}

/// The expectations of every subject, by subject.
#[derive(Debug)]
pub struct Expectations<Subject> {
    pending: HashMap<Subject, Vec<Expected>>,
}

impl<Subject> Default for Expectations<Subject> {
    fn default() -> Self {
        Self { pending: HashMap::new() }
    }
}

impl<Subject: Eq + std::hash::Hash> Expectations<Subject> {
    /// The subject's next pass waits, for at most `patience` from `now`, until `target` is `wanted`.
    pub fn expect(
        &mut self,
        subject: Subject,
        target: Target,
        wanted: Wanted,
        now: Instant,
        patience: Duration,
    ) {
        let list = self.pending.entry(subject).or_default();
        // A later write to the same object supersedes what an earlier one waited for.
        list.retain(|expected| expected.target != target);
        list.push(Expected { target, wanted, until: now + patience });
    }

    /// Whether `subject` may be decided on at `now`, given what the caches show (`seen`). Met and
    /// given-up expectations are forgotten.
    pub fn check(
        &mut self,
        subject: &Subject,
        now: Instant,
        seen: impl Fn(&Target) -> Option<Seen>,
    ) -> Check {
        let Some(list) = self.pending.get_mut(subject) else { return Check::default() };
        list.retain(|expected| !expected.wanted.met_by(seen(&expected.target).as_ref()));
        let (late, waiting): (Vec<Expected>, Vec<Expected>) =
            list.drain(..).partition(|expected| expected.until <= now);
        let check = Check {
            waiting: waiting.iter().map(|e| e.target.clone()).collect(),
            recheck: waiting.iter().map(|e| e.until - now).min().unwrap_or_default(),
            gave_up: late.into_iter().map(|e| e.target).collect(),
        };
        if waiting.is_empty() {
            self.pending.remove(subject);
        } else {
            *list = waiting;
        }
        check
    }

    /// Forgets a subject that is gone.
    pub fn forget(&mut self, subject: &Subject) {
        self.pending.remove(subject);
    }

    /// How many subjects wait for something; for tests of what is held on to.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> Target {
        Target { kind: Kind::HttpRoute, namespace: "ns".into(), name: "web".into() }
    }

    fn seen(uid: &str, version: &str) -> Option<Seen> {
        Some(Seen { uid: uid.into(), version: version.into() })
    }

    fn written(version: &str) -> Wanted {
        Wanted::Written { uid: "u1".into(), version: version.into(), existed: true }
    }

    #[test]
    fn a_write_is_seen_at_its_version_or_later() {
        assert!(!written("10").met_by(seen("u1", "9").as_ref()));
        assert!(written("10").met_by(seen("u1", "10").as_ref()));
        assert!(written("10").met_by(seen("u1", "11").as_ref()));
        // Numbers, not text: "9" sorts after "10" as text.
        assert!(written("9").met_by(seen("u1", "10").as_ref()));
        assert!(!written("10").met_by(seen("u1", "9").as_ref()));
    }

    #[test]
    fn versions_that_are_not_numbers_are_seen_only_when_equal() {
        assert!(written("abc").met_by(seen("u1", "abc").as_ref()));
        assert!(!written("abc").met_by(seen("u1", "abd").as_ref()));
    }

    #[test]
    fn a_created_object_must_appear_but_an_updated_one_may_have_been_deleted_since() {
        let created = Wanted::Written { uid: "u1".into(), version: "10".into(), existed: false };
        assert!(!created.met_by(None));
        assert!(written("10").met_by(None));
        // Replaced by another object of the same name: the write was overtaken.
        assert!(created.met_by(seen("u2", "3").as_ref()));
    }

    #[test]
    fn a_refused_write_waits_for_a_strictly_newer_copy() {
        let newer = Wanted::NewerThan { version: "10".into() };
        assert!(!newer.met_by(seen("u1", "10").as_ref()));
        assert!(!newer.met_by(seen("u1", "9").as_ref()));
        assert!(newer.met_by(seen("u1", "11").as_ref()));
        assert!(newer.met_by(None));
    }

    #[test]
    fn a_deletion_is_seen_when_the_object_is_gone_or_replaced() {
        let gone = Wanted::Gone { uid: "u1".into() };
        assert!(!gone.met_by(seen("u1", "12").as_ref()));
        assert!(gone.met_by(None));
        assert!(gone.met_by(seen("u2", "1").as_ref()));
    }

    #[test]
    fn a_subject_waits_until_the_cache_shows_the_write_then_forgets_it() {
        let start = Instant::now();
        let mut expectations = Expectations::default();
        expectations.expect("web", route(), written("10"), start, OWN_WRITE_PATIENCE);
        let later = start + Duration::from_secs(1);
        let check = expectations.check(&"web", later, |_| seen("u1", "9"));
        assert_eq!(check.waiting, [route()]);
        assert_eq!(check.recheck, OWN_WRITE_PATIENCE - Duration::from_secs(1));
        assert!(expectations.check(&"web", later, |_| seen("u1", "10")).ready());
        assert!(expectations.is_empty());
        assert!(expectations.check(&"web", later, |_| seen("u1", "9")).ready(), "met once is enough");
    }

    #[test]
    fn an_expectation_not_met_in_time_is_given_up() {
        let start = Instant::now();
        let mut expectations = Expectations::default();
        expectations.expect("web", route(), written("10"), start, REFUSED_WRITE_PATIENCE);
        let late = start + REFUSED_WRITE_PATIENCE;
        let check = expectations.check(&"web", late, |_| seen("u1", "9"));
        assert!(check.ready());
        assert_eq!(check.gave_up, [route()]);
        assert!(expectations.is_empty());
    }

    #[test]
    fn a_later_write_to_the_same_object_replaces_the_earlier_expectation() {
        let start = Instant::now();
        let mut expectations = Expectations::default();
        expectations.expect("web", route(), written("10"), start, OWN_WRITE_PATIENCE);
        expectations.expect("web", route(), written("12"), start, OWN_WRITE_PATIENCE);
        assert!(!expectations.check(&"web", start, |_| seen("u1", "11")).ready());
        assert!(expectations.check(&"web", start, |_| seen("u1", "12")).ready());
    }

    #[test]
    fn subjects_wait_independently() {
        let start = Instant::now();
        let mut expectations = Expectations::default();
        expectations.expect("web", route(), written("10"), start, OWN_WRITE_PATIENCE);
        assert!(expectations.check(&"api", start, |_| None).ready());
        expectations.forget(&"web");
        assert!(expectations.check(&"web", start, |_| seen("u1", "1")).ready());
    }
}
