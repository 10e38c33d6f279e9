//! `MemtableCursor`: an `InternalIterator` over a memtable's partitions, in key order.
//!
//! It copies entries out of the skip lists a chunk at a time, so it holds no borrow of a list
//! and sees a stable order while inserts continue. It keeps no position in the partition map:
//! the partition to read next follows from the last key copied (`keyspace_order`), so
//! partitions created or removed meanwhile never confuse it.
//!
//! Thread safety: a cursor belongs to one thread; it shares the memtable with everything.
//!
//! Invariant: a refill walks partitions in the cursor's direction starting with the one the
//! refill's bound key belongs to, and never reads a partition outside `order_min..=order_max`.

use super::key::MemKey;
use super::Memtable;
use crate::iter::{Direction, InternalIterator};
use crate::keyspace::keyspace_order;
use crate::Result;
use std::ops::Bound;
use std::sync::Arc;

/// Entries copied out of the skip lists by the first refill after a seek: short scans copy
/// little. Each further refill copies twice as many, up to `CURSOR_CHUNK_ENTRIES_MAX`.
const CURSOR_CHUNK_ENTRIES_MIN: usize = 16;
/// Most entries copied out of the skip lists per refill.
const CURSOR_CHUNK_ENTRIES_MAX: usize = 256;

/// An `InternalIterator` over a memtable (or the partitions of it that a key range touches).
#[derive(Debug)]
pub struct MemtableCursor {
    memtable: Arc<Memtable>,
    direction: Direction,
    /// Partitions read: those whose `keyspace_order` lies in this range.
    order_min: u64,
    order_max: u64,
    chunk: Vec<(Vec<u8>, Vec<u8>)>,
    /// Entries the next refill copies.
    chunk_len: usize,
    position: usize,
    exhausted: bool,
}

impl MemtableCursor {
    /// A cursor over the partitions keys within `bounds` can be in.
    pub(super) fn new(
        memtable: Arc<Memtable>,
        direction: Direction,
        (lower, upper): (Bound<&[u8]>, Bound<&[u8]>),
    ) -> MemtableCursor {
        let order_min = match lower {
            Bound::Included(key) | Bound::Excluded(key) => keyspace_order(key),
            Bound::Unbounded => 0,
        };
        let order_max = match upper {
            Bound::Included(key) | Bound::Excluded(key) => keyspace_order(key),
            Bound::Unbounded => u64::MAX,
        };
        MemtableCursor {
            memtable,
            direction,
            order_min,
            order_max,
            chunk: Vec::new(),
            chunk_len: CURSOR_CHUNK_ENTRIES_MIN,
            position: 0,
            exhausted: true,
        }
    }

    fn refill(&mut self, from: Bound<MemKey>) {
        self.chunk.clear();
        self.position = 0;
        let forward = self.direction == Direction::Forward;
        let mut order = match &from {
            Bound::Included(key) | Bound::Excluded(key) => keyspace_order(key.user_key()),
            Bound::Unbounded if forward => self.order_min,
            Bound::Unbounded => self.order_max,
        };
        let from_order = order;
        let mut from = Some(from);
        // A bound before the first partition read (in the walk's direction) bounds nothing
        // there; one past the last leaves nothing to read.
        let past_end = self.order_min > self.order_max
            || if forward { order > self.order_max } else { order < self.order_min };
        order = order.max(self.order_min).min(self.order_max);
        let in_range = |order: u64| (self.order_min..=self.order_max).contains(&order);
        while let Some((found, partition)) =
            self.memtable.partition_from(order, forward).filter(|_| !past_end)
        {
            if !in_range(found) {
                break;
            }
            // The bound applies in its own partition; every later one is read from its end.
            let bound = match from.take() {
                Some(bound) if found == from_order => bound,
                _ => Bound::Unbounded,
            };
            let wanted = self.chunk_len - self.chunk.len();
            let copy = |key: &MemKey| {
                let mut encoded = Vec::with_capacity(key.key_len as usize + 8);
                key.encode(&mut encoded);
                (encoded, key.value().to_vec())
            };
            if forward {
                let entries = partition.map.range((bound, Bound::Unbounded));
                self.chunk.extend(entries.take(wanted).map(|entry| copy(entry.key())));
            } else {
                let entries = partition.map.range((Bound::Unbounded, bound)).rev();
                self.chunk.extend(entries.take(wanted).map(|entry| copy(entry.key())));
            }
            if self.chunk.len() >= self.chunk_len {
                break;
            }
            let next = if forward { found.checked_add(1) } else { found.checked_sub(1) };
            match next {
                Some(next) => order = next,
                None => break,
            }
        }
        self.exhausted = self.chunk.len() < self.chunk_len;
        self.chunk_len = (self.chunk_len * 2).min(CURSOR_CHUNK_ENTRIES_MAX);
    }
}

impl InternalIterator for MemtableCursor {
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.chunk_len = CURSOR_CHUNK_ENTRIES_MIN;
        self.refill(Bound::Included(MemKey::from_internal(target)));
        Ok(())
    }

    fn seek_to_start(&mut self) -> Result<()> {
        self.chunk_len = CURSOR_CHUNK_ENTRIES_MIN;
        self.refill(Bound::Unbounded);
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        self.position += 1;
        if self.position >= self.chunk.len() && !self.exhausted {
            if let Some((last, _)) = self.chunk.last() {
                let after = MemKey::from_internal(last);
                self.refill(Bound::Excluded(after));
            }
        }
        Ok(())
    }

    fn valid(&self) -> bool {
        self.position < self.chunk.len()
    }

    fn key(&self) -> &[u8] {
        &self.chunk[self.position].0
    }

    fn value(&self) -> &[u8] {
        &self.chunk[self.position].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{internal_key, parse_internal_key, ValueKind, KIND_FOR_SEEK, SEQNO_MAX};
    use crate::keyspace::{prefix_of, stored_key};
    use crate::memtable::Lookup;

    /// Keys in keyspaces 0, 3, 254, 255 and 70,000 (short and long prefixes); none in 4..254.
    fn keys() -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        for id in [0u32, 3, 254, 255, 70_000] {
            for index in 0..40u32 {
                keys.push(stored_key(&prefix_of(id), format!("k{index:03}").as_bytes()));
            }
        }
        keys
    }

    fn filled() -> Arc<Memtable> {
        let memtable = Arc::new(Memtable::new(1));
        // Inserted out of order, so the partitions are created out of order too.
        for (seqno, key) in keys().iter().rev().enumerate() {
            memtable.insert(key, seqno as u64 + 1, ValueKind::Put, key);
        }
        memtable
    }

    fn walk(cursor: &mut MemtableCursor) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while cursor.valid() {
            out.push(parse_internal_key(cursor.key()).unwrap().user_key.to_vec());
            assert_eq!(cursor.value(), out.last().unwrap().as_slice());
            cursor.next().unwrap();
        }
        out
    }

    #[test]
    fn cursors_walk_every_partition_in_key_order_both_ways() {
        let memtable = filled();
        let mut expected = keys();
        expected.sort();
        let mut forward = memtable.cursor(Direction::Forward);
        forward.seek_to_start().unwrap();
        assert_eq!(walk(&mut forward), expected);
        let mut reverse = memtable.cursor(Direction::Reverse);
        reverse.seek_to_start().unwrap();
        expected.reverse();
        assert_eq!(walk(&mut reverse), expected);
        assert_eq!(memtable.partitions().len(), 5);
        assert_eq!(memtable.get(&expected[0], SEQNO_MAX), Lookup::Found(expected[0].clone(), 1));
        assert_eq!(memtable.get(&stored_key(&prefix_of(9), b"k000"), SEQNO_MAX), Lookup::Absent);
    }

    #[test]
    fn seeks_into_missing_partitions_land_on_the_neighbours() {
        let memtable = filled();
        let target = internal_key(&stored_key(&prefix_of(100), b"x"), SEQNO_MAX, KIND_FOR_SEEK);
        let mut forward = memtable.cursor(Direction::Forward);
        forward.seek(&target).unwrap();
        let walked = walk(&mut forward);
        assert_eq!(walked[0], stored_key(&prefix_of(254), b"k000"));
        assert_eq!(walked.len(), 120);
        let mut reverse = memtable.cursor(Direction::Reverse);
        reverse.seek(&target).unwrap();
        let walked = walk(&mut reverse);
        assert_eq!(walked[0], stored_key(&prefix_of(3), b"k039"));
        assert_eq!(walked.len(), 80);
        // Past either end.
        let past = internal_key(&[0xff, 0xff, 0xff, 0xff, 0xff, 1], SEQNO_MAX, KIND_FOR_SEEK);
        forward.seek(&past).unwrap();
        assert!(!forward.valid());
        reverse.seek(&internal_key(b"", SEQNO_MAX, KIND_FOR_SEEK)).unwrap();
        assert!(!reverse.valid());
    }

    #[test]
    fn a_bounded_cursor_reads_only_the_partitions_its_bounds_reach() {
        let memtable = filled();
        let (lower, upper) = (prefix_of(255), prefix_of(256));
        let bounds = (Bound::Included(lower.as_slice()), Bound::Excluded(upper.as_slice()));
        let mut forward = memtable.cursor_within(Direction::Forward, bounds);
        forward.seek_to_start().unwrap();
        let walked = walk(&mut forward);
        assert_eq!(walked.len(), 40);
        assert!(walked.iter().all(|key| key.starts_with(&lower)));
        let mut reverse = memtable.cursor_within(Direction::Reverse, bounds);
        reverse.seek_to_start().unwrap();
        assert_eq!(walk(&mut reverse).len(), 40);
        // A seek beyond the bounds' partitions finds nothing in the walk's direction.
        let after = internal_key(&stored_key(&prefix_of(70_000), b""), SEQNO_MAX, KIND_FOR_SEEK);
        forward.seek(&after).unwrap();
        assert!(!forward.valid());
        let before = internal_key(&prefix_of(3), SEQNO_MAX, KIND_FOR_SEEK);
        reverse.seek(&before).unwrap();
        assert!(!reverse.valid());
        // And one before them, forwards, starts at their first key.
        forward.seek(&before).unwrap();
        assert_eq!(walk(&mut forward).len(), 40);
    }
}
