//! Query templating: substitutes variables into PromQL, escaped for where they land.
//!
//! A template is PromQL with `{{ NAME }}` placeholders. Args come from rollout authors, who must not be
//! able to change what a query measures, so a small lexer first finds where each placeholder sits: in a
//! quoted string, in a regex matcher's string, in a backtick string, or in bare PromQL. Each value is then
//! escaped or checked for that place, so that it is always one literal or one token and never more.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// The values a query can refer to, gathered for one measurement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vars {
    /// `{{args.NAME}}`: the template's args, with the Rollout's values over the template's defaults.
    pub args: BTreeMap<String, String>,
    pub rollout_name: String,
    pub rollout_namespace: String,
    /// `{{revision}}`: the revision under test, so that one query can measure either side of a comparison.
    pub revision: String,
    pub canary_revision: String,
    pub stable_revision: String,
    pub canary_service: String,
    pub stable_service: String,
    /// `{{interval}}`: the metric's interval as written, for range selectors such as `[{{interval}}]`.
    pub interval: String,
}

/// Which revision a query measures: `{{revision}}` and `{{service}}` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Canary,
    Stable,
}

impl Vars {
    /// These variables with `{{revision}}` and `{{service}}` naming `side`, so that a compare or sequential
    /// metric runs one query for each revision.
    pub fn measuring(&self, side: Side) -> Vars {
        let revision = match side {
            Side::Canary => &self.canary_revision,
            Side::Stable => &self.stable_revision,
        };
        Vars { revision: revision.clone(), ..self.clone() }
    }

    /// `{{service}}`: the Service of the revision `{{revision}}` names. It is derived rather than set so
    /// that the two cannot disagree; when canary and stable are one revision, the canary's Service.
    fn service(&self) -> &str {
        if self.revision == self.stable_revision && self.revision != self.canary_revision {
            &self.stable_service
        } else {
            &self.canary_service
        }
    }
}

/// Why a query template cannot be checked or rendered. Each message names the variable at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unterminated {{{{ at byte {offset}; close the placeholder with }}}}")]
    UnterminatedPlaceholder { offset: usize },
    #[error("unterminated string literal starting at byte {offset}")]
    UnterminatedString { offset: usize },
    #[error("unknown variable {{{{{name}}}}}{}", variable_hint(.suggestion.as_deref()))]
    UnknownVariable { name: String, suggestion: Option<String> },
    #[error("arg {name:?} is not declared by the template{}", arg_hint(.suggestion.as_deref()))]
    UndeclaredArg { name: String, suggestion: Option<String> },
    #[error("arg {name:?} has no value: the Rollout passes none and the template has no default")]
    MissingArg { name: String },
    #[error(
        "{{{{{name}}}}} at byte {offset} is inside a # comment, where a newline in its value would end the comment"
    )]
    InComment { name: String, offset: usize },
    #[error(
        "{{{{{name}}}}} at byte {offset} follows a backslash, which would escape the first character of its value"
    )]
    AfterBackslash { name: String, offset: usize },
    #[error(
        "{{{{{name}}}}} must be inside a string literal, as in label=\"{{{{{name}}}}}\": \
         its values can hold '-' or start with a digit, which PromQL cannot take outside a string"
    )]
    BareBuiltin { name: String },
    #[error(
        "{{{{{name}}}}} is used outside a string, so its value must be a duration, number or identifier; got {value:?}"
    )]
    BareValue { name: String, value: String },
    #[error(
        "{{{{{name}}}}} is inside a backtick string, so its value must not contain a backtick; got {value:?}"
    )]
    BacktickInValue { name: String, value: String },
}

/// Checks a query when its template is validated, so that a typo or a misplaced placeholder fails when
/// the template is applied rather than midway through a rollout.
pub fn check(query: &str, declared_args: &BTreeSet<String>) -> Result<(), TemplateError> {
    let arg_names: Vec<&str> = declared_args.iter().map(String::as_str).collect();
    for hole in lex(query)?.iter().filter_map(Piece::hole) {
        if let Variable::Arg(name) = resolve(hole, &arg_names)?
            && !declared_args.contains(name)
        {
            let suggestion = closest(name, &arg_names);
            return Err(TemplateError::UndeclaredArg { name: name.to_owned(), suggestion });
        }
    }
    Ok(())
}

/// Substitutes `vars` into `query`, each value escaped for where it lands, so that no value can end its
/// string literal or add to the expression.
pub fn render(query: &str, vars: &Vars) -> Result<String, TemplateError> {
    let arg_names: Vec<&str> = vars.args.keys().map(String::as_str).collect();
    let mut rendered = String::with_capacity(query.len());
    for piece in lex(query)? {
        match piece {
            Piece::Text(text) => rendered.push_str(text),
            Piece::Hole(hole) => {
                let value = vars.value(resolve(&hole, &arg_names)?)?;
                rendered.push_str(&escape(&hole, value)?);
            }
        }
    }
    Ok(rendered)
}

/// A built-in variable and where its value comes from.
struct Builtin {
    name: &'static str,
    value: fn(&Vars) -> &str,
}

static BUILTINS: [Builtin; 9] = [
    Builtin { name: "rollout.name", value: |vars| &vars.rollout_name },
    Builtin { name: "rollout.namespace", value: |vars| &vars.rollout_namespace },
    Builtin { name: "revision", value: |vars| &vars.revision },
    Builtin { name: "service", value: Vars::service },
    Builtin { name: "canary.revision", value: |vars| &vars.canary_revision },
    Builtin { name: "stable.revision", value: |vars| &vars.stable_revision },
    Builtin { name: "canary.service", value: |vars| &vars.canary_service },
    Builtin { name: "stable.service", value: |vars| &vars.stable_service },
    Builtin { name: "interval", value: |vars| &vars.interval },
];

/// The only built-in whose values are always one PromQL token; the others are Kubernetes names and
/// revision hashes.
const BARE_BUILTIN: &str = "interval";

/// How far a name may be from a known one to be offered as a correction.
const MAX_TYPO_DISTANCE: usize = 2;

/// What PromQL reads specially inside a regex; escaped so that a value matches only itself.
const REGEX_METACHARACTERS: &str = r".^$*+?()[]{}|\";

#[derive(Clone, Copy)]
enum Variable<'q> {
    Arg(&'q str),
    Builtin(&'static Builtin),
}

impl Vars {
    fn value(&self, variable: Variable<'_>) -> Result<&str, TemplateError> {
        match variable {
            Variable::Arg(name) => self
                .args
                .get(name)
                .map(String::as_str)
                .ok_or_else(|| TemplateError::MissingArg { name: name.to_owned() }),
            Variable::Builtin(builtin) => Ok((builtin.value)(self)),
        }
    }
}

/// Where in the PromQL a placeholder sits, which decides how its value is made safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Bare,
    Quoted { quote: char, regex: bool },
    Raw { regex: bool },
}

struct Hole<'q> {
    name: &'q str,
    place: Place,
}

enum Piece<'q> {
    Text(&'q str),
    Hole(Hole<'q>),
}

impl<'q> Piece<'q> {
    fn hole(&self) -> Option<&Hole<'q>> {
        match self {
            Piece::Hole(hole) => Some(hole),
            Piece::Text(_) => None,
        }
    }
}

#[derive(Clone, Copy)]
enum State {
    Code,
    Comment,
    InString { place: Place, start: usize },
}

/// Splits a query into text and placeholders, tracking PromQL strings and comments as Prometheus's own
/// lexer does so that each placeholder knows its place.
fn lex(query: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    Lexer { query, pos: 0, text_start: 0, state: State::Code, pieces: Vec::new() }.run()
}

struct Lexer<'q> {
    query: &'q str,
    pos: usize,
    text_start: usize,
    state: State,
    pieces: Vec<Piece<'q>>,
}

impl<'q> Lexer<'q> {
    fn run(mut self) -> Result<Vec<Piece<'q>>, TemplateError> {
        while self.pos < self.query.len() {
            if self.opens_placeholder(self.pos) {
                self.placeholder()?;
            } else {
                self.advance()?;
            }
        }
        if let State::InString { start, .. } = self.state {
            return Err(TemplateError::UnterminatedString { offset: start });
        }
        self.pieces.push(Piece::Text(&self.query[self.text_start..]));
        Ok(self.pieces)
    }

    fn opens_placeholder(&self, at: usize) -> bool {
        self.query.as_bytes()[at..].starts_with(b"{{")
    }

    fn placeholder(&mut self) -> Result<(), TemplateError> {
        let (name, end) = read_placeholder(self.query, self.pos)?;
        let place = match self.state {
            State::Code => Place::Bare,
            State::Comment => {
                return Err(TemplateError::InComment { name: name.to_owned(), offset: self.pos });
            }
            State::InString { place, .. } => place,
        };
        self.pieces.push(Piece::Text(&self.query[self.text_start..self.pos]));
        self.pieces.push(Piece::Hole(Hole { name, place }));
        self.pos = end;
        self.text_start = end;
        Ok(())
    }

    fn advance(&mut self) -> Result<(), TemplateError> {
        let byte = self.query.as_bytes()[self.pos];
        self.state = match (self.state, byte) {
            (State::Code, b'#') => State::Comment,
            (State::Code, b'"' | b'\'') => {
                let place = Place::Quoted { quote: char::from(byte), regex: self.after_regex_operator() };
                State::InString { place, start: self.pos }
            }
            (State::Code, b'`') => {
                State::InString { place: Place::Raw { regex: self.after_regex_operator() }, start: self.pos }
            }
            (State::Comment, b'\n') => State::Code,
            (State::InString { place: Place::Quoted { .. }, .. }, b'\\') => return self.skip_escape(),
            (State::InString { place: Place::Quoted { .. }, start }, b'\n') => {
                return Err(TemplateError::UnterminatedString { offset: start });
            }
            (State::InString { place: Place::Quoted { quote, .. }, .. }, _) if char::from(byte) == quote => {
                State::Code
            }
            (State::InString { place: Place::Raw { .. }, .. }, b'`') => State::Code,
            (state, _) => state,
        };
        self.pos += 1;
        Ok(())
    }

    /// Steps over a backslash and the character it escapes. A placeholder there is refused: the
    /// backslash would swallow the first character of the value, which may be the escape we add.
    fn skip_escape(&mut self) -> Result<(), TemplateError> {
        let escaped = self.pos + 1;
        if self.opens_placeholder(escaped) {
            let (name, _) = read_placeholder(self.query, escaped)?;
            return Err(TemplateError::AfterBackslash { name: name.to_owned(), offset: escaped });
        }
        self.pos += 2;
        Ok(())
    }

    fn after_regex_operator(&self) -> bool {
        let code = self.query[self.text_start..self.pos].trim_end();
        code.ends_with("=~") || code.ends_with("!~")
    }
}

/// Reads the placeholder opening at `open`, returning its trimmed name and the byte after it.
fn read_placeholder(query: &str, open: usize) -> Result<(&str, usize), TemplateError> {
    let inner = open + 2;
    let close = query[inner..].find("}}").ok_or(TemplateError::UnterminatedPlaceholder { offset: open })?;
    Ok((query[inner..inner + close].trim(), inner + close + 2))
}

/// Finds the variable a placeholder names and checks that it may sit where it is.
fn resolve<'q>(hole: &Hole<'q>, arg_names: &[&str]) -> Result<Variable<'q>, TemplateError> {
    let variable = parse_variable(hole.name).ok_or_else(|| TemplateError::UnknownVariable {
        name: hole.name.to_owned(),
        suggestion: closest(hole.name, &known_names(arg_names)),
    })?;
    let bare_ok = match variable {
        Variable::Arg(_) => true,
        Variable::Builtin(builtin) => builtin.name == BARE_BUILTIN,
    };
    if hole.place == Place::Bare && !bare_ok {
        return Err(TemplateError::BareBuiltin { name: hole.name.to_owned() });
    }
    Ok(variable)
}

fn parse_variable(name: &str) -> Option<Variable<'_>> {
    match name.strip_prefix("args.") {
        Some(arg) if !arg.is_empty() => Some(Variable::Arg(arg)),
        _ => BUILTINS.iter().find(|builtin| builtin.name == name).map(Variable::Builtin),
    }
}

fn known_names(arg_names: &[&str]) -> Vec<String> {
    let builtins = BUILTINS.iter().map(|builtin| builtin.name.to_owned());
    builtins.chain(arg_names.iter().map(|arg| format!("args.{arg}"))).collect()
}

fn closest<S: AsRef<str>>(name: &str, candidates: &[S]) -> Option<String> {
    candidates
        .iter()
        .map(|candidate| (edit_distance(name, candidate.as_ref()), candidate.as_ref()))
        .filter(|(distance, _)| *distance <= MAX_TYPO_DISTANCE)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.to_owned())
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &b_char) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(a_char != b_char));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn variable_hint(suggestion: Option<&str>) -> String {
    suggestion.map(|name| format!("; did you mean {{{{{name}}}}}?")).unwrap_or_default()
}

fn arg_hint(suggestion: Option<&str>) -> String {
    suggestion.map(|name| format!("; did you mean {name:?}?")).unwrap_or_default()
}

/// Makes a value safe for its place: one string literal's content, or one bare token.
fn escape(hole: &Hole<'_>, value: &str) -> Result<String, TemplateError> {
    let literal = |regex: bool| if regex { escape_regex(value) } else { value.to_owned() };
    match hole.place {
        Place::Bare if is_bare_token(value) => Ok(value.to_owned()),
        Place::Bare => Err(TemplateError::BareValue { name: hole.name.to_owned(), value: value.to_owned() }),
        Place::Quoted { quote, regex } => Ok(escape_string(&literal(regex), quote)),
        Place::Raw { .. } if value.contains('`') => {
            Err(TemplateError::BacktickInValue { name: hole.name.to_owned(), value: value.to_owned() })
        }
        Place::Raw { regex } => Ok(literal(regex)),
    }
}

fn escape_regex(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if REGEX_METACHARACTERS.contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Escapes a value for a PromQL string quoted with `quote`. Prometheus ends a quoted string at a raw
/// newline and rejects an escaped quote of the other kind, so only the enclosing quote is escaped.
fn escape_string(value: &str, quote: char) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str(r"\\"),
            '\n' => escaped.push_str(r"\n"),
            '\r' => escaped.push_str(r"\r"),
            '\t' => escaped.push_str(r"\t"),
            c if c == quote => {
                escaped.push('\\');
                escaped.push(c);
            }
            c if c.is_ascii_control() => {
                let _ = write!(escaped, r"\x{:02x}", u32::from(c));
            }
            c => escaped.push(c),
        }
    }
    escaped
}

/// A bare value must be a single PromQL token that can neither close a bracket nor join an operator.
fn is_bare_token(value: &str) -> bool {
    is_duration(value) || is_number(value) || is_identifier(value)
}

fn is_duration(value: &str) -> bool {
    const UNITS: [&str; 7] = ["ms", "s", "m", "h", "d", "w", "y"];
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let after = &rest[digits..];
        match UNITS.iter().find(|unit| after.starts_with(**unit)) {
            Some(unit) if digits > 0 => rest = &after[unit.len()..],
            _ => return false,
        }
    }
    !value.is_empty()
}

fn is_number(value: &str) -> bool {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, "0"));
    is_digits(whole) && is_digits(fraction)
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn is_identifier(value: &str) -> bool {
    let mut chars = value.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vars() -> Vars {
        Vars {
            args: BTreeMap::from([("service".to_owned(), "checkout".to_owned())]),
            rollout_name: "checkout".to_owned(),
            rollout_namespace: "shop".to_owned(),
            revision: "7c9f8d6b5".to_owned(),
            canary_revision: "7c9f8d6b5".to_owned(),
            stable_revision: "5d4c3b2a1".to_owned(),
            canary_service: "checkout-canary".to_owned(),
            stable_service: "checkout-stable".to_owned(),
            interval: "1m".to_owned(),
        }
    }

    fn with_arg(value: &str) -> Vars {
        Vars { args: BTreeMap::from([("v".to_owned(), value.to_owned())]), ..vars() }
    }

    fn render_arg(query: &str, value: &str) -> Result<String, TemplateError> {
        render(query, &with_arg(value))
    }

    fn declared(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn message(result: Result<impl std::fmt::Debug, TemplateError>) -> String {
        result.unwrap_err().to_string()
    }

    /// Reads the PromQL string literal that opens `text` the way Prometheus does, returning its value
    /// and whatever follows the closing quote; `None` if Prometheus would reject it.
    fn decode_literal(text: &str) -> Option<(String, &str)> {
        let mut chars = text.char_indices();
        let (_, quote) = chars.next().filter(|(_, c)| *c == '"' || *c == '\'')?;
        let mut value = String::new();
        while let Some((at, c)) = chars.next() {
            match c {
                '\n' => return None,
                '\\' => value.push(decode_escape(&mut chars, quote)?),
                c if c == quote => return Some((value, &text[at + 1..])),
                c => value.push(c),
            }
        }
        None
    }

    fn decode_escape(chars: &mut std::str::CharIndices<'_>, quote: char) -> Option<char> {
        match chars.next()?.1 {
            '\\' => Some('\\'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'x' => {
                let hex: String = chars.by_ref().take(2).map(|(_, c)| c).collect();
                u8::from_str_radix(&hex, 16).ok().map(char::from)
            }
            c if c == quote => Some(c),
            _ => None,
        }
    }

    /// Undoes regex escaping, refusing any metacharacter left unescaped.
    fn decode_regex(pattern: &str) -> Option<String> {
        let mut value = String::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.push(chars.next().filter(|c| REGEX_METACHARACTERS.contains(*c))?),
                c if REGEX_METACHARACTERS.contains(c) => return None,
                c => value.push(c),
            }
        }
        Some(value)
    }

    #[test]
    fn renders_every_variable() {
        let query = concat!(
            r#"{a="{{args.service}}",n="{{rollout.name}}",ns="{{rollout.namespace}}",r="{{revision}}","#,
            r#"cr="{{canary.revision}}",sr="{{stable.revision}}",cs="{{canary.service}}","#,
            r#"ss="{{stable.service}}",s="{{service}}"}[{{interval}}]"#
        );
        assert_eq!(
            render(query, &vars()).unwrap(),
            concat!(
                r#"{a="checkout",n="checkout",ns="shop",r="7c9f8d6b5",cr="7c9f8d6b5",sr="5d4c3b2a1","#,
                r#"cs="checkout-canary",ss="checkout-stable",s="checkout-canary"}[1m]"#
            )
        );
        assert_eq!(check(query, &declared(&["service"])), Ok(()));
    }

    #[test]
    fn revision_and_service_name_the_side_measured() {
        let query = r#"x{revision="{{revision}}",service="{{service}}",canary="{{canary.revision}}"}"#;
        assert_eq!(
            render(query, &vars().measuring(Side::Canary)).unwrap(),
            r#"x{revision="7c9f8d6b5",service="checkout-canary",canary="7c9f8d6b5"}"#
        );
        assert_eq!(
            render(query, &vars().measuring(Side::Stable)).unwrap(),
            r#"x{revision="5d4c3b2a1",service="checkout-stable",canary="7c9f8d6b5"}"#
        );
        let same = Vars { stable_revision: "7c9f8d6b5".to_owned(), ..vars() };
        assert_eq!(
            render(query, &same.measuring(Side::Stable)).unwrap(),
            r#"x{revision="7c9f8d6b5",service="checkout-canary",canary="7c9f8d6b5"}"#
        );
    }

    #[test]
    fn interval_in_a_range_selector() {
        let query = r#"sum(rate(http_requests_total{revision="{{ revision }}"}[{{interval}}]))"#;
        assert_eq!(
            render(query, &vars()).unwrap(),
            r#"sum(rate(http_requests_total{revision="7c9f8d6b5"}[1m]))"#
        );
    }

    #[test]
    fn whitespace_inside_braces_is_ignored() {
        assert_eq!(render("x{a=\"{{   args.service\t}}\"}", &vars()).unwrap(), r#"x{a="checkout"}"#);
    }

    #[test]
    fn text_without_placeholders_is_unchanged() {
        let query = r#"sum(rate(x{a="}}",b='#'}[5m])) # {not a placeholder}"#;
        assert_eq!(render(query, &vars()).unwrap(), query);
    }

    #[test]
    fn escapes_quotes_and_backslashes() {
        let query = r#"up{job="{{args.v}}"}"#;
        assert_eq!(render_arg(query, r#"a"b\c"#).unwrap(), r#"up{job="a\"b\\c"}"#);
        assert_eq!(render_arg(query, r"\").unwrap(), r#"up{job="\\"}"#);
    }

    #[test]
    fn a_value_cannot_close_its_matcher() {
        let query = r#"up{job="{{args.v}}"}"#;
        assert_eq!(render_arg(query, r#""}"#).unwrap(), r#"up{job="\"}"}"#);
        assert_eq!(render_arg(query, r#""} or vector(1) #"#).unwrap(), r#"up{job="\"} or vector(1) #"}"#);
        assert_eq!(render_arg(query, "or vector(1)").unwrap(), r#"up{job="or vector(1)"}"#);
        assert_eq!(
            render_arg(r#"up{job!="{{args.v}}"}"#, r#"x"} or vector(1)"#).unwrap(),
            r#"up{job!="x\"} or vector(1)"}"#
        );
    }

    #[test]
    fn escapes_newlines_and_control_characters() {
        let query = r#"up{job="{{args.v}}"}"#;
        assert_eq!(render_arg(query, "a\nb\r\tc\u{1}").unwrap(), r#"up{job="a\nb\r\tc\x01"}"#);
    }

    #[test]
    fn regex_matchers_match_the_value_literally() {
        assert_eq!(render_arg(r#"up{job=~"{{args.v}}"}"#, "a.b|c").unwrap(), r#"up{job=~"a\\.b\\|c"}"#);
        assert_eq!(
            render_arg(r#"up{job!~ "{{args.v}}"}"#, r".^$*+?()[]{}|\").unwrap(),
            r#"up{job!~ "\\.\\^\\$\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\\\"}"#
        );
        assert_eq!(render_arg(r#"up{job=~"{{args.v}}"}"#, r#"."}"#).unwrap(), r#"up{job=~"\\.\"\\}"}"#);
    }

    #[test]
    fn only_the_matched_value_is_regex_escaped() {
        let query = r#"up{job=~"api-.*",env="{{args.v}}"}"#;
        assert_eq!(render_arg(query, "a.b").unwrap(), r#"up{job=~"api-.*",env="a.b"}"#);
        let query = r#"up{job=~"{{args.v}}-.*"}"#;
        assert_eq!(render_arg(query, "a.b").unwrap(), r#"up{job=~"a\\.b-.*"}"#);
    }

    #[test]
    fn single_quoted_strings_escape_their_own_quote() {
        assert_eq!(render_arg("up{job='{{args.v}}'}", r#"it's "x""#).unwrap(), r#"up{job='it\'s "x"'}"#);
        assert_eq!(render_arg("up{job=~'{{args.v}}'}", "a.b'").unwrap(), r"up{job=~'a\\.b\''}");
    }

    #[test]
    fn backtick_strings_take_values_verbatim_but_refuse_a_backtick() {
        assert_eq!(render_arg("up{job=`{{args.v}}`}", r#"a"\b'"#).unwrap(), r#"up{job=`a"\b'`}"#);
        assert_eq!(render_arg("up{job=~`{{args.v}}`}", "a.b").unwrap(), r"up{job=~`a\.b`}");
        assert_eq!(
            message(render_arg("up{job=`{{args.v}}`}", "x`} or vector(1) #")),
            "{{args.v}} is inside a backtick string, so its value must not contain a backtick; \
             got \"x`} or vector(1) #\""
        );
    }

    #[test]
    fn strings_in_the_template_are_lexed_with_their_escapes() {
        let query = r#"up{a="x\"{{args.v}}",b='"',c="{{args.v}}"}"#;
        assert_eq!(render_arg(query, r#"""#).unwrap(), r#"up{a="x\"\"",b='"',c="\""}"#);
        assert_eq!(render_arg(r##"up{a="#{{args.v}}"}"##, r#"""#).unwrap(), r##"up{a="#\""}"##);
    }

    #[test]
    fn bare_values_must_be_durations_numbers_or_identifiers() {
        for value in ["5m", "1h30m", "30s", "500ms", "2d", "0.95", "42", "http_requests_total", "job:rate5m"]
        {
            assert_eq!(render_arg("x > {{args.v}}", value).unwrap(), format!("x > {value}"));
        }
        assert_eq!(
            message(render_arg("rate(x[{{args.v}}])", "5m] or vector(1)")),
            "{{args.v}} is used outside a string, so its value must be a duration, number or identifier; \
             got \"5m] or vector(1)\""
        );
        for value in ["", "5m ", "-1", "1e3", "1.", "a-b", "a b", "x}", "5x", "m5m\"", "1h30"] {
            assert!(
                matches!(render_arg("x > {{args.v}}", value), Err(TemplateError::BareValue { .. })),
                "{value:?} was accepted bare"
            );
        }
    }

    #[test]
    fn names_and_revisions_must_be_quoted() {
        let error = TemplateError::BareBuiltin { name: "canary.service".to_owned() };
        assert_eq!(check("up{service={{canary.service}}}", &declared(&[])), Err(error.clone()));
        assert_eq!(render("up{service={{canary.service}}}", &vars()), Err(error));
        assert_eq!(
            check("up{service={{ service }}}", &declared(&[])),
            Err(TemplateError::BareBuiltin { name: "service".to_owned() })
        );
        assert!(check("x[{{interval}}]", &declared(&[])).is_ok());
    }

    #[test]
    fn unknown_variables_are_named_with_a_hint() {
        assert_eq!(
            message(check(r#"up{r="{{canary.revison}}"}"#, &declared(&[]))),
            "unknown variable {{canary.revison}}; did you mean {{canary.revision}}?"
        );
        assert_eq!(
            message(check(r#"up{r="{{arg.service}}"}"#, &declared(&["service"]))),
            "unknown variable {{arg.service}}; did you mean {{args.service}}?"
        );
        assert_eq!(
            message(check(r#"up{s="{{servce}}"}"#, &declared(&[]))),
            "unknown variable {{servce}}; did you mean {{service}}?"
        );
        assert_eq!(
            message(check(r#"up{s="{{stable.servic}}"}"#, &declared(&[]))),
            "unknown variable {{stable.servic}}; did you mean {{stable.service}}?"
        );
        assert_eq!(message(check(r#"up{r="{{ nope }}"}"#, &declared(&[]))), "unknown variable {{nope}}");
        assert_eq!(message(render(r#"up{r="{{args.}}"}"#, &vars())), "unknown variable {{args.}}");
    }

    #[test]
    fn undeclared_args_are_named() {
        assert_eq!(
            message(check(r#"up{s="{{args.service}}"}"#, &declared(&[]))),
            r#"arg "service" is not declared by the template"#
        );
        assert_eq!(
            message(check(r#"up{s="{{args.sevice}}"}"#, &declared(&["service"]))),
            r#"arg "sevice" is not declared by the template; did you mean "service"?"#
        );
    }

    #[test]
    fn an_arg_without_a_value_is_named() {
        assert_eq!(
            render(r#"up{s="{{args.region}}"}"#, &vars()),
            Err(TemplateError::MissingArg { name: "region".to_owned() })
        );
    }

    #[test]
    fn malformed_templates_are_located() {
        let none = declared(&[]);
        assert_eq!(
            check(r#"up{a="x"} {{interval"#, &none),
            Err(TemplateError::UnterminatedPlaceholder { offset: 10 })
        );
        assert_eq!(check(r#"up{a="x}"#, &none), Err(TemplateError::UnterminatedString { offset: 5 }));
        assert_eq!(check("up{a=`x}", &none), Err(TemplateError::UnterminatedString { offset: 5 }));
        assert_eq!(check("up{a=\"x\n\"}", &none), Err(TemplateError::UnterminatedString { offset: 5 }));
        assert_eq!(
            message(check("up # by {{args.v}}\n", &declared(&["v"]))),
            "{{args.v}} at byte 8 is inside a # comment, where a newline in its value would end the comment"
        );
        assert_eq!(
            message(check(r#"up{a="\{{args.v}}"}"#, &declared(&["v"]))),
            "{{args.v}} at byte 7 follows a backslash, which would escape the first character of its value"
        );
        assert_eq!(check(r#"up{a="\\{{args.v}}"}"#, &declared(&["v"])), Ok(()));
    }

    proptest! {
        #[test]
        fn equality_matcher_values_stay_one_literal(value in any::<String>()) {
            let rendered = render_arg(r#"up{job="{{args.v}}"}"#, &value).unwrap();
            let literal = rendered.strip_prefix("up{job=").unwrap();
            prop_assert_eq!(decode_literal(literal), Some((value, "}")));
        }

        #[test]
        fn single_quoted_values_stay_one_literal(value in any::<String>()) {
            let rendered = render_arg("up{job!='{{args.v}}'}", &value).unwrap();
            let literal = rendered.strip_prefix("up{job!=").unwrap();
            prop_assert_eq!(decode_literal(literal), Some((value, "}")));
        }

        #[test]
        fn regex_matcher_values_match_only_themselves(value in any::<String>()) {
            let rendered = render_arg(r#"up{job=~"{{args.v}}"}"#, &value).unwrap();
            let (pattern, rest) = decode_literal(rendered.strip_prefix("up{job=~").unwrap()).unwrap();
            prop_assert_eq!(rest, "}");
            prop_assert_eq!(decode_regex(&pattern), Some(value.clone()));
            let regex = regex::Regex::new(&format!("^(?:{pattern})$")).unwrap();
            prop_assert!(regex.is_match(&value));
        }

        #[test]
        fn bare_values_are_single_tokens(value in any::<String>()) {
            if let Ok(rendered) = render_arg("x[{{args.v}}]", &value) {
                prop_assert!(value.chars().all(|c| c.is_ascii_alphanumeric() || "_:.".contains(c)));
                prop_assert_eq!(rendered, format!("x[{value}]"));
            }
        }
    }
}
