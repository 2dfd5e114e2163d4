//! A rate limit per client address: a token bucket of `per_minute` requests that refills
//! continuously. It bounds what any one source (a misconfigured Alertmanager in a loop, or someone
//! guessing credentials) can make the receiver do. The receiver keeps one for authenticated
//! requests and a smaller one for the others, so that requests without credentials never use up
//! the requests of a real Alertmanager behind the same address (an ingress, SNAT).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many sources have a bucket of their own, so that the memory a limiter takes is
/// bounded however many addresses send requests. When that many are tracked, buckets that have
/// refilled completely are forgotten first (they are indistinguishable from a source never seen);
/// the sources that still find no room share one overflow bucket.
const TRACKED_SOURCES: usize = 1024;

#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    by_source: HashMap<IpAddr, Bucket>,
    overflow: Bucket,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// Allows bursts of `per_minute` requests, and `per_minute` requests a minute after that.
    pub fn new(per_minute: u32) -> Self {
        let per_minute = per_minute.max(1);
        let overflow = Bucket { tokens: f64::from(per_minute), updated: Instant::now() };
        Self { per_minute, buckets: Mutex::new(Buckets { by_source: HashMap::new(), overflow }) }
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
        let Buckets { by_source, overflow } = &mut *buckets;
        let known = by_source.contains_key(&source);
        if !known && by_source.len() >= TRACKED_SOURCES {
            by_source.retain(|_, bucket| refill(bucket) < capacity);
        }
        let bucket = if known || by_source.len() < TRACKED_SOURCES {
            by_source.entry(source).or_insert(Bucket { tokens: capacity, updated: now })
        } else {
            overflow
        };
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

    fn many(i: usize) -> IpAddr {
        IpAddr::from((u32::try_from(i).unwrap() | 0x0b00_0000).to_be_bytes())
    }

    fn tracked(limiter: &RateLimiter) -> usize {
        limiter.buckets.lock().unwrap().by_source.len()
    }

    /// A limiter of `per_minute` that tracks as many sources as it can, each having sent one
    /// request at the instant returned.
    fn full(per_minute: u32) -> (RateLimiter, Instant) {
        let limiter = RateLimiter::new(per_minute);
        let start = Instant::now();
        for i in 0..TRACKED_SOURCES {
            limiter.admit(many(i), start).unwrap();
        }
        assert_eq!(tracked(&limiter), TRACKED_SOURCES);
        (limiter, start)
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
        let (limiter, start) = full(60);
        let later = start + Duration::from_secs(2);
        limiter.admit(ip(255), later).unwrap();
        assert_eq!(tracked(&limiter), 1, "only the new source is left");
    }

    #[test]
    fn beyond_the_bound_new_sources_share_one_bucket_and_nothing_grows() {
        let (limiter, start) = full(2);
        // No bucket has refilled, so none can be forgotten: newcomers share the overflow bucket.
        assert!(limiter.admit(ip(1), start).is_ok());
        assert!(limiter.admit(ip(2), start).is_ok());
        assert_eq!(limiter.admit(ip(3), start), Err(Duration::from_secs(30)), "the shared bucket is empty");
        assert!(limiter.admit(ip(1), start).is_err(), "and stays shared");
        for i in 0..2 * TRACKED_SOURCES {
            let _ = limiter.admit(many(TRACKED_SOURCES + i), start + Duration::from_millis(1));
        }
        assert_eq!(tracked(&limiter), TRACKED_SOURCES, "the map never grows past its bound");
        // A tracked source still has its own bucket, with the token it left.
        assert!(limiter.admit(many(0), start + Duration::from_millis(1)).is_ok());
        assert!(limiter.admit(many(0), start + Duration::from_millis(1)).is_err());
    }
}
