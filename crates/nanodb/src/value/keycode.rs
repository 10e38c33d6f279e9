//! An order-preserving, prefix-free byte encoding of values, for index keys.
//!
//! `encode(a) < encode(b)` (as bytes) exactly when `compare(a, b)` is `Less`, and values that
//! compare equal (`1` and `1.0`) encode to the same bytes. No encoding is a prefix of another,
//! so encodings can be concatenated (compound index keys) and a descending component is the
//! encoding with every byte inverted. Layout, after a type tag whose order is the type order:
//!
//! | type   | tag  | then |
//! | ---    | ---  | ---  |
//! | null   | 0x05 | nothing |
//! | number | 0x10 | the value as an `f64`, 8 bytes, sign-flipped big-endian (NaN: 8 zero bytes, lowest); then a residual for integers an `f64` cannot hold exactly: 0x80 if none, 0x7f + 8 bytes if negative, 0x81 + 8 bytes if positive |
//! | string | 0x20 | the UTF-8 bytes with 0x00 escaped as 0x00 0xff, then 0x00 0x01 |
//! | object | 0x30 | per field in name order: 0x01, the name as a string (without tag), the value; then 0x00 |
//! | array  | 0x40 | per element: 0x01, the element; then 0x00 |
//! | bool   | 0x50 | 0x00 or 0x01 |
//! | date   | 0x60 | milliseconds, 8 bytes, sign-flipped big-endian |
//!
//! Thread safety: pure functions.
//!
//! Invariant: the byte order of encodings is `order::compare` (tested against it on random
//! values).

use super::Value;

const TAG_NULL: u8 = 0x05;
const TAG_NUMBER: u8 = 0x10;
const TAG_STRING: u8 = 0x20;
const TAG_OBJECT: u8 = 0x30;
const TAG_ARRAY: u8 = 0x40;
const TAG_BOOL: u8 = 0x50;
const TAG_DATE: u8 = 0x60;

/// Appends the encoding of `value` to `out`.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(TAG_NULL),
        Value::Int(n) => encode_number(*n as f64, residual(*n), out),
        Value::Float(x) => encode_number(*x, 0, out),
        Value::String(text) => {
            out.push(TAG_STRING);
            encode_string(text, out);
        }
        Value::Object(map) => {
            out.push(TAG_OBJECT);
            for (name, field) in map {
                out.push(0x01);
                encode_string(name, out);
                encode(field, out);
            }
            out.push(0x00);
        }
        Value::Array(items) => {
            out.push(TAG_ARRAY);
            for item in items {
                out.push(0x01);
                encode(item, out);
            }
            out.push(0x00);
        }
        Value::Bool(b) => out.extend_from_slice(&[TAG_BOOL, u8::from(*b)]),
        Value::Date(date) => {
            out.push(TAG_DATE);
            out.extend_from_slice(&((date.unix_ms() as u64) ^ (1 << 63)).to_be_bytes());
        }
    }
}

/// Appends the encoding of `value` with every byte inverted: descending order.
pub fn encode_descending(value: &Value, out: &mut Vec<u8>) {
    let start = out.len();
    encode(value, out);
    for byte in &mut out[start..] {
        *byte = !*byte;
    }
}

/// The encoding of `value` alone.
pub fn to_key(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode(value, &mut out);
    out
}

/// How far `n` lies from its nearest `f64` (zero for every integer of magnitude up to 2^53).
fn residual(n: i64) -> i64 {
    let rounded = n as f64;
    // `rounded` is a whole number within 2^63 of zero, exactly representable as an i128.
    (i128::from(n) - rounded as i128) as i64
}

fn encode_number(x: f64, residual: i64, out: &mut Vec<u8>) {
    out.push(TAG_NUMBER);
    let ordered = if x.is_nan() {
        0
    } else {
        let bits = if x == 0.0 { 0u64 } else { x.to_bits() }; // -0.0 is 0.0
        if bits >> 63 == 1 {
            !bits
        } else {
            bits | (1 << 63)
        }
    };
    out.extend_from_slice(&ordered.to_be_bytes());
    match residual {
        0 => out.push(0x80),
        r if r < 0 => {
            out.push(0x7f);
            out.extend_from_slice(&((r as u64) ^ (1 << 63)).to_be_bytes());
        }
        r => {
            out.push(0x81);
            out.extend_from_slice(&(r as u64).to_be_bytes());
        }
    }
}

fn encode_string(text: &str, out: &mut Vec<u8>) {
    for &byte in text.as_bytes() {
        out.push(byte);
        if byte == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// The smallest key greater than every key that starts with `prefix` (`None` if there is
/// none: the prefix is all 0xff bytes), for range scans over a prefix.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{compare, Date, Map};
    use std::cmp::Ordering;

    /// A small deterministic generator (xorshift), so a failure can be replayed from its seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_value(rng: &mut Rng, depth: usize) -> Value {
        let kinds = if depth >= 3 { 6 } else { 8 };
        match rng.below(kinds) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 1),
            2 => {
                let choices =
                    [0, 1, -1, 2, i64::MAX, i64::MIN, (1 << 53) + 1, 1 << 53, -(1 << 60) - 3];
                if rng.below(2) == 0 {
                    Value::Int(choices[rng.below(choices.len() as u64) as usize])
                } else {
                    Value::Int(rng.below(7) as i64 - 3)
                }
            }
            3 => {
                let choices = [
                    0.0,
                    -0.0,
                    0.5,
                    -2.5,
                    1.0,
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    9.007199254740992e15,
                ];
                Value::Float(choices[rng.below(choices.len() as u64) as usize])
            }
            4 => {
                let alphabet = ["", "a", "b", "\u{0}", "é", "ab", "a\u{0}b"];
                let len = rng.below(3);
                Value::String((0..len).map(|_| alphabet[rng.below(7) as usize]).collect())
            }
            5 => Value::Date(Date::from_unix_ms(rng.below(5) as i64 - 2).unwrap()),
            6 => Value::Array((0..rng.below(3)).map(|_| random_value(rng, depth + 1)).collect()),
            _ => {
                let names = ["", "a", "b", "a\u{0}"];
                let mut map = Map::new();
                for _ in 0..rng.below(3) {
                    map.insert(
                        names[rng.below(4) as usize].to_string(),
                        random_value(rng, depth + 1),
                    );
                }
                Value::Object(map)
            }
        }
    }

    #[test]
    fn byte_order_is_value_order_on_random_values() {
        let seed = std::env::var("NANODB_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x9e37_79b9_7f4a_7c15u64);
        let mut rng = Rng(seed | 1);
        let values: Vec<Value> = (0..600).map(|_| random_value(&mut rng, 0)).collect();
        for a in &values {
            for b in &values {
                let expected = compare(a, b);
                let (key_a, key_b) = (to_key(a), to_key(b));
                assert_eq!(key_a.cmp(&key_b), expected, "seed {seed}: {a:?} vs {b:?}");
                let (mut desc_a, mut desc_b) = (Vec::new(), Vec::new());
                encode_descending(a, &mut desc_a);
                encode_descending(b, &mut desc_b);
                assert_eq!(desc_a.cmp(&desc_b), expected.reverse(), "seed {seed}: descending");
                if expected != Ordering::Equal {
                    assert!(!key_a.starts_with(&key_b) && !key_b.starts_with(&key_a));
                }
            }
        }
    }

    #[test]
    fn compound_keys_order_by_their_first_component_first() {
        let key = |a: Value, b: Value| {
            let mut out = Vec::new();
            encode(&a, &mut out);
            encode_descending(&b, &mut out);
            out
        };
        assert!(key("a".into(), 5.into()) < key("ab".into(), 9.into()));
        assert!(key("a".into(), 9.into()) < key("a".into(), 5.into()), "second is descending");
        assert_eq!(prefix_end(&[1, 2, 0xff]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }
}
