//! The typed read path's deserializer against the JSON path it must agree with: random
//! documents read as `serde_json::Value`, fixed cases for every serde form, and bad bytes.

use super::from_document_bytes;
use crate::test_support::{seed_or, Rng};
use crate::value::{msgpack, Date, Map, Value};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

/// What the JSON path reads `value` as: `Ok` or the error's text.
fn via_json<T: DeserializeOwned>(value: &Value) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::from(value.clone())).map_err(|e| e.to_string())
}

/// Both paths agree on `value` as a `T` (both read it, equal, or both refuse it).
#[track_caller]
fn agree<T: DeserializeOwned + PartialEq + std::fmt::Debug>(value: &Value) -> Option<T> {
    let bytes = msgpack::to_bytes(value);
    let direct = from_document_bytes::<T>(&bytes).map_err(|error| error.0);
    let json = via_json::<T>(value);
    match (&direct, &json) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{value:?}"),
        (Err(_), Err(_)) => {}
        _ => panic!("the paths disagree on {value:?}: {direct:?} against {json:?}"),
    }
    direct.ok()
}

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    let containers = depth < 3 || rng.below(4) == 0;
    match rng.below(if containers && depth < 8 { 10 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => Value::Int(rng.below(1 << 20) as i64 - (1 << 19)),
        3 => Value::Int([i64::MIN, i64::MAX, 0, -1][rng.below(4)]),
        4 => Value::Float([0.5, -2.25, f64::NAN, f64::INFINITY, 1e300][rng.below(5)]),
        5 => Value::String("é".repeat(rng.below(5))),
        6 => Value::Date(Date::from_unix_ms(rng.below(1 << 40) as i64).unwrap()),
        7 => Value::String(format!("s{}", rng.below(100))),
        8 => Value::Array((0..rng.below(4)).map(|_| random_value(rng, depth + 1)).collect()),
        _ => {
            let mut map = Map::new();
            for _ in 0..rng.below(5) {
                map.insert(format!("f{}", rng.below(8)), random_value(rng, depth + 1));
            }
            Value::Object(map)
        }
    }
}

#[test]
fn random_documents_read_as_json_values_agree_with_the_json_path() {
    let seed = seed_or(0xde5e);
    let mut rng = Rng(seed);
    for case in 0..3000 {
        let mut document = Map::new();
        for _ in 0..rng.below(10) {
            document.insert(format!("f{}", rng.below(12)), random_value(&mut rng, 1));
        }
        let value = Value::Object(document);
        let bytes = msgpack::to_bytes(&value);
        let direct = from_document_bytes::<serde_json::Value>(&bytes);
        let json = serde_json::Value::from(value.clone());
        assert_eq!(direct.as_ref().ok(), Some(&json), "seed {seed} case {case}: {value:?}");
    }
}

#[derive(Debug, PartialEq, Deserialize)]
enum Shape {
    Dot,
    Circle(f64),
    Segment(i32, i32),
    Box { width: u8, height: u8 },
}

#[derive(Debug, PartialEq, Deserialize)]
struct Inner {
    zip: u32,
    city: String,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Wrapper(i16);

#[derive(Debug, PartialEq, Deserialize)]
struct Person {
    name: String,
    age: u8,
    nick: Option<String>,
    ratio: Option<f64>,
    created: String,
    address: Inner,
    tags: Vec<String>,
    pair: (u8, String),
    shapes: Vec<Shape>,
    wrapped: Wrapper,
    #[serde(default)]
    missing_with_default: u32,
}

fn person() -> Value {
    Value::from(json!({
        "name": "Ada", "age": 36, "nick": null, "ratio": 0.5,
        "address": {"zip": 75001, "city": "Paris", "extra": [1, {"deep": true}]},
        "tags": ["math"], "pair": [7, "seven"],
        "shapes": ["Dot", {"Circle": 2.5}, {"Segment": [-1, 1]}, {"Box": {"width": 3, "height": 4}}],
        "wrapped": -300, "unread": {"a": [1, 2, 3]}
    }))
}

fn with(mut value: Value, name: &str, field: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.insert(name.into(), field);
    }
    value
}

#[test]
fn every_serde_form_reads_as_through_json() {
    let created = Value::Date(Date::from_unix_ms(1_700_000_000_123).unwrap());
    let base = with(person(), "created", created);
    let read = agree::<Person>(&base).expect("a Person");
    assert_eq!(read.created, "2023-11-14T22:13:20.123Z");
    assert_eq!(read.shapes[3], Shape::Box { width: 3, height: 4 });
    // NaN and the infinities are null to JSON: `None` for an option, an error for an `f64`.
    let nan = with(base.clone(), "ratio", Value::Float(f64::NAN));
    assert_eq!(agree::<Person>(&nan).expect("a Person").ratio, None);
    // Misfits: out of range, wrong type, a missing field, too many items, a bad variant.
    for (name, field) in [
        ("age", Value::Int(256)),
        ("age", Value::Int(-1)),
        ("age", Value::Float(1.5)),
        ("name", Value::Int(1)),
        ("pair", Value::from(json!([7, "seven", 8]))),
        ("pair", Value::from(json!([7]))),
        ("shapes", Value::from(json!(["Square"]))),
        ("shapes", Value::from(json!([{"Circle": 1.0, "Dot": null}]))),
        ("shapes", Value::from(json!([7]))),
        ("wrapped", Value::Int(1 << 20)),
    ] {
        let misfit = with(base.clone(), name, field);
        assert_eq!(agree::<Person>(&misfit), None, "{name}");
    }
    let mut without = base.clone();
    if let Value::Object(map) = &mut without {
        map.remove("name");
    }
    assert_eq!(agree::<Person>(&without), None);
    // A unit variant may also come as `{variant: null}`.
    assert_eq!(agree::<Shape>(&Value::from(json!({"Dot": null}))), Some(Shape::Dot));
    assert_eq!(agree::<Shape>(&Value::from(json!({"Dot": 1}))), None);
}

#[test]
fn bad_bytes_are_errors_never_panics() {
    let good = msgpack::to_bytes(&person());
    for end in 0..good.len() {
        assert!(from_document_bytes::<serde_json::Value>(&good[..end]).is_err(), "cut at {end}");
    }
    let mut trailing = good.clone();
    trailing.push(0xc0);
    assert!(from_document_bytes::<serde_json::Value>(&trailing).is_err());
    // A forged count, a non-string key, an unused marker, binary data.
    for bytes in [&[0xdf, 0xff, 0xff, 0xff, 0xff][..], &[0x81, 0x01, 0x02], &[0xc1], &[0xc4, 1, 0]]
    {
        assert!(from_document_bytes::<serde_json::Value>(bytes).is_err(), "{bytes:?}");
    }
    // What a type does not read is stepped over with bounds and depth checks only (the typed
    // collection reads bytes `Document::decode` has checked whole): a forged count or an
    // unused marker is still an error, a key that is not a string is not looked at.
    for bytes in [&[0xdf, 0xff, 0xff, 0xff, 0xff][..], &[0xc1], &[0x92, 0xc0]] {
        assert!(from_document_bytes::<serde::de::IgnoredAny>(bytes).is_err(), "{bytes:?}");
    }
    assert!(from_document_bytes::<serde::de::IgnoredAny>(&[0x81, 0x01, 0x02]).is_ok());
    // Nesting past the limit, even in a field the type does not read.
    let mut deep = Value::Int(1);
    for _ in 0..crate::value::NESTING_DEPTH_MAX + 2 {
        deep = Value::Array(vec![deep]);
    }
    let bytes = msgpack::to_bytes(&with(person(), "unread", deep));
    assert!(from_document_bytes::<serde_json::Value>(&bytes).is_err());
    #[derive(Deserialize)]
    struct NameOnly {
        #[allow(dead_code)]
        name: String,
    }
    assert!(from_document_bytes::<NameOnly>(&bytes).is_err());
}

/// A newtype key, as ids often are.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
struct UserId(String);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
enum Color {
    Red,
    Blue,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Keyed {
    by_number: std::collections::BTreeMap<u32, bool>,
    by_signed: std::collections::BTreeMap<i64, u8>,
    by_flag: std::collections::BTreeMap<bool, i8>,
    by_user: std::collections::BTreeMap<UserId, u8>,
    by_color: std::collections::BTreeMap<Color, u8>,
}

#[test]
fn map_keys_read_back_as_the_types_they_were_written_from() {
    let value = Value::from(json!({
        "by_number": {"10": true, "9": false},
        "by_signed": {"-3": 1},
        "by_flag": {"true": 1, "false": 0},
        "by_user": {"ada": 1},
        "by_color": {"Red": 1, "Blue": 2},
    }));
    let keyed = agree::<Keyed>(&value).expect("keys parse");
    assert_eq!(keyed.by_number.keys().copied().collect::<Vec<_>>(), [9, 10]);
    assert_eq!(keyed.by_signed.keys().copied().collect::<Vec<_>>(), [-3]);
    assert_eq!(keyed.by_flag[&true], 1);
    assert_eq!(keyed.by_user[&UserId("ada".into())], 1);
    assert_eq!(keyed.by_color[&Color::Blue], 2);
    // A key that does not parse as the type asks: refused by both paths.
    for (field, bad) in [("by_number", json!({"x": true})), ("by_flag", json!({"yes": 1}))] {
        let mut misfit = value.clone();
        if let Value::Object(map) = &mut misfit {
            map.insert(field.into(), Value::from(bad));
        }
        assert_eq!(agree::<Keyed>(&misfit), None, "{field}");
    }
}
