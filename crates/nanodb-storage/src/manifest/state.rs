//! `ManifestState`: the live file set and counters, built by applying version edits in order.
//!
//! Thread safety: owned by the database's engine state, under its mutex.
//!
//! Invariants:
//! 1. Every file number appears at most once across all levels.
//! 2. `log_number`, `next_file_number` and `last_seqno` never decrease.
//! 3. An edit that removes a file that is not there, adds one that is, names a level past
//!    `LEVEL_COUNT`, or a file number or seqno past its limit, is corruption.

use super::edit::{FileMeta, VersionEdit};
use crate::filenames::FILE_NUMBER_MAX;
use crate::key::SEQNO_MAX;
use crate::keyspace::{KeyspaceFilter, DEFAULT_KEYSPACE_ID, KEYSPACES_LIVE_MAX};
use crate::range_del::RangeTombstone;
use std::collections::BTreeMap;

/// Levels of the LSM tree.
pub const LEVEL_COUNT: usize = 7;

/// The live file set and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestState {
    /// Files per level; within L0 in the order they were added (oldest first).
    pub levels: Vec<Vec<FileMeta>>,
    /// WAL files numbered below this are no longer needed.
    pub log_number: u64,
    /// The next unused file number.
    pub next_file_number: u64,
    /// Every seqno up to this one is in an SST.
    pub last_seqno: u64,
    /// Durable range tombstones (flushed out of their memtable), by seqno ascending.
    pub range_tombstones: Vec<RangeTombstone>,
    /// Live keyspaces besides the default one: id → name.
    pub keyspaces: BTreeMap<u32, String>,
    /// The next unused keyspace id (the default keyspace, id 0, always exists).
    pub next_keyspace_id: u32,
}

impl Default for ManifestState {
    fn default() -> ManifestState {
        ManifestState {
            levels: vec![Vec::new(); LEVEL_COUNT],
            log_number: 0,
            next_file_number: 1,
            last_seqno: 0,
            range_tombstones: Vec::new(),
            keyspaces: BTreeMap::new(),
            next_keyspace_id: DEFAULT_KEYSPACE_ID + 1,
        }
    }
}

impl ManifestState {
    /// Applies one edit; `Err` says why the edit cannot apply.
    pub fn apply(&mut self, edit: &VersionEdit) -> Result<(), String> {
        let numbers = edit
            .added
            .iter()
            .map(|file| file.number)
            .chain(edit.log_number)
            .chain(edit.next_file_number);
        if let Some(number) = numbers.into_iter().find(|&number| number > FILE_NUMBER_MAX) {
            return Err(format!("file number {number} is over the limit {FILE_NUMBER_MAX}"));
        }
        if let Some(seqno) = edit.last_seqno.filter(|&seqno| seqno > SEQNO_MAX) {
            return Err(format!("seqno {seqno} is over the limit {SEQNO_MAX}"));
        }
        for &(level, number) in &edit.removed {
            let files = self.levels.get_mut(level as usize).ok_or_else(|| {
                format!("edit removes file {number} from level {level}, past the last level")
            })?;
            let position =
                files.iter().position(|file| file.number == number).ok_or_else(|| {
                    format!("edit removes file {number} which is not in level {level}")
                })?;
            files.remove(position);
        }
        for file in &edit.added {
            if self.find(file.number).is_some() {
                return Err(format!("edit adds file {} which is already live", file.number));
            }
            let level = self.levels.get_mut(file.level as usize).ok_or_else(|| {
                format!(
                    "edit adds file {} to level {}, past the last level",
                    file.number, file.level
                )
            })?;
            level.push(file.clone());
        }
        for &seqno in &edit.removed_range_tombstones {
            let position = self
                .range_tombstones
                .iter()
                .position(|tombstone| tombstone.seqno == seqno)
                .ok_or_else(|| {
                    format!("edit removes range tombstone {seqno}, which is not live")
                })?;
            self.range_tombstones.remove(position);
        }
        for tombstone in &edit.added_range_tombstones {
            if tombstone.seqno > SEQNO_MAX {
                return Err(format!("range tombstone seqno {} is over the limit", tombstone.seqno));
            }
            if self.range_tombstones.iter().any(|live| live.seqno == tombstone.seqno) {
                return Err(format!("edit adds range tombstone {} twice", tombstone.seqno));
            }
            let position =
                self.range_tombstones.partition_point(|live| live.seqno < tombstone.seqno);
            self.range_tombstones.insert(position, tombstone.clone());
        }
        self.apply_keyspaces(edit)?;
        if let Some(value) = edit.log_number {
            self.log_number = self.log_number.max(value);
        }
        if let Some(value) = edit.next_file_number {
            self.next_file_number = self.next_file_number.max(value);
        }
        if let Some(value) = edit.last_seqno {
            self.last_seqno = self.last_seqno.max(value);
        }
        Ok(())
    }

    fn apply_keyspaces(&mut self, edit: &VersionEdit) -> Result<(), String> {
        for (id, name) in &edit.created_keyspaces {
            // Ids are never reused (keyspace.rs invariant 2).
            if *id == DEFAULT_KEYSPACE_ID || *id < self.next_keyspace_id {
                return Err(format!("edit creates keyspace {name:?} with id {id}, already used"));
            }
            if self.keyspaces.values().any(|live| live == name) {
                return Err(format!("edit creates keyspace {name:?} twice"));
            }
            if self.keyspaces.len() >= KEYSPACES_LIVE_MAX {
                return Err(format!(
                    "edit creates keyspace {name:?} past the limit of {KEYSPACES_LIVE_MAX}"
                ));
            }
            self.keyspaces.insert(*id, name.clone());
            self.next_keyspace_id = id.saturating_add(1);
        }
        for id in &edit.dropped_keyspaces {
            if self.keyspaces.remove(id).is_none() {
                return Err(format!("edit drops keyspace {id}, which is not live"));
            }
        }
        if let Some(next) = edit.next_keyspace_id {
            self.next_keyspace_id = self.next_keyspace_id.max(next);
        }
        Ok(())
    }

    /// Which keyspaces' data is still live (for flush and compaction).
    pub fn keyspace_filter(&self) -> KeyspaceFilter {
        KeyspaceFilter {
            next_id: self.next_keyspace_id,
            live: self.keyspaces.keys().copied().collect(),
        }
    }

    /// The file with `number`, if live.
    pub fn find(&self, number: u64) -> Option<&FileMeta> {
        self.levels.iter().flatten().find(|file| file.number == number)
    }

    /// Every live file.
    pub fn files(&self) -> impl Iterator<Item = &FileMeta> {
        self.levels.iter().flatten()
    }

    /// One edit that rebuilds this whole state from nothing (the first record of a manifest).
    pub fn snapshot_edit(&self) -> VersionEdit {
        VersionEdit {
            log_number: Some(self.log_number),
            next_file_number: Some(self.next_file_number),
            last_seqno: Some(self.last_seqno),
            added: self.files().cloned().collect(),
            removed: Vec::new(),
            added_range_tombstones: self.range_tombstones.clone(),
            removed_range_tombstones: Vec::new(),
            created_keyspaces: self
                .keyspaces
                .iter()
                .map(|(id, name)| (*id, name.clone()))
                .collect(),
            dropped_keyspaces: Vec::new(),
            next_keyspace_id: Some(self.next_keyspace_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(number: u64, level: u32) -> FileMeta {
        FileMeta {
            number,
            level,
            size_bytes: 1,
            entry_count: 1,
            seqno_min: 1,
            seqno_max: 1,
            smallest_key: vec![],
            largest_key: vec![],
            range_del_applied_seqno: 0,
            expiry_min: 0,
        }
    }

    #[test]
    fn apply_adds_removes_and_keeps_counters_monotonic() {
        let mut state = ManifestState::default();
        let edit = VersionEdit {
            log_number: Some(5),
            next_file_number: Some(9),
            last_seqno: Some(100),
            added: vec![file(3, 0), file(4, 0)],
            removed: vec![],
            added_range_tombstones: vec![RangeTombstone {
                start: b"a".to_vec(),
                end: b"b".to_vec(),
                seqno: 7,
            }],
            removed_range_tombstones: vec![],
            created_keyspaces: vec![(1, "users".into()), (2, "posts".into())],
            dropped_keyspaces: vec![1],
            next_keyspace_id: Some(1),
        };
        state.apply(&edit).unwrap();
        state
            .apply(&VersionEdit {
                log_number: Some(2),
                removed: vec![(0, 3)],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(state.log_number, 5);
        assert_eq!(state.files().map(|f| f.number).collect::<Vec<_>>(), vec![4]);
        let mut rebuilt = ManifestState::default();
        rebuilt.apply(&state.snapshot_edit()).unwrap();
        assert_eq!(rebuilt, state);
        assert_eq!(state.range_tombstones.len(), 1);
        let removal = VersionEdit { removed_range_tombstones: vec![7], ..Default::default() };
        state.apply(&removal).unwrap();
        assert!(state.range_tombstones.is_empty());
        assert!(state.apply(&removal).is_err(), "a tombstone removed twice is refused");
        assert_eq!(state.keyspaces.len(), 1);
        assert_eq!(state.next_keyspace_id, 3);
        assert!(state.keyspace_filter().is_dropped(1));
        assert!(!state.keyspace_filter().is_dropped(2));
        let reuse =
            VersionEdit { created_keyspaces: vec![(1, "again".into())], ..Default::default() };
        assert!(state.apply(&reuse).is_err(), "a dropped keyspace's id is never reused");
        let twice =
            VersionEdit { created_keyspaces: vec![(5, "posts".into())], ..Default::default() };
        assert!(state.apply(&twice).is_err(), "two live keyspaces never share a name");
        let gone = VersionEdit { dropped_keyspaces: vec![1], ..Default::default() };
        assert!(state.apply(&gone).is_err());
    }

    #[test]
    fn impossible_edits_are_refused() {
        let mut state = ManifestState::default();
        state.apply(&VersionEdit { added: vec![file(3, 0)], ..Default::default() }).unwrap();
        assert!(state
            .apply(&VersionEdit { added: vec![file(3, 1)], ..Default::default() })
            .is_err());
        assert!(state.apply(&VersionEdit { removed: vec![(0, 7)], ..Default::default() }).is_err());
        assert!(state.apply(&VersionEdit { removed: vec![(9, 3)], ..Default::default() }).is_err());
        let huge =
            VersionEdit { next_file_number: Some(FILE_NUMBER_MAX + 1), ..Default::default() };
        assert!(state.apply(&huge).is_err());
        let huge = VersionEdit { last_seqno: Some(SEQNO_MAX + 1), ..Default::default() };
        assert!(state.apply(&huge).is_err());
        let past_last = file(8, LEVEL_COUNT as u32);
        assert!(state
            .apply(&VersionEdit { added: vec![past_last], ..Default::default() })
            .is_err());
    }
}
