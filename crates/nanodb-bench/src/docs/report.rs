//! Results of the document workloads: the line a worker prints per workload (`DocRecord`), the
//! results file, and the markdown tables printed at the end of a run.
//!
//! For every (workload, engine) the median run by throughput is kept, and every figure of that
//! row comes from that run. Ratios are nanodb's median throughput over the peer's: above 1.0
//! nanodb is faster.
//!
//! Thread safety: plain data and pure functions.

use super::workload::WORKLOADS;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// One measured workload of one engine in one repeat: a line of the results file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DocRecord {
    pub engine: String,
    pub workload: String,
    pub repeat: u32,
    /// What the throughput counts: documents (inserts, scan) or calls (the rest).
    pub ops: u64,
    /// Documents read, written or returned.
    pub items: u64,
    pub seconds: f64,
    pub ops_per_sec: f64,
    pub items_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Size of the engine's directory after the workload.
    pub disk_bytes: u64,
    pub peak_rss_bytes: u64,
    pub description: String,
}

/// A line of a results file: a record, or a worker that failed (and why).
pub type Line = crate::report::Line<DocRecord, String>;

/// What each workload's throughput counts, for the table.
fn unit(workload: &str) -> &'static str {
    match workload {
        "insert-one" | "insert-batch" | "scan" => "docs/s",
        "get" | "get-parallel" => "lookups/s",
        "query-indexed" | "query-unindexed" => "queries/s",
        _ => "ops/s",
    }
}

/// Reads a results file back.
pub fn read(path: &Path) -> Result<(Vec<DocRecord>, Vec<String>), String> {
    crate::report::read_results(path)
}

fn human(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else if value >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// The markdown report of `records`: throughput and ratios, then latencies and sizes.
pub fn render(records: &[DocRecord], failures: &[String], command: &str) -> String {
    let mut runs: BTreeMap<(&str, &str), Vec<&DocRecord>> = BTreeMap::new();
    for record in records {
        runs.entry((record.workload.as_str(), record.engine.as_str())).or_default().push(record);
    }
    let medians: BTreeMap<(&str, &str), &DocRecord> = runs
        .into_iter()
        .map(|(key, mut list)| {
            list.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
            (key, list[list.len() / 2])
        })
        .collect();
    let mut engines: Vec<&str> = Vec::new();
    for record in records {
        if !engines.contains(&record.engine.as_str()) {
            engines.push(&record.engine);
        }
    }
    // nanodb first, then the peers in the order `engine::available` lists them.
    let known = super::engine::available();
    engines
        .sort_by_key(|name| (known.iter().position(|k| k == name).unwrap_or(known.len()), *name));
    let repeats = records.iter().map(|r| r.repeat).max().map_or(0, |r| r + 1);
    let mut md = String::new();
    let _ = writeln!(md, "Command: `{command}`; {repeats} repeat(s), median run by throughput.\n");
    let _ = writeln!(md, "Machine: {}\n", crate::report::machine());
    let _ = write!(md, "| workload | unit |");
    for engine in &engines {
        let _ = write!(md, " {engine} |");
    }
    for engine in engines.iter().skip(1) {
        let _ = write!(md, " nanodb / {engine} |");
    }
    let _ = writeln!(md, "\n|---|---|{}", "---:|".repeat(2 * engines.len() - 1));
    for workload in WORKLOADS {
        if !engines.iter().any(|e| medians.contains_key(&(*workload, *e))) {
            continue;
        }
        let _ = write!(md, "| {workload} | {} |", unit(workload));
        let ops = |engine: &str| medians.get(&(*workload, engine)).map(|r| r.ops_per_sec);
        crate::report::throughput_cells(&mut md, &engines, ops, human);
    }
    let _ = writeln!(
        md,
        "\n| workload | engine | ops | docs | seconds | docs/s | p50 us | p99 us | disk MiB | peak RSS MiB |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for workload in WORKLOADS {
        for engine in &engines {
            let Some(r) = medians.get(&(*workload, *engine)) else { continue };
            let _ = writeln!(
                md,
                "| {workload} | {engine} | {} | {} | {:.2} | {} | {:.1} | {:.1} | {:.0} | {:.0} |",
                r.ops,
                r.items,
                r.seconds,
                human(r.items_per_sec),
                r.p50_us,
                r.p99_us,
                r.disk_bytes as f64 / (1u64 << 20) as f64,
                r.peak_rss_bytes as f64 / (1u64 << 20) as f64
            );
        }
    }
    let _ = writeln!(md, "\nEngines:\n");
    for engine in &engines {
        if let Some(record) = records.iter().find(|r| r.engine == *engine) {
            let _ = writeln!(md, "- **{engine}**: {}", record.description);
        }
    }
    for failure in failures {
        let _ = writeln!(md, "- failed run: {failure}");
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(engine: &str, repeat: u32, ops_per_sec: f64) -> DocRecord {
        DocRecord {
            engine: engine.into(),
            workload: "get".into(),
            repeat,
            ops: 10,
            items: 10,
            seconds: 1.0,
            ops_per_sec,
            items_per_sec: ops_per_sec,
            p50_us: 1.0,
            p99_us: 2.0,
            disk_bytes: 0,
            peak_rss_bytes: 0,
            description: format!("{engine} settings"),
        }
    }

    #[test]
    fn report_takes_medians_and_ratios_and_files_round_trip() {
        let records = vec![
            record("sqlite", 0, 100.0),
            record("nanodb", 0, 300.0),
            record("nanodb", 1, 500.0),
            record("nanodb", 2, 200.0),
        ];
        let md = render(&records, &["polodb repeat 0: killed".into()], "nanodb-bench docs");
        assert!(md.contains("| get | lookups/s | 300 | 100 | 3.00 |"), "{md}");
        assert!(md.contains("failed run: polodb repeat 0"), "{md}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docs.jsonl");
        let failure = serde_json::to_string(&Line::Failure { failure: "x".into() }).unwrap();
        let text = format!("{}\n\n{failure}\n", serde_json::to_string(&records[0]).unwrap());
        std::fs::write(&path, text).unwrap();
        let (back, failures) = read(&path).unwrap();
        assert_eq!((back, failures), (vec![records[0].clone()], vec!["x".to_string()]));
    }
}
