//! The typed write path's serializer against the `Value` path it must agree with: fixed
//! cases for every serde form, the limits at their boundaries, and random JSON documents.

use super::to_document_bytes;
use crate::document::check_fields;
use crate::test_support::{seed_or, Rng};
use crate::value::{msgpack, Value, FIELD_NAME_LEN_MAX, NESTING_DEPTH_MAX};
use crate::Error;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::json;
use std::collections::BTreeMap;

/// What the dynamic path stores for `value`: JSON's `Value`, checked, encoded; or its error.
/// Of the reserved fields, which the collection replaces, only what the insert reads is
/// kept: no `created` or `updated`, and an `id` that is an array or an object empty.
fn via_value<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    let json = serde_json::to_value(value).map_err(|error| Error::invalid(error.to_string()))?;
    match Value::from(json) {
        Value::Object(mut fields) => {
            check_fields(&fields)?;
            fields.remove("created");
            fields.remove("updated");
            match fields.get_mut("id") {
                Some(Value::Array(items)) => items.clear(),
                Some(Value::Object(map)) => map.clear(),
                _ => {}
            }
            Ok(msgpack::to_bytes(&Value::Object(fields)))
        }
        other => Err(Error::invalid(format!("not an object: {}", other.type_name()))),
    }
}

/// Both paths store the same bytes for `value`.
#[track_caller]
fn same<T: Serialize>(value: &T) -> Vec<u8> {
    let bytes = to_document_bytes(value).expect("the serializer takes it");
    assert_eq!(Some(&bytes), via_value(value).ok().as_ref(), "the Value path stores the same");
    msgpack::map_layout(&bytes).unwrap().expect("names ascending at every level");
    bytes
}

#[derive(Serialize)]
enum Shape {
    Dot,
    Circle(f64),
    Segment(i32, i32),
    Box { width: u8, height: u8 },
}

#[derive(Serialize)]
struct Inner {
    zip: u32,
    city: &'static str,
}

#[derive(Serialize)]
struct Unit;

#[derive(Serialize)]
struct Wrapper(i16);

#[derive(Serialize)]
struct Person {
    name: &'static str,
    age: u64,
    email: Option<&'static str>,
    nick: Option<&'static str>,
    score: f32,
    active: bool,
    initial: char,
    address: Inner,
    tags: Vec<&'static str>,
    pair: (u8, &'static str),
    shapes: Vec<Shape>,
    unit: (),
    unit_struct: Unit,
    wrapped: Wrapper,
    #[serde(with = "serde_bytes_as_seq")]
    raw: Vec<u8>,
    by_number: BTreeMap<u32, bool>,
    by_flag: BTreeMap<bool, i8>,
    big: u64,
    huge: i128,
    not_a_number: f64,
    infinite: f64,
}

/// `Vec<u8>` through `serialize_bytes`, as `serde_bytes` would.
mod serde_bytes_as_seq {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }
}

#[test]
fn every_serde_form_is_stored_as_the_value_path_stores_it() {
    let person = Person {
        name: "Ada",
        age: 36,
        email: Some("ada@example.com"),
        nick: None,
        score: 1.5,
        active: true,
        initial: 'é',
        address: Inner { zip: 75001, city: "Paris" },
        tags: vec!["math", "engines"],
        pair: (7, "seven"),
        shapes: vec![
            Shape::Dot,
            Shape::Circle(2.5),
            Shape::Segment(-1, 1),
            Shape::Box { width: 3, height: 4 },
        ],
        unit: (),
        unit_struct: Unit,
        wrapped: Wrapper(-300),
        raw: vec![0, 1, 255],
        by_number: BTreeMap::from([(10, true), (9, false)]),
        by_flag: BTreeMap::from([(true, 1), (false, 0)]),
        big: u64::MAX,
        huge: -5,
        not_a_number: f64::NAN,
        infinite: f64::INFINITY,
    };
    let bytes = same(&person);
    let Ok(Value::Object(stored)) = msgpack::decode(&bytes) else { panic!("a map") };
    // Spot checks of what JSON's data model makes of the forms.
    assert_eq!(stored["big"], Value::Float(u64::MAX as f64));
    assert_eq!(stored["not_a_number"], Value::Null);
    assert_eq!(stored["nick"], Value::Null);
    assert_eq!(stored["unit_struct"], Value::Null);
    assert_eq!(stored["wrapped"], Value::Int(-300));
    assert_eq!(stored["raw"], Value::from(json!([0, 1, 255])));
    assert_eq!(stored["by_number"], Value::from(json!({"10": true, "9": false})));
    assert_eq!(
        stored["shapes"],
        Value::from(
            json!(["Dot", {"Circle": 2.5}, {"Segment": [-1, 1]}, {"Box": {"width": 3, "height": 4}}])
        )
    );
    // A top-level enum variant with content is a one-field document.
    same(&Shape::Box { width: 1, height: 2 });
    same(&Shape::Circle(1.0));
    same(&Shape::Segment(1, 2));
}

/// A map that writes its entries in the given order, repeats included.
struct Entries(Vec<(&'static str, i64)>);

impl Serialize for Entries {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[test]
fn names_are_sorted_and_a_repeated_name_keeps_its_last_value() {
    let bytes = same(&Entries(vec![("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5)]));
    assert_eq!(msgpack::decode(&bytes).unwrap(), Value::from(json!({"a": 5, "b": 3, "c": 4})));
    same(&Entries(vec![]));
    same(&Entries(vec![("x", 1), ("x", 2)]));
    // Byte order, not alphabetical: upper case first, longer after its prefix.
    same(&Entries(vec![("ab", 1), ("a", 2), ("B", 3), ("é", 4), ("z", 5)]));
}

#[test]
fn container_headers_widen_past_fifteen_and_past_65535_items() {
    for count in [15usize, 16, 0xffff, 0x1_0000] {
        let items: Vec<u8> = (0..count).map(|i| i as u8).collect();
        let mut fields: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for i in 0..count.min(40) {
            fields.insert(format!("f{i:03}"), Vec::new());
        }
        fields.insert("items".into(), items);
        same(&fields);
    }
}

#[test]
fn names_and_nesting_are_checked_as_the_value_path_checks_them() {
    for bad in ["", "$set", "a.b", "nul\0"] {
        let error = to_document_bytes(&json!({ bad: 1 })).unwrap_err();
        assert!(matches!(error, Error::InvalidName { .. }), "{bad:?}: {error}");
        assert!(via_value(&json!({ bad: 1 })).is_err());
        let nested = json!({"outer": [{ bad: 1 }]});
        assert!(matches!(to_document_bytes(&nested), Err(Error::InvalidName { .. })));
    }
    let longest = "n".repeat(FIELD_NAME_LEN_MAX);
    same(&json!({ longest.clone(): 1 }));
    let error = to_document_bytes(&json!({ format!("{longest}n"): 1 })).unwrap_err();
    assert!(matches!(error, Error::LimitExceeded { .. }), "{error}");

    // The document is depth 1; each array or object inside adds one.
    let nest = |depth: usize| {
        let mut value = json!(1);
        // `depth` containers, the outermost (the document) an object.
        for level in 0..depth {
            let object = (depth - 1 - level).is_multiple_of(2);
            value = if object { json!({ "x": value }) } else { json!([value]) };
        }
        value
    };
    same(&nest(NESTING_DEPTH_MAX));
    let error = to_document_bytes(&nest(NESTING_DEPTH_MAX + 1)).unwrap_err();
    assert!(matches!(error, Error::LimitExceeded { .. }), "{error}");
    assert!(via_value(&nest(NESTING_DEPTH_MAX + 1)).is_err());

    // The reserved fields are the collection's to replace: not checked, and not kept past
    // what the insert reads (an `id`'s type), so nothing deep or misnamed reaches the layout.
    let long = "n".repeat(FIELD_NAME_LEN_MAX + 1);
    let deep = json!({
        "id": nest(NESTING_DEPTH_MAX + 1),
        "created": {"$bad.name": 1, long.clone(): nest(NESTING_DEPTH_MAX + 3)},
        "updated": [[[{"": 1}]]],
        "a": 1
    });
    let bytes = same(&deep);
    assert_eq!(msgpack::decode(&bytes).unwrap(), Value::from(json!({"a": 1, "id": {}})));
    let bytes = same(&json!({"id": [nest(NESTING_DEPTH_MAX + 1)], "a": 1}));
    assert_eq!(msgpack::decode(&bytes).unwrap(), Value::from(json!({"a": 1, "id": []})));
    // ... but only at the top.
    let error = to_document_bytes(&json!({"a": {"created": {"$x": 1}}})).unwrap_err();
    assert!(matches!(error, Error::InvalidName { .. }), "{error}");
}

#[test]
fn values_that_are_not_maps_and_keys_that_are_not_text_are_errors() {
    for value in [json!(5), json!("text"), json!([1]), json!(null), json!(true)] {
        let error = to_document_bytes(&value).unwrap_err();
        assert!(error.to_string().contains("must be an object"), "{value}: {error}");
    }
    let error = to_document_bytes(&Shape::Dot).unwrap_err();
    assert!(error.to_string().contains("must be an object, not a string"), "{error}");
    let mut by_list = BTreeMap::new();
    by_list.insert(vec![1], 1);
    let error = to_document_bytes(&BTreeMap::from([("m", by_list)])).unwrap_err();
    assert!(error.to_string().contains("map key"), "{error}");
}

/// A random JSON value: unsorted names (some reserved, some repeated across levels), every
/// number kind, nesting sometimes past the limit.
fn random_json(rng: &mut Rng, depth: usize) -> serde_json::Value {
    const NAMES: [&str; 10] = ["id", "created", "b", "a", "zz", "é", "A", "updated", "a.b", "x"];
    // Containers only down one path past depth 3, so the tree stays small but may get deep.
    let containers = depth <= 3 || rng.below(4) == 0;
    match rng.below(if depth > 70 || !containers { 6 } else { 9 }) {
        0 => json!(null),
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.below(1 << 20) as i64 - (1 << 19)),
        3 => json!(u64::MAX - rng.below(10) as u64),
        4 => json!(rng.below(1000) as f64 / 7.0),
        5 => json!("é".repeat(rng.below(40))),
        6 | 7 => {
            let mut map = serde_json::Map::new();
            for _ in 0..rng.below(if depth <= 3 { 6 } else { 2 }) {
                map.insert(NAMES[rng.below(NAMES.len())].to_string(), random_json(rng, depth + 1));
            }
            serde_json::Value::Object(map)
        }
        _ => {
            let items = rng.below(if depth <= 3 { 4 } else { 2 });
            serde_json::Value::Array((0..items).map(|_| random_json(rng, depth + 1)).collect())
        }
    }
}

#[test]
fn random_documents_are_stored_as_the_value_path_stores_them() {
    let seed = seed_or(0x5e71a1);
    let mut rng = Rng(seed);
    let (mut stored, mut refused) = (0, 0);
    for case in 0..3000 {
        let mut document = serde_json::Map::new();
        for _ in 0..rng.below(12) {
            let name = ["id", "b", "a", "updated", "$x", "c", "created"][rng.below(7)];
            document.insert(name.to_string(), random_json(&mut rng, 1));
        }
        let document = serde_json::Value::Object(document);
        let typed = to_document_bytes(&document);
        match via_value(&document) {
            Ok(bytes) => {
                assert_eq!(typed.ok(), Some(bytes), "seed {seed} case {case}: {document}");
                stored += 1;
            }
            Err(error) => {
                assert!(typed.is_err(), "seed {seed} case {case}: {error}: {document}");
                refused += 1;
            }
        }
    }
    assert!(stored > 500 && refused > 500, "seed {seed}: {stored} stored, {refused} refused");
}

/// A map written in the order given, names repeated as given, to nest inside others.
#[derive(Clone, Debug)]
enum Tree {
    Leaf(serde_json::Value),
    Map(Vec<(String, Tree)>),
    Seq(Vec<Tree>),
}

impl Serialize for Tree {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self {
            Tree::Leaf(value) => value.serialize(serializer),
            Tree::Map(entries) => {
                let mut map = serializer.serialize_map(None)?;
                for (name, value) in entries {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
            Tree::Seq(items) => {
                let mut seq = serializer.serialize_seq(None)?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

fn random_tree(rng: &mut Rng, depth: usize, names: &[&str]) -> Tree {
    let wide = rng.below(8) == 0;
    match rng.below(if depth < 4 { 6 } else { 3 }) {
        0 => Tree::Leaf(json!(rng.below(1000))),
        1 => Tree::Leaf(json!("x".repeat(rng.below(40)))),
        2 => Tree::Leaf(json!(null)),
        3 => {
            // Sometimes past 15 items, so the header widens after the items are written.
            let count = if wide { 16 + rng.below(8) } else { rng.below(4) };
            Tree::Seq((0..count).map(|_| random_tree(rng, depth + 1, names)).collect())
        }
        _ => {
            let count = if wide { 16 + rng.below(8) } else { rng.below(6) };
            let entries = (0..count)
                .map(|_| {
                    let name = names[rng.below(names.len())].to_string();
                    (name, random_tree(rng, depth + 1, names))
                })
                .collect();
            Tree::Map(entries)
        }
    }
}

/// Maps written out of order with repeated names, nested in maps and arrays that are
/// themselves reordered and widened past 15 items: the bytes are the `Value` path's.
#[test]
fn unsorted_nested_maps_with_repeats_and_wide_headers_are_stored_as_the_value_path_stores_them() {
    let seed = seed_or(0x7ee5);
    let mut rng = Rng(seed);
    let names: Vec<String> = (0..30).map(|i| format!("n{:02}", (i * 7) % 30)).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for case in 0..2000 {
        let count = rng.below(24);
        let entries: Vec<(String, Tree)> = (0..count)
            .map(|_| (names[rng.below(names.len())].to_string(), random_tree(&mut rng, 1, &names)))
            .collect();
        let document = Tree::Map(entries);
        let typed = to_document_bytes(&document);
        let expected = via_value(&document);
        match (&typed, &expected) {
            (Ok(typed), Ok(expected)) => assert_eq!(typed, expected, "seed {seed} case {case}"),
            _ => panic!("seed {seed} case {case}: {typed:?} against {expected:?}: {document:?}"),
        }
    }
}

/// A map whose keys are floats (a hand-written `Serialize`: std has no float-keyed map).
struct FloatKeys(Vec<f64>);

impl Serialize for FloatKeys {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for key in &self.0 {
            map.serialize_entry(key, &1)?;
        }
        map.end()
    }
}

#[test]
fn float_keys_are_written_as_json_writes_them_and_huge_integers_are_refused() {
    let bytes = same(&BTreeMap::from([("m", FloatKeys(vec![1e21, -2e30]))]));
    let Ok(Value::Object(stored)) = msgpack::decode(&bytes) else { panic!("a map") };
    assert_eq!(stored["m"], Value::from(json!({"1e+21": 1, "-2e+30": 1})));
    // `1.0` is a name with a '.', which no field may have: refused by both.
    for bad in [f64::NAN, f64::INFINITY, 1.0] {
        let document = BTreeMap::from([("m", FloatKeys(vec![bad]))]);
        assert!(to_document_bytes(&document).is_err());
        assert!(via_value(&document).is_err());
    }
    // Past `u64`, JSON has no number: refused by both; up to it, a float.
    for huge in [i128::MAX, i128::MIN, i128::from(i64::MIN) - 1] {
        let document = BTreeMap::from([("n", huge)]);
        assert!(to_document_bytes(&document).is_err(), "{huge}");
        assert!(via_value(&document).is_err(), "{huge}");
    }
    same(&BTreeMap::from([("n", u128::from(u64::MAX))]));
    same(&BTreeMap::from([("n", i128::from(i64::MIN))]));
    assert!(to_document_bytes(&BTreeMap::from([("n", u128::MAX)])).is_err());
}
