//! Templates of the `web` provider: a URL and a JSON request body, with the same `{{ NAME }}`
//! placeholders as a PromQL query but escaped for where they land in HTTP instead.
//!
//! - In the **URL** a placeholder may only sit in the query string: after the first `?` and before
//!   any `#`. Its value is percent-encoded as a query component (everything but `A-Z a-z 0-9 - . _ ~`),
//!   so it can neither start another parameter (`&`, `=`), end the query (`#`), nor reach the scheme,
//!   host or path, which are the template's own text.
//! - In the **body** (JSON) a placeholder may only sit inside a string literal, and not right after an
//!   unpaired backslash. Its value is escaped as that string's content (quotes, backslashes and control
//!   characters), so it cannot end the string or add to the document. The body, rendered, must be JSON.

use super::{
    MAX_QUERY_BYTES, TemplateError, Variable, Vars, closest, known_names, parse_variable, read_placeholder,
};
use std::collections::BTreeSet;
use std::fmt::Write;

/// The value [`check_url`] and [`check_json_body`] put in every placeholder.
const SENTINEL: &str = "x";

/// One `{{ NAME }}` of a template, and the text before it since the previous one.
pub(super) struct Hole<'t> {
    pub(super) name: &'t str,
    pub(super) offset: usize,
    pub(super) end: usize,
}

/// The placeholders of `template`, in order.
pub(super) fn holes(template: &str) -> Result<Vec<Hole<'_>>, TemplateError> {
    let mut holes = Vec::new();
    let mut from = 0;
    while let Some(found) = template[from..].find("{{") {
        let offset = from + found;
        let (name, end) = read_placeholder(template, offset)?;
        holes.push(Hole { name, offset, end });
        from = end;
    }
    Ok(holes)
}

/// The variable `hole` names.
pub(super) fn variable<'t>(hole: &Hole<'t>, arg_names: &[&str]) -> Result<Variable<'t>, TemplateError> {
    parse_variable(hole.name).ok_or_else(|| TemplateError::UnknownVariable {
        name: hole.name.to_owned(),
        suggestion: closest(hole.name, &known_names(arg_names)),
    })
}

/// Checks that every arg a template names is declared.
pub(super) fn check_declared(
    holes: &[Hole<'_>],
    declared_args: &BTreeSet<String>,
) -> Result<(), TemplateError> {
    let arg_names: Vec<&str> = declared_args.iter().map(String::as_str).collect();
    for hole in holes {
        if let Variable::Arg(name) = variable(hole, &arg_names)?
            && !declared_args.contains(name)
        {
            let suggestion = closest(name, &arg_names);
            return Err(TemplateError::UndeclaredArg { name: name.to_owned(), suggestion });
        }
    }
    Ok(())
}

/// `template` with each placeholder replaced by `fill(its value)`.
pub(super) fn substitute(
    template: &str,
    holes: &[Hole<'_>],
    value: impl Fn(&Hole<'_>) -> Result<String, TemplateError>,
) -> Result<String, TemplateError> {
    let mut rendered = String::with_capacity(template.len());
    let mut from = 0;
    for hole in holes {
        rendered.push_str(&template[from..hole.offset]);
        rendered.push_str(&value(hole)?);
        from = hole.end;
    }
    rendered.push_str(&template[from..]);
    if rendered.len() > MAX_QUERY_BYTES {
        return Err(TemplateError::TooLong { length: rendered.len(), limit: MAX_QUERY_BYTES });
    }
    Ok(rendered)
}

/// The placeholders of a URL template, each checked to sit in the query string.
fn url_holes(template: &str) -> Result<Vec<Hole<'_>>, TemplateError> {
    let holes = holes(template)?;
    let query = template.find('?');
    let fragment = template.find('#');
    for hole in &holes {
        let in_query = query.is_some_and(|at| at < hole.offset) && fragment.is_none_or(|at| at > hole.offset);
        if !in_query {
            return Err(TemplateError::OutsideUrlQuery { name: hole.name.to_owned(), offset: hole.offset });
        }
    }
    Ok(holes)
}

/// Checks a URL template when its metric is validated: an `http://` or `https://` URL with a host,
/// placeholders only in its query string, and only declared args.
pub fn check_url(template: &str, declared_args: &BTreeSet<String>) -> Result<(), TemplateError> {
    let holes = url_holes(template)?;
    check_declared(&holes, declared_args)?;
    let rest = template.strip_prefix("http://").or_else(|| template.strip_prefix("https://"));
    let host_ends = rest.map(|rest| rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    match (rest, host_ends) {
        (Some(_), Some(0)) | (None, _) => Err(TemplateError::NotHttpUrl),
        _ => Ok(()),
    }
}

/// Substitutes `vars` into a URL template, each value percent-encoded as a query component.
pub fn render_url(template: &str, vars: &Vars) -> Result<String, TemplateError> {
    let holes = url_holes(template)?;
    let arg_names: Vec<&str> = vars.args.keys().map(String::as_str).collect();
    substitute(template, &holes, |hole| Ok(encode_query_component(vars.value(variable(hole, &arg_names)?)?)))
}

/// `value` percent-encoded for a URL's query string: every byte but the unreserved characters of
/// RFC 3986 as `%XX`, so that `&`, `=`, `+`, `#`, `/` and `%` in it are data, never syntax.
pub fn encode_query_component(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// The placeholders of a JSON body template, each checked to sit inside a string value (not an
/// object key) and not right after an unpaired backslash.
fn json_holes(template: &str) -> Result<Vec<Hole<'_>>, TemplateError> {
    let holes = holes(template)?;
    let mut next = holes.iter().peekable();
    let (mut in_string, mut escaped, mut in_key) = (false, false, false);
    // The containers open around the current position (`true` for an object), and whether the
    // next string there is a key: at an object's start or after a comma in one.
    let mut objects: Vec<bool> = Vec::new();
    let mut key_next = false;
    let mut at = 0;
    while at < template.len() {
        if let Some(hole) = next.peek()
            && hole.offset == at
        {
            let (name, offset) = (hole.name.to_owned(), hole.offset);
            if !in_string {
                return Err(TemplateError::OutsideJsonString { name, offset });
            }
            if escaped {
                return Err(TemplateError::AfterBackslash { name, offset });
            }
            if in_key {
                return Err(TemplateError::InJsonKey { name, offset });
            }
            at = hole.end;
            next.next();
            continue;
        }
        let c = template[at..].chars().next().expect("at is on a character boundary");
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (false, _, '"') => {
                in_string = true;
                in_key = key_next;
                key_next = false;
            }
            (false, _, '{') => {
                objects.push(true);
                key_next = true;
            }
            (false, _, '[') => objects.push(false),
            (false, _, '}' | ']') => {
                objects.pop();
            }
            (false, _, ',') => key_next = objects.last() == Some(&true),
            _ => {}
        }
        at += c.len_utf8();
    }
    Ok(holes)
}

/// Checks a JSON body template when its metric is validated: placeholders only inside strings, only
/// declared args, and JSON once rendered.
pub fn check_json_body(template: &str, declared_args: &BTreeSet<String>) -> Result<(), TemplateError> {
    let holes = json_holes(template)?;
    check_declared(&holes, declared_args)?;
    let rendered = substitute(template, &holes, |_| Ok(SENTINEL.to_owned()))?;
    serde_json::from_str::<serde_json::Value>(&rendered)
        .map(drop)
        .map_err(|error| TemplateError::NotJson { message: error.to_string() })
}

/// Substitutes `vars` into a JSON body template, each value escaped as its string's content.
pub fn render_json_body(template: &str, vars: &Vars) -> Result<String, TemplateError> {
    let holes = json_holes(template)?;
    let arg_names: Vec<&str> = vars.args.keys().map(String::as_str).collect();
    substitute(template, &holes, |hole| {
        let value = vars.value(variable(hole, &arg_names)?)?;
        let quoted = serde_json::to_string(value).expect("a string always serializes");
        Ok(quoted[1..quoted.len() - 1].to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(arg: &str) -> Vars {
        Vars {
            args: [("q".to_owned(), arg.to_owned())].into(),
            canary_revision: "abc123".into(),
            revision: "abc123".into(),
            ..Vars::default()
        }
    }

    fn declared() -> BTreeSet<String> {
        ["q".to_owned()].into()
    }

    const HOSTILE: &str = "a&b=c#d/e\"f\ng\\h%i+j k?l";

    #[test]
    fn url_values_are_query_components() {
        let url =
            render_url("https://probe.example/api/v1?rev={{canary.revision}}&q={{ args.q }}", &vars(HOSTILE))
                .unwrap();
        assert_eq!(
            url,
            "https://probe.example/api/v1?rev=abc123&q=a%26b%3Dc%23d%2Fe%22f%0Ag%5Ch%25i%2Bj%20k%3Fl"
        );
    }

    #[test]
    fn url_placeholders_stay_in_the_query_string() {
        for template in [
            "https://{{args.q}}/x",
            "https://probe.example/{{args.q}}?a=1",
            "https://probe.example/x?a=1#{{args.q}}",
            "{{args.q}}",
        ] {
            assert!(
                matches!(render_url(template, &vars("v")), Err(TemplateError::OutsideUrlQuery { .. })),
                "{template}"
            );
            assert!(matches!(check_url(template, &declared()), Err(TemplateError::OutsideUrlQuery { .. })));
        }
    }

    #[test]
    fn url_checks() {
        assert_eq!(check_url("http://probe:8080/v?x={{args.q}}", &declared()), Ok(()));
        assert_eq!(check_url("https://probe", &declared()), Ok(()));
        assert_eq!(check_url("ftp://probe/x", &declared()), Err(TemplateError::NotHttpUrl));
        assert_eq!(check_url("http:///x", &declared()), Err(TemplateError::NotHttpUrl));
        assert!(matches!(
            check_url("http://p/?x={{args.qq}}", &declared()),
            Err(TemplateError::UndeclaredArg { name, suggestion: Some(s) }) if name == "qq" && s == "q"
        ));
        assert!(matches!(
            check_url("http://p/?x={{canary.revison}}", &declared()),
            Err(TemplateError::UnknownVariable { .. })
        ));
    }

    #[test]
    fn body_values_are_string_contents() {
        let body =
            render_json_body(r#"{"q": "sum({{args.q}})", "rev": "{{revision}}"}"#, &vars(HOSTILE)).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed, serde_json::json!({"q": format!("sum({HOSTILE})"), "rev": "abc123"}));
    }

    #[test]
    fn body_placeholders_stay_inside_strings() {
        assert!(matches!(
            check_json_body(r#"{"n": {{args.q}}}"#, &declared()),
            Err(TemplateError::OutsideJsonString { offset: 6, .. })
        ));
        // A closed string earlier does not count: the quote parity is tracked, escapes included.
        assert!(matches!(
            check_json_body(r#"{"a\"": "b", "n": {{args.q}}}"#, &declared()),
            Err(TemplateError::OutsideJsonString { .. })
        ));
        assert!(matches!(
            check_json_body(r#"{"n": "\{{args.q}}"}"#, &declared()),
            Err(TemplateError::AfterBackslash { .. })
        ));
        assert_eq!(check_json_body(r#"{"n": "\\{{args.q}}"}"#, &declared()), Ok(()));
        // Keys are chosen by the template's author alone: a key an arg chose could repeat another.
        for body in [r#"{"{{args.q}}": "v", "tenant": "a"}"#, r#"{"a": [1, {"x": 2, "{{args.q}}": 3}]}"#] {
            assert!(
                matches!(check_json_body(body, &declared()), Err(TemplateError::InJsonKey { .. })),
                "{body}"
            );
        }
        for body in [r#"{"a": ["{{args.q}}", "x"]}"#, r#"{"a": {"b": "{{args.q}}"}, "c": "{{args.q}}"}"#] {
            assert_eq!(check_json_body(body, &declared()), Ok(()), "{body}");
        }
        assert!(matches!(
            check_json_body(r#"{"n": "{{args.q}}""#, &declared()),
            Err(TemplateError::NotJson { .. })
        ));
    }
}
