//! What reading a YAML document into JSON hides. A manifest reaches the API server as JSON, and
//! serde_yaml's conversion into `serde_json::Value` keeps the last of two equal keys without a word
//! and turns `.nan` and `.inf` (which JSON cannot carry, so kubectl refuses them) into `null`.
//!
//! serde_yaml gives no positions to what it deserializes, only to its errors: an error raised while a
//! scalar is visited carries that scalar's line. So a first walk of the document notes each problem
//! by the ordinal of the scalar where it is (every key and scalar value counts, in document order),
//! and a further walk per line wanted stops with an error at that ordinal, whose location is the line.

use super::document::child;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashMap;
use std::fmt;

/// One problem of a document.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// The field's path, such as `spec.metrics[0].threshold.max`.
    pub path: String,
    /// The document's 1-based line of the scalar at fault.
    pub line: usize,
    pub kind: ProblemKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ProblemKind {
    /// A key given again in the same mapping; `first_line` is where it was first given.
    DuplicateKey { key: String, first_line: usize },
    /// `.nan`, `.inf` or `-.inf`.
    NotFinite(f64),
}

/// How many problems of a document are located and listed. Each line costs a walk of the whole
/// document, so a document with many thousands would otherwise take quadratic time.
pub const MAX_LISTED: usize = 20;

/// The problems of one YAML document, in document order: the first [`MAX_LISTED`], and how many more
/// there are. None when the text is not one readable document (its syntax errors are reported when
/// it is read as JSON).
pub fn problems(text: &str) -> (Vec<Problem>, usize) {
    let mut first = Walk::default();
    if first.run(text).is_err() {
        return (Vec::new(), 0);
    }
    let unlisted = first.found.len().saturating_sub(MAX_LISTED);
    let line_of = |ordinal: usize| {
        let mut walk = Walk { stop_at: Some(ordinal), ..Walk::default() };
        walk.run(text).err().and_then(|e| e.location()).map_or(1, |l| l.line())
    };
    let listed = first
        .found
        .into_iter()
        .take(MAX_LISTED)
        .map(|found| Problem {
            path: found.path,
            line: line_of(found.ordinal),
            kind: match found.kind {
                Found::Duplicate { key, first } => {
                    ProblemKind::DuplicateKey { key, first_line: line_of(first) }
                }
                Found::NotFinite(number) => ProblemKind::NotFinite(number),
            },
        })
        .collect();
    (listed, unlisted)
}

/// A problem seen by a walk, at the ordinal of its scalar.
struct Noted {
    path: String,
    ordinal: usize,
    kind: Found,
}

enum Found {
    /// `first` is the ordinal of the key's first occurrence.
    Duplicate {
        key: String,
        first: usize,
    },
    NotFinite(f64),
}

#[derive(Default)]
struct Walk {
    /// Scalars visited so far.
    scalars: usize,
    /// Fail at the scalar of this ordinal, for its location.
    stop_at: Option<usize>,
    found: Vec<Noted>,
}

impl Walk {
    fn run(&mut self, text: &str) -> Result<(), serde_yaml::Error> {
        Node { walk: self, path: String::new() }.deserialize(serde_yaml::Deserializer::from_str(text))
    }

    /// Counts a scalar and returns its ordinal, or the error that stops the walk there.
    fn scalar<E: de::Error>(&mut self) -> Result<usize, E> {
        let ordinal = self.scalars;
        self.scalars += 1;
        if self.stop_at == Some(ordinal) {
            return Err(E::custom("stopped for the location"));
        }
        Ok(ordinal)
    }
}

/// Any value, at `path`.
struct Node<'w> {
    walk: &'w mut Walk,
    path: String,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.walk.scalar().map(drop)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.walk.scalar().map(drop)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.walk.scalar().map(drop)
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<(), E> {
        let ordinal = self.walk.scalar()?;
        if !number.is_finite() {
            self.walk.found.push(Noted { path: self.path, ordinal, kind: Found::NotFinite(number) });
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.walk.scalar().map(drop)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.walk.scalar().map(drop)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let mut index = 0;
        while items
            .next_element_seed(Node { walk: self.walk, path: format!("{}[{index}]", self.path) })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        while let Some((key, ordinal)) = entries.next_key_seed(Key { walk: self.walk })? {
            let path = child(&self.path, &key);
            match seen.get(&key) {
                Some(&first) => self.walk.found.push(Noted {
                    path: path.clone(),
                    ordinal,
                    kind: Found::Duplicate { key, first },
                }),
                None => {
                    seen.insert(key, ordinal);
                }
            }
            entries.next_value_seed(Node { walk: self.walk, path })?;
        }
        Ok(())
    }
}

/// A mapping's key as JSON will have it, with its ordinal. serde_json reads every key as a string,
/// so `1` and `"1"` are the same key there.
struct Key<'w> {
    walk: &'w mut Walk,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = (String, usize);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(String, usize), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = (String, usize);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(String, usize), E> {
        Ok((key.to_string(), self.walk.scalar()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplicate(path: &str, line: usize, key: &str, first_line: usize) -> Problem {
        Problem { path: path.into(), line, kind: ProblemKind::DuplicateKey { key: key.into(), first_line } }
    }

    #[test]
    fn duplicate_keys_at_any_depth_with_both_lines() {
        let text = "kind: Rollout\nspec:\n  replicas: 1\n  strategy:\n    canary:\n      steps:\n        - setWeight: 1\n          setWeight: 2\n  replicas: 3\n";
        assert_eq!(
            problems(text),
            (
                vec![
                    duplicate("spec.strategy.canary.steps[0].setWeight", 8, "setWeight", 7),
                    duplicate("spec.replicas", 9, "replicas", 3),
                ],
                0
            )
        );
    }

    /// Keys are compared as JSON sees them: as strings, whatever their YAML type or quoting, and
    /// there the last of two keeps its value without a word.
    #[test]
    fn keys_are_compared_as_strings() {
        let text = "labels:\n  1: a\n  \"1\": b\n  a.b: c\n  'a.b': d\nflow: {x: 1, x: 2}\n";
        let json: serde_json::Value = serde_yaml::from_str(text).unwrap();
        assert_eq!(json, serde_json::json!({"labels": {"1": "b", "a.b": "d"}, "flow": {"x": 2}}));
        assert_eq!(
            problems(text),
            (
                vec![
                    duplicate("labels.1", 3, "1", 2),
                    duplicate("labels[a.b]", 5, "a.b", 4),
                    duplicate("flow.x", 6, "x", 6),
                ],
                0
            )
        );
    }

    #[test]
    fn numbers_json_cannot_carry() {
        let text = "spec:\n  metrics:\n    - threshold:\n        max: .nan\n        min: -.inf\n    - threshold: {max: 0.5}\n";
        let (found, unlisted) = problems(text);
        assert_eq!((found.len(), unlisted), (2, 0), "{found:?}");
        assert_eq!((found[0].path.as_str(), found[0].line), ("spec.metrics[0].threshold.max", 4));
        assert!(matches!(found[0].kind, ProblemKind::NotFinite(n) if n.is_nan()));
        assert_eq!(
            found[1],
            Problem {
                path: "spec.metrics[0].threshold.min".into(),
                line: 5,
                kind: ProblemKind::NotFinite(f64::NEG_INFINITY)
            }
        );
    }

    #[test]
    fn a_clean_or_unreadable_document_has_no_problems() {
        assert_eq!(problems("a: 1\nb: [1, 2]\nc: {d: .5}\n"), (vec![], 0));
        assert_eq!(problems("a: [1\nb: 2\n"), (vec![], 0));
    }

    /// Fifty thousand duplicates are counted, and only the first few located: each location is a
    /// walk of the whole document.
    #[test]
    fn many_problems_are_counted_and_a_few_located() {
        let text: String = (0..50_001).map(|i| format!("k: {i}\n")).collect();
        let (listed, unlisted) = problems(&text);
        assert_eq!((listed.len(), unlisted), (MAX_LISTED, 50_000 - MAX_LISTED));
        assert_eq!(listed[MAX_LISTED - 1], duplicate("k", MAX_LISTED + 1, "k", 1));
    }
}
