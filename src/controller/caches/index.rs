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
use std::hash::Hash;

/// An object's namespace (empty for cluster-scoped ones) and name.
pub type ObjectKey = (String, String);

pub fn object_key(object: &impl ResourceExt) -> ObjectKey {
    (object.namespace().unwrap_or_default(), object.name_any())
}

/// The objects of one kind, by every key they name.
#[derive(Debug)]
pub struct Index<Key> {
    keys_of: HashMap<ObjectKey, Vec<Key>>,
    /// Most keys are named by one object, so a `Vec` (48 bytes for one) rather than a set (a
    /// B-tree node of about 540): this index holds an entry per route, Service and template of
    /// every Rollout.
    objects_by: HashMap<Key, Vec<ObjectKey>>,
    /// A relist in progress: the objects listed so far. The index keeps answering from the old
    /// state until the list is complete, as the object cache does.
    relisting: Option<Vec<(ObjectKey, Vec<Key>)>>,
}

impl<Key> Default for Index<Key> {
    fn default() -> Self {
        Self { keys_of: HashMap::new(), objects_by: HashMap::new(), relisting: None }
    }
}

impl<Key: Clone + Eq + Hash> Index<Key> {
    /// Applies one watch event; `keys` names what an object refers to.
    pub fn apply<K: ResourceExt>(&mut self, event: &Event<K>, keys: impl Fn(&K) -> Vec<Key>) {
        match event {
            Event::Apply(object) => self.set(object_key(object), keys(object)),
            Event::Delete(object) => self.set(object_key(object), Vec::new()),
            Event::Init => self.relisting = Some(Vec::new()),
            Event::InitApply(object) => {
                self.relisting.get_or_insert_with(Vec::new).push((object_key(object), keys(object)));
            }
            Event::InitDone => {
                let listed = self.relisting.take().unwrap_or_default();
                self.keys_of.clear();
                self.objects_by.clear();
                for (object, keys) in listed {
                    self.set(object, keys);
                }
            }
        }
    }

    /// The objects that name `key`, in no particular order.
    pub fn objects(&self, key: &Key) -> impl Iterator<Item = &ObjectKey> {
        self.objects_by.get(key).into_iter().flatten()
    }

    /// Records that `object` names exactly `keys` now.
    fn set(&mut self, object: ObjectKey, mut keys: Vec<Key>) {
        let mut unique = std::collections::HashSet::new();
        keys.retain(|key| unique.insert(key.clone()));
        // Most events (a status write) leave what an object names as it was.
        if self.keys_of.get(&object) == Some(&keys) {
            return;
        }
        for old in self.keys_of.remove(&object).unwrap_or_default() {
            if let Some(objects) = self.objects_by.get_mut(&old) {
                if let Some(at) = objects.iter().position(|o| *o == object) {
                    objects.swap_remove(at);
                }
                if objects.is_empty() {
                    self.objects_by.remove(&old);
                }
            }
        }
        if keys.is_empty() {
            return;
        }
        // `object` was just removed from under every key it named, and `keys` are unique: no
        // key can list it twice.
        for key in &keys {
            self.objects_by.entry(key.clone()).or_default().push(object.clone());
        }
        self.keys_of.insert(object, keys);
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
