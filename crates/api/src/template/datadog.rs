//! Query templates of the `datadog` provider: a Datadog metrics query with the same `{{ NAME }}`
//! placeholders as a PromQL query, each allowed only where no value can change what the query
//! measures. Datadog's query language has no string literal a value could be escaped into, so
//! values are checked instead:
//!
//! - Inside a scope or a group (`{…}`) a placeholder may only fill a tag's value: after the tag's
//!   key and its colon, in the same term, as in `{service:web,version:{{revision}}}` or
//!   `{version:v{{revision}}}`. Its value must be a tag value as Datadog stores them: letters,
//!   digits and `_ - . : /`, at least one. It can then neither add a filter (`,`, a space), a
//!   wildcard (`*`) or an operator (`OR`, `!`), nor close the scope.
//! - Outside braces a placeholder must be a number, as in `.rollup(sum, {{interval}})`: its value
//!   must be digits with an optional fraction. Of the built-in variables only `{{interval}}` may
//!   stand there; the others are names and hashes.
//! - Never inside a quoted string (`'desc'`), whose escapes Datadog does not document.
//!
//! `{{interval}}` is the metric's interval in whole seconds, the unit `.rollup()` takes. Braces
//! and parentheses must pair, and quotes close, so that a typo fails when the template is applied.

use super::web::{Hole, check_declared, holes, substitute, variable};
use super::{BARE_BUILTIN, TemplateError, Variable, Vars};
use std::collections::BTreeSet;

/// Where a placeholder of a Datadog query sits, which decides what its value may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// A tag's value inside braces.
    TagValue,
    /// Outside braces: a number.
    Number,
}

/// The placeholders of a Datadog query template with their places, each checked to sit where a
/// value may, and the template's brackets and quotes checked to pair.
fn datadog_holes(template: &str) -> Result<Vec<(Hole<'_>, Place)>, TemplateError> {
    let holes = holes(template)?;
    let mut placed: Vec<(Hole<'_>, Place)> = Vec::with_capacity(holes.len());
    let mut next = holes.into_iter().peekable();
    // The brackets open around the current position, innermost last: (bracket, byte).
    let mut open: Vec<(char, usize)> = Vec::new();
    // The quote a string opened with, and where.
    let mut quote: Option<(char, usize)> = None;
    // Whether the current term of a scope has had its key's colon.
    let mut after_key = false;
    let mut at = 0;
    while at < template.len() {
        if let Some(hole) = next.next_if(|hole| hole.offset == at) {
            let in_braces = open.iter().any(|(bracket, _)| *bracket == '{');
            let place = match (quote, in_braces, after_key) {
                (None, true, true) => Place::TagValue,
                (None, false, _) => Place::Number,
                _ => {
                    return Err(TemplateError::DatadogPlacement {
                        name: hole.name.to_owned(),
                        offset: hole.offset,
                    });
                }
            };
            at = hole.end;
            placed.push((hole, place));
            continue;
        }
        let c = template[at..].chars().next().expect("at is on a character boundary");
        match (quote, c) {
            (Some((open_quote, _)), c) if c == open_quote => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some((c, at)),
            (None, '{' | '(') => {
                open.push((c, at));
                after_key = false;
            }
            (None, '}' | ')') => {
                let wanted = if c == '}' { '{' } else { '(' };
                match open.pop() {
                    Some((bracket, _)) if bracket == wanted => {}
                    other => return Err(TemplateError::StrayBracket { close: c, offset: at, open: other }),
                }
                after_key = false;
            }
            (None, ':') => after_key = true,
            (None, c) if c == ',' || c == '!' || c.is_whitespace() => after_key = false,
            (None, _) => {}
        }
        at += c.len_utf8();
    }
    if let Some((_, offset)) = quote {
        return Err(TemplateError::UnterminatedString { offset });
    }
    if let Some(&(open, offset)) = open.last() {
        return Err(TemplateError::UnclosedBracket { open, offset });
    }
    Ok(placed)
}

/// Checks a Datadog query template when its metric is validated: placeholders only where a value
/// may sit, only declared args, and brackets and quotes that pair.
pub fn check_datadog(template: &str, declared_args: &BTreeSet<String>) -> Result<(), TemplateError> {
    let placed = datadog_holes(template)?;
    let arg_names: Vec<&str> = declared_args.iter().map(String::as_str).collect();
    for (hole, place) in &placed {
        if let (Variable::Builtin(builtin), Place::Number) = (variable(hole, &arg_names)?, place)
            && builtin.name != BARE_BUILTIN
        {
            return Err(TemplateError::DatadogPlacement { name: hole.name.to_owned(), offset: hole.offset });
        }
    }
    let (holes, _): (Vec<Hole<'_>>, Vec<Place>) = placed.into_iter().unzip();
    check_declared(&holes, declared_args)
}

/// Substitutes `vars` into a Datadog query template, refusing any value that is not what its
/// place allows.
pub fn render_datadog(template: &str, vars: &Vars) -> Result<String, TemplateError> {
    let placed = datadog_holes(template)?;
    let arg_names: Vec<&str> = vars.args.keys().map(String::as_str).collect();
    let (holes, places): (Vec<Hole<'_>>, Vec<Place>) = placed.into_iter().unzip();
    let offsets: Vec<usize> = holes.iter().map(|hole| hole.offset).collect();
    substitute(template, &holes, |hole| {
        let place =
            offsets.iter().position(|offset| *offset == hole.offset).map_or(Place::Number, |i| places[i]);
        let variable = variable(hole, &arg_names)?;
        let value = match variable {
            Variable::Builtin(builtin) if builtin.name == BARE_BUILTIN => seconds(&vars.interval),
            Variable::Builtin(_) if place == Place::Number => {
                return Err(TemplateError::DatadogPlacement {
                    name: hole.name.to_owned(),
                    offset: hole.offset,
                });
            }
            _ => vars.value(variable)?.to_owned(),
        };
        let allowed = match place {
            Place::TagValue => is_tag_value(&value),
            Place::Number => is_number(&value),
        };
        if !allowed {
            let (name, offset) = (hole.name.to_owned(), hole.offset);
            return Err(match place {
                Place::TagValue => TemplateError::DatadogTagValue { name, offset, value },
                Place::Number => TemplateError::DatadogNumber { name, offset, value },
            });
        }
        Ok(value)
    })
}

/// A duration as written (`1m30s`) in whole seconds (`90`); as written when it is no duration, which
/// [`is_number`] then refuses.
fn seconds(duration: &str) -> String {
    crate::Duration::new(duration)
        .parse()
        .map_or_else(|_| duration.to_owned(), |d| d.num_seconds().to_string())
}

/// Letters, digits and `_ - . : /`, at least one.
fn is_tag_value(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b))
}

/// Digits, with an optional fraction.
fn is_number(value: &str) -> bool {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, "0"));
    [whole, fraction].iter().all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(arg: &str) -> Vars {
        Vars {
            args: [("q".to_owned(), arg.to_owned())].into(),
            revision: "abc123".into(),
            canary_revision: "abc123".into(),
            rollout_namespace: "shop".into(),
            interval: "1m30s".into(),
            ..Vars::default()
        }
    }

    fn declared() -> BTreeSet<String> {
        ["q".to_owned()].into()
    }

    const ERRORS: &str = "sum:trace.http.request.errors{service:web,version:{{revision}}}.as_count()";

    #[test]
    fn tag_values_and_numbers_are_filled() {
        assert_eq!(
            render_datadog(ERRORS, &vars("v")).unwrap(),
            "sum:trace.http.request.errors{service:web,version:abc123}.as_count()"
        );
        assert_eq!(
            render_datadog(
                "sum:hits{kube_namespace:{{rollout.namespace}},!version:v{{ revision }}-x}.as_count().rollup(sum, {{interval}})",
                &vars("v")
            )
            .unwrap(),
            "sum:hits{kube_namespace:shop,!version:vabc123-x}.as_count().rollup(sum, 90)"
        );
        assert_eq!(
            render_datadog("p99:latency{team:{{args.q}}} * {{args.q}}", &vars("7")).unwrap(),
            "p99:latency{team:7} * 7"
        );
        assert_eq!(
            render_datadog("x{a:{{args.q}}}", &vars("us-east-1/a:b_c.d")).unwrap(),
            "x{a:us-east-1/a:b_c.d}"
        );
    }

    /// A value can neither widen the filter, add another, nor leave the scope.
    #[test]
    fn a_value_that_is_no_tag_value_is_refused() {
        for hostile in ["*", "a,service:*", "a} or sum:y{*", "a OR b", "", "a b", "x\"", "é", "a)", "{{x}}"]
        {
            let error = render_datadog("sum:x{env:prod,version:{{args.q}}}", &vars(hostile)).unwrap_err();
            assert_eq!(
                error,
                TemplateError::DatadogTagValue { name: "args.q".into(), offset: 23, value: hostile.into() },
                "{hostile:?}"
            );
        }
        for hostile in ["1e3", "-1", "60 + sum:y{*}", ".5", "5."] {
            let error = render_datadog("sum:x{*}.rollup(sum, {{args.q}})", &vars(hostile)).unwrap_err();
            assert!(matches!(error, TemplateError::DatadogNumber { .. }), "{hostile:?}: {error}");
        }
        assert_eq!(
            render_datadog("sum:x{*}.rollup(sum, {{args.q}})", &vars("0.5")).unwrap(),
            "sum:x{*}.rollup(sum, 0.5)"
        );
    }

    #[test]
    fn placeholders_fill_only_tag_values_and_numbers() {
        for template in [
            // A whole tag, or a key, would let the value choose what is filtered on.
            "sum:x{env:prod,{{args.q}}}",
            "sum:x{env:prod, {{args.q}}:a}",
            "sum:x{env:prod} by {host,{{args.q}}}",
            // A name outside braces would be a metric or a function.
            "sum:x{*} by {host}.rollup({{revision}})",
            "top(sum:x{*} by {host}, 10, '{{args.q}}', 'desc')",
        ] {
            let error = check_datadog(template, &declared()).unwrap_err();
            assert!(matches!(error, TemplateError::DatadogPlacement { .. }), "{template}: {error}");
        }
        let error = check_datadog("sum:x{env:prod,{{args.q}}}", &declared()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "{{args.q}} at byte 15 is not where a Datadog query takes a value: a placeholder may fill a tag's value inside braces, after its key, as in {version:{{args.q}}}, or a number outside them, as in .rollup(sum, {{interval}})"
        );
        assert_eq!(check_datadog(ERRORS, &declared()), Ok(()));
        assert_eq!(
            check_datadog("top(sum:x{a:{{args.q}}} by {host}, {{args.q}}, 'mean', 'desc')", &declared()),
            Ok(())
        );
    }

    #[test]
    fn brackets_and_quotes_must_pair_and_args_be_declared() {
        assert_eq!(
            check_datadog("sum:x{a:b", &declared()),
            Err(TemplateError::UnclosedBracket { open: '{', offset: 5 })
        );
        assert_eq!(
            check_datadog("sum:x{a:b)}", &declared()),
            Err(TemplateError::StrayBracket { close: ')', offset: 9, open: Some(('{', 5)) })
        );
        assert_eq!(
            check_datadog("top(sum:x{*}, 5, 'mean)", &declared()),
            Err(TemplateError::UnterminatedString { offset: 17 })
        );
        assert!(matches!(
            check_datadog("sum:x{a:{{args.qq}}}", &declared()),
            Err(TemplateError::UndeclaredArg { suggestion: Some(s), .. }) if s == "q"
        ));
        assert!(matches!(
            check_datadog("sum:x{a:{{revison}}}", &declared()),
            Err(TemplateError::UnknownVariable { suggestion: Some(s), .. }) if s == "revision"
        ));
    }
}
