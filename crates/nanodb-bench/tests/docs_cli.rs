//! Runs `nanodb-bench docs` end to end at a tiny size: a worker process per engine, the
//! results file, and the report on stdout.

use std::process::Command;

#[test]
fn docs_command_runs_workers_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    let mut engines = vec!["nanodb"];
    if cfg!(feature = "sqlite") {
        engines.push("sqlite");
    }
    if cfg!(feature = "polodb") {
        engines.push("polodb");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_nanodb-bench"))
        .args(["docs", "--docs", "1500", "--repeats", "2", "--queries", "5", "--get-threads", "2"])
        .arg("--engines")
        .arg(engines.join(","))
        .arg("--dir")
        .arg(dir.path().join("work"))
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("| insert-batch | docs/s |"), "{stdout}");
    assert!(stdout.contains("| scan | nanodb | 1500 | 1500 |"), "{stdout}");
    for engine in &engines[1..] {
        assert!(stdout.contains(&format!("nanodb / {engine}")), "{stdout}");
    }
    let lines = std::fs::read_to_string(&results).unwrap();
    // Nine workloads per engine and repeat, less query-indexed and get-parallel for PoloDB.
    let expected = 2 * (9 * engines.len() - 2 * usize::from(engines.contains(&"polodb")));
    assert_eq!(lines.lines().count(), expected, "{lines}");
    let again = Command::new(env!("CARGO_BIN_EXE_nanodb-bench"))
        .arg("docs-report")
        .arg(&results)
        .output()
        .unwrap();
    assert!(again.status.success());
    let report = String::from_utf8_lossy(&again.stdout);
    assert!(report.contains("| get | lookups/s |"), "{report}");
    assert!(report.contains("| get-parallel | lookups/s |"), "{report}");
    let bad = Command::new(env!("CARGO_BIN_EXE_nanodb-bench"))
        .args(["docs", "--docs", "0"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
