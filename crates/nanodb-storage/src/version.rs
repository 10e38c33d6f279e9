//! `Version` and `ReadView`: the immutable set of sources a read uses.
//!
//! A `ReadView` is the active memtable, the frozen memtables and a `Version` (the open SSTs per
//! level). It is replaced, never changed: a read or iterator clones the `Arc` and keeps a
//! consistent view however the database changes afterwards.
//!
//! Thread safety: immutable and shared. An `SstHandle` that a compaction made obsolete is
//! deleted from disk when its last reference drops, so a file is never removed while a read,
//! iterator or snapshot can still reach it.
//!
//! Invariants:
//! 1. Frozen memtables are listed newest first, and L0 files newest first; any key's versions
//!    in a newer source have larger seqnos than in an older one, and every level above holds
//!    newer versions of a key than every level below.
//! 2. Files of L1 and deeper are sorted by key and their user-key ranges do not overlap.
//! 3. A memtable leaves the view in the same swap that adds the SST holding its entries.
//! 4. A read at a seqno below `Version::read_seqno_min` that is not a registered snapshot
//!    must not use the version: a compaction may have dropped versions it needs.

use crate::cache::BlockCache;
use crate::fs::Fs;
use crate::key::user_key_of;
use crate::manifest::{FileMeta, ManifestState, LEVEL_COUNT};
use crate::memtable::Memtable;
use crate::range_del::RangeTombstones;
use crate::sst::{SstProperties, SstReader};
use crate::Result;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// An open SST and what the manifest says of it.
pub struct SstHandle {
    /// The manifest's record of the file (its level is where it was first placed; a trivial
    /// move reuses the handle in another level).
    pub meta: FileMeta,
    /// The open file.
    pub reader: Arc<SstReader>,
    fs: Arc<dyn Fs>,
    /// Set once no version lists the file: it is deleted when the handle drops.
    obsolete: AtomicBool,
}

impl std::fmt::Debug for SstHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstHandle").field("meta", &self.meta).finish_non_exhaustive()
    }
}

impl SstHandle {
    /// Wraps an open reader.
    pub fn new(meta: FileMeta, reader: Arc<SstReader>, fs: Arc<dyn Fs>) -> SstHandle {
        SstHandle { meta, reader, fs, obsolete: AtomicBool::new(false) }
    }

    /// Opens the SST just written at `path` as file `number` of `level`, with what its writer
    /// reported; the file is removed if it cannot be opened.
    pub fn open_written(
        fs: &Arc<dyn Fs>,
        path: &Path,
        number: u64,
        level: u32,
        properties: SstProperties,
        cache: Option<&Arc<BlockCache>>,
    ) -> Result<SstHandle> {
        let reader = match SstReader::open(fs.as_ref(), path, cache) {
            Ok(reader) => Arc::new(reader),
            Err(error) => {
                let _ = fs.remove_file(path);
                return Err(error);
            }
        };
        let meta = FileMeta {
            number,
            level,
            size_bytes: reader.size_bytes(),
            entry_count: properties.entry_count,
            seqno_min: properties.seqno_min,
            seqno_max: properties.seqno_max,
            smallest_key: properties.smallest_key,
            largest_key: properties.largest_key,
            range_del_applied_seqno: properties.range_del_applied_seqno,
        };
        Ok(SstHandle::new(meta, reader, Arc::clone(fs)))
    }

    /// True if `user_key` lies within the file's key range.
    pub fn covers(&self, user_key: &[u8]) -> bool {
        user_key >= self.smallest_user_key() && user_key <= self.largest_user_key()
    }

    /// The smallest user key in the file.
    pub fn smallest_user_key(&self) -> &[u8] {
        user_key_of(&self.meta.smallest_key)
    }

    /// The largest user key in the file.
    pub fn largest_user_key(&self) -> &[u8] {
        user_key_of(&self.meta.largest_key)
    }

    /// Marks the file for deletion once the last reference drops.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }
}

impl Drop for SstHandle {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            // If this fails the file is an orphan, which the next open removes.
            let _ = self.fs.remove_file(self.reader.path());
        }
    }
}

/// The open SSTs of each level.
#[derive(Debug, Default)]
pub struct Version {
    /// Per level; L0 newest first, other levels by key range.
    pub levels: Vec<Vec<Arc<SstHandle>>>,
    /// Reads that are not registered snapshots need a seqno at least this (invariant 4).
    pub read_seqno_min: u64,
}

impl Version {
    /// Builds the version for `state`, reusing the open readers in `open` (by file number).
    pub fn build(
        state: &ManifestState,
        open: &HashMap<u64, Arc<SstHandle>>,
        read_seqno_min: u64,
    ) -> Version {
        let mut levels = Vec::with_capacity(LEVEL_COUNT);
        for (level, files) in state.levels.iter().enumerate() {
            let mut handles: Vec<Arc<SstHandle>> =
                files.iter().filter_map(|file| open.get(&file.number).cloned()).collect();
            if level == 0 {
                handles.sort_by_key(|handle| std::cmp::Reverse(handle.meta.number));
            } else {
                handles.sort_by(|a, b| a.smallest_user_key().cmp(b.smallest_user_key()));
            }
            levels.push(handles);
        }
        Version { levels, read_seqno_min }
    }

    /// Every open SST by file number.
    pub fn handles_by_number(&self) -> HashMap<u64, Arc<SstHandle>> {
        self.levels
            .iter()
            .flatten()
            .map(|handle| (handle.meta.number, Arc::clone(handle)))
            .collect()
    }

    /// The file of `level` (1 or deeper) whose range holds `user_key`, if any.
    pub fn file_covering(&self, level: usize, user_key: &[u8]) -> Option<&Arc<SstHandle>> {
        let files = &self.levels[level];
        let position = files.partition_point(|file| file.largest_user_key() < user_key);
        files.get(position).filter(|file| file.smallest_user_key() <= user_key)
    }
}

/// Everything one read looks at.
#[derive(Debug)]
pub struct ReadView {
    /// The active memtable.
    pub mem: Arc<Memtable>,
    /// Frozen memtables, newest first.
    pub imms: Vec<Arc<Memtable>>,
    /// The SSTs.
    pub version: Arc<Version>,
    /// Every live range tombstone, durable or still in a memtable.
    pub range_dels: Arc<RangeTombstones>,
}

impl ReadView {
    /// Reads that are not registered snapshots need a seqno at least this.
    pub fn read_seqno_min(&self) -> u64 {
        self.version.read_seqno_min.max(self.range_dels.read_seqno_min())
    }
}
