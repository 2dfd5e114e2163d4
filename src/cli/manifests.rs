//! The manifests that `-f` names, read the same way by every command that takes them (`lint`,
//! `convert`, `simulate`, `analyze`):
//! - `-f` takes files and directories, and is repeated for more; a directory is searched
//!   recursively for `*.yaml`, `*.yml` and `*.json` files, in name order, and a file named
//!   directly is read whatever its name. A directory without any is an error.
//! - `-f -` reads standard input, once however often it is named; what is said about it names it
//!   `<stdin>`.
//! - A file counts once however it is named: directly and through its directory, through a link,
//!   as `./a.yaml` and `a.yaml`. Files are told apart by their canonical paths.
//! - Each file is split into documents and each document located as `lint` locates them
//!   ([`document::read`]); a document that is not an object is said as an error at its line.
//! - An object (API group, kind, namespace, name) defined twice identically counts once, as it
//!   would in the cluster. Defined twice differently, it is an error that names both places and
//!   the first field where they differ: `kubectl apply` of both keeps whichever comes last,
//!   without a word, and a command reading them cannot know which was meant. An object without a
//!   namespace is taken to be in any namespace, since it is usually applied with `-n`.

use crate::cli::lint::document::{self, Document, child};
use crate::cli::lint::{Finding, Severity, same_namespace};
use serde_json::Value;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The name standard input goes by in what is said about it.
pub const STDIN: &str = "<stdin>";

/// The help of every `-f`, the same everywhere; a command adds what is its own.
macro_rules! filename_help {
    () => {
        "Manifests: files, directories (searched recursively for *.yaml, *.yml and *.json), or - for \
         standard input; repeat for more. A file is read once however it is named, an object defined \
         twice identically counts once, and one defined twice differently is an error."
    };
}
pub(crate) use filename_help;

/// Why the manifests could not be read at all, as opposed to what is wrong in them.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: no *.yaml, *.yml or *.json files", .0.display())]
    NoManifests(PathBuf),
    #[error("{}: larger than {} MiB, which no manifest is", .0.display(), MAX_BYTES >> 20)]
    TooLarge(PathBuf),
}

/// The most a file (or standard input) may hold: more is no manifest, and a device such as
/// /dev/zero would otherwise be read until memory ran out.
const MAX_BYTES: u64 = 64 << 20;

/// All of `reader`, unless it holds more than [`MAX_BYTES`].
fn read_all(reader: impl Read, path: &Path) -> Result<String, LoadError> {
    let mut text = String::new();
    reader
        .take(MAX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    if text.len() as u64 > MAX_BYTES {
        return Err(LoadError::TooLarge(path.to_path_buf()));
    }
    Ok(text)
}

/// Everything `-f` named, read.
pub(crate) struct Manifests {
    /// How many files were read, standard input counted as one.
    pub files: usize,
    /// Every object, in file order, each identical definition once.
    pub documents: Vec<Document>,
    /// The documents that are not objects: YAML that does not parse, or is not a mapping.
    pub unreadable: Vec<Finding>,
    /// The objects defined twice, differently.
    pub conflicts: Vec<Conflict>,
}

/// One object defined twice, differently.
pub(crate) struct Conflict {
    /// The indices in [`Manifests::documents`] of the first definition and of the other one.
    pub documents: [usize; 2],
    /// The error, at the other definition, naming both.
    pub finding: Finding,
}

impl Manifests {
    /// Every error of the manifests themselves, in file order: documents that are not objects and
    /// objects defined twice differently.
    pub fn errors(&self) -> Vec<Finding> {
        self.unreadable.iter().chain(self.conflicts.iter().map(|c| &c.finding)).cloned().collect()
    }

    /// Whether the document at `index` is one of two conflicting definitions.
    pub fn is_conflicting(&self, index: usize) -> bool {
        self.conflicts.iter().any(|c| c.documents.contains(&index))
    }
}

/// Reads every manifest `paths` names, `-` from `stdin`.
pub(crate) fn load(paths: &[PathBuf], stdin: &mut dyn Read) -> Result<Manifests, LoadError> {
    let mut texts = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        if path == Path::new("-") {
            if seen.insert(PathBuf::from(STDIN)) {
                texts.push((PathBuf::from(STDIN), read_all(&mut *stdin, path)?));
            }
            continue;
        }
        let found = files_under(path)?;
        if found.is_empty() {
            return Err(LoadError::NoManifests(path.clone()));
        }
        for file in found {
            // A pipe (`-f <(helm template ...)`, /dev/stdin) has no canonical path: its own
            // name stands for it.
            let canonical = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if seen.insert(canonical) {
                let opened = std::fs::File::open(&file)
                    .map_err(|source| LoadError::Read { path: file.clone(), source })?;
                texts.push((file.clone(), read_all(opened, &file)?));
            }
        }
    }
    Ok(from_texts(&texts))
}

/// The manifests of (file, text) pairs, each text read as the file named.
pub(crate) fn from_texts(texts: &[(PathBuf, String)]) -> Manifests {
    let mut documents = Vec::new();
    let mut unreadable = Vec::new();
    for (file, text) in texts {
        let (read, findings) = document::read(file, text);
        documents.extend(read);
        unreadable.extend(findings);
    }
    let (documents, conflicts) = distinct(documents);
    Manifests { files: texts.len(), documents, unreadable, conflicts }
}

fn is_manifest(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
}

/// `path` itself when it is not a directory (whatever its name), or the manifests under it, sorted.
/// Under a directory only regular files count, and links to directories are not followed: a
/// named pipe would block the walk, and a link to `.` would make it endless.
fn files_under(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let read_error = |source| LoadError::Read { path: path.to_path_buf(), source };
    if !std::fs::metadata(path).map_err(read_error)?.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(read_error)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read_error)?;
    entries.sort();
    let mut files = Vec::new();
    for entry in entries {
        let linked = std::fs::symlink_metadata(&entry).map_err(read_error)?;
        if linked.is_dir() {
            files.extend(files_under(&entry)?);
        } else if is_manifest(&entry) && entry.metadata().is_ok_and(|m| m.is_file()) {
            files.push(entry);
        }
    }
    Ok(files)
}

/// Whether two documents define the same object: one API group, kind and name, in namespaces that
/// can be the same.
fn same_object(a: &Document, b: &Document) -> bool {
    a.group() == b.group()
        && a.kind() == b.kind()
        && a.name() == b.name()
        && same_namespace(a.namespace(), b.namespace())
}

/// The documents with each object's identical definitions after the first left out, and the
/// objects defined again differently, each against its first definition.
fn distinct(documents: Vec<Document>) -> (Vec<Document>, Vec<Conflict>) {
    let mut kept: Vec<Document> = Vec::with_capacity(documents.len());
    let mut conflicts = Vec::new();
    for doc in documents {
        let named = !doc.kind().is_empty() && !doc.name().is_empty();
        let first = kept.iter().position(|earlier| named && same_object(earlier, &doc));
        match first {
            Some(first) if kept[first].value == doc.value => continue,
            Some(first) => {
                let earlier = &kept[first];
                let field = difference(&earlier.value, &doc.value, String::new()).unwrap_or_default();
                let differs =
                    if field.is_empty() { "they differ".to_string() } else { format!("{field} differs") };
                let message = format!(
                    "is defined differently at {}:{} and {}:{}: {differs}",
                    earlier.file.display(),
                    earlier.line_of("metadata.name"),
                    doc.file.display(),
                    doc.line_of("metadata.name"),
                );
                let finding = doc.finding_at(Severity::Error, doc.line_of("metadata.name"), None, message);
                conflicts.push(Conflict { documents: [first, kept.len()], finding });
            }
            None => {}
        }
        kept.push(doc);
    }
    (kept, conflicts)
}

/// The path of the first field, in key order, where `a` and `b` differ; `None` when they do not.
fn difference(a: &Value, b: &Value, path: String) -> Option<String> {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|key| match (a.get(key), b.get(key)) {
                (Some(x), Some(y)) => difference(x, y, child(&path, key)),
                _ => Some(child(&path, key)),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (x, y))| difference(x, y, format!("{path}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_difference_is_named_by_its_path() {
        let a = json!({"spec": {"replicas": 2, "steps": [{"setWeight": 10}], "labels": {"a.b/c": "x"}}});
        let same = a.clone();
        assert_eq!(difference(&a, &same, String::new()), None);
        let replicas =
            json!({"spec": {"replicas": 3, "steps": [{"setWeight": 10}], "labels": {"a.b/c": "x"}}});
        assert_eq!(difference(&a, &replicas, String::new()), Some("spec.replicas".into()));
        let step = json!({"spec": {"replicas": 2, "steps": [{"setWeight": 20}], "labels": {"a.b/c": "x"}}});
        assert_eq!(difference(&a, &step, String::new()), Some("spec.steps[0].setWeight".into()));
        let label = json!({"spec": {"replicas": 2, "steps": [{"setWeight": 10}], "labels": {"a.b/c": "y"}}});
        assert_eq!(difference(&a, &label, String::new()), Some("spec.labels[a.b/c]".into()));
        let longer = json!({"spec": {"replicas": 2, "steps": [{"setWeight": 10}, {"pause": {}}],
            "labels": {"a.b/c": "x"}}});
        assert_eq!(difference(&a, &longer, String::new()), Some("spec.steps".into()));
        let missing = json!({"spec": {"replicas": 2, "steps": [{"setWeight": 10}]}});
        assert_eq!(difference(&a, &missing, String::new()), Some("spec.labels".into()));
    }
}
