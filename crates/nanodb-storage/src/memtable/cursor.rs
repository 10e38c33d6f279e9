//! `MemtableCursor`: an `InternalIterator` over a memtable's partitions, in key order.
//!
//! It walks one partition's skip list at a time (`ListCursor`, which holds that list alive and
//! reads its nodes in place, copying nothing), and moves to the next partition in its
//! direction when the list ends. It keeps no position in the partition map: the partition to
//! read next follows from the one it is in (`keyspace_order`), so partitions created
//! meanwhile never confuse it. Inserts made while it walks show up wherever they fall ahead of
//! it; readers filter them by seqno.
//!
//! Thread safety: a cursor belongs to one thread; it shares the memtable with everything.
//!
//! Invariant: the cursor is either invalid or on a version of partition `order`, which lies in
//! `order_min..=order_max`.

use super::skiplist::ListCursor;
use super::Memtable;
use crate::iter::{Direction, InternalIterator};
use crate::key::{pack_trailer, parse_internal_key};
use crate::keyspace::keyspace_order;
use crate::Result;
use std::ops::Bound;
use std::sync::Arc;

/// An `InternalIterator` over a memtable (or the partitions of it that a key range touches).
#[derive(Debug)]
pub struct MemtableCursor {
    memtable: Arc<Memtable>,
    direction: Direction,
    /// Partitions read: those whose `keyspace_order` lies in this range.
    order_min: u64,
    order_max: u64,
    /// The partition the cursor is in, and its position there.
    current: Option<(u64, ListCursor)>,
}

/// The user key and trailer to seek to for an encoded internal key; an unparsable one (the
/// crate builds every target, so never in practice) seeks to its raw bytes, newest first.
fn seek_target(target: &[u8]) -> (&[u8], u64) {
    match parse_internal_key(target) {
        Some(parsed) => (parsed.user_key, pack_trailer(parsed.seqno, parsed.kind as u8)),
        None => (target, u64::MAX),
    }
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
        MemtableCursor { memtable, direction, order_min, order_max, current: None }
    }

    /// Positions the cursor on the first version, in its direction, of the first partition
    /// at or after `order` (in its direction) that has one there: in partition `order`
    /// itself at or after `target` when given, in every other from its end.
    fn enter(&mut self, order: u64, target: Option<(&[u8], u64)>) {
        self.current = None;
        let forward = self.direction == Direction::Forward;
        // An order before the first partition read (in the walk's direction) bounds nothing
        // there; one past the last leaves nothing to read.
        let past_end = self.order_min > self.order_max
            || if forward { order > self.order_max } else { order < self.order_min };
        if past_end {
            return;
        }
        let mut next_order = order.clamp(self.order_min, self.order_max);
        while let Some((found, list)) = self.memtable.partition_from(next_order, forward) {
            if !(self.order_min..=self.order_max).contains(&found) {
                return;
            }
            let mut cursor = ListCursor::new(list);
            match target.filter(|_| found == order) {
                Some((user_key, trailer)) if forward => cursor.seek_at_or_after(user_key, trailer),
                Some((user_key, trailer)) => cursor.seek_at_or_before(user_key, trailer),
                None if forward => cursor.seek_first(),
                None => cursor.seek_last(),
            }
            if cursor.valid() {
                self.current = Some((found, cursor));
                return;
            }
            match if forward { found.checked_add(1) } else { found.checked_sub(1) } {
                Some(order) => next_order = order,
                None => return,
            }
        }
    }
}

impl InternalIterator for MemtableCursor {
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let (user_key, trailer) = seek_target(target);
        self.enter(keyspace_order(user_key), Some((user_key, trailer)));
        Ok(())
    }

    fn seek_to_start(&mut self) -> Result<()> {
        let start =
            if self.direction == Direction::Forward { self.order_min } else { self.order_max };
        self.enter(start, None);
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        let forward = self.direction == Direction::Forward;
        let Some((order, cursor)) = &mut self.current else {
            return Ok(());
        };
        if forward {
            cursor.next();
        } else {
            cursor.prev();
        }
        if !cursor.valid() {
            let order = *order;
            self.current = None;
            if let Some(next) = if forward { order.checked_add(1) } else { order.checked_sub(1) } {
                self.enter(next, None);
            }
        }
        Ok(())
    }

    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn key(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |(_, cursor)| cursor.key())
    }

    fn value(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |(_, cursor)| cursor.value())
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
        let memtable = Arc::new(Memtable::new(1, 1 << 20));
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
        assert_eq!(
            memtable.get(&expected[0], SEQNO_MAX),
            Lookup::Found(crate::found::FoundValue::from(expected[0].clone()), 1)
        );
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
