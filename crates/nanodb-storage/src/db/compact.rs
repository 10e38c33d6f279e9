//! Compaction in the database: the background threads, running a picked plan without the
//! engine lock, and installing its result atomically (one manifest edit, one view swap).
//!
//! Thread safety: `Options::background_threads` threads (or, with 0, the writer that just
//! flushed) call `compact_once`. The engine lock is held to pick and to install, never while
//! files are merged; `EngineState::compacting` names the files running compactions use, so
//! two compactions never share a file.
//!
//! Invariants:
//! 1. The outputs and the removal of the inputs reach the manifest in one edit, logged before
//!    the view changes; a crash before it leaves only orphan outputs, removed on open.
//! 2. Input files are deleted only when the last version, iterator or read holding them
//!    drops them (`SstHandle::mark_obsolete`).
//! 3. The snapshot list and the horizon seqno are read together under the snapshots lock, so
//!    a snapshot taken later has a seqno at or above the horizon.

use super::flush::commit_edit;
use super::stats::StatsCounters;
use super::{DbInner, EngineState, ENGINE_WAIT};
use crate::compaction::{job, pick, pick_expired, pick_range_deletion, CompactionPlan, JobInput};
use crate::manifest::{FileMeta, VersionEdit, LEVEL_COUNT};
use crate::sst::SstWriterOptions;
use crate::version::{SstHandle, Version};
use crate::{Error, Result};
use parking_lot::MutexGuard;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Picks and runs one compaction, if one is due. Called with the engine lock held; releases
/// it while the compaction merges. Returns whether one ran.
pub(crate) fn compact_once(
    inner: &DbInner,
    engine: &mut MutexGuard<'_, EngineState>,
) -> Result<bool> {
    if engine.manual_compaction {
        return Ok(false);
    }
    let plan =
        pick(&engine.state, &inner.options, &engine.compacting, &engine.cursors).or_else(|| {
            let applicable = super::range_del::applicable_seqno_max(inner);
            pick_range_deletion(&engine.state, &engine.compacting, applicable)
        });
    let plan = match plan {
        Some(plan) => plan,
        None => {
            let now_ms = inner.options.clock.now_ms();
            let Some(plan) = pick_expired(&engine.state, &engine.compacting, now_ms) else {
                return Ok(false);
            };
            StatsCounters::add(&inner.stats.ttl_sweeps, 1);
            plan
        }
    };
    if let Some(last) = plan.inputs.iter().map(|f| crate::key::user_key_of(&f.largest_key)).max() {
        engine.cursors[plan.level] = last.to_vec();
    }
    let result = run_plan(inner, engine, &plan);
    inner.engine_changed.notify_all();
    result.map(|()| true)
}

/// Runs `plan` (a move or a merge) with its files marked busy, and installs the result.
fn run_plan(
    inner: &DbInner,
    engine: &mut MutexGuard<'_, EngineState>,
    plan: &CompactionPlan,
) -> Result<()> {
    let view = inner.current_view();
    let by_number = view.version.handles_by_number();
    let inputs: Vec<Arc<SstHandle>> =
        plan.all_files().filter_map(|file| by_number.get(&file.number).cloned()).collect();
    if inputs.len() != plan.inputs.len() + plan.overlaps.len() {
        return Err(Error::Internal("a compaction input is not in the current view".into()));
    }
    for file in plan.all_files() {
        engine.compacting.insert(file.number);
    }
    let result = if plan.trivial_move {
        install(inner, engine, plan, Vec::new(), view.version.read_seqno_min)
    } else if plan.drop_files {
        // Readers below the visible seqno might not see the tombstone that hides the files.
        let horizon = inner.seqno_visible.load(Ordering::Acquire);
        install(inner, engine, plan, Vec::new(), horizon)
    } else {
        run_and_install(inner, engine, plan, inputs)
    };
    for file in plan.all_files() {
        engine.compacting.remove(&file.number);
    }
    result
}

fn run_and_install(
    inner: &DbInner,
    engine: &mut MutexGuard<'_, EngineState>,
    plan: &CompactionPlan,
    inputs: Vec<Arc<SstHandle>>,
) -> Result<()> {
    let (snapshots, horizon) = {
        let snapshots = inner.snapshots.lock();
        let horizon = inner.seqno_visible.load(Ordering::Acquire);
        (snapshots.keys().copied().collect::<Vec<u64>>(), horizon)
    };
    let read_seqno_min = snapshots.first().map_or(horizon, |&oldest| oldest.min(horizon));
    let (range_dels, range_del_applied_seqno) =
        super::range_del::for_compaction(&engine.state, &snapshots, read_seqno_min);
    let options = &inner.options;
    let keyspaces = engine.state.keyspace_filter();
    let output = MutexGuard::unlocked(engine, || {
        let next_file_number = || {
            let mut engine = inner.engine.lock();
            let number = engine.state.next_file_number;
            engine.state.next_file_number += 1;
            number
        };
        let input = JobInput {
            fs: &inner.fs,
            dir: &inner.dir,
            inputs,
            output_level: plan.output_level,
            snapshots,
            bottommost: plan.bottommost,
            range_dels,
            range_del_applied_seqno,
            sst_size_bytes_target: options.sst_size_bytes_target,
            filter_keys_per_output_max: crate::sst::FILTER_KEYS_PER_OUTPUT_MAX,
            writer_options: SstWriterOptions {
                block_size_bytes: options.block_size_bytes,
                bloom_bits_per_key: options.bloom_bits_per_key_for(plan.bottommost),
                compression: options.compression_for(plan.bottommost),
            },
            closing: &inner.closed,
            tables: &inner.tables,
            rate_limiter: inner.rate_limiter.as_ref(),
            next_file_number: &next_file_number,
            keyspaces,
            now_ms: options.clock.now_ms(),
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job::run(input)))
            .unwrap_or_else(|panic| Err(Error::Internal(super::write::panic_message(&panic))))
    })?;
    let stats = &inner.stats;
    StatsCounters::add(&stats.compaction_bytes_read, output.bytes_read);
    StatsCounters::add(&stats.compaction_bytes_written, output.bytes_written);
    StatsCounters::add_compression(stats, output.compression);
    StatsCounters::add(
        &stats.compaction_entries_dropped,
        output.entries_read - output.entries_written,
    );
    StatsCounters::add(&stats.ttl_entries_expired, output.entries_expired);
    for file in plan.all_files() {
        StatsCounters::add(&stats.level_bytes_read[file.level as usize], file.size_bytes);
    }
    StatsCounters::add(&stats.level_bytes_written[plan.output_level], output.bytes_written);
    // If installing fails, the outputs stay on disk: the manifest edit may have reached the
    // disk even though its sync failed. The next open keeps them if it did, removes them if not.
    install(inner, engine, plan, output.outputs, horizon)
}

/// Logs the edit for `plan` with `outputs` and swaps the view. A trivial move passes no
/// outputs: its input changes level.
fn install(
    inner: &DbInner,
    engine: &mut MutexGuard<'_, EngineState>,
    plan: &CompactionPlan,
    outputs: Vec<Arc<SstHandle>>,
    horizon: u64,
) -> Result<()> {
    let removed: Vec<(u32, u64)> = plan.all_files().map(|file| (file.level, file.number)).collect();
    let added = if plan.trivial_move {
        plan.inputs
            .iter()
            .map(|file| FileMeta { level: plan.output_level as u32, ..file.clone() })
            .collect()
    } else {
        outputs.iter().map(|handle| handle.meta.clone()).collect()
    };
    let edit = VersionEdit {
        next_file_number: Some(engine.state.next_file_number),
        added,
        removed,
        ..VersionEdit::default()
    };
    commit_edit(inner, engine, &edit)?;

    let view = inner.current_view();
    let mut open = view.version.handles_by_number();
    for handle in &outputs {
        open.insert(handle.meta.number, Arc::clone(handle));
    }
    let read_seqno_min = view.version.read_seqno_min.max(horizon);
    let version = Arc::new(Version::build(&engine.state, &open, read_seqno_min));
    let stale: Vec<Arc<SstHandle>> = if plan.trivial_move {
        Vec::new()
    } else {
        plan.all_files().filter_map(|file| open.get(&file.number).cloned()).collect()
    };
    *inner.view.write() = Arc::new(view.with_version(version));
    for handle in stale {
        handle.mark_obsolete();
    }
    let counter = if plan.trivial_move {
        &inner.stats.trivial_moves
    } else if plan.drop_files {
        let keyspaces = engine.state.keyspace_filter();
        let of_dropped_keyspaces = plan.inputs.iter().all(|file| {
            crate::keyspace::file_keyspace(file).is_some_and(|id| keyspaces.is_dropped(id))
        });
        if of_dropped_keyspaces {
            &inner.stats.keyspace_drop_files_removed
        } else {
            &inner.stats.range_deletion_files_dropped
        }
    } else {
        &inner.stats.compactions
    };
    StatsCounters::add(counter, 1);
    super::range_del::collect_garbage(inner, engine)
}

/// Compacts every SST into the last level in one compaction (`Db::compact_all`), after the
/// running compactions finish.
pub(crate) fn compact_all(inner: &DbInner) -> Result<()> {
    let mut engine = inner.engine.lock();
    while engine.manual_compaction {
        inner.check_writable()?;
        inner.engine_changed.wait_for(&mut engine, ENGINE_WAIT);
    }
    // From here no compaction starts; wait for the running ones to finish.
    engine.manual_compaction = true;
    let result = (|| {
        while !engine.compacting.is_empty() {
            inner.check_writable()?;
            inner.engine_changed.wait_for(&mut engine, ENGINE_WAIT);
        }
        inner.check_writable()?;
        compact_everything(inner, &mut engine)
    })();
    engine.manual_compaction = false;
    inner.engine_changed.notify_all();
    result.map_err(|error| inner.poison(error))
}

fn compact_everything(inner: &DbInner, engine: &mut MutexGuard<'_, EngineState>) -> Result<()> {
    let last = LEVEL_COUNT - 1;
    let mut inputs: Vec<FileMeta> = engine.state.levels[0].clone();
    inputs.sort_by_key(|file| std::cmp::Reverse(file.number));
    inputs.extend(engine.state.levels[1..last].iter().flatten().cloned());
    let overlaps = engine.state.levels[last].clone();
    if inputs.is_empty() && overlaps.is_empty() {
        return Ok(());
    }
    let plan = CompactionPlan {
        level: 0,
        output_level: last,
        inputs,
        overlaps,
        bottommost: true,
        trivial_move: false,
        drop_files: false,
        score: 0.0,
    };
    run_plan(inner, engine, &plan)
}

/// Runs compactions until none is due (inline mode, after a flush).
pub(crate) fn compact_until_done(
    inner: &DbInner,
    engine: &mut MutexGuard<'_, EngineState>,
) -> Result<()> {
    while compact_once(inner, engine)? {
        inner.check_writable()?;
    }
    Ok(())
}

/// Starts `Options::background_threads` compaction threads.
pub(crate) fn start_compaction_threads(inner: &Arc<DbInner>) -> Result<Vec<JoinHandle<()>>> {
    (0..inner.options.background_threads)
        .map(|index| {
            let inner = Arc::clone(inner);
            std::thread::Builder::new()
                .name(format!("nanodb-compact-{index}"))
                .spawn(move || compaction_thread(&inner))
                .map_err(|error| Error::io("start a compaction thread", error))
        })
        .collect()
}

fn compaction_thread(inner: &DbInner) {
    let mut engine = inner.engine.lock();
    // `closed` is checked too: it is set before `shutdown`, whose setter may be waiting for
    // this lock while this thread retries a compaction that closing keeps failing.
    while !engine.shutdown && !inner.closed.load(Ordering::Acquire) {
        if inner.poisoned.load(Ordering::Acquire) {
            inner.engine_changed.wait_for(&mut engine, ENGINE_WAIT);
            continue;
        }
        match compact_once(inner, &mut engine) {
            Ok(true) => {}
            Ok(false) => {
                inner.engine_changed.wait_for(&mut engine, ENGINE_WAIT);
            }
            Err(error) => {
                // Closing is not a failure; anything else (I/O, corruption) stops writes.
                inner.poison(error);
            }
        }
    }
}
