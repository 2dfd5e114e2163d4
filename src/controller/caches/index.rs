//! An index of the objects of one kind by the keys each names: the ReplicaSets and AnalysisRuns
//! of each Rollout (one key each, the Rollout they are labelled for), or the Rollouts that
//! reference each route, Service and template (many keys each).
//!
//! It is kept from the same watch events as the object cache, so that a watch event costs what
//! the object it carries names, not a scan of every object: a route event finds its Rollouts in
//! the index instead of reading every Rollout's spec.

use kube::ResourceExt;
use kube::runtime::watcher::Event;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::marker::PhantomData;
use std::sync::Arc;

/// An object's namespace (empty for cluster-scoped ones) and name.
pub type ObjectKey = (String, String);

pub fn object_key(object: &impl ResourceExt) -> ObjectKey {
    (object.namespace().unwrap_or_default(), object.name_any())
}

/// The objects of one kind, by every key they name.
///
/// Keys are held as 64-bit hashes (with this process's random hash keys) and each object's name
/// once, shared: the index has an entry per route, Service and template of every Rollout, and
/// copies of the keys' strings were most of its memory. Two keys with one hash (a chance in 2^64
/// per pair) share their list, so a lookup may return an object that names the other key: callers
/// that must be exact check the objects they get.
#[derive(Debug)]
pub struct Index<Key> {
    hasher: RandomState,
    keys_of: HashMap<Arc<ObjectKey>, Vec<u64>>,
    /// Most keys are named by one object, so a `Vec` rather than a set (a B-tree node of about
    /// 540 bytes).
    objects_by: HashMap<u64, Vec<Arc<ObjectKey>>>,
    /// A relist in progress: the objects listed so far. The index keeps answering from the old
    /// state until the list is complete, as the object cache does.
    relisting: Option<Vec<(ObjectKey, Vec<u64>)>>,
    key: PhantomData<fn(&Key)>,
}

impl<Key> Default for Index<Key> {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            keys_of: HashMap::new(),
            objects_by: HashMap::new(),
            relisting: None,
            key: PhantomData,
        }
    }
}

impl<Key: Hash> Index<Key> {
    /// Applies one watch event; `keys` names what an object refers to.
    pub fn apply<K: ResourceExt>(&mut self, event: &Event<K>, keys: impl Fn(&K) -> Vec<Key>) {
        match event {
            Event::Apply(object) => self.set(object_key(object), self.hashes(keys(object))),
            Event::Delete(object) => self.set(object_key(object), Vec::new()),
            Event::Init => self.relisting = Some(Vec::new()),
            Event::InitApply(object) => {
                let hashes = self.hashes(keys(object));
                self.relisting.get_or_insert_with(Vec::new).push((object_key(object), hashes));
            }
            Event::InitDone => {
                let listed = self.relisting.take().unwrap_or_default();
                self.keys_of.clear();
                self.objects_by.clear();
                for (object, hashes) in listed {
                    self.set(object, hashes);
                }
            }
        }
    }

    /// The objects that name `key` (or, rarely, a key with the same hash), in no particular order.
    pub fn objects(&self, key: &Key) -> impl Iterator<Item = &ObjectKey> {
        self.objects_by.get(&self.hasher.hash_one(key)).into_iter().flatten().map(Arc::as_ref)
    }

    /// The hashes of `keys`, each once.
    fn hashes(&self, keys: Vec<Key>) -> Vec<u64> {
        let mut hashes: Vec<u64> = keys.iter().map(|key| self.hasher.hash_one(key)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        hashes
    }

    /// Records that `object` names exactly the keys of `hashes` now.
    fn set(&mut self, object: ObjectKey, hashes: Vec<u64>) {
        // Most events (a status write) leave what an object names as it was.
        if self.keys_of.get(&object) == Some(&hashes) {
            return;
        }
        let (shared, old) = match self.keys_of.remove_entry(&object) {
            Some((shared, old)) => (shared, old),
            None => (Arc::new(object), Vec::new()),
        };
        for hash in old {
            if let Some(objects) = self.objects_by.get_mut(&hash) {
                if let Some(at) = objects.iter().position(|o| *o == shared) {
                    objects.swap_remove(at);
                }
                if objects.is_empty() {
                    self.objects_by.remove(&hash);
                }
            }
        }
        if hashes.is_empty() {
            return;
        }
        // `object` was just removed from under every key it named, and `hashes` are unique: no
        // list can hold it twice.
        for hash in &hashes {
            self.objects_by.entry(*hash).or_default().push(shared.clone());
        }
        self.keys_of.insert(shared, hashes);
    }

    /// How many keys are indexed; for tests of what the index holds on to.
    #[cfg(test)]
    fn key_count(&self) -> usize {
        self.objects_by.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    /// A ConfigMap standing in for any object, naming the keys in its `refs` annotation.
    fn object(name: &str, refs: &[&str]) -> ConfigMap {
        let mut object = ConfigMap::default();
        object.metadata.name = Some(name.into());
        object.metadata.namespace = Some("ns".into());
        object.annotations_mut().insert("refs".into(), refs.join(","));
        object
    }

    fn keys(object: &ConfigMap) -> Vec<String> {
        object.annotations()["refs"].split(',').filter(|k| !k.is_empty()).map(String::from).collect()
    }

    fn named(index: &Index<String>, key: &str) -> Vec<String> {
        let mut named: Vec<String> = index.objects(&key.to_string()).map(|(_, name)| name.clone()).collect();
        named.sort();
        named
    }

    #[test]
    fn an_object_is_found_under_each_key_it_names() {
        let mut index = Index::default();
        index.apply(&Event::Apply(object("a", &["route-1", "svc"])), keys);
        index.apply(&Event::Apply(object("b", &["svc"])), keys);
        assert_eq!(named(&index, "route-1"), ["a"]);
        assert_eq!(named(&index, "svc"), ["a", "b"]);
        assert!(named(&index, "route-2").is_empty());
    }

    #[test]
    fn a_changed_object_leaves_the_keys_it_no_longer_names() {
        let mut index = Index::default();
        index.apply(&Event::Apply(object("a", &["route-1"])), keys);
        index.apply(&Event::Apply(object("a", &["route-2"])), keys);
        assert!(named(&index, "route-1").is_empty());
        assert_eq!(named(&index, "route-2"), ["a"]);
        assert_eq!(index.key_count(), 1, "no empty entry is kept for route-1");
    }

    #[test]
    fn an_object_that_names_the_same_keys_again_is_listed_once() {
        let mut index = Index::default();
        for name in ["a", "b", "a", "c", "a"] {
            index.apply(&Event::Apply(object(name, &["svc", "route-1"])), keys);
        }
        index.apply(&Event::Apply(object("b", &["route-1"])), keys);
        assert_eq!(named(&index, "svc"), ["a", "c"]);
        assert_eq!(named(&index, "route-1"), ["a", "b", "c"]);
    }

    #[test]
    fn a_deleted_object_is_forgotten() {
        let mut index = Index::default();
        index.apply(&Event::Apply(object("a", &["svc", "svc"])), keys);
        index.apply(&Event::Delete(object("a", &["svc"])), keys);
        assert!(named(&index, "svc").is_empty());
        assert_eq!(index.key_count(), 0);
    }

    #[test]
    fn a_relist_replaces_everything_once_it_is_complete() {
        let mut index = Index::default();
        index.apply(&Event::Apply(object("gone", &["svc"])), keys);
        index.apply(&Event::Init, keys);
        index.apply(&Event::InitApply(object("new", &["svc"])), keys);
        assert_eq!(named(&index, "svc"), ["gone"], "the old state holds until the list is complete");
        index.apply(&Event::InitDone, keys);
        assert_eq!(named(&index, "svc"), ["new"]);
    }
}
