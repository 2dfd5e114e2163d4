//! Query templating: substitutes variables into PromQL so that no value can change what a query measures.
//!
//! A template is PromQL with `{{ NAME }}` placeholders. Args come from rollout authors, who must not be
//! able to end a string literal, add a selector, widen a matcher to everything or name another metric.
//! Two independent walls see to it; a query passes only if both agree.
//!
//! **The lexer** reads the template as Prometheus's lexer does (quoted and backtick strings with their
//! escapes, `# comments`, brackets, the last operator and the function call a string is an argument of)
//! and escapes each value for where it lands:
//! - in a string literal, as that literal's content: its quote, backslashes and control characters;
//! - in a regex, also as a regex that matches only the value: after `=~` or `!~` (whitespace and comments
//!   between the operator and the literal included) and in `label_replace`'s fifth argument;
//! - in `label_replace`'s replacement (its third argument), with `$` doubled so that it names no group;
//! - outside a string, as a *bare* value, which must be exactly one number (`42`, `0.95`) or one
//!   duration (`5m`, `1h30m`), at most [`MAX_BARE_VALUE`] seconds. Nothing else is allowed bare: an
//!   identifier would read as a metric name, such as a recording rule that always says zero. Of the
//!   built-in variables only `{{interval}}` may be bare; the others are names and hashes.
//!
//! A backtick string is sent as the double-quoted string with the same value: Prometheus reads a
//! backslash in it as itself, the parser below as an escape, and both walls must read the same query.
//!
//! **The parser** ([`promql_parser`]) then reads the query. The template is rendered with two different
//! inert sentinel values for each placeholder and both renderings are parsed: apart from the literals
//! that hold sentinels they must be the same expression (node kinds, functions, operators, metric and
//! label names, matcher operators, grouping, modifiers), and each sentinel must lie inside exactly one
//! string literal (a string argument or a label matcher's value) or be the whole of one number or one
//! duration. What the parser makes of each string (an equality matcher's value, a regex, a
//! `label_replace` replacement, a plain string) must be what the lexer escaped for, and the template's
//! text must not end in an unpaired `\` (regex) or `$` (replacement) right before it, which would take
//! the value's first character. When the two
//! disagree the query is refused rather than one of them believed: a disagreement means one wall misread
//! the query, and a query either wall misreads is not safe to run in the other's reading. Last, the
//! query rendered with the real values is parsed and must be the sentinel query with each placeholder's
//! literal holding exactly its value (regex- or replacement-escaped where it is one).
//!
//! [`check`] runs both walls with sentinels when a template is validated, so a misplaced placeholder or
//! a query that does not parse is refused when the template is applied, not midway through a rollout
//! (with the parser's message and the byte near which PromQL stops reading). A verdict is remembered
//! for each query text, since the engine checks templates at every decision.
//! A rendered query may be at most [`MAX_QUERY_BYTES`] long; the Prometheus provider sends long ones by
//! POST, since a GET carries the query in its URL.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Write};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

mod datadog;
mod influxql;
mod parsed;
mod text;
mod web;

pub use datadog::{check_datadog, render_datadog};
pub use influxql::{check_influxql, render_influxql};
pub use text::{StringError, check_strings, check_text, render_strings, render_text};
pub use web::{check_json_body, check_url, encode_query_component, render_json_body, render_url};

/// The longest query [`render`] produces. Far above any real query (the ready-made ones are under 1 KiB),
/// and small enough that a value cannot make a query Prometheus spends its time parsing.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;

/// The largest bare value, in seconds or as a number. The parser reads a number where a duration belongs
/// as seconds and panics on one that is no duration, so a bare value must be one wherever it lands.
pub const MAX_BARE_VALUE: f64 = 1e15;

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

/// What PromQL makes of a string literal, which decides how a value inside it is escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringRole {
    /// A label matcher's value for `=` or `!=`, or a string argument such as a label name.
    Plain,
    /// A regex: a `=~` or `!~` matcher's value, or `label_replace`'s fifth argument.
    Regex,
    /// `label_replace`'s third argument, where `$1` or `$name` stands for a capture group.
    Replacement,
}

impl fmt::Display for StringRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StringRole::Plain => "a plain string",
            StringRole::Regex => "a regex",
            StringRole::Replacement => "a label_replace replacement",
        })
    }
}

impl StringRole {
    /// The literal's content that stands for `value` itself.
    fn escape(self, value: &str) -> String {
        match self {
            StringRole::Plain => value.to_owned(),
            StringRole::Regex => escape_regex(value),
            StringRole::Replacement => value.replace('$', "$$"),
        }
    }
}

/// Why a query template cannot be checked or rendered. Each message names the variable and the byte of
/// the template at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unterminated {{{{ at byte {offset}; close the placeholder with }}}}")]
    UnterminatedPlaceholder { offset: usize },
    #[error("unterminated string literal starting at byte {offset}")]
    UnterminatedString { offset: usize },
    #[error("unclosed '{open}' at byte {offset}")]
    UnclosedBracket { open: char, offset: usize },
    #[error("'{close}' at byte {offset} {}", match .open {
        Some((open, at)) => format!("does not close the '{open}' at byte {at}"),
        None => "closes nothing".to_owned(),
    })]
    StrayBracket { close: char, offset: usize, open: Option<(char, usize)> },
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
        "{{{{{name}}}}} at byte {offset} must be inside a string literal, as in label=\"{{{{{name}}}}}\": \
         its values can hold '-' or start with a digit, which PromQL cannot take outside a string"
    )]
    BareBuiltin { name: String, offset: usize },
    #[error(
        "{{{{{name}}}}} at byte {offset} is outside a string, so its value must be one number (such as 42 or \
         0.95, no leading zero) or one duration (such as 5m or 1h30m), at most {MAX_BARE_VALUE} seconds; \
         got {value:?}"
    )]
    BareValue { name: String, offset: usize, value: String },
    #[error("the rendered query is {length} bytes long, over the limit of {limit} bytes")]
    TooLong { length: usize, limit: usize },
    #[error("the query does not parse (PromQL stops reading near byte {offset}): {message}")]
    Unparsable { offset: usize, message: String },
    #[error(
        "{{{{{name}}}}} at byte {offset} follows an unpaired '{escape}' in {role}, which would change what \
         the first character of its value means"
    )]
    AfterEscape { name: String, offset: usize, escape: char, role: StringRole },
    #[error(
        "{{{{{name}}}}} at byte {offset} is not inside one string literal, nor the whole of one number or \
         duration, of the parsed query, so its value could change what the query measures"
    )]
    Misplaced { name: String, offset: usize },
    #[error(
        "{{{{{name}}}}} at byte {offset} is escaped as {lexer}, but PromQL reads it as {parser}; \
         the query is refused rather than guessed at"
    )]
    RoleMismatch { name: String, offset: usize, lexer: StringRole, parser: StringRole },
    #[error("with the value of {{{{{name}}}}} at byte {offset}, the query does not parse: {message}")]
    ValueUnparsable { name: String, offset: usize, message: String },
    #[error("the value of {{{{{name}}}}} at byte {offset} changes the parsed query beyond its own literal")]
    ValueChangesQuery { name: String, offset: usize },
    #[error(
        "{{{{{name}}}}} at byte {offset} is not in the URL's query string: a value may only fill a query \
         parameter (after '?', before '#'), never the scheme, host or path"
    )]
    OutsideUrlQuery { name: String, offset: usize },
    #[error("the URL must start with http:// or https:// and name a host")]
    NotHttpUrl,
    #[error(
        "{{{{{name}}}}} at byte {offset} is outside a JSON string: put it between quotes, as in \"{{{{{name}}}}}\""
    )]
    OutsideJsonString { name: String, offset: usize },
    #[error(
        "{{{{{name}}}}} at byte {offset} is in a JSON object key: a value may fill a string value only, \
         since a key it chose could repeat another and override it"
    )]
    InJsonKey { name: String, offset: usize },
    #[error("the body is not JSON: {message}")]
    NotJson { message: String },
    #[error("the query must be one InfluxQL SELECT statement")]
    NotSelect,
    #[error("';' at byte {offset} ends the statement: the query must be one InfluxQL SELECT statement")]
    Statements { offset: usize },
    #[error("INTO at byte {offset} writes the result into a measurement: a metric's query only reads")]
    Into { offset: usize },
    #[error(
        "a comment at byte {offset}: InfluxQL comments (`--`, `/* */`) are not allowed in a query template"
    )]
    Comment { offset: usize },
    #[error("unterminated regex starting at byte {offset}")]
    UnterminatedRegex { offset: usize },

    #[error("byte {offset} is a NUL character, where InfluxDB stops reading the query")]
    Nul { offset: usize },
    #[error(
        "the value of {{{{{name}}}}} at byte {offset} holds a carriage return or a NUL character, which an \
         InfluxQL string or identifier cannot hold"
    )]
    Unrepresentable { name: String, offset: usize },
    #[error(
        "{{{{{name}}}}} at byte {offset} is not where a Datadog query takes a value: a placeholder may fill \
         a tag's value inside braces, after its key, as in {{version:{{{{{name}}}}}}}, or a number outside \
         them, as in .rollup(sum, {{{{interval}}}})"
    )]
    DatadogPlacement { name: String, offset: usize },
    #[error(
        "the value of {{{{{name}}}}} at byte {offset} is {value:?}, which is not a Datadog tag value: it may \
         hold only letters, digits and _ - . : /, so that it can neither add a filter or a wildcard nor \
         close the braces"
    )]
    DatadogTagValue { name: String, offset: usize, value: String },
    #[error(
        "{{{{{name}}}}} at byte {offset} is outside braces, so its value must be a number (such as 60 or \
         0.5); got {value:?}"
    )]
    DatadogNumber { name: String, offset: usize, value: String },
}

/// Checks a query when its template is validated, so that a typo, a misplaced placeholder or a query
/// that does not parse fails when the template is applied rather than midway through a rollout.
pub fn check(query: &str, declared_args: &BTreeSet<String>) -> Result<(), TemplateError> {
    let lexed = lex(query)?;
    let arg_names: Vec<&str> = declared_args.iter().map(String::as_str).collect();
    for hole in lexed.holes() {
        if let Variable::Arg(name) = resolve(hole, &arg_names)?
            && !declared_args.contains(name)
        {
            let suggestion = closest(name, &arg_names);
            return Err(TemplateError::UndeclaredArg { name: name.to_owned(), suggestion });
        }
    }
    parser_verdict(query, &lexed)
}

/// How many template queries [`parser_verdict`] remembers.
const MAX_REMEMBERED_VERDICTS: usize = 1024;

/// The parser wall's verdict on a template query, remembered: the engine checks a Rollout's templates
/// at every decision, parsing a query takes far longer than the rest of a decision, and the verdict
/// depends on the query's text alone.
fn parser_verdict(query: &str, lexed: &Lexed<'_>) -> Result<(), TemplateError> {
    static VERDICTS: LazyLock<Mutex<HashMap<String, Result<(), TemplateError>>>> =
        LazyLock::new(Mutex::default);
    let remembered = VERDICTS.lock().unwrap_or_else(PoisonError::into_inner).get(query).cloned();
    if let Some(verdict) = remembered {
        return verdict;
    }
    let verdict = parsed::Skeleton::new(query, lexed).map(drop);
    let mut verdicts = VERDICTS.lock().unwrap_or_else(PoisonError::into_inner);
    if verdicts.len() >= MAX_REMEMBERED_VERDICTS {
        verdicts.clear();
    }
    verdicts.insert(query.to_owned(), verdict.clone());
    verdict
}

/// Substitutes `vars` into `query`, each value escaped for where it lands, and checks the result with the
/// PromQL parser: no value can end its string literal, add to the expression or exceed the size limit.
pub fn render(query: &str, vars: &Vars) -> Result<String, TemplateError> {
    let lexed = lex(query)?;
    let arg_names: Vec<&str> = vars.args.keys().map(String::as_str).collect();
    let fills = lexed
        .holes()
        .map(|hole| fill(hole, vars.value(resolve(hole, &arg_names)?)?))
        .collect::<Result<Vec<_>, _>>()?;
    let rendered = lexed.assemble(|index| &fills[index].text);
    if rendered.len() > MAX_QUERY_BYTES {
        return Err(TemplateError::TooLong { length: rendered.len(), limit: MAX_QUERY_BYTES });
    }
    parsed::Skeleton::new(query, &lexed)?.verify(&fills)?;
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

/// What PromQL reads specially inside a regex, `-` included for inside a character class; escaped so
/// that a value matches only itself.
const REGEX_METACHARACTERS: &str = r".^$*+?()[]{}|\-";

/// The function whose string arguments are not all plain strings.
const LABEL_REPLACE: &str = "label_replace";

/// What `label_replace`'s argument at `index` is, counting from 0.
fn argument_role(function: &str, index: usize) -> StringRole {
    match (function, index) {
        (LABEL_REPLACE, 2) => StringRole::Replacement,
        (LABEL_REPLACE, 4) => StringRole::Regex,
        _ => StringRole::Plain,
    }
}

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
    Quoted { quote: char, role: StringRole },
}

impl Place {
    fn role(self) -> Option<StringRole> {
        match self {
            Place::Bare => None,
            Place::Quoted { role, .. } => Some(role),
        }
    }
}

struct Hole<'q> {
    name: &'q str,
    /// The byte of the template where the placeholder's `{{` is.
    offset: usize,
    place: Place,
}

enum Piece<'q> {
    Text(&'q str),
    /// Text inside a backtick string, which is sent double-quoted (see [`Lexer::raw_string`]).
    RawText(&'q str),
    Hole(Hole<'q>),
}

/// What a placeholder becomes: the text put into the query, and what the parser must read there.
struct Fill {
    text: String,
    content: Content,
}

/// What the parser must find where a placeholder was: a string literal's (decoded) content, or a
/// bare number or duration.
enum Content {
    Text(String),
    Bare(Bare),
}

/// A bare value as PromQL reads it. Either kind may stand where the other belongs: a duration where a
/// number belongs reads as its seconds, a number where a duration belongs as that many seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bare {
    Number(f64),
    Duration(Duration),
}

impl Bare {
    fn as_number(self) -> f64 {
        match self {
            Bare::Number(number) => number,
            Bare::Duration(duration) => duration.as_secs_f64(),
        }
    }

    fn as_duration(self) -> Duration {
        match self {
            // At most MAX_BARE_VALUE and never negative or NaN, so always a duration.
            Bare::Number(number) => Duration::from_secs_f64(number),
            Bare::Duration(duration) => duration,
        }
    }
}

/// A template split into text and placeholders.
struct Lexed<'q> {
    pieces: Vec<Piece<'q>>,
    /// Where each PromQL token outside strings and comments starts, to locate a syntax error.
    token_starts: Vec<usize>,
    /// The brackets still open at the end, innermost last: (bracket, byte).
    open: Vec<(u8, usize)>,
}

impl<'q> Lexed<'q> {
    fn holes(&self) -> impl Iterator<Item = &Hole<'q>> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Hole(hole) => Some(hole),
            Piece::Text(_) | Piece::RawText(_) => None,
        })
    }

    /// The template with the placeholder numbered `n` (counting from 0) replaced by `text(n)`.
    fn assemble<'t>(&self, text: impl Fn(usize) -> &'t str) -> String {
        let mut assembled = String::new();
        let mut holes = 0;
        for piece in &self.pieces {
            match piece {
                Piece::Text(piece) => assembled.push_str(piece),
                Piece::RawText(piece) => assembled.push_str(&escape_string(piece, '"')),
                Piece::Hole(_) => {
                    assembled.push_str(text(holes));
                    holes += 1;
                }
            }
        }
        assembled
    }

    /// What closes the brackets still open, innermost first.
    fn closers(&self) -> String {
        let closer = |open: u8| match open {
            b'(' => ')',
            b'[' => ']',
            _ => '}',
        };
        self.open.iter().rev().map(|&(open, _)| closer(open)).collect()
    }
}

#[derive(Clone, Copy)]
enum State {
    Code,
    Comment,
    InString {
        place: Place,
        start: usize,
    },
    /// In a backtick string, where a placeholder's place is the double-quoted string it is sent as.
    InRawString {
        role: StringRole,
        start: usize,
    },
}

/// The last token read outside strings and comments, as far as a string after it cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Token<'q> {
    RegexOperator,
    Name(&'q str),
    Other,
}

/// An open bracket: for `(`, the function it calls (if any) and which argument the lexer is in.
struct Frame<'q> {
    open: u8,
    offset: usize,
    function: Option<&'q str>,
    argument: usize,
}

/// Splits a query into text and placeholders, tracking PromQL strings, comments and brackets as
/// Prometheus's own lexer does so that each placeholder knows its place. Every bracket must be closed.
fn lex(query: &str) -> Result<Lexed<'_>, TemplateError> {
    let lexed = scan(query)?;
    match lexed.open.last() {
        Some(&(open, offset)) => Err(TemplateError::UnclosedBracket { open: char::from(open), offset }),
        None => Ok(lexed),
    }
}

/// Like [`lex`], but leaves brackets open at the end: for a prefix of a template.
fn scan(query: &str) -> Result<Lexed<'_>, TemplateError> {
    Lexer {
        query,
        pos: 0,
        text_start: 0,
        state: State::Code,
        last: Token::Other,
        frames: Vec::new(),
        pieces: Vec::new(),
        token_starts: Vec::new(),
    }
    .run()
}

struct Lexer<'q> {
    query: &'q str,
    pos: usize,
    text_start: usize,
    state: State,
    last: Token<'q>,
    frames: Vec<Frame<'q>>,
    pieces: Vec<Piece<'q>>,
    token_starts: Vec<usize>,
}

impl<'q> Lexer<'q> {
    fn run(mut self) -> Result<Lexed<'q>, TemplateError> {
        while self.pos < self.query.len() {
            if self.opens_placeholder(self.pos) {
                self.placeholder()?;
            } else {
                self.advance()?;
            }
        }
        if let State::InString { start, .. } | State::InRawString { start, .. } = self.state {
            return Err(TemplateError::UnterminatedString { offset: start });
        }
        self.pieces.push(Piece::Text(&self.query[self.text_start..]));
        let open = self.frames.iter().map(|frame| (frame.open, frame.offset)).collect();
        Ok(Lexed { pieces: self.pieces, token_starts: self.token_starts, open })
    }

    fn opens_placeholder(&self, at: usize) -> bool {
        self.query.as_bytes()[at..].starts_with(b"{{")
    }

    fn placeholder(&mut self) -> Result<(), TemplateError> {
        let offset = self.pos;
        let (name, end) = read_placeholder(self.query, offset)?;
        let place = match self.state {
            State::Code => {
                self.token_starts.push(offset);
                self.last = Token::Other;
                Place::Bare
            }
            State::Comment => return Err(TemplateError::InComment { name: name.to_owned(), offset }),
            State::InString { place, .. } => place,
            State::InRawString { role, .. } => Place::Quoted { quote: '"', role },
        };
        let text = &self.query[self.text_start..offset];
        self.pieces.push(match self.state {
            State::InRawString { .. } => Piece::RawText(text),
            _ => Piece::Text(text),
        });
        self.pieces.push(Piece::Hole(Hole { name, offset, place }));
        self.pos = end;
        self.text_start = end;
        Ok(())
    }

    fn advance(&mut self) -> Result<(), TemplateError> {
        let byte = self.query.as_bytes()[self.pos];
        match self.state {
            State::Code => return self.code(byte),
            State::Comment if byte == b'\n' => self.state = State::Code,
            State::Comment => {}
            State::InString { place: Place::Quoted { .. }, .. } if byte == b'\\' => {
                return self.skip_escape();
            }
            State::InString { place: Place::Quoted { .. }, start } if byte == b'\n' => {
                return Err(TemplateError::UnterminatedString { offset: start });
            }
            State::InString { place: Place::Quoted { quote, .. }, .. } if char::from(byte) == quote => {
                self.state = State::Code;
            }
            State::InString { .. } => {}
            State::InRawString { .. } if byte == b'`' => {
                self.pieces.push(Piece::RawText(&self.query[self.text_start..self.pos]));
                self.pieces.push(Piece::Text("\""));
                self.text_start = self.pos + 1;
                self.state = State::Code;
            }
            State::InRawString { .. } => {}
        }
        self.pos += 1;
        Ok(())
    }

    /// Reads one token outside strings and comments, remembering what a string after it needs to know.
    fn code(&mut self, byte: u8) -> Result<(), TemplateError> {
        let start = self.pos;
        let bytes = self.query.as_bytes();
        let run = |accept: fn(u8) -> bool| start + bytes[start..].iter().take_while(|b| accept(**b)).count();
        if byte.is_ascii_whitespace() {
            self.pos += 1;
            return Ok(());
        }
        if byte == b'#' {
            self.state = State::Comment;
            self.pos += 1;
            return Ok(());
        }
        self.token_starts.push(start);
        let mut end = start + 1;
        self.last = match byte {
            b'"' | b'\'' => {
                let place = Place::Quoted { quote: char::from(byte), role: self.string_role() };
                self.state = State::InString { place, start };
                Token::Other
            }
            b'`' => {
                self.raw_string(start);
                Token::Other
            }
            b'(' | b'[' | b'{' => {
                let function = match self.last {
                    Token::Name(name) if byte == b'(' => Some(name),
                    _ => None,
                };
                self.frames.push(Frame { open: byte, offset: start, function, argument: 0 });
                Token::Other
            }
            b')' | b']' | b'}' => {
                self.close(byte)?;
                Token::Other
            }
            b',' => {
                if let Some(frame) = self.frames.last_mut() {
                    frame.argument += 1;
                }
                Token::Other
            }
            b'=' | b'!' | b'<' | b'>' | b'~' => {
                end = run(|b| b"=!<>~".contains(&b));
                match &self.query[start..end] {
                    "=~" | "!~" => Token::RegexOperator,
                    _ => Token::Other,
                }
            }
            b if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {
                end = run(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
                Token::Name(&self.query[start..end])
            }
            b if b.is_ascii_digit() || b == b'.' => {
                end = run(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
                Token::Other
            }
            _ => {
                end = start + self.query[start..].chars().next().map_or(1, char::len_utf8);
                Token::Other
            }
        };
        self.pos = end;
        Ok(())
    }

    /// Opens a backtick string at `start`. It is sent as the double-quoted string with the same value:
    /// Prometheus reads a backslash in a backtick string as itself, but the parser of the second wall
    /// reads it as an escape, and the two walls must read one and the same query. Its values need then
    /// no rule of their own, and may hold a backtick.
    fn raw_string(&mut self, start: usize) {
        self.pieces.push(Piece::Text(&self.query[self.text_start..start]));
        self.pieces.push(Piece::Text("\""));
        self.text_start = start + 1;
        self.state = State::InRawString { role: self.string_role(), start };
    }

    /// What a string starting here is to PromQL: a regex right after `=~` or `!~`, else whatever the
    /// call it is an argument of makes of it. Parentheses around an argument do not change it.
    fn string_role(&self) -> StringRole {
        if self.last == Token::RegexOperator {
            return StringRole::Regex;
        }
        let enclosing = self.frames.iter().rev().find(|frame| frame.open != b'(' || frame.function.is_some());
        match enclosing {
            Some(Frame { function: Some(function), argument, .. }) => argument_role(function, *argument),
            _ => StringRole::Plain,
        }
    }

    fn close(&mut self, close: u8) -> Result<(), TemplateError> {
        let open = match close {
            b')' => b'(',
            b']' => b'[',
            _ => b'{',
        };
        match self.frames.pop() {
            Some(frame) if frame.open == open => Ok(()),
            frame => Err(TemplateError::StrayBracket {
                close: char::from(close),
                offset: self.pos,
                open: frame.map(|frame| (char::from(frame.open), frame.offset)),
            }),
        }
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
        return Err(TemplateError::BareBuiltin { name: hole.name.to_owned(), offset: hole.offset });
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
        .map(|candidate| (strsim::levenshtein(name, candidate.as_ref()), candidate.as_ref()))
        .filter(|(distance, _)| *distance <= MAX_TYPO_DISTANCE)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.to_owned())
}

fn variable_hint(suggestion: Option<&str>) -> String {
    suggestion.map(|name| format!("; did you mean {{{{{name}}}}}?")).unwrap_or_default()
}

fn arg_hint(suggestion: Option<&str>) -> String {
    suggestion.map(|name| format!("; did you mean {name:?}?")).unwrap_or_default()
}

/// Makes a value safe for its place (one string literal's content, or one bare number or duration) and
/// says what the parser must then read there.
fn fill(hole: &Hole<'_>, value: &str) -> Result<Fill, TemplateError> {
    match hole.place {
        Place::Bare => {
            let bare = read_bare(value).ok_or_else(|| TemplateError::BareValue {
                name: hole.name.to_owned(),
                offset: hole.offset,
                value: value.to_owned(),
            })?;
            Ok(Fill { text: value.to_owned(), content: Content::Bare(bare) })
        }
        Place::Quoted { quote, role } => {
            let literal = role.escape(value);
            Ok(Fill { text: escape_string(&literal, quote), content: Content::Text(literal) })
        }
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

/// Reads a bare value: one number or one duration, and no larger than [`MAX_BARE_VALUE`].
fn read_bare(value: &str) -> Option<Bare> {
    let bare = if is_number(value) {
        Bare::Number(value.parse().ok()?)
    } else {
        Bare::Duration(read_duration(value)?)
    };
    (bare.as_number() <= MAX_BARE_VALUE).then_some(bare)
}

/// Digits with an optional fraction. A leading zero is refused, since PromQL reads `010` as octal.
fn is_number(value: &str) -> bool {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, "0"));
    is_digits(whole) && is_digits(fraction) && (whole == "0" || !whole.starts_with('0'))
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// A PromQL duration such as `1h30m`: whole numbers of units from years down to milliseconds, each unit
/// at most once and in that order, as Prometheus requires; not zero, which no range may be.
fn read_duration(value: &str) -> Option<Duration> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = value;
    let mut millis: u64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let count: u32 = rest[..digits].parse().ok()?;
        let after = &rest[digits..];
        let (rank, &(unit, unit_millis)) = UNITS
            .iter()
            .enumerate()
            .filter(|(_, (unit, _))| after.starts_with(unit))
            .max_by_key(|(_, (unit, _))| unit.len())?;
        if rank < next_unit {
            return None;
        }
        next_unit = rank + 1;
        millis = millis.checked_add(u64::from(count).checked_mul(unit_millis)?)?;
        rest = &after[unit.len()..];
    }
    (millis > 0).then(|| Duration::from_millis(millis))
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
    fn backtick_strings_are_sent_double_quoted() {
        assert_eq!(render_arg("up{job=`{{args.v}}`}", r#"a"\b'"#).unwrap(), r#"up{job="a\"\\b'"}"#);
        assert_eq!(render_arg("up{job=~`{{args.v}}`}", "a.b").unwrap(), r#"up{job=~"a\\.b"}"#);
        assert_eq!(
            render_arg("up{job=`{{args.v}}`}", "x`} or vector(1) #").unwrap(),
            r#"up{job="x`} or vector(1) #"}"#
        );
        // The template's own backslashes are literal, as Prometheus reads them; a placeholder may follow one.
        let query = "up{job=`\\d+-\\{{args.v}}`, env=`a\nb`}";
        assert_eq!(render_arg(query, "x").unwrap(), r#"up{job="\\d+-\\x", env="a\nb"}"#);
        assert_eq!(render("sum(up{job=~`\\d`})", &vars()).unwrap(), r#"sum(up{job=~"\\d"})"#);
        assert_eq!(check("up{job=`a\n{{args.v}}`}", &declared(&["v"])), Ok(()));
    }

    #[test]
    fn strings_in_the_template_are_lexed_with_their_escapes() {
        let query = r#"up{a="x\"{{args.v}}",b='"',c="{{args.v}}"}"#;
        assert_eq!(render_arg(query, r#"""#).unwrap(), r#"up{a="x\"\"",b='"',c="\""}"#);
        assert_eq!(render_arg(r##"up{a="#{{args.v}}"}"##, r#"""#).unwrap(), r##"up{a="#\""}"##);
    }

    #[test]
    fn bare_values_must_be_one_number_or_one_duration() {
        for value in ["5m", "1h30m", "30s", "500ms", "2d", "1y2w", "0.95", "42", "0", "0.5"] {
            assert_eq!(render_arg("x > {{args.v}}", value).unwrap(), format!("x > {value}"));
        }
        assert_eq!(
            message(render_arg("rate(x[{{args.v}}])", "5m] or vector(1)")),
            "{{args.v}} at byte 7 is outside a string, so its value must be one number (such as 42 or 0.95, \
             no leading zero) or one duration (such as 5m or 1h30m), at most 1000000000000000 seconds; \
             got \"5m] or vector(1)\""
        );
        let refused = [
            "",
            "5m ",
            "-1",
            "1e3",
            "1.",
            ".5",
            "a-b",
            "a b",
            "x}",
            "5x",
            "m5m\"",
            "1h30",
            "Inf",
            "NaN",
            // Names read as metrics, such as a recording rule that always says zero.
            "http_requests_total",
            "job:rate5m",
            "zero_rule",
            // PromQL reads a leading zero as octal, and a duration's units only in order.
            "010",
            "30m1h",
            "1m1m",
            // Durations must be more than nothing; numbers and units must stay representable.
            "0s",
            "0m0s",
            "100000000000000000000",
            "5000000000s",
            "99999999y",
        ];
        for value in refused {
            assert!(
                matches!(render_arg("x > {{args.v}}", value), Err(TemplateError::BareValue { .. })),
                "{value:?} was accepted bare"
            );
        }
    }

    #[test]
    fn names_and_revisions_must_be_quoted() {
        let error = TemplateError::BareBuiltin { name: "canary.service".to_owned(), offset: 11 };
        assert_eq!(check("up{service={{canary.service}}}", &declared(&[])), Err(error.clone()));
        assert_eq!(render("up{service={{canary.service}}}", &vars()), Err(error));
        assert_eq!(
            check("up{service={{ service }}}", &declared(&[])),
            Err(TemplateError::BareBuiltin { name: "service".to_owned(), offset: 11 })
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

    #[test]
    fn a_comment_before_a_regex_literal_does_not_hide_the_regex() {
        let query = "up{job=~ # pick\n \"{{args.service}}\"}";
        let everything = Vars { args: BTreeMap::from([("service".to_owned(), ".*".to_owned())]), ..vars() };
        assert_eq!(render(query, &everything).unwrap(), "up{job=~ # pick\n \"\\\\.\\\\*\"}");
        let query = "up{job!~ # one\n # two\n '{{args.service}}'}";
        assert_eq!(render(query, &everything).unwrap(), "up{job!~ # one\n # two\n '\\\\.\\\\*'}");
    }

    #[test]
    fn whitespace_and_newlines_before_a_regex_literal_keep_it_a_regex() {
        assert_eq!(render_arg("up{job=~\n\t \"{{args.v}}\"}", "a|b").unwrap(), "up{job=~\n\t \"a\\\\|b\"}");
        assert_eq!(render_arg("up{job=~\r\n`{{args.v}}`}", "a|b").unwrap(), "up{job=~\r\n\"a\\\\|b\"}");
    }

    #[test]
    fn a_bare_value_cannot_name_a_metric() {
        // With a recording rule that always says zero, this would turn a failing canary Successful.
        let query = "(sum(rate(errors[5m])) / sum(rate(requests[5m]))) * {{args.v}}";
        assert_eq!(
            render_arg(query, "zero_rule"),
            Err(TemplateError::BareValue {
                name: "args.v".to_owned(),
                offset: 52,
                value: "zero_rule".to_owned()
            })
        );
        assert!(render_arg(query, "100").is_ok());
        assert_eq!(check(query, &declared(&["v"])), Ok(()));
    }

    #[test]
    fn label_replace_takes_its_regex_argument_as_a_regex() {
        let query = r#"label_replace(up, "dst", "$1", "src", "{{args.v}}")"#;
        assert_eq!(render_arg(query, ".*").unwrap(), r#"label_replace(up, "dst", "$1", "src", "\\.\\*")"#);
        let spaced = "label_replace ( up , # the source\n \"dst\", \"$1\", \"src\", ('{{args.v}}'))";
        assert_eq!(
            render_arg(spaced, "(a)").unwrap(),
            "label_replace ( up , # the source\n \"dst\", \"$1\", \"src\", ('\\\\(a\\\\)'))"
        );
    }

    #[test]
    fn label_replace_replacement_doubles_dollars() {
        let query = r#"label_replace(up, "dst", "v-{{args.v}}", "src", "(.*)")"#;
        assert_eq!(render_arg(query, "$1").unwrap(), r#"label_replace(up, "dst", "v-$$1", "src", "(.*)")"#);
        assert_eq!(
            render_arg(query, "${name}.*").unwrap(),
            r#"label_replace(up, "dst", "v-$${name}.*", "src", "(.*)")"#
        );
    }

    #[test]
    fn label_join_and_label_name_arguments_are_plain_strings() {
        let query = r#"label_join(up, "{{args.v}}", "{{args.v}}", "a", "{{args.v}}")"#;
        assert_eq!(render_arg(query, "$1.*").unwrap(), r#"label_join(up, "$1.*", "$1.*", "a", "$1.*")"#);
        let query = r#"label_replace(up, "{{args.v}}", "$1", "{{args.v}}", "(.*)")"#;
        assert_eq!(render_arg(query, "a.b").unwrap(), r#"label_replace(up, "a.b", "$1", "a.b", "(.*)")"#);
        let query = r#"count_values("{{args.v}}", up)"#;
        assert_eq!(render_arg(query, "$1").unwrap(), r#"count_values("$1", up)"#);
    }

    #[test]
    fn comments_in_templates_keep_working() {
        let query =
            "# errors over all requests\nsum(rate(x{r=\"{{revision}}\"}[{{interval}}])) # by revision\n";
        assert_eq!(
            render(query, &vars()).unwrap(),
            "# errors over all requests\nsum(rate(x{r=\"7c9f8d6b5\"}[1m])) # by revision\n"
        );
        assert_eq!(check(query, &declared(&[])), Ok(()));
    }

    #[test]
    fn the_parser_refuses_placeholders_outside_one_literal() {
        let misplaced = |offset| TemplateError::Misplaced { name: "args.v".to_owned(), offset };
        let v = declared(&["v"]);
        // A quoted label name is a string to the lexer but a name to PromQL.
        assert_eq!(check(r#"up{"{{args.v}}"="x"}"#, &v), Err(misplaced(4)));
        assert_eq!(render_arg(r#"up{"{{args.v}}"="x"}"#, "job"), Err(misplaced(4)));
        // So is a quoted name in a grouping.
        assert_eq!(check(r#"sum by ("{{args.v}}") (up)"#, &v), Err(misplaced(9)));
        // A bare value glued to digits is part of another number, and an @ time is no number literal.
        assert_eq!(check("up > 1{{args.v}}", &v), Err(misplaced(6)));
        assert_eq!(check("up @ {{args.v}}", &v), Err(misplaced(5)));
        // A number, or a duration wherever it lands, is fine, negated or not.
        assert_eq!(check("up > -{{args.v}}", &v), Ok(()));
        assert_eq!(render_arg("up > -{{args.v}}", "5").unwrap(), "up > -5");
        assert_eq!(check("up offset -{{args.v}}", &v), Ok(()));
        assert_eq!(check("max_over_time(up[{{args.v}}:{{interval}}])", &v), Ok(()));
        assert_eq!(render_arg("up > {{args.v}}", "5m").unwrap(), "up > 5m");
    }

    /// A template lexed as a lexer with the comment bug would: the string after `=~` taken for a plain
    /// string, so that the value goes unescaped.
    fn misread_regex(query: &str) -> Lexed<'_> {
        let open = query.find("{{").unwrap();
        let close = query.find("}}").unwrap() + 2;
        let place = Place::Quoted { quote: '"', role: StringRole::Plain };
        Lexed {
            pieces: vec![
                Piece::Text(&query[..open]),
                Piece::Hole(Hole { name: "args.v", offset: open, place }),
                Piece::Text(&query[close..]),
            ],
            token_starts: vec![0],
            open: vec![],
        }
    }

    #[test]
    fn the_parser_catches_a_regex_the_lexer_missed() {
        let query = "up{job=~ # pick\n \"{{args.v}}\"}";
        assert_eq!(
            parsed::Skeleton::new(query, &misread_regex(query)).err(),
            Some(TemplateError::RoleMismatch {
                name: "args.v".to_owned(),
                offset: 18,
                lexer: StringRole::Plain,
                parser: StringRole::Regex,
            })
        );
        assert_eq!(
            message(parsed::Skeleton::new(query, &misread_regex(query)).map(drop)),
            "{{args.v}} at byte 18 is escaped as a plain string, but PromQL reads it as a regex; \
             the query is refused rather than guessed at"
        );
    }

    #[test]
    fn the_parser_catches_a_value_that_breaks_out_of_its_literal() {
        // A template lexed as if its string were single-quoted: a double quote in the value goes
        // unescaped and ends the literal.
        let query = r#"up{job="{{args.v}}"}"#;
        let hole =
            Hole { name: "args.v", offset: 8, place: Place::Quoted { quote: '\'', role: StringRole::Plain } };
        let lexed = Lexed {
            pieces: vec![Piece::Text("up{job=\""), Piece::Hole(hole), Piece::Text("\"}")],
            token_starts: vec![0],
            open: vec![],
        };
        let skeleton = parsed::Skeleton::new(query, &lexed).unwrap();
        let hole = lexed.holes().next().unwrap();
        let injected = fill(hole, r#"x"} or vector(1) or up{job=""#).unwrap();
        assert_eq!(
            skeleton.verify(&[injected]),
            Err(TemplateError::ValueChangesQuery { name: "args.v".to_owned(), offset: 8 })
        );
        let unbalanced = fill(hole, r#"x"}"#).unwrap();
        assert!(matches!(
            skeleton.verify(&[unbalanced]),
            Err(TemplateError::ValueUnparsable { offset: 8, .. })
        ));
        assert_eq!(skeleton.verify(&[fill(hole, "checkout").unwrap()]), Ok(()));
    }

    #[test]
    fn a_placeholder_cannot_follow_an_unpaired_regex_or_replacement_escape() {
        let v = declared(&["v"]);
        assert_eq!(
            message(check("up{job=~`a\\{{args.v}}`}", &v)),
            "{{args.v}} at byte 11 follows an unpaired '\\' in a regex, which would change what the first \
             character of its value means"
        );
        assert_eq!(
            check(r#"up{job=~"a\\{{args.v}}"}"#, &v),
            Err(TemplateError::AfterEscape {
                name: "args.v".to_owned(),
                offset: 12,
                escape: '\\',
                role: StringRole::Regex
            })
        );
        assert!(matches!(
            check(r#"label_replace(up, "d", "${{args.v}}", "s", "(.*)")"#, &v),
            Err(TemplateError::AfterEscape { escape: '$', role: StringRole::Replacement, .. })
        ));
        // Paired, they stand for themselves; in a plain string a backslash before a value is its own.
        assert_eq!(render_arg("up{job=~`a\\\\{{args.v}}`}", ".").unwrap(), r#"up{job=~"a\\\\\\."}"#);
        assert_eq!(check(r#"label_replace(up, "d", "$${{args.v}}", "s", "(.*)")"#, &v), Ok(()));
        assert_eq!(render_arg("up{job=`a\\{{args.v}}`}", "x").unwrap(), r#"up{job="a\\x"}"#);
    }

    #[test]
    fn a_value_cannot_make_a_range_in_a_character_class() {
        assert_eq!(render_arg(r#"up{job=~"[a{{args.v}}z]"}"#, "-").unwrap(), r#"up{job=~"[a\\-z]"}"#);
    }

    #[test]
    fn a_value_can_look_like_a_sentinel() {
        for value in ["\u{E000}0a\u{E000}", "\u{E000}0b\u{E000}", "\u{E000}1a\u{E000}\u{E000}0a\u{E000}"] {
            assert_eq!(
                render_arg(r#"up{job="{{args.v}}-{{args.v}}"}"#, value).unwrap(),
                format!("up{{job=\"{value}-{value}\"}}")
            );
        }
    }

    #[test]
    fn templates_that_do_not_parse_are_refused_with_where_they_stop() {
        let none = declared(&[]);
        let unparsable = |query: &str| match check(query, &none) {
            Err(TemplateError::Unparsable { offset, message }) => (offset, message),
            other => panic!("{query:?}: {other:?}"),
        };
        assert_eq!(unparsable(r#"up{job="a"} or"#), (12, "invalid promql query".to_owned()));
        assert_eq!(
            message(check(r#"up{job="a"} or"#, &none)),
            "the query does not parse (PromQL stops reading near byte 12): invalid promql query"
        );
        assert_eq!(unparsable("sum(rate(x[5m])) + * 2").0, 17);
        assert_eq!(unparsable("sum(rate(x[{{interval}}])) + * 2").0, 27);
        assert_eq!(unparsable(r#"up{job=~"(?=x)"}"#).1, "illegal regex for (?=x)");
        assert_eq!(unparsable("up[5m1h]").1, "not a valid duration string: 5m1h");
        // The parser panics on a range too large for a duration; that is refused like any error.
        assert!(unparsable("up[99999999999999999999999]").1.contains("failed on this query"));
        assert_eq!(
            check("sum(rate(x[5m])", &none),
            Err(TemplateError::UnclosedBracket { open: '(', offset: 3 })
        );
        assert_eq!(
            message(check("sum(rate(x[5m]}))", &none)),
            "'}' at byte 14 does not close the '(' at byte 8"
        );
        assert_eq!(message(check("up)", &none)), "')' at byte 2 closes nothing");
        assert!(matches!(
            render(r#"up{job="a"} or"#, &vars()),
            Err(TemplateError::Unparsable { offset: 12, .. })
        ));
    }

    #[test]
    fn rendered_queries_have_a_size_limit() {
        let query = r#"up{job="{{args.v}}"}"#;
        let at_limit = "a".repeat(MAX_QUERY_BYTES - query.len() + "{{args.v}}".len());
        assert_eq!(render_arg(query, &at_limit).unwrap().len(), MAX_QUERY_BYTES);
        let over = format!("{at_limit}a");
        assert_eq!(
            render_arg(query, &over),
            Err(TemplateError::TooLong { length: MAX_QUERY_BYTES + 1, limit: MAX_QUERY_BYTES })
        );
        // Escaping counts: 100 KB of quotes would be 200 KB in the query.
        assert!(matches!(render_arg(query, &"\"".repeat(100_000)), Err(TemplateError::TooLong { .. })));
        let template = format!(r#"up{{job="{}"}}"#, "a".repeat(MAX_QUERY_BYTES));
        assert!(matches!(check(&template, &declared(&[])), Err(TemplateError::TooLong { .. })));
    }

    /// A value a template may be given: anything, and things written to break PromQL.
    fn values() -> impl Strategy<Value = String> {
        const HOSTILE: &[&str] = &[
            "\"} or vector(1) #",
            "'} or vector(1) #",
            "`} or vector(1) #",
            ".*",
            "x) or up",
            "\n",
            "\r\n",
            "\\",
            "\\\\",
            "\"",
            "'",
            "`",
            "$1",
            "${1}",
            "$$",
            "$name",
            "}",
            "{",
            "{{args.v}}",
            "# c\n",
            "5m] or vector(1)",
            "zero_rule",
            "1e3",
            "010",
            "-1",
            "Inf",
            "NaN",
            "\u{0}\u{7f}\t",
            "é",
            "\\x41",
            "\u{E000}0a\u{E000}",
            "5m",
            "1h30m",
            "0.95",
            "42",
            "(",
            ")",
            "[",
            "]",
            "|",
            "^",
            "?",
        ];
        prop_oneof![
            any::<String>(),
            prop::sample::select(HOSTILE).prop_map(str::to_owned),
            prop::collection::vec(prop::sample::select(HOSTILE), 1..5).prop_map(|pieces| pieces.concat()),
            "[1-9][0-9]{0,5}(\\.[0-9]{1,3})?",
            "([1-9][0-9]{0,2}(y|w|d|h|m|s|ms)){1,2}",
        ]
    }

    /// Where a value can land, and the literal of the parsed query that must hold it.
    #[derive(Clone, Copy, Debug)]
    enum Slot {
        /// The value of the matcher on `job`.
        Matcher,
        RegexMatcher,
        /// The third argument of `label_replace`.
        Replacement,
        /// The fifth argument of `label_replace`.
        ReplaceRegex,
        /// The right-hand side of a binary operator.
        Number,
        /// The range of `rate`'s selector.
        Range,
    }

    const SLOTS: &[(&str, Slot)] = &[
        (r#"up{job="{{args.v}}"}"#, Slot::Matcher),
        ("up{env!='x', job='{{args.v}}'}", Slot::Matcher),
        ("up{job=`{{args.v}}`}", Slot::Matcher),
        ("up{job!=\"{{args.v}}-suffix\"}", Slot::Matcher),
        ("up{job=~ # pick one\n \"{{args.v}}\"}", Slot::RegexMatcher),
        ("up{job!~\n\t'{{args.v}}'}", Slot::RegexMatcher),
        ("up{job=~`{{args.v}}`}", Slot::RegexMatcher),
        (r#"label_replace(up, "dst", "{{args.v}}", "src", "(.*)")"#, Slot::Replacement),
        (r#"label_replace(up, "dst", "$1", "src", '{{args.v}}')"#, Slot::ReplaceRegex),
        ("sum(rate(x[5m])) * {{args.v}}", Slot::Number),
        ("rate(x[{{args.v}}])", Slot::Range),
    ];

    /// A literal found in a parsed query.
    enum Literal<'e> {
        Matcher(&'e mut promql_parser::label::Matcher),
        Text(&'e mut String),
        Number(&'e mut f64),
        Duration(&'e mut std::time::Duration),
    }

    fn argument(
        call: &mut promql_parser::parser::Call,
        index: usize,
    ) -> Option<&mut promql_parser::parser::Expr> {
        call.args.args.get_mut(index).map(|argument| &mut **argument)
    }

    fn literal(expr: &mut promql_parser::parser::Expr, slot: Slot) -> Option<Literal<'_>> {
        use promql_parser::parser::Expr;
        match (slot, expr) {
            (Slot::Matcher | Slot::RegexMatcher, Expr::VectorSelector(selector)) => {
                selector.matchers.matchers.iter_mut().find(|m| m.name == "job").map(Literal::Matcher)
            }
            (Slot::Replacement | Slot::ReplaceRegex, Expr::Call(call)) => {
                let index = if matches!(slot, Slot::Replacement) { 2 } else { 4 };
                match argument(call, index)? {
                    Expr::StringLiteral(string) => Some(Literal::Text(&mut string.val)),
                    _ => None,
                }
            }
            (Slot::Number, Expr::Binary(binary)) => match &mut *binary.rhs {
                Expr::NumberLiteral(number) => Some(Literal::Number(&mut number.val)),
                _ => None,
            },
            (Slot::Range, Expr::Call(call)) => match argument(call, 0)? {
                Expr::MatrixSelector(matrix) => Some(Literal::Duration(&mut matrix.range)),
                _ => None,
            },
            _ => None,
        }
    }

    /// A regex literal from a parsed query matches the value, and only because it spells it out.
    fn matches_literally(pattern: &str, value: &str) -> bool {
        let anchored = regex::Regex::new(&format!("^(?:{pattern})$")).unwrap();
        anchored.is_match(value) && decode_regex(pattern).as_deref() == Some(value)
    }

    /// The rest of a matcher's literal after its placeholder.
    fn text_after_placeholder(template: &str) -> &str {
        let (_, after) = template.split_once("}}").unwrap();
        after.trim_end_matches(['"', '\'', '`', '}'])
    }

    /// How Prometheus reads a bare value where a number belongs: a decimal number, or a duration's seconds.
    fn as_number(value: &str) -> f64 {
        value.parse().unwrap_or_else(|_| as_duration(value).as_secs_f64())
    }

    /// How Prometheus reads a bare value where a duration belongs: its own duration syntax, or seconds.
    fn as_duration(value: &str) -> std::time::Duration {
        match value.parse::<f64>() {
            Ok(seconds) => std::time::Duration::from_secs_f64(seconds),
            Err(_) => promql_parser::util::parse_duration(value).unwrap(),
        }
    }

    proptest! {
        #[test]
        fn a_value_only_ever_fills_its_literal(slot in 0..SLOTS.len(), value in values()) {
            let (template, slot) = SLOTS[slot];
            let rendered = render_arg(template, &value);
            if !matches!(slot, Slot::Number | Slot::Range) {
                prop_assert!(rendered.is_ok(), "{:?}", rendered);
            }
            let Ok(rendered) = rendered else { return Ok(()) };
            let benign = if matches!(slot, Slot::Number | Slot::Range) { "7" } else { "benign" };
            let mut found = promql_parser::parser::parse(&rendered).unwrap();
            let mut expected = promql_parser::parser::parse(&render_arg(template, benign).unwrap()).unwrap();
            let holds = match (literal(&mut found, slot).unwrap(), literal(&mut expected, slot).unwrap()) {
                (Literal::Matcher(found), Literal::Matcher(expected)) => {
                    let holds = match slot {
                        Slot::RegexMatcher => matches_literally(&found.value, &value),
                        _ => found.value == format!("{value}{}", text_after_placeholder(template)),
                    };
                    *found = expected.clone();
                    holds
                }
                (Literal::Text(found), Literal::Text(expected)) => {
                    let holds = match slot {
                        Slot::ReplaceRegex => matches_literally(found, &value),
                        _ => {
                            let mut expanded = String::new();
                            regex::Regex::new("(.*)").unwrap().captures("group").unwrap().expand(found, &mut expanded);
                            expanded == value
                        }
                    };
                    found.clone_from(expected);
                    holds
                }
                (Literal::Number(found), Literal::Number(expected)) => {
                    let holds = *found == as_number(&value);
                    *found = *expected;
                    holds
                }
                (Literal::Duration(found), Literal::Duration(expected)) => {
                    let holds = *found == as_duration(&value);
                    *found = *expected;
                    holds
                }
                _ => false,
            };
            prop_assert!(holds, "{rendered:?} does not hold {value:?} as written");
            prop_assert_eq!(found, expected, "{:?} changed more than its literal", rendered);
        }
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
                prop_assert!(value.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'));
                prop_assert_eq!(rendered, format!("x[{value}]"));
            }
        }
    }
}
