//! A rate limit per client address: a token bucket of `per_minute` requests that refills
//! continuously. It bounds what any one source (a misconfigured Alertmanager in a loop, or someone
//! guessing credentials) can make the receiver do; it is checked before authentication.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Above this many tracked sources, buckets that have refilled completely are forgotten: they are
/// indistinguishable from a source never seen.
const TRACKED_SOURCES: usize = 1024;

#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// Allows bursts of `per_minute` requests, and `per_minute` requests a minute after that.
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute: per_minute.max(1), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one request from `source`'s bucket at `now`, or says how long until one is free.
    pub fn admit(&self, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let refill = |bucket: &Bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            (bucket.tokens + elapsed * per_second).min(capacity)
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= TRACKED_SOURCES && !buckets.contains_key(&source) {
            buckets.retain(|_, bucket| refill(bucket) < capacity);
        }
        let bucket = buckets.entry(source).or_insert(Bucket { tokens: capacity, updated: now });
        let tokens = refill(bucket);
        bucket.updated = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            Ok(())
        } else {
            bucket.tokens = tokens;
            Err(Duration::from_secs_f64((1.0 - tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_burst_is_admitted_then_refused_until_the_bucket_refills() {
        let limiter = RateLimiter::new(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.admit(ip(1), start).is_ok());
        }
        let wait = limiter.admit(ip(1), start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(20), "one token comes back every 20s at 3/min");
        assert!(limiter.admit(ip(1), start + Duration::from_secs(19)).is_err());
        assert!(limiter.admit(ip(1), start + Duration::from_secs(40)).is_ok());
    }

    #[test]
    fn each_source_has_its_own_bucket() {
        let limiter = RateLimiter::new(1);
        let now = Instant::now();
        assert!(limiter.admit(ip(1), now).is_ok());
        assert!(limiter.admit(ip(1), now).is_err());
        assert!(limiter.admit(ip(2), now).is_ok());
    }

    #[test]
    fn refilled_sources_are_forgotten_when_many_are_tracked() {
        let limiter = RateLimiter::new(60);
        let start = Instant::now();
        for i in 0..TRACKED_SOURCES {
            let source = IpAddr::from((i as u32).to_be_bytes());
            limiter.admit(source, start).unwrap();
        }
        let later = start + Duration::from_secs(2);
        limiter.admit(ip(255), later).unwrap();
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1, "only the new source is left");
    }
}
