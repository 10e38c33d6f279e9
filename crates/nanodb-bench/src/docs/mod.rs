//! Document workloads (issue 6): nanodb's document layer against SQLite storing JSON and
//! PoloDB, each engine in its own worker process, in rotating order, repeated, reported as
//! medians with nanodb's ratio to each peer.
//!
//! `docs` runs the comparison (`run`), `docs-worker` runs every workload of one engine in this
//! process and prints one `RESULT {json}` line per workload, `docs-report FILE` prints the
//! report of a results file again. Flags: `args`.
//!
//! Thread safety: a worker is single-threaded except for `get-parallel`'s reader threads
//! (`parallel`); `run` only spawns processes and reads their output (plus the memory
//! watchdog's thread).
//!
//! Invariant: every workload starts from a fresh directory per group, removed afterwards, and a
//! worker's figures are printed only after the workload's own checks passed.

mod args;
pub mod engine;
pub mod gen;
mod parallel;
mod report;
mod run;
#[cfg(test)]
mod tests;
pub mod workload;

use engine::DocResult;
use report::DocRecord;
use std::io::Write;
use std::path::Path;
use workload::{Measured, Sizes};

/// Runs command `docs`, `docs-worker` or `docs-report` with the flags that follow it.
pub fn main(command: &str, raw: impl Iterator<Item = String>) -> Result<(), String> {
    let args = args::parse(command, raw)?;
    match command {
        "docs" => run::run(&args),
        "docs-worker" => {
            let name = args.engines.first().ok_or("docs-worker needs --engine")?;
            let outcome = worker(name, &args.dir, &args.sizes, &mut |record| {
                let line = serde_json::to_string(&record).map_err(|e| e.to_string())?;
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "RESULT {line}")
                    .and_then(|()| stdout.flush())
                    .map_err(|e| e.to_string())
            });
            if let Err(error) = &outcome {
                // The reason, for the run's report (the worker's stderr is not captured).
                println!("FAILED {}", error.replace('\n', " "));
            }
            outcome
        }
        "docs-report" => {
            let path = args.results.as_ref().ok_or("docs-report needs a results file")?;
            let (records, failures) = report::read(path)?;
            if records.is_empty() {
                return Err("no results to report".into());
            }
            print!("{}", report::render(&records, &failures, &crate::args_text()));
            Ok(())
        }
        other => Err(format!("unknown command {other}")),
    }
}

/// Runs every workload of engine `name` under `dir`, passing each record to `emit`.
pub fn worker(
    name: &str,
    dir: &Path,
    sizes: &Sizes,
    emit: &mut dyn FnMut(DocRecord) -> DocResult<()>,
) -> DocResult<()> {
    on_fresh_engine(name, &dir.join(format!("{name}-insert-one")), emit, &mut |engine, report| {
        workload::insert_one(engine, sizes, report)
    })?;
    on_fresh_engine(name, &dir.join(format!("{name}-main")), emit, &mut |engine, report| {
        workload::main_group(engine, sizes, report)
    })
}

type Group<'a> =
    dyn FnMut(&mut dyn engine::DocEngine, &mut workload::Report<'_>) -> DocResult<()> + 'a;

/// Opens engine `name` on the fresh directory `dir`, runs `group`, closes it, removes `dir`.
fn on_fresh_engine(
    name: &str,
    dir: &Path,
    emit: &mut dyn FnMut(DocRecord) -> DocResult<()>,
    group: &mut Group<'_>,
) -> DocResult<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let result = (|| {
        let mut engine = engine::open(name, dir)?;
        let description = engine.describe();
        crate::metrics::reset_peak_rss();
        let mut report = |measured: Measured| {
            emit(record(name, &description, dir, measured))?;
            crate::metrics::reset_peak_rss();
            Ok(())
        };
        let outcome = group(engine.as_mut(), &mut report);
        let closed = engine.close();
        outcome.and(closed)
    })();
    let _ = std::fs::remove_dir_all(dir);
    result.map_err(|e| format!("{name}: {e}"))
}

fn record(engine: &str, description: &str, dir: &Path, measured: Measured) -> DocRecord {
    let micros =
        |q: f64| measured.latency.as_ref().map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1000.0);
    let seconds = measured.seconds.max(1e-9);
    DocRecord {
        engine: engine.to_string(),
        workload: measured.workload.to_string(),
        repeat: 0,
        ops: measured.ops,
        items: measured.items,
        seconds: measured.seconds,
        ops_per_sec: measured.ops as f64 / seconds,
        items_per_sec: measured.items as f64 / seconds,
        p50_us: micros(0.5),
        p99_us: micros(0.99),
        disk_bytes: crate::metrics::dir_size_bytes(dir),
        peak_rss_bytes: crate::metrics::peak_rss_bytes(),
        description: description.to_string(),
    }
}
