//! The stored form: random documents come back byte for byte with the layout `map_layout`
//! finds, a filter's fields decode as from the plain map, and damaged or forged stored bytes
//! are errors, never panics (seed `NANODB_TEST_SEED`, printed on failure).

use super::*;
use crate::field_names::{INTERNED_NAMES_MAX, INTERNED_NAME_BYTES_MAX};
use crate::test_support::{seed_or, Rng};
use crate::value::{Date, Value};
use nanodb_storage::{Db, Options};

fn table() -> FieldNames {
    let db = Db::open("/stored", Options::in_memory()).unwrap();
    let catalog = db.keyspace("_catalog").unwrap();
    FieldNames::load(db, catalog, false).unwrap()
}

/// Names that sort just before, at and after `id`, short and too long to intern.
fn name_pool() -> Vec<String> {
    let mut names: Vec<String> =
        ["", "a", "i", "ia", "ic", "id0", "idx", "ie", "j", "created", "updated", "zz", "é"]
            .iter()
            .map(|name| name.to_string())
            .collect();
    names.push("l".repeat(INTERNED_NAME_BYTES_MAX));
    names.push("l".repeat(INTERNED_NAME_BYTES_MAX + 1));
    names.extend((0..20).map(|i| format!("field{i}")));
    names
}

fn random_value(rng: &mut Rng, names: &[String], depth: usize) -> Value {
    let kinds = if depth >= 4 { 6 } else { 8 };
    match rng.below(kinds) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 1),
        2 => Value::Int(rng.below(1 << 20) as i64 - (1 << 19)),
        3 => Value::Float(rng.below(1000) as f64 / 7.0),
        4 => Value::String("é".repeat(rng.below(40))),
        5 => Value::Date(Date::from_unix_ms(rng.below(1 << 40) as i64).unwrap()),
        6 => Value::Array((0..rng.below(4)).map(|_| random_value(rng, names, depth + 1)).collect()),
        _ => Value::Object(random_map(rng, names, depth + 1)),
    }
}

fn random_map(rng: &mut Rng, names: &[String], depth: usize) -> Map {
    let count = rng.below(if depth == 0 { 18 } else { 5 });
    (0..count)
        .map(|_| (names[rng.below(names.len())].clone(), random_value(rng, names, depth)))
        .collect()
}

/// A document map as a write stores it: the fields, with `id`.
fn document(rng: &mut Rng, names: &[String]) -> (String, Vec<u8>) {
    let mut fields = random_map(rng, names, 0);
    fields.remove(FIELD_ID);
    let id = format!("doc{}", rng.below(1_000_000));
    fields.insert(FIELD_ID.to_string(), Value::String(id.clone()));
    (id, msgpack::to_bytes(&Value::Object(fields)))
}

/// Random documents from one seed, each with its map and its stored form in one table.
struct Documents {
    rng: Rng,
    names: FieldNames,
    pool: Vec<String>,
}

impl Documents {
    fn new(seed: u64) -> Documents {
        Documents { rng: Rng(seed), names: table(), pool: name_pool() }
    }

    /// The next document: its id, its map and its stored form.
    fn next(&mut self) -> (String, Vec<u8>, Vec<u8>) {
        let (id, map) = document(&mut self.rng, &self.pool);
        let stored = compact(&map, &id, &self.names).unwrap();
        (id, map, stored)
    }
}

fn run_seeded(name: &str, default_seed: u64, test: impl Fn(u64) + std::panic::RefUnwindSafe) {
    let seed = seed_or(default_seed);
    if std::panic::catch_unwind(|| test(seed)).is_err() {
        panic!("{name} failed with NANODB_TEST_SEED={seed}");
    }
}

#[test]
fn random_documents_come_back_byte_for_byte_with_their_layout() {
    run_seeded("round trip", 0x5704ed, |seed| {
        let mut documents = Documents::new(seed);
        for case in 0..2_000 {
            let (id, map, stored) = documents.next();
            let names = &documents.names;
            assert!(is_stored_form(&stored));
            let expanded = expand(&stored, &id, names).unwrap();
            assert_eq!(expanded.map, map, "case {case}");
            let layout = msgpack::map_layout(&map).unwrap();
            assert_eq!(expanded.spans, layout, "case {case}: the spans map_layout finds");
            // Interned names take one byte each: never longer than the map, less `id`.
            assert!(stored.len() + 3 + id.len() <= map.len() + HEADER_BYTES, "case {case}");
        }
    });
}

#[test]
fn names_past_the_table_limit_are_spelled_out_and_still_come_back() {
    let names = table();
    let filler: Vec<String> = (0..INTERNED_NAMES_MAX).map(|i| format!("filler{i}")).collect();
    names.intern(&filler.iter().map(|name| name.as_bytes()).collect::<Vec<_>>()).unwrap();
    let fields: Map = [
        (FIELD_ID.to_string(), Value::String("x".into())),
        ("filler4095".to_string(), Value::Int(1)),
        ("unlisted".to_string(), Value::Int(2)),
    ]
    .into_iter()
    .collect();
    let map = msgpack::to_bytes(&Value::Object(fields));
    let stored = compact(&map, "x", &names).unwrap();
    // The last id (4095) is a uint 16; the new name is spelled out.
    assert_eq!(&stored[..6], &[STORED_MARKER, STORED_VERSION, 0x82, 0xcd, 0x0f, 0xff]);
    assert!(stored.windows(8).any(|window| window == b"unlisted"));
    assert_eq!(expand(&stored, "x", &names).unwrap().map, map);
}

#[test]
fn a_filter_reads_the_same_fields_from_the_stored_form() {
    run_seeded("decode_fields", 0xf1e1d5, |seed| {
        let mut documents = Documents::new(seed);
        for case in 0..500 {
            let (id, map, stored) = documents.next();
            let Documents { rng, names, pool } = &mut documents;
            let wanted: Vec<&str> =
                (0..3).map(|_| pool[rng.below(pool.len())].as_str()).chain([FIELD_ID]).collect();
            assert_eq!(
                decode_fields(&stored, &id, &wanted, names),
                msgpack::decode_fields(&map, &wanted),
                "case {case}: {wanted:?}"
            );
        }
    });
}

#[test]
fn damaged_stored_bytes_are_errors_never_panics() {
    run_seeded("damage", 0xda3a6e, |seed| {
        let mut documents = Documents::new(seed);
        for _ in 0..100 {
            let (id, _, stored) = documents.next();
            let Documents { rng, names, .. } = &mut documents;
            for end in 0..stored.len() {
                assert!(expand(&stored[..end], &id, names).is_err(), "cut at {end}");
                let _ = decode_fields(&stored[..end], &id, &[FIELD_ID, "a"], names);
            }
            for at in 0..stored.len() {
                let mut damaged = stored.clone();
                damaged[at] ^= 1 << rng.below(8);
                // What expand accepts and lays out, map_layout and decode accept alike.
                // (Names out of order are left to the whole decode, which may refuse them.)
                if let Ok(Expanded { map, spans: Some(spans) }) = expand(&damaged, &id, names) {
                    let layout = msgpack::map_layout(&map).expect("map_layout accepts it too");
                    assert_eq!(Some(spans), layout, "at {at}");
                    msgpack::decode(&map).expect("decode accepts it too");
                }
                let _ = decode_fields(&damaged, &id, &["a", "field3"], names);
            }
        }
    });
}

#[test]
fn forged_stored_forms_are_errors_that_say_what_is_wrong() {
    let names = table();
    names.intern(&[b"a"]).unwrap();
    let error = |stored: &[u8]| expand(stored, "x", &names).unwrap_err().detail;
    assert!(error(&[STORED_MARKER, 1, 0x81, 0x05, 0x01]).contains("name id 5"));
    assert!(error(&[STORED_MARKER, 2, 0x80]).contains("version 2"));
    assert!(error(&[STORED_MARKER]).contains("truncated"));
    assert!(error(&[STORED_MARKER, 1, 0x81, 0xa2, b'i', b'd', 0x01]).contains("id field"));
    assert!(error(&[STORED_MARKER, 1, 0x91, 0x01]).contains("not a map"));
    assert!(error(&[STORED_MARKER, 1, 0x81, 0xc3, 0x01]).contains("not a string"));
    assert!(error(&[STORED_MARKER, 1, 0x80, 0x00]).contains("after the value"));
    // A valid stored form reads.
    let expanded = expand(&[STORED_MARKER, 1, 0x81, 0x00, 0x07], "x", &names).unwrap();
    let value = msgpack::decode(&expanded.map).unwrap();
    assert_eq!(value, Value::from(serde_json::json!({"a": 7, "id": "x"})));
}

#[test]
fn a_stored_form_that_would_grow_past_the_size_limit_is_refused() {
    let names = table();
    let long = "n".repeat(INTERNED_NAME_BYTES_MAX);
    names.intern(&[long.as_bytes()]).unwrap();
    // Each two-byte entry (id 0, value 0) spells out 64 more bytes.
    let entries = DOCUMENT_SIZE_BYTES_MAX / INTERNED_NAME_BYTES_MAX + 1;
    let mut stored = vec![STORED_MARKER, STORED_VERSION, 0xdf];
    stored.extend_from_slice(&(entries as u32).to_be_bytes());
    for _ in 0..entries {
        stored.extend_from_slice(&[0x00, 0x00]);
    }
    let error = expand(&stored, "x", &names).unwrap_err();
    assert!(error.detail.contains("grows past"), "{error}");
    // Just under the limit, the same repeated name reads (as a map to decode whole).
    let fits = (DOCUMENT_SIZE_BYTES_MAX - 64) / (INTERNED_NAME_BYTES_MAX + 3);
    let mut stored = vec![STORED_MARKER, STORED_VERSION, 0xdf];
    stored.extend_from_slice(&(fits as u32).to_be_bytes());
    for _ in 0..fits {
        stored.extend_from_slice(&[0x00, 0x00]);
    }
    let expanded = expand(&stored, "x", &names).unwrap();
    assert!(expanded.spans.is_none(), "a repeated name: not in ascending order");
    assert!(expanded.map.len() <= DOCUMENT_SIZE_BYTES_MAX);
    // The same names one level down, under top-level field 0: refused by expand, and a
    // filter reading that field gets nothing (the whole decode then reports the error).
    let mut nested = vec![STORED_MARKER, STORED_VERSION, 0x81, 0x00, 0xdf];
    nested.extend_from_slice(&(entries as u32).to_be_bytes());
    for _ in 0..entries {
        nested.extend_from_slice(&[0x00, 0x00]);
    }
    let error = expand(&nested, "x", &names).unwrap_err();
    assert!(error.detail.contains("grows past"), "{error}");
    assert_eq!(decode_fields(&nested, "x", &[long.as_str()], &names), None);
    assert!(decode_fields(&nested, "x", &["other"], &names).is_some(), "not read: not refused");
}

#[test]
fn the_earlier_plain_form_is_not_taken_for_the_stored_form() {
    let map = msgpack::to_bytes(&Value::from(serde_json::json!({"id": "x", "a": 1})));
    assert!(!is_stored_form(&map));
    assert!(msgpack::decode(&[STORED_MARKER]).is_err(), "0xc1 is never a MessagePack value");
}

#[test]
fn a_name_repeated_through_a_document_is_interned_once_and_new_names_stop_at_the_room_left() {
    let names = table();
    let items: Vec<serde_json::Value> = (0..1000).map(|i| serde_json::json!({"x": i})).collect();
    let map = msgpack::to_bytes(&Value::from(serde_json::json!({"id": "d", "items": items})));
    let stored = compact(&map, "d", &names).unwrap();
    assert_eq!(names.ids().room(), INTERNED_NAMES_MAX - 2, "items and x, once each");
    assert_eq!(expand(&stored, "d", &names).unwrap().map, map);
    // Room for one more name: the first new one met gets it, the other is spelled out.
    let filler: Vec<String> = (0..INTERNED_NAMES_MAX - 3).map(|i| format!("f{i}")).collect();
    names.intern(&filler.iter().map(|name| name.as_bytes()).collect::<Vec<_>>()).unwrap();
    let map = msgpack::to_bytes(&Value::from(serde_json::json!({"id": "e", "p": 1, "q": 2})));
    let stored = compact(&map, "e", &names).unwrap();
    assert_eq!(names.ids().room(), 0);
    assert_eq!(names.name(INTERNED_NAMES_MAX - 1), Some("p"));
    assert!(stored.ends_with(&[0xa1, b'q', 2]), "{stored:02x?}");
    assert_eq!(expand(&stored, "e", &names).unwrap().map, map);
}

/// A stored form with every name spelled out: the header, then `map` (which must not hold
/// `id`) as the plain encoder writes it.
fn spelled_out(map: &Value) -> Vec<u8> {
    [&[STORED_MARKER, STORED_VERSION][..], &msgpack::to_bytes(map)].concat()
}

#[test]
fn expand_checks_what_map_layout_checks_at_each_limit() {
    let names = table();
    let nested = |depth: usize| {
        let mut value = Value::Int(1);
        for _ in 0..depth {
            value = Value::Array(vec![value]);
        }
        Value::Object([("a".into(), value)].into())
    };
    // Depth: the top map is depth 0, so 63 arrays inside fit and 64 do not.
    let fits = spelled_out(&nested(crate::value::NESTING_DEPTH_MAX - 1));
    assert!(expand(&fits, "x", &names).is_ok());
    let deep = spelled_out(&nested(crate::value::NESTING_DEPTH_MAX));
    assert!(expand(&deep, "x", &names).unwrap_err().detail.contains("nested deeper"));
    // Spelled-out names: up to FIELD_NAME_LEN_MAX bytes.
    let named = |len: usize| spelled_out(&Value::Object([("n".repeat(len), Value::Null)].into()));
    assert!(expand(&named(crate::value::FIELD_NAME_LEN_MAX), "x", &names).is_ok());
    let long = expand(&named(crate::value::FIELD_NAME_LEN_MAX + 1), "x", &names).unwrap_err();
    assert!(long.detail.contains("longer than"), "{long}");
    // Invalid UTF-8 in a value and in a spelled-out name.
    let bad_value = [STORED_MARKER, STORED_VERSION, 0x81, 0xa1, b'a', 0xa1, 0xff];
    assert!(expand(&bad_value, "x", &names).unwrap_err().detail.contains("UTF-8"));
    let bad_name = [STORED_MARKER, STORED_VERSION, 0x81, 0xa1, 0xff, 0xc0];
    assert!(expand(&bad_name, "x", &names).unwrap_err().detail.contains("UTF-8"));
}

#[test]
fn compact_refuses_a_map_whose_id_is_not_the_key() {
    let names = table();
    let map = msgpack::to_bytes(&Value::from(serde_json::json!({"id": "x", "a": 1})));
    assert!(compact(&map, "x", &names).is_ok());
    assert!(compact(&map, "y", &names).is_err());
    let no_id = msgpack::to_bytes(&Value::from(serde_json::json!({"a": 1})));
    assert!(compact(&no_id, "x", &names).is_err());
    // Two ids (never from this encoder): refused, not stored as an id field expand refuses.
    let twice = [0x82, 0xa2, b'i', b'd', 0xa1, b'x', 0xa2, b'i', b'd', 0xa1, b'x'];
    assert!(compact(&twice, "x", &names).is_err());
}

#[test]
fn documents_from_the_stored_form_are_checked_like_those_from_the_plain_form() {
    use crate::document::Document;
    let names = table();
    let context = || "test".to_string();
    let created = Value::Date(Date::from_unix_ms(1_000).unwrap());
    let complete: Map = [
        ("b".into(), Value::Int(2)),
        ("created".into(), created.clone()),
        ("id".into(), Value::String("x".into())),
        ("updated".into(), created.clone()),
    ]
    .into();
    let stored =
        compact(&msgpack::to_bytes(&Value::Object(complete.clone())), "x", &names).unwrap();
    let document = Document::from_stored(stored, "x", &names, context).unwrap();
    assert_eq!(document.fields(), &complete);
    assert!(document.map_bytes().is_some(), "laid out, not decoded whole");
    // Without `created`: refused, as a plain map without it is.
    let mut partial = complete.clone();
    partial.remove("created");
    partial.remove("id");
    let stored = spelled_out(&Value::Object(partial));
    let error = Document::from_stored(stored, "x", &names, context).unwrap_err();
    assert!(matches!(error, crate::Error::Corruption { .. }), "{error}");
    // Names out of order (another encoder's): decoded whole, same fields.
    let mut unsorted = vec![STORED_MARKER, STORED_VERSION, 0x84];
    for (name, value) in [("updated", &created), ("b", &Value::Int(2)), ("created", &created)] {
        msgpack::encode_str(name, &mut unsorted);
        msgpack::encode(value, &mut unsorted);
    }
    unsorted.extend_from_slice(&[0xa1, b'a', 0x01]);
    let document = Document::from_stored(unsorted, "x", &names, context).unwrap();
    let mut expected = complete.clone();
    expected.insert("a".into(), Value::Int(1));
    assert_eq!(document.fields(), &expected);
    // A name repeated in a nested map: an error, as for the plain form.
    let mut repeated = vec![STORED_MARKER, STORED_VERSION, 0x84];
    for (name, value) in [("b", &Value::Int(2)), ("created", &created), ("updated", &created)] {
        msgpack::encode_str(name, &mut repeated);
        msgpack::encode(value, &mut repeated);
    }
    repeated.extend_from_slice(&[0xa1, b'z', 0x82, 0xa1, b'q', 0x01, 0xa1, b'q', 0x02]);
    let error = Document::from_stored(repeated, "x", &names, context).unwrap_err();
    assert!(matches!(error, crate::Error::Corruption { .. }), "{error}");
}
