//! `MergingIterator`: merges several internal iterators of one direction into one ordered
//! stream, with a binary heap of child positions.
//!
//! An iterator over a key range can give the merge the range's far end (`with_end`): a
//! child whose key has passed it leaves the heap, as if exhausted. A short range that only
//! one source holds keys of then costs no heap comparisons: the other sources land past its
//! end at the seek and never enter the heap.
//!
//! Thread safety: owned by one iterator, used by one thread.
//!
//! Invariants:
//! 1. The heap holds exactly the valid children whose user keys have not passed `end`,
//!    ordered by their current keys in the iterator's direction; ties go to the child listed
//!    first (the newest source).
//! 2. After an error from a child, the merged iterator is invalid.
//! 3. So every key it yields is within `end`; past it, it is invalid (exhausted).

use super::{Direction, InternalIterator};
use crate::key::{compare_internal_keys, user_key_of, TRAILER_LEN};
use crate::Result;
use std::cmp::Ordering;
use std::ops::Bound;

/// Merges children into one ordered stream.
pub struct MergingIterator {
    children: Vec<Box<dyn InternalIterator>>,
    direction: Direction,
    /// Indexes of valid children; `heap[0]` is the current one.
    heap: Vec<usize>,
    /// The user-key bound in the direction of travel (upper forward, lower in reverse).
    end: Bound<Vec<u8>>,
}

impl MergingIterator {
    /// Merges `children`, listed newest source first, all walking in `direction`.
    pub fn new(children: Vec<Box<dyn InternalIterator>>, direction: Direction) -> MergingIterator {
        MergingIterator { children, direction, heap: Vec::new(), end: Bound::Unbounded }
    }

    /// Stops at `end`, a user-key bound in the direction of travel (the upper bound forward,
    /// the lower bound in reverse): keys past it are never yielded.
    pub fn with_end(mut self, end: Bound<Vec<u8>>) -> MergingIterator {
        self.end = end;
        self
    }

    /// True if child `index` is exhausted or its key has passed `end`.
    fn is_done(&self, index: usize) -> bool {
        let child = &self.children[index];
        if !child.valid() {
            return true;
        }
        let (bound, included) = match &self.end {
            Bound::Unbounded => return false,
            Bound::Included(bound) => (bound.as_slice(), true),
            Bound::Excluded(bound) => (bound.as_slice(), false),
        };
        let key = child.key();
        if key.len() < TRAILER_LEN {
            // Malformed: left for the reader above to report as corruption.
            return false;
        }
        let ordering = user_key_of(key).cmp(bound);
        let ordering = match self.direction {
            Direction::Forward => ordering,
            Direction::Reverse => ordering.reverse(),
        };
        ordering == Ordering::Greater || (ordering == Ordering::Equal && !included)
    }

    /// True if child `a` should come before child `b`.
    fn before(&self, a: usize, b: usize) -> bool {
        let ordering = compare_internal_keys(self.children[a].key(), self.children[b].key());
        let ordering = match self.direction {
            Direction::Forward => ordering,
            Direction::Reverse => ordering.reverse(),
        };
        ordering == Ordering::Less || (ordering == Ordering::Equal && a < b)
    }

    fn rebuild(&mut self) {
        self.heap = (0..self.children.len()).filter(|&i| !self.is_done(i)).collect();
        for start in (0..self.heap.len() / 2).rev() {
            self.sift_down(start);
        }
    }

    fn sift_down(&mut self, mut slot: usize) {
        loop {
            let (left, right) = (2 * slot + 1, 2 * slot + 2);
            let mut best = slot;
            if left < self.heap.len() && self.before(self.heap[left], self.heap[best]) {
                best = left;
            }
            if right < self.heap.len() && self.before(self.heap[right], self.heap[best]) {
                best = right;
            }
            if best == slot {
                return;
            }
            self.heap.swap(slot, best);
            slot = best;
        }
    }

    fn on_error<T>(&mut self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            self.heap.clear();
        }
        result
    }
}

impl InternalIterator for MergingIterator {
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        for index in 0..self.children.len() {
            let result = self.children[index].seek(target);
            self.on_error(result)?;
        }
        self.rebuild();
        Ok(())
    }

    fn seek_to_start(&mut self) -> Result<()> {
        for index in 0..self.children.len() {
            let result = self.children[index].seek_to_start();
            self.on_error(result)?;
        }
        self.rebuild();
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        let Some(&top) = self.heap.first() else { return Ok(()) };
        let result = self.children[top].next();
        self.on_error(result)?;
        if self.is_done(top) {
            let last = self.heap.len() - 1;
            self.heap.swap(0, last);
            self.heap.pop();
        }
        self.sift_down(0);
        Ok(())
    }

    fn valid(&self) -> bool {
        !self.heap.is_empty()
    }

    fn key(&self) -> &[u8] {
        self.children[self.heap[0]].key()
    }

    fn value(&self) -> &[u8] {
        self.children[self.heap[0]].value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{internal_key, parse_internal_key, ValueKind};
    use crate::memtable::Memtable;
    use std::sync::Arc;

    fn memtable(entries: &[(&str, u64)]) -> Arc<Memtable> {
        let memtable = Arc::new(Memtable::new(1, 1 << 20));
        for &(key, seqno) in entries {
            memtable.insert(key.as_bytes(), seqno, ValueKind::Put, b"");
        }
        memtable
    }

    fn walk(direction: Direction, seek: Option<&[u8]>) -> Vec<(String, u64)> {
        walk_to(direction, seek, Bound::Unbounded)
    }

    fn walk_to(
        direction: Direction,
        seek: Option<&[u8]>,
        end: Bound<Vec<u8>>,
    ) -> Vec<(String, u64)> {
        let sources = [
            memtable(&[("b", 5), ("d", 6)]),
            memtable(&[("a", 1), ("b", 2), ("e", 3)]),
            memtable(&[]),
            memtable(&[("c", 4)]),
        ];
        let children = sources
            .iter()
            .map(|m| Box::new(m.cursor(direction)) as Box<dyn InternalIterator>)
            .collect();
        let mut merged = MergingIterator::new(children, direction).with_end(end);
        match seek {
            Some(target) => merged.seek(target).unwrap(),
            None => merged.seek_to_start().unwrap(),
        }
        let mut out = Vec::new();
        while merged.valid() {
            let parsed = parse_internal_key(merged.key()).unwrap();
            out.push((String::from_utf8(parsed.user_key.to_vec()).unwrap(), parsed.seqno));
            merged.next().unwrap();
        }
        out
    }

    #[test]
    fn merges_in_internal_key_order_both_ways() {
        let expected: Vec<(String, u64)> =
            [("a", 1), ("b", 5), ("b", 2), ("c", 4), ("d", 6), ("e", 3)]
                .iter()
                .map(|&(k, s)| (k.to_string(), s))
                .collect();
        assert_eq!(walk(Direction::Forward, None), expected);
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(walk(Direction::Reverse, None), reversed);
        let target = internal_key(b"b", 3, 1);
        assert_eq!(walk(Direction::Forward, Some(&target))[0], ("b".to_string(), 2));
        assert_eq!(walk(Direction::Reverse, Some(&target))[0], ("b".to_string(), 5));
    }

    #[test]
    fn the_end_bound_stops_the_merge_in_both_directions() {
        let users = |entries: Vec<(String, u64)>| -> Vec<String> {
            entries.into_iter().map(|(key, _)| key).collect()
        };
        let forward = |end| users(walk_to(Direction::Forward, None, end));
        assert_eq!(forward(Bound::Included(b"b".to_vec())), ["a", "b", "b"]);
        assert_eq!(forward(Bound::Excluded(b"b".to_vec())), ["a"]);
        assert_eq!(forward(Bound::Excluded(b"a".to_vec())), Vec::<String>::new());
        assert_eq!(forward(Bound::Included(b"z".to_vec())), ["a", "b", "b", "c", "d", "e"]);
        let reverse = |end| users(walk_to(Direction::Reverse, None, end));
        assert_eq!(reverse(Bound::Included(b"d".to_vec())), ["e", "d"]);
        assert_eq!(reverse(Bound::Excluded(b"d".to_vec())), ["e"]);
        // A seek past the end leaves nothing.
        let target = internal_key(b"c", 9, 1);
        let after = walk_to(Direction::Forward, Some(&target), Bound::Excluded(b"c".to_vec()));
        assert!(after.is_empty());
    }
}
