//! The threshold judgment: each measurement against fixed bounds, with hysteresis.
//!
//! Each measurement is a **breach** (outside `threshold`), **clear** (inside the stricter
//! `recover` bounds, which default to the threshold) or **marginal** (in between). A Healthy metric
//! turns Breaching on a breach; a breach that lasts `breachFor` fails it. From Breaching, only clear
//! measurements held for `recoverFor` make it Healthy again; marginal ones keep it where it is.
//!
//! The run succeeds when the metric has been Healthy for a whole success window: the last `count`
//! measurements, or the run's `duration`, never starting before `initialDelay`. The window slides:
//! a metric that breached and recovered must then stay Healthy for a full window. A metric gets
//! twice its window, plus `breachFor` and `recoverFor`, to show one whole Healthy window; after
//! that it is Inconclusive rather than holding the rollout forever.

use super::metric::{Judgment, MetricPlan, Problem, duration, finite};
use super::verdict::{ErrorRun, Fold, MetricVerdict, Window, fold, format_value};
use bellwether_api::{
    AnalysisPhase, Bounds, HysteresisState, Measurement, Metric, NoDataPolicy, Threshold, format_duration,
};
use chrono::{DateTime, Duration, Utc};

/// A threshold metric's settings, resolved.
#[derive(Debug)]
pub(crate) struct Settings<'a> {
    threshold: &'a Threshold,
    recover: Bounds,
    breach_for: Duration,
    recover_for: Duration,
    no_data: NoDataPolicy,
}

/// Resolves and checks a threshold metric's settings.
pub(crate) fn resolve<'a>(
    threshold: &'a Threshold,
    metric: &Metric,
    problems: &mut Vec<Problem>,
) -> Settings<'a> {
    let hysteresis = threshold.hysteresis.as_ref();
    let breach_for =
        duration(hysteresis.and_then(|h| h.breach_for.as_ref()), "threshold.hysteresis.breachFor", problems);
    let recover_for = duration(
        hysteresis.and_then(|h| h.recover_for.as_ref()),
        "threshold.hysteresis.recoverFor",
        problems,
    );
    let recover = hysteresis.and_then(|h| h.recover.clone()).unwrap_or(Bounds { min: None, max: None });
    finite(
        &[
            ("threshold.min", threshold.min),
            ("threshold.max", threshold.max),
            ("threshold.hysteresis.recover.min", recover.min),
            ("threshold.hysteresis.recover.max", recover.max),
        ],
        problems,
    );
    if threshold.min.is_none() && threshold.max.is_none() {
        problems.push(Problem::new("threshold", "needs min, max or both"));
    }
    if let (Some(min), Some(max)) = (threshold.min, threshold.max)
        && min > max
    {
        problems.push(Problem::new("threshold", format!("min {min} exceeds max {max}")));
    }
    Settings {
        threshold,
        recover: Bounds { min: recover.min.or(threshold.min), max: recover.max.or(threshold.max) },
        breach_for: breach_for.unwrap_or_else(Duration::zero),
        recover_for: recover_for.unwrap_or_else(Duration::zero),
        no_data: metric.no_data,
    }
}

impl Judgment for Settings<'_> {
    fn judge(
        &self,
        plan: &MetricPlan<'_>,
        measurements: &[Measurement],
        started_at: DateTime<Utc>,
    ) -> MetricVerdict {
        let state = State {
            rules: Rules {
                name: &plan.metric.name,
                settings: self,
                first_at: plan.first_counted_at(started_at),
                window: plan.window,
                interval: plan.interval,
            },
            state: HysteresisState::Healthy,
            since: None,
            recovering_since: None,
            breach_time: Duration::zero(),
            breach_last: None,
            unbroken: false,
            streak: None,
            judged: 0,
            no_data: 0,
            errors: ErrorRun::new(plan.error_limit),
            last_value: None,
            verdict: None,
        };
        fold(plan.metric, plan.first_counted_at(started_at), state, measurements)
    }

    /// With a success window, the metric is Inconclusive once it has judged
    /// `2 × count + (breachFor + recoverFor) / interval` measurements, or once `2 × duration +
    /// breachFor + recoverFor` has passed since `initialDelay`, at most one measurement per interval
    /// plus the first; until then it looks at every one. In background analysis (no window) it
    /// looks back over one breach and its recovery, `(breachFor + recoverFor) / interval + 1`.
    fn needs(&self, plan: &MetricPlan<'_>) -> usize {
        let grace = self.settling();
        match plan.window {
            Window::Count(n) => (n as usize).saturating_mul(2).saturating_add(plan.intervals(grace)),
            Window::Duration(d) => plan.intervals(d + d + grace) + 1,
            Window::Unbounded => plan.intervals(grace) + 1,
        }
    }

    /// Without a window there is neither a streak nor an exhaustion count to carry, and from
    /// Healthy the hysteresis depends on nothing earlier: a breach starts a new breach.
    fn forgets(&self, plan: &MetricPlan<'_>) -> bool {
        plan.window == Window::Unbounded
    }

    fn settling(&self) -> Duration {
        self.breach_for + self.recover_for
    }
}

/// The settings one fold reads.
struct Rules<'a> {
    name: &'a str,
    settings: &'a Settings<'a>,
    first_at: DateTime<Utc>,
    window: Window,
    interval: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Breach,
    Marginal,
    Clear,
}

/// The running state of the fold over measurements.
struct State<'a> {
    rules: Rules<'a>,
    state: HysteresisState,
    since: Option<DateTime<Utc>>,
    recovering_since: Option<DateTime<Utc>>,
    /// How long the metric has been out of the clear since it turned Breaching: the time up to
    /// each breach or marginal measurement counts, the time up to a clear one does not. So a
    /// breach lasts through marginal values, and a metric that flaps between breach and clear
    /// still adds up, while one failed request now and then in a quiet window does not.
    breach_time: Duration,
    /// The latest measurement judged since the metric turned Breaching.
    breach_last: Option<DateTime<Utc>>,
    /// Whether every measurement since the breach began was itself a breach.
    unbroken: bool,
    /// First and latest measurement of the current run of Healthy measurements, and its length.
    streak: Option<(DateTime<Utc>, DateTime<Utc>, u32)>,
    judged: u32,
    no_data: u32,
    errors: ErrorRun,
    last_value: Option<f64>,
    verdict: Option<(AnalysisPhase, String)>,
}

fn outside(value: f64, min: Option<f64>, max: Option<f64>) -> bool {
    min.is_some_and(|m| value < m) || max.is_some_and(|m| value > m)
}

/// `0.034 > max 0.01`, or `0.2 < min 0.5`.
fn comparison(value: f64, min: Option<f64>, max: Option<f64>) -> String {
    let shown = format_value(value);
    match (min, max) {
        (Some(min), _) if value < min => format!("{shown} < min {min}"),
        (_, Some(max)) if value > max => format!("{shown} > max {max}"),
        (Some(min), Some(max)) => format!("{shown} within {min}..{max}"),
        (Some(min), None) => format!("{shown} >= min {min}"),
        (None, Some(max)) => format!("{shown} <= max {max}"),
        (None, None) => shown,
    }
}

impl Settings<'_> {
    fn classify(&self, value: f64) -> Class {
        if outside(value, self.threshold.min, self.threshold.max) {
            Class::Breach
        } else if outside(value, self.recover.min, self.recover.max) {
            Class::Marginal
        } else {
            Class::Clear
        }
    }
}

impl Fold<'_> for State<'_> {
    fn observe(&mut self, measurement: &Measurement) -> Option<(AnalysisPhase, String)> {
        let at = measurement.at;
        match self.errors.record(self.rules.name, measurement) {
            Err(message) => return Some((AnalysisPhase::Error, message)),
            Ok(false) => return None,
            Ok(true) => {}
        }
        let settings = self.rules.settings;
        let class = match (measurement.value.filter(|v| !v.is_nan()), settings.no_data) {
            (Some(value), _) => {
                self.last_value = Some(value);
                Some(settings.classify(value))
            }
            (None, NoDataPolicy::Ignore) => return None,
            (None, NoDataPolicy::Fail) => Some(Class::Breach),
            (None, NoDataPolicy::Pass) => Some(Class::Clear),
            (None, NoDataPolicy::Inconclusive) => None,
        };
        self.judged += 1;
        match class {
            Some(class) => self.step_hysteresis(class, at),
            None => {
                self.no_data += 1;
                self.recovering_since = None;
                self.streak = None;
            }
        }
        if self.verdict.is_none() {
            self.check_window(at);
        }
        self.verdict.take()
    }

    /// The message of a metric still running.
    fn progress(&self) -> String {
        let rules = &self.rules;
        let settings = rules.settings;
        let name = rules.name;
        if let Some(message) = self.errors.progress(name) {
            return message;
        }
        let since = self.since.map(|s| format!(" since {}", s.format("%H:%M:%S"))).unwrap_or_default();
        match self.state {
            HysteresisState::Breaching => match self.recovering_since {
                Some(_) => format!(
                    "{name}: recovering, {} (recoverFor {})",
                    self.last_value
                        .map(|v| comparison(v, settings.recover.min, settings.recover.max))
                        .unwrap_or_default(),
                    format_duration(settings.recover_for)
                ),
                None => format!(
                    "{name}: breaching{since}, {} (breachFor {})",
                    self.describe_value(),
                    format_duration(settings.breach_for)
                ),
            },
            _ => {
                let healthy = match (rules.window, self.streak) {
                    (Window::Count(n), Some((_, _, len))) => format!("{len}/{n} healthy measurements"),
                    (Window::Count(n), None) => format!("0/{n} healthy measurements"),
                    (Window::Duration(d), Some((first, last, _))) => {
                        format!("healthy for {} of {}", format_duration(last - first), format_duration(d))
                    }
                    (Window::Duration(d), None) => format!("healthy for 0s of {}", format_duration(d)),
                    (Window::Unbounded, _) => "healthy".into(),
                };
                let last = self
                    .last_value
                    .map(|v| {
                        format!(", last {}", comparison(v, settings.threshold.min, settings.threshold.max))
                    })
                    .unwrap_or_default();
                format!("{name}: {healthy}{last}")
            }
        }
    }

    fn state(&self) -> (HysteresisState, Option<DateTime<Utc>>) {
        (self.state, self.since)
    }

    fn errors(&self) -> i32 {
        self.errors.count
    }
}

impl State<'_> {
    fn step_hysteresis(&mut self, class: Class, at: DateTime<Utc>) {
        let settings = self.rules.settings;
        match (self.state, class) {
            (HysteresisState::Healthy, Class::Breach) => {
                self.state = HysteresisState::Breaching;
                self.since = Some(at);
                self.recovering_since = None;
                self.breach_time = Duration::zero();
                self.breach_last = Some(at);
                self.unbroken = true;
            }
            (HysteresisState::Breaching, Class::Breach) => self.recovering_since = None,
            (HysteresisState::Breaching, Class::Marginal) => {
                self.recovering_since = None;
                self.unbroken = false;
            }
            (HysteresisState::Breaching, Class::Clear) => {
                self.unbroken = false;
                let recovering = *self.recovering_since.get_or_insert(at);
                if at - recovering >= settings.recover_for {
                    self.state = HysteresisState::Healthy;
                    self.since = Some(at);
                    self.recovering_since = None;
                }
            }
            _ => {}
        }
        if self.state == HysteresisState::Breaching {
            let last = self.breach_last.replace(at).unwrap_or(at);
            if class != Class::Clear {
                self.breach_time += at - last;
            }
        }
        if self.state == HysteresisState::Breaching
            && class == Class::Breach
            && self.breach_time >= settings.breach_for
        {
            self.state = HysteresisState::Failed;
            let value = self.describe_value();
            let held = format_duration(self.breach_time);
            let total = at - self.since.unwrap_or(at);
            let how = if self.unbroken {
                format!("continuously for {held}")
            } else if self.breach_time == total {
                format!("without recovering for {held}")
            } else {
                format!("without recovering, out of the clear for {held} of {}", format_duration(total))
            };
            let name = self.rules.name;
            let message = if settings.breach_for.is_zero() {
                format!("{name}: {value}")
            } else {
                format!("{name}: {value} {how} (breachFor {})", format_duration(settings.breach_for))
            };
            self.verdict = Some((AnalysisPhase::Failed, message));
            return;
        }
        if self.state == HysteresisState::Healthy {
            self.streak = Some(match self.streak {
                Some((first, _, n)) => (first, at, n + 1),
                None => (at, at, 1),
            });
        } else {
            self.streak = None;
        }
    }

    fn describe_value(&self) -> String {
        let threshold = self.rules.settings.threshold;
        match self.last_value {
            Some(v) => comparison(v, threshold.min, threshold.max),
            None => "no data (noData: fail)".into(),
        }
    }

    /// Success once a whole window was Healthy; Inconclusive once no window can fit any more.
    fn check_window(&mut self, at: DateTime<Utc>) {
        let rules = &self.rules;
        let name = rules.name;
        let threshold = rules.settings.threshold;
        // Room for one breach to fail or recover, then a whole window, twice over.
        let grace = rules.settings.settling();
        let (complete, exhausted) = match (rules.window, self.streak) {
            (Window::Unbounded, _) => (false, false),
            (Window::Count(n), streak) => {
                let interval_ms = rules.interval.num_milliseconds().max(1);
                let grace = (grace.num_milliseconds() + interval_ms - 1) / interval_ms;
                let limit = i64::from(n).saturating_mul(2).saturating_add(grace);
                (streak.is_some_and(|(_, _, len)| len >= n), i64::from(self.judged) >= limit)
            }
            (Window::Duration(d), streak) => (
                streak.is_some_and(|(first, last, _)| last - first >= d),
                at - rules.first_at >= d + d + grace,
            ),
        };
        if complete {
            let last = self.last_value.map(|v| comparison(v, threshold.min, threshold.max));
            let last = last.map(|l| format!(", last {l}")).unwrap_or_default();
            let message = format!("{name}: healthy for {}{last}", rules.window.describe());
            self.verdict = Some((AnalysisPhase::Successful, message));
        } else if self.no_data > 0 && self.no_data == self.judged && self.window_elapsed(at) {
            let message = format!("{name}: no data in {} measurements (noData: inconclusive)", self.no_data);
            self.verdict = Some((AnalysisPhase::Inconclusive, message));
        } else if exhausted {
            let message = format!(
                "{name}: not healthy for a whole window of {} within {} measurements ({} without data)",
                rules.window.describe(),
                self.judged,
                self.no_data
            );
            self.verdict = Some((AnalysisPhase::Inconclusive, message));
        }
    }

    fn window_elapsed(&self, at: DateTime<Utc>) -> bool {
        match self.rules.window {
            Window::Count(n) => self.judged >= n,
            Window::Duration(d) => at - self.rules.first_at >= d,
            Window::Unbounded => false,
        }
    }
}
