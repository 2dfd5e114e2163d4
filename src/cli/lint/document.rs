//! One YAML document of a manifest file, and where its fields are in the file: what `lint` checks
//! and `convert` translates, each locating what it says as `file:line`.

use super::yaml::{self, ProblemKind};
use super::{Finding, Severity};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One YAML document of a file.
pub(crate) struct Document {
    pub(crate) file: PathBuf,
    /// The file's line number of the document's first line.
    pub(crate) start: usize,
    pub(crate) lines: Vec<String>,
    pub(crate) value: Value,
    /// What reading the YAML into `value` hid, with lines of the file, and how many more problems
    /// there are than are listed.
    pub(crate) problems: Vec<yaml::Problem>,
    pub(crate) unlisted_problems: usize,
}

impl Document {
    pub(crate) fn str(&self, pointer: &str) -> Option<&str> {
        self.value.pointer(pointer).and_then(Value::as_str)
    }

    /// The value at a field path such as `spec.steps[2].setWeight`.
    pub(crate) fn value_at(&self, field: &str) -> Option<&Value> {
        segments(field).into_iter().try_fold(&self.value, |value, segment| match segment {
            Segment::Key(key) => value.get(key),
            Segment::Index(index) => value.get(index),
        })
    }

    pub(crate) fn kind(&self) -> &str {
        self.str("/kind").unwrap_or_default()
    }

    pub(crate) fn name(&self) -> &str {
        self.str("/metadata/name").unwrap_or_default()
    }

    pub(crate) fn namespace(&self) -> Option<&str> {
        self.str("/metadata/namespace")
    }

    pub(crate) fn is(&self, api_version: &str, kind: &str) -> bool {
        self.str("/apiVersion") == Some(api_version) && self.kind() == kind
    }

    /// The API group: `apiVersion` without its version, empty for the core group. Two versions of
    /// one group name the same object.
    pub(crate) fn group(&self) -> &str {
        self.str("/apiVersion").and_then(|v| v.rsplit_once('/')).map_or("", |(group, _)| group)
    }

    pub(crate) fn is_template(&self) -> bool {
        matches!(self.kind(), "AnalysisTemplate" | "ClusterAnalysisTemplate")
    }

    /// The file line of `field`, by the textual search the module docs describe.
    pub(crate) fn line_of(&self, field: &str) -> usize {
        let first = self.lines.iter().position(|l| is_content(l)).unwrap_or(0);
        self.start + locate(&self.lines, field).unwrap_or(first)
    }

    pub(crate) fn finding(&self, severity: Severity, field: &str, message: impl Into<String>) -> Finding {
        let field = (!field.is_empty()).then(|| field.to_string());
        self.finding_at(severity, self.line_of(field.as_deref().unwrap_or_default()), field, message)
    }

    pub(crate) fn finding_at(
        &self,
        severity: Severity,
        line: usize,
        field: Option<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            severity,
            file: self.file.clone(),
            line,
            object: Some(format!("{}/{}", self.kind(), self.name())),
            field,
            message: message.into(),
        }
    }
}

/// The documents of `text`, read from `file`, split at lines that start with `---`; and a finding
/// for each document that is not a YAML mapping.
pub(crate) fn read(file: &Path, text: &str) -> (Vec<Document>, Vec<Finding>) {
    let mut documents = Vec::new();
    let mut findings = Vec::new();
    let mut chunks: Vec<(usize, Vec<String>)> = vec![(1, Vec::new())];
    for (i, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") || line.starts_with("---\t") {
            chunks.push((i + 2, Vec::new()));
        } else if let Some((_, lines)) = chunks.last_mut() {
            lines.push(line.to_string());
        }
    }
    for (start, lines) in chunks {
        if !lines.iter().any(|l| is_content(l)) {
            continue;
        }
        let text = lines.join("\n");
        match serde_yaml::from_str::<Value>(&text) {
            Ok(value) if value.is_object() => {
                let (problems, unlisted_problems) = yaml::problems(&text);
                let problems = problems
                    .into_iter()
                    .map(|mut problem| {
                        problem.line += start - 1;
                        if let ProblemKind::DuplicateKey { first_line, .. } = &mut problem.kind {
                            *first_line += start - 1;
                        }
                        problem
                    })
                    .collect();
                documents.push(Document {
                    file: file.to_path_buf(),
                    start,
                    lines,
                    value,
                    problems,
                    unlisted_problems,
                })
            }
            Ok(_) => findings.push(Finding {
                severity: Severity::Error,
                file: file.to_path_buf(),
                line: start + lines.iter().position(|l| is_content(l)).unwrap_or(0),
                object: None,
                field: None,
                message: "a manifest must be a mapping with apiVersion and kind".into(),
            }),
            Err(error) => findings.push(yaml_finding(file, start, &error)),
        }
    }
    (documents, findings)
}

pub(crate) fn is_content(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty() && !line.starts_with('#')
}

/// A YAML syntax error, located in the file rather than in its document.
fn yaml_finding(file: &Path, start: usize, error: &serde_yaml::Error) -> Finding {
    let mut message = error.to_string();
    let line = match error.location() {
        Some(location) => {
            let suffix = format!(" at line {} column {}", location.line(), location.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = format!("{stripped} (column {})", location.column());
            }
            start + location.line() - 1
        }
        None => start,
    };
    Finding { severity: Severity::Error, file: file.to_path_buf(), line, object: None, field: None, message }
}

/// `parent.key`, or `parent[key]` for a key that a dotted path cannot show.
pub(crate) fn child(parent: &str, key: &str) -> String {
    if key.is_empty() || key.contains(['.', '[', ']']) {
        format!("{parent}[{key}]")
    } else if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// One step of a field path: `steps`, `[2]` or `[app.kubernetes.io/name]`.
pub(crate) enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

pub(crate) fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut segments = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']').unwrap_or(inner.len());
            let key = &inner[..end];
            segments.push(key.parse().map_or(Segment::Key(key), Segment::Index));
            rest = inner.get(end + 1..).unwrap_or_default();
        } else {
            let rest_trimmed = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest_trimmed.find(['.', '[']).unwrap_or(rest_trimmed.len());
            segments.push(Segment::Key(&rest_trimmed[..end]));
            rest = &rest_trimmed[end..];
        }
    }
    segments
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The index in `lines` of `path`'s deepest segment that a textual search finds, searching each
/// segment after the previous one.
pub(crate) fn locate(lines: &[String], path: &str) -> Option<usize> {
    let mut found = None;
    let mut from = 0;
    for segment in segments(path) {
        let hit = match segment {
            Segment::Key(key) => lines.iter().skip(from).position(|line| {
                let line = line.trim_start();
                let line = line.strip_prefix("- ").unwrap_or(line).trim_start();
                [format!("{key}:"), format!("\"{key}\":"), format!("'{key}':")]
                    .iter()
                    .any(|k| line.starts_with(k))
            }),
            Segment::Index(n) => {
                let mut items = lines
                    .iter()
                    .enumerate()
                    .skip(from)
                    .filter(|(_, line)| is_content(line))
                    .take_while({
                        let mut list_indent = None;
                        move |(_, line)| {
                            let item = line.trim_start() == "-" || line.trim_start().starts_with("- ");
                            let list = *list_indent.get_or_insert(if item { indent(line) } else { 0 });
                            item || indent(line) > list
                        }
                    })
                    .filter(|(_, line)| line.trim_start() == "-" || line.trim_start().starts_with("- "));
                let first = items.next();
                let list = first.map(|(_, line)| indent(line));
                first
                    .into_iter()
                    .chain(items.filter(|(_, line)| Some(indent(line)) == list))
                    .nth(n)
                    .map(|(i, _)| i - from)
            }
        };
        let Some(hit) = hit else { break };
        found = Some(from + hit);
        // A list item's first key is on the item's own line.
        from += hit + usize::from(matches!(segment, Segment::Key(_)));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    #[test]
    fn locates_keys_list_items_and_map_keys() {
        let doc = lines(
            "spec:\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: a\n  steps:\n    - setWeight: 1\n    \
             - pause: {}\n    - setWeight: 101\n",
        );
        assert_eq!(locate(&doc, "spec.steps[2].setWeight"), Some(7));
        assert_eq!(locate(&doc, "spec.steps[1]"), Some(6));
        assert_eq!(locate(&doc, "spec.selector.matchLabels[app.kubernetes.io/name]"), Some(3));
        assert_eq!(locate(&doc, "spec.nothing"), Some(0));
        assert_eq!(locate(&doc, "other"), None);
    }
}
