//! The scenarios: how the canary behaves over time compared with stable, whether its pods start,
//! whether there is traffic and whether the metric source answers.

use super::cluster::PodStartup;
use super::traffic::Behaviour;
use chrono::Duration;

/// What a correct judge does with a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A good canary: promoting it is right, aborting it is a false rollback.
    Promote,
    /// A bad canary: it must be aborted.
    Abort,
    /// No evidence either way: it must not be promoted; aborting or holding are both safe.
    NotPromote,
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Good,
    /// The canary's errors jump to `error_rate` for `lasts`, starting `at` into the canary.
    Spike {
        at: Duration,
        lasts: Duration,
        error_rate: f64,
    },
    /// The canary fails `factor` times as often as stable, from the start.
    Regression {
        factor: f64,
    },
    /// The canary's latencies are `factor` times stable's, from the start.
    LatencyShift {
        factor: f64,
    },
    /// The canary's error rate grows by `per_minute` every minute.
    SlowLeak {
        per_minute: f64,
    },
    /// Nobody calls the service.
    NoTraffic,
    /// The metric source stops answering `at` into the canary.
    SourceDown {
        at: Duration,
    },
    /// The canary alternates between `bad` error rates and good ones, `period` each.
    Flapping {
        period: Duration,
        bad: f64,
    },
    /// The canary's pods never become available.
    CrashLoop,
}

/// One way a release can go.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    name: String,
    kind: Kind,
}

/// The error rate that the bundled templates treat as an SLO breach.
const SLO_ERROR_RATE: f64 = 0.01;

impl Scenario {
    fn new(name: impl Into<String>, kind: Kind) -> Self {
        Self { name: name.into(), kind }
    }

    pub fn good() -> Self {
        Self::new("good", Kind::Good)
    }

    /// 30 seconds of 8% errors five minutes in: shorter than any `breachFor` worth the name.
    pub fn spike() -> Self {
        Self::new(
            "spike",
            Kind::Spike { at: Duration::minutes(5), lasts: Duration::seconds(30), error_rate: 0.08 },
        )
    }

    pub fn regression(factor: f64) -> Self {
        Self::new(format!("regression-{factor}x"), Kind::Regression { factor })
    }

    pub fn latency_shift(factor: f64) -> Self {
        Self::new(format!("latency-{factor}x"), Kind::LatencyShift { factor })
    }

    /// +0.1 percentage points of errors a minute: the SLO line is crossed after 9 minutes.
    pub fn slow_leak() -> Self {
        Self::new("slow-leak", Kind::SlowLeak { per_minute: 0.001 })
    }

    pub fn no_traffic() -> Self {
        Self::new("no-traffic", Kind::NoTraffic)
    }

    /// The metric source goes away three minutes in and does not come back.
    pub fn source_down() -> Self {
        Self::new("source-down", Kind::SourceDown { at: Duration::minutes(3) })
    }

    /// 90 seconds at 2% errors, 90 seconds good, over and over.
    pub fn flapping() -> Self {
        Self::new("flapping", Kind::Flapping { period: Duration::seconds(90), bad: 0.02 })
    }

    pub fn crash_loop() -> Self {
        Self::new("crash-loop", Kind::CrashLoop)
    }

    /// Every scenario, with regressions of several sizes: from a doubled error rate or a p99 50%
    /// higher, which only a comparison with stable can see, to gross ones.
    pub fn corpus() -> Vec<Self> {
        vec![
            Self::good(),
            Self::spike(),
            Self::regression(2.0),
            Self::regression(3.0),
            Self::regression(5.0),
            Self::regression(20.0),
            Self::regression(50.0),
            Self::latency_shift(1.5),
            Self::latency_shift(2.0),
            Self::latency_shift(4.0),
            Self::slow_leak(),
            Self::flapping(),
            Self::crash_loop(),
            Self::no_traffic(),
            Self::source_down(),
        ]
    }

    /// The scenario called `name`; `regression` and `latency` take an optional `-Nx` size.
    pub fn named(name: &str) -> Result<Self, String> {
        let sized = |prefix: &str, default: f64| -> Option<Result<f64, String>> {
            let rest = name.strip_prefix(prefix)?;
            Some(
                match rest.strip_prefix('-').and_then(|r| r.strip_suffix('x')) {
                    None if rest.is_empty() => Ok(default),
                    Some(n) => n.parse().ok().filter(|f: &f64| *f > 0.0).ok_or(()),
                    None => Err(()),
                }
                .map_err(|()| {
                    format!("{name:?}: write {prefix} or {prefix}-<factor>x, for example {prefix}-10x")
                }),
            )
        };
        if let Some(factor) = sized("regression", 20.0) {
            return factor.map(Self::regression);
        }
        if let Some(factor) = sized("latency", 4.0) {
            return factor.map(Self::latency_shift);
        }
        match name {
            "good" => Ok(Self::good()),
            "spike" => Ok(Self::spike()),
            "slow-leak" => Ok(Self::slow_leak()),
            "no-traffic" => Ok(Self::no_traffic()),
            "source-down" => Ok(Self::source_down()),
            "flapping" => Ok(Self::flapping()),
            "crash-loop" => Ok(Self::crash_loop()),
            _ => Err(format!(
                "unknown scenario {name:?}; known: good, spike, regression[-Nx], latency[-Nx], slow-leak, \
                 flapping, crash-loop, no-traffic, source-down"
            )),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn expect(&self) -> Expect {
        match self.kind {
            Kind::Good | Kind::Spike { .. } => Expect::Promote,
            Kind::NoTraffic | Kind::SourceDown { .. } => Expect::NotPromote,
            _ => Expect::Abort,
        }
    }

    /// How long after the canary starts it is bad enough that it should be caught; time to detect
    /// counts from here.
    pub fn onset(&self) -> Option<Duration> {
        match self.kind {
            Kind::Regression { .. } | Kind::LatencyShift { .. } | Kind::Flapping { .. } | Kind::CrashLoop => {
                Some(Duration::zero())
            }
            Kind::SlowLeak { per_minute } => {
                let minutes = (SLO_ERROR_RATE - Behaviour::BASELINE.error_rate) / per_minute;
                Some(Duration::seconds((minutes * 60.0).round() as i64))
            }
            _ => None,
        }
    }

    /// The canary's behaviour `elapsed` after it started.
    pub fn canary(&self, elapsed: Duration) -> Behaviour {
        let base = Behaviour::BASELINE;
        match self.kind {
            Kind::Spike { at, lasts, error_rate } if elapsed >= at && elapsed < at + lasts => {
                Behaviour { error_rate, ..base }
            }
            Kind::Regression { factor } => Behaviour { error_rate: base.error_rate * factor, ..base },
            Kind::LatencyShift { factor } => {
                Behaviour { latency_median: base.latency_median * factor, ..base }
            }
            Kind::SlowLeak { per_minute } => Behaviour {
                error_rate: base.error_rate + per_minute * elapsed.num_milliseconds() as f64 / 60_000.0,
                ..base
            },
            Kind::Flapping { period, bad } => {
                let phase = elapsed.num_milliseconds() / period.num_milliseconds().max(1);
                if phase % 2 == 0 { Behaviour { error_rate: bad, ..base } } else { base }
            }
            _ => base,
        }
    }

    pub fn stable(&self) -> Behaviour {
        Behaviour::BASELINE
    }

    /// The share of the configured request rate that arrives.
    pub fn traffic(&self) -> f64 {
        if self.kind == Kind::NoTraffic { 0.0 } else { 1.0 }
    }

    /// Whether the metric source answers `elapsed` after the canary started.
    pub fn source_up(&self, elapsed: Duration) -> bool {
        !matches!(self.kind, Kind::SourceDown { at } if elapsed >= at)
    }

    /// How the canary's pods start, given how long healthy pods take.
    pub fn canary_startup(&self, ready_after: Duration) -> PodStartup {
        if self.kind == Kind::CrashLoop { PodStartup::Never } else { PodStartup::After(ready_after) }
    }
}
