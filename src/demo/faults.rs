//! The faults the demo app injects: which share of requests fails, how, and how long each request
//! is held. Set by flags at start and changed at run time through the admin endpoint; every change
//! is checked here, so that a bad value is refused whole and the faults in force stay as they were.

use crate::api::{Duration as ApiDuration, DurationError, format_duration};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest a request may be held, latency and jitter together: past that, clients and Gateways
/// time out, and the demo would show their timeouts rather than the app's latency.
pub const MAX_HOLD: Duration = Duration::from_secs(60);

/// How the failing share of requests is chosen.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorPattern {
    /// Each request fails with probability `error-rate`, independently of the others, as real
    /// faults do: a short window may show more or fewer failures than the rate.
    #[default]
    Random,
    /// Exactly one request in every `1 / error-rate` fails, evenly spaced: any window of requests
    /// shows the rate to within one request, for demos and tests that must not depend on luck.
    Even,
}

/// The faults in force.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Faults {
    /// The share of requests answered with 500, from 0 to 1.
    pub error_rate: f64,
    pub error_pattern: ErrorPattern,
    /// How long every request is held before it is answered.
    pub latency: Duration,
    /// Up to this much more, drawn uniformly for each request.
    pub latency_jitter: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            error_pattern: ErrorPattern::Random,
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultsError {
    #[error("error rate {0} is not a share of requests: give a number from 0 to 1, such as 0.05 for 5%")]
    ErrorRate(f64),
    #[error("{field}: {source}")]
    Duration {
        field: &'static str,
        #[source]
        source: DurationError,
    },
    #[error(
        "latency {} plus jitter {} may hold a request {}, more than the {} allowed",
        format_std(*latency), format_std(*jitter), format_std(latency.saturating_add(*jitter)), format_std(MAX_HOLD)
    )]
    TooSlow { latency: Duration, jitter: Duration },
    #[error("the body is not a faults object: {0}")]
    Malformed(String),
}

impl Faults {
    /// These faults, if every value is one the app can inject.
    pub fn validated(self) -> Result<Self, FaultsError> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(FaultsError::ErrorRate(self.error_rate));
        }
        if self.latency.saturating_add(self.latency_jitter) > MAX_HOLD {
            return Err(FaultsError::TooSlow { latency: self.latency, jitter: self.latency_jitter });
        }
        Ok(self)
    }

    /// These faults with the fields of `patch` (a JSON object with any of `errorRate`,
    /// `errorPattern`, `latency` and `latencyJitter`) changed, if the result is valid.
    pub fn patched(self, patch: &[u8]) -> Result<Self, FaultsError> {
        let patch: FaultsPatch =
            serde_json::from_slice(patch).map_err(|e| FaultsError::Malformed(e.to_string()))?;
        let mut faults = self;
        if let Some(rate) = patch.error_rate {
            faults.error_rate = rate;
        }
        if let Some(pattern) = patch.error_pattern {
            faults.error_pattern = pattern;
        }
        if let Some(text) = patch.latency {
            faults.latency = parse_duration("latency", &text)?;
        }
        if let Some(text) = patch.latency_jitter {
            faults.latency_jitter = parse_duration("latencyJitter", &text)?;
        }
        faults.validated()
    }

    /// The faults as the admin endpoint shows them: the JSON a patch takes.
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "errorRate": self.error_rate,
            "errorPattern": self.error_pattern,
            "latency": format_std(self.latency),
            "latencyJitter": format_std(self.latency_jitter),
        })
    }
}

/// A change to some of the faults; fields left out stay as they are, and an unknown field (a typo
/// such as `error_rate`) is refused rather than ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultsPatch {
    error_rate: Option<f64>,
    error_pattern: Option<ErrorPattern>,
    latency: Option<String>,
    latency_jitter: Option<String>,
}

/// Parses a duration as manifests write them (`50ms`, `1s`, `1m30s`), naming `field` when it is not
/// one.
pub fn parse_duration(field: &'static str, text: &str) -> Result<Duration, FaultsError> {
    let parsed = ApiDuration::new(text).parse().map_err(|source| FaultsError::Duration { field, source })?;
    // The parser accepts no sign, so the duration is never negative.
    Ok(parsed.to_std().unwrap_or_default())
}

/// Formats a duration so that [`parse_duration`] reads it back: whole seconds as people write them
/// (`2m05s`), anything else in milliseconds (`1500ms`).
fn format_std(duration: Duration) -> String {
    let millis = duration.as_millis();
    match i64::try_from(millis) {
        Ok(ms) if millis.is_multiple_of(1000) => format_duration(chrono::Duration::milliseconds(ms)),
        Ok(_) => format!("{millis}ms"),
        Err(_) => format!("{duration:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(error_rate: f64, latency_ms: u64, jitter_ms: u64) -> Faults {
        Faults {
            error_rate,
            error_pattern: ErrorPattern::Random,
            latency: Duration::from_millis(latency_ms),
            latency_jitter: Duration::from_millis(jitter_ms),
        }
    }

    #[test]
    fn error_rates_outside_zero_to_one_are_refused() {
        for rate in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.01, 1.0001, 1e300] {
            let refused = faults(rate, 0, 0).validated().expect_err("refused");
            assert!(refused.to_string().contains("from 0 to 1"), "{refused}");
        }
        for rate in [0.0, 0.004, 1.0] {
            assert_eq!(faults(rate, 0, 0).validated(), Ok(faults(rate, 0, 0)));
        }
    }

    #[test]
    fn a_request_may_be_held_a_minute_at_most() {
        assert!(faults(0.0, 50_000, 10_000).validated().is_ok());
        let refused = faults(0.0, 50_000, 10_001).validated().expect_err("over a minute");
        assert_eq!(
            refused.to_string(),
            "latency 50s plus jitter 10001ms may hold a request 60001ms, more than the 1m allowed"
        );
        let huge = Faults { latency: Duration::MAX, ..Faults::default() };
        assert!(matches!(huge.validated(), Err(FaultsError::TooSlow { .. })));
    }

    #[test]
    fn a_patch_changes_only_the_fields_it_names() {
        let before = faults(0.01, 20, 5);
        let after = before.patched(br#"{"errorRate": 0.5, "latency": "1s"}"#).expect("a valid patch");
        assert_eq!(after, faults(0.5, 1000, 5));
        let pattern = before.patched(br#"{"errorPattern": "even"}"#).expect("a valid patch");
        assert_eq!(pattern.error_pattern, ErrorPattern::Even);
        assert_eq!(before.patched(b"{}"), Ok(before));
    }

    #[test]
    fn a_bad_patch_is_refused_whole_with_the_reason() {
        let before = faults(0.01, 20, 0);
        for (patch, reason) in [
            (r#"{"errorRate": 0.5, "latency": "soon"}"#, "latency: duration \"soon\""),
            (r#"{"errorRate": -1}"#, "error rate -1 is not a share"),
            (r#"{"errorRate": "0.5"}"#, "invalid type: string"),
            (r#"{"errorRate": 1e999}"#, "number out of range"),
            (r#"{"errorRate": NaN}"#, "not a faults object"),
            (r#"{"error_rate": 0.5}"#, "unknown field `error_rate`"),
            (r#"{"errorPattern": "bursty"}"#, "unknown variant `bursty`"),
            (r#"{"latencyJitter": "-5ms"}"#, "latencyJitter: duration \"-5ms\" is negative"),
            (r#"{"latency": "2m"}"#, "more than the 1m allowed"),
            ("[0.5]", "not a faults object"),
            ("", "not a faults object"),
        ] {
            let refused = before.patched(patch.as_bytes()).expect_err(patch);
            assert!(refused.to_string().contains(reason), "{patch}: {refused}");
        }
    }

    #[test]
    fn the_shown_faults_patch_back_to_themselves() {
        let shown = faults(0.25, 1500, 30).to_json();
        assert_eq!((&shown["latency"], &shown["latencyJitter"]), (&"1500ms".into(), &"30ms".into()));
        let body = serde_json::to_vec(&shown).unwrap();
        assert_eq!(Faults::default().patched(&body), Ok(faults(0.25, 1500, 30)));
    }
}
