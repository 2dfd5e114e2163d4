//! Simulated AnalysisRuns: the engine's AnalysisRun core, driven the way the AnalysisRun
//! controller drives it, with each metric judged by a [`Policy`]. Each measurement is taken as the
//! controller takes it, the metric's queries rendered and run through a [`Source`], which here
//! answers from the simulated traffic instead of Prometheus.

use super::policy::Policy;
use super::traffic::Served;
use crate::api::{AnalysisRunSpec, AnalysisRunStatus, Counts, Measurement, Metric};
use crate::engine::{AnalysisRunState, Clock, MetricPlan, assess_with, due, record_with};
use crate::metrics::error::{MeasurementError, ProviderKind};
use crate::metrics::measure::{MetricQueries, spec_vars};
use crate::metrics::provider::Provider;
use crate::metrics::source::Source;
use chrono::{DateTime, Duration, Utc};
use futures::FutureExt;
use regex::Regex;
use std::sync::LazyLock;

/// What a metric's query measures, read from the query's shape. Queries with
/// `histogram_quantile(q, …)` measure a latency quantile; every other query is taken as the
/// share of failed requests. Both use the query's first range (`[2m]`) as their window. InfluxQL is
/// read the same way: `percentile(field, 99)` is the p99 latency, anything else the share of
/// failed requests, over the window of its first `now() - 2m`. A Datadog query measures a latency
/// quantile when it takes a percentile (`p99:…`), and the share of failed requests otherwise, over
/// its rollup's seconds (`.rollup(sum, 60)`, or `{{interval}}`), or its interval without one. A
/// `web` or `job` metric is [`Signal::Unmodelled`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Signal {
    ErrorRatio {
        window: Duration,
    },
    Latency {
        quantile: f64,
        window: Duration,
        /// Seconds to the query's unit: 1000 for a `_milliseconds` histogram not divided back.
        scale: f64,
    },
    /// Requests slower than `bound` seconds: a histogram's count less its `_bucket{le="…"}`, which
    /// a sequential metric counts as it counts failed requests.
    SlowRequests {
        bound: f64,
        window: Duration,
    },
    /// A `web` metric or a `job` metric, named here: the endpoint's answer, or whether the Job
    /// succeeds, has no model in the simulated traffic, so every measurement is no data and the
    /// metric's `noData` policy decides, rather than a guess passing or failing the canary.
    Unmodelled(&'static str),
}

/// The time between a metric's measurements, as its plan resolves it.
fn interval_of(metric: &Metric) -> Duration {
    MetricPlan::new(metric, None).map_or(crate::api::DEFAULT_INTERVAL, |plan| plan.interval)
}

static QUANTILE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"histogram_quantile\s*\(\s*([0-9.]+)").expect("valid regex"));
static RANGE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[(\d+)([smh])\]").expect("valid regex"));
static PER_THOUSAND: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"/\s*1000\b").expect("valid regex"));
static DATADOG_PERCENTILE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[^\w.:])p(\d{1,2}(?:\.\d+)?):").expect("valid regex"));
static DATADOG_BRACES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\{[^}]*\}").expect("valid regex"));
static DATADOG_ROLLUP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\.rollup\(\s*(?:\w+\s*,\s*)?(\d+|\{\{\s*interval\s*\}\})\s*\)").expect("valid regex")
});
static TIMES_THOUSAND: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\*\s*1000\b").expect("valid regex"));
static BUCKET_BOUND: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?s)_bucket\{.*?\ble\s*=\s*"([0-9.]+)""#).expect("valid regex"));
static PERCENTILE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bpercentile\s*\([^,()]+,\s*([0-9.]+)\s*\)").expect("valid regex"));
static SINCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)now\(\)\s*-\s*(\d+)([smh])\b").expect("valid regex"));

/// The longest window the simulation reads: it keeps an hour of traffic, so a longer one reads the
/// same, and a window of thousands of years (which a query may write) must not overflow a time.
const LONGEST_WINDOW: Duration = Duration::days(1);

/// The window a `[2m]` or `now() - 2m` captured, at most [`LONGEST_WINDOW`].
fn window_of(captures: &regex::Captures<'_>) -> Option<Duration> {
    let n: i64 = captures[1].parse().unwrap_or(i64::MAX);
    let window = match &captures[2] {
        "s" => Duration::try_seconds(n),
        "m" => Duration::try_minutes(n),
        _ => Duration::try_hours(n),
    };
    Some(window.unwrap_or(LONGEST_WINDOW).min(LONGEST_WINDOW))
}

impl Signal {
    pub fn of(metric: &Metric) -> Self {
        let provider = Provider::of(metric).ok();
        let Some((_, query)) = provider.and_then(Provider::query) else {
            let what = if let Some(Provider::Job(_)) = provider { "a Job" } else { "a web endpoint" };
            return Self::Unmodelled(what);
        };
        if let Some(Provider::Datadog(_)) = provider {
            return Self::of_datadog(metric, query);
        }
        let influxql = matches!(provider, Some(Provider::InfluxDb(_)));
        let (ranges, quantiles) = if influxql { (&SINCE, &PERCENTILE) } else { (&RANGE, &QUANTILE) };
        let window =
            ranges.captures(query).and_then(|c| window_of(&c)).unwrap_or_else(|| interval_of(metric));
        let in_ms = query.contains("milliseconds");
        if let Some(quantile) = quantiles.captures(query).and_then(|c| c[1].parse::<f64>().ok()) {
            let scale = if in_ms && !PER_THOUSAND.is_match(query) { 1000.0 } else { 1.0 };
            let quantile = if influxql { quantile / 100.0 } else { quantile };
            return Self::Latency { quantile, window, scale };
        }
        if influxql {
            return Self::ErrorRatio { window };
        }
        match BUCKET_BOUND.captures(query).and_then(|c| c[1].parse::<f64>().ok()) {
            Some(bound) => Self::SlowRequests { bound: if in_ms { bound / 1000.0 } else { bound }, window },
            None => Self::ErrorRatio { window },
        }
    }

    /// What a Datadog query measures: see [`Signal`].
    fn of_datadog(metric: &Metric, query: &str) -> Self {
        let window = DATADOG_ROLLUP
            .captures(query)
            .and_then(|c| {
                // `{{interval}}` is the metric's interval; digits too many for a number, the longest.
                let seconds = c[1]
                    .parse::<i64>()
                    .ok()
                    .or_else(|| c[1].starts_with(|c: char| c.is_ascii_digit()).then_some(i64::MAX))?;
                Some(Duration::try_seconds(seconds).unwrap_or(LONGEST_WINDOW).min(LONGEST_WINDOW))
            })
            .unwrap_or_else(|| interval_of(metric));
        // Tags inside braces may look like aggregators (`{zone:p99:x}`); only what is outside counts.
        let outside = DATADOG_BRACES.replace_all(query, "{}");
        match DATADOG_PERCENTILE.captures(&outside).and_then(|c| c[1].parse::<f64>().ok()) {
            Some(percentile) => {
                let scale = if TIMES_THOUSAND.is_match(query) { 1000.0 } else { 1.0 };
                Self::Latency { quantile: percentile / 100.0, window, scale }
            }
            None => Self::ErrorRatio { window },
        }
    }

    /// `error ratio over 2m`, `p99 latency over 2m (ms)`, `requests slower than 0.25s over 30s`.
    pub fn describe(&self) -> String {
        match *self {
            Self::ErrorRatio { window } => {
                format!("error ratio over {}", crate::api::format_duration(window))
            }
            Self::Latency { quantile, window, scale } => format!(
                "p{} latency over {}{}",
                quantile * 100.0,
                crate::api::format_duration(window),
                if scale == 1.0 { " (s)" } else { " (ms)" }
            ),
            Self::SlowRequests { bound, window } => {
                format!("requests slower than {bound}s over {}", crate::api::format_duration(window))
            }
            Self::Unmodelled(what) => format!("{what}, not simulated: no data"),
        }
    }

    /// The requests of a revision the metric counts as bad, and all of them, over `interval`:
    /// failed requests, or slow ones for [`Signal::SlowRequests`].
    fn counts(&self, served: &Served, now: DateTime<Utc>, interval: Duration) -> (f64, f64) {
        match *self {
            Self::SlowRequests { bound, .. } => served.slow_counts(now, interval, bound),
            Self::ErrorRatio { .. } | Self::Latency { .. } => served.counts(now, interval),
            Self::Unmodelled(_) => (0.0, 0.0),
        }
    }

    fn value(&self, served: &Served, now: DateTime<Utc>) -> Option<f64> {
        match *self {
            Self::Latency { quantile, window, scale } => {
                served.latency_quantile(now, window, quantile).map(|v| v * scale)
            }
            Self::ErrorRatio { window } | Self::SlowRequests { window, .. } => {
                let (bad, requests) = self.counts(served, now, window);
                (requests > 0.0).then(|| bad / requests)
            }
            Self::Unmodelled(_) => None,
        }
    }
}

/// What answers a metric's queries in the simulation: the traffic each revision served, read as
/// the metric's [`Signal`] says. A query is answered by the part it plays in the metric: the
/// canary's or stable's value, or its count of failed or of all requests, so that a query that
/// does not tell the revisions apart measures the same for both, as it would in a cluster.
struct Simulated<'a> {
    queries: &'a MetricQueries,
    signal: Signal,
    canary: &'a Served,
    stable: &'a Served,
    interval: Duration,
    /// Where the metric's queries go, named when the simulated source is down.
    address: Option<&'a str>,
    kind: ProviderKind,
}

impl Simulated<'_> {
    fn answer(&self, query: &str, at: DateTime<Utc>) -> Result<Option<f64>, MeasurementError> {
        let Some(address) = self.address else {
            return Ok(self.value(query, at));
        };
        Err(MeasurementError::Unreachable {
            address: address.to_owned(),
            reason: "connection refused (a simulated outage)".into(),
        })
    }

    fn value(&self, query: &str, at: DateTime<Utc>) -> Option<f64> {
        let (signal, interval) = (self.signal, self.interval);
        match self.queries {
            MetricQueries::Threshold(_) => signal.value(self.canary, at),
            MetricQueries::Compare(pair) if query == pair.canary => signal.value(self.canary, at),
            MetricQueries::Compare(_) => signal.value(self.stable, at),
            MetricQueries::Sequential { errors, requests } => {
                let (served, bad) = if query == errors.canary {
                    (self.canary, true)
                } else if query == requests.canary {
                    (self.canary, false)
                } else {
                    (self.stable, query == errors.stable)
                };
                let (failed, all) = signal.counts(served, at, interval);
                Some(if bad { failed } else { all })
            }
        }
    }
}

impl Source for Simulated<'_> {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    fn instant(
        &self,
        query: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<f64>, MeasurementError>> + Send {
        std::future::ready(self.answer(query, at))
    }
}

/// A simulated AnalysisRun.
#[derive(Clone, Debug)]
pub struct AnalysisRun {
    pub name: String,
    pub spec: AnalysisRunSpec,
    pub status: AnalysisRunStatus,
    /// What each metric of the spec measures, in spec order.
    signals: Vec<Signal>,
    /// Each metric's queries, rendered as the controller renders them, in spec order; why not,
    /// which each of its measurements records.
    queries: Vec<Result<MetricQueries, String>>,
    created_at: DateTime<Utc>,
}

impl AnalysisRun {
    /// A run created at `now`, recorded as the AnalysisRun controller first records it.
    pub fn new(name: &str, spec: AnalysisRunSpec, now: DateTime<Utc>, policy: &dyn Policy) -> Self {
        let status = record_with(policy, &spec, None, Vec::new(), Clock::at(now));
        let signals = spec.metrics.iter().map(Signal::of).collect();
        let vars = spec_vars(&spec, "");
        let queries = spec
            .metrics
            .iter()
            .map(|metric| MetricQueries::render(metric, &vars).map_err(|error| error.to_string()))
            .collect();
        Self { name: name.to_string(), spec, status, signals, queries, created_at: now }
    }

    /// Takes every measurement due at `now` and records them. Returns whether anything was measured.
    pub fn measure(
        &mut self,
        now: DateTime<Utc>,
        canary: &Served,
        stable: &Served,
        source_up: bool,
        policy: &dyn Policy,
    ) -> bool {
        let taken: Vec<(String, Measurement)> = due(&self.spec, Some(&self.status), now)
            .into_iter()
            .map(|name| {
                let measurement = self.measure_one(&name, now, canary, stable, source_up);
                (name, measurement)
            })
            .collect();
        if taken.is_empty() {
            return false;
        }
        self.status = record_with(policy, &self.spec, Some(&self.status), taken, Clock::at(now));
        true
    }

    /// Terminates the run, as the controller does when the Rollout no longer wants it.
    pub fn terminate(&mut self, now: DateTime<Utc>, policy: &dyn Policy) {
        self.spec.terminate = true;
        self.status = record_with(policy, &self.spec, Some(&self.status), Vec::new(), Clock::at(now));
    }

    /// What the Rollout engine believes of the run at `now`, as the controller's fetch phase
    /// assesses it.
    pub fn assess(&self, now: DateTime<Utc>, policy: &dyn Policy) -> AnalysisRunState {
        assess_with(
            policy,
            &self.name,
            true,
            &self.spec,
            Some(&self.status),
            Some(self.created_at),
            Clock::at(now),
        )
    }

    /// One measurement of the metric `name`, through its simulated source.
    fn measure_one(
        &self,
        name: &str,
        now: DateTime<Utc>,
        canary: &Served,
        stable: &Served,
        source_up: bool,
    ) -> Measurement {
        let index =
            self.spec.metrics.iter().position(|m| m.name == name).expect("due names a metric of the spec");
        let (metric, signal) = (&self.spec.metrics[index], self.signals[index]);
        if let Signal::Unmodelled(_) = signal {
            return Measurement { at: now, ..Measurement::default() };
        }
        let queries = match &self.queries[index] {
            Ok(queries) => queries,
            Err(error) => {
                return Measurement { at: now, error: Some(error.clone()), ..Measurement::default() };
            }
        };
        let provider = Provider::of(metric).expect("a metric with queries has a provider");
        let source = Simulated {
            queries,
            signal,
            canary,
            stable,
            interval: interval_of(metric),
            address: (!source_up).then(|| provider.address()),
            kind: provider.kind(),
        };
        let mut measurement =
            queries.measure(&source, now).now_or_never().expect("a simulated source answers at once");
        if measurement.error.is_none() {
            // The peer tools the accuracy bench compares judge any metric against stable (Kayenta)
            // or by request counts, whatever the metric's own judgment queries.
            let interval = source.interval;
            measurement.baseline = measurement.baseline.or_else(|| signal.value(stable, now));
            measurement.counts = measurement.counts.or_else(|| {
                let (canary_errors, canary_requests) = signal.counts(canary, now, interval);
                let (stable_errors, stable_requests) = signal.counts(stable, now, interval);
                Some(Counts { canary_errors, canary_requests, stable_errors, stable_requests })
            });
        }
        measurement
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datadog(query: &str, interval: &str) -> Metric {
        serde_json::from_value(serde_json::json!({
            "name": "m",
            "interval": interval,
            "provider": {"datadog": {
                "query": query,
                "apiKey": {"name": "datadog", "key": "api-key"},
                "applicationKey": {"name": "datadog", "key": "app-key"},
            }},
            "threshold": {"max": 1},
        }))
        .unwrap()
    }

    /// A Datadog query is read by its shape: a percentile is latency, in seconds unless multiplied
    /// by 1000, anything else an error ratio; over its rollup's seconds, or its interval.
    #[test]
    fn a_datadog_query_is_read_by_its_shape() {
        let cases = [
            (
                "p99:trace.http.request{version:{{revision}}}.rollup(120)",
                Signal::Latency { quantile: 0.99, window: Duration::minutes(2), scale: 1.0 },
            ),
            (
                "p95:trace.http.request.duration{version:{{revision}}} * 1000",
                Signal::Latency { quantile: 0.95, window: Duration::seconds(30), scale: 1000.0 },
            ),
            (
                "sum:trace.http.request.errors{version:{{revision}}}.as_count().rollup(sum, {{interval}}) / \
                 sum:trace.http.request.hits{version:{{revision}}}.as_count().rollup(sum, {{interval}})",
                Signal::ErrorRatio { window: Duration::seconds(30) },
            ),
            // A tag value that starts with p and digits is no percentile.
            ("sum:errors{zone:p99:x,p99:y}.as_count()", Signal::ErrorRatio { window: Duration::seconds(30) }),
            // A window longer than any time can hold is the longest the simulation reads.
            (
                "sum:errors{a:b}.as_count().rollup(sum, 99999999999999999999)",
                Signal::ErrorRatio { window: LONGEST_WINDOW },
            ),
            (
                "sum:errors{a:b}.as_count().rollup(sum, 9999999999999999)",
                Signal::ErrorRatio { window: LONGEST_WINDOW },
            ),
        ];
        for (query, signal) in cases {
            assert_eq!(Signal::of(&datadog(query, "30s")), signal, "{query}");
        }
    }

    /// A window that would overflow a time, which a template can write, is the longest the
    /// simulation reads rather than a panic.
    #[test]
    fn a_huge_window_is_read_as_the_longest() {
        for query in ["sum(rate(errors[3000000000000h]))", "sum(rate(errors[99999999999999999999s]))"] {
            assert_eq!(
                Signal::of(
                    &serde_json::from_value(serde_json::json!({
                        "name": "m",
                        "provider": {"prometheus": {"address": "http://p", "query": query}},
                        "threshold": {"max": 1},
                    }))
                    .unwrap()
                ),
                Signal::ErrorRatio { window: LONGEST_WINDOW },
                "{query}"
            );
        }
    }

    /// A web endpoint's answer and a Job's outcome have no model in the simulated traffic: the
    /// simulation says so and measures no data, leaving the verdict to the metric's `noData` policy
    /// instead of guessing.
    #[test]
    fn web_and_job_metrics_are_not_simulated_and_measure_no_data() {
        let web =
            serde_json::json!({"web": {"url": "http://slo/api?rev={{revision}}", "jsonPath": "$.burn"}});
        let job =
            serde_json::json!({"job": {"spec": {"template": {"spec": {"containers": [{"name": "t"}]}}}}});
        for (provider, described) in
            [(web, "a web endpoint, not simulated: no data"), (job, "a Job, not simulated: no data")]
        {
            let metric: Metric = serde_json::from_value(serde_json::json!({
                "name": "probe",
                "provider": provider,
                "threshold": {"max": 1},
            }))
            .unwrap();
            let signal = Signal::of(&metric);
            assert!(matches!(signal, Signal::Unmodelled(_)), "{signal:?}");
            assert_eq!(signal.describe(), described);
            let now: DateTime<Utc> = "2026-06-01T12:00:00Z".parse().unwrap();
            let spec: AnalysisRunSpec =
                serde_json::from_value(serde_json::json!({"metrics": [metric], "revision": "r2"})).unwrap();
            let mut run = AnalysisRun::new("run", spec, now, &crate::sim::policy::Bellwether);
            let served = Served::default();
            assert!(run.measure(now, &served, &served, true, &crate::sim::policy::Bellwether));
            assert_eq!(
                run.status.metric_results[0].measurements,
                [Measurement { at: now, ..Measurement::default() }]
            );
        }
    }

    /// Each query is answered by the part it plays, and the peers' policies still get stable's
    /// value and the counts of a threshold metric.
    #[test]
    fn queries_are_answered_by_the_revision_they_name() {
        use super::super::traffic::Behaviour;
        use rand::SeedableRng;
        let now: DateTime<Utc> = "2026-06-01T12:00:00Z".parse().unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (mut canary, mut stable) = (Served::default(), Served::default());
        let failing = Behaviour { error_rate: 1.0, ..Behaviour::BASELINE };
        let healthy = Behaviour { error_rate: 0.0, ..Behaviour::BASELINE };
        canary.serve(&mut rng, now, 100.0, 10.0, failing, 1.0);
        stable.serve(&mut rng, now, 100.0, 10.0, healthy, 1.0);
        let query = |selector: &str| {
            format!(
                "sum(rate(http_requests_total{{{selector}code=~\"5..\"}}[1m])) / sum(rate(http_requests_total{{{selector}}}[1m]))"
            )
        };
        let metric = |name: &str, query: String, judgment: serde_json::Value| {
            let mut metric = serde_json::json!({
                "name": name,
                "count": 5,
                "provider": {"prometheus": {"address": "http://prometheus:9090", "query": query}},
            });
            metric.as_object_mut().unwrap().extend(judgment.as_object().unwrap().clone());
            metric
        };
        let compare = serde_json::json!({"compare": {"confidence": 0.95}});
        let spec: AnalysisRunSpec = serde_json::from_value(serde_json::json!({
            "metrics": [
                metric("threshold", query("revision=\"{{revision}}\","), serde_json::json!({"threshold": {"max": 2.0}})),
                metric("compare", query("revision=\"{{revision}}\","), compare.clone()),
                metric("blind", query(""), compare),
            ],
            "revision": "r2",
            "context": {"rollout": "shop", "stableRevision": "r1", "canaryService": "c", "stableService": "s"},
        }))
        .unwrap();
        let policy = crate::sim::policy::Bellwether;
        let mut run = AnalysisRun::new("run", spec, now, &policy);
        assert!(run.measure(now, &canary, &stable, true, &policy), "{:?}", run.status);
        let latest = |run: &AnalysisRun, name: &str| {
            let result = run.status.metric_results.iter().find(|r| r.name == name).unwrap();
            let measurement = result.measurements.last().unwrap();
            (measurement.value, measurement.baseline, measurement.error.clone())
        };
        assert_eq!(latest(&run, "threshold"), (Some(1.0), Some(0.0), None));
        assert_eq!(latest(&run, "compare"), (Some(1.0), Some(0.0), None));
        assert_eq!(
            latest(&run, "blind"),
            (Some(1.0), Some(1.0), None),
            "one query for both measures one revision"
        );
        let counts = run.status.metric_results[0].measurements[0].counts.unwrap();
        assert_eq!((counts.canary_errors, counts.stable_errors), (counts.canary_requests, 0.0));

        let later = now + Duration::minutes(5);
        assert!(run.measure(later, &canary, &stable, false, &policy), "{:?}", run.status.phase);
        assert_eq!(
            latest(&run, "compare").2.as_deref(),
            Some(
                "query for the canary: Prometheus at http://prometheus:9090 is unreachable: connection refused \
                 (a simulated outage)"
            )
        );
    }

    /// An InfluxQL query is read for its shape as PromQL is: `percentile(…, 99)` is the p99
    /// latency, anything else the error ratio, over the window of its `now() - 2m`.
    #[test]
    fn an_influxql_metric_is_simulated_from_its_shape() {
        let signal = |query: &str, interval: &str| {
            let metric: Metric = serde_json::from_value(serde_json::json!({
                "name": "m",
                "interval": interval,
                "provider": {"influxdb": {"address": "http://i:8086", "database": "app", "query": query}},
                "threshold": {"max": 1},
            }))
            .unwrap();
            Signal::of(&metric)
        };
        assert_eq!(
            signal(
                "SELECT percentile(\"duration_seconds\", 99) FROM \"requests\" WHERE \"revision\" = '{{revision}}' \
                 AND time > now() - 2m",
                "30s"
            ),
            Signal::Latency { quantile: 0.99, window: Duration::minutes(2), scale: 1.0 }
        );
        assert_eq!(
            signal(
                "SELECT PERCENTILE(duration_milliseconds, 95.5) FROM r WHERE time > now() - {{interval}}",
                "30s"
            ),
            Signal::Latency { quantile: 0.955, window: Duration::seconds(30), scale: 1000.0 }
        );
        assert_eq!(
            signal("SELECT mean(\"error_ratio\") FROM r WHERE time > now() - 5m", "1m"),
            Signal::ErrorRatio { window: Duration::minutes(5) }
        );
    }
}
