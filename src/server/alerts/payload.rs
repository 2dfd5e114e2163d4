//! Alertmanager's webhook payload (version 4), parsed strictly: every field Alertmanager sends must
//! be there with its type, no other field may be, no key may repeat, and nothing may follow the
//! document. A payload that does not fit is refused whole, so an Alertmanager upgrade that changes
//! the payload shows up as refused requests (`bellwether_alert_webhooks_total{result="malformed"}`)
//! instead of alerts that are silently misread.

use chrono::{DateTime, Utc};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The payload version this receiver reads.
pub const VERSION: &str = "4";

/// One webhook request: a group of alerts that share a route.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Webhook {
    pub version: String,
    pub group_key: String,
    /// How many alerts Alertmanager left out because of the receiver's `max_alerts`.
    pub truncated_alerts: u64,
    pub status: Status,
    pub receiver: String,
    pub group_labels: Labels,
    pub common_labels: Labels,
    pub common_annotations: Labels,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<Alert>,
}

#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Alert {
    pub status: Status,
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: DateTime<Utc>,
    /// The zero time (year 1) while the alert fires with no known end.
    pub ends_at: DateTime<Utc>,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's hash of the labels: the alert's identity.
    pub fingerprint: String,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

/// A label (or annotation) set in which no name appears twice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels(pub BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Unique;
        impl<'de> Visitor<'de> for Unique {
            type Value = Labels;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of string values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
                let mut labels = BTreeMap::new();
                while let Some((name, value)) = map.next_entry::<String, String>()? {
                    if labels.contains_key(&name) {
                        return Err(serde::de::Error::custom(format!("label {name:?} appears twice")));
                    }
                    labels.insert(name, value);
                }
                Ok(Labels(labels))
            }
        }
        deserializer.deserialize_map(Unique)
    }
}

/// Why a request body is not a webhook payload this receiver reads.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("not an Alertmanager webhook payload: {0}")]
    Json(String),
    #[error("payload version {0:?} is not supported; this receiver reads version {VERSION}")]
    Version(String),
    #[error("alert {index} has fingerprint {fingerprint:?}; a fingerprint is 1 to 32 hex digits")]
    Fingerprint { index: usize, fingerprint: String },
}

/// Parses a request body. Trailing data after the document is an error too.
pub fn parse(body: &[u8]) -> Result<Webhook, PayloadError> {
    let webhook: Webhook = serde_json::from_slice(body).map_err(|e| PayloadError::Json(e.to_string()))?;
    if webhook.version != VERSION {
        return Err(PayloadError::Version(webhook.version));
    }
    // The fingerprint becomes part of an annotation key, which allows only a few characters.
    for (index, alert) in webhook.alerts.iter().enumerate() {
        let valid = (1..=32).contains(&alert.fingerprint.len())
            && alert.fingerprint.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return Err(PayloadError::Fingerprint { index, fingerprint: alert.fingerprint.clone() });
        }
    }
    Ok(webhook)
}

impl Alert {
    /// The `alertname` label, or an empty string.
    pub fn name(&self) -> &str {
        self.labels.0.get("alertname").map_or("", String::as_str)
    }

    pub fn is_firing(&self) -> bool {
        self.status == Status::Firing
    }
}
