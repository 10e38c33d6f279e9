//! nanodb-bench: runs the same workloads against NanoDB's storage engine and its peers, each
//! engine in its own process, in alternating order, repeated, and reports the medians with the
//! ratio of NanoDB to each peer.
//!
//! ```text
//! nanodb-bench run [--quick | --full] [--engines nanodb,rocksdb,...] [--repeats N]
//!                  [--keys N] [--ops N] [--threads N] [--sync-ops N]
//!                  [--key-size B] [--value-size B] [--dir PATH] [--write-docs]
//! nanodb-bench worker --engine NAME ...   (one engine, every workload; prints JSON lines)
//! nanodb-bench report RESULTS.jsonl [--write-docs]
//! ```

mod engine;
mod keys;
mod metrics;
mod report;
mod workload;

use engine::EngineConfig;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use workload::{Outcome, Params, DURABLE_WRITERS};

/// Cache and write buffer every engine gets.
const CONFIG: EngineConfig =
    EngineConfig { cache_size_bytes: 64 << 20, write_buffer_size_bytes: 64 << 20 };

/// One measured workload of one engine in one repeat: a line of the results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub engine: String,
    pub workload: String,
    pub repeat: u32,
    pub threads: usize,
    pub ops: u64,
    pub seconds: f64,
    pub ops_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub disk_bytes: u64,
    pub live_bytes: u64,
    pub storage_bytes_written: u64,
    pub logical_bytes_written: u64,
    pub peak_rss_bytes: u64,
    pub description: String,
}

#[derive(Debug, Clone)]
struct Args {
    command: String,
    engines: Vec<String>,
    repeats: u32,
    params: Params,
    dir: PathBuf,
    write_docs: bool,
    results: Option<PathBuf>,
    size_label: String,
}

fn parse_args() -> Result<Args, String> {
    let mut raw = std::env::args().skip(1);
    let command = raw
        .next()
        .ok_or("usage: nanodb-bench run|worker|report ... (see --help in the source header)")?;
    let mut args = Args {
        command,
        engines: engine::available().iter().map(|s| s.to_string()).collect(),
        repeats: 3,
        params: Params {
            keys: 200_000,
            ops: 200_000,
            threads: 1,
            sync_ops: 2_000,
            key_size: 16,
            value_size: 100,
        },
        dir: std::env::temp_dir().join("nanodb-bench"),
        write_docs: false,
        results: None,
        size_label: "quick".into(),
    };
    let mut ops_given = false;
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().ok_or(format!("{flag} needs a value"));
        let number =
            |text: String| text.replace('_', "").parse::<u64>().map_err(|e| format!("{text}: {e}"));
        match flag.as_str() {
            "--quick" => {}
            "--full" => {
                args.params.keys = 10_000_000;
                args.params.sync_ops = 20_000;
                args.size_label = "full".into();
            }
            "--engines" | "--engine" => {
                args.engines = value()?.split(',').map(str::to_string).collect()
            }
            "--repeats" => args.repeats = number(value()?)? as u32,
            "--keys" => args.params.keys = number(value()?)?,
            "--ops" => {
                args.params.ops = number(value()?)?;
                ops_given = true;
            }
            "--threads" => args.params.threads = number(value()?)? as usize,
            "--sync-ops" => args.params.sync_ops = number(value()?)?,
            "--key-size" => args.params.key_size = number(value()?)? as usize,
            "--value-size" => args.params.value_size = number(value()?)? as usize,
            "--dir" => args.dir = value()?.into(),
            "--write-docs" => args.write_docs = true,
            "--size-label" => args.size_label = value()?,
            other if !other.starts_with("--") && args.command == "report" => {
                args.results = Some(other.into())
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if !ops_given {
        // Reads, overwrites, YCSB and deletes: up to a million operations each.
        args.params.ops = args.params.keys.min(1_000_000);
    }
    Ok(args)
}

fn main() {
    let outcome = parse_args().and_then(|args| match args.command.as_str() {
        "worker" => worker(&args),
        "run" => run(&args),
        "report" => {
            let results = args.results.clone().ok_or("report needs a results file")?;
            report::write(&read_records(&results)?, &args_text(), &args.size_label, args.write_docs)
        }
        other => Err(format!("unknown command {other}")),
    });
    if let Err(error) = outcome {
        eprintln!("nanodb-bench: {error}");
        std::process::exit(1);
    }
}

fn args_text() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

fn fresh_dir(dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))
}

/// Prints one workload's outcome as a `RESULT {json}` line, after letting the engine settle.
fn emit(
    args: &Args,
    name: &str,
    engine: &dyn engine::Engine,
    dir: &Path,
    outcome: Outcome,
    written_before: u64,
) -> Result<(), String> {
    engine.settle()?;
    let entry_bytes = (args.params.key_size + args.params.value_size) as u64;
    let latency = outcome.latency.as_ref();
    let micros = |q: f64| latency.map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1000.0);
    let record = Record {
        engine: name.to_string(),
        workload: outcome.workload.clone(),
        repeat: 0,
        threads: outcome.threads,
        ops: outcome.ops,
        seconds: outcome.seconds,
        ops_per_sec: outcome.ops as f64 / outcome.seconds.max(1e-9),
        p50_us: micros(0.5),
        p99_us: micros(0.99),
        p999_us: micros(0.999),
        disk_bytes: metrics::dir_size_bytes(dir),
        live_bytes: outcome.live_keys * entry_bytes,
        storage_bytes_written: metrics::storage_bytes_written().saturating_sub(written_before),
        logical_bytes_written: outcome.logical_bytes_written,
        peak_rss_bytes: metrics::peak_rss_bytes(),
        description: engine.describe(),
    };
    let line = serde_json::to_string(&record).map_err(|e| e.to_string())?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "RESULT {line}").and_then(|()| stdout.flush()).map_err(|e| e.to_string())
}

/// What a group of workloads gets: the engine, and a callback that records one outcome (and
/// resets the per-workload counters for the next).
type Report<'a> = dyn FnMut(Outcome) -> Result<(), String> + 'a;

/// Opens engine `name` on a fresh directory for `group`, runs `body`, then removes the
/// directory.
fn on_fresh_engine(
    args: &Args,
    name: &str,
    group: &str,
    body: impl FnOnce(&dyn engine::Engine, &mut Report<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let dir = args.dir.join(format!("{name}-{group}"));
    fresh_dir(&dir)?;
    let result = (|| {
        let engine = engine::open(name, &dir, CONFIG)?;
        metrics::reset_peak_rss();
        let mut before = metrics::storage_bytes_written();
        let mut report = |outcome: Outcome| {
            emit(args, name, engine.as_ref(), &dir, outcome, before)?;
            metrics::reset_peak_rss();
            before = metrics::storage_bytes_written();
            Ok(())
        };
        body(engine.as_ref(), &mut report)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// One engine, every workload, in this process; prints one `RESULT {json}` line per workload.
fn worker(args: &Args) -> Result<(), String> {
    let name = args.engines.first().ok_or("worker needs --engine")?.clone();
    let params = args.params;
    on_fresh_engine(args, &name, "fillseq", |engine, report| {
        report(workload::fill_sequential(engine, params)?)
    })?;
    on_fresh_engine(args, &name, "fillbatch", |engine, report| {
        report(workload::fill_batch(engine, params)?)
    })?;
    on_fresh_engine(args, &name, "main", |engine, report| {
        workload::main_group(engine, params, report)
    })?;
    for &writers in DURABLE_WRITERS {
        on_fresh_engine(args, &name, "durable", |engine, report| {
            report(workload::durable(engine, params, writers)?)
        })?;
    }
    Ok(())
}

/// Spawns a worker per engine and repeat (rotating the engine order every repeat), collects
/// the results, and writes the report.
fn run(args: &Args) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let results_dir = PathBuf::from("target/nanodb-bench");
    std::fs::create_dir_all(&results_dir).map_err(|e| e.to_string())?;
    let results_path = results_dir.join(format!("results-{stamp}.jsonl"));
    let mut results = std::fs::File::create(&results_path).map_err(|e| e.to_string())?;
    let mut records = Vec::new();
    let p = args.params;
    eprintln!(
        "nanodb-bench: engines {:?}, {} repeats, {} keys, {} ops, {} threads, {} synced puts, results in {}",
        args.engines,
        args.repeats,
        p.keys,
        p.ops,
        p.threads,
        p.sync_ops,
        results_path.display()
    );
    for repeat in 0..args.repeats {
        let mut order = args.engines.clone();
        let shift = repeat as usize % order.len().max(1);
        order.rotate_left(shift);
        for name in order {
            let started = std::time::Instant::now();
            let mut child = Command::new(&exe)
                .args(["worker", "--engine", &name, "--dir"])
                .arg(&args.dir)
                .args(["--keys", &p.keys.to_string(), "--ops", &p.ops.to_string()])
                .args(["--threads", &p.threads.to_string(), "--sync-ops", &p.sync_ops.to_string()])
                .args([
                    "--key-size",
                    &p.key_size.to_string(),
                    "--value-size",
                    &p.value_size.to_string(),
                ])
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| format!("spawn worker: {e}"))?;
            let stdout = child.stdout.take().ok_or("worker stdout")?;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Some(json) = line.strip_prefix("RESULT ") else { continue };
                let mut record: Record = serde_json::from_str(json).map_err(|e| e.to_string())?;
                record.repeat = repeat;
                eprintln!(
                    "  repeat {repeat} {:<8} {:<13} {:>12.0} ops/s  p99 {:>9.1} us",
                    record.engine, record.workload, record.ops_per_sec, record.p99_us
                );
                writeln!(results, "{}", serde_json::to_string(&record).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
                records.push(record);
            }
            let status = child.wait().map_err(|e| e.to_string())?;
            eprintln!(
                "  repeat {repeat} {name} done in {:.0} s ({status})",
                started.elapsed().as_secs_f64()
            );
            if !status.success() {
                eprintln!(
                    "  warning: worker for {name} failed; its missing workloads are left out"
                );
            }
        }
    }
    report::write(&records, &args_text(), &args.size_label, args.write_docs)
}

fn read_records(path: &Path) -> Result<Vec<Record>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| e.to_string()))
        .collect()
}
