//! `get-parallel`: lookups by id from `Sizes::get_threads` threads at once, on the collection
//! the main group loaded, each thread through its own reader (`DocEngine::readers`). The
//! single-threaded `get` measures one caller's latency-bound rate; this measures what the
//! engine serves when every core asks, which is how an application with several threads (or
//! a server) uses it.
//!
//! Each thread does `Sizes::gets / threads` lookups of random ids (the remainder is left out;
//! with fewer lookups than threads the workload is skipped). Before the clock starts,
//! every thread's ids (and the ages a lookup checks, for one id in 16) are generated, and each
//! thread makes an untimed warm-up pass of half as many other random lookups, so a reader
//! with a cache of its own (SQLite's connections) starts warm, as a long-lived one would. The
//! threads then start together at a barrier; the figure is all lookups over the wall time from
//! the first thread's start to the last one's end, and the latencies are every call's.
//!
//! Thread safety: the threads share nothing but the barrier; each owns its reader and its
//! histogram, merged when all have joined.
//!
//! Invariants:
//! 1. Every thread reaches the barrier exactly once, even one whose reader fails or panics in
//!    the warm-up (`Arrival` waits when dropped), so no thread waits for ever.
//! 2. The figure counts only lookups that found their document (and, for one in 16, its age);
//!    any other outcome fails the workload.

use super::engine::{DocEngine, DocReader, DocResult};
use super::gen::Generator;
use super::workload::{lookup, new_histogram, Measured, Sizes};
use crate::keys::Rng;
use hdrhistogram::Histogram;
use std::sync::Barrier;
use std::time::Instant;

/// Most threads `get-parallel` runs (`--get-threads`).
pub const GET_THREADS_MAX: u64 = 64;

/// Ids laid end to end in one string, with where each ends: no allocation per id, so a
/// million planned lookups add tens of MiB to the worker's resident memory, not a hundred.
#[derive(Default)]
struct Ids {
    text: String,
    ends: Vec<usize>,
}

impl Ids {
    fn push(&mut self, id: &str) {
        self.text.push_str(id);
        self.ends.push(self.text.len());
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(start, &end)| &self.text[start..end])
    }
}

/// One thread's lookups: the ids, and the `age` each document must have when it is checked.
#[derive(Default)]
struct Plan {
    ids: Ids,
    ages: Vec<Option<i64>>,
}

/// What one thread measured: when it started and ended, and its latencies.
struct Timed {
    started: Instant,
    ended: Instant,
    latency: Histogram<u64>,
}

/// Runs `get-parallel` on the `docs` documents of `engine`; `None` when it is skipped (fewer
/// than two threads asked for, or an engine without parallel readers).
pub fn get_parallel(
    engine: &mut dyn DocEngine,
    sizes: &Sizes,
    generator: &Generator,
) -> DocResult<Option<Measured>> {
    let threads = sizes.get_threads.min(GET_THREADS_MAX);
    if threads < 2 || sizes.gets < threads {
        return Ok(None);
    }
    let Some(readers) = engine.readers(threads as usize)? else { return Ok(None) };
    if readers.len() as u64 != threads {
        return Err(format!("get-parallel: {} readers for {threads} threads", readers.len()));
    }
    let per_thread = sizes.gets / threads;
    let n = sizes.docs;
    let plans: Vec<(Plan, Ids)> = (0..threads)
        .map(|thread| {
            let mut rng = Rng::new(0x9a7 ^ (thread << 32));
            let mut plan = Plan::default();
            for _ in 0..per_thread {
                let (id, age) = lookup(generator, rng.below(n));
                plan.ids.push(&id);
                plan.ages.push(age);
            }
            let mut warm = Ids::default();
            for _ in 0..per_thread / 2 {
                warm.push(&generator.id(rng.below(n)));
            }
            (plan, warm)
        })
        .collect();
    let barrier = Barrier::new(threads as usize);
    let outcomes: Vec<DocResult<Timed>> = std::thread::scope(|scope| {
        let barrier = &barrier;
        let handles: Vec<_> = readers
            .into_iter()
            .zip(plans)
            .map(|(reader, (plan, warm))| scope.spawn(move || run(reader, &plan, &warm, barrier)))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|_| Err("a reader thread panicked".into())))
            .collect()
    });
    let timed = outcomes
        .into_iter()
        .collect::<DocResult<Vec<Timed>>>()
        .map_err(|e| format!("get-parallel: {e}"))?;
    let mut latency = new_histogram()?;
    for thread in &timed {
        latency.add(&thread.latency).map_err(|e| e.to_string())?;
    }
    let first = timed.iter().map(|thread| thread.started).min();
    let last = timed.iter().map(|thread| thread.ended).max();
    let seconds = match (first, last) {
        (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    let lookups = per_thread * threads;
    Ok(Some(Measured {
        workload: "get-parallel",
        ops: lookups,
        items: lookups,
        seconds,
        latency: Some(latency),
    }))
}

/// A thread's place at the barrier: it waits there when `arrive` is called or, if the thread
/// never gets that far (an error or a panic before it), when it is dropped.
struct Arrival<'a> {
    barrier: Option<&'a Barrier>,
}

impl Arrival<'_> {
    fn arrive(&mut self) {
        if let Some(barrier) = self.barrier.take() {
            barrier.wait();
        }
    }
}

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        self.arrive();
    }
}

/// One thread: the warm-up pass, the barrier, then the timed lookups.
fn run(
    mut reader: Box<dyn DocReader>,
    plan: &Plan,
    warm: &Ids,
    barrier: &Barrier,
) -> DocResult<Timed> {
    let mut arrival = Arrival { barrier: Some(barrier) };
    for id in warm.iter() {
        reader.get(id)?.ok_or_else(|| format!("document {id} missing"))?;
    }
    arrival.arrive();
    let mut latency = new_histogram()?;
    let started = Instant::now();
    for (id, age) in plan.ids.iter().zip(&plan.ages) {
        let call = Instant::now();
        let found = reader.get(id)?.ok_or_else(|| format!("document {id} missing"))?;
        let elapsed = call.elapsed().as_nanos();
        let _ = latency.record(elapsed.max(1) as u64);
        if let Some(age) = age {
            if found.age != *age {
                return Err(format!("document {id}: age {}, expected {age}", found.age));
            }
        }
    }
    let ended = Instant::now();
    Ok(Timed { started, ended, latency })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::engine::{Probe, Tally};
    use crate::docs::gen::{Doc, SEED};
    use std::collections::HashMap;
    use std::sync::Arc;

    /// What one fake reader does.
    #[derive(Clone, Copy, PartialEq)]
    enum Reader {
        Honest,
        /// Reports every age one too high.
        Lies,
        /// Finds nothing.
        Blind,
        /// Panics on its first lookup (in the warm-up).
        Panics,
    }

    /// An engine of generated documents that hands out the readers it is given (`None` when
    /// there are none).
    struct Fake {
        ages: Arc<HashMap<String, i64>>,
        readers: Vec<Reader>,
    }

    struct FakeReader {
        ages: Arc<HashMap<String, i64>>,
        kind: Reader,
    }

    impl DocReader for FakeReader {
        fn get(&mut self, id: &str) -> DocResult<Option<Probe>> {
            let lie = i64::from(self.kind == Reader::Lies);
            match self.kind {
                Reader::Panics => panic!("a reader that panics"),
                Reader::Blind => Ok(None),
                _ => Ok(self.ages.get(id).map(|age| Probe { age: age + lie, counter: 0 })),
            }
        }
    }

    impl DocEngine for Fake {
        fn insert(&mut self, _: &Doc) -> DocResult<()> {
            Err("read-only".into())
        }
        fn insert_many(&mut self, _: &[Doc]) -> DocResult<()> {
            Err("read-only".into())
        }
        fn get(&mut self, _: &str) -> DocResult<Option<Probe>> {
            Err("not used".into())
        }
        fn scan(&mut self) -> DocResult<Tally> {
            Err("not used".into())
        }
        fn find_eq(&mut self, _: &str, _: &str) -> DocResult<Tally> {
            Err("not used".into())
        }
        fn set_counter(&mut self, _: &str, _: i64) -> DocResult<()> {
            Err("read-only".into())
        }
        fn delete(&mut self, _: &str) -> DocResult<()> {
            Err("read-only".into())
        }
        fn count(&mut self) -> DocResult<u64> {
            Ok(self.ages.len() as u64)
        }
        fn readers(&mut self, _count: usize) -> DocResult<Option<Vec<Box<dyn DocReader>>>> {
            if self.readers.is_empty() {
                return Ok(None);
            }
            let reader = |kind: &Reader| {
                Box::new(FakeReader { ages: self.ages.clone(), kind: *kind }) as Box<dyn DocReader>
            };
            Ok(Some(self.readers.iter().map(reader).collect()))
        }
        fn describe(&self) -> String {
            "fake".into()
        }
        fn close(self: Box<Self>) -> DocResult<()> {
            Ok(())
        }
    }

    fn sizes(docs: u64, gets: u64, get_threads: u64) -> Sizes {
        Sizes {
            docs,
            insert_one_docs: 0,
            batch: 1,
            gets,
            get_threads,
            indexed_queries: 0,
            unindexed_queries: 0,
            updates: 0,
            deletes: 0,
        }
    }

    fn fake(docs: u64, readers: &[Reader]) -> Fake {
        let generator = Generator::new(SEED);
        let ages = (0..docs).map(|i| (generator.id(i), generator.doc(i).age)).collect();
        Fake { ages: Arc::new(ages), readers: readers.to_vec() }
    }

    fn run_with(readers: &[Reader], gets: u64) -> DocResult<Option<Measured>> {
        let generator = Generator::new(SEED);
        let threads = readers.len() as u64;
        get_parallel(&mut fake(300, readers), &sizes(300, gets, threads), &generator)
    }

    #[test]
    fn every_thread_looks_up_its_share() {
        use Reader::Honest;
        let measured = run_with(&[Honest, Honest, Honest], 1000).unwrap().unwrap();
        // 1000 lookups shared by 3 threads: 333 each, the remainder left out.
        assert_eq!((measured.ops, measured.items), (999, 999));
        assert_eq!(measured.latency.unwrap().len(), 999);
        assert!(measured.seconds > 0.0);
    }

    #[test]
    fn one_failing_reader_fails_the_workload_and_never_hangs_it() {
        use Reader::{Blind, Honest, Lies, Panics};
        let lied = run_with(&[Honest, Lies], 1000).unwrap_err();
        assert!(lied.contains("expected"), "{lied}");
        let blind = run_with(&[Honest, Blind, Honest], 1000).unwrap_err();
        assert!(blind.contains("missing"), "{blind}");
        // A panic in the warm-up, before the barrier: the other threads still get past it.
        let panicked = run_with(&[Honest, Panics, Honest], 1000).unwrap_err();
        assert!(panicked.contains("panicked"), "{panicked}");
    }

    #[test]
    fn too_few_readers_are_an_error_not_a_hang() {
        let generator = Generator::new(SEED);
        let mut engine = fake(300, &[Reader::Honest]);
        let short = get_parallel(&mut engine, &sizes(300, 1000, 2), &generator).unwrap_err();
        assert!(short.contains("1 readers for 2 threads"), "{short}");
    }

    #[test]
    fn ids_laid_end_to_end_read_back_in_order() {
        let mut ids = Ids::default();
        assert_eq!(ids.iter().count(), 0);
        for id in ["a", "", "bcd", "ef"] {
            ids.push(id);
        }
        assert_eq!(ids.iter().collect::<Vec<_>>(), ["a", "", "bcd", "ef"]);
    }

    #[test]
    fn fewer_than_two_threads_fewer_lookups_than_threads_or_no_readers_skip_the_workload() {
        use Reader::Honest;
        let generator = Generator::new(SEED);
        for threads in [0, 1] {
            let mut engine = fake(10, &[Honest, Honest]);
            let skipped = get_parallel(&mut engine, &sizes(10, 10, threads), &generator);
            assert!(skipped.unwrap().is_none());
        }
        assert!(run_with(&[Honest, Honest, Honest], 2).unwrap().is_none());
        assert!(run_with(&[Honest, Honest, Honest], 3).unwrap().is_some(), "one lookup each");
        let mut serial = fake(10, &[]);
        assert!(get_parallel(&mut serial, &sizes(10, 10, 2), &generator).unwrap().is_none());
    }
}
