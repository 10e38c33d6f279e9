//! `Value` as MessagePack: how documents are stored.
//!
//! The encoder writes the smallest MessagePack form of each value: integers in the fewest
//! bytes, floats as float 64, strings as str, arrays and maps with their counts, and dates as
//! the timestamp extension (type -1; the 96-bit form, so any instant in years 0000 to 9999 fits).
//! The decoder reads any MessagePack of those types (every integer width, float 32, every
//! timestamp form), and refuses with an error, never a panic: truncated input, trailing bytes,
//! nesting deeper than `NESTING_DEPTH_MAX`, map keys that are not strings or are longer than
//! `FIELD_NAME_LEN_MAX`, invalid UTF-8, binary and other extension types, and counts larger
//! than the bytes left could hold (so a forged count cannot make it allocate).
//!
//! Thread safety: pure functions.
//!
//! Invariant: `decode(&encode(v)) == v` for every value (NaN aside, which decodes as NaN).

use super::{Date, Map, Value, FIELD_NAME_LEN_MAX, NESTING_DEPTH_MAX};
use std::fmt;

/// The MessagePack extension type of timestamps.
const EXT_TIMESTAMP: i8 = -1;

/// Why bytes are not a valid stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub detail: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid MessagePack at byte {}: {}", self.offset, self.detail)
    }
}

impl std::error::Error for DecodeError {}

/// Appends the MessagePack encoding of `value` to `out`.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(0xc0),
        Value::Bool(false) => out.push(0xc2),
        Value::Bool(true) => out.push(0xc3),
        Value::Int(n) => encode_int(*n, out),
        Value::Float(x) => {
            out.push(0xcb);
            out.extend_from_slice(&x.to_bits().to_be_bytes());
        }
        Value::String(text) => encode_str(text, out),
        Value::Date(date) => {
            let ms = date.unix_ms();
            let (seconds, nanos) = (ms.div_euclid(1000), (ms.rem_euclid(1000) * 1_000_000) as u32);
            out.extend_from_slice(&[0xc7, 12, EXT_TIMESTAMP as u8]);
            out.extend_from_slice(&nanos.to_be_bytes());
            out.extend_from_slice(&seconds.to_be_bytes());
        }
        Value::Array(items) => {
            encode_count(items.len(), 0x90, 0xdc, out);
            for item in items {
                encode(item, out);
            }
        }
        Value::Object(map) => encode_map(map, out),
    }
}

/// Appends the MessagePack encoding of an object's fields to `out`.
pub fn encode_map(map: &Map, out: &mut Vec<u8>) {
    encode_count(map.len(), 0x80, 0xde, out);
    for (name, field) in map {
        encode_str(name, out);
        encode(field, out);
    }
}

fn encode_str(text: &str, out: &mut Vec<u8>) {
    let len = text.len();
    match len {
        0..=31 => out.push(0xa0 | len as u8),
        32..=0xff => out.extend_from_slice(&[0xd9, len as u8]),
        0x100..=0xffff => {
            out.push(0xda);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdb);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(text.as_bytes());
}

/// The MessagePack encoding of `value`.
pub fn to_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode(value, &mut out);
    out
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    match n {
        0..=0x7f => out.push(n as u8),
        -32..=-1 => out.push(n as i8 as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        -128..=-33 => out.extend_from_slice(&[0xd0, n as i8 as u8]),
        -32_768..=-129 => {
            out.push(0xd1);
            out.extend_from_slice(&(n as i16).to_be_bytes());
        }
        -2_147_483_648..=-32_769 => {
            out.push(0xd2);
            out.extend_from_slice(&(n as i32).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// A collection count: the fix form up to 15, else the 16- or 32-bit form (`wide` is the
/// 16-bit marker; the 32-bit one follows it).
fn encode_count(count: usize, fix: u8, wide: u8, out: &mut Vec<u8>) {
    match count {
        0..=15 => out.push(fix | count as u8),
        16..=0xffff => {
            out.push(wide);
            out.extend_from_slice(&(count as u16).to_be_bytes());
        }
        _ => {
            out.push(wide + 1);
            out.extend_from_slice(&(count as u32).to_be_bytes());
        }
    }
}

/// Decodes one value that must fill `bytes` exactly.
pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut reader = Reader { bytes, at: 0 };
    let value = reader.value(0)?;
    if reader.at != bytes.len() {
        return Err(reader.error(format!("{} bytes after the value", bytes.len() - reader.at)));
    }
    Ok(value)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, detail: impl Into<String>) -> DecodeError {
        DecodeError { offset: self.at, detail: detail.into() }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(len).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.error(format!("truncated: {len} bytes wanted")));
        };
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn u32(&mut self) -> Result<usize, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?) as usize)
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let marker = self.u8()?;
        Ok(match marker {
            0x00..=0x7f => Value::Int(i64::from(marker)),
            0xe0..=0xff => Value::Int(i64::from(marker as i8)),
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xcc => Value::Int(i64::from(self.u8()?)),
            0xcd => Value::Int(self.u16()? as i64),
            0xce => Value::Int(self.u32()? as i64),
            0xcf => {
                let n = u64::from_be_bytes(self.array()?);
                i64::try_from(n).map_or(Value::Float(n as f64), Value::Int)
            }
            0xd0 => Value::Int(i64::from(i8::from_be_bytes(self.array()?))),
            0xd1 => Value::Int(i64::from(i16::from_be_bytes(self.array()?))),
            0xd2 => Value::Int(i64::from(i32::from_be_bytes(self.array()?))),
            0xd3 => Value::Int(i64::from_be_bytes(self.array()?)),
            0xca => Value::Float(f64::from(f32::from_be_bytes(self.array()?))),
            0xcb => Value::Float(f64::from_be_bytes(self.array()?)),
            0xa0..=0xbf => Value::String(self.string(usize::from(marker & 0x1f))?),
            0xd9 => {
                let len = usize::from(self.u8()?);
                Value::String(self.string(len)?)
            }
            0xda => {
                let len = self.u16()?;
                Value::String(self.string(len)?)
            }
            0xdb => {
                let len = self.u32()?;
                Value::String(self.string(len)?)
            }
            0x90..=0x9f => self.list(usize::from(marker & 0x0f), depth)?,
            0xdc => {
                let count = self.u16()?;
                self.list(count, depth)?
            }
            0xdd => {
                let count = self.u32()?;
                self.list(count, depth)?
            }
            0x80..=0x8f => self.map(usize::from(marker & 0x0f), depth)?,
            0xde => {
                let count = self.u16()?;
                self.map(count, depth)?
            }
            0xdf => {
                let count = self.u32()?;
                self.map(count, depth)?
            }
            0xd6 => self.extension(4)?,
            0xd7 => self.extension(8)?,
            0xc7 => {
                let len = usize::from(self.u8()?);
                self.extension(len)?
            }
            0xd4 | 0xd5 | 0xd8 | 0xc8 | 0xc9 => {
                return Err(self.error("an extension type other than a timestamp"))
            }
            0xc4..=0xc6 => return Err(self.error("binary data is not a document value")),
            _ => return Err(self.error(format!("marker 0x{marker:02x} is never used"))),
        })
    }

    fn string(&mut self, len: usize) -> Result<String, DecodeError> {
        let start = self.at;
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_string()),
            Err(_) => Err(DecodeError { offset: start, detail: "a string is not UTF-8".into() }),
        }
    }

    fn enter(&self, depth: usize, count: usize, item_bytes_min: usize) -> Result<(), DecodeError> {
        if depth >= NESTING_DEPTH_MAX {
            return Err(self.error(format!("nested deeper than {NESTING_DEPTH_MAX}")));
        }
        // Every item takes at least `item_bytes_min` bytes: a larger count is a lie.
        if count.saturating_mul(item_bytes_min) > self.bytes.len() - self.at {
            return Err(self.error(format!("a count of {count} exceeds the bytes left")));
        }
        Ok(())
    }

    fn list(&mut self, count: usize, depth: usize) -> Result<Value, DecodeError> {
        self.enter(depth, count, 1)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, count: usize, depth: usize) -> Result<Value, DecodeError> {
        self.enter(depth, count, 2)?;
        let mut map = Map::new();
        for _ in 0..count {
            let start = self.at;
            let Value::String(name) = self.value(depth + 1)? else {
                return Err(DecodeError {
                    offset: start,
                    detail: "a map key is not a string".into(),
                });
            };
            if name.len() > FIELD_NAME_LEN_MAX {
                return Err(DecodeError {
                    offset: start,
                    detail: format!("a field name is longer than {FIELD_NAME_LEN_MAX} bytes"),
                });
            }
            let value = self.value(depth + 1)?;
            if map.insert(name, value).is_some() {
                return Err(DecodeError { offset: start, detail: "a field name repeats".into() });
            }
        }
        Ok(Value::Object(map))
    }

    /// An extension of `len` data bytes: only timestamps (32, 64 and 96 bit) are values.
    fn extension(&mut self, len: usize) -> Result<Value, DecodeError> {
        let start = self.at;
        let kind = self.u8()? as i8;
        let data = self.take(len)?;
        if kind != EXT_TIMESTAMP {
            return Err(DecodeError { offset: start, detail: format!("extension type {kind}") });
        }
        let (seconds, nanos) = match len {
            4 => (i64::from(u32::from_be_bytes([data[0], data[1], data[2], data[3]])), 0u32),
            8 => {
                let packed = u64::from_be_bytes([
                    data[0], data[1], data[2], data[3], data[4], data[5], data[6], data[7],
                ]);
                ((packed & 0x3_ffff_ffff) as i64, (packed >> 34) as u32)
            }
            12 => {
                let nanos = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                let mut seconds = [0u8; 8];
                seconds.copy_from_slice(&data[4..12]);
                (i64::from_be_bytes(seconds), nanos)
            }
            _ => {
                return Err(DecodeError {
                    offset: start,
                    detail: format!("a {len}-byte timestamp"),
                })
            }
        };
        if nanos >= 1_000_000_000 {
            return Err(DecodeError {
                offset: start,
                detail: "timestamp nanoseconds out of range".into(),
            });
        }
        let ms = seconds
            .checked_mul(1000)
            .and_then(|ms| ms.checked_add(i64::from(nanos / 1_000_000)))
            .and_then(Date::from_unix_ms);
        match ms {
            Some(date) => Ok(Value::Date(date)),
            None => Err(DecodeError {
                offset: start,
                detail: "a date outside years 0000 to 9999".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: Value) {
        let bytes = to_bytes(&value);
        assert_eq!(decode(&bytes).unwrap(), value, "{bytes:02x?}");
    }

    #[test]
    fn every_value_round_trips_in_its_smallest_form() {
        for n in [
            0,
            1,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            4_294_967_295,
            4_294_967_296,
            i64::MAX,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32_768,
            -32_769,
            -2_147_483_648,
            -2_147_483_649,
            i64::MIN,
        ] {
            round_trip(Value::Int(n));
        }
        assert_eq!(to_bytes(&Value::Int(5)), [5]);
        assert_eq!(to_bytes(&Value::Int(-1)), [0xff]);
        assert_eq!(to_bytes(&Value::Int(200)), [0xcc, 200]);
        for x in [0.0, -0.0, 1.5, f64::INFINITY, f64::MIN_POSITIVE, 1e300] {
            round_trip(Value::Float(x));
        }
        for len in [0, 31, 32, 255, 256, 65_535, 65_536] {
            round_trip(Value::String("é".repeat(len / 2) + &"x".repeat(len % 2)));
        }
        for ms in [0, -1, 1_714_558_830_123, crate::value::DATE_MS_MIN, crate::value::DATE_MS_MAX] {
            round_trip(Value::Date(Date::from_unix_ms(ms).unwrap()));
        }
        for count in [0, 15, 16, 65_536] {
            round_trip(Value::Array(vec![Value::Null; count]));
            let map: Map = (0..count).map(|i| (format!("f{i}"), Value::Int(i as i64))).collect();
            round_trip(Value::Object(map));
        }
        assert_eq!(to_bytes(&Value::Array(vec![])), [0x90]);
        assert_eq!(to_bytes(&Value::Object(Map::new())), [0x80]);
    }

    #[test]
    fn foreign_forms_decode_too() {
        assert_eq!(decode(&[0xca, 0x3f, 0xc0, 0, 0]).unwrap(), Value::Float(1.5));
        assert_eq!(decode(&[0xcf, 0, 0, 0, 0, 0, 0, 0, 7]).unwrap(), Value::Int(7));
        assert!(matches!(
            decode(&[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap(),
            Value::Float(_)
        ));
        // Timestamp 32 (seconds) and 64 (nanoseconds << 34 | seconds).
        let ts32 = decode(&[0xd6, 0xff, 0, 0, 0, 10]).unwrap();
        assert_eq!(ts32, Value::Date(Date::from_unix_ms(10_000).unwrap()));
        let packed: u64 = (5_000_000u64 << 34) | 10;
        let mut ts64 = vec![0xd7, 0xff];
        ts64.extend_from_slice(&packed.to_be_bytes());
        assert_eq!(decode(&ts64).unwrap(), Value::Date(Date::from_unix_ms(10_005).unwrap()));
    }

    #[test]
    fn bad_bytes_are_errors_never_panics() {
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0xc1],
            vec![0xd9],
            vec![0xd9, 5, b'a'],
            vec![0xa2, 0xff, 0xfe],
            vec![0xdd, 0xff, 0xff, 0xff, 0xff],
            vec![0xdf, 0x7f, 0xff, 0xff, 0xff, 0xc0],
            vec![0x81, 0x01, 0x02],
            vec![0x82, 0xa1, b'a', 1, 0xa1, b'a', 2],
            vec![0xc4, 1, 0],
            vec![0xd4, 5, 0],
            vec![0xd6, 0xff, 0, 0],
            vec![0xc7, 12, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![0xc7, 12, 0xff, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            vec![0xc0, 0xc0],
        ];
        for bytes in cases {
            assert!(decode(&bytes).is_err(), "{bytes:02x?}");
        }
        // Nesting at the limit decodes; one more level does not.
        let nested = |depth: usize| {
            let mut bytes = vec![0x91; depth];
            bytes.push(0xc0);
            bytes
        };
        assert!(decode(&nested(NESTING_DEPTH_MAX)).is_ok());
        let error = decode(&nested(NESTING_DEPTH_MAX + 1)).unwrap_err();
        assert!(error.to_string().contains("nested deeper"), "{error}");
        // A field name at the limit decodes; one byte longer does not.
        for (len, ok) in [(FIELD_NAME_LEN_MAX, true), (FIELD_NAME_LEN_MAX + 1, false)] {
            let map: Map = [("n".repeat(len), Value::Null)].into();
            assert_eq!(decode(&to_bytes(&Value::Object(map))).is_ok(), ok, "{len}");
        }
        // Every truncation of a real document is an error.
        let doc = Value::from(serde_json::json!({"a": [1, "x", {"b": 2.5}], "c": "text"}));
        let bytes = to_bytes(&doc);
        for end in 0..bytes.len() {
            assert!(decode(&bytes[..end]).is_err(), "truncated at {end}");
        }
    }
}
