//! Opening a database: lock the directory, read the manifest, open the SSTs, replay the WAL
//! files newer than what the SSTs hold, flush what was replayed, start a new manifest and WAL,
//! and remove files nothing refers to.
//!
//! Thread safety: runs on the opening thread before the database is shared.
//!
//! Invariants:
//! 1. Replayed batches must continue the seqno sequence exactly; a gap is corruption.
//! 2. Only the newest WAL with records may end in a torn record (older ones were synced before
//!    the next was created; a crash while recovering can leave newer, empty WALs); a torn
//!    record followed by records in a newer WAL is corruption.
//! 3. Nothing is deleted until the new manifest and CURRENT that make it unneeded are durable.
//! 4. The WAL the manifest's `log_number` names exists; if not, edits were lost and open fails.

use super::flush::write_ssts;
use super::stats::StatsCounters;
use super::{DbInner, EngineState, WalState};
use crate::cache::BlockCache;
use crate::filenames::{
    parse_file_name, sst_path, wal_path, FileKind, CURRENT_FILE_NAME, LOCK_FILE_NAME,
};
use crate::fs::{FileLock, Fs};
use crate::key::SEQNO_MAX;
use crate::manifest::{self, sync_dir, ManifestState, ManifestWriter};
use crate::memtable::Memtable;
use crate::options::{Options, WalRecovery};
use crate::range_del::RangeTombstones;
use crate::rate_limit::RateLimiter;
use crate::table_cache::TableCache;
use crate::version::{ReadView, SstHandle, Version};
use crate::wal::{create_wal, replay_wal};
use crate::{Error, Result};
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

fn lock_directory(fs: &dyn Fs, dir: &Path) -> Result<Box<dyn FileLock>> {
    fs.lock(&dir.join(LOCK_FILE_NAME)).map_err(|error| match error.kind() {
        io::ErrorKind::WouldBlock => Error::Locked { path: dir.to_path_buf() },
        _ => Error::io(format!("lock {}", dir.display()), error),
    })
}

/// Opens the database in `dir`.
pub(crate) fn open(dir: &Path, options: Options) -> Result<DbInner> {
    options.validate()?;
    let fs = Arc::clone(&options.fs);
    let exists =
        fs.exists(dir).map_err(|error| Error::io(format!("stat {}", dir.display()), error))?;
    if !exists && !options.create_if_missing {
        return Err(Error::NotFound { path: dir.to_path_buf() });
    }
    fs.create_dir_all(dir)
        .map_err(|error| Error::io(format!("create {}", dir.display()), error))?;
    if !exists {
        // The new directory's own entry must be durable before anything in it is acknowledged.
        if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            sync_dir(fs.as_ref(), parent)?;
        }
    }
    let lock = lock_directory(fs.as_ref(), dir)?;

    let names =
        fs.list_dir(dir).map_err(|error| Error::io(format!("list {}", dir.display()), error))?;
    let files: Vec<FileKind> = names.iter().filter_map(|name| parse_file_name(name)).collect();
    let mut state = load_manifest_state(fs.as_ref(), dir, &options, &files)?;
    let largest_number = files
        .iter()
        .filter_map(|kind| match kind {
            FileKind::Wal(n) | FileKind::Sst(n) | FileKind::Manifest(n) => Some(*n),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    state.next_file_number = state.next_file_number.max(largest_number + 1);

    check_needed_wal_exists(dir, &state, &files)?;
    let budget_cache = options.memory_budget.as_ref().map(|budget| budget.block_cache());
    let block_cache =
        match (budget_cache.or(options.block_cache.as_ref()), options.block_cache_size_bytes) {
            (Some(shared), _) => Some(Arc::clone(shared)),
            (None, 0) => None,
            (None, size_bytes) => Some(BlockCache::new(size_bytes)),
        };
    let tables = TableCache::new(
        Arc::clone(&fs),
        block_cache.clone(),
        options.open_files_max,
        options.pin_index_and_filter,
        options.mmap_reads,
    );
    let mut open_files = open_ssts(&tables, dir, &state)?;
    let seqno_last = replay_wals(&fs, dir, &options, &files, &mut state, &mut open_files, &tables)?;

    // A fresh WAL and manifest: the manifest says every older WAL is no longer needed.
    let wal_number = allocate(&mut state);
    let wal_writer = create_wal(fs.as_ref(), &wal_path(dir, wal_number))?;
    sync_dir(fs.as_ref(), dir)?;
    state.log_number = wal_number;
    state.last_seqno = seqno_last;
    let manifest_number = allocate(&mut state);
    let manifest = ManifestWriter::create(fs.as_ref(), dir, manifest_number, &state)?;
    remove_obsolete_files(fs.as_ref(), dir, &names, &state, manifest_number);

    let version = Arc::new(Version::build(&state, &open_files, 0));
    // No snapshot exists yet and every read is at `seqno_last` or above.
    let range_dels = Arc::new(RangeTombstones::build(state.range_tombstones.clone(), seqno_last));
    let view = ReadView {
        mem: Arc::new(Memtable::new(wal_number, options.memtable_size_bytes_max)),
        imms: Vec::new(),
        version,
        range_dels,
    };
    let token = next_db_token();
    let (registry, default_keyspace) = super::keyspaces::registry_of(&state, token);
    Ok(DbInner {
        dir: dir.to_path_buf(),
        fs,
        view: RwLock::new(Arc::new(view)),
        engine: Mutex::new(EngineState {
            manifest,
            state,
            imms: VecDeque::new(),
            flush_running: false,
            shutdown: false,
            compacting: Default::default(),
            cursors: vec![Vec::new(); crate::manifest::LEVEL_COUNT],
            manual_compaction: false,
        }),
        engine_changed: Condvar::new(),
        queue: Default::default(),
        wal: Mutex::new(WalState { writer: wal_writer, seqno_last, buffer: Vec::new() }),
        seqno_visible: AtomicU64::new(seqno_last),
        poisoned: AtomicBool::new(false),
        poison_cause: Mutex::new(None),
        closed: AtomicBool::new(false),
        stats: StatsCounters::default(),
        block_cache,
        tables,
        rate_limiter: match options.rate_limit_bytes_per_sec {
            0 => None,
            rate => Some(Arc::new(RateLimiter::new(rate))),
        },
        snapshots: Mutex::new(BTreeMap::new()),
        token,
        keyspaces: RwLock::new(registry),
        commit_listener: RwLock::new(None),
        default_keyspace,
        flush_requested: AtomicBool::new(false),
        options,
        _lock: lock,
    })
}

/// A number no other database opened by this process has.
fn next_db_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn allocate(state: &mut ManifestState) -> u64 {
    let number = state.next_file_number;
    state.next_file_number += 1;
    number
}

fn load_manifest_state(
    fs: &dyn Fs,
    dir: &Path,
    options: &Options,
    files: &[FileKind],
) -> Result<ManifestState> {
    if files.contains(&FileKind::Current) {
        if options.error_if_exists {
            return Err(Error::InvalidArgument(format!(
                "a database exists at {} and Options::error_if_exists is set",
                dir.display()
            )));
        }
        let number = manifest::read_current(fs, dir)?;
        return manifest::recover(fs, dir, number);
    }
    // No CURRENT: a new database, unless data files show one was lost. A crash while a new
    // database was first opened can leave a WAL (and a manifest) without CURRENT; such a WAL
    // holds no record, because nothing is written before the open that creates CURRENT ends.
    let data_files = files.iter().filter(|kind| match kind {
        FileKind::Sst(_) => true,
        FileKind::Wal(number) => wal_holds_records(fs, &wal_path(dir, *number), options),
        _ => false,
    });
    if data_files.count() > 0 {
        return Err(Error::corruption(
            dir.join(CURRENT_FILE_NAME),
            "missing, but the directory holds SSTs or WAL records",
        ));
    }
    if !options.create_if_missing {
        return Err(Error::NotFound { path: dir.to_path_buf() });
    }
    Ok(ManifestState::default())
}

/// The WAL named by `log_number` is the one of the oldest memtable not yet in an SST; it is
/// created before any manifest names it and deleted only after a later edit moves
/// `log_number` past it. If it is missing, manifest edits were lost (for example a damaged
/// tail), and opening would silently drop data: refuse, before anything is deleted.
fn check_needed_wal_exists(dir: &Path, state: &ManifestState, files: &[FileKind]) -> Result<()> {
    if state.log_number == 0 || files.contains(&FileKind::Wal(state.log_number)) {
        return Ok(());
    }
    Err(Error::corruption(
        wal_path(dir, state.log_number),
        "missing, but the manifest says it holds writes not yet in an SST",
    ))
}

/// True if the WAL at `path` holds at least one record (or cannot be read: then it may).
fn wal_holds_records(fs: &dyn Fs, path: &Path, options: &Options) -> bool {
    replay_wal(fs, path, options.wal_recovery, |_, _| Ok(()))
        .map_or(true, |replay| replay.batches > 0)
}

fn open_ssts(
    tables: &Arc<TableCache>,
    dir: &Path,
    state: &ManifestState,
) -> Result<HashMap<u64, Arc<SstHandle>>> {
    let mut open = HashMap::new();
    for meta in state.files() {
        let handle = SstHandle::open(tables, &sst_path(dir, meta.number), meta.clone())?;
        open.insert(meta.number, Arc::new(handle));
    }
    Ok(open)
}

/// Replays the WALs the manifest still needs into a memtable, flushes it to an L0 SST if it
/// holds anything, and returns the last seqno.
fn replay_wals(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    options: &Options,
    files: &[FileKind],
    state: &mut ManifestState,
    open_files: &mut HashMap<u64, Arc<SstHandle>>,
    tables: &Arc<TableCache>,
) -> Result<u64> {
    let mut wal_numbers: Vec<u64> = files
        .iter()
        .filter_map(|kind| match kind {
            FileKind::Wal(number) if *number >= state.log_number => Some(*number),
            _ => None,
        })
        .collect();
    wal_numbers.sort_unstable();
    let memtable = Memtable::for_replay(options.memtable_size_bytes_max);
    let mut torn_earlier: Option<(std::path::PathBuf, u64)> = None;
    let mut seqno_last = state.last_seqno;
    for &number in &wal_numbers {
        let path = wal_path(dir, number);
        let replay = replay_wal(fs.as_ref(), &path, options.wal_recovery, |header, ops| {
            let count = u64::from(header.count);
            let seqno_end =
                header.seqno_first.checked_add(count).filter(|&end| end <= SEQNO_MAX + 1);
            let Some(seqno_end) = seqno_end else {
                return Err(Error::corruption(
                    &path,
                    format!("batch seqnos {}+{count} are out of range", header.seqno_first),
                ));
            };
            if seqno_end <= seqno_last + 1 {
                return Ok(()); // already in an SST
            }
            if header.seqno_first != seqno_last + 1 {
                return Err(Error::corruption(
                    &path,
                    format!(
                        "batch starts at seqno {}, expected {}",
                        header.seqno_first,
                        seqno_last + 1
                    ),
                ));
            }
            for (offset, op) in ops.enumerate() {
                memtable.apply(&op, header.seqno_first + offset as u64);
            }
            seqno_last += count;
            Ok(())
        })?;
        if replay.batches > 0 {
            if let Some((torn_path, offset)) = &torn_earlier {
                return Err(Error::corruption(
                    torn_path,
                    format!(
                        "torn record at offset {offset}, but the newer {} holds records",
                        path.display()
                    ),
                ));
            }
        }
        if let Some(offset) = replay.stopped_at {
            if options.wal_recovery == WalRecovery::StopAtFirstCorruption {
                break; // salvage mode: nothing after the damage can be trusted to follow on
            }
            // Normally only the newest WAL is torn. A crash during the open that recovered a
            // torn WAL can leave newer, empty WALs behind it; any record after it is corruption.
            torn_earlier.get_or_insert((path.clone(), offset));
        }
    }
    if !memtable.is_empty() {
        // Writes to keyspaces dropped after them are left out.
        let keyspaces = state.keyspace_filter();
        let mut edit = manifest::VersionEdit {
            added_range_tombstones: keyspaces.live_range_tombstones(memtable.range_tombstones()),
            ..Default::default()
        };
        let first = state.next_file_number;
        let numbers = first..first + memtable.partitions().len() as u64;
        state.next_file_number = numbers.end;
        // Not rate limited: the open waits for it and nothing else runs yet.
        let written = write_ssts(tables, dir, options, &memtable, numbers, &keyspaces, None)?;
        edit.added.extend(written.iter().map(|(handle, _)| handle.meta.clone()));
        state.apply(&edit).map_err(|detail| Error::corruption(dir, detail))?;
        for (handle, _) in written {
            open_files.insert(handle.meta.number, handle);
        }
    }
    Ok(seqno_last)
}

/// Removes WALs and manifests that the new manifest made unneeded, SSTs it does not list and
/// temporary files. Failures are ignored: the next open tries again.
fn remove_obsolete_files(
    fs: &dyn Fs,
    dir: &Path,
    names: &[String],
    state: &ManifestState,
    manifest_number: u64,
) {
    for name in names {
        let obsolete = match parse_file_name(name) {
            Some(FileKind::Wal(number)) => number < state.log_number,
            Some(FileKind::Sst(number)) => state.find(number).is_none(),
            Some(FileKind::Manifest(number)) => number != manifest_number,
            Some(FileKind::Temporary) => true,
            Some(FileKind::Current | FileKind::Lock) | None => false,
        };
        if obsolete {
            let _ = fs.remove_file(&dir.join(name));
        }
    }
}
