//! Iterators over internal entries (encoded internal key, value), and the user-facing
//! iterator built from them.
//!
//! Every source (memtable, SST) offers an `InternalIterator` whose direction is fixed when it
//! is made: forward iterators walk internal keys ascending, reverse ones descending. A
//! `MergingIterator` merges several sources in the same direction, and `DbIterator` turns the
//! merged stream into user keys and values at one seqno.
//!
//! Thread safety: an iterator is used by one thread at a time (`Send`, not shared).
//!
//! Invariants:
//! 1. `key()` and `value()` are only called while `valid()` is true.
//! 2. Once a method returns an error the iterator is invalid and stays so.

mod db_iter;
mod level;
mod merge;

pub use db_iter::{DbIterator, PointRead};
pub use level::LevelCursor;
pub use merge::MergingIterator;

use crate::Result;

/// Which way an internal iterator walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Internal keys ascending.
    Forward,
    /// Internal keys descending.
    Reverse,
}

/// A cursor over (encoded internal key, value) entries of one source.
pub trait InternalIterator: Send {
    /// Forward: positions at the first entry `>= target`. Reverse: at the last entry `<= target`.
    fn seek(&mut self, target: &[u8]) -> Result<()>;
    /// Forward: positions at the first entry. Reverse: at the last.
    fn seek_to_start(&mut self) -> Result<()>;
    /// Moves one entry in the iterator's direction.
    fn next(&mut self) -> Result<()>;
    /// True while positioned at an entry.
    fn valid(&self) -> bool;
    /// The current encoded internal key.
    fn key(&self) -> &[u8];
    /// The current value.
    fn value(&self) -> &[u8];
}
