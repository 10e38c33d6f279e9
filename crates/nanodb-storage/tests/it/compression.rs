//! Block compression through the public API: a database changes codec between opens and still
//! reads every file written before; the bottommost codec applies to bottommost compactions; the
//! stats count bytes before and after compression.
//!
//! The codec of each SST is read from its raw bytes: the compression byte after the index
//! block (the footer gives its handle), which the writer compresses like the data blocks.

use nanodb_storage::fs::SimFs;
use nanodb_storage::{
    Compression, Db, Options, WriteOptions, MEMTABLE_SIZE_BYTES_MAX_MIN, ZSTD_LEVEL_DEFAULT,
    ZSTD_LEVEL_MAX,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const DIR: &str = "/db";
/// Size of the SST footer; it starts with the index block's handle (u64 offset, u32 size).
const FOOTER_LEN: usize = 52;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn options(sim: &SimFs, compression: Compression) -> Options {
    Options {
        fs: Arc::new(sim.clone()),
        memtable_size_bytes_max: MEMTABLE_SIZE_BYTES_MAX_MIN * 4,
        block_size_bytes: 1024,
        background_threads: 0,
        // No compaction until `compact_all`: each round's files stay as written.
        l0_compaction_trigger: 1000,
        l0_slowdown_trigger: 1000,
        l0_stop_trigger: 1000,
        compression,
        ..Default::default()
    }
}

/// Text-like values: compressible, and different for each key and round.
fn value(index: u64, round: u64) -> Vec<u8> {
    format!("round {round} value of key {index}: {}", "the quick brown fox ".repeat(4)).into_bytes()
}

fn write_round(db: &Db, model: &mut Model, round: u64) {
    for index in (round * 100)..(round * 100 + 600) {
        let key = format!("key{index:06}").into_bytes();
        let value = value(index, round);
        db.put(&key, &value, WriteOptions::NO_SYNC).unwrap();
        model.insert(key, value);
    }
    db.flush().unwrap();
}

fn check(db: &Db, model: &Model) {
    let scanned: Model = db.iter().unwrap().map(|entry| entry.unwrap()).collect();
    assert!(&scanned == model, "scan differs from the model");
    for (key, value) in model {
        assert_eq!(db.get(key).unwrap().as_ref(), Some(value));
    }
    db.verify().unwrap();
}

/// File name to the codec byte of its index block, for every SST in the directory.
fn index_codecs(sim: &SimFs) -> BTreeMap<String, u8> {
    let dir = Path::new(DIR);
    let mut codecs = BTreeMap::new();
    for name in sim.file_names(dir).into_iter().filter(|name| name.ends_with(".sst")) {
        let bytes = sim.read_live(&dir.join(&name)).unwrap();
        let footer = &bytes[bytes.len() - FOOTER_LEN..];
        let offset = u64::from_le_bytes(footer[..8].try_into().unwrap()) as usize;
        let size = u32::from_le_bytes(footer[8..12].try_into().unwrap()) as usize;
        codecs.insert(name, bytes[offset + size]);
    }
    codecs
}

#[test]
fn a_database_changes_codec_and_still_reads_its_old_files() {
    let sim = SimFs::new();
    let mut model = Model::new();
    let zstd = Compression::Zstd { level: ZSTD_LEVEL_DEFAULT };
    let mut seen = BTreeMap::new();
    for (round, (compression, codec)) in
        [(Compression::None, 0u8), (Compression::Lz4, 1), (zstd, 2), (Compression::None, 0)]
            .into_iter()
            .enumerate()
    {
        let db = Db::open(DIR, options(&sim, compression)).unwrap();
        check(&db, &model);
        write_round(&db, &mut model, round as u64);
        check(&db, &model);
        let stats = db.stats();
        if compression == Compression::None {
            assert_eq!(stats.compression_bytes_in, stats.compression_bytes_out, "{stats}");
        } else {
            assert!(stats.compression_bytes_out * 2 < stats.compression_bytes_in, "{stats}");
        }
        db.close().unwrap();
        // Files from earlier rounds keep their codec; this round's flushes used the new one.
        let codecs = index_codecs(&sim);
        let mut new_files = 0;
        for (name, file_codec) in &codecs {
            match seen.get(name) {
                Some(old) => assert_eq!(file_codec, old, "{name} changed codec"),
                None => {
                    assert_eq!(*file_codec, codec, "round {round}: {name}");
                    new_files += 1;
                }
            }
        }
        assert!(new_files > 0, "round {round} wrote no file");
        seen = codecs;
    }
    assert_eq!(seen.values().copied().collect::<std::collections::BTreeSet<u8>>().len(), 3);

    // `compact_all` is a bottommost compaction: everything is rewritten with the bottommost
    // codec (zstd at its highest level). Then reopen with LZ4.
    let options_bottom = Options {
        compression_bottommost: Some(Compression::Zstd { level: ZSTD_LEVEL_MAX }),
        ..options(&sim, Compression::None)
    };
    let db = Db::open(DIR, options_bottom).unwrap();
    db.compact_all().unwrap();
    check(&db, &model);
    db.close().unwrap();
    let codecs = index_codecs(&sim);
    assert!(codecs.values().all(|&codec| codec == 2), "{codecs:?}");
    let db = Db::open(DIR, options(&sim, Compression::Lz4)).unwrap();
    check(&db, &model);
    db.close().unwrap();
}

#[test]
fn invalid_zstd_levels_are_refused_at_open() {
    let sim = SimFs::new();
    for level in [0, ZSTD_LEVEL_MAX + 1] {
        let error = Db::open(DIR, options(&sim, Compression::Zstd { level })).err().unwrap();
        assert!(error.to_string().contains("Zstd level"), "{error}");
        let bottom = Options {
            compression_bottommost: Some(Compression::Zstd { level }),
            ..options(&sim, Compression::Lz4)
        };
        assert!(Db::open(DIR, bottom).is_err());
    }
}
