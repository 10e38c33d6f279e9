//! SST round trips: writer then reader, point reads, cursors both ways, seeks, the bloom
//! filter, and damage to every byte of a small file; each with the index and filter pinned,
//! in a tiny block cache, and read for every lookup.

use super::{SstReader, SstWriter, SstWriterOptions};
use crate::cache::BlockCache;
use crate::fs::{Fs, SimFs};
use crate::iter::{Direction, InternalIterator};
use crate::key::{internal_key, parse_internal_key, ValueKind, KIND_FOR_SEEK, SEQNO_MAX};
use crate::memtable::Lookup;
use std::path::Path;
use std::sync::Arc;

const PATH: &str = "/db/000001.sst";

/// Where a reader keeps its index and filter.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Pinned,
    /// In a block cache of 16 KiB, 1 KiB per shard: the index of a larger test file does not
    /// fit and is read again for every lookup; small indexes and the filters do fit.
    TinyCache,
    /// Unpinned without a block cache: read for every lookup.
    NoCache,
}

const MODES: [Mode; 3] = [Mode::Pinned, Mode::TinyCache, Mode::NoCache];

fn open(fs: &SimFs, mode: Mode) -> crate::Result<SstReader> {
    let cache = BlockCache::new(16 * 1024);
    let (cache, pin) = match mode {
        Mode::Pinned => (None, true),
        Mode::TinyCache => (Some(&cache), false),
        Mode::NoCache => (None, false),
    };
    SstReader::open(fs, Path::new(PATH), cache, 1, pin)
}

/// Keys key0000..key{count}, each with two versions: a put at seqno 2i+2 and an older one.
fn write_sst(
    fs: &SimFs,
    count: u32,
    block_size_bytes: usize,
    bloom_bits_per_key: u32,
    mode: Mode,
) -> Arc<SstReader> {
    fs.create_dir_all(Path::new("/db")).unwrap();
    let options = SstWriterOptions { block_size_bytes, bloom_bits_per_key };
    let mut writer = SstWriter::create(fs, Path::new(PATH), options).unwrap();
    for index in 0..count {
        let user_key = format!("key{index:04}");
        let seqno = 2 * u64::from(index) + 2;
        let newest_kind = if index % 10 == 9 { ValueKind::Delete } else { ValueKind::Put };
        writer
            .add(
                &internal_key(user_key.as_bytes(), seqno, newest_kind as u8),
                format!("new{index}").as_bytes(),
            )
            .unwrap();
        writer
            .add(
                &internal_key(user_key.as_bytes(), seqno - 1, ValueKind::Put as u8),
                format!("old{index}").as_bytes(),
            )
            .unwrap();
    }
    let properties = writer.finish().unwrap();
    assert_eq!(properties.entry_count, 2 * u64::from(count));
    Arc::new(open(fs, mode).unwrap())
}

#[test]
fn point_reads_see_the_right_version() {
    for mode in MODES {
        point_reads_see_the_right_version_in(mode);
    }
}

fn point_reads_see_the_right_version_in(mode: Mode) {
    let fs = SimFs::new();
    let reader = write_sst(&fs, 500, 256, 10, mode);
    for index in 0..500u32 {
        let key = format!("key{index:04}");
        let seqno = 2 * u64::from(index) + 2;
        let newest = reader.get(key.as_bytes(), SEQNO_MAX).unwrap();
        if index % 10 == 9 {
            assert_eq!(newest, Lookup::Deleted);
        } else {
            assert_eq!(newest, Lookup::Found(format!("new{index}").into_bytes()));
        }
        assert_eq!(
            reader.get(key.as_bytes(), seqno - 1).unwrap(),
            Lookup::Found(format!("old{index}").into_bytes())
        );
        assert_eq!(reader.get(key.as_bytes(), seqno - 2).unwrap(), Lookup::Absent);
        assert!(reader.may_contain(key.as_bytes()).unwrap(), "{mode:?}");
    }
    assert_eq!(reader.get(b"key9999", SEQNO_MAX).unwrap(), Lookup::Absent);
    assert_eq!(reader.get(b"a", SEQNO_MAX).unwrap(), Lookup::Absent);
    let skipped =
        (0..1000).filter(|i| !reader.may_contain(format!("absent{i}").as_bytes()).unwrap()).count();
    assert!(skipped > 950, "bloom filter skipped only {skipped} of 1000 absent keys");
    assert_eq!(reader.verify().unwrap(), 1000);
}

fn walk(reader: &Arc<SstReader>, direction: Direction, seek: Option<&[u8]>) -> Vec<(String, u64)> {
    let mut cursor = reader.cursor(direction);
    match seek {
        Some(target) => cursor.seek(target).unwrap(),
        None => cursor.seek_to_start().unwrap(),
    }
    let mut out = Vec::new();
    while cursor.valid() {
        let parsed = parse_internal_key(cursor.key()).unwrap();
        out.push((String::from_utf8(parsed.user_key.to_vec()).unwrap(), parsed.seqno));
        cursor.next().unwrap();
    }
    out
}

#[test]
fn cursors_walk_every_entry_both_ways_across_blocks() {
    for mode in MODES {
        cursors_walk_every_entry_both_ways_across_blocks_in(mode);
    }
}

fn cursors_walk_every_entry_both_ways_across_blocks_in(mode: Mode) {
    let fs = SimFs::new();
    let reader = write_sst(&fs, 300, 200, 10, mode);
    let forward = walk(&reader, Direction::Forward, None);
    assert_eq!(forward.len(), 600);
    assert_eq!(forward[0], ("key0000".to_string(), 2));
    assert_eq!(forward[1], ("key0000".to_string(), 1));
    let mut reverse = walk(&reader, Direction::Reverse, None);
    reverse.reverse();
    assert_eq!(reverse, forward);

    for index in [0u32, 1, 77, 150, 299] {
        let key = format!("key{index:04}");
        let target = internal_key(key.as_bytes(), SEQNO_MAX, KIND_FOR_SEEK);
        assert_eq!(walk(&reader, Direction::Forward, Some(&target))[0].0, key);
        // Reverse from just before the key: the last version of the previous key.
        let reverse = walk(&reader, Direction::Reverse, Some(&target));
        if index == 0 {
            assert!(reverse.is_empty());
        } else {
            assert_eq!(reverse[0], (format!("key{:04}", index - 1), 2 * u64::from(index - 1) + 1));
        }
    }
    let past_end = internal_key(b"zzz", SEQNO_MAX, KIND_FOR_SEEK);
    assert!(walk(&reader, Direction::Forward, Some(&past_end)).is_empty());
    assert_eq!(walk(&reader, Direction::Reverse, Some(&past_end)).len(), 600);
}

#[test]
fn a_file_without_a_filter_and_an_empty_file_work() {
    for mode in MODES {
        let fs = SimFs::new();
        let reader = write_sst(&fs, 50, 4096, 0, mode);
        assert!(!reader.has_filter());
        assert!(reader.may_contain(b"anything").unwrap());
        assert_eq!(walk(&reader, Direction::Forward, None).len(), 100);
        let fs = SimFs::new();
        let empty = write_sst(&fs, 0, 4096, 10, mode);
        assert!(walk(&empty, Direction::Reverse, None).is_empty());
        assert_eq!(empty.get(b"k", SEQNO_MAX).unwrap(), Lookup::Absent);
    }
}

#[test]
fn unpinned_index_and_filter_live_in_the_block_cache() {
    let fs = SimFs::new();
    write_sst(&fs, 40, 128, 10, Mode::Pinned);
    let cache = BlockCache::new(1 << 20);
    let pinned = SstReader::open(&fs, Path::new(PATH), Some(&cache), 1, true).unwrap();
    assert_eq!(cache.stats().inserts, 0, "a pinned reader caches only data blocks");
    assert_eq!(pinned.get(b"key0003", SEQNO_MAX).unwrap(), Lookup::Found(b"new3".to_vec()));
    assert_eq!(cache.stats().inserts, 1);

    let cache = BlockCache::new(1 << 20);
    let reader = SstReader::open(&fs, Path::new(PATH), Some(&cache), 2, false).unwrap();
    let stats = cache.stats();
    assert_eq!((stats.inserts, stats.misses), (2, 2), "open loads index and filter: {stats:?}");
    assert!(reader.may_contain(b"key0003").unwrap());
    assert_eq!(reader.get(b"key0003", SEQNO_MAX).unwrap(), Lookup::Found(b"new3".to_vec()));
    let stats = cache.stats();
    // Filter and index hit, the data block missed and was inserted.
    assert_eq!((stats.hits, stats.misses, stats.inserts), (2, 3, 3), "{stats:?}");
    // A reader opened again for the same file finds both in the cache.
    drop(reader);
    let again = SstReader::open(&fs, Path::new(PATH), Some(&cache), 2, false).unwrap();
    assert_eq!(cache.stats().inserts, 3);
    assert_eq!(Arc::new(again).verify().unwrap(), 80);
}

#[test]
fn damage_anywhere_is_an_error_never_a_panic_or_a_wrong_value() {
    for mode in MODES {
        damage_anywhere_is_an_error_in(mode);
    }
}

fn damage_anywhere_is_an_error_in(mode: Mode) {
    let fs = SimFs::new();
    write_sst(&fs, 40, 128, 10, mode);
    let original = fs.read_live(Path::new(PATH)).unwrap();
    for offset in 0..original.len() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let mut bytes = original.clone();
        bytes[offset] ^= 0x40;
        fs.create(Path::new(PATH)).unwrap().append(&bytes).unwrap();
        let Ok(reader) = open(&fs, mode) else { continue };
        let reader = Arc::new(reader);
        // Every byte is under a checksum, so a full verify must fail.
        assert!(reader.verify().is_err(), "flip at {offset} went unnoticed ({mode:?})");
        for index in 0..40u32 {
            let key = format!("key{index:04}");
            match reader.get(key.as_bytes(), SEQNO_MAX) {
                Err(error) => assert!(error.is_corruption(), "{error}"),
                Ok(Lookup::Found(value)) => {
                    assert_eq!(value, format!("new{index}").into_bytes(), "flip at {offset}")
                }
                Ok(Lookup::Deleted) => assert_eq!(index % 10, 9, "flip at {offset}"),
                // The bloom filter is not consulted by `get`; a flip there is caught by verify.
                Ok(Lookup::Absent) => panic!("flip at {offset}: {key} reported absent"),
            }
        }
    }
    for len in 0..original.len() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        fs.create(Path::new(PATH)).unwrap().append(&original[..len]).unwrap();
        assert!(open(&fs, mode).is_err(), "truncated to {len} opened ({mode:?})");
    }
}
