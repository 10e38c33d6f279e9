//! `DbIterator`: user keys and values at one seqno, within bounds, in one direction, built on
//! a `MergingIterator` over every memtable and SST of a read view.
//!
//! Forward, the newest visible version of a key comes first: take it (or skip the key if it
//! is a tombstone) and skip the key's older versions. In reverse, a key's versions arrive
//! oldest first: remember the last visible one and emit it when the key changes.
//!
//! A key overwritten many times has many versions in the sources. Walking them one by one
//! makes a scan that starts at a hot key cost as much as its version count, so after
//! `VERSIONS_SKIPPED_BEFORE_RESEEK` versions of one key the iterator jumps: forward, it seeks
//! to the first visible version or past the key; in reverse, it asks the point read for the
//! key's visible value and seeks past the key.
//!
//! Bounds cost little per key: the merge is given the far bound and ends there (sources past
//! it leave its heap), and forward the lower bound is tested only until one key passes it.
//!
//! Thread safety: used by one thread; it owns `Arc`s of every source, so it sees a consistent
//! snapshot while writes, flushes and other readers go on.
//!
//! A visible version that a range tombstone (at or below the iterator's seqno) hides is
//! treated like a tombstone.
//!
//! Invariants:
//! 1. Versions with a seqno above the iterator's seqno are never seen.
//! 2. Every key yielded lies within the bounds, and keys strictly ascend (forward) or descend.
//! 3. A malformed internal key from a source is a corruption error.

use super::{Direction, InternalIterator, MergingIterator};
use crate::key::{internal_key, parse_internal_key, ValueKind, KIND_FOR_SEEK, SEQNO_MAX};
use crate::range_del::RangeTombstones;
use crate::ttl::visible_value;
use crate::{Error, Result};
use std::ops::Bound;
use std::sync::Arc;

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Versions of one key walked one by one before the iterator seeks past them (RocksDB's
/// `max_sequential_skip_in_iterations` plays the same role).
pub const VERSIONS_SKIPPED_BEFORE_RESEEK: u32 = 8;

/// Reads one key at the iterator's seqno from the same sources (used by reverse skips).
pub type PointRead = Box<dyn Fn(&[u8]) -> Result<Option<Vec<u8>>> + Send>;

/// Iterates user keys at a seqno, in one direction.
pub struct DbIterator {
    merged: MergingIterator,
    direction: Direction,
    seqno: u64,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    started: bool,
    done: bool,
    /// Forward only: a key at or above the lower bound was seen, so every later one is too.
    past_lower: bool,
    /// Reverse only: the visible version of the key being gathered (`None` value = tombstone).
    pending: Option<(Vec<u8>, Option<Vec<u8>>)>,
    /// Forward only: the key just yielded or skipped, whose older versions are skipped.
    skip_key: Option<Vec<u8>>,
    run: VersionRun,
    point_read: PointRead,
    /// Range tombstones: a visible version they hide is treated as a tombstone.
    range_dels: Arc<RangeTombstones>,
    /// Expiring versions with an expiry at or before this are hidden (`ttl.rs`).
    now_ms: u64,
    /// Stored entries looked at so far, and the most allowed (`None`: no limit).
    steps: u64,
    steps_max: Option<u64>,
}

/// The key whose versions are being stepped over, and how many so far.
#[derive(Default)]
struct VersionRun {
    key: Vec<u8>,
    length: u32,
}

impl VersionRun {
    /// Counts one more version of `user_key` stepped over; true once the run is long enough
    /// that seeking past it is cheaper (the count then starts again).
    fn is_long(&mut self, user_key: &[u8]) -> bool {
        if self.key != user_key {
            self.key.clear();
            self.key.extend_from_slice(user_key);
            self.length = 0;
        }
        self.length += 1;
        if self.length > VERSIONS_SKIPPED_BEFORE_RESEEK {
            self.length = 0;
            return true;
        }
        false
    }
}

impl DbIterator {
    pub(crate) fn new(
        merged: MergingIterator,
        direction: Direction,
        seqno: u64,
        (lower, upper): (Bound<Vec<u8>>, Bound<Vec<u8>>),
        point_read: PointRead,
        range_dels: Arc<RangeTombstones>,
        now_ms: u64,
    ) -> DbIterator {
        // The merge drops sources past the far bound, so it never yields a key beyond it.
        let end = match direction {
            Direction::Forward => upper.clone(),
            Direction::Reverse => lower.clone(),
        };
        DbIterator {
            merged: merged.with_end(end),
            direction,
            seqno,
            lower,
            upper,
            started: false,
            done: false,
            past_lower: false,
            steps: 0,
            steps_max: None,
            pending: None,
            skip_key: None,
            run: VersionRun::default(),
            point_read,
            range_dels,
            now_ms,
        }
    }

    /// Stops with `Error::IteratorStepLimit` after `max` stored entries looked at (keys
    /// yielded, older versions and tombstones passed over alike).
    pub(crate) fn limit_steps(&mut self, max: u64) {
        self.steps_max = Some(max);
    }

    /// Counts one stored entry looked at.
    fn step(&mut self) -> Result<()> {
        self.steps += 1;
        match self.steps_max {
            Some(max) if self.steps > max => Err(Error::IteratorStepLimit { max }),
            _ => Ok(()),
        }
    }

    fn below_lower(&self, key: &[u8]) -> bool {
        match &self.lower {
            Bound::Included(bound) => key < bound.as_slice(),
            Bound::Excluded(bound) => key <= bound.as_slice(),
            Bound::Unbounded => false,
        }
    }

    fn above_upper(&self, key: &[u8]) -> bool {
        match &self.upper {
            Bound::Included(bound) => key > bound.as_slice(),
            Bound::Excluded(bound) => key >= bound.as_slice(),
            Bound::Unbounded => false,
        }
    }

    fn start(&mut self) -> Result<()> {
        self.started = true;
        match (self.direction, &self.lower, &self.upper) {
            (Direction::Forward, Bound::Included(key) | Bound::Excluded(key), _) => {
                let target = internal_key(key, SEQNO_MAX, KIND_FOR_SEEK);
                self.merged.seek(&target)
            }
            (Direction::Reverse, _, Bound::Included(key) | Bound::Excluded(key)) => {
                let target = internal_key(key, 0, ValueKind::Delete as u8);
                self.merged.seek(&target)
            }
            _ => self.merged.seek_to_start(),
        }
    }

    /// The next key and value, or `None` at the end.
    pub fn next_entry(&mut self) -> Result<Option<KeyValue>> {
        Ok(self.advance(true)?.flatten())
    }

    /// Moves past the next visible key without copying it or its value (forward; in reverse
    /// the key is gathered as `next_entry` does); false at the end. A count of keys in a
    /// range allocates nothing per key this way.
    pub fn skip_entry(&mut self) -> Result<bool> {
        Ok(self.advance(false)?.is_some())
    }

    /// Moves past the next visible key, and returns it with its value when `copy` (always
    /// in reverse). `Ok(None)` at the end; `Ok(Some(None))` when a key was passed uncopied.
    fn advance(&mut self, copy: bool) -> Result<Option<Option<KeyValue>>> {
        if self.done {
            return Ok(None);
        }
        if !self.started {
            if let Err(error) = self.start() {
                self.done = true;
                return Err(error);
            }
        }
        let result = match self.direction {
            Direction::Forward => self.advance_forward(copy),
            Direction::Reverse => self.step_reverse().map(|entry| entry.map(Some)),
        };
        match &result {
            Ok(None) | Err(_) => self.done = true,
            Ok(Some(_)) => {}
        }
        result
    }

    fn advance_forward(&mut self, copy: bool) -> Result<Option<Option<KeyValue>>> {
        while self.merged.valid() {
            self.step()?;
            let parsed = parse_internal_key(self.merged.key()).ok_or_else(|| {
                Error::corruption("<iterator>", "malformed internal key from a source")
            })?;
            let invisible = parsed.seqno > self.seqno;
            let shadowed = self.skip_key.as_deref() == Some(parsed.user_key);
            if invisible || shadowed {
                if self.run.is_long(parsed.user_key) {
                    // Newer versions come first: jump to the first visible one, or, for the
                    // older versions of a key already handled, past the key (seqno 0 is never
                    // used, so (key, 0, Delete) sorts after every version of the key).
                    let target = if shadowed {
                        internal_key(parsed.user_key, 0, ValueKind::Delete as u8)
                    } else {
                        internal_key(parsed.user_key, self.seqno, KIND_FOR_SEEK)
                    };
                    self.merged.seek(&target)?;
                } else {
                    self.merged.next()?;
                }
                continue;
            }
            if !self.past_lower {
                if self.below_lower(parsed.user_key) {
                    self.merged.next()?;
                    continue;
                }
                self.past_lower = true;
            }
            // No upper-bound test: the merge ends at the upper bound (`with_end` in `new`).
            let value = visible_value(parsed.kind, self.merged.value(), self.now_ms);
            let entry = value
                .filter(|_| !self.range_dels.hides(parsed.user_key, parsed.seqno, self.seqno))
                .map(|value| copy.then(|| (parsed.user_key.to_vec(), value.to_vec())));
            // Reuse the buffer: one allocation per yielded key, none per tombstone.
            match &mut self.skip_key {
                Some(skip_key) => {
                    skip_key.clear();
                    skip_key.extend_from_slice(parsed.user_key);
                }
                None => self.skip_key = Some(parsed.user_key.to_vec()),
            }
            self.merged.next()?;
            if entry.is_some() {
                return Ok(entry);
            }
        }
        Ok(None)
    }

    fn step_reverse(&mut self) -> Result<Option<KeyValue>> {
        while self.merged.valid() {
            self.step()?;
            let parsed = parse_internal_key(self.merged.key()).ok_or_else(|| {
                Error::corruption("<iterator>", "malformed internal key from a source")
            })?;
            if self.above_upper(parsed.user_key) {
                self.merged.next()?;
                continue;
            }
            let starts_new_key =
                self.pending.as_ref().is_some_and(|(key, _)| key.as_slice() != parsed.user_key);
            if starts_new_key {
                if let Some((key, Some(value))) = self.pending.take() {
                    return Ok(Some((key, value)));
                }
                self.pending = None;
            }
            // No lower-bound test: the merge ends at the lower bound (`with_end` in `new`).
            if self.run.is_long(parsed.user_key) {
                // Many versions, oldest first: read the visible one directly, then seek to
                // before the key's newest possible version, which is past all of them.
                let user_key = parsed.user_key.to_vec();
                let value = (self.point_read)(&user_key)?;
                let target = internal_key(&user_key, SEQNO_MAX, KIND_FOR_SEEK);
                self.pending = Some((user_key, value));
                self.merged.seek(&target)?;
                // The seek lands on the last entry <= target: a version at SEQNO_MAX itself,
                // which is never written, or an entry of a smaller key.
                continue;
            }
            if parsed.seqno <= self.seqno {
                let value = visible_value(parsed.kind, self.merged.value(), self.now_ms)
                    .filter(|_| !self.range_dels.hides(parsed.user_key, parsed.seqno, self.seqno))
                    .map(<[u8]>::to_vec);
                self.pending = Some((parsed.user_key.to_vec(), value));
            } else if self.pending.is_none() {
                // Invisible version of a new key: start gathering it with nothing visible yet.
                self.pending = Some((parsed.user_key.to_vec(), None));
            }
            self.merged.next()?;
        }
        match self.pending.take() {
            Some((key, Some(value))) => Ok(Some((key, value))),
            _ => Ok(None),
        }
    }
}
