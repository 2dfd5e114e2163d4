//! Measured values in AnalysisRun status, written as the Prometheus HTTP API writes them: as
//! strings, so that `+Inf`, `-Inf` and `NaN` keep their meaning. serde_json writes a non-finite
//! `f64` as `null`, which reads back as "no data": a canary failing every request (`errors /
//! successes` is `+Inf`) would then look like one that served nothing. Numbers written by older
//! versions of Bellwether still read.

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;

/// What the API server accepts: a decimal in Rust's or Go's notation, or one of the three
/// non-finite values (in either case, with or without a sign on `Inf`).
pub const PATTERN: &str = r"^([+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(Inf|inf)|NaN|nan)$";

/// `value` as status stores it: the shortest text that reads back as the same `f64`.
pub fn format(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // `Debug` is the shortest round-trip form, switching to exponents for tiny and huge values.
        format!("{value:?}")
    }
}

/// Reads what [`format`] writes, and what Prometheus writes.
pub fn parse(text: &str) -> Option<f64> {
    match text {
        "NaN" | "nan" => Some(f64::NAN),
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        // Rust's parser also takes `infinity` and the like, which the pattern refuses.
        _ if text.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) => text.parse().ok(),
        _ => None,
    }
}

/// For `#[serde(with = "sample")]` on an `Option<f64>`.
pub fn serialize<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.serialize_str(&format(*value)),
        None => serializer.serialize_none(),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    deserializer.deserialize_any(SampleVisitor)
}

struct SampleVisitor;

impl<'de> Visitor<'de> for SampleVisitor {
    type Value = Option<f64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, or a string such as \"0.034\", \"+Inf\", \"-Inf\" or \"NaN\"")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        Ok(Some(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Some(value as f64))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Some(value as f64))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        parse(text).map(Some).ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn non_finite_values_have_the_prometheus_spelling() {
        assert_eq!(format(f64::INFINITY), "+Inf");
        assert_eq!(format(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format(f64::NAN), "NaN");
        assert_eq!(format(0.034), "0.034");
        assert_eq!(format(1e300), "1e300");
        assert_eq!(format(-0.0), "-0.0");
        assert_eq!(parse("infinity"), None);
        assert_eq!(parse("0x10"), None);
    }

    proptest! {
        /// Every `f64`, whatever its bits, reads back as itself (NaN as a NaN) and matches the
        /// pattern the API server checks.
        #[test]
        fn every_f64_round_trips(bits in any::<u64>()) {
            let value = f64::from_bits(bits);
            let text = format(value);
            let back = parse(&text).expect("format's output parses");
            prop_assert!(back.to_bits() == value.to_bits() || (back.is_nan() && value.is_nan()), "{value:?} -> {text} -> {back:?}");
            prop_assert!(regex::Regex::new(PATTERN).unwrap().is_match(&text), "{text} fails the pattern");
            prop_assert!(text.len() <= 32);
        }
    }
}
