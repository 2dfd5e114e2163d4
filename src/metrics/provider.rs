//! The seam every metric provider plugs into: which provider a metric names, what it queries, what
//! its Secrets are, and how its errors are worded. A new provider adds its module, one arm here and
//! one in [`super::providers::Providers::measure`]; a provider that runs queries implements
//! [`super::source::Source`].

use super::error::ProviderKind;
use super::measure::RenderError;
use crate::api::template::{self, TemplateError, Vars};
use crate::api::{self, HeaderFromSecret, Metric};

/// The provider a metric measures through.
#[derive(Debug, Clone, Copy)]
pub enum Provider<'m> {
    Prometheus(&'m api::PrometheusProvider),
    Web(&'m api::WebProvider),
    InfluxDb(&'m api::InfluxDbProvider),
}

impl<'m> Provider<'m> {
    /// The one provider `metric` sets. None, or more than one, is an error: the API server's rule and
    /// the engine's validation refuse both, so only an object written around them has either.
    pub fn of(metric: &'m Metric) -> Result<Self, RenderError> {
        let provider = &metric.provider;
        let mut set = [
            provider.prometheus.as_ref().map(Self::Prometheus),
            provider.web.as_ref().map(Self::Web),
            provider.influxdb.as_ref().map(Self::InfluxDb),
        ]
        .into_iter()
        .flatten();
        match (set.next(), set.next()) {
            (Some(one), None) => Ok(one),
            (None, _) => Err(RenderError::NoProvider),
            (Some(_), Some(_)) => Err(RenderError::Field {
                field: "provider",
                reason: "sets more than one of prometheus, web and influxdb; a metric measures through one \
                         provider"
                    .into(),
            }),
        }
    }

    pub fn kind(self) -> ProviderKind {
        match self {
            Self::Prometheus(_) => ProviderKind::Prometheus,
            Self::Web(_) => ProviderKind::Web,
            Self::InfluxDb(_) => ProviderKind::InfluxDb,
        }
    }

    /// The field holding the provider's query and its text, for a provider that runs queries.
    pub fn query(self) -> Option<(&'static str, &'m str)> {
        match self {
            Self::Prometheus(prometheus) => Some(("provider.prometheus.query", &prometheus.query)),
            Self::InfluxDb(influxdb) => Some(("provider.influxdb.query", &influxdb.query)),
            Self::Web(_) => None,
        }
    }

    /// One of the provider's query templates rendered in its query language, every value escaped
    /// for where it lands.
    pub fn render(self, query: &str, vars: &Vars) -> Result<String, TemplateError> {
        match self {
            Self::InfluxDb(_) => template::render_influxql(query, vars),
            Self::Prometheus(_) | Self::Web(_) => template::render(query, vars),
        }
    }

    /// Where the provider's requests go, as written.
    pub fn address(self) -> &'m str {
        match self {
            Self::Prometheus(prometheus) => &prometheus.address,
            Self::Web(web) => &web.url,
            Self::InfluxDb(influxdb) => &influxdb.address,
        }
    }

    /// The extra headers the provider sends, whose values are read from Secrets.
    pub fn headers(self) -> &'m [HeaderFromSecret] {
        match self {
            Self::Prometheus(prometheus) => &prometheus.headers,
            Self::Web(web) => &web.headers,
            Self::InfluxDb(influxdb) => &influxdb.headers,
        }
    }

    /// The provider's `auth`; a web endpoint takes its credentials as headers.
    pub fn auth(self) -> Option<&'m api::PrometheusAuth> {
        match self {
            Self::Prometheus(prometheus) => prometheus.auth.as_ref(),
            Self::InfluxDb(influxdb) => influxdb.auth.as_ref(),
            Self::Web(_) => None,
        }
    }
}
