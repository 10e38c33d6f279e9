//! A per-IP token bucket: the rate limit of the auth endpoints (password login, token
//! refresh, the login alias, install), which answer 429 past it.
//!
//! Each client address has a bucket of `burst` tokens, refilled at `per_minute / 60` tokens
//! a second; a request takes one, or is refused with the time until one is back. IPv6
//! addresses share a bucket per /64 (one host commonly holds a whole /64), IPv4 addresses
//! have one each. At most `RATE_LIMIT_ADDRESSES_MAX` buckets are kept: when full, full
//! (idle) buckets are dropped, and if none is idle the new address is refused too, so the
//! table cannot grow without bound. A `burst` of 0 turns the limit off.
//!
//! Thread safety: one mutex around the table, held for a lookup.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Default bucket size of the auth rate limit (requests in a burst).
pub const AUTH_RATE_LIMIT_BURST_DEFAULT: u32 = 20;
/// Default refill of the auth rate limit, in requests per minute.
pub const AUTH_RATE_LIMIT_PER_MINUTE_DEFAULT: u32 = 30;
/// Most addresses whose buckets are kept.
pub const RATE_LIMIT_ADDRESSES_MAX: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A per-address token bucket.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    addresses_max: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    limited: AtomicU64,
}

impl RateLimiter {
    /// Buckets of `burst` requests refilled at `per_minute`; `burst` 0 is no limit.
    pub fn new(burst: u32, per_minute: u32) -> RateLimiter {
        RateLimiter::with_capacity(burst, per_minute, RATE_LIMIT_ADDRESSES_MAX)
    }

    fn with_capacity(burst: u32, per_minute: u32, addresses_max: usize) -> RateLimiter {
        RateLimiter {
            burst: f64::from(burst),
            per_second: f64::from(per_minute) / 60.0,
            addresses_max,
            buckets: Mutex::new(HashMap::new()),
            limited: AtomicU64::new(0),
        }
    }

    /// Takes a token for `ip` (an unknown address shares one bucket) at `now`; `Err` with
    /// the time until the next token if there is none.
    pub fn check(&self, ip: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        if self.burst == 0.0 {
            return Ok(());
        }
        let key = ip.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), bucket_key);
        let mut buckets = self.buckets.lock();
        if !buckets.contains_key(&key) && buckets.len() >= self.addresses_max {
            buckets.retain(|_, bucket| self.refilled(*bucket, now) < self.burst);
            if buckets.len() >= self.addresses_max {
                self.limited.fetch_add(1, Ordering::Relaxed);
                return Err(Duration::from_secs(1));
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: self.burst, at: now });
        let tokens = self.refilled(*bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket { tokens: tokens - 1.0, at: now };
            return Ok(());
        }
        *bucket = Bucket { tokens, at: now };
        self.limited.fetch_add(1, Ordering::Relaxed);
        let wait_seconds =
            if self.per_second > 0.0 { (1.0 - tokens) / self.per_second } else { 3600.0 };
        Err(Duration::from_secs_f64(wait_seconds.min(3600.0)))
    }

    /// Requests refused so far.
    pub fn limited(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }
}

/// The bucket of an address: itself for IPv4 (and IPv4-mapped IPv6), its /64 for IPv6.
fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let segments = v6.segments();
                IpAddr::V6(Ipv6Addr::new(
                    segments[0],
                    segments[1],
                    segments[2],
                    segments[3],
                    0,
                    0,
                    0,
                    0,
                ))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn a_burst_then_the_refill_rate_per_address() {
        let limiter = RateLimiter::new(3, 60); // one a second
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(ip("10.0.0.1"), start).is_ok());
        }
        let wait = limiter.check(ip("10.0.0.1"), start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1), "the 4th of a burst of 3 waits a token");
        assert!(limiter.check(ip("10.0.0.2"), start).is_ok(), "other addresses are apart");
        let later = start + Duration::from_millis(999);
        assert!(limiter.check(ip("10.0.0.1"), later).is_err());
        let later = start + Duration::from_secs(1);
        assert!(limiter.check(ip("10.0.0.1"), later).is_ok(), "one token a second");
        assert!(limiter.check(ip("10.0.0.1"), later).is_err());
        assert_eq!(limiter.limited(), 3);
        let off = RateLimiter::new(0, 0);
        assert!((0..1000).all(|_| off.check(ip("10.0.0.1"), start).is_ok()), "0 is no limit");
    }

    #[test]
    fn ipv6_shares_a_bucket_per_64_and_the_address_table_is_bounded() {
        let limiter = RateLimiter::new(1, 60);
        let now = Instant::now();
        assert!(limiter.check(ip("2001:db8:1:2::1"), now).is_ok());
        assert!(limiter.check(ip("2001:db8:1:2:ffff::9"), now).is_err(), "same /64");
        assert!(limiter.check(ip("2001:db8:1:3::1"), now).is_ok(), "another /64");
        assert!(limiter.check(ip("::ffff:10.0.0.1"), now).is_ok());
        assert!(limiter.check(ip("10.0.0.1"), now).is_err(), "IPv4-mapped is the IPv4 address");

        let table = RateLimiter::with_capacity(1, 60, 2);
        assert!(table.check(ip("10.0.0.1"), now).is_ok());
        assert!(table.check(ip("10.0.0.2"), now).is_ok());
        assert!(table.check(ip("10.0.0.3"), now).is_err(), "full of busy buckets");
        let idle = now + Duration::from_secs(1); // both buckets refilled: dropped
        assert!(table.check(ip("10.0.0.3"), idle).is_ok());
        assert_eq!(table.buckets.lock().len(), 1);
    }
}
