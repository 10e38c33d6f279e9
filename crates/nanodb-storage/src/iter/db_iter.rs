//! `DbIterator`: user keys and values at one seqno, within bounds, in one direction, built on
//! a `MergingIterator` over every memtable and SST of a read view.
//!
//! Forward, the newest visible version of a key comes first: take it (or skip the key if it
//! is a tombstone) and skip the key's older versions. In reverse, a key's versions arrive
//! oldest first: remember the last visible one and emit it when the key changes.
//!
//! Thread safety: used by one thread; it owns `Arc`s of every source, so it sees a consistent
//! snapshot while writes, flushes and other readers go on.
//!
//! Invariants:
//! 1. Versions with a seqno above the iterator's seqno are never seen.
//! 2. Every key yielded lies within the bounds, and keys strictly ascend (forward) or descend.
//! 3. A malformed internal key from a source is a corruption error.

use super::{Direction, InternalIterator, MergingIterator};
use crate::key::{internal_key, parse_internal_key, ValueKind, KIND_FOR_SEEK, SEQNO_MAX};
use crate::{Error, Result};
use std::ops::Bound;

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Iterates user keys at a seqno, in one direction.
pub struct DbIterator {
    merged: MergingIterator,
    direction: Direction,
    seqno: u64,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    started: bool,
    done: bool,
    /// Reverse only: the visible version of the key being gathered (`None` value = tombstone).
    pending: Option<(Vec<u8>, Option<Vec<u8>>)>,
    /// Forward only: the key just yielded or skipped, whose older versions are skipped.
    skip_key: Option<Vec<u8>>,
}

impl DbIterator {
    pub(crate) fn new(
        merged: MergingIterator,
        direction: Direction,
        seqno: u64,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
    ) -> DbIterator {
        DbIterator {
            merged,
            direction,
            seqno,
            lower,
            upper,
            started: false,
            done: false,
            pending: None,
            skip_key: None,
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
        if self.done {
            return Ok(None);
        }
        let result = self.step();
        match &result {
            Ok(None) | Err(_) => self.done = true,
            Ok(Some(_)) => {}
        }
        result
    }

    fn step(&mut self) -> Result<Option<KeyValue>> {
        if !self.started {
            self.start()?;
        }
        match self.direction {
            Direction::Forward => self.step_forward(),
            Direction::Reverse => self.step_reverse(),
        }
    }

    fn step_forward(&mut self) -> Result<Option<KeyValue>> {
        while self.merged.valid() {
            let parsed = parse_internal_key(self.merged.key()).ok_or_else(|| {
                Error::corruption("<iterator>", "malformed internal key from a source")
            })?;
            if parsed.seqno > self.seqno
                || self.skip_key.as_deref() == Some(parsed.user_key)
                || self.below_lower(parsed.user_key)
            {
                self.merged.next()?;
                continue;
            }
            if self.above_upper(parsed.user_key) {
                return Ok(None);
            }
            let user_key = parsed.user_key.to_vec();
            let entry = (parsed.kind == ValueKind::Put)
                .then(|| (user_key.clone(), self.merged.value().to_vec()));
            self.skip_key = Some(user_key);
            self.merged.next()?;
            if entry.is_some() {
                return Ok(entry);
            }
        }
        Ok(None)
    }

    fn step_reverse(&mut self) -> Result<Option<KeyValue>> {
        while self.merged.valid() {
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
            if self.below_lower(parsed.user_key) {
                self.merged = MergingIterator::new(Vec::new(), self.direction);
                break;
            }
            if parsed.seqno <= self.seqno {
                let value = (parsed.kind == ValueKind::Put).then(|| self.merged.value().to_vec());
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
