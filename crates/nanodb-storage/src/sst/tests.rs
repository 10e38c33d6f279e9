//! SST round trips: writer then reader, point reads, cursors both ways, seeks, the bloom
//! filter, and damage to every byte of a small file.

use super::{SstReader, SstWriter, SstWriterOptions};
use crate::fs::{Fs, SimFs};
use crate::iter::{Direction, InternalIterator};
use crate::key::{internal_key, parse_internal_key, ValueKind, KIND_FOR_SEEK, SEQNO_MAX};
use crate::memtable::Lookup;
use std::path::Path;
use std::sync::Arc;

const PATH: &str = "/db/000001.sst";

/// Keys key0000..key{count}, each with two versions: a put at seqno 2i+2 and an older one.
fn write_sst(
    fs: &SimFs,
    count: u32,
    block_size_bytes: usize,
    bloom_bits_per_key: u32,
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
    Arc::new(SstReader::open(fs, Path::new(PATH), None, 1).unwrap())
}

#[test]
fn point_reads_see_the_right_version() {
    let fs = SimFs::new();
    let reader = write_sst(&fs, 500, 256, 10);
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
        assert!(reader.may_contain(key.as_bytes()));
    }
    assert_eq!(reader.get(b"key9999", SEQNO_MAX).unwrap(), Lookup::Absent);
    assert_eq!(reader.get(b"a", SEQNO_MAX).unwrap(), Lookup::Absent);
    let skipped =
        (0..1000).filter(|i| !reader.may_contain(format!("absent{i}").as_bytes())).count();
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
    let fs = SimFs::new();
    let reader = write_sst(&fs, 300, 200, 10);
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
    let fs = SimFs::new();
    let reader = write_sst(&fs, 50, 4096, 0);
    assert!(!reader.has_filter());
    assert!(reader.may_contain(b"anything"));
    assert_eq!(walk(&reader, Direction::Forward, None).len(), 100);
    let fs = SimFs::new();
    let empty = write_sst(&fs, 0, 4096, 10);
    assert!(walk(&empty, Direction::Reverse, None).is_empty());
    assert_eq!(empty.get(b"k", SEQNO_MAX).unwrap(), Lookup::Absent);
}

#[test]
fn damage_anywhere_is_an_error_never_a_panic_or_a_wrong_value() {
    let fs = SimFs::new();
    write_sst(&fs, 40, 128, 10);
    let original = fs.read_live(Path::new(PATH)).unwrap();
    for offset in 0..original.len() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let mut bytes = original.clone();
        bytes[offset] ^= 0x40;
        fs.create(Path::new(PATH)).unwrap().append(&bytes).unwrap();
        let Ok(reader) = SstReader::open(&fs, Path::new(PATH), None, 1) else { continue };
        let reader = Arc::new(reader);
        // Every byte is under a checksum, so a full verify must fail.
        assert!(reader.verify().is_err(), "flip at {offset} went unnoticed");
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
        assert!(
            SstReader::open(&fs, Path::new(PATH), None, 1).is_err(),
            "truncated to {len} opened"
        );
    }
}
