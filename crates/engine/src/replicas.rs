//! Replica and weight arithmetic.

/// Canary pods for a traffic share: `ceil(replicas * weight / 100)`, at least one so that the
/// canary can be measured before it takes traffic, and never more than `replicas`.
pub fn canary_replicas(replicas: i32, weight: i32) -> i32 {
    let replicas = replicas.max(0);
    let share = (i64::from(replicas) * i64::from(weight.clamp(0, 100)) + 99) / 100;
    (share as i32).max(1).min(replicas.max(1))
}

#[cfg(test)]
mod tests {
    use super::canary_replicas;

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
}
