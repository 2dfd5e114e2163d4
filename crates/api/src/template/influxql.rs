//! Templates of the `influxdb` provider: one InfluxQL SELECT statement with the same `{{ NAME }}`
//! placeholders as a PromQL query, each value escaped for where it lands.
//!
//! The lexer reads the template as InfluxDB 1.x's scanner and parser do: single-quoted strings and
//! double-quoted identifiers with their escapes, and `/regex/` literals where InfluxQL reads one:
//! after `SELECT`, `FROM`, `BY` and every symbol but `)` (`=~`, `!~`, a comma, a dot, `(`). After a
//! name, a number, a literal or `)`, `/` divides; after any other keyword InfluxDB refuses a `/`
//! whichever it is read as. A value lands
//! - in a **string** (`'…'`) or a **quoted identifier** (`"…"`) as that literal's content: its
//!   quote, backslashes and newlines escaped. InfluxQL has no escape for a carriage return, and
//!   InfluxDB stops reading a query at a NUL, so a value holding either is refused;
//! - in a **regex** (`/…/`) as a regex that matches only the value: every ASCII character but
//!   letters, digits and `_` as `\xHH`, so that no value can end the regex or be read as regex syntax;
//! - outside any literal, **bare**, as exactly one number (`42`, `0.95`) or one duration (`5m`,
//!   `1h30m`) that neither text nor another placeholder touches. Of the built-in variables only
//!   `{{interval}}` may be bare; the others are names and hashes.
//!
//! The template must be one SELECT statement that only reads: no `;` (a second statement), no
//! `INTO` (which writes the result into a measurement, and which InfluxDB 1.x runs even for a GET),
//! and no comments, so that nothing can hide a literal's start from the lexer. Rendering then lexes
//! the query once with each value in turn and checks it reads as the same tokens as with an inert
//! value: a value that ended its literal would add tokens.

use super::{
    BARE_BUILTIN, MAX_QUERY_BYTES, TemplateError, Variable, Vars, closest, known_names, parse_variable,
    read_bare, read_placeholder,
};
use std::collections::BTreeSet;
use std::fmt::Write;

/// The value each placeholder takes when a template is checked or its tokens are compared: inert
/// in every place, a plain name inside a literal and a number outside.
const SENTINEL_TEXT: &str = "x";
const SENTINEL_BARE: &str = "1";

/// The keywords after which InfluxQL reads `/` as the start of a regex: a field, a source or a
/// dimension may be one. After any other keyword `/` divides, or InfluxDB refuses the query, so
/// that no other keyword needs knowing.
const BEFORE_REGEX: [&str; 3] = ["select", "from", "by"];

/// The keywords that start a clause of a SELECT statement, which say whether a `.` is in FROM.
const CLAUSES: [&str; 9] =
    ["select", "from", "where", "group", "order", "limit", "offset", "slimit", "soffset"];

/// Where a placeholder sits, which decides how its value is made safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Bare,
    /// In a string (`'`) or a quoted identifier (`"`).
    Quoted(char),
    Regex,
}

/// One `{{ NAME }}` of a template.
struct Hole<'t> {
    name: &'t str,
    offset: usize,
    end: usize,
    place: Place,
}

/// A token as far as comparing two renderings cares: its kind, and the text of those that are
/// not literals.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// A name or keyword, lower-cased.
    Word(String),
    /// A `$name` parameter.
    Parameter,
    Number,
    Literal(Place),
    Symbol(String),
}

impl Token {
    /// Whether `/` after this token divides rather than starts a regex.
    fn ends_operand(&self) -> bool {
        match self {
            Token::Word(word) => !BEFORE_REGEX.contains(&word.as_str()),
            Token::Parameter | Token::Number | Token::Literal(_) => true,
            Token::Symbol(symbol) => symbol == ")",
        }
    }
}

/// A template read as InfluxQL: its placeholders, and its tokens with each placeholder's literal
/// or bare value as one token.
struct Lexed<'t> {
    holes: Vec<Hole<'t>>,
    tokens: Vec<Token>,
}

struct Lexer<'t> {
    query: &'t str,
    /// Whether `{{` opens a placeholder: in a template, not in a rendered query.
    placeholders: bool,
    pos: usize,
    holes: Vec<Hole<'t>>,
    tokens: Vec<Token>,
}

/// Reads `query` as InfluxQL, checking that it is one SELECT statement that only reads; its
/// placeholders too, if it is a template.
fn lex(query: &str, placeholders: bool) -> Result<Lexed<'_>, TemplateError> {
    let mut lexer = Lexer { query, placeholders, pos: 0, holes: Vec::new(), tokens: Vec::new() };
    lexer.run()?;
    if lexer.tokens.first() != Some(&Token::Word("select".into())) {
        return Err(TemplateError::NotSelect);
    }
    Ok(Lexed { holes: lexer.holes, tokens: lexer.tokens })
}

impl<'t> Lexer<'t> {
    /// Whether a `/` here opens a regex, as InfluxDB reads it: where an operand starts, and after a
    /// `.` only in FROM (`db.rp./cpu.*/`), since elsewhere `name./2` divides a name.
    fn opens_regex(&self) -> bool {
        match self.tokens.last() {
            Some(Token::Symbol(dot)) if dot == "." => {
                let clause = self.tokens.iter().rev().find_map(|token| match token {
                    Token::Word(word) if CLAUSES.contains(&word.as_str()) => Some(word.as_str()),
                    _ => None,
                });
                clause == Some("from")
            }
            last => !last.is_some_and(Token::ends_operand),
        }
    }

    fn run(&mut self) -> Result<(), TemplateError> {
        while let Some(c) = self.peek() {
            let start = self.pos;
            match c {
                ' ' | '\t' | '\n' | '\r' => self.pos += 1,
                '\0' => return Err(TemplateError::Nul { offset: start }),
                '{' if self.opens_placeholder(start) => self.bare_placeholder()?,
                '\'' | '"' => {
                    self.quoted(c)?;
                    self.tokens.push(Token::Literal(Place::Quoted(c)));
                }
                '/' if self.opens_regex() => {
                    self.regex()?;
                    self.tokens.push(Token::Literal(Place::Regex));
                }
                '/' | '-' if self.query[start + 1..].starts_with(if c == '/' { '*' } else { '-' }) => {
                    return Err(TemplateError::Comment { offset: start });
                }
                ';' => return Err(TemplateError::Statements { offset: start }),
                c if c.is_ascii_alphabetic() || c == '_' => {
                    let word = self.take_while(is_word_char).to_ascii_lowercase();
                    if word == "into" {
                        return Err(TemplateError::Into { offset: start });
                    }
                    self.tokens.push(Token::Word(word));
                }
                '$' => {
                    self.pos += 1;
                    self.take_while(is_word_char);
                    self.tokens.push(Token::Parameter);
                }
                c if c.is_ascii_digit() || c == '.' && self.next_is_digit(start + 1) => {
                    self.number();
                    self.tokens.push(Token::Number);
                }
                _ => {
                    let two = self.query.get(start..start + 2).unwrap_or_default();
                    let symbol = if ["=~", "!~", "!=", "<=", ">=", "<>", "::"].contains(&two) {
                        two
                    } else {
                        &self.query[start..start + c.len_utf8()]
                    };
                    self.pos += symbol.len();
                    self.tokens.push(Token::Symbol(symbol.to_owned()));
                }
            }
        }
        Ok(())
    }

    fn opens_placeholder(&self, at: usize) -> bool {
        self.placeholders && self.query[at..].starts_with("{{")
    }

    fn peek(&self) -> Option<char> {
        self.query[self.pos..].chars().next()
    }

    fn next_is_digit(&self, at: usize) -> bool {
        self.query.as_bytes().get(at).is_some_and(u8::is_ascii_digit)
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'t str {
        let start = self.pos;
        let length = self.query[start..].find(|c: char| !keep(c)).unwrap_or(self.query.len() - start);
        self.pos += length;
        &self.query[start..self.pos]
    }

    /// A number (`42`, `0.95`, `.5`, and `1.`, whose dot InfluxDB takes as part of it) or a
    /// duration (`5m`, `1h30m`): a whole number followed by letters and digits is one token.
    fn number(&mut self) {
        self.take_while(|c| c.is_ascii_digit());
        if self.query[self.pos..].starts_with('.') {
            self.pos += 1;
            self.take_while(|c| c.is_ascii_digit());
        } else {
            self.take_while(|c| c.is_ascii_alphanumeric() || c == 'µ');
        }
    }

    /// A placeholder outside any literal, which must touch no other token.
    fn bare_placeholder(&mut self) -> Result<(), TemplateError> {
        let offset = self.pos;
        let (name, end) = read_placeholder(self.query, offset)?;
        let glued_before = self.query[..offset].chars().next_back().is_some_and(glues);
        let glued_after = self.query[end..].chars().next().is_some_and(|c| glues(c) || c == '{');
        if glued_before || glued_after {
            return Err(TemplateError::Misplaced { name: name.to_owned(), offset });
        }
        self.holes.push(Hole { name, offset, end, place: Place::Bare });
        self.tokens.push(Token::Number);
        self.pos = end;
        Ok(())
    }

    /// A string or quoted identifier opened by `quote`, up to its closing quote; a raw line break
    /// ends it unclosed, as InfluxDB reads it.
    fn quoted(&mut self, quote: char) -> Result<(), TemplateError> {
        let start = self.pos;
        self.pos += 1;
        self.literal(quote, Place::Quoted(quote), || TemplateError::UnterminatedString { offset: start })
    }

    /// A regex literal, up to the next `/` not escaped.
    fn regex(&mut self) -> Result<(), TemplateError> {
        let start = self.pos;
        self.pos += 1;
        self.literal('/', Place::Regex, || TemplateError::UnterminatedRegex { offset: start })
    }

    fn literal(
        &mut self,
        close: char,
        place: Place,
        unterminated: impl Fn() -> TemplateError,
    ) -> Result<(), TemplateError> {
        while let Some(c) = self.peek() {
            let at = self.pos;
            match c {
                '{' if self.opens_placeholder(at) => {
                    let (name, end) = read_placeholder(self.query, at)?;
                    self.holes.push(Hole { name, offset: at, end, place });
                    self.pos = end;
                }
                '\\' => {
                    if self.opens_placeholder(at + 1) {
                        let (name, _) = read_placeholder(self.query, at + 1)?;
                        return Err(TemplateError::AfterBackslash { name: name.to_owned(), offset: at + 1 });
                    }
                    self.pos += 1;
                    // In a string the backslash escapes the character after it. In a regex it
                    // escapes only a `/`, and InfluxDB reads any other character after it afresh:
                    // `\\/` is a backslash, then an escaped slash that does not end the regex.
                    match self.peek() {
                        Some('\n' | '\r') | None => return Err(unterminated()),
                        Some(escaped) if place != Place::Regex || escaped == '/' => {
                            self.pos += escaped.len_utf8();
                        }
                        Some(_) => {}
                    }
                }
                '\n' | '\r' => return Err(unterminated()),
                '\0' => return Err(TemplateError::Nul { offset: at }),
                c if c == close => {
                    self.pos += 1;
                    return Ok(());
                }
                c => self.pos += c.len_utf8(),
            }
        }
        Err(unterminated())
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether a character beside a bare value would be read as part of its token.
fn glues(c: char) -> bool {
    is_word_char(c) || matches!(c, '.' | 'µ' | '"' | '\'' | '$' | '}')
}

/// The variable `hole` names, checked to be allowed where it sits.
fn variable<'t>(hole: &Hole<'t>, arg_names: &[&str]) -> Result<Variable<'t>, TemplateError> {
    let variable = parse_variable(hole.name).ok_or_else(|| TemplateError::UnknownVariable {
        name: hole.name.to_owned(),
        suggestion: closest(hole.name, &known_names(arg_names)),
    })?;
    if let (Place::Bare, Variable::Builtin(builtin)) = (hole.place, variable)
        && builtin.name != BARE_BUILTIN
    {
        return Err(TemplateError::BareBuiltin { name: hole.name.to_owned(), offset: hole.offset });
    }
    Ok(variable)
}

/// `value` made safe for `hole`'s place.
fn fill(hole: &Hole<'_>, value: &str) -> Result<String, TemplateError> {
    match hole.place {
        Place::Bare => {
            // InfluxQL's durations have no years; the rest of PromQL's bare values read the same.
            if read_bare(value).is_none() || value.contains('y') {
                return Err(TemplateError::BareValue {
                    name: hole.name.to_owned(),
                    offset: hole.offset,
                    value: value.to_owned(),
                });
            }
            Ok(value.to_owned())
        }
        Place::Quoted(quote) => escape_quoted(value, quote).ok_or_else(|| TemplateError::Unrepresentable {
            name: hole.name.to_owned(),
            offset: hole.offset,
        }),
        Place::Regex => Ok(escape_regex(value)),
    }
}

/// `value` as the content of an InfluxQL string or quoted identifier closed by `quote`, or `None`
/// when it holds what such a literal cannot: a carriage return (which InfluxDB reads as a line
/// break, ending the literal) or a NUL (where it stops reading the query).
fn escape_quoted(value: &str, quote: char) -> Option<String> {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\r' | '\0' => return None,
            '\\' => escaped.push_str(r"\\"),
            '\n' => escaped.push_str(r"\n"),
            c if c == quote => {
                escaped.push('\\');
                escaped.push(c);
            }
            c => escaped.push(c),
        }
    }
    Some(escaped)
}

/// `value` as a regex matching only itself, written to sit between InfluxQL's `/` delimiters:
/// ASCII letters, digits and `_` as themselves, every other ASCII character as `\xHH`, and the rest
/// of Unicode, which neither the regex syntax nor the scanner treats specially, as itself.
fn escape_regex(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii() && !is_word_char(c) {
            let _ = write!(escaped, r"\x{:02x}", u32::from(c));
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// The template with each placeholder replaced by `text(its index)`.
fn substitute(query: &str, holes: &[Hole<'_>], text: impl Fn(usize) -> String) -> String {
    let mut rendered = String::with_capacity(query.len());
    let mut from = 0;
    for (index, hole) in holes.iter().enumerate() {
        rendered.push_str(&query[from..hole.offset]);
        rendered.push_str(&text(index));
        from = hole.end;
    }
    rendered.push_str(&query[from..]);
    rendered
}

/// What an inert value becomes in `hole`'s place.
fn sentinel(hole: &Hole<'_>) -> String {
    match hole.place {
        Place::Bare => SENTINEL_BARE.to_owned(),
        Place::Quoted(_) | Place::Regex => SENTINEL_TEXT.to_owned(),
    }
}

/// Checks an InfluxQL template when its metric is validated: one SELECT statement that only
/// reads, placeholders where their values can be made safe, and only declared args.
pub fn check_influxql(query: &str, declared_args: &BTreeSet<String>) -> Result<(), TemplateError> {
    let lexed = lex(query, true)?;
    let arg_names: Vec<&str> = declared_args.iter().map(String::as_str).collect();
    for hole in &lexed.holes {
        if let Variable::Arg(name) = variable(hole, &arg_names)?
            && !declared_args.contains(name)
        {
            let suggestion = closest(name, &arg_names);
            return Err(TemplateError::UndeclaredArg { name: name.to_owned(), suggestion });
        }
    }
    let length = substitute(query, &lexed.holes, |index| sentinel(&lexed.holes[index])).len();
    if length > MAX_QUERY_BYTES {
        return Err(TemplateError::TooLong { length, limit: MAX_QUERY_BYTES });
    }
    Ok(())
}

/// Substitutes `vars` into an InfluxQL template, each value escaped for where it lands, and checks
/// that no value changed the query's tokens.
pub fn render_influxql(query: &str, vars: &Vars) -> Result<String, TemplateError> {
    let lexed = lex(query, true)?;
    let arg_names: Vec<&str> = vars.args.keys().map(String::as_str).collect();
    let fills = lexed
        .holes
        .iter()
        .map(|hole| fill(hole, vars.value(variable(hole, &arg_names)?)?))
        .collect::<Result<Vec<_>, _>>()?;
    let sentinels: Vec<String> = lexed.holes.iter().map(sentinel).collect();
    let inert = lex(&substitute(query, &lexed.holes, |index| sentinels[index].clone()), false)?.tokens;
    for (index, hole) in lexed.holes.iter().enumerate() {
        let with_value = substitute(query, &lexed.holes, |other| {
            if other == index { fills[index].clone() } else { sentinels[other].clone() }
        });
        if lex(&with_value, false).map(|lexed| lexed.tokens).as_ref() != Ok(&inert) {
            return Err(TemplateError::ValueChangesQuery { name: hole.name.to_owned(), offset: hole.offset });
        }
    }
    let rendered = substitute(query, &lexed.holes, |index| fills[index].clone());
    if rendered.len() > MAX_QUERY_BYTES {
        return Err(TemplateError::TooLong { length: rendered.len(), limit: MAX_QUERY_BYTES });
    }
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vars(value: &str) -> Vars {
        Vars {
            args: [("v".to_owned(), value.to_owned())].into(),
            rollout_name: "checkout".into(),
            rollout_namespace: "shop".into(),
            revision: "7c9f8d6b5".into(),
            canary_revision: "7c9f8d6b5".into(),
            stable_revision: "5d4c3b2a1".into(),
            canary_service: "checkout-canary".into(),
            stable_service: "checkout-stable".into(),
            interval: "1m".into(),
        }
    }

    fn render(query: &str, value: &str) -> Result<String, TemplateError> {
        render_influxql(query, &vars(value))
    }

    fn check(query: &str) -> Result<(), TemplateError> {
        check_influxql(query, &["v".to_owned()].into())
    }

    /// Reads the literal that opens `text` as InfluxDB's scanner does: a string or identifier with
    /// its four escapes, or a regex whose `\/` is a slash and whose other escapes the regex reads
    /// (`\xHH` as that character). Returns its value and what follows it; `None` where InfluxDB
    /// would refuse the literal.
    fn decode_literal(text: &str) -> Option<(String, &str)> {
        let mut chars = text.char_indices();
        let (_, close) = chars.next()?;
        let mut value = String::new();
        while let Some((at, c)) = chars.next() {
            match c {
                '\n' | '\r' | '\0' => return None,
                c if c == close => return Some((value, &text[at + 1..])),
                '\\' if close == '/' => match chars.next()?.1 {
                    '/' => value.push('/'),
                    'x' => {
                        let hex: String = chars.by_ref().take(2).map(|(_, c)| c).collect();
                        value.push(char::from(u8::from_str_radix(&hex, 16).ok()?));
                    }
                    _ => return None,
                },
                '\\' => value.push(match chars.next()?.1 {
                    'n' => '\n',
                    escaped @ ('\\' | '"' | '\'') => escaped,
                    _ => return None,
                }),
                c => value.push(c),
            }
        }
        None
    }

    /// The values of the literals of `rendered`, in order: strings, identifiers, and regexes after
    /// `=~`.
    fn literals(rendered: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut rest = rendered;
        while let Some(at) = rest.find(['\'', '"', '/']) {
            let opens = rest[at..].starts_with(['\'', '"']) || rest[..at].trim_end().ends_with("=~");
            if !opens {
                rest = &rest[at + 1..];
                continue;
            }
            let Some((value, after)) = decode_literal(&rest[at..]) else {
                found.push(format!("<unreadable: {}>", &rest[at..]));
                break;
            };
            found.push(value);
            rest = after;
        }
        found
    }

    const QUERY: &str = "SELECT mean(\"{{args.v}}\") FROM \"requests\" WHERE \"revision\" = '{{args.v}}' \
                         AND \"path\" =~ /^{{args.v}}$/ AND time > now() - {{interval}}";

    #[test]
    fn values_fill_strings_identifiers_and_regexes() {
        assert_eq!(
            render(QUERY, "api").unwrap(),
            "SELECT mean(\"api\") FROM \"requests\" WHERE \"revision\" = 'api' AND \"path\" =~ /^api$/ \
             AND time > now() - 1m"
        );
        assert_eq!(
            render_influxql(
                "SELECT sum(\"n\") FROM r WHERE rev = '{{revision}}' AND svc = '{{ service }}' AND \
                 stable = '{{stable.revision}}' AND ns = '{{rollout.namespace}}'",
                &vars("v").measuring(crate::template::Side::Stable)
            )
            .unwrap(),
            "SELECT sum(\"n\") FROM r WHERE rev = '5d4c3b2a1' AND svc = 'checkout-stable' AND \
             stable = '5d4c3b2a1' AND ns = 'shop'"
        );
        assert_eq!(check(QUERY), Ok(()));
    }

    #[test]
    fn a_hostile_value_stays_in_its_literal() {
        let hostile = "x' OR 1=1; DROP DATABASE app -- \" /.*/ \\ \n{{ é";
        let rendered = render(QUERY, hostile).unwrap();
        assert_eq!(
            rendered,
            "SELECT mean(\"x' OR 1=1; DROP DATABASE app -- \\\" /.*/ \\\\ \\n{{ é\") FROM \"requests\" \
             WHERE \"revision\" = 'x\\' OR 1=1; DROP DATABASE app -- \" /.*/ \\\\ \\n{{ é' AND \"path\" =~ \
             /^x\\x27\\x20OR\\x201\\x3d1\\x3b\\x20DROP\\x20DATABASE\\x20app\\x20\\x2d\\x2d\\x20\\x22\\x20\\x2f\\x2e\\x2a\\x2f\\x20\\x5c\\x20\\x0a\\x7b\\x7b\\x20é$/ \
             AND time > now() - 1m"
        );
        assert_eq!(literals(&rendered), expected_literals(hostile));
    }

    /// The literals of [`QUERY`] rendered with `value`.
    fn expected_literals(value: &str) -> Vec<String> {
        [value, "requests", "revision", value, "path", &format!("^{value}$")].map(str::to_owned).to_vec()
    }

    #[test]
    fn what_no_literal_can_hold_is_refused() {
        for value in ["a\rb", "a\0b"] {
            assert_eq!(
                render("SELECT x FROM r WHERE a = '{{args.v}}'", value),
                Err(TemplateError::Unrepresentable { name: "args.v".into(), offset: 27 })
            );
        }
        assert_eq!(
            render("SELECT x FROM r WHERE a =~ /{{args.v}}/", "a\rb\0"),
            Ok("SELECT x FROM r WHERE a =~ /a\\x0db\\x00/".into())
        );
    }

    #[test]
    fn a_bare_value_is_one_number_or_duration() {
        let query = "SELECT x FROM r WHERE time > now() - {{args.v}} LIMIT 1";
        for value in ["5m", "1h30m", "42", "0.95", "250ms"] {
            assert_eq!(render(query, value), Ok(query.replace("{{args.v}}", value)), "{value}");
        }
        for value in ["1y", "x", "5m OR true", "1; DROP DATABASE app", "-1", "1e3", "", "'a'"] {
            assert!(matches!(render(query, value), Err(TemplateError::BareValue { .. })), "{value}");
        }
        assert_eq!(
            check("SELECT x FROM r WHERE rev = {{revision}}"),
            Err(TemplateError::BareBuiltin { name: "revision".into(), offset: 28 })
        );
        for glued in [
            "SELECT x{{args.v}} FROM r",
            "SELECT {{args.v}}x FROM r",
            "SELECT 1.{{args.v}} FROM r",
            "SELECT {{args.v}}{{interval}} FROM r",
            "SELECT '{{args.v}}'{{interval}} FROM r",
        ] {
            assert!(matches!(check(glued), Err(TemplateError::Misplaced { .. })), "{glued}");
        }
    }

    #[test]
    fn the_template_is_one_select_that_only_reads() {
        let cases = [
            ("SELECT x FROM r; SELECT y FROM r", TemplateError::Statements { offset: 15 }),
            ("SELECT x FROM r;", TemplateError::Statements { offset: 15 }),
            ("SELECT x INTO y FROM r", TemplateError::Into { offset: 9 }),
            ("DROP DATABASE app", TemplateError::NotSelect),
            ("", TemplateError::NotSelect),
            ("\"select\" FROM r", TemplateError::NotSelect),
            ("SELECT x FROM r -- c", TemplateError::Comment { offset: 16 }),
            ("SELECT x /* c */ FROM r", TemplateError::Comment { offset: 9 }),
            ("SELECT x FROM r WHERE a = 'b", TemplateError::UnterminatedString { offset: 26 }),
            ("SELECT x FROM r WHERE a = 'b\nc'", TemplateError::UnterminatedString { offset: 26 }),
            ("SELECT x FROM r WHERE a =~ /b", TemplateError::UnterminatedRegex { offset: 27 }),
            ("SELECT x FROM r\0; DROP DATABASE app", TemplateError::Nul { offset: 15 }),
            (
                "SELECT x FROM r WHERE a = '\\{{args.v}}'",
                TemplateError::AfterBackslash { name: "args.v".into(), offset: 28 },
            ),
        ];
        for (query, error) in cases {
            assert_eq!(check(query), Err(error), "{query}");
        }
        // Inside literals, none of these is syntax.
        assert_eq!(check("SELECT \"into\" FROM r WHERE a = ';' AND b =~ /--;/ AND c = 'it\\'s'"), Ok(()));
        assert_eq!(check("select x from r"), Ok(()));
    }

    /// `/` divides after an operand and opens a regex where an operand starts, as InfluxDB reads it:
    /// a placeholder after a division is bare, after `FROM` it is in a regex.
    #[test]
    fn a_slash_divides_after_an_operand_and_opens_a_regex_elsewhere() {
        let divided = "SELECT sum(x) / 2 / {{args.v}} FROM r WHERE a = 'b'";
        assert_eq!(render(divided, "4"), Ok(divided.replace("{{args.v}}", "4")));
        assert!(matches!(render(divided, "a"), Err(TemplateError::BareValue { .. })));
        assert_eq!(render("SELECT x FROM /{{args.v}}/", "a.b"), Ok("SELECT x FROM /a\\x2eb/".into()));
        assert_eq!(render("SELECT x FROM db../{{args.v}}/", "a"), Ok("SELECT x FROM db../a/".into()));
        assert_eq!(render("SELECT /{{args.v}}/ FROM r", "a"), Ok("SELECT /a/ FROM r".into()));
        assert_eq!(
            render("SELECT x FROM r GROUP BY /{{args.v}}/", "a"),
            Ok("SELECT x FROM r GROUP BY /a/".into())
        );
        // In a regex a backslash escapes only a slash, so `\\/` does not end it: the placeholder after
        // it is still in the regex.
        assert_eq!(
            render("SELECT x FROM r WHERE a =~ /b\\\\/ AND c = '{{args.v}}' AND d =~ /e/", "'"),
            Ok("SELECT x FROM r WHERE a =~ /b\\\\/ AND c = '\\x27' AND d =~ /e/".into())
        );
        // After a `.`, a slash opens a regex only in FROM; elsewhere it divides, so a value cannot
        // hide a statement in what the lexer would take for a regex and InfluxDB for a string.
        assert_eq!(render("SELECT x FROM db.rp./{{args.v}}/", "a"), Ok("SELECT x FROM db.rp./a/".into()));
        assert_eq!(render("SELECT v./{{args.v}} FROM m", "2"), Ok("SELECT v./2 FROM m".into()));
        // Read as InfluxDB reads it, this template has its placeholder outside any literal, so it is
        // refused before a value could close a string the lexer took for a regex.
        let tricky = "SELECT sum(v) FROM m WHERE c./1+'/ = 0 OR r = '{{args.v}}' AND r =~ /'/2";
        assert!(matches!(check(tricky), Err(TemplateError::Misplaced { .. })), "{:?}", check(tricky));
        // `1.` is one number to InfluxDB, so the slash after it divides.
        assert_eq!(render("SELECT 1./{{args.v}} FROM r", "2"), Ok("SELECT 1./2 FROM r".into()));
    }

    #[test]
    fn unknown_and_undeclared_variables_are_refused() {
        assert!(matches!(
            check("SELECT x FROM r WHERE a = '{{args.w}}'"),
            Err(TemplateError::UndeclaredArg { name, suggestion: Some(_) }) if name == "w"
        ));
        assert!(matches!(
            check("SELECT x FROM r WHERE a = '{{revison}}'"),
            Err(TemplateError::UnknownVariable { suggestion: Some(_), .. })
        ));
        assert_eq!(
            render_influxql("SELECT x FROM r WHERE a = '{{args.w}}'", &vars("v")),
            Err(TemplateError::MissingArg { name: "w".into() })
        );
    }

    #[test]
    fn rendered_queries_have_a_size_limit() {
        let query = "SELECT x FROM r WHERE a = '{{args.v}}'";
        let long = "'".repeat(MAX_QUERY_BYTES / 2);
        assert!(matches!(render(query, &long), Err(TemplateError::TooLong { .. })));
        let template = format!("SELECT x FROM r WHERE a = '{}'", "a".repeat(MAX_QUERY_BYTES));
        assert!(matches!(check(&template), Err(TemplateError::TooLong { .. })));
    }

    proptest! {
        /// Whatever the value, each literal it fills holds exactly it, and it adds no token.
        #[test]
        fn any_value_stays_in_its_literal(value in "\\PC*|[\\x00-\\x7f]{0,12}") {
            match render(QUERY, &value) {
                Ok(rendered) => prop_assert_eq!(literals(&rendered), expected_literals(&value)),
                Err(error) => prop_assert!(
                    value.contains(['\r', '\0']) || matches!(error, TemplateError::TooLong { .. }),
                    "{value:?}: {error}"
                ),
            }
        }
    }
}
