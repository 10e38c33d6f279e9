//! The name table: ids handed out in order and read back after a reopen, both limits at their
//! boundary, and malformed stored entries refused with an error naming them.

use super::*;
use nanodb_storage::{Options, WriteOptions};

const CATALOG: &str = "_catalog";

/// A database on a fresh in-memory filesystem, and the options that reopen it.
fn open() -> (Db, Options) {
    let options = Options::in_memory();
    (Db::open("/names", options.clone()).unwrap(), options)
}

fn table(db: &Db) -> FieldNames {
    FieldNames::load(db.clone(), db.keyspace(CATALOG).unwrap(), false).unwrap()
}

fn id_of(names: &FieldNames, name: &str) -> Option<u16> {
    names.ids().get(name.as_bytes())
}

#[test]
fn names_get_ids_in_order_once_each_and_come_back_after_a_reopen() {
    let (db, options) = open();
    let names = table(&db);
    names.intern(&[b"title", b"body", b"title"]).unwrap();
    names.intern(&[b"body", b"tags"]).unwrap();
    assert_eq!(id_of(&names, "title"), Some(0));
    assert_eq!(id_of(&names, "body"), Some(1));
    assert_eq!(id_of(&names, "tags"), Some(2));
    assert_eq!(names.name(2), Some("tags"));
    assert_eq!(names.name(3), None);
    assert_eq!(names.name(INTERNED_NAMES_MAX + 5), None, "past the table: none, no panic");
    drop(names);
    db.close().unwrap();
    let db = Db::open("/names", options).unwrap();
    let names = table(&db);
    assert_eq!(
        (names.name(0), names.name(1), names.name(2)),
        (Some("title"), Some("body"), Some("tags"))
    );
    names.intern(&[b"next"]).unwrap();
    assert_eq!(id_of(&names, "next"), Some(3), "ids continue after the last stored one");
}

#[test]
fn names_up_to_the_length_limit_are_interned_and_longer_ones_are_not() {
    let (db, _options) = open();
    let names = table(&db);
    let longest = "n".repeat(INTERNED_NAME_BYTES_MAX);
    let too_long = "n".repeat(INTERNED_NAME_BYTES_MAX + 1);
    names.intern(&[longest.as_bytes(), too_long.as_bytes(), b"\xff\xfe"]).unwrap();
    assert_eq!(id_of(&names, &longest), Some(0));
    assert_eq!(id_of(&names, &too_long), None);
    assert_eq!(names.ids().next, 1, "text that is not UTF-8 is never interned");
}

#[test]
fn the_table_holds_at_most_its_limit_of_names() {
    let (db, options) = open();
    let names = table(&db);
    let all: Vec<String> = (0..INTERNED_NAMES_MAX + 3).map(|i| format!("f{i}")).collect();
    let (first, rest) = all.split_at(INTERNED_NAMES_MAX - 1);
    names.intern(&first.iter().map(|name| name.as_bytes()).collect::<Vec<_>>()).unwrap();
    assert_eq!(names.ids().room(), 1);
    names.intern(&rest.iter().map(|name| name.as_bytes()).collect::<Vec<_>>()).unwrap();
    assert_eq!(names.ids().room(), 0);
    let last = &all[INTERNED_NAMES_MAX - 1];
    assert_eq!(id_of(&names, last), Some((INTERNED_NAMES_MAX - 1) as u16), "the last place");
    assert_eq!(id_of(&names, &all[INTERNED_NAMES_MAX]), None, "one past the limit");
    drop(names);
    db.close().unwrap();
    let db = Db::open("/names", options).unwrap();
    let names = table(&db);
    assert_eq!(names.ids().next, INTERNED_NAMES_MAX);
    assert_eq!(names.name(INTERNED_NAMES_MAX - 1), Some(last.as_str()));
}

#[test]
fn malformed_stored_entries_are_corruption_errors_naming_them() {
    let too_long = "x".repeat(INTERNED_NAME_BYTES_MAX + 1);
    let limit = format!("n/{INTERNED_NAMES_MAX}");
    let cases: [(&str, &[u8]); 8] = [
        ("n/seven", b"name"),
        ("n/07", b"name"),
        ("n/+5", b"name"),
        ("n/", b"name"),
        (&limit, b"name"),
        ("n/3", b"\xff"),
        ("n/4", too_long.as_bytes()),
        ("n/6", b""),
    ];
    for (key, value) in cases {
        let (db, _options) = open();
        let catalog = db.keyspace(CATALOG).unwrap();
        catalog.put(key, value, WriteOptions::NO_SYNC).unwrap();
        let error = FieldNames::load(db.clone(), catalog, false).unwrap_err();
        match &error {
            Error::Corruption { detail, .. } => assert!(detail.contains(key), "{key}: {error}"),
            other => panic!("{key}: {other:?}"),
        }
    }
}

#[test]
fn a_name_stored_under_two_ids_reads_under_both_and_writes_use_the_first() {
    let (db, _options) = open();
    let catalog = db.keyspace(CATALOG).unwrap();
    catalog.put("n/5", "twice", WriteOptions::NO_SYNC).unwrap();
    catalog.put("n/2", "twice", WriteOptions::NO_SYNC).unwrap();
    let names = FieldNames::load(db.clone(), catalog, false).unwrap();
    assert_eq!((names.name(2), names.name(5)), (Some("twice"), Some("twice")));
    assert_eq!(id_of(&names, "twice"), Some(2));
    names.intern(&[b"new"]).unwrap();
    assert_eq!(id_of(&names, "new"), Some(6), "after the largest id, gaps left alone");
}

#[test]
fn a_failed_entry_write_hands_out_no_id_and_poisons_until_a_reopen() {
    let sim = nanodb_storage::fs::SimFs::new();
    let options = Options { fs: std::sync::Arc::new(sim.clone()), ..Options::default() };
    let db = Db::open("/names", options).unwrap();
    let names = table(&db);
    sim.fail_after(nanodb_storage::fs::FaultKind::Append, 0, false);
    assert!(names.intern(&[b"title"]).is_err());
    assert_eq!((id_of(&names, "title"), names.name(0)), (None, None));
    assert_eq!(names.ids().room(), INTERNED_NAMES_MAX, "the id was not used up");
    // A failed wal write poisons the database: nothing more is written until a reopen.
    assert!(names.intern(&[b"title"]).is_err());
    assert_eq!(id_of(&names, "title"), None);
    drop(names);
    drop(db);
    let db = Db::open("/names", Options { fs: std::sync::Arc::new(sim), ..Options::default() });
    let names = table(&db.unwrap());
    assert_eq!(names.ids().room(), INTERNED_NAMES_MAX, "nothing of the failed write came back");
    names.intern(&[b"title"]).unwrap();
    assert_eq!(id_of(&names, "title"), Some(0));
}

#[test]
fn threads_interning_overlapping_names_give_each_name_one_id_and_no_gaps() {
    let (db, options) = open();
    let names = std::sync::Arc::new(table(&db));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let names = std::sync::Arc::clone(&names);
            std::thread::spawn(move || {
                for round in 0..50 {
                    let batch: Vec<String> =
                        (0..5).map(|i| format!("name{}", (round * 3 + t + i) % 120)).collect();
                    names
                        .intern(&batch.iter().map(|name| name.as_bytes()).collect::<Vec<_>>())
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let count = names.ids().next;
    assert_eq!(count, 120, "every name of the pool met once");
    let seen: std::collections::HashSet<&str> =
        (0..count).map(|id| names.name(id).unwrap()).collect();
    assert_eq!(seen.len(), count, "every id names a different name, ids 0..{count} all used");
    for name in (0..120).map(|i| format!("name{i}")) {
        let id = id_of(&names, &name).unwrap();
        assert_eq!(names.name(usize::from(id)), Some(name.as_str()), "{name} and its id agree");
    }
    let expected: Vec<(usize, String)> =
        (0..count).map(|id| (id, names.name(id).unwrap().to_string())).collect();
    drop(names);
    db.close().unwrap();
    let db = Db::open("/names", options).unwrap();
    let names = table(&db);
    for (id, name) in expected {
        assert_eq!(names.name(id), Some(name.as_str()));
        assert_eq!(id_of(&names, &name), Some(id as u16));
    }
}
