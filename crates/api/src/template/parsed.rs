//! The second wall: the query as a PromQL parser reads it.
//!
//! A parsed query is split into its *shape* (the expression with every literal blanked) and its
//! *leaves* (the string, number and duration literals, in a fixed order). The template rendered with
//! sentinels gives the [`Skeleton`]: its shape, its leaves, and the leaf each placeholder landed in. A
//! rendering is accepted when it has the skeleton's shape and the skeleton's leaves, except that each
//! placeholder's leaf holds that placeholder's content instead of its sentinel. Comparing shapes with the
//! parser's own equality covers every part of the expression (functions, operators, names, matcher
//! operators, grouping, modifiers) without listing them here.

use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::LazyLock;
use std::time::Duration;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{self as promql, Expr, Offset, VectorSelector};
use regex::Regex;

use super::{
    Bare, Content, Fill, Hole, Lexed, MAX_QUERY_BYTES, StringRole, TemplateError, argument_role, scan,
};

/// Stands in for every regex in a shape, whose own regex is kept in its leaf.
static BLANK_REGEX: LazyLock<Regex> = LazyLock::new(|| Regex::new("").expect("the empty regex compiles"));

/// What the parser says when it panics, which it does on some numbers where a duration belongs.
const PARSER_PANIC: &str = "the PromQL parser failed on this query (is a range or offset too large?)";

/// The private-use characters that can mark string sentinels. One the template does not contain is
/// chosen, so that no text of the template can be taken for a sentinel.
const SENTINEL_MARKS: std::ops::RangeInclusive<char> = '\u{E000}'..='\u{F8FF}';

/// Bare sentinels are numbers no template writes: `BARE_SENTINEL + 2n` and one more for the second
/// rendering. They have a fraction so that no digit before or after them makes another sentinel.
const BARE_SENTINEL: f64 = 1_000_000.25;

/// A literal of a parsed query.
#[derive(Clone)]
enum Leaf {
    Text { role: StringRole, value: String },
    Number(f64),
    Duration(Duration),
}

impl Leaf {
    /// Equality, with a number equal to itself even when it is NaN (as the literal `NaN` is).
    fn same_as(&self, other: &Leaf) -> bool {
        match (self, other) {
            (Leaf::Text { role, value }, Leaf::Text { role: other_role, value: other_value }) => {
                role == other_role && value == other_value
            }
            (Leaf::Number(number), Leaf::Number(other)) => number.to_bits() == other.to_bits(),
            (Leaf::Duration(duration), Leaf::Duration(other)) => duration == other,
            _ => false,
        }
    }
}

/// A query as the parser reads it.
struct Parsed {
    shape: Expr,
    leaves: Vec<Leaf>,
}

/// Parses `query`, turning a panic of the parser into an error like any other.
fn read(query: &str) -> Result<Parsed, String> {
    let expr = panic::catch_unwind(AssertUnwindSafe(|| promql::parse(query)))
        .unwrap_or_else(|_| Err(PARSER_PANIC.to_owned()))?;
    let mut shape = expr;
    let mut leaves = Vec::new();
    take_expr(&mut shape, StringRole::Plain, &mut leaves);
    Ok(Parsed { shape, leaves })
}

/// Moves the literals of `expr` into `leaves`, in order. `role` is what a string literal here is to
/// PromQL; parentheses pass it on, since Prometheus reads a function's argument through them.
fn take_expr(expr: &mut Expr, role: StringRole, leaves: &mut Vec<Leaf>) {
    match expr {
        Expr::Aggregate(aggregate) => {
            take_expr(&mut aggregate.expr, StringRole::Plain, leaves);
            if let Some(param) = &mut aggregate.param {
                take_expr(param, StringRole::Plain, leaves);
            }
        }
        Expr::Unary(unary) => take_expr(&mut unary.expr, StringRole::Plain, leaves),
        Expr::Binary(binary) => {
            take_expr(&mut binary.lhs, StringRole::Plain, leaves);
            take_expr(&mut binary.rhs, StringRole::Plain, leaves);
        }
        Expr::Paren(paren) => take_expr(&mut paren.expr, role, leaves),
        Expr::Subquery(subquery) => {
            take_expr(&mut subquery.expr, StringRole::Plain, leaves);
            take_duration(&mut subquery.range, leaves);
            if let Some(step) = &mut subquery.step {
                take_duration(step, leaves);
            }
            take_offset(&mut subquery.offset, leaves);
        }
        Expr::NumberLiteral(number) => leaves.push(Leaf::Number(mem::replace(&mut number.val, 0.0))),
        Expr::StringLiteral(string) => leaves.push(Leaf::Text { role, value: mem::take(&mut string.val) }),
        Expr::VectorSelector(selector) => take_selector(selector, leaves),
        Expr::MatrixSelector(matrix) => {
            take_selector(&mut matrix.vs, leaves);
            take_duration(&mut matrix.range, leaves);
        }
        Expr::Call(call) => {
            let function = call.func.name;
            for (index, argument) in call.args.args.iter_mut().enumerate() {
                take_expr(argument, argument_role(function, index), leaves);
            }
        }
        // Only a program that builds expressions itself makes these; the parser never does.
        Expr::Extension(_) => {}
    }
}

fn take_selector(selector: &mut VectorSelector, leaves: &mut Vec<Leaf>) {
    let matchers = &mut selector.matchers;
    for matcher in matchers.matchers.iter_mut().chain(matchers.or_matchers.iter_mut().flatten()) {
        take_matcher(matcher, leaves);
    }
    take_offset(&mut selector.offset, leaves);
}

fn take_matcher(matcher: &mut Matcher, leaves: &mut Vec<Leaf>) {
    let role = match &mut matcher.op {
        MatchOp::Re(regex) | MatchOp::NotRe(regex) => {
            *regex = BLANK_REGEX.clone();
            StringRole::Regex
        }
        MatchOp::Equal | MatchOp::NotEqual => StringRole::Plain,
    };
    leaves.push(Leaf::Text { role, value: mem::take(&mut matcher.value) });
}

fn take_offset(offset: &mut Option<Offset>, leaves: &mut Vec<Leaf>) {
    if let Some(Offset::Pos(duration) | Offset::Neg(duration)) = offset {
        take_duration(duration, leaves);
    }
}

fn take_duration(duration: &mut Duration, leaves: &mut Vec<Leaf>) {
    leaves.push(Leaf::Duration(mem::take(duration)));
}

/// Where a placeholder's sentinel landed in the skeleton's leaves.
#[derive(Clone, Copy)]
enum Landing {
    /// Inside a string literal, at this byte of its value.
    Text { leaf: usize, at: usize },
    /// The whole of a number literal, possibly negated by a `-` in the template.
    Number { leaf: usize, negated: bool },
    /// The whole of a duration.
    Duration { leaf: usize },
}

impl Landing {
    fn leaf(self) -> usize {
        match self {
            Landing::Text { leaf, .. } | Landing::Number { leaf, .. } | Landing::Duration { leaf } => leaf,
        }
    }
}

/// A template's query rendered with sentinels and parsed, which every rendering must match.
pub(super) struct Skeleton<'t> {
    lexed: &'t Lexed<'t>,
    holes: Vec<&'t Hole<'t>>,
    sentinels: Vec<Fill>,
    parsed: Parsed,
    landings: Vec<Landing>,
}

impl<'t> Skeleton<'t> {
    /// Parses the template `query` (lexed as `lexed`) with sentinels, and checks that each placeholder
    /// lands in one leaf, of the role the lexer escaped for, and changes nothing else.
    pub(super) fn new(query: &str, lexed: &'t Lexed<'t>) -> Result<Self, TemplateError> {
        let holes: Vec<&Hole<'_>> = lexed.holes().collect();
        // A template holding every mark is at least 6400 three-byte characters long, over the limit.
        let Some(mark) = SENTINEL_MARKS.clone().find(|mark| !query.contains(*mark)) else {
            return Err(TemplateError::TooLong { length: query.len(), limit: MAX_QUERY_BYTES });
        };
        let firsts = sentinels(&holes, mark, 0);
        let text = lexed.assemble(|index| &firsts[index].text);
        if text.len() > MAX_QUERY_BYTES {
            return Err(TemplateError::TooLong { length: text.len(), limit: MAX_QUERY_BYTES });
        }
        let parsed = read(&text).map_err(|message| TemplateError::Unparsable {
            offset: locate(query, lexed, &firsts),
            message,
        })?;
        let mut landings = Vec::with_capacity(holes.len());
        for (hole, sentinel) in holes.iter().zip(&firsts) {
            landings.push(land(&parsed, hole, sentinel)?);
        }
        let skeleton = Skeleton { lexed, holes, sentinels: firsts, parsed, landings };
        let seconds = sentinels(&skeleton.holes, mark, 1);
        skeleton.matches(&seconds).map_err(|(hole, _)| TemplateError::Misplaced {
            name: hole.name.to_owned(),
            offset: hole.offset,
        })?;
        Ok(skeleton)
    }

    /// Checks the query rendered with `fills`, one for each placeholder.
    pub(super) fn verify(&self, fills: &[Fill]) -> Result<(), TemplateError> {
        self.matches(fills).map_err(|(hole, message)| match message {
            Some(message) => {
                TemplateError::ValueUnparsable { name: hole.name.to_owned(), offset: hole.offset, message }
            }
            None => TemplateError::ValueChangesQuery { name: hole.name.to_owned(), offset: hole.offset },
        })
    }

    /// Whether the query rendered with `fills` is the skeleton with each placeholder's content in its
    /// leaf. If not, the placeholder to blame, with the parser's message if the query did not parse.
    fn matches(&self, fills: &[Fill]) -> Result<(), (&'t Hole<'t>, Option<String>)> {
        if self.holes.is_empty() {
            // The template rendered to itself, which the skeleton already is.
            return Ok(());
        }
        let failure = match self.holds(&fills.iter().collect::<Vec<_>>()) {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        // Blame the first placeholder whose value alone, the others keeping their sentinels, breaks the
        // query; if only their combination does, the first placeholder.
        for (index, hole) in self.holes.iter().enumerate() {
            let one: Vec<&Fill> = self
                .sentinels
                .iter()
                .enumerate()
                .map(|(other, sentinel)| if other == index { &fills[index] } else { sentinel })
                .collect();
            if let Err(message) = self.holds(&one) {
                return Err((hole, message));
            }
        }
        Err((self.holes[0], failure))
    }

    /// Renders the template with `fills` and compares it with the skeleton: `Err(Some(message))` if it
    /// does not parse, `Err(None)` if it parses to something else.
    fn holds(&self, fills: &[&Fill]) -> Result<(), Option<String>> {
        let parsed = read(&self.lexed.assemble(|index| &fills[index].text)).map_err(Some)?;
        let same_leaves = parsed.leaves.len() == self.parsed.leaves.len()
            && parsed.leaves.iter().enumerate().all(|(leaf, found)| {
                self.expected(leaf, fills).is_some_and(|expected| found.same_as(&expected))
            });
        if parsed.shape == self.parsed.shape && same_leaves { Ok(()) } else { Err(None) }
    }

    /// What leaf number `leaf` must hold when each placeholder holds its fill's content; `None` if a
    /// fill's kind cannot stand in its leaf.
    fn expected(&self, leaf: usize, fills: &[&Fill]) -> Option<Leaf> {
        let landed = || {
            self.landings
                .iter()
                .zip(fills)
                .zip(&self.sentinels)
                .filter(|((landing, _), _)| landing.leaf() == leaf)
        };
        match &self.parsed.leaves[leaf] {
            Leaf::Text { role, value } => {
                let mut spliced: Vec<(usize, usize, &str)> = Vec::new();
                for ((landing, fill), sentinel) in landed() {
                    let (Landing::Text { at, .. }, Content::Text(text)) = (landing, &fill.content) else {
                        return None;
                    };
                    spliced.push((*at, sentinel.text.len(), text));
                }
                spliced.sort_by_key(|(at, _, _)| *at);
                let mut expected = String::with_capacity(value.len());
                let mut copied = 0;
                for (at, length, text) in spliced {
                    expected.push_str(&value[copied..at]);
                    expected.push_str(text);
                    copied = at + length;
                }
                expected.push_str(&value[copied..]);
                Some(Leaf::Text { role: *role, value: expected })
            }
            literal => match landed().next() {
                None => Some(literal.clone()),
                Some(((landing, fill), _)) => match (landing, &fill.content) {
                    (Landing::Number { negated, .. }, Content::Bare(bare)) => {
                        let number = bare.as_number();
                        Some(Leaf::Number(if *negated { -number } else { number }))
                    }
                    (Landing::Duration { .. }, Content::Bare(bare)) => {
                        Some(Leaf::Duration(bare.as_duration()))
                    }
                    _ => None,
                },
            },
        }
    }
}

/// One sentinel for each placeholder, `variant` 0 or 1: a marked string inside strings, a number
/// outside. Neither has anything that any escaping changes. A string sentinel starts with `d` so that
/// it still parses after a `\` of the template's regex (as `\d`), where it is then refused.
fn sentinels(holes: &[&Hole<'_>], mark: char, variant: usize) -> Vec<Fill> {
    holes
        .iter()
        .enumerate()
        .map(|(index, hole)| match hole.place.role() {
            Some(_) => {
                let text = format!("d{mark}{index}{}{mark}", ["a", "b"][variant]);
                Fill { text: text.clone(), content: Content::Text(text) }
            }
            None => {
                // Exact: an integer plus a quarter, far below 2^53.
                let number = BARE_SENTINEL + (2 * index + variant) as f64;
                Fill { text: number.to_string(), content: Content::Bare(Bare::Number(number)) }
            }
        })
        .collect()
}

/// Finds the one leaf a placeholder's sentinel landed in, and checks that the parser gives a string
/// leaf the role the lexer escaped for.
fn land(parsed: &Parsed, hole: &Hole<'_>, sentinel: &Fill) -> Result<Landing, TemplateError> {
    let misplaced = || TemplateError::Misplaced { name: hole.name.to_owned(), offset: hole.offset };
    let mut found =
        parsed.leaves.iter().enumerate().filter_map(|(leaf, found)| match (&sentinel.content, found) {
            (Content::Text(text), Leaf::Text { role, value }) => {
                value.find(text.as_str()).map(|at| (Landing::Text { leaf, at }, Some(*role)))
            }
            (Content::Bare(bare), Leaf::Number(number)) if *number == bare.as_number() => {
                Some((Landing::Number { leaf, negated: false }, None))
            }
            (Content::Bare(bare), Leaf::Number(number)) if *number == -bare.as_number() => {
                Some((Landing::Number { leaf, negated: true }, None))
            }
            (Content::Bare(bare), Leaf::Duration(duration)) if *duration == bare.as_duration() => {
                Some((Landing::Duration { leaf }, None))
            }
            _ => None,
        });
    let (landing, parser_role) = found.next().ok_or_else(misplaced)?;
    if found.next().is_some() {
        return Err(misplaced());
    }
    match (hole.place.role(), parser_role) {
        (Some(lexer), Some(parser)) if lexer != parser => Err(TemplateError::RoleMismatch {
            name: hole.name.to_owned(),
            offset: hole.offset,
            lexer,
            parser,
        }),
        (_, Some(role)) => {
            if let Landing::Text { leaf, at } = landing
                && let Leaf::Text { value, .. } = &parsed.leaves[leaf]
                && let Some(escape) = unpaired_escape(&value[..at], role)
            {
                return Err(TemplateError::AfterEscape {
                    name: hole.name.to_owned(),
                    offset: hole.offset,
                    escape,
                    role,
                });
            }
            Ok(landing)
        }
        (_, None) => Ok(landing),
    }
}

/// The `\` of a regex or `$` of a replacement that `text` ends in, unpaired. A value's escaping is made
/// for a value that starts afresh, and such a character would take its first one: `\` before an
/// escaped `.` makes it match anything again, `$` before `1` names a group.
fn unpaired_escape(text: &str, role: StringRole) -> Option<char> {
    let escape = match role {
        StringRole::Regex => '\\',
        StringRole::Replacement => '$',
        StringRole::Plain => return None,
    };
    let run = text.chars().rev().take_while(|c| *c == escape).count();
    (run % 2 == 1).then_some(escape)
}

/// Where PromQL stops reading a template that does not parse, since the parser does not say: the start
/// of the token after the longest prefix that parses once its open brackets are closed. Searched from
/// the end, where an unfinished query goes wrong, first in growing steps and then by halving.
fn locate(query: &str, lexed: &Lexed<'_>, sentinels: &[Fill]) -> usize {
    let starts = &lexed.token_starts;
    let reads = |token: usize| {
        let Ok(prefix) = scan(&query[..starts[token]]) else { return false };
        let mut text = prefix.assemble(|index| &sentinels[index].text);
        text.push_str(&prefix.closers());
        read(&text).is_ok()
    };
    // `failing` is a token whose prefix (the tokens before it) does not read; the whole query does not.
    let mut failing = starts.len();
    let mut step = 1;
    let mut reading = None;
    while failing > 1 {
        let probe = failing.saturating_sub(step).max(1);
        if reads(probe) {
            reading = Some(probe);
            break;
        }
        failing = probe;
        step *= 2;
    }
    let Some(mut reading) = reading else { return starts.first().copied().unwrap_or(0) };
    while failing - reading > 1 {
        let middle = (reading + failing) / 2;
        if reads(middle) {
            reading = middle;
        } else {
            failing = middle;
        }
    }
    starts[reading]
}
