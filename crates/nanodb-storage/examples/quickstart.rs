//! Opens a database (default `./nanodb_data`, or the first argument), writes a few keys, reads
//! them back, scans a prefix and prints the engine's statistics. Run it twice: the second run
//! finds the first run's data.

use nanodb_storage::{Db, Options, WriteBatch, WriteOptions};

fn main() -> Result<(), nanodb_storage::Error> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "nanodb_data".to_string());
    let db = Db::open(&dir, Options::default())?;
    let runs = match db.get(b"meta:runs")? {
        Some(bytes) => String::from_utf8_lossy(&bytes).parse::<u64>().unwrap_or(0),
        None => 0,
    };
    println!("opened {dir}: this database has been opened by quickstart {runs} times before");

    let mut batch = WriteBatch::new();
    for (name, color) in [("apple", "red"), ("banana", "yellow"), ("cherry", "dark red")] {
        batch.put(format!("fruit:{name}"), color);
    }
    batch.put(b"meta:runs", (runs + 1).to_string());
    db.write(batch, WriteOptions::SYNC)?;

    let snapshot = db.snapshot()?;
    db.delete(b"fruit:banana", WriteOptions::SYNC)?;
    println!("banana now: {:?}", db.get(b"fruit:banana")?.map(String::from_utf8));
    println!("banana in the snapshot: {:?}", snapshot.get(b"fruit:banana")?.map(String::from_utf8));

    for entry in db.prefix(b"fruit:")?.rev() {
        let (key, value) = entry?;
        println!("{} = {}", String::from_utf8_lossy(&key), String::from_utf8_lossy(&value));
    }
    db.flush()?;
    println!("\n{}", db.stats());
    db.close()
}
