//! The runtime: many databases under one root, names, limits, drop, close, reopen.

use crate::common::{json, memory_runtime};
use nanodb::{Error, NanoDb, NanoDbOptions};

#[test]
fn databases_are_created_lazily_listed_and_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = NanoDb::open(dir.path(), NanoDbOptions::default()).unwrap();
    assert_eq!(runtime.databases().unwrap(), Vec::<String>::new());
    let app = runtime.database("app").unwrap();
    app.collection("notes").unwrap().insert(json(serde_json::json!({"text": "hi"}))).unwrap();
    runtime.create_database("other").unwrap();
    assert!(matches!(runtime.create_database("app"), Err(Error::AlreadyExists { .. })));
    assert!(matches!(runtime.open_database("missing"), Err(Error::NotFound { .. })));
    assert_eq!(runtime.databases().unwrap(), vec!["app", "other"]);

    runtime.drop_database("other").unwrap();
    assert_eq!(runtime.databases().unwrap(), vec!["app"]);
    assert!(!dir.path().join("other").exists(), "its directory is gone");
    assert!(matches!(runtime.drop_database("other"), Err(Error::NotFound { .. })));
    runtime.close().unwrap();
    assert!(matches!(runtime.database("app"), Err(Error::Closed)));
    assert!(matches!(app.collection("notes").unwrap().get("x"), Err(Error::Storage(_))));
    // Handles still alive keep the directory locked until they drop.
    drop(app);

    // Everything is there after a reopen; a database not open here can be dropped too.
    let runtime = NanoDb::open(dir.path(), NanoDbOptions::default()).unwrap();
    let notes = runtime.open_database("app").unwrap().open_collection("notes").unwrap();
    assert_eq!(notes.documents().unwrap().count(), 1);
    drop(notes);
    runtime.close().unwrap();
    let runtime = NanoDb::open(dir.path(), NanoDbOptions::default()).unwrap();
    runtime.drop_database("app").unwrap();
    assert_eq!(runtime.databases().unwrap(), Vec::<String>::new());
}

#[test]
fn invalid_names_are_clear_errors_and_never_touch_the_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let runtime = NanoDb::open(&root, NanoDbOptions::default()).unwrap();
    for bad in ["", "..", "../escape", "a/b", ".hidden", "with space", "nul\0", &"x".repeat(65)] {
        let error = runtime.database(bad).unwrap_err();
        assert!(matches!(error, Error::InvalidName { kind: "database", .. }), "{bad:?}: {error}");
    }
    assert!(!dir.path().join("escape").exists());
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
}

#[test]
fn the_open_database_cap_holds_at_its_boundary() {
    let options = NanoDbOptions { databases_open_max: 2, ..NanoDbOptions::default() };
    let runtime = NanoDb::in_memory(options).unwrap();
    runtime.database("one").unwrap();
    runtime.database("two").unwrap();
    runtime.database("one").unwrap(); // already open: no new slot
    let error = runtime.database("three").unwrap_err();
    assert!(
        matches!(error, Error::LimitExceeded { what: "open databases", limit: 2, .. }),
        "{error}"
    );
    runtime.drop_database("two").unwrap();
    runtime.database("three").unwrap();
    let zero = NanoDbOptions { databases_open_max: 0, ..NanoDbOptions::default() };
    assert!(NanoDb::in_memory(zero).is_err());
}

#[test]
fn databases_share_one_memory_budget() {
    let runtime = memory_runtime();
    for name in ["a", "b", "c"] {
        let notes = runtime.database(name).unwrap().collection("notes").unwrap();
        for index in 0..200 {
            notes.insert(json(serde_json::json!({"n": index, "pad": "p".repeat(200)}))).unwrap();
        }
    }
    let usage = runtime.memory_budget().usage();
    assert!(usage.memtable_bytes > 3 * 200 * 200, "{usage:?}");
    assert!(usage.memtable_bytes <= usage.memtable_share_bytes, "{usage:?}");
}

#[test]
fn bottommost_bloom_bits_reach_the_engine_and_are_checked_there() {
    use nanodb::DatabaseOptions;
    let with_bits = |bits| NanoDbOptions {
        database: DatabaseOptions {
            bloom_bits_per_key_bottommost: Some(bits),
            ..DatabaseOptions::default()
        },
        ..NanoDbOptions::default()
    };
    let runtime = NanoDb::in_memory(with_bits(nanodb_storage::BLOOM_BITS_PER_KEY_MAX)).unwrap();
    let notes = runtime.database("db").unwrap().collection("notes").unwrap();
    notes.insert(json(serde_json::json!({"n": 1}))).unwrap();
    // Refused when the runtime opens, before any database.
    let error =
        NanoDb::in_memory(with_bits(nanodb_storage::BLOOM_BITS_PER_KEY_MAX + 1)).unwrap_err();
    assert!(error.to_string().contains("bloom_bits_per_key_bottommost"), "{error}");
    // The small-memory preset: the defaults but for the last level's filters.
    let small = DatabaseOptions::small_memory();
    assert_eq!(
        small.bloom_bits_per_key_bottommost,
        Some(nanodb::BLOOM_BITS_PER_KEY_BOTTOMMOST_SMALL_MEMORY)
    );
    assert_eq!(small.block_size_bytes, nanodb::BLOCK_SIZE_BYTES_SMALL_MEMORY);
    assert_eq!(
        DatabaseOptions {
            bloom_bits_per_key_bottommost: None,
            block_size_bytes: nanodb_storage::BLOCK_SIZE_BYTES_DEFAULT,
            ..small
        },
        DatabaseOptions::default()
    );
}

#[test]
fn block_size_reaches_the_engine_and_is_checked_at_its_bounds() {
    use nanodb::DatabaseOptions;
    use nanodb_storage::{BLOCK_SIZE_BYTES_LIMIT, BLOCK_SIZE_BYTES_MIN};
    let with_size = |block_size_bytes| NanoDbOptions {
        database: DatabaseOptions { block_size_bytes, ..DatabaseOptions::default() },
        ..NanoDbOptions::default()
    };
    // The same 2,000 documents flushed with 4 KiB and 16 KiB blocks: a quarter of the index
    // entries, so less pinned (the filters are the same).
    let pinned_bytes = |block_size_bytes| {
        let runtime = NanoDb::in_memory(with_size(block_size_bytes)).unwrap();
        let database = runtime.database("db").unwrap();
        let notes = database.collection("notes").unwrap();
        for index in 0..2000 {
            notes.insert(json(serde_json::json!({"n": index, "pad": "p".repeat(400)}))).unwrap();
        }
        database.storage().flush().unwrap();
        let stats = database.storage().stats();
        assert!(stats.levels.iter().map(|level| level.files).sum::<u64>() > 0, "{stats:?}");
        (stats.table_cache_pinned_bytes, notes.documents().unwrap().count())
    };
    let (small_blocks, count) = pinned_bytes(4096);
    assert_eq!(count, 2000);
    let (large_blocks, count) = pinned_bytes(16 * 1024);
    assert_eq!(count, 2000);
    assert!(large_blocks + 1000 < small_blocks, "{large_blocks} against {small_blocks}");
    // Both bounds open; one past either is refused when the runtime opens.
    for size in [BLOCK_SIZE_BYTES_MIN, BLOCK_SIZE_BYTES_LIMIT] {
        let runtime = NanoDb::in_memory(with_size(size)).unwrap();
        let notes = runtime.database("db").unwrap().collection("notes").unwrap();
        notes.insert(json(serde_json::json!({"n": 1}))).unwrap();
    }
    for size in [BLOCK_SIZE_BYTES_MIN - 1, BLOCK_SIZE_BYTES_LIMIT + 1] {
        let error = NanoDb::in_memory(with_size(size)).unwrap_err();
        assert!(error.to_string().contains("block_size_bytes"), "{size}: {error}");
    }
}
