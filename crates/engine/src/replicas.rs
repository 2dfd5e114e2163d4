//! Replica and weight arithmetic.

/// Canary pods for a traffic share: `ceil(replicas * weight / 100)`, at least one so that the
/// canary can be measured before it takes traffic, and never more than `replicas`.
pub fn canary_replicas(replicas: i32, weight: i32) -> i32 {
    share(replicas, weight).max(1).min(replicas.max(1))
}

/// Pods that carry `weight` percent of the traffic of a rollout of `replicas`:
/// `ceil(replicas * weight / 100)`, zero for no weight.
pub fn share(replicas: i32, weight: i32) -> i32 {
    let share = (i64::from(replicas.max(0)) * i64::from(weight.clamp(0, 100)) + 99) / 100;
    share as i32
}

/// The most weight, in percent, that `available` pods can carry for a rollout of `replicas`: the
/// largest weight whose [`share`] they cover.
pub fn weight_capacity(available: i32, replicas: i32) -> i32 {
    if available >= replicas {
        return 100;
    }
    (i64::from(available.max(0)) * 100 / i64::from(replicas)) as i32
}

#[cfg(test)]
mod tests {
    use super::{canary_replicas, share, weight_capacity};

    #[test]
    fn rounds_up_and_keeps_at_least_one_pod() {
        assert_eq!(canary_replicas(10, 25), 3);
        assert_eq!(canary_replicas(10, 20), 2);
        assert_eq!(canary_replicas(3, 1), 1);
        assert_eq!(canary_replicas(10, 0), 1);
        assert_eq!(canary_replicas(10, 100), 10);
        assert_eq!(canary_replicas(1, 50), 1);
    }

    #[test]
    fn never_exceeds_the_rollout() {
        for replicas in 1..50 {
            for weight in 0..=100 {
                let n = canary_replicas(replicas, weight);
                assert!((1..=replicas).contains(&n), "{replicas} replicas at {weight}% gave {n}");
            }
        }
    }

    #[test]
    fn capacity_is_the_largest_weight_the_pods_cover() {
        assert_eq!(weight_capacity(0, 10), 0);
        assert_eq!(weight_capacity(3, 10), 30);
        assert_eq!(weight_capacity(2, 3), 66);
        assert_eq!(weight_capacity(10, 10), 100);
        assert_eq!(weight_capacity(12, 10), 100);
        assert_eq!(weight_capacity(0, 0), 100);
        for replicas in 1..40 {
            for available in 0..=replicas {
                let capacity = weight_capacity(available, replicas);
                assert!(share(replicas, capacity) <= available, "{available}/{replicas} carry {capacity}%");
                if capacity < 100 {
                    assert!(share(replicas, capacity + 1) > available, "{available}/{replicas} carry more");
                }
            }
        }
    }
}
