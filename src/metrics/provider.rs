//! The seam every metric provider plugs into: which provider a metric names, what it queries, what
//! its Secrets are, and how its errors are worded. A new provider adds its module, one arm here and
//! one in [`super::providers::Providers::measure`]; a provider that runs queries implements
//! [`super::source::Source`].

use super::datadog::{API_KEY_HEADER, APPLICATION_KEY_HEADER};
use super::error::ProviderKind;
use super::measure::RenderError;
use crate::api::template::{self, TemplateError, Vars};
use crate::api::{self, DEFAULT_DATADOG_ADDRESS, HeaderFromSecret, Metric};
use std::borrow::Cow;

/// The provider a metric measures through.
#[derive(Debug, Clone, Copy)]
pub enum Provider<'m> {
    Prometheus(&'m api::PrometheusProvider),
    Web(&'m api::WebProvider),
    InfluxDb(&'m api::InfluxDbProvider),
    Datadog(&'m api::DatadogProvider),
    Job(&'m api::JobProvider),
}

impl<'m> Provider<'m> {
    /// The one provider `metric` sets. None, or more than one, is an error: the API server's rule and
    /// the engine's validation refuse both, so only an object written around them has either.
    pub fn of(metric: &'m Metric) -> Result<Self, RenderError> {
        let provider = &metric.provider;
        let set: Vec<Self> = [
            provider.prometheus.as_ref().map(Self::Prometheus),
            provider.web.as_ref().map(Self::Web),
            provider.influxdb.as_ref().map(Self::InfluxDb),
            provider.datadog.as_ref().map(Self::Datadog),
            provider.job.as_ref().map(Self::Job),
        ]
        .into_iter()
        .flatten()
        .collect();
        match set.as_slice() {
            [] => Err(RenderError::NoProvider),
            [one] => Ok(*one),
            several => {
                let kinds: Vec<String> = several.iter().map(|p| p.kind().to_string()).collect();
                Err(RenderError::Field {
                    field: "provider",
                    reason: format!("sets {}; a metric measures through one provider", kinds.join(" and ")),
                })
            }
        }
    }

    pub fn kind(self) -> ProviderKind {
        match self {
            Self::Prometheus(_) => ProviderKind::Prometheus,
            Self::Web(_) => ProviderKind::Web,
            Self::InfluxDb(_) => ProviderKind::InfluxDb,
            Self::Datadog(_) => ProviderKind::Datadog,
            Self::Job(_) => ProviderKind::Job,
        }
    }

    /// The field holding the provider's query and its text, for a provider that runs queries.
    pub fn query(self) -> Option<(&'static str, &'m str)> {
        match self {
            Self::Prometheus(prometheus) => Some(("provider.prometheus.query", &prometheus.query)),
            Self::InfluxDb(influxdb) => Some(("provider.influxdb.query", &influxdb.query)),
            Self::Datadog(datadog) => Some(("provider.datadog.query", &datadog.query)),
            Self::Web(_) | Self::Job(_) => None,
        }
    }

    /// `query`, a template in the provider's query language, with `vars` substituted as that
    /// language needs them escaped.
    pub fn render(self, query: &str, vars: &Vars) -> Result<String, TemplateError> {
        match self {
            Self::Datadog(_) => template::render_datadog(query, vars),
            Self::InfluxDb(_) => template::render_influxql(query, vars),
            Self::Prometheus(_) | Self::Web(_) | Self::Job(_) => template::render(query, vars),
        }
    }

    /// Where the provider's requests go, as written.
    pub fn address(self) -> &'m str {
        match self {
            Self::Prometheus(prometheus) => &prometheus.address,
            Self::Web(web) => &web.url,
            Self::InfluxDb(influxdb) => &influxdb.address,
            Self::Datadog(datadog) => datadog.address.as_deref().unwrap_or(DEFAULT_DATADOG_ADDRESS),
            Self::Job(_) => "the Kubernetes API server",
        }
    }

    /// The extra headers the provider sends, whose values are read from Secrets: a Datadog metric's
    /// keys among them.
    pub fn headers(self) -> Cow<'m, [HeaderFromSecret]> {
        match self {
            Self::Prometheus(prometheus) => Cow::Borrowed(&prometheus.headers),
            Self::Web(web) => Cow::Borrowed(&web.headers),
            Self::Datadog(datadog) => Cow::Owned(
                [(API_KEY_HEADER, &datadog.api_key), (APPLICATION_KEY_HEADER, &datadog.application_key)]
                    .map(|(name, key)| HeaderFromSecret {
                        name: name.to_owned(),
                        value: None,
                        value_from: Some(key.clone()),
                    })
                    .into(),
            ),
            Self::InfluxDb(influxdb) => Cow::Borrowed(&influxdb.headers),
            Self::Job(_) => Cow::Borrowed(&[]),
        }
    }

    /// The provider's `auth`, which Prometheus and InfluxDB have; a web endpoint takes its credentials as
    /// headers, Datadog its keys, and a Job reads its own.
    pub fn auth(self) -> Option<&'m api::PrometheusAuth> {
        match self {
            Self::Prometheus(prometheus) => prometheus.auth.as_ref(),
            Self::InfluxDb(influxdb) => influxdb.auth.as_ref(),
            Self::Web(_) | Self::Datadog(_) | Self::Job(_) => None,
        }
    }
}
