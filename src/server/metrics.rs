//! The controller's metrics registry, rendered by the `prometheus-client` crate in the Prometheus
//! text exposition format (version 0.0.4).
//!
//! The text format rather than prometheus-client's default, OpenMetrics: Prometheus scrapes both, and
//! in the text format a counter family is named with its `_total` and there is no `# EOF`, which is
//! what the scrapers and scripts reading `/metrics` expect.
//!
//! Each family keeps its series in a [`Series`], a map sorted by label set, rather than in
//! prometheus-client's `Family`, a hash map: the output stays deterministic (families in registration
//! order, series sorted by their label values), and a deleted rollout's series can be found whatever
//! their other labels are.
//!
//! The registry a controller serves, [`Metrics::for_process`], also carries `bellwether_build_info`
//! and, on Linux, the standard `process_*` series (the `process` module).

#[cfg(target_os = "linux")]
mod process;

use crate::api::RolloutPhase;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The content type of [`Metrics::render`]'s output.
pub(super) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Reconciles usually take milliseconds; seconds mean a slow API server or metric provider.
const RECONCILE_BUCKETS: [f64; 13] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Canaries take from a few minutes (a short step list) to hours (long pauses and analyses).
const CANARY_BUCKETS: [f64; 12] =
    [30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0];

// Label sets. Field order is label order, and the derived order sorts series by their label values.

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct RolloutLabels {
    namespace: String,
    rollout: String,
}

impl RolloutLabels {
    fn new(namespace: &str, rollout: &str) -> Self {
        Self { namespace: namespace.to_owned(), rollout: rollout.to_owned() }
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct PhaseLabels {
    #[prometheus(flatten)]
    rollout: RolloutLabels,
    phase: &'static str,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct AbortLabels {
    #[prometheus(flatten)]
    rollout: RolloutLabels,
    reason: String,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct AnalysisLabels {
    namespace: String,
    analysis_run: String,
    metric: String,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ErrorLabels {
    controller: String,
    kind: String,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct NotificationLabels {
    event: String,
    result: String,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct EventLabels {
    event: String,
}

/// One family's series by label set, sorted. Clones share the series: the registry encodes one
/// clone, [`Metrics`] updates another.
#[derive(Debug)]
struct Series<L, M> {
    series: Arc<Mutex<BTreeMap<L, M>>>,
    new_metric: fn() -> M,
}

impl<L, M> Clone for Series<L, M> {
    fn clone(&self) -> Self {
        Self { series: Arc::clone(&self.series), new_metric: self.new_metric }
    }
}

impl<L, M> Series<L, M> {
    fn new(new_metric: fn() -> M) -> Self {
        Self { series: Arc::default(), new_metric }
    }

    /// Metrics are only ever counted or overwritten, so the registry stays meaningful after a
    /// panic elsewhere and a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, BTreeMap<L, M>> {
        self.series.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<L: Ord, M: Clone> Series<L, M> {
    /// The series of `labels`, created if missing. prometheus-client's metrics are handles to a
    /// shared value, so the caller updates it without holding the lock.
    fn get(&self, labels: L) -> M {
        self.lock().entry(labels).or_insert_with(self.new_metric).clone()
    }
}

impl<L, M> EncodeMetric for Series<L, M>
where
    L: EncodeLabelSet,
    M: EncodeMetric + TypedMetric,
{
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, metric) in self.lock().iter() {
            metric.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }

    /// A family without series is left out of the exposition, header included.
    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The handles [`Metrics`] updates; the registry holds clones of each.
#[derive(Debug)]
struct Families {
    rollout_phase: Series<PhaseLabels, Gauge>,
    canary_weight: Series<RolloutLabels, Gauge>,
    promotions: Series<RolloutLabels, Counter>,
    aborts: Series<AbortLabels, Counter>,
    canary_duration: Series<OutcomeLabels, Histogram>,
    analysis_value: Series<AnalysisLabels, FloatGauge>,
    reconcile_duration: Series<ControllerLabels, Histogram>,
    reconcile_errors: Series<ErrorLabels, Counter>,
    alert_webhooks: Series<ResultLabels, Counter>,
    alert_aborts_requested: Series<RolloutLabels, Counter>,
    notifications: Series<NotificationLabels, Counter>,
    notification_retries: Series<EventLabels, Counter>,
}

impl Families {
    /// Every family, registered in the order they are rendered. prometheus-client appends the
    /// help's final period, and a counter's `_total`.
    fn new(registry: &mut Registry) -> Self {
        let families = Self {
            rollout_phase: Series::new(Gauge::default),
            canary_weight: Series::new(Gauge::default),
            promotions: Series::new(Counter::default),
            aborts: Series::new(Counter::default),
            canary_duration: Series::new(|| Histogram::new(CANARY_BUCKETS)),
            analysis_value: Series::new(FloatGauge::default),
            reconcile_duration: Series::new(|| Histogram::new(RECONCILE_BUCKETS)),
            reconcile_errors: Series::new(Counter::default),
            alert_webhooks: Series::new(Counter::default),
            alert_aborts_requested: Series::new(Counter::default),
            notifications: Series::new(Counter::default),
            notification_retries: Series::new(Counter::default),
        };
        registry.register(
            "bellwether_rollout_phase",
            "1 for the rollout's current phase, 0 for the other phases",
            families.rollout_phase.clone(),
        );
        registry.register(
            "bellwether_rollout_canary_weight",
            "Percentage of traffic the rollout's routes send to the canary",
            families.canary_weight.clone(),
        );
        registry.register(
            "bellwether_promotions",
            "Canaries promoted to stable",
            families.promotions.clone(),
        );
        registry.register("bellwether_aborts", "Canaries aborted, by reason", families.aborts.clone());
        registry.register(
            "bellwether_canary_duration_seconds",
            "Time from a canary's start to its promotion or abort",
            families.canary_duration.clone(),
        );
        registry.register(
            "bellwether_analysis_metric_value",
            "Latest measured value of an analysis metric",
            families.analysis_value.clone(),
        );
        registry.register(
            "bellwether_reconcile_duration_seconds",
            "Time one reconcile took",
            families.reconcile_duration.clone(),
        );
        registry.register(
            "bellwether_reconcile_errors",
            "Reconciles that failed, by kind of error",
            families.reconcile_errors.clone(),
        );
        registry.register(
            "bellwether_alert_webhooks",
            "Alertmanager webhook requests received, by how they were answered",
            families.alert_webhooks.clone(),
        );
        registry.register(
            "bellwether_alert_abort_requests",
            "Aborts that firing alerts asked of rollouts",
            families.alert_aborts_requested.clone(),
        );
        registry.register(
            "bellwether_notifications",
            "Notifications by event and result: delivered, failed after every retry, or dropped unsent",
            families.notifications.clone(),
        );
        registry.register(
            "bellwether_notification_retries",
            "Notification deliveries attempted again after a failed attempt",
            families.notification_retries.clone(),
        );
        families
    }
}

#[derive(Debug)]
struct Shared {
    families: Families,
    registry: Registry,
}

/// The controller's metrics. Cheap to clone; every clone updates the same registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    shared: Arc<Shared>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The controller's families, without the series about the process of [`Metrics::for_process`].
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// The registry a controller process serves: the families of [`Metrics::new`], then
    /// `bellwether_build_info` and, on Linux, the standard `process_*` series. Those describe the
    /// running binary rather than the rollouts, and belong in the one registry a process serves;
    /// tests and benches, which build many registries in one process and compare renderings, use
    /// `new`.
    pub fn for_process() -> Self {
        Self::with(|registry| {
            // Info-style: prometheus-client appends `_info` and exports it as a gauge of 1.
            registry.register(
                "bellwether_build",
                "A metric with a constant 1 value labeled by the version of the running controller",
                Info::new([("version", env!("CARGO_PKG_VERSION"))]),
            );
            #[cfg(target_os = "linux")]
            registry.register_collector(Box::new(process::Process::new()));
        })
    }

    /// The families, then what `extend` registers after them.
    fn with(extend: impl FnOnce(&mut Registry)) -> Self {
        let mut registry = Registry::default();
        let families = Families::new(&mut registry);
        extend(&mut registry);
        Self { shared: Arc::new(Shared { families, registry }) }
    }

    fn families(&self) -> &Families {
        &self.shared.families
    }

    /// Sets the rollout's current phase.
    pub fn rollout_phase(&self, namespace: &str, rollout: &str, phase: RolloutPhase) {
        // One lock for the four series, so that a scrape never sees two phases at 1. Each rollout
        // always has one series per phase, so that a query such as
        // `bellwether_rollout_phase{phase="Degraded"} == 1` sees a phase change as a value change
        // rather than a series appearing.
        let family = &self.families().rollout_phase;
        let mut series = family.lock();
        for candidate in RolloutPhase::ALL {
            let labels =
                PhaseLabels { rollout: RolloutLabels::new(namespace, rollout), phase: candidate.as_str() };
            series.entry(labels).or_insert_with(family.new_metric).set(i64::from(candidate == phase));
        }
    }

    /// Sets the percentage of traffic sent to the rollout's canary.
    pub fn canary_weight(&self, namespace: &str, rollout: &str, weight: i32) {
        self.families().canary_weight.get(RolloutLabels::new(namespace, rollout)).set(i64::from(weight));
    }

    /// Removes every series of a deleted rollout, so that the registry holds only live rollouts.
    pub fn forget_rollout(&self, namespace: &str, rollout: &str) {
        let owned = RolloutLabels::new(namespace, rollout);
        let families = self.families();
        families.rollout_phase.lock().retain(|labels, _| labels.rollout != owned);
        families.canary_weight.lock().retain(|labels, _| *labels != owned);
        families.aborts.lock().retain(|labels, _| labels.rollout != owned);
        families.promotions.lock().retain(|labels, _| *labels != owned);
        families.alert_aborts_requested.lock().retain(|labels, _| *labels != owned);
    }

    /// Sets the latest value of an analysis metric; `None` (no value yet, or the metric is no
    /// longer measured) removes the series rather than exporting a stale value.
    pub fn analysis_value(&self, namespace: &str, analysis_run: &str, metric: &str, value: Option<f64>) {
        let labels = AnalysisLabels {
            namespace: namespace.to_owned(),
            analysis_run: analysis_run.to_owned(),
            metric: metric.to_owned(),
        };
        let series = &self.families().analysis_value;
        match value {
            Some(value) => {
                series.get(labels).set(value);
            }
            None => {
                series.lock().remove(&labels);
            }
        }
    }

    /// Removes every series of a deleted AnalysisRun.
    pub fn forget_analysis_run(&self, namespace: &str, analysis_run: &str) {
        self.families()
            .analysis_value
            .lock()
            .retain(|labels, _| !(labels.namespace == namespace && labels.analysis_run == analysis_run));
    }

    /// Records one reconcile by `controller`: how long it took and, if it failed, the kind of error.
    pub fn reconcile(&self, controller: &str, duration: Duration, error_kind: Option<&str>) {
        let families = self.families();
        families
            .reconcile_duration
            .get(ControllerLabels { controller: controller.to_owned() })
            .observe(duration.as_secs_f64());
        if let Some(kind) = error_kind {
            let labels = ErrorLabels { controller: controller.to_owned(), kind: kind.to_owned() };
            families.reconcile_errors.get(labels).inc();
        }
    }

    /// Counts an abort of the rollout's canary.
    pub fn abort(&self, namespace: &str, rollout: &str, reason: &str) {
        let labels =
            AbortLabels { rollout: RolloutLabels::new(namespace, rollout), reason: reason.to_owned() };
        self.families().aborts.get(labels).inc();
    }

    /// Counts a promotion of the rollout's canary.
    pub fn promotion(&self, namespace: &str, rollout: &str) {
        self.families().promotions.get(RolloutLabels::new(namespace, rollout)).inc();
    }

    /// Records how long a finished canary took, from its start to its promotion or abort.
    pub fn canary_finished(&self, outcome: &str, duration: Duration) {
        let labels = OutcomeLabels { outcome: outcome.to_owned() };
        self.families().canary_duration.get(labels).observe(duration.as_secs_f64());
    }

    /// Counts an Alertmanager webhook request by its answer: `accepted`, `unauthorized`,
    /// `malformed`, `too_large`, `rate_limited` or `failed`.
    pub fn alert_webhook(&self, result: &str) {
        self.families().alert_webhooks.get(ResultLabels { result: result.to_owned() }).inc();
    }

    /// Counts an abort request that a firing alert sent to a rollout.
    pub fn alert_abort_requested(&self, namespace: &str, rollout: &str) {
        self.families().alert_aborts_requested.get(RolloutLabels::new(namespace, rollout)).inc();
    }

    /// Counts a notification's end: `delivered`, `failed` or `dropped`.
    pub fn notification(&self, event: &str, result: &str) {
        let labels = NotificationLabels { event: event.to_owned(), result: result.to_owned() };
        self.families().notifications.get(labels).inc();
    }

    /// Counts a notification attempted again.
    pub fn notification_retry(&self, event: &str) {
        self.families().notification_retries.get(EventLabels { event: event.to_owned() }).inc();
    }

    /// Every family with at least one series, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.shared.registry)
            .expect("writing to a String cannot fail, and every family here encodes in the text format");
        out
    }
}
