//! Damaged files: flip bits in, zero sectors of and truncate every WAL, SST, manifest and
//! CURRENT file of a database, then open it, read every key, scan and verify.
//!
//! The damage is spread over three databases, written with no compression, LZ4 and zstd, so
//! compressed blocks are damaged too. Each outcome is classified as detected (an error), benign
//! (every answer right) or, for WAL damage only, a consistent earlier state (the state after
//! some prefix of the writes, as a crash would leave). What must never happen: a panic, a
//! silently wrong answer, or an SST or manifest damage that goes unnoticed.

use crate::common::{base_seed, scale, with_seed, Rng};
use nanodb_storage::fs::{Fs, SimFs};
use nanodb_storage::{Compression, Db, Options, WriteBatch, WriteOptions, ZSTD_LEVEL_DEFAULT};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Files = BTreeMap<String, Vec<u8>>;

const DIR: &str = "/db";
const CODECS: [(Compression, &str); 3] = [
    (Compression::None, "none"),
    (Compression::Lz4, "lz4"),
    (Compression::Zstd { level: ZSTD_LEVEL_DEFAULT }, "zstd"),
];

fn options(fs: &SimFs) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        memtable_size_bytes_max: 8 * 1024,
        block_size_bytes: 512,
        background_threads: 0,
        ..Default::default()
    }
}

/// Builds a database with several SSTs written with `compression` and an unflushed WAL tail;
/// returns its files and the model after every batch (index 0 = empty).
fn build(seed: u64, compression: Compression) -> (Files, Vec<Model>) {
    let fs = SimFs::new();
    let db = Db::open(DIR, Options { compression, ..options(&fs) }).unwrap();
    let mut rng = Rng::new(seed);
    let mut history = vec![Model::new()];
    let mut model = Model::new();
    for _ in 0..300 {
        let mut batch = WriteBatch::new();
        for _ in 0..1 + rng.below(3) {
            let key = format!("key{:03}", rng.below(120)).into_bytes();
            if rng.chance(15) {
                batch.delete(&key);
                model.remove(&key);
            } else {
                let len = rng.below(200) as usize;
                // Half random (stored raw), half repetitive (compressed).
                let value = if rng.chance(50) {
                    rng.bytes(len)
                } else {
                    let period = 1 + rng.below(8) as usize;
                    let mut value = rng.bytes(period).repeat(len);
                    value.truncate(len);
                    value
                };
                batch.put(&key, &value);
                model.insert(key, value);
            }
        }
        db.write(batch, WriteOptions::SYNC).unwrap();
        history.push(model.clone());
    }
    db.close().unwrap();
    let mut files = Files::new();
    for name in fs.file_names(Path::new(DIR)) {
        if name != "LOCK" {
            files.insert(name.clone(), fs.read_live(&Path::new(DIR).join(&name)).unwrap());
        }
    }
    assert!(files.keys().any(|name| name.ends_with(".sst")), "no SST built: {:?}", files.keys());
    assert!(files.keys().any(|name| name.ends_with(".wal")));
    (files, history)
}

fn materialize(files: &Files) -> SimFs {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new(DIR)).unwrap();
    for (name, bytes) in files {
        let mut file = fs.create(&Path::new(DIR).join(name)).unwrap();
        file.append(bytes).unwrap();
        file.sync().unwrap();
    }
    fs.sync_dir(Path::new(DIR)).unwrap();
    fs
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Detected,
    Benign,
    EarlierState,
}

/// Opens the damaged database and reads everything; `Err` describes a silent wrong answer.
fn examine(files: &Files, history: &[Model]) -> Result<Outcome, String> {
    let fs = materialize(files);
    let Ok(db) = Db::open(DIR, options(&fs)) else { return Ok(Outcome::Detected) };
    if db.verify().is_err() {
        return Ok(Outcome::Detected);
    }
    let mut scanned = Model::new();
    for entry in db.iter().unwrap() {
        match entry {
            Ok((key, value)) => {
                scanned.insert(key, value);
            }
            Err(_) => return Ok(Outcome::Detected),
        }
    }
    let final_model = history.last().unwrap();
    for key in final_model.keys().chain(scanned.keys()) {
        match db.get(key) {
            Ok(value) if value.as_ref() == scanned.get(key) => {}
            Ok(value) => return Err(format!("get({key:?}) = {value:?} disagrees with the scan")),
            Err(_) => return Ok(Outcome::Detected),
        }
    }
    if &scanned == final_model {
        Ok(Outcome::Benign)
    } else if history.contains(&scanned) {
        Ok(Outcome::EarlierState)
    } else {
        Err(format!("recovered a state that never existed ({} keys)", scanned.len()))
    }
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) -> String {
    match rng.below(3) {
        0 => {
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                let offset = rng.below(bytes.len() as u64) as usize;
                bytes[offset] ^= 1 << rng.below(8);
            }
            format!("flip {flips} bits")
        }
        1 => {
            let start = rng.below(bytes.len() as u64) as usize & !511;
            let end = (start + 4096).min(bytes.len());
            bytes[start..end].fill(0);
            format!("zero {start}..{end}")
        }
        _ => {
            let len = rng.below(bytes.len() as u64) as usize;
            bytes.truncate(len);
            format!("truncate to {len}")
        }
    }
}

#[test]
fn damage_is_detected_or_harmless_never_silent() {
    let seed = base_seed();
    with_seed("corruption::damage_is_detected_or_harmless_never_silent", seed, |seed| {
        let builds: Vec<(Files, Vec<Model>)> =
            CODECS.iter().map(|&(compression, _)| build(seed, compression)).collect();
        let mut rng = Rng::new(seed ^ 0x00c0_ffee);
        let mut counts: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        let cases = 1500 * scale();
        for case in 0..cases {
            let codec = (case % 3) as usize;
            let (files, history) = &builds[codec];
            let names: Vec<&String> = files.keys().collect();
            let name = names[(case / 3) as usize % names.len()].clone();
            let kind = match name.as_str() {
                n if n.ends_with(".sst") => "sst",
                n if n.ends_with(".wal") => "wal",
                n if n.starts_with("MANIFEST") => "manifest",
                _ => "current",
            };
            let mut damaged = files.clone();
            let bytes = damaged.get_mut(&name).unwrap();
            if bytes.is_empty() {
                continue;
            }
            let what = mutate(&mut rng, bytes);
            let codec_name = CODECS[codec].1;
            let outcome = examine(&damaged, history).unwrap_or_else(|wrong| {
                panic!("case {case}: {what} in {name} ({codec_name}): {wrong}")
            });
            if kind != "wal" {
                // Every byte of an SST, manifest and CURRENT is checked: damage that changes
                // any byte must be noticed, never turned into an older state.
                assert_ne!(
                    outcome,
                    Outcome::EarlierState,
                    "case {case}: {what} in {name} ({codec_name}) lost data silently"
                );
            }
            let label = match outcome {
                Outcome::Detected => "detected",
                Outcome::Benign => "benign",
                Outcome::EarlierState => "earlier_state",
            };
            *counts.entry((format!("{kind}/{codec_name}"), label)).or_default() += 1;
        }
        println!(
            "corruption: cases={cases} silent_wrong=0 crashes=0 by file and outcome: {counts:?}"
        );
    });
}

#[test]
fn a_missing_sst_or_wal_is_reported_not_ignored() {
    let (files, history) = build(7, Compression::Lz4);
    for name in files.keys().filter(|name| name.ends_with(".sst") || name.starts_with("CURRENT")) {
        let mut damaged = files.clone();
        damaged.remove(name);
        let outcome = examine(&damaged, &history).unwrap();
        assert_eq!(outcome, Outcome::Detected, "{name} removed");
    }
    // The manifest's oldest needed WAL gone: edits were lost, open must refuse.
    let wal = files.keys().find(|name| name.ends_with(".wal")).unwrap().clone();
    let mut damaged = files.clone();
    damaged.remove(&wal);
    assert_eq!(examine(&damaged, &history).unwrap(), Outcome::Detected);
}

/// `verify` goes on past the first damaged file and names every one.
#[test]
fn verify_reports_every_damaged_file() {
    use nanodb_storage::fs::SimFs;
    use nanodb_storage::{Error, WriteOptions};
    let sim = SimFs::new();
    let options = crate::common::small_levels(&sim);
    let db = Db::open("/db", options).unwrap();
    for round in 0..3u64 {
        for index in 0..300u64 {
            let key = crate::common::key(round * 1_000 + index);
            db.put(key, [round as u8; 100], WriteOptions::NO_SYNC).unwrap();
        }
        db.flush().unwrap();
    }
    let report = db.verify().unwrap();
    assert!(report.sst_files >= 2 && report.problems.is_empty());
    let mut ssts: Vec<String> = sim
        .file_names(std::path::Path::new("/db"))
        .into_iter()
        .filter(|n| n.ends_with(".sst"))
        .collect();
    ssts.sort();
    let damaged: Vec<&String> = ssts.iter().take(2).collect();
    for name in &damaged {
        assert!(sim.corrupt_byte(&std::path::Path::new("/db").join(name.as_str()), 10, 0xff));
    }
    match db.verify() {
        Err(Error::VerifyFailed { report }) => {
            assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
            assert_eq!(report.sst_files, ssts.len() as u64, "every file was still read");
            for name in damaged {
                assert!(
                    report
                        .problems
                        .iter()
                        .any(|problem| problem.to_string().contains(name.as_str())),
                    "{name} not named"
                );
            }
            let text = Error::VerifyFailed { report }.to_string();
            assert!(text.contains("2 problem(s)"), "{text}");
        }
        other => panic!("expected VerifyFailed, got {other:?}"),
    }
}
