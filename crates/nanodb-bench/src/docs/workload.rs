//! The document workloads and their timing. Two groups, each on a fresh engine:
//! - `insert-one`: `Sizes::insert_one_docs` documents, one insert (one transaction) each;
//! - the main group: `insert-batch` loads `Sizes::docs` documents in transactions of
//!   `Sizes::batch`, then on that collection `get` (random ids), `get-parallel` (random ids
//!   from `Sizes::get_threads` threads, `parallel`), `scan` (every document decoded),
//!   `query-indexed` and `query-unindexed` (equality on `city` / `team`, matches decoded),
//!   `update` (set one field of random documents), `delete` (distinct random documents).
//!
//! Only the engine call is timed: documents, ids and the values a read is checked against are
//! generated before the clock starts, so the generator's cost is left out for every engine
//! alike (building the engine's own document form, JSON, BSON or `Value`, is inside the call
//! and timed). Every workload checks what it read against the generator and fails on a
//! mismatch, so a broken engine cannot post a figure.
//!
//! Thread safety: the engine is borrowed mutably by one thread; only `get-parallel`
//! (`parallel`) runs reader threads, which it joins before it returns.

use super::engine::{DocEngine, DocResult};
use super::gen::{value_text, Generator, DISTINCT_VALUES, INDEXED_FIELD, UNINDEXED_FIELD};
use crate::keys::{Permutation, Rng};
use hdrhistogram::Histogram;
use std::time::Instant;

/// How much work each workload does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Documents loaded by `insert-batch` (the collection the other workloads use).
    pub docs: u64,
    /// Documents inserted one at a time by `insert-one`, on their own collection.
    pub insert_one_docs: u64,
    /// Documents per `insert-batch` transaction.
    pub batch: u64,
    pub gets: u64,
    /// Threads of `get-parallel` (below 2, it is skipped).
    pub get_threads: u64,
    pub indexed_queries: u64,
    pub unindexed_queries: u64,
    pub updates: u64,
    /// Distinct documents deleted (at most `docs`).
    pub deletes: u64,
}

/// What one workload measured. `ops` is what the throughput counts (documents for the inserts
/// and the scan, calls otherwise); latencies are per engine call.
#[derive(Debug, Clone)]
pub struct Measured {
    pub workload: &'static str,
    pub ops: u64,
    /// Documents the workload read, wrote or returned.
    pub items: u64,
    /// Time spent in engine calls.
    pub seconds: f64,
    pub latency: Option<Histogram<u64>>,
}

/// Every workload, in the order a worker runs them.
pub const WORKLOADS: &[&str] = &[
    "insert-one",
    "insert-batch",
    "get",
    "get-parallel",
    "scan",
    "query-indexed",
    "query-unindexed",
    "update",
    "delete",
];

/// Called with each workload's figures as soon as it ends.
pub type Report<'a> = dyn FnMut(Measured) -> DocResult<()> + 'a;

/// Latencies in nanoseconds, up to ten minutes, 3 significant digits.
pub(super) fn new_histogram() -> DocResult<Histogram<u64>> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).map_err(|e| e.to_string())
}

/// Times `calls` engine calls: `prepare(i)` runs untimed, then `call(i, prepared)` is timed
/// and returns how many documents it touched.
fn timed<T>(
    workload: &'static str,
    calls: u64,
    mut prepare: impl FnMut(u64) -> T,
    mut call: impl FnMut(u64, T) -> DocResult<u64>,
) -> DocResult<Measured> {
    let mut histogram = new_histogram()?;
    let (mut nanos, mut items) = (0u128, 0u64);
    for index in 0..calls {
        let prepared = prepare(index);
        let started = Instant::now();
        items += call(index, prepared).map_err(|e| format!("{workload}: {e}"))?;
        let elapsed = started.elapsed().as_nanos();
        nanos += elapsed;
        let _ = histogram.record(elapsed.max(1) as u64);
    }
    let seconds = nanos as f64 / 1e9;
    Ok(Measured { workload, ops: calls, items, seconds, latency: Some(histogram) })
}

/// `insert-one` on a fresh engine.
pub fn insert_one(engine: &mut dyn DocEngine, sizes: &Sizes, report: &mut Report) -> DocResult<()> {
    let generator = Generator::new(super::gen::SEED);
    let n = sizes.insert_one_docs;
    let inserted =
        timed("insert-one", n, |i| generator.doc(i), |_, doc| engine.insert(&doc).map(|()| 1))?;
    expect("insert-one count", engine.count()?, n)?;
    report(inserted)
}

/// The main group on a fresh engine: `insert-batch`, then reads, queries, updates, deletes.
pub fn main_group(engine: &mut dyn DocEngine, sizes: &Sizes, report: &mut Report) -> DocResult<()> {
    let generator = Generator::new(super::gen::SEED);
    let (n, batch) = (sizes.docs, sizes.batch.max(1));
    let mut age_sum = 0i64;
    let batches = n.div_ceil(batch);
    let make_batch = |b: u64| {
        let docs: Vec<_> =
            (b * batch..((b + 1) * batch).min(n)).map(|i| generator.doc(i)).collect();
        age_sum += docs.iter().map(|doc| doc.age).sum::<i64>();
        docs
    };
    let loaded = timed("insert-batch", batches, make_batch, |_, docs| {
        engine.insert_many(&docs).map(|()| docs.len() as u64)
    })?;
    expect("insert-batch count", engine.count()?, n)?;
    report(Measured { ops: loaded.items, ..loaded })?;

    let mut rng = Rng::new(0x6e7);
    let get = timed(
        "get",
        sizes.gets,
        |_| lookup(&generator, rng.below(n)),
        |_, (id, age)| {
            let found = engine.get(&id)?.ok_or(format!("document {id} missing"))?;
            if let Some(age) = age {
                expect("age", found.age as u64, age as u64)?;
            }
            Ok(1)
        },
    )?;
    report(get)?;
    if let Some(parallel) = super::parallel::get_parallel(engine, sizes, &generator)? {
        report(parallel)?;
    }

    let scan = timed(
        "scan",
        1,
        |_| (),
        |_, ()| {
            let tally = engine.scan()?;
            expect("documents scanned", tally.documents, n)?;
            expect("sum of ages scanned", tally.age_sum as u64, age_sum as u64)?;
            Ok(tally.documents)
        },
    )?;
    report(Measured { ops: scan.items, latency: None, ..scan })?;

    for (workload, field, queries) in [
        ("query-indexed", INDEXED_FIELD, sizes.indexed_queries),
        ("query-unindexed", UNINDEXED_FIELD, sizes.unindexed_queries),
    ] {
        if field == INDEXED_FIELD && engine.index_queries_broken().is_some() {
            continue;
        }
        let counts = generator.value_counts(n, field);
        let mut rng = Rng::new(0x9e7 ^ queries);
        report(timed(
            workload,
            queries,
            |_| rng.below(DISTINCT_VALUES),
            |_, value| {
                let tally = engine.find_eq(field, &value_text(field, value))?;
                expect("documents matched", tally.documents, counts[value as usize])?;
                Ok(tally.documents)
            },
        )?)?;
    }

    let mut rng = Rng::new(0x0bd);
    let mut last = None;
    let updated = timed(
        "update",
        sizes.updates,
        |_| {
            let i = rng.below(n);
            (i, generator.id(i))
        },
        |k, (i, id)| {
            last = Some((i, k as i64 + 1));
            engine.set_counter(&id, k as i64 + 1).map(|()| 1)
        },
    )?;
    if let Some((i, counter)) = last {
        let found = engine.get(&generator.id(i))?.ok_or("updated document missing")?;
        expect("counter after update", found.counter as u64, counter as u64)?;
    }
    report(updated)?;

    let deletes = sizes.deletes.min(n);
    let victims = Permutation::new(n, 0xde1);
    let deleted = timed(
        "delete",
        deletes,
        |k| generator.id(victims.at(k)),
        |_, id| engine.delete(&id).map(|()| 1),
    )?;
    expect("count after delete", engine.count()?, n - deletes)?;
    report(deleted)
}

/// A lookup of document `i`: its id and, for one document in 16, the `age` it must be read
/// with (building the whole document to know it is too slow for every lookup).
pub(super) fn lookup(generator: &Generator, i: u64) -> (String, Option<i64>) {
    (generator.id(i), i.is_multiple_of(16).then(|| generator.doc(i).age))
}

fn expect(what: &str, seen: u64, expected: u64) -> DocResult<()> {
    if seen == expected {
        Ok(())
    } else {
        Err(format!("{what}: saw {seen}, expected {expected}"))
    }
}
