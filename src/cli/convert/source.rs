//! A document being converted: reads of its fields that refuse, located at the field's
//! `file:line`, whatever is not of the type expected or not converted at all; and the notes that
//! go into the output's comments.

use crate::cli::lint::document::{Document, Segment, segments};
use crate::cli::lint::{Finding, Severity};
use serde_json::Value;
use std::cell::OnceCell;

pub struct Source<'d> {
    pub doc: &'d Document,
    refusals: Vec<Finding>,
    notes: Vec<String>,
    /// The document read again with its keys in the author's order, for parts copied unchanged.
    ordered: OnceCell<Option<serde_yaml::Value>>,
}

/// A field the source tool has and Bellwether does not, and why it cannot be carried over.
pub type Unsupported<'a> = (&'a str, &'a str);

impl<'d> Source<'d> {
    pub fn new(doc: &'d Document) -> Self {
        Self { doc, refusals: Vec::new(), notes: Vec::new(), ordered: OnceCell::new() }
    }

    /// `Kind namespace/name` (or `Kind name`), and where it starts, for comments.
    pub fn describe(&self) -> String {
        let name = match self.doc.namespace() {
            Some(namespace) => format!("{namespace}/{}", self.doc.name()),
            None => self.doc.name().to_string(),
        };
        format!("{} {name} ({}:{})", self.doc.kind(), self.doc.file.display(), self.doc.line_of(""))
    }

    pub fn at(&self, field: &str) -> Option<&'d Value> {
        self.doc.value_at(field).filter(|v| !v.is_null())
    }

    pub fn has(&self, field: &str) -> bool {
        self.at(field).is_some()
    }

    pub fn refuse(&mut self, field: &str, message: impl Into<String>) {
        let finding = self.doc.finding(Severity::Error, field, message);
        if !self.refusals.contains(&finding) {
            self.refusals.push(finding);
        }
    }

    pub fn is_refused(&self) -> bool {
        !self.refusals.is_empty()
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Takes in what was refused and noted in another document read for this one (a Flagger
    /// Canary's MetricTemplate).
    pub fn adopt(&mut self, other: Source<'_>) {
        for refusal in other.refusals {
            if !self.refusals.contains(&refusal) {
                self.refusals.push(refusal);
            }
        }
        self.notes.extend(other.notes);
    }

    /// The notes for the output's comments, or every refusal.
    pub fn finish(self) -> Result<Vec<String>, Vec<Finding>> {
        if self.refusals.is_empty() { Ok(self.notes) } else { Err(self.refusals) }
    }

    fn wrong_type(&mut self, field: &str, wanted: &str) {
        let found = match self.at(field) {
            Some(Value::Bool(_)) => "a boolean",
            Some(Value::Number(_)) => "a number",
            Some(Value::String(_)) => "a string",
            Some(Value::Array(_)) => "a list",
            Some(Value::Object(_)) => "a mapping",
            Some(Value::Null) | None => "nothing",
        };
        self.refuse(field, format!("must be {wanted}, not {found}"));
    }

    pub fn string(&mut self, field: &str) -> Option<String> {
        match self.at(field)? {
            Value::String(text) => Some(text.clone()),
            _ => {
                self.wrong_type(field, "a string");
                None
            }
        }
    }

    /// A string that must be there.
    pub fn required_string(&mut self, field: &str) -> Option<String> {
        if !self.has(field) {
            self.refuse(field, "is required");
        }
        let text = self.string(field)?;
        if text.is_empty() {
            self.refuse(field, "must not be empty");
            return None;
        }
        Some(text)
    }

    pub fn boolean(&mut self, field: &str) -> Option<bool> {
        match self.at(field)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.wrong_type(field, "true or false");
                None
            }
        }
    }

    pub fn number(&mut self, field: &str) -> Option<f64> {
        match self.at(field)?.as_f64() {
            Some(n) => Some(n),
            None => {
                self.wrong_type(field, "a number");
                None
            }
        }
    }

    /// A whole number within `min..=max`, given as a number or, where the source tool takes either
    /// (Kubernetes' IntOrString), as a string of one.
    pub fn integer(&mut self, field: &str, min: i64, max: i64) -> Option<i64> {
        let value = self.at(field)?;
        let number = match value {
            Value::Number(n) => n.as_i64(),
            Value::String(text) if text.contains("{{") => {
                self.refuse(
                    field,
                    format!("{text:?} is filled in from args when Argo runs it; Bellwether needs the number itself"),
                );
                return None;
            }
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        };
        match number {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.refuse(field, format!("{n} is outside {min}..={max}"));
                None
            }
            None => {
                self.wrong_type(field, "a whole number");
                None
            }
        }
    }

    /// How many items the list at `field` has; 0 when it is absent.
    pub fn items(&mut self, field: &str) -> usize {
        match self.at(field) {
            None => 0,
            Some(Value::Array(items)) => items.len(),
            Some(_) => {
                self.wrong_type(field, "a list");
                0
            }
        }
    }

    /// The keys of the mapping at `field`, in order; none when it is absent.
    pub fn keys(&mut self, field: &str) -> Vec<String> {
        match self.at(field) {
            None => Vec::new(),
            Some(Value::Object(map)) => map.keys().cloned().collect(),
            Some(_) => {
                self.wrong_type(field, "a mapping");
                Vec::new()
            }
        }
    }

    /// Refuses every key of the mapping at `field` that is neither `handled` nor harmless to leave
    /// out: an `unsupported` one with its reason, any other as unknown.
    pub fn only(&mut self, field: &str, handled: &[&str], unsupported: &[Unsupported<'_>]) {
        for key in self.keys(field) {
            if handled.contains(&key.as_str()) {
                continue;
            }
            let path = if field.is_empty() { key.clone() } else { format!("{field}.{key}") };
            match unsupported.iter().find(|(name, _)| *name == key) {
                Some((_, reason)) => self.refuse(&path, format!("is not converted: {reason}")),
                None => self.refuse(&path, "is not a field convert knows; nothing is guessed"),
            }
        }
    }

    /// The value at `field` as written, with its keys in the author's order.
    pub fn verbatim(&self, field: &str) -> serde_yaml::Value {
        let ordered = self.ordered.get_or_init(|| serde_yaml::from_str(&self.doc.lines.join("\n")).ok());
        let found = ordered.as_ref().and_then(|root| {
            segments(field).into_iter().try_fold(root, |value, segment| match segment {
                Segment::Key(key) => value.get(key),
                Segment::Index(index) => value.get(index),
            })
        });
        match found {
            Some(value) => value.clone(),
            None => serde_yaml::to_value(self.at(field)).unwrap_or_default(),
        }
    }
}
