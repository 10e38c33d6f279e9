//! Crash tests on `SimFs`: power loss at every I/O call, power loss during recovery, and
//! injected I/O errors (fsyncgate).
//!
//! What it proves: wherever the power is cut during a workload of synced and unsynced puts,
//! deletes and batches that crosses memtable flushes, WAL rotations, manifest edits, explicit
//! flushes and a close/reopen, and whatever a power loss leaves behind (only synced data, a torn
//! or zero-filled unsynced tail, or the whole page cache), the database opens, passes `verify`,
//! holds exactly the state after some prefix of the issued operations (so batches are
//! all-or-nothing and nothing is reordered), keeps every write acknowledged as durable (a synced
//! write, or any write before a successful `flush` or `close`; with `KeepAll`, every
//! acknowledged write), continues the seqno sequence, and keeps working after more writes and
//! another reopen. A second power loss during that recovery changes nothing. An injected
//! write, sync, create, rename or directory-sync failure is reported to the caller, poisons the
//! database (every later write is `Error::Poisoned`, reads still work and see no failed write),
//! and after a power loss the same durability and prefix rules hold.

use crate::common::{base_seed, scale, with_seed, Rng};
use nanodb_storage::fs::{CrashMode, FaultKind, SimFs};
use nanodb_storage::{Db, Error, Options, WriteBatch, WriteOptions, MEMTABLE_SIZE_BYTES_MAX_MIN};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

const PATH: &str = "/db";

#[derive(Debug, Clone)]
enum Op {
    /// Opens the database (always the first op).
    Open,
    Put(Vec<u8>, Vec<u8>, bool),
    Delete(Vec<u8>, bool),
    /// `(key, Some(value))` puts, `(key, None)` deletes; applied atomically.
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>, bool),
    Flush,
    /// `close()` then `open()`.
    Reopen,
}

struct Workload {
    ops: Vec<Op>,
    /// `states[k]`: the model after the first `k` ops.
    states: Vec<Model>,
    /// `seqnos[k]`: the last seqno after the first `k` ops.
    seqnos: Vec<u64>,
    /// `Options::background_threads` for the run (recovery checks always flush inline).
    background_threads: usize,
}

fn keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = vec![Vec::new(), vec![0xff], vec![0x00, 0xff]];
    keys.extend((0..29).map(|i| format!("key{i:02}").into_bytes()));
    keys
}

fn workload(seed: u64, len: usize, background_threads: usize) -> Workload {
    let mut rng = Rng::new(seed);
    let keys = keys();
    let key = |rng: &mut Rng| keys[rng.below(keys.len() as u64) as usize].clone();
    let value = |rng: &mut Rng| {
        let len = if rng.chance(3) { 1500 + rng.below(1000) } else { rng.below(300) };
        rng.bytes(len as usize)
    };
    let specials = [
        5 + rng.below(len as u64 / 2),
        len as u64 / 2 + rng.below(len as u64 / 3),
        rng.below(len as u64),
    ];
    let mut ops = vec![Op::Open];
    for i in 0..len as u64 {
        ops.push(match i {
            _ if i == specials[0] || i == specials[2] => Op::Flush,
            _ if i == specials[1] => Op::Reopen,
            _ => {
                let sync = rng.chance(25);
                match rng.below(10) {
                    0..=4 => Op::Put(key(&mut rng), value(&mut rng), sync),
                    5 | 6 => Op::Delete(key(&mut rng), sync),
                    _ => {
                        let count = 1 + rng.below(8);
                        let batch = (0..count).map(|_| {
                            let k = key(&mut rng);
                            (k, rng.chance(70).then(|| value(&mut rng)))
                        });
                        Op::Batch(batch.collect(), sync)
                    }
                }
            }
        });
    }
    let (mut states, mut seqnos) = (vec![Model::new()], vec![0]);
    for op in &ops {
        let (mut state, mut seqno) = (states[states.len() - 1].clone(), seqnos[seqnos.len() - 1]);
        let mut apply = |key: &Vec<u8>, value: &Option<Vec<u8>>| {
            match value {
                Some(value) => state.insert(key.clone(), value.clone()),
                None => state.remove(key),
            };
            seqno += 1;
        };
        match op {
            Op::Put(key, value, _) => apply(key, &Some(value.clone())),
            Op::Delete(key, _) => apply(key, &None),
            Op::Batch(batch, _) => batch.iter().for_each(|(key, value)| apply(key, value)),
            Op::Open | Op::Flush | Op::Reopen => {}
        }
        states.push(state);
        seqnos.push(seqno);
    }
    Workload { ops, states, seqnos, background_threads }
}

fn options(fs: &SimFs) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        memtable_size_bytes_max: MEMTABLE_SIZE_BYTES_MAX_MIN,
        block_size_bytes: 256,
        background_threads: 0,
        ..Default::default()
    }
}

fn workload_options(fs: &SimFs, workload: &Workload) -> Options {
    Options { background_threads: workload.background_threads, ..options(fs) }
}

fn write_options(sync: bool) -> WriteOptions {
    WriteOptions { sync }
}

/// What a run of a workload did before its first error.
#[derive(Default)]
struct Outcome {
    /// Ops issued: those that returned `Ok`, and the one that failed.
    issued: usize,
    /// Ops that returned `Ok` (a prefix of the workload).
    acked: usize,
    /// Every op before this one must survive any crash: the last synced write, flush or
    /// close that returned `Ok`.
    durable: usize,
    /// The first error, and the op that returned it.
    error: Option<(usize, Error)>,
    /// The first op during which an injected fault fired.
    fault_at: Option<usize>,
    db: Option<Db>,
}

fn run(workload: &Workload, fs: &SimFs) -> Outcome {
    let mut out = Outcome::default();
    for (index, op) in workload.ops.iter().enumerate() {
        out.issued = index + 1;
        let db = out.db.as_ref();
        let result = match (op, db) {
            (Op::Open, _) => {
                Db::open(PATH, workload_options(fs, workload)).map(|db| out.db = Some(db))
            }
            (Op::Put(key, value, sync), Some(db)) => db.put(key, value, write_options(*sync)),
            (Op::Delete(key, sync), Some(db)) => db.delete(key, write_options(*sync)),
            (Op::Batch(ops, sync), Some(db)) => {
                let mut batch = WriteBatch::new();
                for (key, value) in ops {
                    match value {
                        Some(value) => batch.put(key, value),
                        None => batch.delete(key),
                    };
                }
                db.write(batch, write_options(*sync))
            }
            (Op::Flush, Some(db)) => db.flush(),
            (Op::Reopen, Some(_)) => {
                let closed = out.db.take().map_or(Ok(()), Db::close);
                // A successful close syncs the WAL: everything before it is durable.
                if closed.is_ok() {
                    out.durable = index;
                }
                let open = || Db::open(PATH, workload_options(fs, workload));
                closed.and_then(|()| open()).map(|db| out.db = Some(db))
            }
            (_, None) => unreachable!("the workload starts with Open"),
        };
        if out.fault_at.is_none() && fs.injected_fault_count() > 0 {
            out.fault_at = Some(index);
        }
        match result {
            Ok(()) => {
                out.acked = index + 1;
                let barrier = match op {
                    Op::Put(_, _, sync) | Op::Delete(_, sync) | Op::Batch(_, sync) => *sync,
                    Op::Flush | Op::Reopen => true,
                    Op::Open => false,
                };
                if barrier {
                    out.durable = index + 1;
                }
            }
            Err(error) => {
                out.error = Some((index, error));
                break;
            }
        }
    }
    out
}

fn scan(db: &Db) -> nanodb_storage::Result<Model> {
    db.iter()?.collect()
}

/// Every failure class; each count must be 0.
const CLASSES: &str = "acked_synced_lost prefix_violations open_failures verify_failures \
    seqno_mismatches after_recovery_failures double_crash_diverged fault_not_reported \
    not_poisoned reads_wrong_after_failure";

/// Failures by class, with one example of each distinct problem.
#[derive(Default)]
struct Tally {
    /// Recovered databases checked, and how many of them after a crash during recovery.
    states: u64,
    double_crash_states: u64,
    /// Power-loss recoveries that lost acknowledged unsynced writes (allowed; shows the
    /// crash modes really drop data).
    short_of_acked: u64,
    counts: BTreeMap<&'static str, u64>,
    /// Distinct problems (digits ignored): how many times, and the first occurrence.
    details: BTreeMap<String, (u64, String)>,
}

impl Tally {
    fn fail(&mut self, class: &'static str, what: &str, problem: String) {
        assert!(CLASSES.split(' ').any(|known| known == class), "unknown class {class}");
        *self.counts.entry(class).or_default() += 1;
        let key: String =
            problem.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
        let entry = self.details.entry(key).or_insert((0, format!("{what}: {problem}")));
        entry.0 += 1;
    }

    fn summary(&self) -> String {
        let mut text =
            format!("states={} double_crash_states={}", self.states, self.double_crash_states);
        for class in CLASSES.split(' ') {
            let _ = write!(text, " {class}={}", self.counts.get(class).unwrap_or(&0));
        }
        let _ = write!(text, " recovered_short_of_acked={}", self.short_of_acked);
        text
    }

    fn assert_clean(&self, name: &str) {
        let mut text = String::new();
        for (count, example) in self.details.values().take(12) {
            let _ = writeln!(text, "  {count} x {example}");
        }
        assert!(
            self.counts.values().all(|&count| count == 0),
            "{name}: {}\n{text}",
            self.summary()
        );
    }
}

/// Opens the database on a crash image and checks it: opens, verifies, holds the state after
/// a prefix `k` of the ops with `floor <= k <= issued` and the matching seqno, and takes more
/// writes and a reopen. Returns the recovered state.
fn recover(
    workload: &Workload,
    image: &SimFs,
    floor: usize,
    issued: usize,
    tally: &mut Tally,
    what: &str,
) -> Option<Model> {
    tally.states += 1;
    let db = match Db::open(PATH, options(image)) {
        Ok(db) => db,
        Err(error) => {
            tally.fail("open_failures", what, format!("open failed: {error}"));
            return None;
        }
    };
    let state = match db.verify().and_then(|_| scan(&db)) {
        Ok(state) => state,
        Err(error) => {
            tally.fail("verify_failures", what, format!("verify or scan: {error}"));
            return None;
        }
    };
    let seqno = db.stats().seqno_last;
    let matches: Vec<usize> = (0..=issued).rev().filter(|&k| workload.states[k] == state).collect();
    let describe = format!("floor {floor}, issued {issued}, prefixes matching {matches:?}");
    if matches.is_empty() {
        tally.fail("prefix_violations", what, format!("{describe}: no prefix matches"));
    } else if matches[0] < floor {
        tally.fail("acked_synced_lost", what, format!("{describe}: durable writes lost"));
    } else if !matches.iter().any(|&k| k >= floor && workload.seqnos[k] == seqno) {
        let seqnos: Vec<u64> = matches.iter().map(|&k| workload.seqnos[k]).collect();
        let problem = format!("{describe}: seqno {seqno}, prefix seqnos {seqnos:?}");
        tally.fail("seqno_mismatches", what, problem);
    }
    // The recovered database must keep working: more writes, shadowing recovered keys, then
    // a clean reopen.
    let mut expected = state.clone();
    let result = (|| {
        db.put(b"key00", b"after recovery", WriteOptions::SYNC)?;
        db.delete(b"key01", WriteOptions::NO_SYNC)?;
        let mut batch = WriteBatch::new();
        batch.put(b"", b"empty key").delete(b"key02");
        db.write(batch, WriteOptions::NO_SYNC)?;
        db.close()?;
        let db = Db::open(PATH, options(image))?;
        db.verify()?;
        let after = scan(&db)?;
        let seqno_after = db.stats().seqno_last;
        db.close()?;
        Ok::<_, Error>((after, seqno_after))
    })();
    expected.insert(b"key00".to_vec(), b"after recovery".to_vec());
    expected.remove(&b"key01"[..]);
    expected.insert(Vec::new(), b"empty key".to_vec());
    expected.remove(&b"key02"[..]);
    match result {
        Ok((after, seqno_after)) if after == expected && seqno_after == seqno + 4 => {}
        Ok((_, seqno_after)) => {
            let problem = format!("wrong state after more writes (seqno {seqno_after})");
            tally.fail("after_recovery_failures", what, problem);
        }
        Err(error) => {
            let problem = format!("more writes and reopen failed: {error}");
            tally.fail("after_recovery_failures", what, problem);
        }
    }
    Some(state)
}

fn modes(seed: u64) -> [CrashMode; 5] {
    [
        CrashMode::DropUnsynced,
        CrashMode::TornUnsynced { seed },
        CrashMode::TornUnsynced { seed: seed ^ 0x5555 },
        CrashMode::ZeroedTail { seed },
        CrashMode::KeepAll,
    ]
}

/// Crashes during the recovery of `dead`'s image in `mode` at every recovery I/O call, then
/// recovers again; the result must be what an uninterrupted recovery gives.
fn double_crash(
    workload: &Workload,
    dead: &SimFs,
    mode: CrashMode,
    floor: usize,
    issued: usize,
    tally: &mut Tally,
    what: &str,
) {
    let probe = dead.crash_image(mode);
    let Some(first) = Db::open(PATH, options(&probe)).ok().and_then(|db| scan(&db).ok()) else {
        return; // `recover` has already reported it
    };
    let recovery_ops = probe.op_count();
    for crash_at in 0..recovery_ops {
        let image = dead.crash_image(mode);
        image.crash_after_ops(crash_at);
        drop(Db::open(PATH, options(&image)));
        for second in [CrashMode::DropUnsynced, CrashMode::TornUnsynced { seed: crash_at }] {
            let what = format!("{what}, then crash at recovery op {crash_at} in {second:?}");
            let again = image.crash_image(second);
            tally.double_crash_states += 1;
            let state = recover(workload, &again, floor, issued, tally, &what);
            if state.is_some_and(|state| state != first) {
                let problem = "differs from the uninterrupted recovery".to_string();
                tally.fail("double_crash_diverged", &what, problem);
            }
        }
    }
}

/// Runs `workload`, cutting the power at every `stride`-th I/O call, and recovers from each
/// crash in every mode; every `double_every`-th crash point (0: none) also crashes again
/// during recovery.
fn explore_crash_points(
    workload: &Workload,
    seed: u64,
    stride: u64,
    double_every: u64,
    tally: &mut Tally,
) {
    let clean = SimFs::new();
    let outcome = run(workload, &clean);
    if let Some((index, error)) = &outcome.error {
        panic!("the workload failed without a crash at op {index}: {error}");
    }
    drop(outcome.db);
    let (total_ops, started) = (clean.op_count(), Instant::now());
    let (mut crash_points, mut double_points) = (0, 0);
    for crash_at in (0..total_ops).step_by(stride as usize) {
        crash_points += 1;
        let fs = SimFs::new();
        fs.crash_after_ops(crash_at);
        let outcome = run(workload, &fs);
        drop(outcome.db);
        for mode in modes(seed ^ crash_at) {
            let floor = if mode == CrashMode::KeepAll { outcome.acked } else { outcome.durable };
            let what = format!("seed {seed}, crash at op {crash_at} in {mode:?}");
            let image = fs.crash_image(mode);
            let state = recover(workload, &image, floor, outcome.issued, tally, &what);
            tally.short_of_acked +=
                u64::from(state.is_some_and(|state| state != workload.states[outcome.acked]));
        }
        if double_every > 0 && (crash_at / stride).is_multiple_of(double_every) {
            double_points += 1;
            let mode = modes(seed ^ crash_at)[(double_points % 4) as usize];
            let what = format!("seed {seed}, crash at op {crash_at} in {mode:?}");
            double_crash(workload, &fs, mode, outcome.durable, outcome.issued, tally, &what);
        }
    }
    println!(
        "crash workload seed={seed} ops={} background_threads={} io_calls={total_ops} \
         crash_points={crash_points} double_crash_points={double_points} in {:.1?}",
        workload.ops.len(),
        workload.background_threads,
        started.elapsed()
    );
}

/// Explores `workloads` workloads of `len` ops (seeds from the base seed, the first one the
/// base seed itself) and asserts that no failure was found.
fn crash_test(
    name: &str,
    workloads: u64,
    len: usize,
    background_threads: usize,
    stride: u64,
    double_every: u64,
) {
    let (base, started) = (base_seed(), Instant::now());
    let mut tally = Tally::default();
    for index in 0..workloads {
        let seed = base.wrapping_add(index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        with_seed(name, seed, |seed| {
            let workload = workload(seed, len, background_threads);
            explore_crash_points(&workload, seed, stride, double_every, &mut tally);
        });
    }
    println!("{name}: base_seed={base} modes=5 {} in {:.1?}", tally.summary(), started.elapsed());
    tally.assert_clean(name);
}

#[test]
fn power_loss_at_every_io_call() {
    crash_test("power_loss_at_every_io_call", 4 * scale(), 200, 0, 1, 4);
}

/// A longer workload (thousands of I/O calls), sampling the crash points.
#[test]
fn power_loss_sampled_on_a_long_workload() {
    crash_test("power_loss_sampled_on_a_long_workload", scale(), 1000, 0, 7, 16);
}

/// With a background flush thread the I/O order varies from run to run, so the crash points
/// are sampled; the checks do not depend on where exactly the power was cut.
#[test]
fn power_loss_with_background_flush() {
    crash_test("power_loss_with_background_flush", 4 * scale(), 200, 1, 3, 0);
}

/// Runs the workload with one injected fault of `kind` at the `n`-th matching call; returns
/// false once the fault no longer fires (the workload has fewer such calls).
fn fault_case(
    workload: &Workload,
    kind: FaultKind,
    n: u64,
    persistent: bool,
    tally: &mut Tally,
) -> bool {
    let fs = SimFs::new();
    fs.fail_after(kind, n, persistent);
    let outcome = run(workload, &fs);
    let what = format!("fault {kind:?} at call {n} (persistent {persistent})");
    let Some(fault_at) = outcome.fault_at else {
        return false;
    };
    let reported = outcome.error.as_ref().is_some_and(|(index, _)| *index == fault_at);
    // Only a failed file removal may be ignored (the next open removes the file); with
    // `AnyWrite` the fault may have hit one, and the recovery checks below still apply.
    if !reported && !matches!(kind, FaultKind::Remove | FaultKind::AnyWrite) {
        let problem = format!("fired during op {fault_at}, which returned Ok");
        tally.fail("fault_not_reported", &what, problem);
    }
    if let (Some((index, error)), Some(db)) = (&outcome.error, &outcome.db) {
        if matches!(error, Error::Poisoned { .. }) && *index == fault_at {
            tally.fail("fault_not_reported", &what, format!("first error is {error}"));
        }
        // Poisoned: no later write is accepted, even though the fault is gone.
        let attempts = [
            db.put(b"key03", b"x", WriteOptions::SYNC),
            db.delete(b"key04", WriteOptions::NO_SYNC),
            db.write(WriteBatch::new().put(b"key05", b"y").clone(), WriteOptions::SYNC),
            db.flush(),
        ];
        if !attempts.iter().all(|result| matches!(result, Err(Error::Poisoned { .. }))) {
            let problem = format!("after the error at op {index}: {attempts:?}");
            tally.fail("not_poisoned", &what, problem);
        }
        // Reads still work and see exactly the writes that succeeded.
        let reads = scan(db).ok().filter(|state| *state == workload.states[*index]);
        let gets = keys()
            .iter()
            .all(|key| db.get(key).ok() == Some(workload.states[*index].get(key).cloned()));
        if reads.is_none() || !gets {
            let problem = format!("reads after the error at op {index} are wrong");
            tally.fail("reads_wrong_after_failure", &what, problem);
        }
    }
    drop(outcome.db);
    // A restart keeps what the page cache holds; a power loss keeps what was made durable.
    let restart = fs.crash_image(CrashMode::KeepAll);
    let image = fs.crash_image(CrashMode::DropUnsynced);
    let (restarted, lost) = (format!("{what}, restart"), format!("{what}, power loss"));
    recover(workload, &restart, outcome.acked, outcome.issued, tally, &restarted);
    recover(workload, &image, outcome.durable, outcome.issued, tally, &lost);
    true
}

#[test]
fn injected_io_errors_poison_and_lose_nothing_acknowledged() {
    let (seed, started) = (base_seed(), Instant::now());
    let mut tally = Tally::default();
    let mut cases = 0;
    with_seed("injected_io_errors_poison_and_lose_nothing_acknowledged", seed, |seed| {
        let workload = workload(seed, 200 * scale() as usize, 0);
        let kinds = [
            FaultKind::Sync,
            FaultKind::Append,
            FaultKind::Create,
            FaultKind::Rename,
            FaultKind::SyncDir,
            FaultKind::Remove,
            FaultKind::AnyWrite,
        ];
        for kind in kinds {
            for persistent in [false, true] {
                for n in 0.. {
                    cases += 1;
                    if !fault_case(&workload, kind, n, persistent, &mut tally) {
                        break;
                    }
                }
            }
        }
    });
    println!(
        "injected_io_errors: seed={seed} fault_cases={cases} {} in {:.1?}",
        tally.summary(),
        started.elapsed()
    );
    tally.assert_clean(&format!(
        "injected_io_errors_poison_and_lose_nothing_acknowledged (seed {seed})"
    ));
}

/// Regression test for an engine bug this suite found (fixed concurrently in ebcd93d): `open`
/// of a new database creates and syncs its first WAL and syncs the directory before it writes
/// the manifest and CURRENT. A power loss in between left a durable WAL and no CURRENT, and
/// every later open failed with "CURRENT missing, but the directory holds WAL or SST files".
#[test]
fn power_loss_while_creating_a_database_keeps_it_openable() {
    let clean = SimFs::new();
    let db = Db::open(PATH, options(&clean)).expect("open");
    let open_ops = clean.op_count();
    drop(db);
    assert!(open_ops > 4, "creating a database takes {open_ops} I/O calls");
    for crash_at in 0..open_ops {
        let fs = SimFs::new();
        fs.crash_after_ops(crash_at);
        assert!(Db::open(PATH, options(&fs)).is_err(), "the power was cut during open");
        for mode in [
            CrashMode::DropUnsynced,
            CrashMode::TornUnsynced { seed: crash_at },
            CrashMode::KeepAll,
        ] {
            let image = fs.crash_image(mode);
            let db = Db::open(PATH, options(&image))
                .unwrap_or_else(|error| panic!("crash at call {crash_at}, {mode:?}: {error}"));
            assert_eq!(db.iter().expect("iter").count(), 0);
            db.put(b"k", b"v", WriteOptions::SYNC).expect("put");
        }
    }
}

/// Regression test for a bug `power_loss_with_background_flush` found: `Db::close` returned
/// `Ok(())` without syncing the WAL when a failed background flush had poisoned the
/// database (no write saw that failure). Every call returned `Ok`, yet unsynced writes
/// acknowledged before the close were lost in a power loss. Now close still syncs and
/// reports the poison.
#[test]
fn close_after_a_failed_background_flush_is_not_silently_unsynced() {
    let fs = SimFs::new();
    let db = Db::open(PATH, Options { background_threads: 1, ..options(&fs) }).expect("open");
    // The next create is the WAL of the memtable switch (in the writer's thread), the one
    // after it the flushed SST (in the flush thread): that one fails.
    fs.fail_after(FaultKind::Create, 1, false);
    // The failed flush may poison the database before the last puts: those are refused,
    // not acknowledged, and only acknowledged ones count.
    let mut acknowledged = 0;
    for i in 0..6u8 {
        match db.put([b'k', i], vec![i; 1000], WriteOptions::NO_SYNC) {
            Ok(()) => acknowledged += 1,
            Err(Error::Poisoned { .. }) => break,
            Err(error) => panic!("put: {error}"),
        }
    }
    assert!(acknowledged >= 4, "the fault hits the first flush, after 4 puts fill the memtable");
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    while fs.injected_fault_count() == 0 {
        assert!(Instant::now() < deadline, "the background flush never ran");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // `close` joins the flush thread, so it sees the poison the failed flush left.
    let closed = db.close();
    let image = fs.crash_image(CrashMode::DropUnsynced);
    let db = Db::open(PATH, options(&image)).expect("open after the power loss");
    let kept = scan(&db).expect("scan").len();
    // The close reports the failure, and its best-effort WAL sync (the WAL itself is fine)
    // keeps every acknowledged write.
    assert!(matches!(closed, Err(Error::Poisoned { .. })), "close returned {closed:?}");
    assert_eq!(kept, acknowledged, "{kept} of {acknowledged} acknowledged writes survive");
}
