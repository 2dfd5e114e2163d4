//! Durations in the Gateway API / Go format: `500ms`, `30s`, `5m`, `1h30m`.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// The pattern Gateway API uses for its `Duration` type; the API server enforces it.
pub const DURATION_PATTERN: &str = "^([0-9]{1,5}(h|m|s|ms)){1,4}$";

/// A duration as written in a manifest. It keeps the author's spelling so that a round trip through
/// the API server never rewrites a GitOps-managed field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(pub String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("duration {0:?} is empty")]
    Empty(String),
    #[error("duration {0:?} is negative; durations count forward from now")]
    Negative(String),
    #[error("duration {0:?} has no unit after {1}; use h, m, s or ms, as in 30s or 1h30m")]
    MissingUnit(String, u64),
    #[error("duration {0:?} has an unknown unit {1:?}; use h, m, s or ms")]
    UnknownUnit(String, String),
    #[error("duration {0:?} is not a number followed by a unit, as in 30s or 1h30m")]
    Malformed(String),
}

impl Duration {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// Parses the text into a chrono duration. Accepts what the schema pattern accepts.
    pub fn parse(&self) -> Result<chrono::Duration, DurationError> {
        parse_duration(&self.0)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn parse_duration(text: &str) -> Result<chrono::Duration, DurationError> {
    let err_text = || text.to_string();
    if text.is_empty() {
        return Err(DurationError::Empty(err_text()));
    }
    if text.starts_with('-') {
        return Err(DurationError::Negative(err_text()));
    }
    let mut total_ms: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 || digits > 5 {
            return Err(DurationError::Malformed(err_text()));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| DurationError::Malformed(err_text()))?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
        if unit_len == 0 {
            // `5` lacks a unit; `1.5h` and `5 minutes` are not number-unit pairs at all.
            return Err(if rest.is_empty() {
                DurationError::MissingUnit(err_text(), number)
            } else {
                DurationError::Malformed(err_text())
            });
        }
        let factor_ms: i64 = match &rest[..unit_len] {
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1_000,
            "ms" => 1,
            other => return Err(DurationError::UnknownUnit(err_text(), other.to_string())),
        };
        rest = &rest[unit_len..];
        total_ms += number as i64 * factor_ms;
    }
    Ok(chrono::Duration::milliseconds(total_ms))
}

/// Formats a chrono duration the way people read it: `2m05s`, `1h30m`, `450ms`.
pub fn format_duration(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, 0) => format!("{h}h{m:02}m"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// Formats a moment for messages, to the second in UTC: `2026-01-01T12:05:00Z`.
pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration such as 30s, 5m or 1h30m (Gateway API format: up to four number-unit pairs, units h, m, s, ms).",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(Duration::new("30s").parse(), Ok(chrono::Duration::seconds(30)));
        assert_eq!(Duration::new("1h30m").parse(), Ok(chrono::Duration::minutes(90)));
        assert_eq!(Duration::new("250ms").parse(), Ok(chrono::Duration::milliseconds(250)));
        assert_eq!(Duration::new("0s").parse(), Ok(chrono::Duration::zero()));
    }

    #[test]
    fn rejects_bad_durations_with_a_reason() {
        assert!(matches!(Duration::new("-5m").parse(), Err(DurationError::Negative(_))));
        assert!(matches!(Duration::new("5").parse(), Err(DurationError::MissingUnit(_, 5))));
        assert!(matches!(Duration::new("5d").parse(), Err(DurationError::UnknownUnit(_, u)) if u == "d"));
        assert!(matches!(Duration::new("").parse(), Err(DurationError::Empty(_))));
        assert!(matches!(Duration::new("m5").parse(), Err(DurationError::Malformed(_))));
        assert!(matches!(Duration::new("1.5h").parse(), Err(DurationError::Malformed(_))));
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(format_duration(chrono::Duration::seconds(125)), "2m05s");
        assert_eq!(format_duration(chrono::Duration::minutes(90)), "1h30m");
        assert_eq!(format_duration(chrono::Duration::seconds(45)), "45s");
        assert_eq!(format_duration(chrono::Duration::milliseconds(450)), "450ms");
        assert_eq!(format_duration(chrono::Duration::minutes(3)), "3m");
    }
}
