//! The workloads, in the spirit of db_bench and YCSB, and the timed runner.
//!
//! A worker runs three groups, each on a fresh directory:
//! - `fillseq`; `fillbatch` (every key in random order, in atomic batches of 1,000);
//! - `fillrandom`, then on that database `overwrite`, `readrandom`, `readmissing`, `readseq`,
//!   `readreverse`, `seekrandom` (seek + next 100), YCSB C, B, A, F and E, `deleterandom`;
//! - `overwrite-x10`: a smaller database (`Params::overwrite_keys`) loaded, then every key
//!   overwritten ten times (each round in a new random order): steady-state write and space
//!   amplification right after the last put; then `overwrite-x10-settled`, the same after the
//!   memtable is flushed and background work has stopped (its bytes written count from the
//!   start of the overwrites, its seconds include the wait);
//! - `durable-wN` for each writer count N: synced puts from N threads on an empty database.
//! - `txn-rmw-tN` (N = 1, 4, 16) and `txn-hot-t16`: read-modify-write transactions of two
//!   counters, over 100,000 keys or 8 hot ones (engines with transactions only).
//!
//! Thread safety: each thread records latencies in its own histogram; they are merged after.

use crate::engine::{Engine, EngineResult};
use crate::keys::{KeySpace, Permutation, Rng, Zipfian};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Sizes of one run.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Keys loaded by the fills.
    pub keys: u64,
    /// Operations of each read, overwrite, YCSB and delete workload.
    pub ops: u64,
    /// Threads for the non-durable workloads.
    pub threads: usize,
    /// Synced puts in each durable workload (split over its writers).
    pub sync_ops: u64,
    pub key_size: usize,
    pub value_size: usize,
    /// Keys of the `overwrite-x10` database.
    pub overwrite_keys: u64,
}

/// Times `overwrite-x10` overwrites every key.
pub const OVERWRITE_ROUNDS: u64 = 10;

/// What one workload measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub workload: String,
    pub threads: usize,
    pub ops: u64,
    pub seconds: f64,
    pub latency: Option<Histogram<u64>>,
    /// Key and value bytes the workload asked to write.
    pub logical_bytes_written: u64,
    /// Keys live after the workload (for space amplification).
    pub live_keys: u64,
    /// Transaction attempts that conflicted and ran again.
    pub retries: u64,
    /// Bytes written count from the start of the previous outcome, not from its end: for a
    /// record that continues the one before it (its peak memory is still its own).
    pub counts_from_previous: bool,
}

impl Outcome {
    /// Not a result: tells the reporter to restart its per-workload counters (bytes written,
    /// peak RSS) without recording anything, after a workload's untimed set-up.
    pub fn counters_reset() -> Outcome {
        Outcome {
            workload: String::new(),
            threads: 0,
            ops: 0,
            seconds: 0.0,
            latency: None,
            logical_bytes_written: 0,
            live_keys: 0,
            retries: 0,
            counts_from_previous: false,
        }
    }

    /// True for `counters_reset`.
    pub fn is_counters_reset(&self) -> bool {
        self.workload.is_empty()
    }
}

/// Latencies are recorded in nanoseconds, up to a minute, with 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).expect("histogram"))
}

/// Runs `op(thread, index, rng)` for `index` in `0..ops`, spread over `threads` threads (thread
/// `t` takes indexes `t, t + threads, ...`), and times each call.
fn timed(
    threads: usize,
    ops: u64,
    seed: u64,
    op: &(dyn Fn(u64, &mut Rng) -> EngineResult<()> + Sync),
) -> EngineResult<(f64, Histogram<u64>)> {
    let threads = threads.max(1);
    let started = Instant::now();
    let results: Vec<EngineResult<Histogram<u64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    let mut rng =
                        Rng::new(seed ^ (thread as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1));
                    let mut histogram = new_histogram();
                    let mut index = thread as u64;
                    while index < ops {
                        let op_started = Instant::now();
                        op(index, &mut rng)?;
                        let _ = histogram.record(op_started.elapsed().as_nanos().max(1) as u64);
                        index += threads as u64;
                    }
                    Ok(histogram)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|_| Err("worker thread panicked".into())))
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut merged = new_histogram();
    for result in results {
        let _ = merged.add(result?);
    }
    Ok((seconds, merged))
}

struct Ctx<'a> {
    engine: &'a dyn Engine,
    keys: KeySpace,
    params: Params,
}

impl Ctx<'_> {
    fn entry_bytes(&self) -> u64 {
        (self.keys.key_size + self.keys.value_size) as u64
    }

    fn run(
        &self,
        workload: &str,
        threads: usize,
        ops: u64,
        written_per_op: f64,
        live_keys: u64,
        op: &(dyn Fn(u64, &mut Rng) -> EngineResult<()> + Sync),
    ) -> EngineResult<Outcome> {
        let seed =
            workload.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        let (seconds, latency) =
            timed(threads, ops, seed, op).map_err(|e| format!("{workload}: {e}"))?;
        Ok(Outcome {
            workload: workload.to_string(),
            threads,
            ops,
            seconds,
            latency: Some(latency),
            logical_bytes_written: (ops as f64 * written_per_op * self.entry_bytes() as f64) as u64,
            live_keys,
            retries: 0,
            counts_from_previous: false,
        })
    }
}

/// Names of every workload, in the order a worker runs them.
pub const WORKLOADS: &[&str] = &[
    "fillseq",
    "fillbatch",
    "fillrandom",
    "overwrite",
    "readrandom",
    "readmissing",
    "readseq",
    "readreverse",
    "seekrandom",
    "ycsb-c",
    "ycsb-b",
    "ycsb-a",
    "ycsb-f",
    "ycsb-e",
    "deleterandom",
    "overwrite-x10",
    "overwrite-x10-settled",
    "txn-rmw-t1",
    "txn-rmw-t4",
    "txn-rmw-t16",
    "txn-hot-t16",
    "durable-w1",
    "durable-w4",
    "durable-w16",
    "durable-w64",
];

/// Writer counts of the durable workloads.
pub const DURABLE_WRITERS: &[usize] = &[1, 4, 16, 64];

/// Runs `fillseq` on a fresh engine.
pub fn fill_sequential(engine: &dyn Engine, params: Params) -> EngineResult<Outcome> {
    let ctx = Ctx { engine, keys: KeySpace::new(params.key_size, params.value_size), params };
    ctx.run("fillseq", 1, params.keys, 1.0, params.keys, &|index, _| {
        ctx.engine.put(&ctx.keys.key(index), ctx.keys.value(index, 0))
    })
}

/// Batches per `fillbatch` write.
pub const FILL_BATCH_SIZE: u64 = 1000;

/// Runs `fillbatch` on a fresh engine: every key, in random order, in atomic batches.
pub fn fill_batch(engine: &dyn Engine, params: Params) -> EngineResult<Outcome> {
    let ctx = Ctx { engine, keys: KeySpace::new(params.key_size, params.value_size), params };
    let order = Permutation::new(params.keys, 3);
    let batches = params.keys.div_ceil(FILL_BATCH_SIZE);
    let outcome =
        ctx.run("fillbatch", 1, batches, FILL_BATCH_SIZE as f64, params.keys, &|batch, _| {
            let start = batch * FILL_BATCH_SIZE;
            let end = (start + FILL_BATCH_SIZE).min(params.keys);
            let ops: Vec<(Vec<u8>, Option<Vec<u8>>)> = (start..end)
                .map(|index| order.at(index))
                .map(|key| (ctx.keys.key(key), Some(ctx.keys.value(key, 0).to_vec())))
                .collect();
            ctx.engine.write_batch(&ops)
        })?;
    // Report keys per second, like the other fills; latencies stay per batch.
    Ok(Outcome {
        ops: params.keys,
        logical_bytes_written: params.keys * ctx.entry_bytes(),
        ..outcome
    })
}

/// Runs the main group on a fresh engine, calling `report` after each workload.
pub fn main_group(
    engine: &dyn Engine,
    params: Params,
    report: &mut dyn FnMut(Outcome) -> EngineResult<()>,
) -> EngineResult<()> {
    let ctx = Ctx { engine, keys: KeySpace::new(params.key_size, params.value_size), params };
    let (n, ops, threads) = (params.keys, params.ops.min(params.keys), params.threads);
    let order = Permutation::new(n, 1);
    report(ctx.run("fillrandom", threads, n, 1.0, n, &|index, _| {
        let key = order.at(index);
        ctx.engine.put(&ctx.keys.key(key), ctx.keys.value(key, 0))
    })?)?;
    report(ctx.run("overwrite", threads, ops, 1.0, n, &|index, rng| {
        let key = rng.below(n);
        ctx.engine.put(&ctx.keys.key(key), ctx.keys.value(key, index + 1))
    })?)?;
    report(ctx.run("readrandom", threads, ops, 0.0, n, &|_, rng| {
        let key = rng.below(n);
        match ctx.engine.get(&ctx.keys.key(key))? {
            Some(_) => Ok(()),
            None => Err(format!("key {key} missing")),
        }
    })?)?;
    report(ctx.run("readmissing", threads, ops, 0.0, n, &|_, rng| {
        let key = n + rng.below(n);
        match ctx.engine.get(&ctx.keys.key(key))? {
            None => Ok(()),
            Some(_) => Err(format!("key {key} should be absent")),
        }
    })?)?;
    for (name, reverse) in [("readseq", false), ("readreverse", true)] {
        let start = if reverse { ctx.keys.key(u64::MAX / 2) } else { Vec::new() };
        let started = Instant::now();
        let seen = ctx.engine.scan(&start, usize::MAX, reverse)?;
        if seen as u64 != n {
            return Err(format!("{name} saw {seen} entries, expected {n}"));
        }
        report(Outcome {
            workload: name.into(),
            threads: 1,
            ops: seen as u64,
            seconds: started.elapsed().as_secs_f64(),
            latency: None,
            logical_bytes_written: 0,
            live_keys: n,
            retries: 0,
            counts_from_previous: false,
        })?;
    }
    report(ctx.run("seekrandom", threads, (ops / 10).max(1), 0.0, n, &|_, rng| {
        let start = ctx.keys.key(rng.below(n));
        ctx.engine.scan(&start, 100, false).map(|_| ())
    })?)?;
    ycsb(&ctx, report)?;
    let victims = Permutation::new(n, 2);
    report(ctx.run(
        "deleterandom",
        threads,
        ops,
        1.0 / ctx.entry_bytes() as f64 * ctx.keys.key_size as f64,
        n - ops,
        &|index, _| ctx.engine.delete(&ctx.keys.key(victims.at(index))),
    )?)
}

fn ycsb(ctx: &Ctx<'_>, report: &mut dyn FnMut(Outcome) -> EngineResult<()>) -> EngineResult<()> {
    let (n, ops, threads) =
        (ctx.params.keys, ctx.params.ops.min(ctx.params.keys), ctx.params.threads);
    let zipfian = Zipfian::new(n);
    let read = |rng: &mut Rng| ctx.engine.get(&ctx.keys.key(zipfian.next(rng))).map(|_| ());
    let update = |index: u64, rng: &mut Rng| {
        let key = zipfian.next(rng);
        ctx.engine.put(&ctx.keys.key(key), ctx.keys.value(key, index + 7))
    };
    // Reads `read_percent` of the time, updates otherwise.
    let mixed = |read_percent: u64| {
        move |index: u64, rng: &mut Rng| {
            if rng.below(100) < read_percent {
                read(rng)
            } else {
                update(index, rng)
            }
        }
    };
    report(ctx.run("ycsb-c", threads, ops, 0.0, n, &|_, rng| read(rng))?)?;
    report(ctx.run("ycsb-b", threads, ops, 0.05, n, &mixed(95))?)?;
    report(ctx.run("ycsb-a", threads, ops, 0.5, n, &mixed(50))?)?;
    report(ctx.run("ycsb-f", threads, ops, 0.5, n, &|index, rng| {
        let key = zipfian.next(rng);
        let current = ctx.engine.get(&ctx.keys.key(key))?;
        if rng.below(100) < 50 {
            return Ok(());
        }
        // Read-modify-write: the new value depends on the one read.
        let salt = current.map_or(0, |value| u64::from(value.first().copied().unwrap_or(0)));
        ctx.engine.put(&ctx.keys.key(key), ctx.keys.value(key, index + salt))
    })?)?;
    let inserted = AtomicU64::new(0);
    // Scans are heavy: YCSB E runs a tenth of the operations, like seekrandom.
    let outcome = ctx.run("ycsb-e", threads, (ops / 10).max(1), 0.05, n, &|_, rng| {
        if rng.below(100) < 95 {
            let length = 1 + rng.below(100) as usize;
            ctx.engine.scan(&ctx.keys.key(zipfian.next(rng)), length, false).map(|_| ())
        } else {
            let key = 2 * n + inserted.fetch_add(1, Ordering::Relaxed);
            ctx.engine.put(&ctx.keys.key(key), ctx.keys.value(key, 0))
        }
    })?;
    report(Outcome { live_keys: n + inserted.load(Ordering::Relaxed), ..outcome })
}

/// Runs `overwrite-x10` on a fresh engine: loads `overwrite_keys` keys (untimed, not
/// reported), then overwrites each of them `OVERWRITE_ROUNDS` times, every round in a new
/// random order.
pub fn overwrite_rounds(
    engine: &dyn Engine,
    params: Params,
    report: &mut dyn FnMut(Outcome) -> EngineResult<()>,
) -> EngineResult<()> {
    let ctx = Ctx { engine, keys: KeySpace::new(params.key_size, params.value_size), params };
    let n = params.overwrite_keys.max(1);
    let load = Permutation::new(n, 5);
    ctx.run("overwrite-x10-load", params.threads, n, 1.0, n, &|index, _| {
        let key = load.at(index);
        ctx.engine.put(&ctx.keys.key(key), ctx.keys.value(key, 0))
    })?;
    report(Outcome::counters_reset())?;
    let rounds: Vec<Permutation> =
        (0..OVERWRITE_ROUNDS).map(|round| Permutation::new(n, 100 + round)).collect();
    let overwrite =
        ctx.run("overwrite-x10", params.threads, n * OVERWRITE_ROUNDS, 1.0, n, &|index, _| {
            let key = rounds[(index / n) as usize].at(index % n);
            ctx.engine.put(&ctx.keys.key(key), ctx.keys.value(key, index + 1))
        })?;
    let settled = Outcome {
        workload: "overwrite-x10-settled".into(),
        latency: None,
        counts_from_previous: true,
        ..overwrite.clone()
    };
    report(overwrite)?;
    let settle_seconds = settle(engine)?;
    report(Outcome { seconds: settled.seconds + settle_seconds, ..settled })
}

/// Seconds of quiet (no byte written by the process) that count as settled.
const SETTLED_QUIET_SECONDS: f64 = 3.0;
/// Longest wait for an engine to settle.
const SETTLE_SECONDS_MAX: f64 = 300.0;

/// Flushes the engine's memtable and waits until its background work stops (see
/// `SETTLED_QUIET_SECONDS`, at most `SETTLE_SECONDS_MAX`); returns the seconds it took,
/// including the quiet period.
fn settle(engine: &dyn Engine) -> EngineResult<f64> {
    let start = Instant::now();
    engine.flush_memtable()?;
    let mut last = crate::metrics::storage_bytes_written();
    let mut quiet_since = Instant::now();
    while start.elapsed().as_secs_f64() < SETTLE_SECONDS_MAX {
        std::thread::sleep(Duration::from_millis(250));
        let now = crate::metrics::storage_bytes_written();
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed().as_secs_f64() >= SETTLED_QUIET_SECONDS {
            break;
        }
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Runs `durable-w{writers}` on a fresh engine: `sync_ops` synced puts of random keys.
pub fn durable(engine: &dyn Engine, params: Params, writers: usize) -> EngineResult<Outcome> {
    let ctx = Ctx { engine, keys: KeySpace::new(params.key_size, params.value_size), params };
    let ops = params.sync_ops.max(writers as u64);
    ctx.run(&format!("durable-w{writers}"), writers, ops, 1.0, ops, &|index, rng| {
        let key = rng.below(u64::MAX >> 1) % 10_000_000_000;
        ctx.engine.put_sync(&ctx.keys.key(key), ctx.keys.value(key, index))
    })
}

/// Keys the uniform transaction workloads spread over.
pub const TXN_KEYS: u64 = 100_000;
/// Keys the hot-key transaction workload spreads over: 16 threads collide often.
pub const TXN_HOT_KEYS: u64 = 8;
/// Keys each transaction reads and writes.
pub const TXN_KEYS_PER_TRANSACTION: usize = 2;
/// Thread counts of the uniform transaction workloads.
pub const TXN_THREADS: &[usize] = &[1, 4, 16];

/// Runs the transaction workloads on a fresh engine opened in its transactional form:
/// `txn-rmw-tN` (each transaction increments 2 random counters of `TXN_KEYS`, N threads) and
/// `txn-hot-t16` (2 of `TXN_HOT_KEYS`, 16 threads, so optimistic engines conflict and retry).
/// `ops` is the committed transactions; conflicts are counted as retries.
pub fn transactions(
    engine: &dyn Engine,
    params: Params,
    report: &mut dyn FnMut(Outcome) -> EngineResult<()>,
) -> EngineResult<()> {
    // Engines without transactions in this harness skip the group.
    match engine.increment_transaction(&[b"txn-probe".to_vec()]) {
        None => return Ok(()),
        Some(result) => result?,
    };
    let ctx = Ctx { engine, keys: KeySpace::new(params.key_size, params.value_size), params };
    let ops = (params.ops / 4).max(1_000);
    let mut cases: Vec<(String, usize, u64)> =
        TXN_THREADS.iter().map(|&t| (format!("txn-rmw-t{t}"), t, TXN_KEYS)).collect();
    cases.push(("txn-hot-t16".to_string(), 16, TXN_HOT_KEYS));
    for (name, threads, key_count) in cases {
        let retries = std::sync::atomic::AtomicU64::new(0);
        let mut outcome =
            ctx.run(&name, threads, ops, TXN_KEYS_PER_TRANSACTION as f64, key_count, &|_, rng| {
                let keys: Vec<Vec<u8>> = (0..TXN_KEYS_PER_TRANSACTION)
                    .map(|_| ctx.keys.key(rng.below(key_count)))
                    .collect();
                match ctx.engine.increment_transaction(&keys) {
                    Some(result) => {
                        retries.fetch_add(result?, std::sync::atomic::Ordering::Relaxed);
                        Ok(())
                    }
                    None => Err("no transactions in this engine".to_string()),
                }
            })?;
        outcome.retries = retries.into_inner();
        report(outcome)?;
    }
    Ok(())
}
