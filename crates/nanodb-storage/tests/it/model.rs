//! Model-based tests: random operation sequences checked step by step against a `BTreeMap`.
//!
//! What it proves: for any interleaving of puts, deletes, range deletions, atomic batches, point reads, bounded
//! range scans (forward, reverse and from both ends at once), prefix scans, snapshots, long-lived
//! iterators, flushes, clean reopens and power losses (whole page cache kept, or only synced
//! data after a synced write), every read returns exactly what the model says: the newest
//! version wins across memtables and SSTs, tombstones shadow older values in every source,
//! iterator bounds are exact (empty key, 0x00 and 0xff bytes included), snapshots and iterators
//! keep the view they were created with while writes and flushes go on, and nothing changes
//! across reopen. Tiny memtables (4 KiB) and blocks (256 B) make every sequence cross many
//! flushes and multi-block SSTs; values up to 6 KB are bigger than a block and a memtable.

use crate::common::{base_seed, scale, with_seed, Rng};
use nanodb_storage::fs::{CrashMode, SimFs};
use nanodb_storage::{
    Db, Iter, Options, Snapshot, WriteBatch, WriteOptions, LEVEL_SIZE_BYTES_MIN,
    MEMTABLE_SIZE_BYTES_MAX_MIN, OPEN_FILES_MAX_DEFAULT, OPEN_FILES_MAX_MIN,
};
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Entry = (Vec<u8>, Vec<u8>);
type Bounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// 64 keys: edge cases first (empty, 0x00, 0xff, shared prefixes), then `k00`..`k50`.
fn key_space() -> Vec<Vec<u8>> {
    let special = b" \x00 \x00\x00 \x00\xff \xff \xff\x00 \xff\xff a a\x00 a\xff ab abc b";
    let mut keys: Vec<Vec<u8>> = special.split(|&byte| byte == b' ').map(<[u8]>::to_vec).collect();
    keys.extend((0..).map(|i| format!("k{i:02}").into_bytes()).take(64 - keys.len()));
    keys
}

fn remove_range(model: &mut Model, start: &[u8], end: &[u8]) {
    model.retain(|key, _| !(start <= key.as_slice() && key.as_slice() < end));
}

fn random_value(rng: &mut Rng) -> Vec<u8> {
    let len = if rng.chance(3) { 4000 + rng.below(2000) } else { rng.below(300) };
    rng.bytes(len as usize)
}

fn show(entry: Option<&Entry>) -> String {
    match entry {
        Some((key, value)) => {
            format!("({:?}, {} bytes)", key.escape_ascii().to_string(), value.len())
        }
        None => "None".into(),
    }
}

fn check_entry(got: Option<Entry>, want: Option<&Entry>, context: &str) {
    assert!(got.as_ref() == want, "{context}: got {}, want {}", show(got.as_ref()), show(want));
}

fn in_bounds(key: &[u8], (lower, upper): &Bounds) -> bool {
    let above = match lower {
        Bound::Included(bound) => key >= bound.as_slice(),
        Bound::Excluded(bound) => key > bound.as_slice(),
        Bound::Unbounded => true,
    };
    let below = match upper {
        Bound::Included(bound) => key <= bound.as_slice(),
        Bound::Excluded(bound) => key < bound.as_slice(),
        Bound::Unbounded => true,
    };
    above && below
}

fn expected_range(model: &Model, bounds: &Bounds) -> VecDeque<Entry> {
    let entries = model.iter().filter(|(key, _)| in_bounds(key, bounds));
    entries.map(|(key, value)| (key.clone(), value.clone())).collect()
}

fn expected_prefix(model: &Model, prefix: &[u8]) -> VecDeque<Entry> {
    let entries = model.iter().filter(|(key, _)| key.starts_with(prefix));
    entries.map(|(key, value)| (key.clone(), value.clone())).collect()
}

/// Walks `iter` forward, backward, from both ends at random, or partly, checking each entry.
pub(crate) fn check_iter(rng: &mut Rng, mut iter: Iter, mut want: VecDeque<Entry>, context: &str) {
    let mode = rng.below(6);
    let take = |entry: Option<nanodb_storage::Result<Entry>>| entry.map(|e| e.expect(context));
    if mode == 5 {
        // A few entries from either end, then `count_keys` of what is left.
        for _ in 0..rng.below(4) {
            let (got, expected) = if rng.chance(30) {
                (take(iter.next_back()), want.pop_back())
            } else {
                (take(iter.next()), want.pop_front())
            };
            check_entry(got, expected.as_ref(), &format!("{context} (before count_keys)"));
        }
        let left = want.len() as u64;
        if rng.chance(30) {
            let max = rng.below(left + 2);
            let counted = iter.count_keys_up_to(max).expect(context);
            assert_eq!(counted, left.min(max), "{context}: count_keys_up_to({max})");
        } else if rng.chance(40) {
            // Asked once per key found, with the count so far; the keys seen are the keys left.
            let (max, mut asked) = (rng.below(left + 2), 0);
            let counted = iter
                .count_keys_while(|count| {
                    assert_eq!(count, asked, "{context}: asked out of turn");
                    asked += 1;
                    count < max
                })
                .expect(context);
            assert_eq!(counted, left.min(max), "{context}: count_keys_while(< {max})");
            assert_eq!(asked, left.min(max + 1), "{context}: asked once per key found");
        } else {
            assert_eq!(iter.count_keys().expect(context), left, "{context}: count_keys");
        }
        return;
    }
    loop {
        let (got, expected) = match mode {
            0 | 1 => (take(iter.next()), want.pop_front()),
            2 => (take(iter.next_back()), want.pop_back()),
            3 if rng.chance(50) => (take(iter.next()), want.pop_front()),
            3 => (take(iter.next_back()), want.pop_back()),
            _ if want.is_empty() || rng.chance(20) => return,
            _ => (take(iter.next()), want.pop_front()),
        };
        check_entry(got, expected.as_ref(), &format!("{context} (walk mode {mode})"));
        if expected.is_none() {
            break;
        }
    }
    check_entry(take(iter.next()), None, &format!("{context}: next after the end"));
    check_entry(take(iter.next_back()), None, &format!("{context}: next_back after the end"));
}

/// A live iterator kept across steps, with what it must still yield.
struct Cursor {
    iter: Iter,
    want: VecDeque<Entry>,
    what: String,
}

#[derive(Debug, Default)]
struct Counts {
    sequences: u64,
    steps: u64,
    writes: u64,
    reads: u64,
    flushes: u64,
    compactions: u64,
    trivial_moves: u64,
    reopens: u64,
    power_losses: u64,
    range_deletes: u64,
    range_deletion_files_dropped: u64,
    range_tombstones_collected: u64,
}

struct Harness {
    rng: Rng,
    keys: Vec<Vec<u8>>,
    path: PathBuf,
    options: Options,
    /// The filesystem, when it is a `SimFs` (power losses are only simulated there).
    sim: Option<SimFs>,
    db: Option<Db>,
    model: Model,
    snapshots: Vec<(Snapshot, Model)>,
    cursors: Vec<Cursor>,
    step: u64,
    counts: Counts,
}

impl Harness {
    /// `counts` carries the running totals from one sequence to the next.
    fn new(
        rng: Rng,
        path: PathBuf,
        options: Options,
        sim: Option<SimFs>,
        counts: Counts,
    ) -> Harness {
        let db = Db::open(&path, options.clone()).expect("open a new database");
        Harness {
            rng,
            keys: key_space(),
            path,
            options,
            sim,
            db: Some(db),
            model: Model::new(),
            snapshots: Vec::new(),
            cursors: Vec::new(),
            step: 0,
            counts,
        }
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("the database is open")
    }

    /// A key to write: half the time one of 16 hot keys, so versions pile up on them.
    fn key(&mut self) -> Vec<u8> {
        let pool = if self.rng.chance(50) { 16 } else { self.keys.len() as u64 };
        self.keys[self.rng.below(pool) as usize].clone()
    }

    /// A key to read or bound a scan with: usually a known key, sometimes arbitrary short bytes.
    fn probe_key(&mut self) -> Vec<u8> {
        if self.rng.chance(80) {
            return self.key();
        }
        let alphabet = [0x00, 0x01, b'a', b'b', b'k', b'0', b'5', 0xfe, 0xff];
        let len = self.rng.below(4) as usize;
        (0..len).map(|_| alphabet[self.rng.below(alphabet.len() as u64) as usize]).collect()
    }

    fn bound(&mut self) -> Bound<Vec<u8>> {
        match self.rng.below(10) {
            0 | 1 => Bound::Unbounded,
            2..=5 => Bound::Included(self.probe_key()),
            _ => Bound::Excluded(self.probe_key()),
        }
    }

    /// Random bounds, usually in order (inverted ones must give an empty scan).
    fn bounds(&mut self) -> Bounds {
        let (mut lower, mut upper) = (self.bound(), self.bound());
        if let (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) =
            (&mut lower, &mut upper)
        {
            if a > b && self.rng.chance(80) {
                std::mem::swap(a, b);
            }
        }
        (lower, upper)
    }

    fn prefix(&mut self) -> Vec<u8> {
        match self.rng.below(10) {
            0 => Vec::new(),
            1 => vec![0xff; 1 + self.rng.below(2) as usize],
            2 => vec![0x00],
            _ => {
                let key = self.key();
                let len = self.rng.below(key.len() as u64 + 1) as usize;
                key[..len].to_vec()
            }
        }
    }

    fn write_options(&mut self) -> WriteOptions {
        WriteOptions { sync: self.rng.chance(25) }
    }

    fn context(&self, what: &str) -> String {
        format!("step {} ({what})", self.step)
    }

    fn check_get(&self, key: &[u8], what: &str) {
        let got = self.db().get(key).expect("get").map(|value| (key.to_vec(), value));
        let want = self.model.get_key_value(key).map(|(k, v)| (k.clone(), v.clone()));
        check_entry(got, want.as_ref(), &self.context(&format!("{what}: get")));
    }

    /// Full forward scan and a few point reads against the model.
    fn check_all(&mut self, what: &str) {
        let want: VecDeque<Entry> =
            expected_range(&self.model, &(Bound::Unbounded, Bound::Unbounded));
        let mut got = self.db().iter().expect("iter");
        for expected in &want {
            check_entry(got.next().map(|e| e.expect("scan")), Some(expected), &self.context(what));
        }
        check_entry(got.next().map(|e| e.expect("scan")), None, &self.context(what));
        for _ in 0..4 {
            let key = self.probe_key();
            self.check_get(&key, what);
        }
        self.counts.reads += 1;
    }

    fn run_step(&mut self) {
        self.step += 1;
        self.counts.steps += 1;
        let roll = self.rng.below(1000);
        match roll {
            0..=249 => self.put(),
            250..=324 => self.delete(),
            325..=349 => self.delete_range(),
            350..=449 => self.batch(),
            450..=569 => self.get(),
            570..=679 => self.scan(),
            680..=729 => self.prefix_scan(),
            730..=759 => self.take_snapshot(),
            760..=829 => self.read_snapshot(),
            830..=849 => self.drop_snapshot(),
            850..=879 => self.open_cursor(),
            880..=939 => self.advance_cursor(),
            940..=964 => self.flush(),
            965..=979 => self.restart(None, "after reopen"),
            980..=987 => self.power_loss(CrashMode::KeepAll),
            988..=993 => self.power_loss(CrashMode::DropUnsynced),
            _ => self.verify(),
        }
        if self.step.is_multiple_of(16) {
            self.check_all("periodic full scan");
        }
    }

    fn put(&mut self) {
        let (key, value, options) = (self.key(), random_value(&mut self.rng), self.write_options());
        self.db().put(&key, &value, options).expect("put");
        self.model.insert(key.clone(), value);
        self.counts.writes += 1;
        self.check_get(&key, "after put");
    }

    fn delete(&mut self) {
        let (key, options) = (self.key(), self.write_options());
        self.db().delete(&key, options).expect("delete");
        self.model.remove(&key);
        self.counts.writes += 1;
        self.check_get(&key, "after delete");
    }

    /// A random range: usually two probe keys in order, sometimes empty.
    fn range(&mut self) -> (Vec<u8>, Vec<u8>) {
        let (a, b) = (self.probe_key(), self.probe_key());
        if a <= b {
            (a, b)
        } else {
            (b, a)
        }
    }

    fn delete_range(&mut self) {
        let (start, end) = self.range();
        let options = self.write_options();
        self.db().delete_range(&start, &end, options).expect("delete_range");
        remove_range(&mut self.model, &start, &end);
        self.counts.writes += 1;
        self.counts.range_deletes += 1;
        let context = self.context("after delete_range");
        let iter = self.db().range(start.clone()..end.clone()).expect("range");
        check_iter(&mut self.rng, iter, VecDeque::new(), &context);
        self.check_get(&start, "after delete_range");
    }

    fn batch(&mut self) {
        let mut batch = WriteBatch::new();
        let mut ops = Vec::new();
        let count = if self.rng.chance(3) { 0 } else { 1 + self.rng.below(10) };
        let mut ranges = Vec::new();
        for _ in 0..count {
            if self.rng.chance(5) {
                let (start, end) = self.range();
                batch.delete_range(&start, &end);
                ranges.push((ops.len(), start, end));
                self.counts.range_deletes += 1;
                continue;
            }
            let key = self.key();
            let value = self.rng.chance(70).then(|| random_value(&mut self.rng));
            match &value {
                Some(value) => batch.put(&key, value),
                None => batch.delete(&key),
            };
            ops.push((key, value));
        }
        assert_eq!(batch.len() as u64, count);
        let options = self.write_options();
        self.db().write(batch, options).expect("write batch");
        // Ops apply in batch order: a range deletion hides the puts before it, not after.
        let mut ranges = ranges.into_iter().peekable();
        for (index, (key, value)) in ops.iter().enumerate() {
            while let Some((_, start, end)) = ranges.next_if(|(at, _, _)| *at == index) {
                remove_range(&mut self.model, &start, &end);
            }
            match value {
                Some(value) => self.model.insert(key.clone(), value.clone()),
                None => self.model.remove(key),
            };
        }
        for (_, start, end) in ranges {
            remove_range(&mut self.model, &start, &end);
        }
        self.counts.writes += 1;
        for (key, _) in &ops {
            self.check_get(key, "after batch");
        }
    }

    fn get(&mut self) {
        let key = self.probe_key();
        self.check_get(&key, "get");
        self.counts.reads += 1;
    }

    fn scan(&mut self) {
        let bounds = self.bounds();
        let want = expected_range(&self.model, &bounds);
        let iter = self.db().range(bounds.clone()).expect("range");
        let context = self.context(&format!("range {bounds:?}"));
        check_iter(&mut self.rng, iter, want, &context);
        self.counts.reads += 1;
    }

    fn prefix_scan(&mut self) {
        let prefix = self.prefix();
        let want = expected_prefix(&self.model, &prefix);
        let iter = self.db().prefix(&prefix).expect("prefix");
        let context = self.context(&format!("prefix {:?}", prefix.escape_ascii().to_string()));
        check_iter(&mut self.rng, iter, want, &context);
        self.counts.reads += 1;
    }

    fn take_snapshot(&mut self) {
        if self.snapshots.len() >= 4 {
            let index = self.rng.below(4) as usize;
            self.snapshots.swap_remove(index);
        }
        let snapshot = self.db().snapshot().expect("snapshot");
        self.snapshots.push((snapshot, self.model.clone()));
        assert_eq!(self.db().stats().snapshots_live, self.snapshots.len() as u64);
    }

    fn read_snapshot(&mut self) {
        if self.snapshots.is_empty() {
            return self.take_snapshot();
        }
        let index = self.rng.below(self.snapshots.len() as u64) as usize;
        let context = self.context(&format!("snapshot {index}"));
        match self.rng.below(3) {
            0 => {
                let key = self.probe_key();
                let (snapshot, model) = &self.snapshots[index];
                let got = snapshot.get(&key).expect("snapshot get");
                assert!(got.as_ref() == model.get(&key), "{context}: get {key:?} differs");
            }
            1 => {
                let bounds = self.bounds();
                let (snapshot, model) = &self.snapshots[index];
                let (want, iter) = (expected_range(model, &bounds), snapshot.range(bounds.clone()));
                check_iter(&mut self.rng, iter, want, &format!("{context} range {bounds:?}"));
            }
            _ => {
                let prefix = self.prefix();
                let (snapshot, model) = &self.snapshots[index];
                let (want, iter) = (expected_prefix(model, &prefix), snapshot.prefix(&prefix));
                check_iter(&mut self.rng, iter, want, &format!("{context} prefix {prefix:?}"));
            }
        }
        self.counts.reads += 1;
    }

    fn drop_snapshot(&mut self) {
        if !self.snapshots.is_empty() {
            let index = self.rng.below(self.snapshots.len() as u64) as usize;
            self.snapshots.swap_remove(index);
        }
    }

    fn open_cursor(&mut self) {
        if self.cursors.len() >= 3 {
            return self.advance_cursor();
        }
        let bounds = self.bounds();
        let step = self.step;
        let cursor = if !self.snapshots.is_empty() && self.rng.chance(30) {
            let index = self.rng.below(self.snapshots.len() as u64) as usize;
            let (snapshot, model) = &self.snapshots[index];
            let (iter, want) = (snapshot.range(bounds.clone()), expected_range(model, &bounds));
            Cursor { iter, want, what: format!("cursor from step {step} on a snapshot {bounds:?}") }
        } else {
            let iter = self.db().range(bounds.clone()).expect("range");
            let want = expected_range(&self.model, &bounds);
            Cursor { iter, want, what: format!("cursor from step {step} {bounds:?}") }
        };
        self.cursors.push(cursor);
    }

    /// Takes a few entries from either end of a live cursor; removes it once it is exhausted.
    fn advance_cursor(&mut self) {
        if self.cursors.is_empty() {
            return self.open_cursor();
        }
        let index = self.rng.below(self.cursors.len() as u64) as usize;
        let context = self.context("advance cursor");
        for _ in 0..1 + self.rng.below(4) {
            let front = self.rng.chance(60);
            let cursor = &mut self.cursors[index];
            let (got, want) = if front {
                (cursor.iter.next(), cursor.want.pop_front())
            } else {
                (cursor.iter.next_back(), cursor.want.pop_back())
            };
            let what = format!("{context}: {}", cursor.what);
            check_entry(got.map(|entry| entry.expect("cursor")), want.as_ref(), &what);
            if want.is_none() {
                self.cursors.swap_remove(index);
                return;
            }
        }
        self.counts.reads += 1;
    }

    fn flush(&mut self) {
        self.db().flush().expect("flush");
        let stats = self.db().stats();
        assert_eq!((stats.frozen_memtables, stats.memtable_size_bytes), (0, 0), "after flush");
        self.check_all("after flush");
    }

    fn verify(&mut self) {
        let report = self.db().verify().expect("verify");
        let files: u64 = self.db().stats().levels.iter().map(|level| level.files).sum();
        // Background flushes and compactions may change the files between the two calls.
        if self.options.background_threads == 0 {
            assert_eq!(report.sst_files, files, "verify");
        }
    }

    /// Drops every snapshot and cursor (they keep the old database, and its lock, alive),
    /// closes the database, or with a power-loss `image` just drops it, and opens it again.
    fn restart(&mut self, image: Option<SimFs>, what: &str) {
        self.snapshots.clear();
        self.cursors.clear();
        let db = self.db.take().expect("open");
        self.count_background_work(&db);
        if let Some(image) = image {
            drop(db); // its final WAL sync fails: the power is already off
            self.options.fs = Arc::new(image.clone());
            self.sim = Some(image);
            self.counts.power_losses += 1;
        } else {
            db.close().expect("close");
            self.counts.reopens += 1;
        }
        self.db = Some(Db::open(&self.path, self.options.clone()).expect(what));
        assert_eq!(self.db().stats().snapshots_live, 0);
        self.check_all(what);
        self.db().verify().expect("verify after reopen");
    }

    /// Power loss: `KeepAll` keeps every acknowledged write; `DropUnsynced` right after a
    /// synced write keeps them too, since a sync covers everything before it.
    fn power_loss(&mut self, mode: CrashMode) {
        let Some(sim) = self.sim.clone() else { return self.restart(None, "reopen") };
        if mode == CrashMode::DropUnsynced {
            let (key, value) = (self.key(), random_value(&mut self.rng));
            self.db().put(&key, &value, WriteOptions::SYNC).expect("synced put");
            self.model.insert(key, value);
        }
        self.restart(Some(sim.crash_image(mode)), &format!("after power loss {mode:?}"));
    }

    fn count_background_work(&mut self, db: &Db) {
        let stats = db.stats();
        self.counts.flushes += stats.flushes;
        self.counts.compactions += stats.compactions;
        self.counts.trivial_moves += stats.trivial_moves;
        self.counts.range_deletion_files_dropped += stats.range_deletion_files_dropped;
        self.counts.range_tombstones_collected += stats.range_tombstones_collected;
    }

    fn finish(mut self) -> Counts {
        self.check_all("end of sequence");
        self.snapshots.clear();
        self.cursors.clear();
        let db = self.db.take().expect("open");
        self.count_background_work(&db);
        db.close().expect("close");
        self.counts.sequences += 1;
        self.counts
    }
}

fn sim_options(sim: &SimFs, rng: &mut Rng, background_threads: usize) -> Options {
    Options {
        fs: Arc::new(sim.clone()),
        memtable_size_bytes_max: MEMTABLE_SIZE_BYTES_MAX_MIN,
        block_size_bytes: if rng.chance(15) { 64 } else { 256 },
        bloom_bits_per_key: if rng.chance(20) { 0 } else { 10 },
        frozen_memtables_max: 1 + rng.below(3) as usize,
        open_files_max: if rng.chance(50) { OPEN_FILES_MAX_MIN } else { OPEN_FILES_MAX_DEFAULT },
        pin_index_and_filter: rng.chance(70),
        block_cache_size_bytes: if rng.chance(30) { 16 << 10 } else { 1 << 20 },
        background_threads,
        ..compaction_options(rng)
    }
}

/// Small levels and files, so a few hundred steps build several levels and compact often.
fn compaction_options(rng: &mut Rng) -> Options {
    let trigger = 1 + rng.below(4) as usize;
    let slowdown = trigger + rng.below(4) as usize;
    Options {
        l0_compaction_trigger: trigger,
        l0_slowdown_trigger: slowdown,
        l0_stop_trigger: slowdown + rng.below(4) as usize,
        level_size_base_bytes: LEVEL_SIZE_BYTES_MIN * (1 + rng.below(4)),
        level_size_multiplier: 2 + rng.below(4) as u32,
        sst_size_bytes_target: LEVEL_SIZE_BYTES_MIN * (1 + rng.below(4)),
        ..Default::default()
    }
}

/// Seed of sequence `index`: sequence 0 uses the base seed itself, so a printed seed replays
/// first when passed back as `NANODB_TEST_SEED`.
fn sequence_seed(base: u64, index: u64) -> u64 {
    base.wrapping_add(index.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Runs `sequences` random sequences of up to `steps_max` steps; `setup` gives each its
/// path, options and `SimFs` (if any), and a value to keep alive meanwhile (a tempdir).
fn run_sequences<T>(
    name: &str,
    sequences: u64,
    steps_max: u64,
    setup: impl Fn(&mut Rng) -> (PathBuf, Options, Option<SimFs>, T),
) {
    let (base, started) = (base_seed(), Instant::now());
    let mut total = Counts::default();
    for index in 0..sequences {
        total = with_seed(name, sequence_seed(base, index), |seed| {
            let mut rng = Rng::new(seed);
            let (path, options, sim, _keep) = setup(&mut rng);
            let steps = steps_max / 4 + rng.below(steps_max * 3 / 4);
            let mut harness = Harness::new(rng, path, options, sim, total);
            for _ in 0..steps {
                harness.run_step();
            }
            harness.finish()
        });
    }
    println!("{name}: base_seed={base} {total:?} in {:.1?}", started.elapsed());
}

fn on_sim_fs(
    background_threads: usize,
) -> impl Fn(&mut Rng) -> (PathBuf, Options, Option<SimFs>, ()) {
    move |rng| {
        let sim = SimFs::new();
        let options = sim_options(&sim, rng, background_threads);
        (PathBuf::from("/db"), options, Some(sim), ())
    }
}

#[test]
fn model_random_sequences_inline_flush() {
    run_sequences("model_random_sequences_inline_flush", 5000 * scale(), 500, on_sim_fs(0));
}

#[test]
fn model_random_sequences_background_flush() {
    run_sequences("model_random_sequences_background_flush", 800 * scale(), 400, on_sim_fs(1));
}

#[test]
fn model_random_sequences_on_real_fs() {
    run_sequences("model_random_sequences_on_real_fs", 4 * scale(), 500, |_| {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = Options {
            memtable_size_bytes_max: MEMTABLE_SIZE_BYTES_MAX_MIN,
            block_size_bytes: 256,
            background_threads: 1,
            ..Default::default()
        };
        (dir.path().join("db"), options, None, dir)
    });
}

/// Iterators and snapshots taken before several rounds of writes and flushes (some partly
/// consumed first) still yield exactly the data as of their creation.
#[test]
fn iterators_and_snapshots_survive_flushes() {
    let base = base_seed();
    for index in 0..40 * scale() {
        with_seed("iterators_and_snapshots_survive_flushes", sequence_seed(base, index), |seed| {
            let mut rng = Rng::new(seed);
            let sim = SimFs::new();
            let options = sim_options(&sim, &mut rng, (index % 2) as usize);
            let mut harness =
                Harness::new(rng, PathBuf::from("/db"), options, Some(sim), Counts::default());
            for _ in 0..100 {
                harness.put();
                if harness.rng.chance(30) {
                    harness.delete();
                }
            }
            let mut held: Vec<(Iter, VecDeque<Entry>)> = Vec::new();
            for _ in 0..6 {
                let bounds = harness.bounds();
                let iter = harness.db().range(bounds.clone()).expect("range");
                held.push((iter, expected_range(&harness.model, &bounds)));
            }
            let prefix = harness.prefix();
            let iter = harness.db().prefix(&prefix).expect("prefix");
            held.push((iter, expected_prefix(&harness.model, &prefix)));
            for (iter, want) in &mut held {
                for _ in 0..harness.rng.below(3) {
                    let front = harness.rng.chance(50);
                    let got = if front { iter.next() } else { iter.next_back() };
                    let expected = if front { want.pop_front() } else { want.pop_back() };
                    check_entry(got.map(|e| e.expect("iter")), expected.as_ref(), "before flushes");
                }
            }
            let snapshot = harness.db().snapshot().expect("snapshot");
            let frozen = harness.model.clone();
            for _ in 0..5 {
                for _ in 0..40 {
                    match harness.rng.below(3) {
                        0 => harness.delete(),
                        1 => harness.batch(),
                        _ => harness.put(),
                    }
                }
                harness.db().flush().expect("flush");
            }
            for (number, (iter, want)) in held.into_iter().enumerate() {
                let context = format!("iterator {number} after flushes");
                check_iter(&mut harness.rng, iter, want, &context);
            }
            for key in key_space() {
                let got = snapshot.get(&key).expect("get");
                assert!(got.as_ref() == frozen.get(&key), "snapshot get {key:?}");
            }
            let want = expected_range(&frozen, &(Bound::Unbounded, Bound::Unbounded));
            check_iter(&mut harness.rng, snapshot.iter(), want, "snapshot after flushes");
            drop(snapshot);
            harness.check_all("after flushes");
            harness.finish();
        });
    }
}
