//! `nanodb-bench serve`: the load test of `nanodb serve` (issue 7's figures).
//!
//! ```text
//! nanodb-bench serve [--records N] [--users N] [--connections N] [--seconds S]
//!                    [--warmup S] [--bin PATH] [--dir PATH] [--log LEVEL] [--out FILE]
//!                    [--workloads NAME,...]
//! ```
//!
//! `--workloads` runs only the named workloads (in their usual order), for example to profile
//! one of them: `get-by-id`, `list-indexed-filter`, `list-under-rule`,
//! `list-under-rule-skip-total`, `create`. By default all run.
//!
//! Steps: a superuser (`nanodb superuser create`), the server started on a fresh data
//! directory, the `items` and `notes` collections and `--users` users made through the API
//! (`seed`), the server stopped and `--records` items and notes written straight into the
//! directory with nanodb, the server started again; its idle resident memory; then each
//! workload (`load::Kind`) for `--warmup` and `--seconds` at `--connections` connections;
//! the idle memory again after a pause; the server stopped. Printed: a markdown table, and
//! one JSON line per workload to `--out` if given. `scripts/load-test.sh small|full` builds
//! and runs it.
//!
//! The load generator runs in this process, on the same machine (and CPUs) as the server:
//! requests per second are what both together reach; requests per CPU-second count only the
//! server's CPU time.
//!
//! Thread safety: the orchestration is sequential; `load` spawns the connection threads.

mod http;
mod load;
mod seed;
mod server;

use load::{Figures, Kind, Target};
use server::Served;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Default records per collection (the issue's million).
pub const RECORDS_DEFAULT: u64 = 1_000_000;
/// Default users (notes are spread over them).
pub const USERS_DEFAULT: usize = 1_000;
/// Default concurrent connections (the issue's 64).
pub const CONNECTIONS_DEFAULT: usize = 64;
/// Default measured seconds per workload.
pub const SECONDS_DEFAULT: u64 = 20;
/// Default warm-up seconds per workload.
pub const WARMUP_DEFAULT: u64 = 3;
/// The superuser of the test.
const ADMIN_EMAIL: &str = "loadtest@example.com";
const ADMIN_PASSWORD: &str = "load-test-admin";
/// Pause before measuring idle memory.
const IDLE_PAUSE: Duration = Duration::from_secs(3);

/// The flags.
#[derive(Debug, Clone)]
struct Args {
    records: u64,
    users: usize,
    connections: usize,
    seconds: u64,
    warmup: u64,
    bin: PathBuf,
    dir: Option<PathBuf>,
    log: String,
    out: Option<PathBuf>,
    workloads: Vec<Kind>,
}

fn parse(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        records: RECORDS_DEFAULT,
        users: USERS_DEFAULT,
        connections: CONNECTIONS_DEFAULT,
        seconds: SECONDS_DEFAULT,
        warmup: WARMUP_DEFAULT,
        bin: server::default_binary(),
        dir: None,
        log: "warn".into(),
        out: None,
        workloads: Kind::ALL.to_vec(),
    };
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().ok_or_else(|| format!("{flag} needs a value"));
        let number =
            |text: String| text.parse::<u64>().map_err(|_| format!("{flag}: not a number: {text}"));
        match flag.as_str() {
            "--records" => args.records = number(value()?)?.max(1),
            "--users" => args.users = number(value()?)?.max(1) as usize,
            "--connections" => args.connections = number(value()?)?.max(1) as usize,
            "--seconds" => args.seconds = number(value()?)?.max(1),
            "--warmup" => args.warmup = number(value()?)?,
            "--bin" => args.bin = PathBuf::from(value()?),
            "--dir" => args.dir = Some(PathBuf::from(value()?)),
            "--log" => args.log = value()?,
            "--out" => args.out = Some(PathBuf::from(value()?)),
            "--workloads" => args.workloads = workloads(&value()?)?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// The workloads named in `list` (comma-separated), in `Kind::ALL`'s order.
fn workloads(list: &str) -> Result<Vec<Kind>, String> {
    let names: Vec<&str> = list.split(',').map(str::trim).filter(|name| !name.is_empty()).collect();
    if let Some(unknown) =
        names.iter().find(|name| !Kind::ALL.iter().any(|kind| kind.name() == **name))
    {
        return Err(format!("--workloads: unknown workload {unknown}"));
    }
    if names.is_empty() {
        return Err("--workloads: name at least one workload".into());
    }
    Ok(Kind::ALL.into_iter().filter(|kind| names.contains(&kind.name())).collect())
}

/// Runs `serve` with the flags that follow it.
pub fn main(raw: impl Iterator<Item = String>) -> Result<(), String> {
    let args = parse(raw)?;
    let temp;
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempdir()?;
            temp.clone()
        }
    };
    let outcome = run(&args, &dir);
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome
}

fn tempdir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("nanodb-serve-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    Ok(dir)
}

fn run(args: &Args, dir: &std::path::Path) -> Result<(), String> {
    let started = Instant::now();
    let created = Command::new(&args.bin)
        .args(["superuser", "create", ADMIN_EMAIL, ADMIN_PASSWORD, "--dir"])
        .arg(dir)
        .env("NANODB_LOG", "warn")
        .output()
        .map_err(|error| format!("cannot run {}: {error}", args.bin.display()))?;
    if !created.status.success() {
        return Err(format!(
            "superuser create failed: {}",
            String::from_utf8_lossy(&created.stderr)
        ));
    }
    let flags = ["--auth-rate-burst", "0"];
    let served = Served::start(&args.bin, dir, &flags, &args.log)?;
    let admin = seed::login(served.address, "_superusers", ADMIN_EMAIL, ADMIN_PASSWORD)?;
    let schema = seed::create_schema(served.address, &admin)?;
    let users = seed::create_users(served.address, &admin, args.users)?;
    served.stop()?;
    eprintln!(
        "schema and {} users made in {:.1} s; seeding {} items and notes",
        users.len(),
        started.elapsed().as_secs_f64(),
        args.records
    );
    let seeding = Instant::now();
    seed::insert_records(dir, &schema, &users, args.records)?;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    eprintln!("seeded in {seed_seconds:.1} s");

    let served = Served::start(&args.bin, dir, &flags, &args.log)?;
    std::thread::sleep(IDLE_PAUSE);
    let idle_rss = server::resident_bytes(served.pid());
    let tokens = (0..args.connections.min(users.len()))
        .map(|i| seed::login(served.address, "users", &seed::user_email(i), seed::USER_PASSWORD))
        .collect::<Result<Vec<_>, _>>()?;
    let target =
        Target { address: served.address, server_pid: served.pid(), records: args.records, tokens };
    let warmup = Duration::from_secs(args.warmup);
    let window = Duration::from_secs(args.seconds);
    let mut results: Vec<Figures> = Vec::new();
    for &kind in &args.workloads {
        let figures = load::run(kind, &target, args.connections, warmup, window)?;
        eprintln!(
            "{}: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms",
            figures.workload,
            figures.requests_per_sec,
            figures.p50_us / 1e3,
            figures.p99_us / 1e3
        );
        results.push(figures);
    }
    std::thread::sleep(IDLE_PAUSE);
    let idle_after_rss = server::resident_bytes(served.pid());
    let memory = storage_memory(served.address);
    served.stop()?;
    let disk_bytes = crate::metrics::dir_size_bytes(dir);
    let report = Report {
        args,
        idle_rss,
        idle_after_rss,
        memory,
        seed_seconds,
        disk_bytes,
        results: &results,
    };
    println!("{}", report.markdown());
    if let Some(out) = &args.out {
        let mut file =
            std::fs::File::create(out).map_err(|error| format!("{}: {error}", out.display()))?;
        for figures in &results {
            let line = serde_json::to_string(figures).map_err(|error| error.to_string())?;
            writeln!(file, "{line}").map_err(|error| error.to_string())?;
        }
        let summary = serde_json::json!({"records": args.records, "users": args.users, "idle_rss_bytes": idle_rss,
            "idle_after_load_rss_bytes": idle_after_rss, "seed_seconds": seed_seconds, "disk_bytes": disk_bytes});
        writeln!(file, "{summary}").map_err(|error| error.to_string())?;
    }
    Ok(())
}

/// The server's own account of its memory after the load (from `/metrics`): memtable,
/// frozen memtable and block cache bytes, and the cache's bound.
fn storage_memory(address: std::net::SocketAddr) -> Vec<(String, u64)> {
    let Ok(mut connection) = http::Connection::open(address) else { return Vec::new() };
    let Ok(answer) = connection.send("GET", "/metrics", None, None) else { return Vec::new() };
    let text = String::from_utf8_lossy(&answer.body);
    [
        "nanodb_storage_memtable_bytes",
        "nanodb_storage_frozen_memtable_bytes",
        "nanodb_storage_block_cache_bytes",
        "nanodb_storage_block_cache_capacity_bytes",
        "nanodb_storage_pinned_bytes",
    ]
    .iter()
    .filter_map(|name| {
        let value = text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))?;
        Some((name.trim_start_matches("nanodb_storage_").to_string(), value.parse().ok()?))
    })
    .collect()
}

/// What the run printed.
struct Report<'a> {
    args: &'a Args,
    idle_rss: u64,
    idle_after_rss: u64,
    memory: Vec<(String, u64)>,
    seed_seconds: f64,
    disk_bytes: u64,
    results: &'a [Figures],
}

impl Report<'_> {
    fn markdown(&self) -> String {
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        let mut out = format!(
            "{} items and {} notes ({} users), {} connections, {} s per workload after {} s of warm-up; \
             seeded in {:.1} s; data directory {:.0} MiB.\n\n\
             | Workload | Requests/s | p50 (ms) | p99 (ms) | p99.9 (ms) | Server CPU (s) | Requests per CPU-second | Peak RSS (MiB) |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
            self.args.records, self.args.records, self.args.users, self.args.connections, self.args.seconds,
            self.args.warmup, self.seed_seconds, mib(self.disk_bytes)
        );
        for figures in self.results {
            out.push_str(&format!(
                "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {:.0} | {:.0} |\n",
                figures.workload,
                figures.requests_per_sec,
                figures.p50_us / 1e3,
                figures.p99_us / 1e3,
                figures.p999_us / 1e3,
                figures.server_cpu_seconds,
                figures.requests_per_cpu_second,
                mib(figures.server_rss_peak_bytes),
            ));
        }
        out.push_str(&format!(
            "\nServer resident memory idle: {:.0} MiB after start, {:.0} MiB after the load.\n",
            mib(self.idle_rss),
            mib(self.idle_after_rss)
        ));
        let parts: Vec<String> = self
            .memory
            .iter()
            .map(|(name, bytes)| format!("{name} {:.0} MiB", mib(*bytes)))
            .collect();
        out.push_str(&format!(
            "Storage memory after the load (from /metrics): {}.\n",
            parts.join(", ")
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_bad_ones_are_refused() {
        let args = |text: &str| parse(text.split_whitespace().map(str::to_string));
        let parsed =
            args("--records 500 --users 7 --connections 8 --seconds 2 --warmup 0 --log info")
                .unwrap();
        assert_eq!((parsed.records, parsed.users, parsed.connections), (500, 7, 8));
        assert_eq!((parsed.seconds, parsed.warmup, parsed.log.as_str()), (2, 0, "info"));
        let defaults = args("").unwrap();
        assert_eq!(
            (defaults.records, defaults.connections),
            (RECORDS_DEFAULT, CONNECTIONS_DEFAULT)
        );
        assert!(args("--records").is_err());
        assert!(args("--records x").is_err());
        assert!(args("--what 1").is_err());
        assert_eq!(defaults.workloads, Kind::ALL.to_vec());
        let some = args("--workloads create,list-under-rule").unwrap();
        assert_eq!(some.workloads, vec![Kind::AuthList, Kind::Create]);
        assert!(args("--workloads list").is_err());
        assert!(args("--workloads ,").is_err());
    }
}
