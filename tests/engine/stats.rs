//! The Mann–Whitney U and Kolmogorov–Smirnov tests against reference values, their symmetry as
//! properties, and the outlier filter.
//!
//! Every Mann–Whitney value below was computed with scipy 1.17.1:
//! `scipy.stats.mannwhitneyu(x, y, alternative=..., method="asymptotic", use_continuity=True)`,
//! whose `statistic` is U of `x`.

use bellwether::engine::{
    KolmogorovSmirnov, MannWhitney, drop_outliers, kolmogorov_sf, kolmogorov_smirnov, mann_whitney_u,
};
use proptest::prelude::*;

/// The p-values scipy gives for (two-sided, greater, less).
fn check(x: &[f64], y: &[f64], u: f64, two_sided: f64, greater: f64, less: f64) -> MannWhitney {
    let result = mann_whitney_u(x, y).expect("both samples have values");
    // statrs' normal tail agrees with scipy's to about ten significant digits.
    let close = |actual: f64, expected: f64| (actual - expected).abs() <= 1e-9 * expected;
    assert_eq!(result.u, u, "U of x");
    assert!(close(result.p_two_sided, two_sided), "two-sided {} != {two_sided}", result.p_two_sided);
    assert!(close(result.p_greater, greater), "greater {} != {greater}", result.p_greater);
    assert!(close(result.p_less, less), "less {} != {less}", result.p_less);
    result
}

#[test]
fn without_ties() {
    let x = [1.1, 2.3, 3.7, 4.2, 5.9, 6.4, 7.8];
    let y = [0.5, 1.9, 2.8, 3.1, 4.4];
    let result = check(&x, &y, 26.0, 0.19387643074206262, 0.09693821537103131, 0.9280740651725732);
    assert!(result.z > 0.0, "x tends to be the larger");
}

#[test]
fn with_many_ties() {
    let x = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 4.0, 5.0];
    let y = [2.0, 2.0, 3.0, 3.0, 3.0, 3.0, 4.0, 5.0, 5.0, 5.0, 6.0];
    let result = check(&x, &y, 35.5, 0.2900751084643918, 0.8720895133256827, 0.1450375542321959);
    assert!(result.z < 0.0, "x tends to be the smaller");
}

#[test]
fn with_unequal_sizes_like_canary_error_rates() {
    let canary = [0.012, 0.015, 0.011, 0.019, 0.014, 0.013, 0.018, 0.016, 0.017, 0.012, 0.02, 0.015];
    let stable = [0.001, 0.0012, 0.0009, 0.014];
    check(&canary, &stable, 43.5, 0.02093315864914694, 0.01046657932457347, 0.9924656572564411);
}

/// The case statrs' exact method gets wrong: the first sample is the smaller one.
#[test]
fn when_x_is_the_smaller_sample() {
    let y: Vec<f64> = (1..=15).map(f64::from).collect();
    check(&[9.0, 11.0, 10.5], &y, 29.0, 0.47674140339702786, 0.23837070169851393, 0.7967717588654853);
    check(&[14.5, 15.5, 16.0], &y, 44.0, 0.01285124018749651, 0.006425620093748255, 0.9954241555736749);
    check(&[0.5, 1.5, 2.5], &y, 3.0, 0.02439024143305404, 0.9910914056202107, 0.01219512071652702);
}

#[test]
fn identical_samples_show_no_difference() {
    let x = [0.1, 0.2, 0.3, 0.4];
    let result = check(&x, &x, 8.0, 1.0, 0.5587899429622483, 0.5587899429622483);
    assert_eq!(result.z, 0.0);
}

#[test]
fn one_value_each() {
    check(&[3.0], &[1.0], 1.0, 1.0, 0.5, 0.9772498680518208);
}

/// Every value tied: U has no variance. scipy divides by zero and lands on p = 1 by clipping;
/// here it is defined: z is 0 and every p-value is exactly 1, with no infinity or NaN.
#[test]
fn all_equal_values_give_p_one() {
    let result = check(&[5.0, 5.0, 5.0], &[5.0, 5.0, 5.0, 5.0], 6.0, 1.0, 1.0, 1.0);
    assert_eq!(result.z, 0.0);
    let zeros = mann_whitney_u(&[0.0; 8], &[0.0; 3]).expect("both samples have values");
    assert_eq!((zeros.z, zeros.p_two_sided, zeros.p_greater, zeros.p_less), (0.0, 1.0, 1.0, 1.0));
}

#[test]
fn no_test_without_values_on_both_sides_or_with_nan() {
    assert_eq!(mann_whitney_u(&[], &[1.0]), None);
    assert_eq!(mann_whitney_u(&[1.0], &[]), None);
    assert_eq!(mann_whitney_u(&[1.0, f64::NAN], &[2.0]), None);
}

#[test]
fn infinities_rank_like_any_other_value() {
    let result = mann_whitney_u(&[f64::INFINITY, 5.0], &[1.0, f64::NEG_INFINITY]).expect("values");
    assert_eq!(result.u, 4.0);
    assert!(result.p_greater < 0.5 && result.p_less > 0.5);
}

fn sample() -> impl Strategy<Value = Vec<f64>> {
    // Few distinct values so that ties are common.
    prop::collection::vec((0u8..12).prop_map(|v| f64::from(v) / 4.0), 1..30)
}

proptest! {
    #[test]
    fn greater_for_x_is_less_for_y(x in sample(), y in sample()) {
        let xy = mann_whitney_u(&x, &y).expect("values");
        let yx = mann_whitney_u(&y, &x).expect("values");
        prop_assert_eq!(xy.p_greater, yx.p_less);
        prop_assert_eq!(xy.p_less, yx.p_greater);
        prop_assert_eq!(xy.p_two_sided, yx.p_two_sided);
        prop_assert_eq!(xy.u + yx.u, (x.len() * y.len()) as f64);
        prop_assert_eq!(xy.z, -yx.z);
    }

    #[test]
    fn p_values_are_probabilities(x in sample(), y in sample()) {
        let result = mann_whitney_u(&x, &y).expect("values");
        for p in [result.p_two_sided, result.p_greater, result.p_less] {
            prop_assert!((0.0..=1.0).contains(&p), "p = {}", p);
        }
        prop_assert!(result.z.is_finite());
        prop_assert!(result.p_two_sided >= result.p_greater.min(result.p_less));
    }
}

/// The Kolmogorov–Smirnov test, with reference values from scipy 1.17.1: each `d` is
/// `scipy.stats.ks_2samp(x, y).statistic` (for `alternative="two-sided"`, `"less"` and `"greater"`:
/// `d`, `d_higher` and `d_lower`), each p-value `scipy.special.kolmogorov(sqrt(n*m/(n+m)) * d)`.
/// `ks_2samp(method="asymp")` itself gives lower two-sided p-values than these (see the test's
/// documentation in the engine), so its p-values are not the reference; its statistics are.
fn check_ks(x: &[f64], y: &[f64], d: [f64; 3], p: [f64; 3]) -> KolmogorovSmirnov {
    let result = kolmogorov_smirnov(x, y).expect("both samples have values");
    let close = |actual: f64, expected: f64| (actual - expected).abs() <= 1e-9 * expected.max(1e-300);
    assert!((result.d - d[0]).abs() < 1e-12, "d {} != {}", result.d, d[0]);
    assert!((result.d_higher - d[1]).abs() < 1e-12, "d_higher {} != {}", result.d_higher, d[1]);
    assert!((result.d_lower - d[2]).abs() < 1e-12, "d_lower {} != {}", result.d_lower, d[2]);
    assert!(close(result.p_two_sided, p[0]), "two-sided {} != {}", result.p_two_sided, p[0]);
    assert!(close(result.p_higher, p[1]), "higher {} != {}", result.p_higher, p[1]);
    assert!(close(result.p_lower, p[2]), "lower {} != {}", result.p_lower, p[2]);
    result
}

#[test]
fn ks_without_ties() {
    let x = [1.1, 2.3, 3.7, 4.2, 5.9, 6.4, 7.8];
    let y = [0.5, 1.9, 2.8, 3.1, 4.4];
    let d = 0.5142857142857143;
    check_ks(&x, &y, [d, d, 0.0], [0.4233642794358528, 0.4233642794358528, 1.0]);
}

#[test]
fn ks_with_ties_across_the_samples() {
    let x = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 4.0, 5.0];
    let y = [2.0, 2.0, 3.0, 3.0, 3.0, 3.0, 4.0, 5.0, 5.0, 5.0, 6.0];
    let d = 0.2525252525252525;
    check_ks(&x, &y, [d, 0.0, d], [0.9104425152930141, 1.0, 0.9104425152930141]);
}

#[test]
fn ks_on_samples_that_do_not_overlap() {
    let canary = [0.31, 0.35, 0.29, 0.4, 0.38, 0.33, 0.36, 0.42, 0.39, 0.37, 0.34, 0.41];
    let stable = [0.2, 0.22, 0.19, 0.25, 0.21, 0.23, 0.18, 0.24, 0.22, 0.2, 0.26, 0.21];
    let p = 1.2288424706656438e-05;
    check_ks(&canary, &stable, [1.0, 1.0, 0.0], [p, p, 1.0]);
}

/// Same median, four times the spread: the gap is as large on both sides.
#[test]
fn ks_sees_a_wider_spread() {
    let canary: Vec<f64> = (0..30).map(|i| 0.6 + 0.8 * f64::from(i) / 29.0).collect();
    let stable: Vec<f64> = (0..30).map(|i| 0.9 + 0.2 * f64::from(i) / 29.0).collect();
    let (d, p) = (0.3666666666666667, 0.03543016467203169);
    check_ks(&canary, &stable, [d, d, d], [p, p, p]);
}

#[test]
fn ks_on_identical_samples_shows_no_difference() {
    let x = [0.1, 0.2, 0.2, 0.3];
    check_ks(&x, &x, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]);
}

#[test]
fn no_ks_test_without_values_on_both_sides_or_with_nan() {
    assert_eq!(kolmogorov_smirnov(&[], &[1.0]), None);
    assert_eq!(kolmogorov_smirnov(&[1.0], &[]), None);
    assert_eq!(kolmogorov_smirnov(&[1.0, f64::NAN], &[2.0]), None);
}

/// `scipy.special.kolmogorov(z)`, on both sides of the switch between its two series.
#[test]
fn kolmogorov_tail_matches_scipy() {
    let reference = [
        (0.05, 1.0),
        (0.2, 0.999999999999495),
        (0.5, 0.9639452436648751),
        (0.9, 0.3927307079406543),
        (0.99, 0.2808738392255489),
        (1.0, 0.26999967167735456),
        (1.2, 0.11224966667072497),
        (1.5, 0.022217962616525127),
        (2.5, 7.453306344157342e-06),
        (5.0, 3.8574996959278356e-22),
    ];
    for (z, expected) in reference {
        let actual = kolmogorov_sf(z);
        assert!((actual - expected).abs() <= 1e-9 * expected, "z = {z}: {actual} != {expected}");
    }
    assert_eq!(kolmogorov_sf(0.0), 1.0);
    assert_eq!(kolmogorov_sf(-1.0), 1.0);
}

/// Expected values from numpy 2 (`np.percentile`'s default linear interpolation) with the
/// 1.5 IQR fences.
#[test]
fn outliers_outside_the_fences_are_dropped() {
    let values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 100.0];
    assert_eq!(drop_outliers(&values), &values[..9]);
    assert_eq!(drop_outliers(&[1.0, 2.0, 3.0, -50.0, 4.0]), [1.0, 2.0, 3.0, 4.0]);
    let mostly_zero = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 7.0];
    assert_eq!(drop_outliers(&mostly_zero), [0.0; 8], "with no spread every non-zero value is an outlier");
    assert_eq!(drop_outliers(&[3.0, f64::NAN, 3.5]), [3.0, 3.5]);
    assert!(drop_outliers(&[]).is_empty());
    let infinite = [1.0, f64::INFINITY, f64::INFINITY, f64::INFINITY];
    assert_eq!(drop_outliers(&infinite), infinite, "infinite quartiles set no fence");
}

proptest! {
    #[test]
    fn ks_higher_for_x_is_lower_for_y(x in sample(), y in sample()) {
        let xy = kolmogorov_smirnov(&x, &y).expect("values");
        let yx = kolmogorov_smirnov(&y, &x).expect("values");
        prop_assert_eq!(xy.d, yx.d);
        prop_assert_eq!(xy.d_higher, yx.d_lower);
        prop_assert_eq!(xy.p_higher, yx.p_lower);
        prop_assert_eq!(xy.p_two_sided, yx.p_two_sided);
        prop_assert!((0.0..=1.0).contains(&xy.p_two_sided));
        prop_assert!(xy.p_higher >= xy.p_two_sided && xy.p_lower >= xy.p_two_sided);
    }
}
