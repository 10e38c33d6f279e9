//! `RateLimiter`: a token bucket that paces the SST writes of flushes and compactions to
//! `Options::rate_limit_bytes_per_sec`. The WAL and every foreground path never ask it.
//!
//! The bucket refills continuously at the rate and holds at most `BURST` worth of bytes (one
//! 10 ms refill period), kept as virtual time: `paid_until` is the moment at which every byte
//! granted so far is paid for. A request is charged at once and may leave the bucket in debt
//! (a request larger than the bucket is never refused or split here); the requester then
//! sleeps until its debt is paid. SST writers split their appends into chunks of about one
//! period's budget (`chunk_bytes`), so a 1 MiB/s limit writes about 10 KiB every 10 ms rather
//! than 256 KiB every quarter second.
//!
//! Priority: a flush (`IoPriority::High`) is charged like anyone else, so compactions back off
//! behind it, but it waits only for its own bytes, not for the debt compactions ran up. Over
//! time the total stays at the rate; at worst both run at once for one chunk each.
//!
//! Thread safety: `Send + Sync`, shared by the flush and compaction threads. The mutex is held
//! only to do the arithmetic, never while sleeping. `close` ends every wait at once and turns
//! the limiter off, so closing a database never waits for a slow limit.
//!
//! Invariants:
//! 1. `paid_until` never moves back, and is never earlier than `now - BURST` after a request:
//!    idle time earns at most one burst of credit.
//! 2. Every byte requested is charged exactly once; a caller at `IoPriority::Low` returns only
//!    when the bucket is out of debt (or the limiter is closed).

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Credit an idle bucket earns: one refill period's worth of bytes.
pub const BURST: Duration = Duration::from_millis(10);
/// Smallest chunk an SST writer appends while limited, in bytes (at very low rates one
/// period's budget would mean a system call every few bytes).
pub const CHUNK_BYTES_MIN: usize = 4 * 1024;
/// Longest single sleep; a waiter checks for `close` at least this often.
const SLEEP_SLICE: Duration = Duration::from_millis(50);

/// Who asks for bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoPriority {
    /// A flush: waits only for its own bytes.
    High,
    /// A compaction: waits behind all debt.
    Low,
}

/// Time as the limiter sees it; tests inject a clock that only moves when told.
pub trait Clock: Send + Sync {
    /// Time since some fixed origin.
    fn now(&self) -> Duration;
    /// Blocks the calling thread for `duration`.
    fn sleep(&self, duration: Duration);
}

/// The real clock.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A token bucket shared by the flush and compaction writers of one database.
pub struct RateLimiter {
    rate_bytes_per_sec: u64,
    clock: Box<dyn Clock>,
    /// When every byte granted so far is paid for (invariant 1).
    paid_until: Mutex<Duration>,
    closed: AtomicBool,
    bytes_requested: AtomicU64,
    wait_micros: AtomicU64,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("rate_bytes_per_sec", &self.rate_bytes_per_sec)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter of `rate_bytes_per_sec` (at least 1) on the real clock.
    pub fn new(rate_bytes_per_sec: u64) -> RateLimiter {
        RateLimiter::with_clock(
            rate_bytes_per_sec,
            Box::new(SystemClock { origin: Instant::now() }),
        )
    }

    /// A limiter on `clock`; it starts with a full bucket.
    pub fn with_clock(rate_bytes_per_sec: u64, clock: Box<dyn Clock>) -> RateLimiter {
        let paid_until = clock.now().saturating_sub(BURST);
        RateLimiter {
            rate_bytes_per_sec: rate_bytes_per_sec.max(1),
            clock,
            paid_until: Mutex::new(paid_until),
            closed: AtomicBool::new(false),
            bytes_requested: AtomicU64::new(0),
            wait_micros: AtomicU64::new(0),
        }
    }

    /// How long `bytes` take at the rate.
    fn cost(&self, bytes: u64) -> Duration {
        let nanos = u128::from(bytes) * 1_000_000_000 / u128::from(self.rate_bytes_per_sec);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// How many bytes a writer should append per request: about one period's budget, at
    /// least `CHUNK_BYTES_MIN`.
    pub fn chunk_bytes(&self) -> usize {
        let per_period = self.rate_bytes_per_sec.saturating_mul(BURST.as_millis() as u64) / 1000;
        usize::try_from(per_period).unwrap_or(usize::MAX).max(CHUNK_BYTES_MIN)
    }

    /// Charges `bytes` and returns how long the caller must wait before writing them.
    fn charge(&self, bytes: u64, priority: IoPriority) -> Duration {
        let now = self.clock.now();
        let cost = self.cost(bytes);
        let mut paid_until = self.paid_until.lock();
        let floor = now.saturating_sub(BURST);
        let start = (*paid_until).max(floor);
        *paid_until = start + cost;
        let end = match priority {
            IoPriority::Low => *paid_until,
            // Only the credit there is now, not the debt of others, delays a flush.
            IoPriority::High => start.min(now) + cost,
        };
        end.saturating_sub(now)
    }

    /// Blocks until `bytes` may be written, charging them to the bucket.
    pub fn request(&self, bytes: usize, priority: IoPriority) {
        if self.closed.load(Ordering::Acquire) || bytes == 0 {
            return;
        }
        let bytes = bytes as u64;
        self.bytes_requested.fetch_add(bytes, Ordering::Relaxed);
        let wait = self.charge(bytes, priority);
        if wait.is_zero() {
            return;
        }
        let began = self.clock.now();
        let deadline = began + wait;
        loop {
            let now = self.clock.now();
            if now >= deadline || self.closed.load(Ordering::Acquire) {
                break;
            }
            self.clock.sleep((deadline - now).min(SLEEP_SLICE));
        }
        let waited = self.clock.now().saturating_sub(began);
        self.wait_micros.fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
    }

    /// Ends every wait and lets every later request through (the database is closing).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Bytes requested so far.
    pub fn bytes_requested(&self) -> u64 {
        self.bytes_requested.load(Ordering::Relaxed)
    }

    /// Total time requesters waited, in microseconds.
    pub fn wait_micros(&self) -> u64 {
        self.wait_micros.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A clock that moves only when slept on or advanced.
    #[derive(Clone, Default)]
    struct FakeClock(Arc<Mutex<Duration>>);

    impl FakeClock {
        fn at(start: Duration) -> FakeClock {
            FakeClock(Arc::new(Mutex::new(start)))
        }

        fn advance(&self, by: Duration) {
            *self.0.lock() += by;
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Duration {
            *self.0.lock()
        }

        fn sleep(&self, duration: Duration) {
            self.advance(duration);
        }
    }

    const START: Duration = Duration::from_secs(100);

    fn limiter(rate: u64) -> (RateLimiter, FakeClock) {
        let clock = FakeClock::at(START);
        (RateLimiter::with_clock(rate, Box::new(clock.clone())), clock)
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn a_full_bucket_grants_one_burst_without_waiting() {
        // 100 kB/s: a burst (10 ms) is 1000 bytes.
        let (limiter, clock) = limiter(100_000);
        limiter.request(1000, IoPriority::Low);
        assert_eq!(clock.now(), START);
        // The bucket is empty now: the next 500 bytes take 5 ms.
        limiter.request(500, IoPriority::Low);
        assert_eq!(clock.now(), START + ms(5));
        assert_eq!(limiter.wait_micros(), 5000);
        assert_eq!(limiter.bytes_requested(), 1500);
    }

    #[test]
    fn a_request_larger_than_the_bucket_goes_into_debt() {
        let (limiter, clock) = limiter(100_000);
        // 11 000 bytes = 110 ms at the rate, of which 10 ms was credit.
        limiter.request(11_000, IoPriority::Low);
        assert_eq!(clock.now(), START + ms(100));
        // Idle time earns at most one burst of credit.
        clock.advance(Duration::from_secs(5));
        limiter.request(3000, IoPriority::Low);
        assert_eq!(clock.now(), START + ms(100) + Duration::from_secs(5) + ms(20));
    }

    #[test]
    fn many_requests_take_their_bytes_over_the_rate() {
        let (limiter, clock) = limiter(1 << 20);
        let chunk = limiter.chunk_bytes();
        assert_eq!(chunk, 10_485, "about one period's budget at 1 MiB/s");
        let total = 8u64 << 20;
        let mut written = 0u64;
        while written < total {
            limiter.request(chunk, IoPriority::Low);
            written += chunk as u64;
        }
        let elapsed = clock.now() - START;
        let expected = limiter.cost(written) - BURST;
        assert!(elapsed.abs_diff(expected) < ms(1), "{elapsed:?} vs {expected:?}");
    }

    #[test]
    fn a_flush_waits_only_for_its_own_bytes_but_compactions_wait_behind_it() {
        let (limiter, clock) = limiter(100_000);
        // A compaction ran the bucket 1 s into debt (and waited it out) ...
        limiter.request(101_000, IoPriority::Low);
        assert_eq!(clock.now(), START + Duration::from_secs(1));
        // ... and charged another second a concurrent waiter has not paid yet.
        assert_eq!(limiter.charge(100_000, IoPriority::Low), Duration::from_secs(1));
        // A flush ignores that debt: 2000 bytes take 20 ms.
        assert_eq!(limiter.charge(2000, IoPriority::High), ms(20));
        // The next compaction request waits for all of it: 1 s + 20 ms + its own 10 ms.
        assert_eq!(limiter.charge(1000, IoPriority::Low), ms(1030));
    }

    #[test]
    fn close_ends_waits_and_turns_the_limiter_off() {
        let (limiter, clock) = limiter(1000);
        limiter.close();
        limiter.request(1 << 30, IoPriority::Low);
        assert_eq!(clock.now(), START);
        assert_eq!(limiter.bytes_requested(), 0);
    }

    #[test]
    fn the_real_clock_waits_at_least_the_expected_time() {
        // 200 kB/s: 60 kB beyond the 2 kB burst need at least 290 ms. Only a lower bound is
        // asserted; a loaded machine may take longer.
        let limiter = RateLimiter::new(200_000);
        let began = Instant::now();
        for _ in 0..30 {
            limiter.request(2000, IoPriority::Low);
        }
        assert!(began.elapsed() >= ms(285), "{:?}", began.elapsed());
        assert!(limiter.wait_micros() >= 285_000, "{}", limiter.wait_micros());
    }
}
