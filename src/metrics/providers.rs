//! A pool of Prometheus providers, InfluxDB clients and Datadog clients, shared by every metric the controller
//! measures at once, and the one client of `web` metrics.
//!
//! Metrics that query the same Prometheus with the same timeout and credentials share one provider,
//! and so one HTTP client and its connections, instead of building a client per measurement; so do
//! metrics that read the same InfluxDB database, or query one Datadog site with the same window,
//! timeout and keys. A provider is kept as long as the pool, so each rotation of a credential adds
//! one.
//!
//! Each server (scheme, host and port) has its own semaphore of `limit_per_provider` permits, and
//! each request to it, a PromQL query or a web metric's, holds one while it runs: at most that many
//! requests hit one server at once, whatever the metric kinds (a compare measurement runs two
//! queries, a sequential one four) and whatever the paths. A request waits for its permit before its
//! timeout starts. Since every server has its own permits, a slow one delays only the metrics that
//! query it, and can never take the slots of the others.

use super::datadog::{DatadogClient, DatadogSettings};
use super::error::{MeasurementError, ProviderKind};
use super::influxdb::InfluxDbClient;
use super::measure::{MetricQueries, query_timeout};
use super::prometheus::{ConfigError, PrometheusProvider, ResolvedAuth};
use super::provider::Provider;
use super::source::Source;
use super::web::{WebClient, WebRequest};
use crate::api::template::Vars;
use crate::api::{self, Measurement, Metric};
use chrono::{DateTime, Utc};
use reqwest::Url;
use reqwest::header::AUTHORIZATION;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Prometheus providers for measuring many metrics concurrently. Clones share the pool.
#[derive(Clone)]
pub struct Providers {
    pool: Arc<Pool>,
}

struct Pool {
    limit: usize,
    /// The URL prefixes web metrics may read; none unless the controller's operator allows some.
    web_allowed: Vec<Url>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    providers: HashMap<ProviderKey, PrometheusProvider>,
    /// InfluxDB clients, by everything each is built from.
    influxdb: HashMap<InfluxDbKey, InfluxDbClient>,
    /// Datadog clients, by everything each is built from.
    datadog: HashMap<(DatadogSettings, ResolvedAuth), DatadogClient>,
    /// Permits by server (scheme, host and port), shared by both providers' requests to it.
    permits: HashMap<String, Arc<Semaphore>>,
    /// The one client of every web metric, built on first use.
    web: Option<WebClient>,
}

/// Everything a provider is built from.
#[derive(PartialEq, Eq, Hash)]
struct ProviderKey {
    address: String,
    timeout: Duration,
    auth: ResolvedAuth,
}

/// Everything an InfluxDB client is built from.
#[derive(PartialEq, Eq, Hash)]
struct InfluxDbKey {
    address: String,
    database: String,
    retention_policy: Option<String>,
    timeout: Duration,
    auth: ResolvedAuth,
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Providers")
            .field("limit_per_provider", &self.pool.limit)
            .field("providers", &self.provider_count())
            .finish_non_exhaustive()
    }
}

impl Providers {
    /// An empty pool that lets at most `limit_per_provider` queries (at least one) run against one
    /// Prometheus address at once.
    pub fn new(limit_per_provider: usize) -> Self {
        Self::with_web_allowed(limit_per_provider, Vec::new())
    }

    /// [`Self::new`], with web metrics allowed to read URLs under `web_allowed`: the same scheme,
    /// host and port, and a path under the prefix's (whole segments). A web metric is a request
    /// the controller makes from inside the cluster on behalf of whoever can write a template, so
    /// no URL is allowed unless the controller's operator names it.
    pub fn with_web_allowed(limit_per_provider: usize, web_allowed: Vec<Url>) -> Self {
        let pool = Pool { limit: limit_per_provider.max(1), web_allowed, state: Mutex::default() };
        Self { pool: Arc::new(pool) }
    }

    /// Measures `metric` at `at`, its queries rendered from `vars` and sent with `auth`.
    ///
    /// A metric that cannot be measured as configured (a query that does not render, an invalid
    /// address or timeout) gives a measurement whose error names the field at fault, like one whose
    /// query failed: to the judge both are measurement errors.
    pub async fn measure(
        &self,
        metric: &Metric,
        vars: &Vars,
        auth: &ResolvedAuth,
        at: DateTime<Utc>,
    ) -> Measurement {
        let failed = |error: String| Measurement { at, error: Some(error), ..Measurement::default() };
        let prometheus = match Provider::of(metric) {
            Ok(Provider::Prometheus(prometheus)) => prometheus,
            Ok(Provider::Web(web)) => {
                return match self.measure_web(metric, web, vars, auth).await {
                    Ok(value) => Measurement { at, value, ..Measurement::default() },
                    Err(error) => failed(error),
                };
            }
            // The AnalysisRun reconciler runs a job metric's Job, over passes; no pool measures one.
            Ok(Provider::Job(_)) => {
                return failed(
                    "provider.job: a Job is run by the AnalysisRun reconciler, not measured here".into(),
                );
            }
            Ok(Provider::InfluxDb(influxdb)) => {
                return match self.prepare_influxdb(metric, influxdb, vars, auth) {
                    Ok((queries, client, permits)) => {
                        queries.measure(&Limited { source: &client, permits: &permits }, at).await
                    }
                    Err(error) => failed(error),
                };
            }
            Ok(Provider::Datadog(datadog)) => {
                return match self.prepare_datadog(metric, datadog, vars, auth) {
                    Ok((queries, client, permits)) => {
                        queries.measure(&Limited { source: &client, permits: &permits }, at).await
                    }
                    Err(error) => failed(error),
                };
            }
            Err(error) => return failed(error.to_string()),
        };
        let (queries, provider, permits) = match self.prepare(metric, prometheus, vars, auth) {
            Ok(prepared) => prepared,
            Err(error) => return failed(error),
        };
        queries.measure(&Limited { source: &provider, permits: &permits }, at).await
    }

    /// One request of a web metric, holding a permit of its endpoint while it runs.
    async fn measure_web(
        &self,
        metric: &Metric,
        web: &api::WebProvider,
        vars: &Vars,
        auth: &ResolvedAuth,
    ) -> Result<Option<f64>, String> {
        let request = WebRequest::render(metric, web, vars).map_err(|error| error.to_string())?;
        if !self.pool.web_allowed.iter().any(|prefix| under(&request.url, prefix)) {
            return Err(format!(
                "provider.web.url: {} is not under a URL prefix this controller allows web metrics to read \
                 (--web-allowed-url-prefix)",
                request.origin()
            ));
        }
        let (client, permits) = {
            let mut state = self.state();
            let client = match &state.web {
                Some(client) => client.clone(),
                None => {
                    let client = WebClient::new().map_err(|error| format!("provider.web: {error}"))?;
                    state.web = Some(client.clone());
                    client
                }
            };
            let permits = self.permits(&mut state, server_key(&request.url));
            (client, permits)
        };
        let _permit = permits.acquire().await.expect("the pool never closes a semaphore");
        client.measure(&request, auth).await.map_err(|error| error.describe(ProviderKind::Web))
    }

    /// How many providers the pool has built: one for each address, timeout and credentials in use
    /// (and database, for InfluxDB; window, for Datadog).
    pub fn provider_count(&self) -> usize {
        let state = self.state();
        state.providers.len() + state.influxdb.len() + state.datadog.len()
    }

    /// The rendered queries, the provider to run them and the permits of its address, or why the
    /// metric cannot be measured.
    fn prepare(
        &self,
        metric: &Metric,
        prometheus: &api::PrometheusProvider,
        vars: &Vars,
        auth: &ResolvedAuth,
    ) -> Result<(MetricQueries, PrometheusProvider, Arc<Semaphore>), String> {
        let queries = MetricQueries::render(metric, vars).map_err(|error| error.to_string())?;
        let timeout = query_timeout(prometheus.timeout.as_ref())
            .map_err(|error| format!("provider.prometheus.timeout: {error}"))?;
        let key = ProviderKey { address: prometheus.address.clone(), timeout, auth: auth.clone() };
        let mut state = self.state();
        let provider = match state.providers.get(&key) {
            Some(provider) => provider.clone(),
            None => {
                let provider = PrometheusProvider::new(&key.address, timeout, auth)
                    .map_err(|error| format!("{}: {error}", config_field(&error)))?;
                state.providers.insert(key, provider.clone());
                provider
            }
        };
        let server = Url::parse(&prometheus.address)
            .map_or_else(|_| prometheus.address.clone(), |url| server_key(&url));
        let permits = self.permits(&mut state, server);
        Ok((queries, provider, permits))
    }

    /// [`Self::prepare`] for an InfluxDB metric: its rendered queries, the client of its database
    /// and the permits of its server.
    fn prepare_influxdb(
        &self,
        metric: &Metric,
        influxdb: &api::InfluxDbProvider,
        vars: &Vars,
        auth: &ResolvedAuth,
    ) -> Result<(MetricQueries, InfluxDbClient, Arc<Semaphore>), String> {
        let queries = MetricQueries::render(metric, vars).map_err(|error| error.to_string())?;
        let timeout = query_timeout(influxdb.timeout.as_ref())
            .map_err(|error| format!("provider.influxdb.timeout: {error}"))?;
        let key = InfluxDbKey {
            address: influxdb.address.clone(),
            database: influxdb.database.clone(),
            retention_policy: influxdb.retention_policy.clone(),
            timeout,
            auth: auth.clone(),
        };
        let mut state = self.state();
        let client = match state.influxdb.get(&key) {
            Some(client) => client.clone(),
            None => {
                let client = InfluxDbClient::new(
                    &key.address,
                    &key.database,
                    key.retention_policy.as_deref(),
                    timeout,
                    auth,
                )
                .map_err(|error| format!("{}: {error}", error.field()))?;
                state.influxdb.insert(key, client.clone());
                client
            }
        };
        let server =
            Url::parse(&influxdb.address).map_or_else(|_| influxdb.address.clone(), |url| server_key(&url));
        let permits = self.permits(&mut state, server);
        Ok((queries, client, permits))
    }

    /// The rendered queries of a Datadog metric, the client to run them and the permits of its
    /// site, or why the metric cannot be measured.
    fn prepare_datadog(
        &self,
        metric: &Metric,
        datadog: &api::DatadogProvider,
        vars: &Vars,
        auth: &ResolvedAuth,
    ) -> Result<(MetricQueries, DatadogClient, Arc<Semaphore>), String> {
        let queries = MetricQueries::render(metric, vars).map_err(|error| error.to_string())?;
        let settings = DatadogSettings::of(datadog).map_err(|error| error.to_string())?;
        let server = server_key(&settings.endpoint);
        let key = (settings, auth.clone());
        let mut state = self.state();
        let client = match state.datadog.get(&key) {
            Some(client) => client.clone(),
            None => {
                let client = DatadogClient::new(key.0.clone(), auth)
                    .map_err(|error| format!("provider.datadog: {error}"))?;
                state.datadog.insert(key, client.clone());
                client
            }
        };
        let permits = self.permits(&mut state, server);
        Ok((queries, client, permits))
    }

    /// The permits of `server`, which every request to it takes.
    fn permits(&self, state: &mut State, server: String) -> Arc<Semaphore> {
        state.permits.entry(server).or_insert_with(|| Arc::new(Semaphore::new(self.pool.limit))).clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The maps stay consistent even if a holder panicked: each change is a single insert.
        self.pool.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A source whose every query holds one of its server's permits while it runs.
struct Limited<'s, S> {
    source: &'s S,
    permits: &'s Semaphore,
}

impl<S: Source + Sync> Source for Limited<'_, S> {
    fn kind(&self) -> ProviderKind {
        self.source.kind()
    }

    async fn instant(&self, query: &str, at: DateTime<Utc>) -> Result<Option<f64>, MeasurementError> {
        let _permit = self.permits.acquire().await.expect("the pool never closes a semaphore");
        self.source.instant(query, at).await
    }
}

/// The server a URL reaches, whose permits its requests take: scheme, host and port, whatever the
/// path, so that metrics of either provider on one server share its limit.
fn server_key(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// Whether `url` is under `prefix`: the same scheme, host and port, and a path that is the
/// prefix's or continues it after a `/`, so that `/api` allows `/api/x` but not `/apiary`.
pub fn under(url: &Url, prefix: &Url) -> bool {
    let (path, base) = (url.path(), prefix.path());
    url.scheme() == prefix.scheme()
        && url.host_str() == prefix.host_str()
        && url.port_or_known_default() == prefix.port_or_known_default()
        && (path == base
            || base.ends_with('/') && path.starts_with(base)
            || path.strip_prefix(base).is_some_and(|rest| rest.starts_with('/')))
}

/// The metric field a provider's configuration error comes from.
fn config_field(error: &ConfigError) -> &'static str {
    match error {
        ConfigError::InvalidAddress { .. } => "provider.prometheus.address",
        ConfigError::InvalidTimeout { .. } => "provider.prometheus.timeout",
        ConfigError::InvalidHeader { name, .. } if name == AUTHORIZATION.as_str() => {
            "provider.prometheus.auth"
        }
        ConfigError::InvalidHeader { .. } => "provider.prometheus.headers",
        ConfigError::HttpClient { .. } => "provider.prometheus",
    }
}

#[cfg(test)]
mod tests {
    use super::{Url, server_key};

    #[test]
    fn requests_to_one_server_share_its_permits_whatever_the_path() {
        let key = |url: &str| server_key(&Url::parse(url).unwrap());
        assert_eq!(
            key("http://prom.monitoring:9090/api/v1/query"),
            key("http://prom.monitoring:9090/slo/a?x=1")
        );
        assert_eq!(key("https://mimir.example.com/prometheus"), key("https://mimir.example.com:443/other"));
        assert_ne!(key("http://prom.monitoring:9090/"), key("http://prom.monitoring:9091/"));
        assert_ne!(key("http://prom.monitoring/"), key("https://prom.monitoring/"));
    }
}
