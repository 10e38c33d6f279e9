//! The block cache through the public API: bounded, shared by databases, counted in stats.

use nanodb_storage::{BlockCache, Db, Options, WriteOptions};

fn fill(db: &Db, keys: u32) {
    for index in 0..keys {
        db.put(format!("key{index:06}"), vec![index as u8; 200], WriteOptions::NO_SYNC).unwrap();
    }
    db.flush().unwrap();
}

#[test]
fn databases_share_one_bounded_cache() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cache = BlockCache::new(4 << 20);
    let options = Options { block_cache: Some(cache.clone()), ..Default::default() };
    let a = Db::open(dir_a.path(), options.clone()).unwrap();
    let b = Db::open(dir_b.path(), options).unwrap();
    fill(&a, 20_000);
    fill(&b, 20_000);
    for round in 0..2 {
        for index in (0..20_000u32).step_by(97) {
            let key = format!("key{index:06}");
            assert_eq!(a.get(&key).unwrap().unwrap()[0], index as u8, "round {round}");
            assert_eq!(b.get(&key).unwrap().unwrap()[0], index as u8, "round {round}");
        }
    }
    let stats = cache.stats();
    assert!(stats.usage_bytes > 0 && stats.usage_bytes <= stats.capacity_bytes, "{stats:?}");
    assert!(stats.hits > 0 && stats.misses > 0, "{stats:?}");
    // Both databases report the one shared cache.
    assert_eq!(a.stats().block_cache.unwrap().capacity_bytes, 4 << 20);
    assert_eq!(b.stats().block_cache.unwrap().inserts, cache.stats().inserts);
    // A full scan of data larger than the cache keeps it within its bound.
    assert_eq!(a.iter().unwrap().count(), 20_000);
    assert!(cache.usage_bytes() <= 4 << 20);
}

#[test]
fn a_zero_sized_cache_means_no_cache() {
    let dir = tempfile::tempdir().unwrap();
    let db =
        Db::open(dir.path(), Options { block_cache_size_bytes: 0, ..Default::default() }).unwrap();
    fill(&db, 1000);
    assert_eq!(db.get("key000007").unwrap().unwrap()[0], 7);
    assert!(db.stats().block_cache.is_none());
}

#[test]
fn compaction_reads_do_not_fill_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let db =
        Db::open(dir.path(), Options { block_cache_size_bytes: 4 << 20, ..Default::default() })
            .unwrap();
    for round in 0..4u32 {
        for index in (round..20_000).step_by(4) {
            db.put(format!("key{index:06}"), vec![index as u8; 200], WriteOptions::NO_SYNC)
                .unwrap();
        }
        db.flush().unwrap();
    }
    db.compact_all().unwrap();
    let stats = db.stats();
    assert!(stats.compaction_bytes_read > 0, "nothing was compacted: {stats:?}");
    let cache = stats.block_cache.unwrap();
    assert_eq!((cache.inserts, cache.usage_bytes), (0, 0), "{cache:?}");
    // Reads still fill it.
    assert_eq!(db.get("key000007").unwrap().unwrap()[0], 7);
    assert_eq!(db.stats().block_cache.unwrap().inserts, 1);
}
