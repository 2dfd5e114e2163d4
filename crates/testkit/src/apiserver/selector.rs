//! Label and field selectors of list and watch requests.

use super::status::ApiError;
use serde_json::Value;

enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A label selector (equality, set and existence terms) and a field selector (equality on
/// `metadata.name` and `metadata.namespace` only), both comma-separated conjunctions.
#[derive(Default)]
pub struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

impl Selector {
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Self, ApiError> {
        let fields = requirements(fields.unwrap_or(""))?;
        for requirement in &fields {
            match requirement {
                Requirement::Equals(key, _) | Requirement::NotEquals(key, _)
                    if key == "metadata.name" || key == "metadata.namespace" => {}
                _ => {
                    return Err(ApiError::bad_request(
                        "field selectors support metadata.name and metadata.namespace",
                    ));
                }
            }
        }
        Ok(Self { labels: requirements(labels.unwrap_or(""))?, fields })
    }

    pub fn matches(&self, object: &Value) -> bool {
        let metadata = &object["metadata"];
        let label = |key: &str| metadata["labels"].get(key).and_then(Value::as_str);
        let field = |key: &str| metadata.get(key.trim_start_matches("metadata.")).and_then(Value::as_str);
        self.labels.iter().all(|r| r.holds(label)) && self.fields.iter().all(|r| r.holds(field))
    }
}

impl Requirement {
    fn holds<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> bool {
        match self {
            Requirement::Equals(key, value) => lookup(key) == Some(value.as_str()),
            Requirement::NotEquals(key, value) => lookup(key) != Some(value.as_str()),
            Requirement::In(key, values) => {
                lookup(key).is_some_and(|v| values.iter().any(|value| value == v))
            }
            Requirement::NotIn(key, values) => {
                lookup(key).is_none_or(|v| values.iter().all(|value| value != v))
            }
            Requirement::Exists(key) => lookup(key).is_some(),
            Requirement::NotExists(key) => lookup(key).is_none(),
        }
    }
}

/// Splits a selector at the commas that are not inside a set such as `(a,b)`.
fn terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms.into_iter().map(str::trim).filter(|term| !term.is_empty()).collect()
}

fn requirement(term: &str) -> Result<Requirement, ApiError> {
    let owned = |s: &str| s.trim().to_string();
    let unsupported = || ApiError::bad_request(format!("unable to parse selector term {term:?}"));
    if let (Some(open), Some(inner)) = (term.find('('), term.strip_suffix(')')) {
        let values = inner[open + 1..].split(',').map(owned).collect();
        return match term[..open].split_whitespace().collect::<Vec<_>>().as_slice() {
            [key, "in"] => Ok(Requirement::In(owned(key), values)),
            [key, "notin"] => Ok(Requirement::NotIn(owned(key), values)),
            _ => Err(unsupported()),
        };
    }
    Ok(if let Some((key, value)) = term.split_once("!=") {
        Requirement::NotEquals(owned(key), owned(value))
    } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
        Requirement::Equals(owned(key), owned(value))
    } else if let Some(key) = term.strip_prefix('!') {
        Requirement::NotExists(owned(key))
    } else if term.contains(char::is_whitespace) {
        return Err(unsupported());
    } else {
        Requirement::Exists(owned(term))
    })
}

fn requirements(text: &str) -> Result<Vec<Requirement>, ApiError> {
    terms(text).into_iter().map(requirement).collect()
}
