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
        .args(["docs", "--docs", "1500", "--repeats", "2", "--queries", "5", "--engines"])
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
    // Eight workloads per engine and repeat, less query-indexed for PoloDB.
    let expected = 2 * (8 * engines.len() - usize::from(engines.contains(&"polodb")));
    assert_eq!(lines.lines().count(), expected, "{lines}");
    let again = Command::new(env!("CARGO_BIN_EXE_nanodb-bench"))
        .arg("docs-report")
        .arg(&results)
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("| get | lookups/s |"));
    let bad = Command::new(env!("CARGO_BIN_EXE_nanodb-bench"))
        .args(["docs", "--docs", "0"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
