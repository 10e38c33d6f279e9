//! `LevelCursor`: one `InternalIterator` over all files of a level below L0, whose files are
//! sorted and do not overlap. It opens a cursor only in the file a seek lands in and moves to
//! the neighbouring file when that one is exhausted, so a seek costs one file, not all.
//!
//! Every cursor over SST files goes through one of these (L0 files get one each), so a file is
//! opened, through the table cache, only when a seek lands in its range, and an iterator holds
//! at most one reader per level cursor.
//!
//! Thread safety: owned by one iterator, used by one thread.
//!
//! Invariants:
//! 1. `files` are sorted by key and no two share a user key (`version.rs` invariant 2).
//! 2. When valid, `cursor` is positioned inside `files[position]`.

use super::{Direction, InternalIterator};
use crate::key::compare_internal_keys;
use crate::sst::SstCursor;
use crate::version::SstHandle;
use crate::Result;
use std::cmp::Ordering;
use std::sync::Arc;

/// A cursor over one level.
pub struct LevelCursor {
    files: Vec<Arc<SstHandle>>,
    direction: Direction,
    position: usize,
    cursor: Option<SstCursor>,
}

impl LevelCursor {
    /// A cursor over `files` (sorted, non-overlapping) in `direction`.
    pub fn new(files: Vec<Arc<SstHandle>>, direction: Direction) -> LevelCursor {
        LevelCursor { files, direction, position: 0, cursor: None }
    }

    fn open(&mut self, position: usize) -> Result<&mut SstCursor> {
        self.position = position;
        self.cursor = None;
        let cursor = self.files[position].reader()?.cursor(self.direction);
        Ok(self.cursor.insert(cursor))
    }

    /// While the current file is exhausted, moves to the next one in the direction.
    fn skip_exhausted_files(&mut self) -> Result<()> {
        while self.cursor.as_ref().is_some_and(|cursor| !cursor.valid()) {
            let next = match self.direction {
                Direction::Forward => Some(self.position + 1).filter(|&p| p < self.files.len()),
                Direction::Reverse => self.position.checked_sub(1),
            };
            let Some(next) = next else {
                self.cursor = None;
                return Ok(());
            };
            self.open(next)?.seek_to_start()?;
        }
        Ok(())
    }

    fn fail<T>(&mut self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            self.cursor = None;
        }
        result
    }
}

impl InternalIterator for LevelCursor {
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let result = (|| {
            let position = match self.direction {
                // The first file whose largest key is >= target.
                Direction::Forward => self.files.partition_point(|file| {
                    compare_internal_keys(&file.meta.largest_key, target) == Ordering::Less
                }),
                // The last file whose smallest key is <= target.
                Direction::Reverse => {
                    let after = self.files.partition_point(|file| {
                        compare_internal_keys(&file.meta.smallest_key, target) != Ordering::Greater
                    });
                    match after.checked_sub(1) {
                        Some(position) => position,
                        None => {
                            self.cursor = None;
                            return Ok(());
                        }
                    }
                }
            };
            if position >= self.files.len() {
                self.cursor = None;
                return Ok(());
            }
            self.open(position)?.seek(target)?;
            self.skip_exhausted_files()
        })();
        self.fail(result)
    }

    fn seek_to_start(&mut self) -> Result<()> {
        if self.files.is_empty() {
            self.cursor = None;
            return Ok(());
        }
        let position = match self.direction {
            Direction::Forward => 0,
            Direction::Reverse => self.files.len() - 1,
        };
        let result = self
            .open(position)
            .and_then(|cursor| cursor.seek_to_start())
            .and_then(|()| self.skip_exhausted_files());
        self.fail(result)
    }

    fn next(&mut self) -> Result<()> {
        let Some(cursor) = self.cursor.as_mut() else { return Ok(()) };
        let result = cursor.next().and_then(|()| self.skip_exhausted_files());
        self.fail(result)
    }

    fn valid(&self) -> bool {
        self.cursor.as_ref().is_some_and(SstCursor::valid)
    }

    fn key(&self) -> &[u8] {
        self.cursor.as_ref().map_or(&[], SstCursor::key)
    }

    fn value(&self) -> &[u8] {
        self.cursor.as_ref().map_or(&[], SstCursor::value)
    }
}
