//! The sequential judgment: an anytime-valid test of the canary's error rate against stable's, on
//! the failed and all requests each revision served in each interval.
//!
//! **Model.** Requests fail independently; the canary's rate is `r` times stable's. Stable's rate
//! may drift from interval to interval as long as the canary's drifts with it. Given `k` failures
//! in an interval in which the canary served `n_c` requests and stable `n_s`, the canary's share of
//! them is Binomial(k, π(r)) with π(r) = r·n_c / (r·n_c + n_s): stable's rate, whatever it was,
//! cancels, and so does the traffic split. An interval with no failures, or with no requests on
//! either side, says nothing about `r` and is skipped.
//!
//! **Failing.** E_fail is the equally weighted average, over alternatives r_j from 1.25× to 20×, of
//! the likelihood ratio of every interval so far under π(r_j) against π(1). The ratio of one
//! interval rises with the canary's share of its failures, and under any r ≤ 1 that share is
//! stochastically no larger than under r = 1, so whatever happened before, each interval multiplies
//! E_fail by a factor whose expected value is at most 1. E_fail starts at 1 and is a nonnegative
//! supermartingale while the canary is no worse than stable, and Ville's inequality bounds the
//! chance that it ever reaches 1/alpha by alpha. So the metric fails as soon as E_fail ≥ 1/alpha,
//! however often it is evaluated and however long the analysis runs.
//!
//! **Passing.** E_pass mirrors it against r ≥ r1 = 1 + maxIncrease, with alternatives below r1: a
//! canary that fails r1 times as often as stable, or more, passes with probability at most alpha.
//! Background analysis never passes; it only watches for a regression.
//!
//! **Window.** A decision may come at any interval. When the window (`count` measurements or the
//! step's duration, after `initialDelay`) ends with neither crossed, the metric is Inconclusive: the
//! canary served too few requests to tell.
//!
//! The bound on false rollbacks also holds when each of a fixed number of requests fails with some
//! probability rather than failures arriving as a Poisson process: given `k`, the canary's share of
//! a canary as good as stable is then hypergeometric, which is less spread than the binomial with
//! the same mean (Hoeffding, 1963), so each interval's expected factor is still at most 1. At the
//! error rates canaries are judged on the two models agree closely, which is what E_pass relies on.
//!
//! Counts come from `increase()` and are rounded to whole requests. `noData` does not apply: an
//! interval without counts is one without evidence, like one without failures, so it can neither
//! pass nor fail the canary; a canary that serves nothing ends Inconclusive.
//!
//! **Bursts.** A lasting regression and a short burst of failures (a restart, a cold cache) can
//! carry the same evidence, and with `breachFor` only the first may fail the canary. Two limits
//! then apply to each interval's factor in E_fail, per alternative: the canary's failures count at
//! most [`TYPICAL_SPREAD`] standard deviations above what the alternative predicts for the
//! interval, and the factor's logarithm is capped at ln(1/alpha) / (n + ½), with n the intervals
//! in breachFor, rounded up. A burst touching n intervals cannot reach 1/alpha on its own, and a
//! regression that shows overwhelmingly in every interval fails at its (n+1)th. Each limit only lowers a factor
//! below the likelihood ratio it replaces (which rises with the canary's failures), so the factor's
//! expected value stays at most 1 and the bound on false rollbacks still holds. E_pass is not
//! limited: a burst is no evidence that the canary is good.
//!
//! The guarantee needs every measurement since the run began, in order: the e-processes are
//! products over all intervals, and restarting them from a later measurement would be a new test
//! with its own chance of a false alarm.

use super::metric::{Judgment, MAX_MEASUREMENTS, MetricPlan, Problem, duration, finite};
use super::verdict::{ErrorRun, Fold, MetricVerdict, Window, fold, format_value};
use bellwether_api::{AnalysisPhase, Counts, HysteresisState, MAX_COUNT, Measurement, Sequential};
use chrono::{DateTime, Duration, Utc};

/// The false-rollback rate when the metric sets no `alpha`.
const DEFAULT_ALPHA: f64 = 0.05;

/// The `alpha` and `maxIncrease` the API accepts.
const ALPHA_RANGE: (f64, f64) = (0.0001, 0.5);
const MAX_INCREASE_RANGE: (f64, f64) = (0.01, 100.0);

/// The regressions E_fail bets on, as multiples of stable's error rate: from one that takes an
/// hour of busy traffic to show to one that shows in a few requests.
const REGRESSIONS: [f64; 7] = [1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0];

/// The error rates E_pass bets on, as fractions of r1, plus stable's own rate (see [`pass_alternatives`]).
const WITHIN: [f64; 5] = [0.8, 0.6, 0.4, 0.2, 0.1];

/// How many standard deviations above an alternative's expectation a canary's failures in one
/// interval count when `breachFor` is set: the rest is more than that alternative can explain.
const TYPICAL_SPREAD: f64 = 2.0;

/// The longest `breachFor`. Each interval of a lasting regression then adds at least
/// 1/(n + ½) of the way to 1/alpha, so one at the shortest interval (1s) still fails well within
/// [`MAX_MEASUREMENTS`].
const MAX_BREACH_FOR_MINUTES: i64 = 10;

/// The most alternatives either e-process bets on.
const MOST: usize = REGRESSIONS.len();

/// A mixture of likelihood ratios of alternative rate ratios against one null ratio, kept as logs
/// because the products over many intervals overflow. Fixed arrays, because the judge goes over
/// every interval since the run began each time it is asked.
struct Evidence {
    null: f64,
    len: usize,
    alternatives: [f64; MOST],
    /// ln(r_j / null), the same in every interval.
    log_ratios: [f64; MOST],
    /// ln of each alternative's likelihood ratio over the intervals so far.
    log_likelihoods: [f64; MOST],
    /// The largest of them. The mean of the ratios never exceeds the largest, so below a bound this
    /// settles a comparison without the exponentials.
    max: f64,
    /// The burst limits of `breachFor`, for E_fail.
    limits: Option<Limits>,
}

/// Limits on one interval's factor, so that a burst cannot fail the canary alone.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// The most the log of one interval's likelihood ratio may add.
    log_cap: f64,
}

impl Limits {
    /// The limits for a regression that must last `intervals` measurements to reach `log_bound`.
    fn new(intervals: usize, log_bound: f64) -> Self {
        Self { log_cap: log_bound / (intervals as f64 + 0.5) }
    }
}

impl Evidence {
    fn new(null: f64, alternatives: &[f64], limits: Option<Limits>) -> Self {
        let mut evidence = Self {
            null,
            len: alternatives.len(),
            alternatives: [0.0; MOST],
            log_ratios: [0.0; MOST],
            log_likelihoods: [0.0; MOST],
            max: 0.0,
            limits,
        };
        for (i, &r) in alternatives.iter().enumerate() {
            evidence.alternatives[i] = r;
            evidence.log_ratios[i] = (r / null).ln();
        }
        evidence
    }

    /// Adds one interval: `canary` of `failures` failures, with `ratio` = n_c / n_s.
    ///
    /// With π(r) = rρ / (1 + rρ), the log likelihood ratio of the interval is
    /// e_c·ln(r / r0) − k·(ln(1 + rρ) − ln(1 + r0ρ)): one logarithm per alternative.
    fn add(&mut self, canary: f64, failures: f64, ratio: f64) {
        let null = (self.null * ratio).ln_1p();
        self.max = f64::NEG_INFINITY;
        for i in 0..self.len {
            let alternative = self.alternatives[i];
            let spread = (alternative * ratio).ln_1p() - null;
            let step = match self.limits {
                None => canary * self.log_ratios[i] - failures * spread,
                Some(limits) => {
                    let share = alternative * ratio / (1.0 + alternative * ratio);
                    let expected = failures * share;
                    let typical = expected + TYPICAL_SPREAD * (expected * (1.0 - share)).sqrt();
                    (canary.min(typical) * self.log_ratios[i] - failures * spread).min(limits.log_cap)
                }
            };
            let log_likelihood = self.log_likelihoods[i] + step;
            self.log_likelihoods[i] = log_likelihood;
            if log_likelihood > self.max {
                self.max = log_likelihood;
            }
        }
    }

    /// ln E: the log of the mean of the likelihood ratios.
    fn log_value(&self) -> f64 {
        let mut sum = 0.0;
        for i in 0..self.len {
            sum += (self.log_likelihoods[i] - self.max).exp();
        }
        self.max + sum.ln() - (self.len as f64).ln()
    }

    fn at_least(&self, log_bound: f64) -> bool {
        self.max >= log_bound && self.log_value() >= log_bound
    }

    fn above(&self, log_bound: f64) -> bool {
        self.max > log_bound && self.log_value() > log_bound
    }
}

/// r1 times each of [`WITHIN`], and stable's own rate, 1, unless one of them is already within 5% of
/// it: a canary exactly as good as stable is the case a rollout most hopes to pass quickly.
fn pass_alternatives(r1: f64) -> Vec<f64> {
    let mut alternatives: Vec<f64> = WITHIN.iter().map(|f| f * r1).collect();
    if r1 > 1.0 && alternatives.iter().all(|r| (r - 1.0).abs() > 0.05) {
        alternatives.push(1.0);
    }
    alternatives
}

/// Whole requests, as `increase()` extrapolates counters to fractions; `None` for counts that are
/// not counts of requests: not finite, negative, or beyond [`MAX_COUNT`].
fn whole(counts: &Counts) -> Option<[u64; 4]> {
    let Counts { canary_errors, canary_requests, stable_errors, stable_requests } = *counts;
    let all = [canary_errors, canary_requests, stable_errors, stable_requests];
    // The comparisons are false for NaN, so it is refused too.
    if !all.iter().all(|v| (0.0..=MAX_COUNT).contains(v)) {
        return None;
    }
    Some(all.map(|v| v.round() as u64))
}

/// The settings of one sequential metric.
struct Rules<'a> {
    name: &'a str,
    log_bound: f64,
    /// 1/alpha and r1, as messages show them.
    bound: String,
    r1: String,
    first_at: DateTime<Utc>,
    window: Window,
    /// Half the metric's interval, in milliseconds.
    half_interval: i64,
}

/// Failed and all requests of each revision over the counted intervals.
#[derive(Default)]
struct Totals {
    canary_errors: u64,
    canary_requests: u64,
    stable_errors: u64,
    stable_requests: u64,
}

struct State<'a> {
    rules: Rules<'a>,
    fail: Evidence,
    pass: Option<Evidence>,
    totals: Totals,
    /// Measurements that were not errors, toward a `count` window.
    measured: u32,
    /// Measurements whose counts were used.
    counted: u32,
    /// When the last counted measurement was taken, in milliseconds.
    last_counted: Option<i64>,
    errors: ErrorRun,
    state: HysteresisState,
    since: Option<DateTime<Utc>>,
    verdict: Option<(AnalysisPhase, String)>,
}

/// A sequential metric's settings, checked.
#[derive(Debug)]
pub(crate) struct Settings<'a> {
    sequential: &'a Sequential,
    /// How long a regression must last before it may fail the canary, when `breachFor` is set.
    breach_for: Option<Duration>,
}

/// Checks a sequential metric's settings.
pub(crate) fn resolve<'a>(sequential: &'a Sequential, problems: &mut Vec<Problem>) -> Settings<'a> {
    finite(
        &[("sequential.alpha", sequential.alpha), ("sequential.maxIncrease", Some(sequential.max_increase))],
        problems,
    );
    const FIELD: &str = "sequential.breachFor";
    let breach_for = duration(sequential.breach_for.as_ref(), FIELD, problems);
    if breach_for.is_some_and(|d| d > Duration::minutes(MAX_BREACH_FOR_MINUTES)) {
        let message = format!(
            "{} is longer than the most, {MAX_BREACH_FOR_MINUTES}m: a lasting regression must be able to fail the \
             canary within the analysis",
            sequential.breach_for.as_ref().map(ToString::to_string).unwrap_or_default()
        );
        problems.push(Problem::new(FIELD, message));
    }
    Settings { sequential, breach_for }
}

impl Judgment for Settings<'_> {
    fn judge(
        &self,
        plan: &MetricPlan<'_>,
        measurements: &[Measurement],
        started_at: DateTime<Utc>,
    ) -> MetricVerdict {
        let sequential = self.sequential;
        let metric = plan.metric;
        let alpha = sequential.alpha.unwrap_or(DEFAULT_ALPHA);
        let in_range = |v: f64, (min, max): (f64, f64)| (min..=max).contains(&v);
        if !in_range(alpha, ALPHA_RANGE) || !in_range(sequential.max_increase, MAX_INCREASE_RANGE) {
            let message = format!(
                "{}: sequential needs alpha in {}..{} and maxIncrease in {}..{}, not {alpha} and {}",
                metric.name,
                ALPHA_RANGE.0,
                ALPHA_RANGE.1,
                MAX_INCREASE_RANGE.0,
                MAX_INCREASE_RANGE.1,
                sequential.max_increase
            );
            return MetricVerdict::unjudgeable(metric, message);
        }
        let window = plan.window;
        let r1 = 1.0 + sequential.max_increase;
        let log_bound = -alpha.ln();
        let limits = self.breach_for.map(|d| Limits::new(plan.intervals(d), log_bound));
        let state = State {
            rules: Rules {
                name: &metric.name,
                log_bound,
                bound: format_value(1.0 / alpha),
                r1: format_value(r1),
                first_at: plan.first_counted_at(started_at),
                window,
                half_interval: plan.interval.num_milliseconds() / 2,
            },
            fail: Evidence::new(1.0, &REGRESSIONS, limits),
            pass: (window != Window::Unbounded).then(|| Evidence::new(r1, &pass_alternatives(r1), None)),
            totals: Totals::default(),
            measured: 0,
            counted: 0,
            last_counted: None,
            errors: ErrorRun::new(plan.error_limit),
            state: HysteresisState::Healthy,
            since: None,
            verdict: None,
        };
        fold(plan.metric, plan.first_counted_at(started_at), state, measurements)
    }

    /// Every measurement since the run started, since the e-processes are products over all of
    /// them; a metric that runs past [`MAX_MEASUREMENTS`] ends as an Error.
    fn needs(&self, _plan: &MetricPlan<'_>) -> usize {
        MAX_MEASUREMENTS
    }

    /// A regression must last `breachFor` before it may fail the canary.
    fn settling(&self) -> Duration {
        self.breach_for.unwrap_or_else(Duration::zero)
    }
}

impl Fold<'_> for State<'_> {
    fn observe(&mut self, measurement: &Measurement) -> Option<(AnalysisPhase, String)> {
        self.count(measurement);
        self.verdict.take()
    }

    /// The message of a metric still running.
    fn progress(&self) -> String {
        let rules = &self.rules;
        let name = rules.name;
        if let Some(message) = self.errors.progress(name) {
            return message;
        }
        if self.counted == 0 {
            return format!("{name}: no counts yet");
        }
        format!("{name}: {}", self.evidence())
    }

    fn state(&self) -> (HysteresisState, Option<DateTime<Utc>>) {
        (self.state, self.since)
    }

    fn errors(&self) -> i32 {
        self.errors.count
    }
}

impl State<'_> {
    fn count(&mut self, measurement: &Measurement) {
        let at = measurement.at;
        // Counts that are not counts (a hand-edited status, or a provider that did not check them)
        // are a failed measurement, never evidence either way.
        let refused;
        let measurement = match &measurement.counts {
            Some(counts) if measurement.error.is_none() && whole(counts).is_none() => {
                refused = Measurement {
                    error: Some(format!(
                        "counts {counts:?} are not counts of requests: each must be a finite number from 0 to \
                         2^53"
                    )),
                    ..measurement.clone()
                };
                &refused
            }
            _ => measurement,
        };
        match self.errors.record(self.rules.name, measurement) {
            Err(message) => {
                self.verdict = Some((AnalysisPhase::Error, message));
                return;
            }
            Ok(false) => return,
            Ok(true) => {}
        }
        self.measured += 1;
        // Each measurement counts the requests of the `interval` before it. One taken less than
        // half an interval after the last counted one (a retry, a restart) mostly counts the same
        // requests again, and counting a failure twice is evidence the guarantee does not cover.
        let millis = at.timestamp_millis();
        let overlaps = self.last_counted.is_some_and(|last| millis - last < self.rules.half_interval);
        if let Some([canary_errors, canary_requests, stable_errors, stable_requests]) =
            measurement.counts.as_ref().and_then(whole).filter(|_| !overlaps)
        {
            self.last_counted = Some(millis);
            self.counted += 1;
            self.totals.canary_errors = self.totals.canary_errors.saturating_add(canary_errors);
            self.totals.canary_requests = self.totals.canary_requests.saturating_add(canary_requests);
            self.totals.stable_errors = self.totals.stable_errors.saturating_add(stable_errors);
            self.totals.stable_requests = self.totals.stable_requests.saturating_add(stable_requests);
            let failures = canary_errors.saturating_add(stable_errors);
            if failures > 0 && canary_requests > 0 && stable_requests > 0 {
                let ratio = canary_requests as f64 / stable_requests as f64;
                let (canary, failures) = (canary_errors as f64, failures as f64);
                self.fail.add(canary, failures, ratio);
                if let Some(pass) = &mut self.pass {
                    pass.add(canary, failures, ratio);
                }
                self.step_state(at);
                if self.verdict.is_some() {
                    return;
                }
            }
        }
        let rules = &self.rules;
        let complete = match rules.window {
            Window::Count(n) => self.measured >= n,
            Window::Duration(d) => at - rules.first_at >= d,
            Window::Unbounded => false,
        };
        if complete {
            let message = if self.counted == 0 {
                format!("{}: no counts in {} measurements", rules.name, self.measured)
            } else {
                format!(
                    "{}: not enough evidence either way in {} canary requests over {}: {}",
                    rules.name,
                    grouped(self.totals.canary_requests),
                    rules.window.describe(),
                    self.evidence()
                )
            };
            self.verdict = Some((AnalysisPhase::Inconclusive, message));
        }
    }

    /// Fails or passes once the evidence reaches 1/alpha; otherwise Breaching while the evidence
    /// of a regression is above 1, so that a status shows a canary trending towards a rollback.
    fn step_state(&mut self, at: DateTime<Utc>) {
        let rules = &self.rules;
        let bound = &rules.bound;
        if self.fail.at_least(rules.log_bound) {
            self.state = HysteresisState::Failed;
            self.since = Some(at);
            let message = format!(
                "{}: {}; evidence of a regression {} ≥ {bound} = 1/alpha",
                rules.name,
                self.totals.describe(),
                format_evidence(self.fail.log_value())
            );
            self.verdict = Some((AnalysisPhase::Failed, message));
            return;
        }
        let state = if self.fail.above(0.0) { HysteresisState::Breaching } else { HysteresisState::Healthy };
        if state != self.state {
            self.state = state;
            self.since = Some(at);
        }
        if let Some(pass) = self.pass.as_ref().filter(|pass| pass.at_least(rules.log_bound)) {
            let message = format!(
                "{}: {}; evidence it is within {}× of stable {} ≥ {bound} = 1/alpha",
                rules.name,
                self.totals.describe(),
                rules.r1,
                format_evidence(pass.log_value())
            );
            self.verdict = Some((AnalysisPhase::Successful, message));
        }
    }

    /// The counts and both e-values, against the bound each must reach.
    fn evidence(&self) -> String {
        let rules = &self.rules;
        let bound = &rules.bound;
        let fail = format!(
            "{}; evidence of a regression {} (fails at {bound})",
            self.totals.describe(),
            format_evidence(self.fail.log_value())
        );
        match &self.pass {
            Some(pass) => format!(
                "{fail}, evidence it is within {}× of stable {} (passes at {bound})",
                rules.r1,
                format_evidence(pass.log_value())
            ),
            None => fail,
        }
    }
}

impl Totals {
    /// `canary fails 2.4× as often as stable (31 errors in 12,000 requests vs 260 in 228,000)`.
    fn describe(&self) -> String {
        let counts = format!(
            "{} errors in {} requests vs {} in {}",
            grouped(self.canary_errors),
            grouped(self.canary_requests),
            grouped(self.stable_errors),
            grouped(self.stable_requests)
        );
        match (self.canary_errors, self.stable_errors) {
            _ if self.canary_requests == 0 => format!("no canary requests ({counts})"),
            (0, 0) => format!("neither revision failed ({counts})"),
            (0, _) => format!("canary has not failed ({counts})"),
            (_, 0) => format!("canary fails, stable does not ({counts})"),
            (canary, stable) if self.stable_requests > 0 => {
                let ratio = (canary as f64 / self.canary_requests as f64)
                    / (stable as f64 / self.stable_requests as f64);
                format!("canary fails {}× as often as stable ({counts})", significant(ratio))
            }
            _ => format!("no stable requests ({counts})"),
        }
    }
}

/// `12,000`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.char_indices() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Two significant digits below 10 (`2.4`, `0.93`, `1.0`), whole numbers above (`27`, `1,250`).
fn significant(x: f64) -> String {
    if x >= 9.95 {
        return grouped(x.round() as u64);
    }
    if x <= 0.0 {
        return "0".into();
    }
    let decimals = (1 - x.log10().floor() as i32).clamp(1, 12) as usize;
    format!("{x:.decimals$}")
}

/// An e-value from its logarithm: `0.42`, `3.1`, `27`, `4.1e9`, or `<0.01`.
fn format_evidence(log_e: f64) -> String {
    let log10 = log_e / std::f64::consts::LN_10;
    if log10 >= 6.0 {
        // Rounded first, so that 9.96e6 reads 1.0e7.
        let tenths = (10f64.powf(log10.fract()) * 10.0).round();
        let (tenths, exponent) =
            if tenths >= 100.0 { (10.0, log10.trunc() + 1.0) } else { (tenths, log10.trunc()) };
        format!("{:.1}e{exponent}", tenths / 10.0)
    } else if log10 < -2.0 {
        "<0.01".into()
    } else {
        significant(log_e.exp())
    }
}
