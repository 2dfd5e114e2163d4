//! Two-sample tests and an outlier filter, for judges that compare the canary's measurements with
//! stable's.
//!
//! The Mann–Whitney U test uses the normal approximation with tie and continuity correction, as
//! `scipy.stats.mannwhitneyu(x, y, method="asymptotic", use_continuity=True)` does. statrs has
//! the test too, but its exact method gives wrong p-values when the first sample is the smaller
//! one, and its automatic method enumerates combinations and can take seconds.

use statrs::distribution::{ContinuousCDF, Normal};

/// The result of comparing a sample `x` with a sample `y`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannWhitney {
    /// U of `x`: the pairs `(x[i], y[j])` with `x[i] > y[j]`, a tie counting one half.
    pub u: f64,
    /// U standardised, with ties corrected and the continuity correction taken towards zero:
    /// positive when `x` tends to be the larger, 0 when every value is equal.
    pub z: f64,
    /// p-value against "x and y differ in either direction".
    pub p_two_sided: f64,
    /// p-value against "x tends to be greater than y".
    pub p_greater: f64,
    /// p-value against "x tends to be less than y".
    pub p_less: f64,
}

/// Tests whether `x` and `y` come from the same distribution. `None` when either sample is empty
/// or holds a NaN, which has no rank. When every value is equal there is no evidence of a
/// difference: `z` is 0 and every p-value is 1 (the variance of U is then 0, and dividing by it
/// would give infinities or NaN).
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> Option<MannWhitney> {
    if x.is_empty() || y.is_empty() || x.iter().chain(y).any(|v| v.is_nan()) {
        return None;
    }
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let n = n1 + n2;
    // Values with their sample, in ascending order; equal values get the mean of their ranks.
    let mut all: Vec<(f64, bool)> =
        x.iter().map(|&v| (v, true)).chain(y.iter().map(|&v| (v, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum_x = 0.0;
    let mut tie_term = 0.0;
    let mut start = 0;
    while start < all.len() {
        let end = start + all[start..].iter().take_while(|(v, _)| *v == all[start].0).count();
        let tied = (end - start) as f64;
        let mean_rank = (start + end + 1) as f64 / 2.0;
        rank_sum_x += mean_rank * all[start..end].iter().filter(|(_, from_x)| *from_x).count() as f64;
        tie_term += tied * tied * tied - tied;
        start = end;
    }
    let u = rank_sum_x - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if variance <= 0.0 {
        return Some(MannWhitney { u, z: 0.0, p_two_sided: 1.0, p_greater: 1.0, p_less: 1.0 });
    }
    let sd = variance.sqrt();
    let normal = Normal::standard();
    let tail = |excess: f64| normal.sf((excess - 0.5) / sd).clamp(0.0, 1.0);
    let shift = u - mean;
    Some(MannWhitney {
        u,
        z: shift.signum() * (shift.abs() - 0.5).max(0.0) / sd,
        p_two_sided: (2.0 * tail(shift.abs())).min(1.0),
        p_greater: tail(shift),
        p_less: tail(-shift),
    })
}

/// The two-sample Kolmogorov–Smirnov test of a sample `x` against a sample `y`: the largest distance
/// between their empirical distribution functions.
///
/// p-values come from the limiting Kolmogorov distribution at `sqrt(en) * D`, with the effective size
/// `en = n * m / (n + m)`: `scipy.special.kolmogorov(sqrt(en) * d)`. That is not what
/// `scipy.stats.ks_2samp(x, y, method="asymp")` returns: since scipy 1.5 it evaluates the finite-n
/// one-sample distribution `kstwo.sf(d, round(en))`, which for the sample sizes of a canary analysis
/// is well below the exact two-sample p-value (0.030 against an exact 0.052 for 10 values each at
/// D = 0.6), so it would roll back good canaries more often than the confidence promises. The
/// limiting distribution stays close to the exact value there (0.055) and errs on the side of passing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KolmogorovSmirnov {
    /// The largest distance between the two empirical distribution functions, in either direction.
    pub d: f64,
    /// The largest amount by which `y`'s distribution function exceeds `x`'s: `x` has more of its
    /// values above some point. scipy's statistic for `alternative="less"`.
    pub d_higher: f64,
    /// The largest amount by which `x`'s distribution function exceeds `y`'s: `x` has more of its
    /// values below some point. scipy's statistic for `alternative="greater"`.
    pub d_lower: f64,
    /// p-value of `d` against "x and y come from different distributions".
    pub p_two_sided: f64,
    /// The same distribution evaluated at `d_higher`: evidence that `x` differs from `y` by lying
    /// higher somewhere. It is never below `p_two_sided`, so a judge that only counts one side fails
    /// no more often than the two-sided test would.
    pub p_higher: f64,
    /// The same, at `d_lower`.
    pub p_lower: f64,
}

/// Tests whether `x` and `y` come from the same distribution. `None` when either sample is empty
/// or holds a NaN.
pub fn kolmogorov_smirnov(x: &[f64], y: &[f64]) -> Option<KolmogorovSmirnov> {
    if x.is_empty() || y.is_empty() || x.iter().chain(y).any(|v| v.is_nan()) {
        return None;
    }
    let sorted = |values: &[f64]| {
        let mut values = values.to_vec();
        values.sort_by(f64::total_cmp);
        values
    };
    let (x, y) = (sorted(x), sorted(y));
    let (n, m) = (x.len() as f64, y.len() as f64);
    let (mut i, mut j) = (0, 0);
    let (mut d_higher, mut d_lower) = (0.0_f64, 0.0_f64);
    // The distribution functions only change at sample values; step past every copy of the next
    // value in both samples at once, so that ties across the samples count as no distance.
    while i < x.len() && j < y.len() {
        let next = x[i].min(y[j]);
        while i < x.len() && x[i] == next {
            i += 1;
        }
        while j < y.len() && y[j] == next {
            j += 1;
        }
        let (fx, fy) = (i as f64 / n, j as f64 / m);
        d_higher = d_higher.max(fy - fx);
        d_lower = d_lower.max(fx - fy);
    }
    let d = d_higher.max(d_lower);
    let scale = (n * m / (n + m)).sqrt();
    Some(KolmogorovSmirnov {
        d,
        d_higher,
        d_lower,
        p_two_sided: kolmogorov_sf(scale * d),
        p_higher: kolmogorov_sf(scale * d_higher),
        p_lower: kolmogorov_sf(scale * d_lower),
    })
}

/// `P(K > z)` for the Kolmogorov distribution, as `scipy.special.kolmogorov(z)` computes it.
pub fn kolmogorov_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    if z <= 0.0 {
        return 1.0;
    }
    // Each series converges in a handful of terms on its side of the switch; the alternating one
    // gives the small tail directly, without cancellation in 1 - CDF.
    if z < 1.0 {
        let factor = -std::f64::consts::PI.powi(2) / (8.0 * z * z);
        let cdf: f64 = (1..=20)
            .map(|k: i32| (factor * f64::from((2 * k - 1).pow(2))).exp())
            .take_while(|term| *term > 0.0)
            .sum::<f64>()
            * (2.0 * std::f64::consts::PI).sqrt()
            / z;
        (1.0 - cdf).clamp(0.0, 1.0)
    } else {
        let sum: f64 = (1..=20)
            .map(|k: i32| {
                let sign = if k % 2 == 1 { 1.0 } else { -1.0 };
                sign * (-2.0 * f64::from(k * k) * z * z).exp()
            })
            .sum();
        (2.0 * sum).clamp(0.0, 1.0)
    }
}

/// The values within 1.5 interquartile ranges of the quartiles, `[Q1 - 1.5 IQR, Q3 + 1.5 IQR]`, in
/// their original order, without NaN. Quartiles interpolate linearly between order statistics, as
/// numpy's default does.
pub fn drop_outliers(values: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return Vec::new();
    }
    sorted.sort_by(f64::total_cmp);
    let (q1, q3) = (quantile(&sorted, 0.25), quantile(&sorted, 0.75));
    let iqr = q3 - q1;
    let (low, high) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
    // Written as "not outside" so that a fence that is NaN (quartiles at infinity) drops nothing.
    values.iter().copied().filter(|v| !(v.is_nan() || *v < low || *v > high)).collect()
}

/// The `q` quantile of sorted values, interpolated linearly.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let (below, above) = (sorted[h.floor() as usize], sorted[h.ceil() as usize]);
    if below == above { below } else { below + (h - h.floor()) * (above - below) }
}
