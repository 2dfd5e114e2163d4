//! The seam every metric provider plugs into: which provider a metric names, what its Secrets are,
//! and how its errors are worded. A new provider adds its module, one arm here and one in
//! [`super::providers::Providers::measure`].

use super::error::ProviderKind;
use super::measure::RenderError;
use crate::api::{self, HeaderFromSecret, Metric};

/// The provider a metric measures through.
#[derive(Debug, Clone, Copy)]
pub enum Provider<'m> {
    Prometheus(&'m api::PrometheusProvider),
    Web(&'m api::WebProvider),
    Job(&'m api::JobProvider),
}

impl<'m> Provider<'m> {
    /// The one provider `metric` sets. None, or more than one, is an error: the API server's rule and
    /// the engine's validation refuse both, so only an object written around them has either.
    pub fn of(metric: &'m Metric) -> Result<Self, RenderError> {
        let provider = &metric.provider;
        match (&provider.prometheus, &provider.web, &provider.job) {
            (Some(prometheus), None, None) => Ok(Self::Prometheus(prometheus)),
            (None, Some(web), None) => Ok(Self::Web(web)),
            (None, None, Some(job)) => Ok(Self::Job(job)),
            (None, None, None) => Err(RenderError::NoProvider),
            _ => Err(RenderError::Field {
                field: "provider",
                reason:
                    "sets more than one of prometheus, web and job; a metric measures through one provider"
                        .into(),
            }),
        }
    }

    /// The provider its measurement errors are worded for; `None` for a job metric, whose errors
    /// are the Kubernetes API server's, quoted as it words them.
    pub fn kind(self) -> Option<ProviderKind> {
        match self {
            Self::Prometheus(_) => Some(ProviderKind::Prometheus),
            Self::Web(_) => Some(ProviderKind::Web),
            Self::Job(_) => None,
        }
    }

    /// The extra headers the provider sends, whose values are read from Secrets; a Job sends none.
    pub fn headers(self) -> &'m [HeaderFromSecret] {
        match self {
            Self::Prometheus(prometheus) => &prometheus.headers,
            Self::Web(web) => &web.headers,
            Self::Job(_) => &[],
        }
    }

    /// The provider's `auth`, which only Prometheus has; a web endpoint takes its credentials as
    /// headers, and a Job reads its own.
    pub fn auth(self) -> Option<&'m api::PrometheusAuth> {
        match self {
            Self::Prometheus(prometheus) => prometheus.auth.as_ref(),
            Self::Web(_) | Self::Job(_) => None,
        }
    }
}
