//! Time to live: values that expire, and the clock that says when.
//!
//! `put_with_ttl` writes a version of kind `PutExpiring` whose stored value is the expiry time
//! (`u64` little-endian milliseconds since the Unix epoch) followed by the caller's value. From
//! the moment the clock passes the expiry, every read treats the version as a delete: gets,
//! iterators and transactions stop seeing the key at once, and older versions stay hidden.
//! Compaction rewrites an expired version as a tombstone (dropped at the bottom level like any
//! other), and a background sweep compacts files holding expired versions when nothing else
//! does (`compaction::pick_expired`), using each file's earliest expiry from the manifest.
//!
//! Thread safety: clocks are `Send + Sync`; `ManualClock` uses an atomic.
//!
//! Invariants:
//! 1. A `PutExpiring` value is at least `EXPIRY_HEADER_LEN` bytes (checked when decoded from
//!    disk; shorter ones read as expired).
//! 2. Whether a version is expired depends only on the clock, never on a snapshot's seqno:
//!    expiry is not a write and has no seqno.

use crate::key::ValueKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Size of the expiry time in front of an expiring value, in bytes. DO NOT CHANGE: on-disk
/// format.
pub const EXPIRY_HEADER_LEN: usize = 8;

/// The wall clock that decides expiry, injectable so tests do not sleep.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicU64,
}

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: u64) -> ManualClock {
        ManualClock { now_ms: AtomicU64::new(now_ms) }
    }

    /// Sets the time.
    pub fn set_ms(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::Release);
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now_ms.fetch_add(by.as_millis() as u64, Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Acquire)
    }
}

/// The expiry time of a stored `PutExpiring` value (0, long expired, if it is too short).
pub(crate) fn expiry_of(stored: &[u8]) -> u64 {
    stored
        .get(..EXPIRY_HEADER_LEN)
        .and_then(|bytes| bytes.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// The caller's value of version (`kind`, `stored`) as a read at `now_ms` sees it: `None`
/// for a delete or an expired version.
pub(crate) fn visible_value(kind: ValueKind, stored: &[u8], now_ms: u64) -> Option<&[u8]> {
    match kind {
        ValueKind::Put => Some(stored),
        ValueKind::Delete => None,
        ValueKind::PutExpiring => {
            (expiry_of(stored) > now_ms).then(|| stored.get(EXPIRY_HEADER_LEN..)).flatten()
        }
    }
}

/// The expiry `ttl` from `now_ms`, saturating.
pub(crate) fn expiry_after(now_ms: u64, ttl: Duration) -> u64 {
    now_ms.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiring_value_is_visible_until_its_expiry_only() {
        let mut stored = 1_000u64.to_le_bytes().to_vec();
        stored.extend_from_slice(b"value");
        assert_eq!(visible_value(ValueKind::PutExpiring, &stored, 999), Some(&b"value"[..]));
        assert_eq!(visible_value(ValueKind::PutExpiring, &stored, 1_000), None);
        assert_eq!(visible_value(ValueKind::PutExpiring, &stored[..7], 0), None, "too short");
        assert_eq!(visible_value(ValueKind::Put, b"v", u64::MAX), Some(&b"v"[..]));
        assert_eq!(visible_value(ValueKind::Delete, b"", 0), None);
        assert_eq!(expiry_after(u64::MAX - 1, Duration::from_secs(1)), u64::MAX);
    }

    #[test]
    fn the_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(5);
        assert_eq!(clock.now_ms(), 5);
        clock.advance(Duration::from_secs(2));
        assert_eq!(clock.now_ms(), 2_005);
        clock.set_ms(1);
        assert_eq!(clock.now_ms(), 1);
        assert!(SystemClock.now_ms() > 1_700_000_000_000);
    }
}
