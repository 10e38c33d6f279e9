//! `Version` and `ReadView`: the immutable set of sources a read uses.
//!
//! A `ReadView` is the active memtable, the frozen memtables and a `Version` (the open SSTs per
//! level). It is replaced, never changed: a read or iterator clones the `Arc` and keeps a
//! consistent view however the database changes afterwards.
//!
//! Thread safety: immutable and shared.
//!
//! Invariants:
//! 1. Frozen memtables are listed newest first, and L0 files newest first; any key's versions
//!    in a newer source have larger seqnos than in an older one.
//! 2. A memtable leaves the view in the same swap that adds the SST holding its entries.

use crate::key::user_key_of;
use crate::manifest::{FileMeta, ManifestState, LEVEL_COUNT};
use crate::memtable::Memtable;
use crate::sst::SstReader;
use std::collections::HashMap;
use std::sync::Arc;

/// An open SST and what the manifest says of it.
#[derive(Debug)]
pub struct SstHandle {
    /// The manifest's record of the file.
    pub meta: FileMeta,
    /// The open file.
    pub reader: Arc<SstReader>,
}

impl SstHandle {
    /// True if `user_key` lies within the file's key range.
    pub fn covers(&self, user_key: &[u8]) -> bool {
        user_key >= user_key_of(&self.meta.smallest_key)
            && user_key <= user_key_of(&self.meta.largest_key)
    }
}

/// The open SSTs of each level.
#[derive(Debug, Default)]
pub struct Version {
    /// Per level; L0 newest first, other levels by key range.
    pub levels: Vec<Vec<Arc<SstHandle>>>,
}

impl Version {
    /// Builds the version for `state`, reusing the open readers in `open` (by file number).
    pub fn build(state: &ManifestState, open: &HashMap<u64, Arc<SstHandle>>) -> Version {
        let mut levels = Vec::with_capacity(LEVEL_COUNT);
        for (level, files) in state.levels.iter().enumerate() {
            let mut handles: Vec<Arc<SstHandle>> =
                files.iter().filter_map(|file| open.get(&file.number).cloned()).collect();
            if level == 0 {
                handles.sort_by_key(|handle| std::cmp::Reverse(handle.meta.number));
            }
            levels.push(handles);
        }
        Version { levels }
    }

    /// Every open SST by file number.
    pub fn handles_by_number(&self) -> HashMap<u64, Arc<SstHandle>> {
        self.levels
            .iter()
            .flatten()
            .map(|handle| (handle.meta.number, Arc::clone(handle)))
            .collect()
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
}
