//! The small languages Argo Rollouts and Flagger write values in, read into Bellwether's: Go
//! durations, Argo's success and failure conditions, and the `{{ ... }}` placeholders of query
//! templates.
//!
//! Every reader here is strict: what it does not recognise whole is refused with the reason, never
//! guessed at, so that a condition or a query converts to exactly what it meant or not at all.

use crate::api::format_duration;

/// The longest duration Bellwether's format writes: five digits of hours.
const MAX_HOURS: u64 = 99_999;

/// A Go duration (`time.ParseDuration`), as Argo and Flagger write intervals: `90s`, `1m30s`,
/// `1.5h`, `250ms` or `0`. In whole milliseconds, the finest a Bellwether duration holds.
pub fn go_duration(text: &str) -> Result<u64, String> {
    let unreadable = || format!("{text:?} is not a duration such as 30s, 5m or 1h30m");
    if text.starts_with('-') {
        return Err(format!("{text:?} is negative"));
    }
    let body = text.strip_prefix('+').unwrap_or(text);
    if body == "0" {
        return Ok(0);
    }
    if body.is_empty() {
        return Err(unreadable());
    }
    let mut rest = body;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(unreadable());
        }
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("{text:?} has a number without a unit; use h, m, s or ms")),
            _ => return Err(format!("{text:?} has an unknown unit {unit:?}; use h, m, s or ms")),
        };
        let too_long = || format!("{text:?} is longer than {MAX_HOURS}h");
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| too_long())? };
        let mut part = whole.checked_mul(unit_nanos).ok_or_else(too_long)?;
        let mut scale = unit_nanos;
        for digit in fraction.bytes() {
            scale /= 10;
            part += u128::from(digit - b'0') * scale;
        }
        nanos = nanos.checked_add(part).ok_or_else(too_long)?;
        rest = next;
    }
    if !nanos.is_multiple_of(1_000_000) {
        return Err(format!("{text:?} is finer than a millisecond"));
    }
    let millis = nanos / 1_000_000;
    if millis > u128::from(MAX_HOURS) * 3_600_000 {
        return Err(format!("{text:?} is longer than {MAX_HOURS}h"));
    }
    Ok(millis as u64)
}

/// A whole number of seconds, as Argo writes pause durations and timeouts, in milliseconds.
pub fn seconds(value: i64) -> Result<u64, String> {
    let seconds = u64::try_from(value).map_err(|_| format!("{value} seconds is negative"))?;
    if seconds > MAX_HOURS * 3600 {
        return Err(format!("{value} seconds is longer than {MAX_HOURS}h"));
    }
    Ok(seconds * 1000)
}

/// Milliseconds as a Bellwether duration: `0s`, `1m30s`, `1500ms`, `2h05m`.
pub fn bellwether_duration(millis: u64) -> Result<String, String> {
    let (secs, rest) = (millis / 1000, millis % 1000);
    if secs / 3600 > MAX_HOURS {
        return Err(format!("{millis}ms is longer than {MAX_HOURS}h"));
    }
    Ok(match (secs, rest) {
        (0, 0) => "0s".to_string(),
        (0, ms) => format!("{ms}ms"),
        (s, 0) => format_duration(chrono::Duration::seconds(s as i64)),
        (s, ms) => format!("{}{ms}ms", format_duration(chrono::Duration::seconds(s as i64))),
    })
}

/// A comparison of the measured value: `result OP bound`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    pub op: Op,
    pub bound: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Below,
    AtMost,
    Above,
    AtLeast,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Below => "<",
            Op::AtMost => "<=",
            Op::Above => ">",
            Op::AtLeast => ">=",
        }
    }

    /// The same comparison with its two sides swapped: `X < result` is `result > X`.
    fn flipped(self) -> Op {
        match self {
            Op::Below => Op::Above,
            Op::AtMost => Op::AtLeast,
            Op::Above => Op::Below,
            Op::AtLeast => Op::AtMost,
        }
    }

    fn is_upper(self) -> bool {
        matches!(self, Op::Below | Op::AtMost)
    }
}

/// An Argo condition of the forms Bellwether can hold: one comparison of the first value, and
/// optionally `isNaN(result)` or'd with it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Condition {
    pub comparison: Comparison,
    /// True with `isNaN(result) || ...`: the condition holds when there is no number.
    pub nan: bool,
}

/// Reads an Argo `successCondition` or `failureCondition`: `result[0] < 0.01`, `result >= 0.95`,
/// `0.95 <= result[0]`, `isNaN(result[0]) || result[0] <= 0.5`, in parentheses or not.
pub fn condition(text: &str) -> Result<Condition, String> {
    let tokens = tokens(text)?;
    let mut parser = Parser { tokens: &tokens, at: 0 };
    let mut comparison = None;
    let mut nan = false;
    for term in parser.disjunction()? {
        match term {
            Term::Nan if !nan => nan = true,
            Term::Compare(c) if comparison.is_none() => comparison = Some(c),
            _ => return Err("it tests the value more than once; Bellwether takes one bound per side".into()),
        }
    }
    if parser.at != tokens.len() {
        return Err(format!("unexpected {} after the condition", tokens[parser.at].describe()));
    }
    let comparison = comparison.ok_or("it has no comparison with a number")?;
    Ok(Condition { comparison, nan })
}

/// What a metric's conditions mean in Bellwether's terms: the threshold a measurement breaches, the
/// stricter bound it must come back within (Argo's inconclusive band in between), and what a NaN
/// (no data) counts as.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgment {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub recover_min: Option<f64>,
    pub recover_max: Option<f64>,
    pub no_data: NoData,
    /// How the conditions were read, for the output's comments.
    pub reading: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoData {
    Pass,
    Fail,
    Inconclusive,
}

impl NoData {
    pub fn as_str(self) -> &'static str {
        match self {
            NoData::Pass => "pass",
            NoData::Fail => "fail",
            NoData::Inconclusive => "inconclusive",
        }
    }
}

/// The judgment of a metric with these Argo conditions. Argo checks `failureCondition` first: a
/// measurement is Failed when it holds, Successful when `successCondition` holds, Failed when only
/// a success condition is given and Successful when only a failure condition is, and Inconclusive
/// when both are given and neither holds.
pub fn judgment(success: Option<&str>, failure: Option<&str>) -> Result<Judgment, String> {
    let read = |which: &str, text: &str| condition(text).map_err(|e| format!("{which} {text:?}: {e}"));
    let success = success.map(|text| read("successCondition", text)).transpose()?;
    let failure = failure.map(|text| read("failureCondition", text)).transpose()?;
    // The bound of the healthy values each condition implies: a success condition is met inside
    // it, a failure condition outside it.
    let healthy_upper = |c: &Condition, failing: bool| c.comparison.op.is_upper() != failing;
    let mut judgment = Judgment {
        min: None,
        max: None,
        recover_min: None,
        recover_max: None,
        no_data: NoData::Inconclusive,
        reading: Vec::new(),
    };
    let (breach, breach_failing) = match (&success, &failure) {
        (None, None) => {
            return Err("neither successCondition nor failureCondition is set: Argo only records the \
                        value, and Bellwether needs a threshold to judge it"
                .into());
        }
        (Some(s), None) => {
            judgment.no_data = if s.nan { NoData::Pass } else { NoData::Fail };
            (s, false)
        }
        (None, Some(f)) => {
            judgment.no_data = if f.nan { NoData::Fail } else { NoData::Pass };
            (f, true)
        }
        (Some(s), Some(f)) => {
            if healthy_upper(s, false) != healthy_upper(f, true) {
                return Err("successCondition and failureCondition bound different sides of the value, \
                            which a threshold with hysteresis cannot hold"
                    .into());
            }
            judgment.no_data = match (s.nan, f.nan) {
                (_, true) => NoData::Fail,
                (true, false) => NoData::Pass,
                (false, false) => NoData::Inconclusive,
            };
            let stricter = if healthy_upper(s, false) {
                s.comparison.bound < f.comparison.bound
            } else {
                s.comparison.bound > f.comparison.bound
            };
            if stricter {
                let recover = Some(s.comparison.bound);
                if healthy_upper(s, false) {
                    judgment.recover_max = recover;
                } else {
                    judgment.recover_min = recover;
                }
                let (low, high) = if healthy_upper(s, false) {
                    (s.comparison.bound, f.comparison.bound)
                } else {
                    (f.comparison.bound, s.comparison.bound)
                };
                judgment.reading.push(format!(
                    "Values between {low} and {high} were Inconclusive in Argo; here they are marginal: they keep \
                     the metric where it is (Healthy stays Healthy, Breaching keeps breaching) and only \
                     values past {} count as recovered.",
                    s.comparison.bound
                ));
            }
            (f, true)
        }
    };
    let bound = Some(breach.comparison.bound);
    if healthy_upper(breach, breach_failing) {
        judgment.max = bound;
    } else {
        judgment.min = bound;
    }
    // Argo's strict comparisons put the bound itself on one side; Bellwether counts a value equal
    // to its threshold as within it.
    let op = breach.comparison.op;
    let bound_fails = matches!(op, Op::Below | Op::Above) != breach_failing;
    if bound_fails {
        judgment.reading.push(format!(
            "Argo failed a value of exactly {} (`result {} {}`); Bellwether counts a value equal to its \
             threshold as within it.",
            breach.comparison.bound,
            op.text(),
            breach.comparison.bound
        ));
    }
    judgment.reading.push(match judgment.no_data {
        NoData::Pass => "A NaN (no data) passed in Argo, so noData is pass.".to_string(),
        NoData::Fail => "A NaN (no data) failed in Argo, so noData is fail.".to_string(),
        NoData::Inconclusive => {
            "A NaN (no data) was Inconclusive in Argo, so noData is inconclusive.".to_string()
        }
    });
    Ok(judgment)
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Open,
    Close,
    OpenIndex,
    CloseIndex,
    Or,
    Compare(Op),
    Number(f64),
    Word(String),
    Other(String),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
            Token::OpenIndex => "'['".into(),
            Token::CloseIndex => "']'".into(),
            Token::Or => "'||'".into(),
            Token::Compare(op) => format!("'{}'", op.text()),
            Token::Number(n) => format!("the number {n}"),
            Token::Word(w) => format!("{w:?}"),
            Token::Other(o) => format!("{o:?}"),
        }
    }
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &text[at..];
        let c = bytes[at];
        let (token, len) = if c.is_ascii_whitespace() {
            at += 1;
            continue;
        } else if rest.starts_with("{{") {
            return Err("it compares with a template placeholder; Bellwether's thresholds are numbers".into());
        } else if rest.starts_with("||") {
            (Token::Or, 2)
        } else if rest.starts_with("<=") {
            (Token::Compare(Op::AtMost), 2)
        } else if rest.starts_with(">=") {
            (Token::Compare(Op::AtLeast), 2)
        } else if matches!(c, b'<' | b'>') {
            (Token::Compare(if c == b'<' { Op::Below } else { Op::Above }), 1)
        } else if matches!(c, b'(' | b')' | b'[' | b']') {
            let token = match c {
                b'(' => Token::Open,
                b')' => Token::Close,
                b'[' => Token::OpenIndex,
                _ => Token::CloseIndex,
            };
            (token, 1)
        } else if c.is_ascii_digit()
            || (matches!(c, b'-' | b'+' | b'.')
                && bytes.get(at + 1).is_some_and(|n| n.is_ascii_digit() || *n == b'.'))
        {
            let len = number_len(rest);
            let number: f64 =
                rest[..len].parse().map_err(|_| format!("{:?} is not a number", &rest[..len]))?;
            if !number.is_finite() {
                return Err(format!("{} is not a finite number", &rest[..len]));
            }
            (Token::Number(number), len)
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let len = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '.'))
                .unwrap_or(rest.len());
            let word = &rest[..len];
            (if word == "or" { Token::Or } else { Token::Word(word.to_string()) }, len)
        } else {
            let len = rest.chars().next().map_or(1, char::len_utf8);
            let two = rest.get(..2).unwrap_or(&rest[..len]);
            let other = if matches!(two, "&&" | "==" | "!=") { two } else { &rest[..len] };
            (Token::Other(other.to_string()), other.len())
        };
        tokens.push(token);
        at += len;
    }
    Ok(tokens)
}

/// The length of the number at the start of `text`: sign, digits, fraction, exponent.
fn number_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut at = usize::from(matches!(bytes[0], b'-' | b'+'));
    let digits = |at: &mut usize| {
        while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
    };
    digits(&mut at);
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        digits(&mut at);
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        let mut exponent = at + 1;
        if matches!(bytes.get(exponent), Some(b'-' | b'+')) {
            exponent += 1;
        }
        if bytes.get(exponent).is_some_and(u8::is_ascii_digit) {
            at = exponent;
            digits(&mut at);
        }
    }
    at
}

enum Term {
    Nan,
    Compare(Comparison),
}

struct Parser<'t> {
    tokens: &'t [Token],
    at: usize,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.at);
        self.at += usize::from(token.is_some());
        token
    }

    fn expect(&mut self, wanted: &Token, what: &str) -> Result<(), String> {
        match self.next() {
            Some(token) if token == wanted => Ok(()),
            Some(token) => Err(format!("expected {what}, found {}", token.describe())),
            None => Err(format!("expected {what} at the end")),
        }
    }

    fn disjunction(&mut self) -> Result<Vec<Term>, String> {
        let mut terms = self.term()?;
        while self.tokens.get(self.at) == Some(&Token::Or) {
            self.at += 1;
            terms.extend(self.term()?);
        }
        Ok(terms)
    }

    fn term(&mut self) -> Result<Vec<Term>, String> {
        match self.next().cloned() {
            Some(Token::Open) => {
                let terms = self.disjunction()?;
                self.expect(&Token::Close, "')'")?;
                Ok(terms)
            }
            Some(Token::Word(word)) if word == "isNaN" => {
                self.expect(&Token::Open, "'(' after isNaN")?;
                self.result()?;
                self.expect(&Token::Close, "')'")?;
                Ok(vec![Term::Nan])
            }
            Some(Token::Word(word)) if word == "result" => {
                self.index()?;
                let op = self.op()?;
                let bound = self.number()?;
                Ok(vec![Term::Compare(Comparison { op, bound })])
            }
            Some(Token::Number(bound)) => {
                let op = self.op()?.flipped();
                self.result()?;
                Ok(vec![Term::Compare(Comparison { op, bound })])
            }
            Some(token) => Err(format!(
                "{} is not something Bellwether can translate: only `result` (or `result[0]`) compared \
                 with a number, and `isNaN(result)`",
                token.describe()
            )),
            None => Err("the condition is empty".into()),
        }
    }

    fn result(&mut self) -> Result<(), String> {
        match self.next() {
            Some(Token::Word(word)) if word == "result" => self.index(),
            Some(token) => Err(format!("expected result, found {}", token.describe())),
            None => Err("expected result at the end".into()),
        }
    }

    /// An optional `[0]`: the first value of the query's vector, the one Bellwether measures.
    fn index(&mut self) -> Result<(), String> {
        if self.tokens.get(self.at) != Some(&Token::OpenIndex) {
            return Ok(());
        }
        self.at += 1;
        match self.next() {
            Some(Token::Number(n)) if *n == 0.0 => {}
            Some(token) => {
                return Err(format!(
                    "result[{}] reads another value than the first; Bellwether measures one value per query",
                    match token {
                        Token::Number(n) => n.to_string(),
                        other => other.describe(),
                    }
                ));
            }
            None => return Err("expected an index at the end".into()),
        }
        self.expect(&Token::CloseIndex, "']'")
    }

    fn op(&mut self) -> Result<Op, String> {
        match self.next() {
            Some(Token::Compare(op)) => Ok(*op),
            Some(token) => Err(format!("expected <, <=, > or >=, found {}", token.describe())),
            None => Err("expected <, <=, > or >= at the end".into()),
        }
    }

    fn number(&mut self) -> Result<f64, String> {
        match self.next() {
            Some(Token::Number(n)) => Ok(*n),
            Some(token) => Err(format!("expected a number, found {}", token.describe())),
            None => Err("expected a number at the end".into()),
        }
    }
}

/// `query` with each `{{ ... }}` placeholder replaced: `replace` gets the placeholder's trimmed
/// name and the text after it, and returns the replacement and how many bytes of that text it
/// took in too (so that `{{ target }}-canary` can become one placeholder).
pub fn rewrite_placeholders(
    query: &str,
    mut replace: impl FnMut(&str, &str) -> Result<(String, usize), String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let inner_start = open + 2;
        let close = rest[inner_start..].find("}}").ok_or_else(|| {
            format!("a placeholder opened at byte {} is never closed", query.len() - rest.len() + open)
        })?;
        let name = rest[inner_start..inner_start + close].trim();
        let after = &rest[inner_start + close + 2..];
        let (replacement, taken) = replace(name, after)?;
        out.push_str(&replacement);
        rest = &after[taken..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The names of the placeholders of `query` that sit inside the string of a `=~` or `!~` matcher,
/// where Bellwether escapes a value to match only itself, while Argo and Flagger pasted it in as
/// regex text.
pub fn placeholders_in_regex(query: &str) -> Vec<String> {
    let bytes = query.as_bytes();
    let mut found = Vec::new();
    // The quote of the string being read, and whether it is a regex matcher's.
    let mut quote: Option<(u8, bool)> = None;
    let mut at = 0;
    while at < bytes.len() {
        if query[at..].starts_with("{{") {
            let Some(close) = query[at + 2..].find("}}") else { break };
            if quote.is_some_and(|(_, regex)| regex) {
                found.push(query[at + 2..at + 2 + close].trim().to_string());
            }
            at += close + 4;
            continue;
        }
        let c = bytes[at];
        match quote {
            Some((q, _)) if c == b'\\' && q != b'`' => at += 1,
            Some((q, _)) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, b'"' | b'\'' | b'`') => {
                let before = query[..at].trim_end();
                quote = Some((c, before.ends_with("=~") || before.ends_with("!~")));
            }
            None => {}
        }
        at += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_in_milliseconds() {
        assert_eq!(go_duration("90s"), Ok(90_000));
        assert_eq!(go_duration("1m30s"), Ok(90_000));
        assert_eq!(go_duration("1.5h"), Ok(5_400_000));
        assert_eq!(go_duration("250ms"), Ok(250));
        assert_eq!(go_duration("0"), Ok(0));
        assert_eq!(go_duration("2000us"), Ok(2));
        assert!(go_duration("5").unwrap_err().contains("without a unit"));
        assert!(go_duration("5d").unwrap_err().contains("unknown unit \"d\""));
        assert!(go_duration("-1m").unwrap_err().contains("negative"));
        assert!(go_duration("1ns").unwrap_err().contains("finer than a millisecond"));
        assert!(go_duration("99999999999999999999999999999999999999999h").unwrap_err().contains("longer"));
        assert!(go_duration("100000h").unwrap_err().contains("longer"));
        assert!(go_duration("1..5s").is_err());
        assert!(go_duration("").is_err());
    }

    #[test]
    fn bellwether_durations() {
        assert_eq!(bellwether_duration(0).as_deref(), Ok("0s"));
        assert_eq!(bellwether_duration(90_000).as_deref(), Ok("1m30s"));
        assert_eq!(bellwether_duration(1_500).as_deref(), Ok("1s500ms"));
        assert_eq!(bellwether_duration(250).as_deref(), Ok("250ms"));
        assert_eq!(bellwether_duration(3_600_000 * 2 + 5 * 60_000).as_deref(), Ok("2h05m"));
        for millis in [0, 1, 999, 1_000, 61_001, 3_600_000 * MAX_HOURS] {
            let text = bellwether_duration(millis).unwrap();
            let parsed = crate::api::Duration::new(text.clone()).parse().unwrap();
            assert_eq!(parsed.num_milliseconds() as u64, millis, "{text}");
        }
    }

    #[test]
    fn the_common_forms_of_a_condition() {
        for (text, op, bound, nan) in [
            ("result[0] < 0.01", Op::Below, 0.01, false),
            ("result >= 0.95", Op::AtLeast, 0.95, false),
            ("0.95 <= result[0]", Op::AtLeast, 0.95, false),
            ("isNaN(result[0]) || result[0] <= 500", Op::AtMost, 500.0, true),
            ("(result[0] > -1e3 or isNaN(result))", Op::Above, -1000.0, true),
        ] {
            assert_eq!(
                condition(text),
                Ok(Condition { comparison: Comparison { op, bound }, nan }),
                "{text}"
            );
        }
    }

    #[test]
    fn conditions_it_cannot_read_are_refused_with_the_reason() {
        for (text, reason) in [
            ("result[0] == 1", "\"==\""),
            ("result[0] < 0.1 && result[1] < 3", "unexpected \"&&\""),
            ("result[1] < 3", "reads another value"),
            ("result[0] < 0.1 || result[0] > 0.9", "more than once"),
            ("all(result, # < 1000)", "\"all\""),
            ("result[0] < {{args.max}}", "placeholder"),
            ("result[0] < 1e999", "not a finite number"),
            ("result[0] < NaN", "expected a number"),
            ("result[0] < 0.1; os.exit(1)", "\";\""),
            ("isNaN(result)", "no comparison"),
            ("", "empty"),
            ("result[0] < 0.1)", "unexpected ')'"),
        ] {
            let error = condition(text).unwrap_err();
            assert!(error.contains(reason), "{text:?}: {error}");
        }
    }

    #[test]
    fn a_success_condition_bounds_the_healthy_values() {
        let j = judgment(Some("result[0] < 0.01"), None).unwrap();
        assert_eq!((j.min, j.max, j.recover_max, j.no_data), (None, Some(0.01), None, NoData::Fail));
        assert!(j.reading[0].contains("exactly 0.01"), "{:?}", j.reading);
        let j = judgment(Some("isNaN(result) || result >= 0.95"), None).unwrap();
        assert_eq!((j.min, j.max, j.no_data), (Some(0.95), None, NoData::Pass));
        assert_eq!(j.reading.len(), 1, "a non-strict success bound needs no word: {:?}", j.reading);
    }

    #[test]
    fn a_failure_condition_bounds_them_from_the_other_side() {
        let j = judgment(None, Some("result[0] > 10")).unwrap();
        assert_eq!((j.min, j.max, j.no_data), (None, Some(10.0), NoData::Pass));
        let j = judgment(None, Some("isNaN(result[0]) || result[0] < 0.9")).unwrap();
        assert_eq!((j.min, j.max, j.no_data), (Some(0.9), None, NoData::Fail));
        assert!(!j.reading.iter().any(|r| r.contains("exactly 0.9")), "{:?}", j.reading);
        let j = judgment(None, Some("result[0] <= 0.9")).unwrap();
        assert!(j.reading[0].contains("exactly 0.9"), "{:?}", j.reading);
    }

    #[test]
    fn both_conditions_make_a_hysteresis_band() {
        let j = judgment(Some("result >= 0.90"), Some("result < 0.50")).unwrap();
        assert_eq!((j.min, j.recover_min, j.no_data), (Some(0.5), Some(0.9), NoData::Inconclusive));
        let j = judgment(Some("result[0] < 0.01"), Some("result[0] > 0.05")).unwrap();
        assert_eq!((j.max, j.recover_max), (Some(0.05), Some(0.01)));
        // Overlapping conditions: the failure condition wins, as in Argo, and there is no band.
        let j = judgment(Some("result[0] < 0.05"), Some("result[0] > 0.01")).unwrap();
        assert_eq!((j.max, j.recover_max), (Some(0.01), None));
        let error = judgment(Some("result > 0.9"), Some("result > 2")).unwrap_err();
        assert!(error.contains("different sides"), "{error}");
        assert!(judgment(None, None).unwrap_err().contains("neither"));
        let error = judgment(Some("result[0] ~ 1"), None).unwrap_err();
        assert!(error.starts_with("successCondition \"result[0] ~ 1\": "), "{error}");
    }

    #[test]
    fn placeholders_inside_regex_matchers() {
        let query = r#"x{a=~"{{args.a}}.*", b="{{args.b}}", c !~ '\'{{args.c}}', d=~"5.."}[{{args.w}}]"#;
        assert_eq!(placeholders_in_regex(query), vec!["args.a".to_string(), "args.c".to_string()]);
    }

    #[test]
    fn placeholders_are_rewritten_and_may_take_the_text_after_them() {
        let rewritten = rewrite_placeholders("a{{ target }}-canary_b{{x}}c", |name, after| {
            Ok(match (name, after.strip_prefix("-canary")) {
                ("target", Some(_)) => ("{{canary.service}}".into(), "-canary".len()),
                _ => (format!("<{name}>"), 0),
            })
        });
        assert_eq!(rewritten.as_deref(), Ok("a{{canary.service}}_b<x>c"));
        assert!(rewrite_placeholders("a{{ b", |_, _| Ok((String::new(), 0))).unwrap_err().contains("byte 1"));
        assert_eq!(rewrite_placeholders("x", |_, _| Err("never".into())).as_deref(), Ok("x"));
    }
}
