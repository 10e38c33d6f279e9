//! `Version` and `ReadView`: the immutable set of sources a read uses.
//!
//! A `ReadView` is the active memtable, the frozen memtables and a `Version` (the open SSTs per
//! level). It is replaced, never changed: a read or iterator clones the `Arc` and keeps a
//! consistent view however the database changes afterwards.
//!
//! Thread safety: immutable and shared. An `SstHandle` that a compaction made obsolete is
//! deleted from disk when its last reference drops, so a file is never removed while a read,
//! iterator or snapshot can still reach it. Its reader may be closed (evicted from the table
//! cache) and opened again meanwhile; that never changes what a read sees.
//!
//! Invariants:
//! 1. Frozen memtables are listed newest first, and L0 files newest first; any key's versions
//!    in a newer source have larger seqnos than in an older one, and every level above holds
//!    newer versions of a key than every level below.
//! 2. Files of L1 and deeper are sorted by key and their user-key ranges do not overlap.
//! 3. A memtable leaves the view in the same swap that adds the SST holding its entries.
//! 4. A read at a seqno below `Version::read_seqno_min` that is not a registered snapshot
//!    must not use the version: a compaction may have dropped versions it needs.
//! 5. Only a live `SstHandle` opens its file (through the table cache), and it evicts its
//!    reader before it deletes an obsolete file, so a deleted file is never opened again.

use crate::key::user_key_of;
use crate::manifest::{FileMeta, ManifestState, LEVEL_COUNT};
use crate::memtable::Memtable;
use crate::range_del::RangeTombstones;
use crate::sst::{SstProperties, SstReader};
use crate::table_cache::{next_cache_id, TableCache};
use crate::Result;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A live SST: what the manifest says of it, and the way to its reader. The reader itself
/// lives in the `TableCache`, which may close it and open it again on demand.
pub struct SstHandle {
    /// The manifest's record of the file (its level is where it was first placed; a trivial
    /// move reuses the handle in another level).
    pub meta: FileMeta,
    /// The file's key in the table cache and in the block cache, unique in the process.
    id: u64,
    path: PathBuf,
    tables: Arc<TableCache>,
    /// Set once no version lists the file: it is deleted when the handle drops.
    obsolete: AtomicBool,
}

impl std::fmt::Debug for SstHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstHandle").field("meta", &self.meta).finish_non_exhaustive()
    }
}

impl SstHandle {
    /// Opens and validates the live file `meta` at `path` (its size must match the manifest)
    /// and caches its reader.
    pub fn open(tables: &Arc<TableCache>, path: &Path, meta: FileMeta) -> Result<SstHandle> {
        let id = next_cache_id();
        let reader = tables.open(id, path, Some(meta.size_bytes))?;
        tables.insert(id, Arc::new(reader));
        Ok(SstHandle::with_id(tables, path, meta, id))
    }

    fn with_id(tables: &Arc<TableCache>, path: &Path, meta: FileMeta, id: u64) -> SstHandle {
        SstHandle {
            meta,
            id,
            path: path.to_path_buf(),
            tables: Arc::clone(tables),
            obsolete: AtomicBool::new(false),
        }
    }

    /// Opens the SST just written at `path` as file `number` of `level`, with what its writer
    /// reported, and caches its reader; the file is removed if it cannot be opened.
    pub fn open_written(
        tables: &Arc<TableCache>,
        path: &Path,
        number: u64,
        level: u32,
        properties: SstProperties,
    ) -> Result<SstHandle> {
        let id = next_cache_id();
        let reader = match tables.open(id, path, None) {
            Ok(reader) => Arc::new(reader),
            Err(error) => {
                let _ = tables.fs().remove_file(path);
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
            expiry_min: properties.expiry_min,
        };
        tables.insert(id, reader);
        Ok(SstHandle::with_id(tables, path, meta, id))
    }

    /// The file's reader, from the table cache, opening the file again if it was evicted.
    /// The caller may hold it as long as it needs; the table cache's bound does not count it.
    pub fn reader(&self) -> Result<Arc<SstReader>> {
        self.tables.reader(self.id, &self.path, self.meta.size_bytes)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True if `user_key` lies within the file's key range.
    pub fn covers(&self, user_key: &[u8]) -> bool {
        user_key >= self.smallest_user_key() && user_key <= self.largest_user_key()
    }

    /// True if the file may hold a user key within (`lower`, `upper`).
    pub fn overlaps(&self, lower: std::ops::Bound<&[u8]>, upper: std::ops::Bound<&[u8]>) -> bool {
        use std::ops::Bound;
        let (smallest, largest) = (self.smallest_user_key(), self.largest_user_key());
        let above_lower = match lower {
            Bound::Included(key) => largest >= key,
            Bound::Excluded(key) => largest > key,
            Bound::Unbounded => true,
        };
        let below_upper = match upper {
            Bound::Included(key) => smallest <= key,
            Bound::Excluded(key) => smallest < key,
            Bound::Unbounded => true,
        };
        above_lower && below_upper
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
        // First out of the table cache (nobody can ask for this id again: invariant 5), then
        // off the disk.
        self.tables.evict(self.id);
        if self.obsolete.load(Ordering::Acquire) {
            // If this fails the file is an orphan, which the next open removes.
            let _ = self.tables.fs().remove_file(&self.path);
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
    /// The most L0 files one keyspace has (`compaction::l0::depth`).
    pub l0_depth: usize,
    /// What the write slowdown and stop triggers compare with: the L0 depth, or the L0 file
    /// count over `L0_FILES_TOTAL_PER_TRIGGER` if higher (many shallow keyspaces still cost
    /// every read a range check per file, and compaction must keep up with them too).
    pub l0_pressure: usize,
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
        let l0_depth = crate::compaction::l0::depth(levels[0].iter().map(|handle| {
            crate::compaction::l0::keyspace_range(
                &handle.meta.smallest_key,
                &handle.meta.largest_key,
            )
        }));
        let l0_pressure =
            l0_depth.max(levels[0].len() / crate::compaction::picker::L0_FILES_TOTAL_PER_TRIGGER);
        Version { levels, read_seqno_min, l0_depth, l0_pressure }
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
    /// The same memtables and range tombstones over `version`.
    pub fn with_version(&self, version: Arc<Version>) -> ReadView {
        ReadView {
            mem: Arc::clone(&self.mem),
            imms: self.imms.clone(),
            version,
            range_dels: Arc::clone(&self.range_dels),
        }
    }

    /// The same memtables and SSTs with `range_dels`.
    pub fn with_range_dels(&self, range_dels: RangeTombstones) -> ReadView {
        ReadView {
            range_dels: Arc::new(range_dels),
            ..self.with_version(Arc::clone(&self.version))
        }
    }

    /// Reads that are not registered snapshots need a seqno at least this.
    pub fn read_seqno_min(&self) -> u64 {
        self.version.read_seqno_min.max(self.range_dels.read_seqno_min())
    }
}
