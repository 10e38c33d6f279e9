//! Background I/O through the public API: the rate limit on flushes and compactions.

use nanodb_storage::{Db, Options, WriteOptions};
use std::time::{Duration, Instant};

fn fill(db: &Db, keys: u32, value_len: usize) {
    for index in 0..keys {
        db.put(format!("key{index:06}"), vec![index as u8; value_len], WriteOptions::NO_SYNC)
            .unwrap();
    }
}

#[test]
fn the_rate_limit_paces_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let rate = 1u64 << 20;
    let options = Options { rate_limit_bytes_per_sec: rate, ..Default::default() };
    let db = Db::open(dir.path(), options).unwrap();
    fill(&db, 600, 1000);
    let began = Instant::now();
    db.flush().unwrap();
    let elapsed = began.elapsed();
    let stats = db.stats();
    assert!(stats.rate_limit_bytes >= stats.flush_bytes_written, "{stats}");
    // The bucket starts with 10 ms of credit; only a lower bound is safe on a busy machine.
    let expected = Duration::from_secs_f64(stats.flush_bytes_written as f64 / rate as f64)
        .saturating_sub(Duration::from_millis(10));
    assert!(elapsed >= expected.mul_f64(0.95), "{elapsed:?} < {expected:?}");
    let waited = Duration::from_micros(stats.rate_limit_wait_micros);
    assert!(waited >= expected.mul_f64(0.95), "waited {waited:?} < {expected:?}");
    assert_eq!(db.get("key000599").unwrap().unwrap().len(), 1000);
}

#[test]
fn closing_does_not_wait_for_a_slow_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    // At 1 KiB/s this flush would take about ten minutes.
    let options = Options { rate_limit_bytes_per_sec: 1024, ..Default::default() };
    let db = Db::open(dir.path(), options).unwrap();
    fill(&db, 600, 1000);
    let flusher = {
        let db = db.clone();
        std::thread::spawn(move || db.flush())
    };
    std::thread::sleep(Duration::from_millis(200));
    let began = Instant::now();
    db.close().unwrap();
    assert!(began.elapsed() < Duration::from_secs(60), "close took {:?}", began.elapsed());
    // The flush either finished at full speed or saw the database close.
    let _ = flusher.join().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for index in (0..600u32).step_by(7) {
        assert_eq!(db.get(format!("key{index:06}")).unwrap().unwrap()[0], index as u8);
    }
}
