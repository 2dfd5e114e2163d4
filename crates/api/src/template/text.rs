//! Templates of the `job` provider: the strings of a Job's metadata and spec, with the same
//! `{{ NAME }}` placeholders as a PromQL query, each value substituted as it is.
//!
//! A value lands inside one string of the Job, never in its structure: the document is walked as
//! JSON and only string values are rendered (object keys are the template's own text), so no value
//! adds a field, a container or a list item. What a program does with the string is another matter:
//! a value inside a `sh -c` script is read as shell, so a template passes values to its program
//! through `env` and refers to them as `"$NAME"`, which the shell does not read as code.

use super::web::{check_declared, holes, variable};
use super::{TemplateError, Vars};
use serde_json::Value;
use std::collections::BTreeSet;

/// A template error in one string of a JSON document, with the path of that string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {error}")]
pub struct StringError {
    /// Where the string is, such as `spec.template.spec.containers[0].env[1].value`, after the
    /// caller's prefix.
    pub path: String,
    pub error: TemplateError,
}

/// Checks a string template when its metric is validated: closed placeholders, known variables and
/// declared args only.
pub fn check_text(template: &str, declared_args: &BTreeSet<String>) -> Result<(), TemplateError> {
    check_declared(&holes(template)?, declared_args)
}

/// Substitutes `vars` into a string template, each value as it is.
pub fn render_text(template: &str, vars: &Vars) -> Result<String, TemplateError> {
    let arg_names: Vec<&str> = vars.args.keys().map(String::as_str).collect();
    let mut rendered = String::with_capacity(template.len());
    let mut from = 0;
    for hole in holes(template)? {
        rendered.push_str(&template[from..hole.offset]);
        rendered.push_str(vars.value(variable(&hole, &arg_names)?)?);
        from = hole.end;
    }
    rendered.push_str(&template[from..]);
    Ok(rendered)
}

/// Checks every string value of `document` with [`check_text`]; errors name the string's path
/// under `prefix`.
pub fn check_strings(
    document: &Value,
    prefix: &str,
    declared_args: &BTreeSet<String>,
) -> Result<(), StringError> {
    let mut document = document.clone();
    walk(&mut document, &mut prefix.to_owned(), &mut |text| check_text(text, declared_args).map(|()| None))
}

/// `document` with every string value rendered with [`render_text`]; errors name the string's path
/// under `prefix`.
pub fn render_strings(document: &Value, prefix: &str, vars: &Vars) -> Result<Value, StringError> {
    let mut document = document.clone();
    walk(&mut document, &mut prefix.to_owned(), &mut |text| render_text(text, vars).map(Some))?;
    Ok(document)
}

/// Calls `each` on every string value of `value`, replacing the string with what it returns (if
/// anything). `path` is the value's path, and is restored on return.
fn walk(
    value: &mut Value,
    path: &mut String,
    each: &mut dyn FnMut(&str) -> Result<Option<String>, TemplateError>,
) -> Result<(), StringError> {
    let length = path.len();
    let result = match value {
        Value::String(text) => match each(text) {
            Ok(Some(rendered)) => {
                *text = rendered;
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(error) => Err(StringError { path: path.clone(), error }),
        },
        Value::Array(items) => items.iter_mut().enumerate().try_for_each(|(i, item)| {
            path.truncate(length);
            path.push_str(&format!("[{i}]"));
            walk(item, path, each)
        }),
        Value::Object(fields) => fields.iter_mut().try_for_each(|(key, field)| {
            path.truncate(length);
            push_key(path, key);
            walk(field, path, each)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    };
    path.truncate(length);
    result
}

/// Appends `key` to a path: `.key` for a plain name, `["key"]` for one such as a label key with
/// dots or slashes.
fn push_key(path: &mut String, key: &str) {
    let plain = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (plain, path.is_empty()) {
        (true, true) => path.push_str(key),
        (true, false) => {
            path.push('.');
            path.push_str(key);
        }
        (false, _) => path.push_str(&format!("[{key:?}]")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        Vars {
            args: [("suite".to_owned(), "a' ; rm -rf / \"$(x)\"".to_owned())].into(),
            revision: "abc123".into(),
            canary_revision: "abc123".into(),
            rollout_namespace: "shop".into(),
            ..Vars::default()
        }
    }

    #[test]
    fn values_are_substituted_as_they_are() {
        assert_eq!(
            render_text("{{revision}}-{{ args.suite }}", &vars()).unwrap(),
            "abc123-a' ; rm -rf / \"$(x)\""
        );
        assert_eq!(render_text("no placeholder", &vars()).unwrap(), "no placeholder");
    }

    #[test]
    fn only_string_values_are_rendered_and_keys_are_kept() {
        let document = json!({
            "labels": {"app.kubernetes.io/name": "{{rollout.namespace}}"},
            "spec": {"backoffLimit": 0, "suspend": false, "template": {"spec": {"containers": [{
                "name": "smoke",
                "command": ["sh", "-c", "test \"$SUITE\" != {{revision}}"],
                "env": [{"name": "SUITE", "value": "{{args.suite}}"}],
            }]}}},
        });
        let rendered = render_strings(&document, "provider.job", &vars()).unwrap();
        assert_eq!(rendered["labels"]["app.kubernetes.io/name"], "shop");
        assert_eq!(rendered["spec"]["backoffLimit"], 0);
        let container = &rendered["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["command"][2], "test \"$SUITE\" != abc123");
        assert_eq!(container["env"][0]["value"], "a' ; rm -rf / \"$(x)\"");
    }

    #[test]
    fn errors_name_the_path_of_their_string() {
        let document = json!({
            "metadata": {"labels": {"example.com/suite": "{{args.suit}}"}},
            "spec": {"template": {"spec": {"containers": [{"args": ["ok", "{{revison}}"]}]}}},
        });
        let declared: BTreeSet<String> = ["suite".to_owned()].into();
        let error = check_strings(&document["spec"], "provider.job.spec", &declared).unwrap_err();
        assert_eq!(error.path, "provider.job.spec.template.spec.containers[0].args[1]");
        assert!(
            matches!(error.error, TemplateError::UnknownVariable { ref suggestion, .. } if suggestion.as_deref() == Some("revision"))
        );
        let error = check_strings(&document["metadata"], "provider.job.metadata", &declared).unwrap_err();
        assert_eq!(error.path, "provider.job.metadata.labels[\"example.com/suite\"]");
        assert!(matches!(error.error, TemplateError::UndeclaredArg { .. }));
        let error = render_strings(&json!({"a": ["{{args.other}}"]}), "", &vars()).unwrap_err();
        assert_eq!(error.path, "a[0]");
        assert_eq!(error.error, TemplateError::MissingArg { name: "other".into() });
        assert!(matches!(
            check_text("{{revision", &declared),
            Err(TemplateError::UnterminatedPlaceholder { .. })
        ));
    }
}
