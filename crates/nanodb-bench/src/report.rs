//! Turns result records into the markdown report and one SVG bar chart per workload.
//!
//! For every (engine, workload) the median run by throughput is kept; every figure of that row
//! comes from that same run. Ratios are NanoDB's median throughput over the peer's: above 1.0
//! NanoDB is faster.

use crate::workload::WORKLOADS;
use crate::{Failure, Record};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

const DOC_PATH: &str = "docs/benchmarks.md";
/// Everything after this line of docs/benchmarks.md is written by hand and kept when the
/// report is regenerated.
const HAND_WRITTEN_MARKER: &str = "<!-- end of the generated report: hand-written notes follow -->";
const CHART_DIR: &str = "docs/benchmarks";

type Medians<'a> = BTreeMap<(&'a str, &'a str), &'a Record>;

fn medians(records: &[Record]) -> Medians<'_> {
    let mut runs: BTreeMap<(&str, &str), Vec<&Record>> = BTreeMap::new();
    for record in records {
        runs.entry((record.workload.as_str(), record.engine.as_str())).or_default().push(record);
    }
    runs.into_iter()
        .map(|(key, mut list)| {
            list.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
            (key, list[list.len() / 2])
        })
        .collect()
}

fn engines_of(records: &[Record]) -> Vec<&str> {
    let mut engines: Vec<&str> = Vec::new();
    for record in records {
        if !engines.contains(&record.engine.as_str()) {
            engines.push(&record.engine);
        }
    }
    engines.sort_by_key(|name| (*name != "nanodb", *name));
    engines
}

fn workloads_of(records: &[Record]) -> Vec<&str> {
    WORKLOADS.iter().copied().filter(|w| records.iter().any(|r| r.workload == *w)).collect()
}

fn human(ops: f64) -> String {
    if ops >= 1e6 {
        format!("{:.2}M", ops / 1e6)
    } else if ops >= 1e3 {
        format!("{:.1}k", ops / 1e3)
    } else {
        format!("{ops:.0}")
    }
}

/// Ends a summary row: each engine's throughput (`ops` of it, formatted by `human`; "n/a"
/// if missing), then nanodb's ratio to each peer after the first engine.
pub(crate) fn throughput_cells(
    md: &mut String,
    engines: &[&str],
    ops: impl Fn(&str) -> Option<f64>,
    human: fn(f64) -> String,
) {
    for engine in engines {
        let _ = write!(md, " {} |", ops(engine).map_or("n/a".into(), human));
    }
    let ours = ops("nanodb");
    for engine in engines.iter().skip(1) {
        let cell = match (ours, ops(engine)) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "n/a".into(),
        };
        let _ = write!(md, " {cell} |");
    }
    let _ = writeln!(md);
}

/// One line of a results file: a measured record, or a worker that failed (`R` and `F` are
/// the key-value or the document harness's types).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum Line<R, F> {
    Failure { failure: F },
    Record(Box<R>),
}

/// Reads a results file back: its records and its failures, in file order.
pub(crate) fn read_results<R, F>(path: &Path) -> Result<(Vec<R>, Vec<F>), String>
where
    R: serde::de::DeserializeOwned,
    F: serde::de::DeserializeOwned,
{
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut records, mut failures) = (Vec::new(), Vec::new());
    for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str(line)
            .map_err(|e| format!("{}:{}: {e}", path.display(), number + 1))?
        {
            Line::Record(record) => records.push(*record),
            Line::Failure { failure } => failures.push(failure),
        }
    }
    Ok((records, failures))
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib >> 20);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let rustc = std::process::Command::new("rustc")
        .arg("-V")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {memory_gib} GiB memory, Linux {}, {rustc}, Rust allocator {}",
        kernel.trim(),
        crate::ALLOCATOR_NAME
    )
}

/// Renders the report; with `write_docs`, writes docs/benchmarks.md and the charts, else prints.
pub fn write(
    records: &[Record],
    failures: &[Failure],
    command: &str,
    size_label: &str,
    write_docs: bool,
) -> Result<(), String> {
    if records.is_empty() {
        return Err("no results to report".into());
    }
    let medians = medians(records);
    let engines = engines_of(records);
    let workloads = workloads_of(records);
    let repeats = records.iter().map(|r| r.repeat).max().unwrap_or(0) + 1;
    let first = records[0].clone();
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `nanodb-bench` ({size_label} size) on {}. Every engine ran in its own process, in\n\
         rotating order, {}; each figure is from the median run by throughput. Ratios are\n\
         NanoDB's throughput over the peer's: above 1.0 NanoDB is faster. The machine is shared and\n\
         noisy: read ratios, not absolute numbers.\n",
        today(),
        if repeats == 1 { "once (one repeat: no median)".to_string() } else { format!("{repeats} times") }
    );
    let _ = writeln!(md, "- Machine: {}", machine());
    let _ = writeln!(md, "- Command: `{command}`");
    let live_mib = first.live_bytes as f64 / (1u64 << 20) as f64;
    let _ = writeln!(
        md,
        "- Data: {} keys loaded by the fills ({live_mib:.0} MiB of keys and values); reads, overwrites, YCSB and deletes run {} operations each; durable workloads {} synced puts each.\n",
        records.iter().find(|r| r.workload == "fillrandom").map_or(0, |r| r.ops),
        records.iter().find(|r| r.workload == "readrandom").map_or(0, |r| r.ops),
        records.iter().find(|r| r.workload.starts_with("durable")).map_or(0, |r| r.ops),
    );
    let _ = writeln!(
        md,
        "Engine settings (same cache budget, same durability level, compression off for all):\n"
    );
    for engine in &engines {
        if let Some(record) = records.iter().find(|r| r.engine == *engine) {
            let _ = writeln!(md, "- **{engine}**: {}", record.description);
        }
    }

    let _ = writeln!(md, "\n## Summary: throughput (ops/s) and NanoDB's ratio to each peer\n");
    let _ = write!(md, "| workload |");
    for engine in &engines {
        let _ = write!(md, " {engine} |");
    }
    for engine in engines.iter().skip(1) {
        let _ = write!(md, " vs {engine} |");
    }
    let _ = write!(md, "\n| --- |");
    for _ in 0..(2 * engines.len() - 1) {
        let _ = write!(md, " ---: |");
    }
    let _ = writeln!(md);
    for workload in &workloads {
        let _ = write!(md, "| [{workload}](benchmarks/{workload}.svg) |");
        let ops = |engine: &str| medians.get(&(*workload, engine)).map(|r| r.ops_per_sec);
        throughput_cells(&mut md, &engines, ops, human);
    }

    if !failures.is_empty() {
        let _ = writeln!(
            md,
            "\n## Runs that did not finish\n\nA worker that fails leaves its remaining workloads without figures (n/a above when no repeat finished them):\n"
        );
        for failure in failures {
            let after = failure
                .after_workload
                .as_deref()
                .map_or("before its first workload finished".into(), |w| format!("after `{w}`"));
            let _ = writeln!(
                md,
                "- **{}**, repeat {}, {after}: {}",
                failure.engine, failure.repeat, failure.reason
            );
        }
    }

    let _ = writeln!(md, "\n## Per workload\n");
    let _ = writeln!(
        md,
        "Latencies are per operation (readseq and readreverse time one whole scan, so they have none).\n\
         Space amplification is bytes on disk after the workload over the live keys and values; write\n\
         amplification is bytes the process wrote to storage during the workload (/proc/self/io) over\n\
         the key and value bytes it asked to write. Peak RSS is the process's during that workload.\n"
    );
    for workload in &workloads {
        let _ = writeln!(md, "### {workload}\n\n![{workload}](benchmarks/{workload}.svg)\n");
        let _ = writeln!(md, "| engine | ops/s | NanoDB ratio | p50 us | p99 us | p99.9 us | disk MiB | space amp | write amp | peak RSS MiB |");
        let _ =
            writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        let ours = medians.get(&(*workload, "nanodb")).map(|r| r.ops_per_sec);
        for engine in &engines {
            let Some(r) = medians.get(&(*workload, *engine)) else { continue };
            let ratio = ours
                .filter(|_| *engine != "nanodb")
                .map_or("".into(), |a| format!("{:.2}", a / r.ops_per_sec.max(1e-9)));
            let space = if r.live_bytes > 0 {
                format!("{:.2}", r.disk_bytes as f64 / r.live_bytes as f64)
            } else {
                "".into()
            };
            let write_amp = if r.logical_bytes_written > 0 {
                format!("{:.2}", r.storage_bytes_written as f64 / r.logical_bytes_written as f64)
            } else {
                "".into()
            };
            let _ = writeln!(
                md,
                "| {engine} | {} | {ratio} | {:.1} | {:.1} | {:.1} | {:.1} | {space} | {write_amp} | {:.0} |",
                human(r.ops_per_sec),
                r.p50_us,
                r.p99_us,
                r.p999_us,
                r.disk_bytes as f64 / (1u64 << 20) as f64,
                r.peak_rss_bytes as f64 / (1u64 << 20) as f64,
            );
        }
        let _ = writeln!(md);
    }

    if !write_docs {
        println!("{md}");
        return Ok(());
    }
    std::fs::create_dir_all(CHART_DIR).map_err(|e| e.to_string())?;
    for workload in &workloads {
        let bars: Vec<(&str, f64)> = engines
            .iter()
            .filter_map(|e| medians.get(&(*workload, *e)).map(|r| (*e, r.ops_per_sec)))
            .collect();
        let svg = bar_chart(workload, &bars);
        let path = Path::new(CHART_DIR).join(format!("{workload}.svg"));
        std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let kept = std::fs::read_to_string(DOC_PATH)
        .ok()
        .and_then(|old| old.find(HAND_WRITTEN_MARKER).map(|at| old[at..].to_string()))
        .unwrap_or_else(|| format!("{HAND_WRITTEN_MARKER}\n"));
    md.push_str(&kept);
    std::fs::write(DOC_PATH, md).map_err(|e| format!("{DOC_PATH}: {e}"))?;
    eprintln!("nanodb-bench: wrote {DOC_PATH} and {} charts in {CHART_DIR}/", workloads.len());
    Ok(())
}

fn today() -> String {
    std::process::Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// A horizontal bar chart of throughput per engine, as a standalone SVG.
fn bar_chart(workload: &str, bars: &[(&str, f64)]) -> String {
    let (width, bar_height, left, top) = (640.0, 26.0, 90.0, 40.0);
    let height = top + bars.len() as f64 * (bar_height + 8.0) + 20.0;
    let max = bars.iter().map(|(_, v)| *v).fold(1.0, f64::max);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"24\" font-size=\"15\" font-weight=\"bold\">{workload}: operations per second (median)</text>\n"
    );
    for (index, (engine, value)) in bars.iter().enumerate() {
        let y = top + index as f64 * (bar_height + 8.0);
        let bar = (width - left - 110.0) * value / max;
        let color = if *engine == "nanodb" { "#d9480f" } else { "#4263eb" };
        let _ = writeln!(
            svg,
            "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{engine}</text>\n\
             <rect x=\"{left}\" y=\"{y:.0}\" width=\"{bar:.1}\" height=\"{bar_height}\" fill=\"{color}\"/>\n\
             <text x=\"{:.1}\" y=\"{:.0}\">{}</text>",
            left - 8.0,
            y + 18.0,
            left + bar + 6.0,
            y + 18.0,
            human(*value)
        );
    }
    svg.push_str("</svg>\n");
    svg
}
