//! Unit tests of the database on SimFs: poisoning after failed writes and fsyncs, seqno
//! continuity across reopen, inline flushes with no background thread, WAL file lifecycle.

use super::Db;
use crate::fs::{CrashMode, FaultKind, Fs, SimFs};
use crate::options::{Options, WriteOptions, MEMTABLE_SIZE_BYTES_MAX_MIN};
use crate::Error;
use std::path::Path;
use std::sync::Arc;

fn options(fs: &SimFs, background_threads: usize) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        memtable_size_bytes_max: MEMTABLE_SIZE_BYTES_MAX_MIN,
        block_size_bytes: 256,
        background_threads,
        ..Default::default()
    }
}

fn wal_count(fs: &SimFs) -> usize {
    fs.file_names(Path::new("/db")).iter().filter(|name| name.ends_with(".wal")).count()
}

#[test]
fn a_failed_sync_poisons_and_nothing_after_it_is_acknowledged() {
    let fs = SimFs::new();
    let db = Db::open("/db", options(&fs, 1)).unwrap();
    db.put(b"before", b"1", WriteOptions::SYNC).unwrap();
    fs.fail_after(FaultKind::Sync, 0, false);
    let error = db.put(b"failed", b"2", WriteOptions::SYNC).unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error}");
    // The fault was one-off, but the database stays poisoned.
    let error = db.put(b"after", b"3", WriteOptions::SYNC).unwrap_err();
    assert!(matches!(error, Error::Poisoned { .. }), "{error}");
    assert!(error.to_string().contains("injected fault"), "{error}");
    assert!(matches!(db.flush(), Err(Error::Poisoned { .. })));
    // Reads still work and never show the failed write.
    assert_eq!(db.get(b"before").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get(b"failed").unwrap(), None);
    drop(db);

    let image = fs.crash_image(CrashMode::DropUnsynced);
    let db = Db::open("/db", options(&image, 1)).unwrap();
    assert_eq!(db.get(b"before").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get(b"after").unwrap(), None);
    db.put(b"after", b"3", WriteOptions::SYNC).unwrap();
}

#[test]
fn a_failed_flush_poisons_but_reads_keep_the_memtable() {
    let fs = SimFs::new();
    let db = Db::open("/db", options(&fs, 0)).unwrap();
    db.put(b"k", b"v", WriteOptions::NO_SYNC).unwrap();
    fs.fail_after(FaultKind::Create, 0, true);
    assert!(db.flush().is_err());
    assert!(matches!(db.put(b"x", b"y", WriteOptions::NO_SYNC), Err(Error::Poisoned { .. })));
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn seqnos_continue_across_reopen() {
    let fs = SimFs::new();
    let db = Db::open("/db", options(&fs, 0)).unwrap();
    for index in 0..500u32 {
        db.put(index.to_be_bytes(), b"value", WriteOptions::NO_SYNC).unwrap();
    }
    let seqno = db.stats().seqno_last;
    assert_eq!(seqno, 500);
    db.close().unwrap();
    let db = Db::open("/db", options(&fs, 0)).unwrap();
    assert_eq!(db.stats().seqno_last, 500);
    db.put(b"next", b"v", WriteOptions::SYNC).unwrap();
    assert_eq!(db.stats().seqno_last, 501);
    let snapshot = db.snapshot().unwrap();
    assert_eq!(snapshot.seqno(), 501);
}

#[test]
fn old_wal_files_are_deleted_once_flushed() {
    let fs = SimFs::new();
    let db = Db::open("/db", options(&fs, 0)).unwrap();
    for index in 0..2000u32 {
        db.put(index.to_be_bytes(), [7u8; 40], WriteOptions::NO_SYNC).unwrap();
        // One WAL per memtable: the active one and at most `frozen_memtables_max` frozen.
        assert!(wal_count(&fs) <= 3, "WAL files pile up: {:?}", fs.file_names(Path::new("/db")));
    }
    db.flush().unwrap();
    assert_eq!(wal_count(&fs), 1);
    let stats = db.stats();
    assert!(stats.flushes > 5, "{stats}");
    assert_eq!(stats.frozen_memtables, 0);
    db.close().unwrap();
    // Reopening leaves exactly one WAL, one manifest, CURRENT and the SSTs.
    let _db = Db::open("/db", options(&fs, 0)).unwrap();
    let names = fs.file_names(Path::new("/db"));
    assert_eq!(names.iter().filter(|n| n.starts_with("MANIFEST-")).count(), 1, "{names:?}");
    assert_eq!(wal_count(&fs), 1);
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn writers_wait_for_the_flush_thread_instead_of_piling_up_memtables() {
    let fs = SimFs::new();
    let db = Db::open("/db", Options { frozen_memtables_max: 1, ..options(&fs, 1) }).unwrap();
    for index in 0..3000u32 {
        db.put(index.to_be_bytes(), [1u8; 64], WriteOptions::NO_SYNC).unwrap();
        assert!(db.stats().frozen_memtables <= 1);
    }
    db.flush().unwrap();
    assert_eq!(db.iter().unwrap().count(), 3000);
}

/// A crash while a new database is first opened can leave an empty WAL and a manifest but no
/// CURRENT; that is still a new database.
#[test]
fn leftovers_of_a_first_open_that_crashed_are_a_new_database() {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/db")).unwrap();
    crate::wal::create_wal(&fs, Path::new("/db/000001.wal")).unwrap();
    let db = Db::open("/db", options(&fs, 0)).unwrap();
    db.put(b"k", b"v", WriteOptions::SYNC).unwrap();
}

#[test]
fn a_wal_with_records_but_no_current_is_corruption() {
    let fs = SimFs::new();
    let db = Db::open("/db", options(&fs, 0)).unwrap();
    db.put(b"k", b"v", WriteOptions::SYNC).unwrap();
    drop(db);
    fs.remove_file(Path::new("/db/CURRENT")).unwrap();
    let error = Db::open("/db", options(&fs, 0)).unwrap_err();
    assert!(error.is_corruption(), "{error}");
}

fn append_batch(
    fs: &SimFs,
    wal: &mut crate::record_log::RecordWriter,
    seqno_first: u64,
    key: &[u8],
) {
    let mut batch = crate::batch::WriteBatch::new();
    batch.put(key, b"v");
    let mut framed = Vec::new();
    crate::wal::encode_batch_record(&mut framed, &batch, seqno_first);
    wal.append_framed(&framed).unwrap();
    wal.sync().unwrap();
    let _ = fs;
}

/// A database holding puts of `a` and `b` whose only WAL is then torn inside its last record.
fn database_with_a_torn_wal() -> SimFs {
    let fs = SimFs::new();
    let db = Db::open("/db", options(&fs, 0)).unwrap();
    db.put(b"a", b"1", WriteOptions::SYNC).unwrap();
    db.put(b"b", b"2", WriteOptions::SYNC).unwrap();
    drop(db);
    let names = fs.file_names(Path::new("/db"));
    let wal = names.iter().find(|name| name.ends_with(".wal")).unwrap();
    let wal_path = Path::new("/db").join(wal);
    let size = fs.read_live(&wal_path).unwrap().len();
    fs.truncate(&wal_path, size - 3);
    fs
}

/// Crash while recovering a torn WAL: open made a new, empty WAL before the crash. The torn
/// WAL is then not the newest, but nothing follows it, so it is still a torn tail.
#[test]
fn a_torn_wal_followed_only_by_empty_wals_recovers() {
    let fs = database_with_a_torn_wal();
    crate::wal::create_wal(&fs, Path::new("/db/000900.wal")).unwrap();
    let db = Db::open("/db", options(&fs, 0)).unwrap();
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get(b"b").unwrap(), None);
    drop(db);

    // Records after a torn one, in a newer WAL, are corruption: they would leave a hole.
    let fs = database_with_a_torn_wal();
    let mut newer = crate::wal::create_wal(&fs, Path::new("/db/000900.wal")).unwrap();
    append_batch(&fs, &mut newer, 3, b"c");
    let error = Db::open("/db", options(&fs, 0)).unwrap_err();
    assert!(error.is_corruption(), "{error}");
}

#[test]
fn out_of_range_seqnos_in_the_wal_are_corruption_not_a_panic() {
    let fs = SimFs::new();
    Db::open("/db", options(&fs, 0)).unwrap().close().unwrap();
    let names = fs.file_names(Path::new("/db"));
    let wal_path = Path::new("/db").join(names.iter().find(|name| name.ends_with(".wal")).unwrap());
    let fresh = fs.read_live(&wal_path).unwrap();
    for seqno in [u64::MAX, u64::MAX - 1, crate::key::SEQNO_MAX] {
        fs.truncate(&wal_path, fresh.len());
        let mut wal = crate::record_log::RecordWriter::create(
            &fs,
            &wal_path,
            crate::wal::WAL_MAGIC,
            crate::wal::WAL_FORMAT_VERSION,
            crate::record_log::Framing::Compact,
        )
        .unwrap();
        append_batch(&fs, &mut wal, seqno, b"k");
        let error = Db::open("/db", options(&fs, 0)).unwrap_err();
        assert!(error.is_corruption(), "seqno {seqno}: {error}");
    }
}

/// An `Fs` that panics when asked to create an SST, to check that a panic on the flush path
/// poisons the database instead of leaving writers waiting forever.
#[derive(Debug)]
struct PanickingFs(SimFs);

impl Fs for PanickingFs {
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        self.0.create_dir_all(path)
    }
    fn create(&self, path: &Path) -> std::io::Result<Box<dyn crate::fs::WritableFile>> {
        assert!(!path.to_string_lossy().ends_with(".sst"), "PanickingFs refuses to create an SST");
        self.0.create(path)
    }
    fn open(&self, path: &Path) -> std::io::Result<Arc<dyn crate::fs::ReadableFile>> {
        self.0.open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.0.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.0.remove_file(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.0.hard_link(from, to)
    }
    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<String>> {
        self.0.list_dir(path)
    }
    fn remove_dir(&self, path: &Path) -> std::io::Result<()> {
        self.0.remove_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        self.0.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> std::io::Result<bool> {
        self.0.exists(path)
    }
    fn lock(&self, path: &Path) -> std::io::Result<Box<dyn crate::fs::FileLock>> {
        self.0.lock(path)
    }
}

/// Runs `work` on a thread and fails the test if it takes longer than a minute (a hang).
fn within_a_minute<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(work());
    });
    receiver.recv_timeout(std::time::Duration::from_secs(60)).expect("the database hung")
}

#[test]
fn a_panic_while_flushing_poisons_instead_of_hanging_writers() {
    for background_threads in [0, 1] {
        let outcome = within_a_minute(move || {
            let options = Options {
                fs: Arc::new(PanickingFs(SimFs::new())),
                frozen_memtables_max: 1,
                ..options(&SimFs::new(), background_threads)
            };
            let db = Db::open("/db", options).unwrap();
            let mut first_error = None;
            for index in 0..5000u32 {
                if let Err(error) = db.put(index.to_be_bytes(), [0u8; 100], WriteOptions::NO_SYNC) {
                    first_error = Some(error);
                    break;
                }
            }
            let later = db.put(b"later", b"v", WriteOptions::NO_SYNC);
            (first_error, later, db.flush())
        });
        let (first_error, later, flushed) = outcome;
        let first_error = first_error.expect("the panicking flush never surfaced as an error");
        assert!(
            matches!(first_error, Error::Internal(_) | Error::Poisoned { .. }),
            "threads {background_threads}: {first_error}"
        );
        assert!(
            matches!(later, Err(Error::Poisoned { .. })),
            "threads {background_threads}: {later:?}"
        );
        assert!(flushed.is_err());
    }
}

#[test]
fn closing_or_an_earlier_poison_is_not_a_new_failure() {
    let fs = SimFs::new();
    let db = Db::open("/db", options(&fs, 0)).unwrap();
    let inner = Arc::clone(&db.handle.inner);
    assert!(matches!(inner.poison(Error::Closed), Error::Closed));
    assert!(inner.check_writable().is_ok(), "Closed must not poison");
    db.put(b"k", b"v", WriteOptions::SYNC).unwrap();
    db.close().unwrap();
}

#[test]
fn a_live_iterator_keeps_the_directory_locked() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"k", b"v", WriteOptions::NO_SYNC).unwrap();
    let iter = db.iter().unwrap();
    db.close().unwrap();
    assert!(matches!(Db::open(dir.path(), Options::default()), Err(Error::Locked { .. })));
    assert_eq!(iter.count(), 1);
    Db::open(dir.path(), Options::default()).unwrap();
}

/// Keys with hundreds of versions (in the memtable and in SSTs), read through snapshots taken
/// between the versions: the iterator's seeks past long version runs must return exactly the
/// visible version of every key, forward, reverse and within bounds.
#[test]
fn iterators_skip_long_version_runs_correctly() {
    use std::collections::BTreeMap;
    let fs = SimFs::new();
    let db =
        Db::open("/db", Options { memtable_size_bytes_max: 64 * 1024, ..options(&fs, 0) }).unwrap();
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut snapshots = Vec::new();
    for round in 0..300u32 {
        for key in 0..12u32 {
            // Keys 0..4 are hot (a version every round), the others cold; key 7 is deleted
            // and re-created now and then.
            if key >= 4 && round % 50 != key {
                continue;
            }
            let name = format!("key{key:02}").into_bytes();
            if key == 7 && round % 100 == 7 {
                db.delete(&name, WriteOptions::NO_SYNC).unwrap();
                model.remove(&name);
            } else {
                let value = format!("{key}-{round}").into_bytes();
                db.put(&name, &value, WriteOptions::NO_SYNC).unwrap();
                model.insert(name, value);
            }
        }
        if round % 60 == 30 {
            snapshots.push((db.snapshot().unwrap(), model.clone()));
        }
        if round % 97 == 0 {
            db.flush().unwrap();
        }
    }
    snapshots.push((db.snapshot().unwrap(), model.clone()));
    for (snapshot, expected) in &snapshots {
        let forward: Vec<_> = snapshot.iter().map(Result::unwrap).collect();
        let wanted: Vec<_> = expected.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(forward, wanted, "forward at seqno {}", snapshot.seqno());
        let mut reverse: Vec<_> = snapshot.iter().rev().map(Result::unwrap).collect();
        reverse.reverse();
        assert_eq!(reverse, wanted, "reverse at seqno {}", snapshot.seqno());
        let low = b"key01".to_vec();
        let high = b"key03".to_vec();
        let bounded: Vec<_> =
            snapshot.range(low.as_slice()..=high.as_slice()).rev().map(Result::unwrap).collect();
        let wanted_bounded: Vec<_> = expected
            .range(low.clone()..=high.clone())
            .rev()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(bounded, wanted_bounded);
        for (key, value) in expected {
            let from: Vec<_> =
                snapshot.range(key.as_slice()..).take(1).map(Result::unwrap).collect();
            assert_eq!(from, vec![(key.clone(), value.clone())]);
        }
    }
}

/// Records every note it receives: (seqno, the note's number).
#[derive(Default)]
struct NoteLog(parking_lot::Mutex<Vec<(u64, u64)>>);

impl super::CommitListener for NoteLog {
    fn committed(&self, seqno: u64, note: &super::CommitNote) {
        let number = *note.downcast_ref::<u64>().expect("notes in this test are u64");
        self.0.lock().push((seqno, number));
    }
}

#[test]
fn commit_notes_arrive_once_in_seqno_order_and_never_for_rejected_commits() {
    let fs = SimFs::new();
    let db = Db::open("/db", options(&fs, 1)).unwrap();
    let log = Arc::new(NoteLog::default());
    db.set_commit_listener(Some(log.clone()));
    let mut winner = db.transaction().unwrap();
    let mut loser = db.transaction().unwrap();
    winner.put(b"k", b"1").unwrap();
    loser.put(b"k", b"2").unwrap();
    winner.set_commit_note(Arc::new(1u64));
    loser.set_commit_note(Arc::new(2u64));
    winner.commit().unwrap();
    assert!(matches!(loser.commit(), Err(Error::Conflict { .. })));
    // A transaction that writes nothing commits nothing and delivers nothing.
    let mut empty = db.transaction().unwrap();
    empty.set_commit_note(Arc::new(3u64));
    empty.commit().unwrap();
    // Many threads: every note once, seqnos increasing in delivery order.
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            let db = &db;
            scope.spawn(move || {
                for i in 0..50u64 {
                    let mut txn = db.transaction().unwrap();
                    txn.put(format!("t{thread}-{i}"), b"v").unwrap();
                    txn.put(format!("t{thread}-{i}-b"), b"v").unwrap();
                    txn.set_commit_note(Arc::new(100 + thread * 1000 + i));
                    txn.commit().unwrap();
                }
            });
        }
    });
    let notes = log.0.lock().clone();
    assert_eq!(notes[0].1, 1);
    assert_eq!(notes.len(), 1 + 200);
    assert!(notes.windows(2).all(|pair| pair[0].0 < pair[1].0), "out of seqno order");
    let mut numbers: Vec<u64> = notes.iter().map(|(_, number)| *number).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), notes.len(), "a note was delivered twice");
    assert!(!numbers.contains(&2) && !numbers.contains(&3));
    // The seqno given is the commit's: its writes are visible at it and not before.
    let (seqno, _) = notes[0];
    assert!(seqno > 0 && db.get(b"k").unwrap().as_deref() == Some(&b"1"[..]));
    db.set_commit_listener(None);
    let mut txn = db.transaction().unwrap();
    txn.put(b"after", b"v").unwrap();
    txn.set_commit_note(Arc::new(4u64));
    txn.commit().unwrap();
    assert_eq!(log.0.lock().len(), 201, "a removed listener still got a note");
    db.close().unwrap();
}
