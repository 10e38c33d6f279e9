//! `nanodb-bench docs`: spawns a `docs-worker` process per engine and repeat (rotating the
//! engine order every repeat, so no engine always runs first on a cold or warm machine),
//! watches its memory, appends its records to the results file, and prints the report.
//!
//! Thread safety: one thread, plus the watchdog thread of the running worker.
//!
//! Invariant: a worker that fails or is killed is recorded as a failure line in the results
//! file, and its missing workloads show as n/a; the run goes on with the next worker.

use super::args::{size_flags, DocArgs};
use super::report::{self, DocRecord, Line};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn json<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| e.to_string())
}

/// Runs the comparison described by `args` and prints its report on stdout.
pub fn run(args: &DocArgs) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let results_path = match &args.results {
        Some(path) => path.clone(),
        None => {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            PathBuf::from("target/nanodb-bench").join(format!("docs-results-{stamp}.jsonl"))
        }
    };
    if let Some(parent) = results_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let mut results = std::fs::File::create(&results_path)
        .map_err(|e| format!("{}: {e}", results_path.display()))?;
    eprintln!(
        "nanodb-bench docs: engines {:?}, {} repeats, {:?}, results in {}",
        args.engines,
        args.repeats,
        args.sizes,
        results_path.display()
    );
    let (mut records, mut failures) = (Vec::new(), Vec::new());
    for repeat in 0..args.repeats {
        let mut order = args.engines.clone();
        let shift = repeat as usize % order.len().max(1);
        order.rotate_left(shift);
        for name in order {
            let started = std::time::Instant::now();
            let mut child = Command::new(&exe)
                .args(["docs-worker", "--engine", &name, "--dir"])
                .arg(&args.dir)
                .args(size_flags(&args.sizes))
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| format!("spawn worker: {e}"))?;
            let stdout = child.stdout.take().ok_or("worker stdout")?;
            let watchdog = crate::Watchdog::start(child, args.rss_max_bytes);
            let (mut last, mut reported) = (None, None);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(reason) = line.strip_prefix("FAILED ") {
                    reported = Some(reason.to_string());
                }
                let Some(text) = line.strip_prefix("RESULT ") else { continue };
                let mut record: DocRecord =
                    serde_json::from_str(text).map_err(|e| e.to_string())?;
                record.repeat = repeat;
                eprintln!(
                    "  repeat {repeat} {:<7} {:<16} {:>12.1} ops/s {:>12.0} docs/s  p99 {:>10.1} us",
                    record.engine, record.workload, record.ops_per_sec, record.items_per_sec, record.p99_us
                );
                writeln!(results, "{}", json(&record)?).map_err(|e| e.to_string())?;
                last = Some(record.workload.clone());
                records.push(record);
            }
            let (status, killed_for_memory) = watchdog.finish()?;
            eprintln!(
                "  repeat {repeat} {name} done in {:.0} s ({status})",
                started.elapsed().as_secs_f64()
            );
            if !status.success() {
                let reason = match killed_for_memory {
                    Some(rss) => {
                        format!("killed at {:.2} GiB resident", rss as f64 / (1u64 << 30) as f64)
                    }
                    None => match reported {
                        Some(reason) => format!("{reason} ({status})"),
                        None => format!("worker exited with {status}"),
                    },
                };
                let after =
                    last.map_or("before its first workload".into(), |w| format!("after {w}"));
                let failure = format!("{name} repeat {repeat}, {after}: {reason}");
                eprintln!("  warning: {failure}");
                writeln!(results, "{}", json(&Line::Failure { failure: failure.clone() })?)
                    .map_err(|e| e.to_string())?;
                failures.push(failure);
            }
        }
    }
    if records.is_empty() {
        return Err(format!("no worker reported anything: {failures:?}"));
    }
    print!("{}", report::render(&records, &failures, &crate::args_text()));
    Ok(())
}
