//! nanodb-bench: runs the same workloads against NanoDB's storage engine and its peers, each
//! engine in its own process, in alternating order, repeated, and reports the medians with the
//! ratio of NanoDB to each peer.
//!
//! ```text
//! nanodb-bench run [--quick | --full] [--engines nanodb,rocksdb,...] [--repeats N]
//!                  [--keys N] [--ops N] [--threads N] [--sync-ops N]
//!                  [--key-size B] [--value-size B] [--dir PATH] [--write-docs]
//!                  [--rss-max-gib N] [--overwrite-keys N]
//!                  [--groups fillseq,fillbatch,main,overwrite-x10,durable,transactions]
//! nanodb-bench worker --engine NAME ...   (one engine, every workload; prints JSON lines)
//! nanodb-bench report RESULTS.jsonl [--write-docs]
//! nanodb-bench docs [--docs N] [--repeats N] [--engines nanodb,sqlite,polodb] ...
//!                   (document workloads of the `nanodb` crate: see `docs`)
//! nanodb-bench serve [--records N] [--connections N] [--seconds S] ...
//!                   (the load test of `nanodb serve`: see `serve`)
//! ```

mod docs;
mod engine;
mod keys;
mod metrics;
mod report;
mod serve;
mod workload;

use engine::EngineConfig;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use workload::{Outcome, Params, DURABLE_WRITERS};

/// Rust's allocator in every worker with feature `mimalloc` (off by default: an A/B of the
/// allocator); the C and C++ engines allocate through libc's malloc either way.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The name of Rust's allocator in this build, for the results' machine description.
pub(crate) const ALLOCATOR_NAME: &str =
    if cfg!(feature = "mimalloc") { "mimalloc" } else { "system malloc" };

/// A worker whose resident memory passes this many GiB is killed and its run recorded as a
/// failure, so one runaway engine cannot take the machine down with it (`--rss-max-gib`).
const RSS_MAX_GIB_DEFAULT: u64 = 16;
/// The largest `--rss-max-gib` accepted (1 TiB).
const RSS_MAX_GIB_LIMIT: u64 = 1024;
/// How often the watchdog samples a worker's resident memory.
const RSS_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// Cache and write buffer every engine gets.
const CONFIG: EngineConfig = EngineConfig {
    cache_size_bytes: 64 << 20,
    write_buffer_size_bytes: 64 << 20,
    transactional: false,
};

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
    /// Transaction attempts that conflicted and ran again (transaction workloads).
    #[serde(default)]
    pub retries: u64,
}

/// A worker that did not finish: a line `{"failure": {...}}` of the results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub engine: String,
    pub repeat: u32,
    /// The last workload the worker reported before it failed, if any.
    pub after_workload: Option<String>,
    pub reason: String,
}

/// One line of the key-value harness's results file.
type Line = report::Line<Record, Failure>;

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
    rss_max_bytes: u64,
    /// Workload groups to run (`GROUPS`); all by default.
    groups: Vec<String>,
}

/// The workload groups a worker runs, in order.
const GROUPS: &[&str] =
    &["fillseq", "fillbatch", "main", "overwrite-x10", "durable", "transactions"];

fn parse_args(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
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
            overwrite_keys: 0,
        },
        dir: std::env::temp_dir().join("nanodb-bench"),
        write_docs: false,
        results: None,
        size_label: "quick".into(),
        rss_max_bytes: RSS_MAX_GIB_DEFAULT << 30,
        groups: GROUPS.iter().map(|s| s.to_string()).collect(),
    };
    let mut overwrite_keys_given = false;
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
            "--overwrite-keys" => {
                args.params.overwrite_keys = number(value()?)?;
                overwrite_keys_given = true;
            }
            "--groups" => {
                args.groups = value()?.split(',').map(str::to_string).collect();
                if let Some(unknown) = args.groups.iter().find(|g| !GROUPS.contains(&g.as_str())) {
                    return Err(format!("unknown group {unknown}; groups are {GROUPS:?}"));
                }
            }
            "--threads" => args.params.threads = number(value()?)? as usize,
            "--sync-ops" => args.params.sync_ops = number(value()?)?,
            "--key-size" => args.params.key_size = number(value()?)? as usize,
            "--value-size" => args.params.value_size = number(value()?)? as usize,
            "--dir" => args.dir = value()?.into(),
            "--write-docs" => args.write_docs = true,
            "--size-label" => args.size_label = value()?,
            "--rss-max-gib" => {
                let gib = number(value()?)?;
                if !(1..=RSS_MAX_GIB_LIMIT).contains(&gib) {
                    return Err(format!("--rss-max-gib must be 1 to {RSS_MAX_GIB_LIMIT}"));
                }
                args.rss_max_bytes = gib << 30;
            }
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
    if !overwrite_keys_given {
        // Ten rounds over a tenth of the keys: as many writes as one fill of them all.
        args.params.overwrite_keys = (args.params.keys / 10).max(1);
    }
    Ok(args)
}

fn main() {
    let mut raw = std::env::args().skip(1).peekable();
    if raw.next_if(|c| c == "serve").is_some() {
        if let Err(error) = serve::main(raw) {
            eprintln!("nanodb-bench: {error}");
            std::process::exit(1);
        }
        return;
    }
    if let Some(command) = raw.next_if(|c| c.starts_with("docs")) {
        if let Err(error) = docs::main(&command, raw) {
            eprintln!("nanodb-bench: {error}");
            std::process::exit(1);
        }
        return;
    }
    let outcome = parse_args(raw).and_then(|args| match args.command.as_str() {
        "worker" => worker(&args),
        "run" => run(&args),
        "report" => {
            let results = args.results.clone().ok_or("report needs a results file")?;
            let (records, failures) = read_results(&results)?;
            report::write(&records, &failures, &args_text(), &args.size_label, args.write_docs)
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
        retries: outcome.retries,
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
        let config = EngineConfig { transactional: group == "transactions", ..CONFIG };
        let engine = engine::open(name, &dir, config)?;
        metrics::reset_peak_rss();
        let mut before = metrics::storage_bytes_written();
        // Where the previous outcome's counts started, for one that continues it.
        let mut before_previous = before;
        let mut report = |outcome: Outcome| {
            if !outcome.is_counters_reset() {
                let since = if outcome.counts_from_previous { before_previous } else { before };
                emit(args, name, engine.as_ref(), &dir, outcome, since)?;
            }
            metrics::reset_peak_rss();
            before_previous = before;
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
    let wanted = |group: &str| args.groups.iter().any(|g| g == group);
    if wanted("fillseq") {
        on_fresh_engine(args, &name, "fillseq", |engine, report| {
            report(workload::fill_sequential(engine, params)?)
        })?;
    }
    if wanted("fillbatch") {
        on_fresh_engine(args, &name, "fillbatch", |engine, report| {
            report(workload::fill_batch(engine, params)?)
        })?;
    }
    if wanted("main") {
        on_fresh_engine(args, &name, "main", |engine, report| {
            workload::main_group(engine, params, report)
        })?;
    }
    if wanted("overwrite-x10") {
        on_fresh_engine(args, &name, "overwrite-x10", |engine, report| {
            workload::overwrite_rounds(engine, params, report)
        })?;
    }
    if wanted("transactions") {
        on_fresh_engine(args, &name, "transactions", |engine, report| {
            workload::transactions(engine, params, report)
        })?;
    }
    if wanted("durable") {
        for &writers in DURABLE_WRITERS {
            on_fresh_engine(args, &name, "durable", |engine, report| {
                report(workload::durable(engine, params, writers)?)
            })?;
        }
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
    let mut failures = Vec::new();
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
                .args(["--overwrite-keys", &p.overwrite_keys.to_string()])
                .args(["--groups", &args.groups.join(",")])
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
            let watchdog = Watchdog::start(child, args.rss_max_bytes);
            let mut last_workload = None;
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
                last_workload = Some(record.workload.clone());
                records.push(record);
            }
            let (status, killed_for_memory) = watchdog.finish()?;
            eprintln!(
                "  repeat {repeat} {name} done in {:.0} s ({status})",
                started.elapsed().as_secs_f64()
            );
            if !status.success() {
                let reason = match killed_for_memory {
                    Some(rss) => format!(
                        "killed by the harness: resident memory reached {:.2} GiB (limit {} GiB)",
                        rss as f64 / (1u64 << 30) as f64,
                        args.rss_max_bytes >> 30
                    ),
                    None => format!("worker exited with {status}"),
                };
                eprintln!(
                    "  warning: {name} failed ({reason}); its missing workloads are left out"
                );
                let failure =
                    Failure { engine: name.clone(), repeat, after_workload: last_workload, reason };
                let line = Line::Failure { failure: failure.clone() };
                writeln!(results, "{}", serde_json::to_string(&line).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
                failures.push(failure);
            }
        }
    }
    report::write(&records, &failures, &args_text(), &args.size_label, args.write_docs)
}

fn read_results(path: &Path) -> Result<(Vec<Record>, Vec<Failure>), String> {
    report::read_results(path)
}

/// Watches a worker's resident memory from a thread and kills it past the limit.
struct Watchdog {
    child: std::sync::Arc<std::sync::Mutex<std::process::Child>>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Option<u64>>,
}

impl Watchdog {
    fn start(child: std::process::Child, rss_max_bytes: u64) -> Watchdog {
        use std::sync::atomic::Ordering;
        let pid = child.id();
        let child = std::sync::Arc::new(std::sync::Mutex::new(child));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (child, done) = (child.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let rss = metrics::resident_bytes_of(pid);
                    if rss > rss_max_bytes {
                        let mut child = child.lock().unwrap_or_else(|poison| poison.into_inner());
                        // Only kill a worker that is still running (its pid is still ours).
                        if matches!(child.try_wait(), Ok(None)) {
                            let _ = child.kill();
                            return Some(rss);
                        }
                    }
                    std::thread::sleep(RSS_POLL_INTERVAL);
                }
                None
            })
        };
        Watchdog { child, done, thread }
    }

    /// Waits for the worker (its stdout is closed) and says whether the watchdog killed it.
    fn finish(self) -> Result<(std::process::ExitStatus, Option<u64>), String> {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        let killed = self.thread.join().map_err(|_| "watchdog thread panicked")?;
        let status = self
            .child
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .wait()
            .map_err(|e| e.to_string())?;
        Ok((status, killed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(flags: &[&str]) -> Result<Args, String> {
        parse_args(["run"].iter().chain(flags).map(|s| s.to_string()))
    }

    #[test]
    fn rss_limit_is_checked_at_both_ends() {
        assert_eq!(parse(&[]).unwrap().rss_max_bytes, RSS_MAX_GIB_DEFAULT << 30);
        assert_eq!(parse(&["--rss-max-gib", "1"]).unwrap().rss_max_bytes, 1 << 30);
        assert!(parse(&["--rss-max-gib", "0"]).is_err());
        let top = RSS_MAX_GIB_LIMIT.to_string();
        assert_eq!(parse(&["--rss-max-gib", &top]).unwrap().rss_max_bytes, RSS_MAX_GIB_LIMIT << 30);
        let over = (RSS_MAX_GIB_LIMIT + 1).to_string();
        assert!(parse(&["--rss-max-gib", &over]).is_err());
    }

    #[test]
    fn results_file_holds_records_and_failures() {
        let record = Record {
            engine: "nanodb".into(),
            workload: "fillseq".into(),
            repeat: 2,
            threads: 1,
            ops: 10,
            seconds: 0.5,
            ops_per_sec: 20.0,
            p50_us: 1.0,
            p99_us: 2.0,
            p999_us: 3.0,
            disk_bytes: 4,
            live_bytes: 5,
            storage_bytes_written: 6,
            logical_bytes_written: 7,
            peak_rss_bytes: 8,
            description: "d".into(),
            retries: 0,
        };
        let failure = Failure {
            engine: "sled".into(),
            repeat: 0,
            after_workload: Some("fillseq".into()),
            reason: "killed".into(),
        };
        let text = format!(
            "{}\n\n{}\n",
            serde_json::to_string(&record).unwrap(),
            serde_json::to_string(&Line::Failure { failure }).unwrap()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        std::fs::write(&path, text).unwrap();
        let (records, failures) = read_results(&path).unwrap();
        assert_eq!((records.len(), records[0].repeat, records[0].ops), (1, 2, 10));
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].after_workload.as_deref(), Some("fillseq"));
        std::fs::write(&path, "{\"engine\": 1}\n").unwrap();
        let error = read_results(&path).unwrap_err();
        assert!(error.contains("results.jsonl:1"), "{error}");
    }
}
