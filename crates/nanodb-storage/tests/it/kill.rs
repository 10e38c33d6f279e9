//! Real process crashes: a child process writes with `sync = true` and reports every write it
//! begins and every write acknowledged; the parent kills it with SIGKILL at a random moment,
//! reopens the directory and checks that every acknowledged write is there. The directory is
//! never reset between rounds, so later rounds recover from earlier crashes too.
//!
//! SIGKILL keeps the kernel's page cache, so this proves process-crash safety end to end on
//! the real filesystem, not power-loss safety (the `crash` module's SimFs tests cover that).
//!
//! The child is this same test binary, re-run on the ignored test `kill::child_process`.

use crate::common::{base_seed, scale, with_seed, Rng};
use nanodb_storage::{Db, Error, Options, WriteBatch, WriteOptions};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CHILD_DIR_ENV: &str = "NANODB_KILL_CHILD_DIR";
const CHILD_MODE_ENV: &str = "NANODB_KILL_CHILD_MODE";
const CHILD_SEED_ENV: &str = "NANODB_KILL_CHILD_SEED";
const WRITER_THREADS: u64 = 4;
const HOT_KEYS: u64 = 16;
/// Rounds in the default run (at least 50, as CI requires); multiplied by NANODB_TEST_SCALE.
const ROUNDS: u64 = 50;

fn child_options() -> Options {
    // A small memtable so flushes and WAL rotations happen during the run.
    Options { memtable_size_bytes_max: 64 * 1024, ..Default::default() }
}

fn spawn_child(dir: &Path, mode: &str, seed: u64) -> Child {
    let exe = std::env::current_exe().expect("test binary path");
    Command::new(exe)
        .args(["kill::child_process", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_MODE_ENV, mode)
        .env(CHILD_SEED_ENV, seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child test process")
}

/// The child's body: only runs when re-executed by the parent with the environment set.
#[test]
#[ignore = "run as a child process by the kill tests"]
fn child_process() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else { return };
    let mode = std::env::var(CHILD_MODE_ENV).unwrap_or_default();
    let seed: u64 = std::env::var(CHILD_SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let db = Db::open(&dir, child_options()).expect("child open");
    // libtest has printed "test kill::child_process ... " without a newline: start a line.
    println!("\nOPEN");
    if mode == "hold" {
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let threads: Vec<_> = (0..WRITER_THREADS)
        .map(|thread| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed ^ (thread + 1));
                for op in 0u64.. {
                    let id = format!("{seed}-{thread}-{op}");
                    let hot = format!("hot{:02}", rng.below(HOT_KEYS));
                    let unique = format!("u-{id}");
                    let mut batch = WriteBatch::new();
                    batch.put(&unique, id.as_bytes()).put(&hot, id.as_bytes());
                    // Begin, then acknowledge: the parent knows which writes may be in flight.
                    println!("B {hot} {id}");
                    db.write(batch, WriteOptions::SYNC).expect("child write");
                    println!("A {hot} {id}");
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}

/// One write to a hot key, by the output-line positions of its begin and acknowledgement.
struct HotWrite {
    id: String,
    begun_at: usize,
    acked_at: Option<usize>,
}

/// What the parent learned from one child's output.
#[derive(Default)]
struct Ledger {
    /// Every acknowledged write id (each also wrote its own unique key).
    acknowledged: Vec<String>,
    /// For each hot key, the writes to it. Concurrent writers can commit in another order
    /// than they print, so only line positions that force an order are used.
    hot_writes: HashMap<String, Vec<HotWrite>>,
}

impl Ledger {
    fn record(&mut self, position: usize, line: &str) {
        let mut parts = line.split(' ');
        let (Some(kind), Some(hot), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return;
        };
        let writes = self.hot_writes.entry(hot.to_string()).or_default();
        match kind {
            "B" => writes.push(HotWrite { id: id.to_string(), begun_at: position, acked_at: None }),
            "A" => {
                self.acknowledged.push(id.to_string());
                if let Some(write) = writes.iter_mut().find(|write| write.id == id) {
                    write.acked_at = Some(position);
                }
            }
            _ => {}
        }
    }

    /// Checks a hot key's recovered value: it must come from a write to that key (or from an
    /// earlier round if none was acknowledged in this one), and no acknowledged write may
    /// have begun after the write that left the value was acknowledged: that one is newer
    /// and must have won.
    fn check_hot(&self, round: u64, hot: &str, value: Option<Vec<u8>>) {
        let writes = &self.hot_writes[hot];
        let any_acked = writes.iter().any(|write| write.acked_at.is_some());
        let Some(value) = value else {
            assert!(!any_acked, "round {round}: {hot} lost its acknowledged value");
            return;
        };
        let value = String::from_utf8(value).unwrap();
        let Some(winner) = writes.iter().find(|write| write.id == value) else {
            assert!(!any_acked, "round {round}: {hot} = {value}, not written this round");
            return;
        };
        if let Some(winner_acked_at) = winner.acked_at {
            let newer = writes
                .iter()
                .find(|write| write.acked_at.is_some() && write.begun_at > winner_acked_at);
            assert!(
                newer.is_none(),
                "round {round}: {hot} = {value}, but a newer acknowledged write was lost"
            );
        }
    }
}

fn run_round(dir: &Path, rng: &mut Rng, round: u64, totals: &mut HashMap<&'static str, u64>) {
    let mut child = spawn_child(dir, "write", rng.next_u64() >> 8);
    let stdout = child.stdout.take().expect("child stdout");
    let (sender, receiver) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    // Mostly mid-run kills; sometimes very early, while the child is still opening.
    let delay_ms = if rng.chance(10) { rng.below(15) } else { 20 + rng.below(250) };
    std::thread::sleep(Duration::from_millis(delay_ms));
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    reader.join().expect("reader thread");
    let mut ledger = Ledger::default();
    let mut opened = false;
    for (position, line) in receiver.try_iter().enumerate() {
        opened |= line == "OPEN";
        ledger.record(position, &line);
    }

    let started = Instant::now();
    let db = Db::open(dir, child_options())
        .unwrap_or_else(|error| panic!("round {round}: reopen failed: {error}"));
    let recovery_ms = started.elapsed().as_millis() as u64;
    db.verify().unwrap_or_else(|error| panic!("round {round}: verify failed: {error}"));
    for id in &ledger.acknowledged {
        let value = db.get(format!("u-{id}")).unwrap();
        assert_eq!(
            value.as_deref(),
            Some(id.as_bytes()),
            "round {round}: acknowledged write {id} lost"
        );
    }
    for hot in ledger.hot_writes.keys() {
        ledger.check_hot(round, hot, db.get(hot).unwrap());
    }
    db.close().unwrap();
    *totals.entry("rounds").or_default() += 1;
    *totals.entry("kills_before_open_done").or_default() += u64::from(!opened);
    *totals.entry("acknowledged_writes_verified").or_default() += ledger.acknowledged.len() as u64;
    let slowest = totals.entry("recovery_ms_max").or_default();
    *slowest = (*slowest).max(recovery_ms);
}

#[test]
fn sigkill_loses_no_acknowledged_write() {
    let seed = base_seed();
    with_seed("kill::sigkill_loses_no_acknowledged_write", seed, |seed| {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng::new(seed);
        let mut totals = HashMap::new();
        for round in 0..ROUNDS * scale() {
            run_round(dir.path(), &mut rng, round, &mut totals);
        }
        println!(
            "sigkill: rounds={} kills_before_open_done={} acknowledged_writes_verified={} acknowledged_writes_lost=0 recovery_ms_max={}",
            totals["rounds"], totals["kills_before_open_done"], totals["acknowledged_writes_verified"], totals["recovery_ms_max"]
        );
        assert!(totals["acknowledged_writes_verified"] > 0, "no child ever acknowledged a write");
    });
}

#[test]
fn a_database_open_in_another_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_child(dir.path(), "hold", 0);
    let stdout = child.stdout.take().expect("child stdout");
    let opened = BufReader::new(stdout).lines().map_while(Result::ok).any(|line| line == "OPEN");
    assert!(opened, "child never opened the database");
    let error = Db::open(dir.path(), Options::default()).unwrap_err();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(matches!(error, Error::Locked { .. }), "{error}");
    // The lock dies with the process.
    Db::open(dir.path(), Options::default()).unwrap().close().unwrap();
}
