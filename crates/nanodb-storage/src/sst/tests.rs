//! SST round trips: writer then reader, point reads, cursors both ways, seeks, the bloom
//! filter, each codec, and damage to every byte of a small file; each with the index and
//! filter pinned, in a tiny block cache, and read for every lookup.

use super::format::{
    Footer, BLOCK_SIZE_BYTES_MAX, COMPRESSION_LZ4, COMPRESSION_NONE, COMPRESSION_ZSTD, FOOTER_LEN,
    SST_FORMAT_VERSION,
};
use super::{SstReader, SstWriter, SstWriterOptions};
use crate::cache::BlockCache;
use crate::fs::{Fs, SimFs};
use crate::iter::{Direction, InternalIterator};
use crate::key::{internal_key, parse_internal_key, ValueKind, KIND_FOR_SEEK, SEQNO_MAX};
use crate::memtable::Lookup;
use crate::options::{Compression, ZSTD_LEVEL_DEFAULT};
use std::path::Path;
use std::sync::Arc;

const PATH: &str = "/db/000001.sst";

const CODECS: [Compression; 3] =
    [Compression::None, Compression::Lz4, Compression::Zstd { level: ZSTD_LEVEL_DEFAULT }];

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
    SstReader::open(fs, Path::new(PATH), cache, 1, pin, false)
}

/// Keys key0000..key{count}, each with two versions: a put at seqno 2i+2 and an older one.
fn write_sst(
    fs: &SimFs,
    count: u32,
    block_size_bytes: usize,
    bloom_bits_per_key: u32,
    mode: Mode,
) -> Arc<SstReader> {
    write_sst_with(fs, count, block_size_bytes, bloom_bits_per_key, Compression::Lz4, mode)
}

fn write_sst_with(
    fs: &SimFs,
    count: u32,
    block_size_bytes: usize,
    bloom_bits_per_key: u32,
    compression: Compression,
    mode: Mode,
) -> Arc<SstReader> {
    let options = SstWriterOptions { block_size_bytes, bloom_bits_per_key, compression };
    write_sst_version(fs, count, options, mode, SST_FORMAT_VERSION)
}

/// `write_sst_with`, in format `version`.
fn write_sst_version(
    fs: &SimFs,
    count: u32,
    options: SstWriterOptions,
    mode: Mode,
    version: u32,
) -> Arc<SstReader> {
    fs.create_dir_all(Path::new("/db")).unwrap();
    let mut writer =
        SstWriter::create(fs, Path::new(PATH), options).unwrap().with_format_version(version);
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
    let (properties, _) = writer.finish().unwrap();
    assert_eq!(properties.entry_count, 2 * u64::from(count));
    Arc::new(open(fs, mode).unwrap())
}

#[test]
fn point_reads_see_the_right_version() {
    for compression in CODECS {
        for mode in MODES {
            let fs = SimFs::new();
            let reader = write_sst_with(&fs, 500, 256, 10, compression, mode);
            point_reads_see_the_right_version_with(reader);
        }
    }
}

#[test]
fn files_of_older_format_versions_still_read() {
    // Version 2: classic filters; version 3: no hash index in data blocks.
    for version in [2, 3, SST_FORMAT_VERSION] {
        for mode in MODES {
            let fs = SimFs::new();
            let options = SstWriterOptions {
                block_size_bytes: 256,
                bloom_bits_per_key: 10,
                compression: Compression::Lz4,
            };
            let reader = write_sst_version(&fs, 500, options, mode, version);
            let file = fs.open(Path::new(PATH)).unwrap();
            assert_eq!(Footer::read(file.as_ref(), Path::new(PATH)).unwrap().version, version);
            let (indexed, blocks) = reader.data_blocks_with_hash_index();
            assert!(blocks > 10);
            assert_eq!(indexed, if version >= 4 { blocks } else { 0 }, "version {version}");
            // Reads, and the filter ruling absent keys out, in either layout.
            point_reads_see_the_right_version_with(reader);
        }
    }
}

fn point_reads_see_the_right_version_with(reader: Arc<SstReader>) {
    for index in 0..500u32 {
        let key = format!("key{index:04}");
        let seqno = 2 * u64::from(index) + 2;
        let newest = reader.get(key.as_bytes(), SEQNO_MAX).unwrap();
        if index % 10 == 9 {
            assert!(matches!(newest, Lookup::Deleted(_)));
        } else {
            assert_eq!(
                newest,
                Lookup::Found(
                    crate::found::FoundValue::from(format!("new{index}").into_bytes()),
                    seqno
                )
            );
        }
        assert_eq!(
            reader.get(key.as_bytes(), seqno - 1).unwrap(),
            Lookup::Found(
                crate::found::FoundValue::from(format!("old{index}").into_bytes()),
                seqno - 1
            )
        );
        assert_eq!(reader.get(key.as_bytes(), seqno - 2).unwrap(), Lookup::Absent);
        assert!(reader.may_contain(key.as_bytes()).unwrap());
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
    for compression in CODECS {
        for mode in MODES {
            let fs = SimFs::new();
            cursors_walk_with(write_sst_with(&fs, 300, 200, 10, compression, mode));
        }
    }
}

fn cursors_walk_with(reader: Arc<SstReader>) {
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
    let pinned = SstReader::open(&fs, Path::new(PATH), Some(&cache), 1, true, false).unwrap();
    assert_eq!(cache.stats().inserts, 0, "a pinned reader caches only data blocks");
    assert_eq!(
        pinned.get(b"key0003", SEQNO_MAX).unwrap(),
        Lookup::Found(crate::found::FoundValue::from(b"new3".to_vec()), 8)
    );
    assert_eq!(cache.stats().inserts, 1);

    let cache = BlockCache::new(1 << 20);
    let reader = SstReader::open(&fs, Path::new(PATH), Some(&cache), 2, false, false).unwrap();
    let stats = cache.stats();
    assert_eq!((stats.inserts, stats.misses), (2, 2), "open loads index and filter: {stats:?}");
    assert!(reader.may_contain(b"key0003").unwrap());
    assert_eq!(
        reader.get(b"key0003", SEQNO_MAX).unwrap(),
        Lookup::Found(crate::found::FoundValue::from(b"new3".to_vec()), 8)
    );
    let stats = cache.stats();
    // Filter and index hit, the data block missed and was inserted.
    assert_eq!((stats.hits, stats.misses, stats.inserts), (2, 3, 3), "{stats:?}");
    // A reader opened again for the same file finds both in the cache.
    drop(reader);
    let again = SstReader::open(&fs, Path::new(PATH), Some(&cache), 2, false, false).unwrap();
    assert_eq!(cache.stats().inserts, 3);
    assert_eq!(Arc::new(again).verify().unwrap(), 80);
}

#[test]
fn damage_anywhere_is_an_error_never_a_panic_or_a_wrong_value() {
    for compression in CODECS {
        for mode in MODES {
            damage_anywhere_with(compression, mode);
        }
    }
}

fn damage_anywhere_with(compression: Compression, mode: Mode) {
    let fs = SimFs::new();
    write_sst_with(&fs, 40, 128, 10, compression, mode);
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
                Ok(Lookup::Found(value, _)) => {
                    assert_eq!(
                        value.as_slice(),
                        format!("new{index}").as_bytes(),
                        "flip at {offset}"
                    )
                }
                Ok(Lookup::Deleted(_)) => assert_eq!(index % 10, 9, "flip at {offset}"),
                // The bloom filter is not consulted by `get`; a flip there is caught by verify.
                Ok(Lookup::Absent) => panic!("flip at {offset}: {key} reported absent"),
                Ok(Lookup::Expiring(..)) => panic!("flip at {offset}: {key} read as expiring"),
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

/// The blocks of the file at `PATH`: (offset, stored size, codec byte), data blocks first, then
/// filter, index and properties.
fn blocks(fs: &SimFs) -> Vec<(usize, usize, u8)> {
    let bytes = fs.read_live(Path::new(PATH)).unwrap();
    let reader = SstReader::open(fs, Path::new(PATH), None, 1, true, false).unwrap();
    let footer = Footer::read(&*fs.open(Path::new(PATH)).unwrap(), Path::new(PATH)).unwrap();
    let mut handles = reader.data_block_handles();
    handles.extend([footer.filter, footer.index, footer.properties]);
    handles
        .into_iter()
        .map(|handle| {
            let (offset, size) = (handle.offset as usize, handle.size as usize);
            (offset, size, bytes[offset + size])
        })
        .collect()
}

#[test]
fn compressible_blocks_are_compressed_and_filter_and_properties_stay_raw() {
    for (compression, codec) in [
        (Compression::None, COMPRESSION_NONE),
        (Compression::Lz4, COMPRESSION_LZ4),
        (Compression::Zstd { level: 1 }, COMPRESSION_ZSTD),
    ] {
        let fs = SimFs::new();
        write_sst_with(&fs, 300, 1024, 10, compression, Mode::Pinned);
        let blocks = blocks(&fs);
        let (data, tail) = blocks.split_at(blocks.len() - 3);
        assert!(data.len() > 5, "{compression:?}");
        for &(offset, size, block_codec) in data {
            assert_eq!(block_codec, codec, "{compression:?} data block at {offset}");
            if codec != COMPRESSION_NONE {
                assert!(size < 1024 * 7 / 8, "{compression:?} block at {offset}: {size} bytes");
            }
        }
        assert_eq!(tail[0].2, COMPRESSION_NONE, "{compression:?} filter");
        assert_eq!(tail[1].2, codec, "{compression:?} index");
        assert_eq!(tail[2].2, COMPRESSION_NONE, "{compression:?} properties");
    }
}

#[test]
fn incompressible_data_blocks_are_stored_raw() {
    for compression in CODECS {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let options =
            SstWriterOptions { block_size_bytes: 4096, bloom_bits_per_key: 10, compression };
        let mut writer = SstWriter::create(&fs, Path::new(PATH), options).unwrap();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut values = Vec::new();
        for index in 0..64u64 {
            let value: Vec<u8> = (0..1000)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let key = internal_key(format!("key{index:04}").as_bytes(), 1, ValueKind::Put as u8);
            writer.add(&key, &value).unwrap();
            values.push(value);
        }
        let (_, bytes) = writer.finish().unwrap();
        let blocks = blocks(&fs);
        let data = &blocks[..blocks.len() - 3];
        assert!(data.iter().all(|&(_, _, codec)| codec == COMPRESSION_NONE), "{compression:?}");
        let stored: u64 = data.iter().map(|&(_, size, _)| size as u64).sum();
        assert!(bytes.bytes_in >= stored && bytes.bytes_out >= stored, "{compression:?} {bytes:?}");
        let reader = SstReader::open(&fs, Path::new(PATH), None, 1, true, false).unwrap();
        for (index, value) in values.iter().enumerate() {
            let key = format!("key{index:04}");
            assert_eq!(
                reader.get(key.as_bytes(), SEQNO_MAX).unwrap(),
                Lookup::Found(crate::found::FoundValue::from(value.clone()), 1)
            );
        }
    }
}

/// Rewrites the block at `offset` of the file at `PATH` with `stored` bytes (same size) and
/// `codec`, with a valid checksum.
fn rewrite_block(fs: &SimFs, offset: usize, codec: u8, stored: &[u8]) {
    let mut bytes = fs.read_live(Path::new(PATH)).unwrap();
    let end = offset + stored.len();
    bytes[offset..end].copy_from_slice(stored);
    bytes[end] = codec;
    let crc = crate::coding::crc32c(&bytes[offset..=end]);
    bytes[end + 1..end + 5].copy_from_slice(&crc.to_le_bytes());
    let mut file = fs.create(Path::new(PATH)).unwrap();
    file.append(&bytes).unwrap();
}

#[test]
fn bad_compressed_blocks_with_valid_checksums_are_corruption() {
    for compression in [Compression::Lz4, Compression::Zstd { level: 1 }] {
        let fs = SimFs::new();
        write_sst_with(&fs, 300, 1024, 10, compression, Mode::Pinned);
        let original = fs.read_live(Path::new(PATH)).unwrap();
        let (offset, size, codec) = blocks(&fs)[1];
        assert_ne!(codec, COMPRESSION_NONE);
        let stored = original[offset..offset + size].to_vec();
        let mut cases: Vec<(&str, u8, Vec<u8>)> = Vec::new();
        let mut garbage = stored.clone();
        for (index, byte) in garbage[4..].iter_mut().enumerate() {
            *byte = (index as u8).wrapping_mul(151) ^ 0x5a;
        }
        cases.push(("garbage payload", codec, garbage));
        let mut huge = stored.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        cases.push(("declared length over the maximum", codec, huge));
        let mut long = stored.clone();
        long[..4].copy_from_slice(&(1024u32 * 1024).to_le_bytes());
        cases.push(("declared length too long", codec, long));
        let mut over = stored.clone();
        over[..4].copy_from_slice(&(BLOCK_SIZE_BYTES_MAX as u32 + 1).to_le_bytes());
        cases.push(("declared length just over the maximum", codec, over));
        let mut short = stored.clone();
        short[..4].copy_from_slice(&1u32.to_le_bytes());
        cases.push(("declared length too short", codec, short));
        cases.push(("unknown codec", 3, stored.clone()));
        let other = if codec == COMPRESSION_LZ4 { COMPRESSION_ZSTD } else { COMPRESSION_LZ4 };
        cases.push(("wrong codec", other, stored.clone()));
        cases.push(("compressed bytes marked raw", COMPRESSION_NONE, stored));
        for (what, codec, bytes) in cases {
            let fs = SimFs::new();
            fs.create_dir_all(Path::new("/db")).unwrap();
            fs.create(Path::new(PATH)).unwrap().append(&original).unwrap();
            rewrite_block(&fs, offset, codec, &bytes);
            let reader =
                Arc::new(SstReader::open(&fs, Path::new(PATH), None, 1, true, false).unwrap());
            let error = reader.verify().unwrap_err();
            assert!(error.is_corruption(), "{compression:?} {what}: {error}");
            let text = error.to_string();
            assert!(
                text.contains("000001.sst") && text.contains(&format!("offset {offset}")),
                "{compression:?} {what}: {text}"
            );
        }
    }
}

#[test]
fn version_1_files_still_read() {
    // A version-1 file is a version-2 file (classic filter) whose blocks are all raw, with 1
    // in the footer.
    let fs = SimFs::new();
    let options = SstWriterOptions {
        block_size_bytes: 256,
        bloom_bits_per_key: 10,
        compression: Compression::None,
    };
    write_sst_version(&fs, 200, options, Mode::Pinned, 2);
    let mut bytes = fs.read_live(Path::new(PATH)).unwrap();
    let footer = bytes.len() - FOOTER_LEN;
    bytes[footer + 36..footer + 40].copy_from_slice(&1u32.to_le_bytes());
    let crc = crate::coding::crc32c(&bytes[footer..footer + 40]);
    bytes[footer + 40..footer + 44].copy_from_slice(&crc.to_le_bytes());
    fs.create(Path::new(PATH)).unwrap().append(&bytes).unwrap();
    let reader = Arc::new(SstReader::open(&fs, Path::new(PATH), None, 1, true, false).unwrap());
    assert_eq!(reader.verify().unwrap(), 400);
    assert_eq!(
        reader.get(b"key0123", SEQNO_MAX).unwrap(),
        Lookup::Found(crate::found::FoundValue::from(b"new123".to_vec()), 248)
    );
    // Its classic filter is read as classic: no key is ruled out.
    assert!((0..200).all(|index| reader.may_contain(format!("key{index:04}").as_bytes()).unwrap()));
}

#[test]
fn the_format_example_is_what_the_writer_writes() {
    // docs/format/sst.md, "Example": a flush of `put apple=red` (seqno 1), `delete pear` (2)
    // and `put apricot=orange` (3) in the default keyspace (prefix byte 00), default options.
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/db")).unwrap();
    let options = SstWriterOptions {
        block_size_bytes: 4096,
        bloom_bits_per_key: 10,
        compression: Compression::Lz4,
    };
    let mut writer = SstWriter::create(&fs, Path::new(PATH), options).unwrap();
    writer.add(&internal_key(b"\0apple", 1, ValueKind::Put as u8), b"red").unwrap();
    writer.add(&internal_key(b"\0apricot", 3, ValueKind::Put as u8), b"orange").unwrap();
    writer.add(&internal_key(b"\0pear", 2, ValueKind::Delete as u8), b"").unwrap();
    writer.finish().unwrap();
    let hex: String =
        fs.read_live(Path::new(PATH)).unwrap().iter().map(|byte| format!("{byte:02x}")).collect();
    let expected = concat!(
        // data block (offset 0, size 73) and its trailer
        "000e03006170706c650101000000000000726564",
        "030d067269636f740103000000000000",
        "6f72616e6765",
        "010c00706561720002000000000000",
        // restart[0], the hash index (6 buckets, their count), restart_count 1 | flag
        "00000000",
        "00ff00ffffff0600",
        "01000080",
        "00c599c2ce",
        // filter block (offset 78, size 65: one line and the probe count 7) and its trailer
        "2000800400000020000001000000000001000000080400000000000040400110",
        "1000000001000100081200000004800000000000000000000000000000000100",
        "07",
        "000f0113af",
        // index block (offset 148, stored size 31) and its trailer
        "24000000b9000d0c00706561720002000100c049000000000000000100000001",
        "01c7f4db",
        // properties block (offset 184, size 77) and its trailer
        "0300000000000000010000000000000001000000000000000300000000000000",
        "2b000000000000000900000000000000",
        "0e006170706c650101000000000000",
        "0d00706561720002000000000000",
        "00b5f456ca",
        // footer
        "94000000000000001f000000",
        "4e0000000000000041000000",
        "b8000000000000004d000000",
        "040000003284e919",
        "4e414e4f53535431",
    );
    assert_eq!(hex, expected);
}
