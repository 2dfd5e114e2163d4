//! The Mann–Whitney U test, for judges that compare the canary's measurements with stable's.
//!
//! It uses the normal approximation with tie and continuity correction, as
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
