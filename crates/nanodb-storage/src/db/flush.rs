//! Flush: writing frozen memtables to L0 SSTs and recording them in the manifest.
//!
//! One background thread (or, with `Options::background_threads == 0`, the writer that needs
//! room) flushes the oldest frozen memtable: it writes and syncs one SST per keyspace
//! partition (so every L0 file holds one keyspace) without holding the engine lock, syncs the directory, logs a version edit (the new file, the WAL number still
//! needed, the last flushed seqno), swaps the read view, and deletes the memtable's WAL.
//!
//! Thread safety: the flush thread and `flush_all` coordinate through `EngineState` and its
//! condvar; `flush_running` keeps two flushes of the same memtable from overlapping.
//!
//! Invariants:
//! 1. Frozen memtables are flushed oldest first, so L0 file numbers grow with their seqnos.
//! 2. A WAL file is deleted only after the manifest edit covering its memtable is synced.
//! 3. A failure poisons the database; the memtable stays in the view, so reads stay correct.

use super::stats::StatsCounters;
use super::{DbInner, EngineState, ENGINE_WAIT};
use crate::filenames::{sst_path, wal_path};
use crate::keyspace::{file_keyspace, KeyspaceFilter};
use crate::manifest::{sync_dir, ManifestWriter, VersionEdit, MANIFEST_SIZE_BYTES_ROLL};
use crate::memtable::{Memtable, Partition};
use crate::options::Options;
use crate::rate_limit::{IoPriority, RateLimiter};
use crate::sst::{CompressionBytes, SstWriter, SstWriterOptions};
use crate::table_cache::TableCache;
use crate::version::{ReadView, SstHandle, Version};
use crate::{Error, Result};
use parking_lot::MutexGuard;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

/// An SST a flush wrote: its handle and how its blocks compressed.
pub(crate) type FlushedSst = (Arc<SstHandle>, CompressionBytes);

/// Writes `memtable` to L0 SSTs in `dir`, one per keyspace partition, numbered from `numbers`
/// (which must hold at least `memtable.partitions().len()` numbers), syncs them and the
/// directory, and opens them. Entries of keyspaces `keyspaces` says were dropped are left out;
/// a partition with nothing left makes no file. The writes are paced by `rate_limiter` at
/// flush priority, if given. On failure the files written so far are removed.
pub(crate) fn write_ssts(
    tables: &Arc<TableCache>,
    dir: &Path,
    options: &Options,
    memtable: &Memtable,
    numbers: std::ops::Range<u64>,
    keyspaces: &KeyspaceFilter,
    rate_limiter: Option<&Arc<RateLimiter>>,
) -> Result<Vec<FlushedSst>> {
    let partitions = memtable.partitions();
    if (numbers.end - numbers.start) < partitions.len() as u64 {
        return Err(Error::Internal("a flush was given too few file numbers".into()));
    }
    let mut written: Vec<FlushedSst> = Vec::new();
    let mut paths = Vec::new();
    let result = (|| {
        for (partition, number) in partitions.iter().zip(numbers) {
            paths.push(sst_path(dir, number));
            let sst =
                write_partition(tables, dir, options, partition, number, keyspaces, rate_limiter)?;
            written.extend(sst);
        }
        if !written.is_empty() {
            sync_dir(tables.fs().as_ref(), dir)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(written),
        Err(error) => {
            drop(written);
            for path in &paths {
                let _ = tables.fs().remove_file(path);
            }
            Err(error)
        }
    }
}

/// Writes one partition to SST `number` and opens it; `None` (and no file) if every entry was
/// of a dropped keyspace.
fn write_partition(
    tables: &Arc<TableCache>,
    dir: &Path,
    options: &Options,
    partition: &Partition,
    number: u64,
    keyspaces: &KeyspaceFilter,
    rate_limiter: Option<&Arc<RateLimiter>>,
) -> Result<Option<FlushedSst>> {
    let fs = tables.fs();
    let path = sst_path(dir, number);
    let writer_options = SstWriterOptions {
        block_size_bytes: options.block_size_bytes,
        bloom_bits_per_key: options.bloom_bits_per_key,
        compression: options.compression_for(false),
    };
    let mut writer = SstWriter::create(fs.as_ref(), &path, writer_options)?
        .rate_limited(rate_limiter, IoPriority::High);
    partition.for_each(|key, value| {
        if keyspaces.is_dropped_key(key) {
            return Ok(());
        }
        writer.add(key, value)
    })?;
    if writer.entry_count() == 0 {
        drop(writer);
        fs.remove_file(&path)
            .map_err(|error| Error::io(format!("remove empty {}", path.display()), error))?;
        return Ok(None);
    }
    let (properties, compression) = writer.finish()?;
    let handle = SstHandle::open_written(tables, &path, number, 0, properties)?;
    Ok(Some((Arc::new(handle), compression)))
}

/// Flushes the oldest frozen memtable, if any. Called with the engine lock held; releases it
/// while the SST is written.
pub(crate) fn flush_oldest(
    inner: &DbInner,
    engine: &mut MutexGuard<'_, EngineState>,
) -> Result<()> {
    while engine.flush_running {
        inner.engine_changed.wait_for(engine, ENGINE_WAIT);
        inner.check_writable()?;
    }
    let Some(imm) = engine.imms.front().cloned() else { return Ok(()) };
    let first = engine.state.next_file_number;
    let numbers = first..first + imm.partitions().len() as u64;
    engine.state.next_file_number = numbers.end;
    engine.flush_running = true;
    let keyspaces = engine.state.keyspace_filter();
    let written = MutexGuard::unlocked(engine, || {
        // A panic here must not leave `flush_running` set: it becomes an error (and poison).
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            write_ssts(
                &inner.tables,
                &inner.dir,
                &inner.options,
                &imm,
                numbers,
                &keyspaces,
                inner.rate_limiter.as_ref(),
            )
        }))
        .unwrap_or_else(|panic| Err(Error::Internal(super::write::panic_message(&panic))))
    });
    engine.flush_running = false;
    inner.engine_changed.notify_all();
    let mut written = written?;
    // A keyspace dropped while the files were written: its file is not installed (nothing can
    // read it, and a lone L0 file of a keyspace that gets no more writes would never compact).
    let now = engine.state.keyspace_filter();
    written.retain(|(handle, _)| {
        let dropped = file_keyspace(&handle.meta).is_some_and(|id| now.is_dropped(id));
        if dropped {
            handle.mark_obsolete();
        }
        !dropped
    });

    // WAL files from the next memtable on are still needed.
    let view = inner.current_view();
    let log_number = engine.imms.get(1).map_or(view.mem.wal_number(), |next| next.wal_number());
    let edit = VersionEdit {
        log_number: Some(log_number),
        next_file_number: Some(engine.state.next_file_number),
        last_seqno: Some(engine.state.last_seqno.max(imm.seqno_max())),
        added: written.iter().map(|(handle, _)| handle.meta.clone()).collect(),
        added_range_tombstones: keyspaces.live_range_tombstones(imm.range_tombstones()),
        ..VersionEdit::default()
    };
    commit_edit(inner, engine, &edit)?;

    let mut open = view.version.handles_by_number();
    for (handle, _) in &written {
        open.insert(handle.meta.number, Arc::clone(handle));
    }
    let version = Arc::new(Version::build(&engine.state, &open, view.version.read_seqno_min));
    engine.imms.pop_front();
    if let Some(budget) = &inner.options.memory_budget {
        budget.credit(imm.size_bytes() as u64);
    }
    let imms = view.imms.iter().filter(|m| !Arc::ptr_eq(m, &imm)).cloned().collect();
    // Range tombstones of dropped keyspaces did not go to the manifest: they leave the view.
    let dropped = |t: &crate::range_del::RangeTombstone| keyspaces.is_dropped_key(&t.start);
    let range_dels = if imm.range_tombstones().iter().any(dropped) {
        Arc::new(view.range_dels.without(dropped))
    } else {
        Arc::clone(&view.range_dels)
    };
    *inner.view.write() =
        Arc::new(ReadView { mem: Arc::clone(&view.mem), imms, version, range_dels });
    inner.engine_changed.notify_all();

    let size_bytes: u64 = written.iter().map(|(handle, _)| handle.meta.size_bytes).sum();
    StatsCounters::add(&inner.stats.flushes, 1);
    StatsCounters::add(&inner.stats.flush_bytes_written, size_bytes);
    StatsCounters::add(&inner.stats.level_bytes_written[0], size_bytes);
    for (_, compression) in written {
        StatsCounters::add_compression(&inner.stats, compression);
    }
    // The WAL is now redundant. If removing it fails, the next open removes it.
    let _ = inner.fs.remove_file(&wal_path(&inner.dir, imm.wal_number()));
    // A tombstone over a range no file holds is not needed past its flush.
    super::range_del::collect_garbage(inner, engine)
}

/// Flushes the oldest frozen memtable, then runs every compaction that is due: the writer's
/// own work when there are no background threads.
pub(crate) fn flush_oldest_inline(
    inner: &DbInner,
    engine: &mut MutexGuard<'_, EngineState>,
) -> Result<()> {
    flush_oldest(inner, engine)?;
    super::compact::compact_until_done(inner, engine)
}

/// Applies `edit` to the file-set state and logs it to the manifest (rolling the manifest when
/// it grows past its limit). The edit is checked to apply before it becomes durable, since a
/// logged edit that cannot be replayed would make the next open fail. Nothing reaches the
/// manifest once the database is poisoned (say, after a torn manifest record): the poison is
/// set under the engine lock held here, so this check is enough.
pub(crate) fn commit_edit(
    inner: &DbInner,
    engine: &mut MutexGuard<'_, EngineState>,
    edit: &VersionEdit,
) -> Result<()> {
    let mut state = engine.state.clone();
    state.apply(edit).map_err(|detail| Error::corruption(&inner.dir, detail))?;
    inner.check_writable()?;
    engine.manifest.log_edit(edit)?;
    engine.state = state;
    if engine.manifest.size_bytes() > MANIFEST_SIZE_BYTES_ROLL {
        roll_manifest(inner, engine)?;
    }
    Ok(())
}

/// Replaces the manifest with a new one holding just the current state.
fn roll_manifest(inner: &DbInner, engine: &mut MutexGuard<'_, EngineState>) -> Result<()> {
    let old_number = engine.manifest.number();
    let number = engine.state.next_file_number;
    engine.state.next_file_number += 1;
    engine.manifest = ManifestWriter::create(inner.fs.as_ref(), &inner.dir, number, &engine.state)?;
    let old_path = inner.dir.join(crate::filenames::manifest_name(old_number));
    let _ = inner.fs.remove_file(&old_path);
    Ok(())
}

/// Freezes the active memtable (if it holds anything) and waits until it is flushed.
pub(crate) fn flush_all(inner: &DbInner) -> Result<()> {
    let target_wal = {
        let mut wal = inner.wal.lock();
        inner.check_writable()?;
        let mem = Arc::clone(&inner.current_view().mem);
        if !mem.is_empty() {
            super::write::freeze_memtable(inner, &mut wal)?;
        }
        mem.wal_number()
    };
    let mut engine = inner.engine.lock();
    while engine.imms.front().is_some_and(|imm| imm.wal_number() <= target_wal) {
        inner.check_writable()?;
        if inner.options.background_threads == 0 {
            flush_oldest_inline(inner, &mut engine).map_err(|error| inner.poison(error))?;
        } else {
            inner.engine_changed.wait_for(&mut engine, ENGINE_WAIT);
        }
    }
    inner.check_writable()
}

/// Starts the background flush thread, unless the options ask for inline flushes.
pub(crate) fn start_flush_thread(inner: &Arc<DbInner>) -> Result<Option<JoinHandle<()>>> {
    if inner.options.background_threads == 0 {
        return Ok(None);
    }
    let inner = Arc::clone(inner);
    std::thread::Builder::new()
        .name("nanodb-flush".into())
        .spawn(move || flush_thread(&inner))
        .map(Some)
        .map_err(|error| Error::io("start the flush thread", error))
}

fn flush_thread(inner: &DbInner) {
    let mut engine = inner.engine.lock();
    // `closed` is set before `shutdown` (see `compact::compaction_thread`).
    while !engine.shutdown && !inner.closed.load(std::sync::atomic::Ordering::Acquire) {
        let poisoned = inner.poisoned.load(std::sync::atomic::Ordering::Acquire);
        // The shared memory budget asked for an early flush. Frozen memtables go first (their
        // flushes free memory too); then the active one is frozen, if the WAL lock is free:
        // a writer holding it may be waiting for this thread to flush.
        if !poisoned
            && engine.imms.is_empty()
            && super::budget::take_flush_request(&inner.flush_requested)
        {
            let frozen = MutexGuard::unlocked(&mut engine, || {
                let Some(mut wal) = inner.wal.try_lock_for(ENGINE_WAIT) else {
                    inner.flush_requested.store(true, std::sync::atomic::Ordering::Release);
                    return Ok(());
                };
                let room = inner.engine.lock().imms.len() < inner.options.frozen_memtables_max;
                if !room || inner.current_view().mem.is_empty() {
                    return Ok(());
                }
                super::write::freeze_memtable(inner, &mut wal)
            });
            if let Err(error) = frozen {
                inner.poison(error);
            }
            continue;
        }
        if engine.imms.is_empty() || poisoned {
            inner.engine_changed.wait_for(&mut engine, ENGINE_WAIT);
            continue;
        }
        let flushed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            flush_oldest(inner, &mut engine)
        }))
        .unwrap_or_else(|panic| Err(Error::Internal(super::write::panic_message(&panic))));
        if let Err(error) = flushed {
            inner.poison(error);
        }
    }
}
