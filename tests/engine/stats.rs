//! The Mann–Whitney U test against reference values, and its symmetry as a property.
//!
//! Every expected value below was computed with scipy 1.17.1:
//! `scipy.stats.mannwhitneyu(x, y, alternative=..., method="asymptotic", use_continuity=True)`,
//! whose `statistic` is U of `x`.

use bellwether::engine::{MannWhitney, mann_whitney_u};
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
