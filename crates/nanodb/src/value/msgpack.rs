//! `Value` as MessagePack: how documents are stored.
//!
//! The encoder writes the smallest MessagePack form of each value: integers in the fewest
//! bytes, floats as float 64, strings as str, arrays and maps with their counts, and dates as
//! the timestamp extension (type -1) in its smallest form: 32-bit for whole seconds from 1970
//! to 2106, 64-bit from 1970 to 2514, else 96-bit (any instant in years 0000 to 9999 fits).
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
/// Seconds since the Unix epoch below which the 64-bit timestamp form holds an instant (its
/// seconds field has 34 bits: up to the year 2514).
const TIMESTAMP_64_SECONDS_LIMIT: u64 = 1 << 34;

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
            encode_timestamp(seconds, nanos, out);
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

/// Appends the smallest timestamp extension form that holds `seconds` since the Unix epoch
/// and `nanos` (below 10^9): 32-bit (whole seconds from 1970 to 2106, 6 bytes), 64-bit
/// (seconds from 1970 to 2514, 10 bytes) or 96-bit (any other instant, 15 bytes).
fn encode_timestamp(seconds: i64, nanos: u32, out: &mut Vec<u8>) {
    match u64::try_from(seconds) {
        Ok(seconds) if nanos == 0 && seconds <= u64::from(u32::MAX) => {
            out.extend_from_slice(&[0xd6, EXT_TIMESTAMP as u8]);
            out.extend_from_slice(&(seconds as u32).to_be_bytes());
        }
        Ok(seconds) if seconds < TIMESTAMP_64_SECONDS_LIMIT => {
            out.extend_from_slice(&[0xd7, EXT_TIMESTAMP as u8]);
            out.extend_from_slice(&((u64::from(nanos) << 34) | seconds).to_be_bytes());
        }
        _ => {
            out.extend_from_slice(&[0xc7, 12, EXT_TIMESTAMP as u8]);
            out.extend_from_slice(&nanos.to_be_bytes());
            out.extend_from_slice(&seconds.to_be_bytes());
        }
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

/// Appends the encoding of one map: `fields` without any field named in `replaced`, and the
/// fields of `replaced` (sorted by name) in their place, in name order, as `encode_map` would
/// write the merged map; so a document is encoded with its reserved fields set without
/// copying the caller's fields into a new map.
pub fn encode_map_replacing(fields: &Map, replaced: &[(&str, &Value)], out: &mut Vec<u8>) {
    debug_assert!(replaced.windows(2).all(|pair| pair[0].0 < pair[1].0));
    let is_replaced = |name: &str| replaced.iter().any(|(replaced, _)| *replaced == name);
    let kept = fields.keys().filter(|name| !is_replaced(name)).count();
    encode_count(kept + replaced.len(), 0x80, 0xde, out);
    let mut rest = replaced.iter().peekable();
    for (name, field) in fields.iter().filter(|(name, _)| !is_replaced(name)) {
        while let Some((replaced_name, value)) = rest.next_if(|(other, _)| *other < name.as_str()) {
            encode_str(replaced_name, out);
            encode(value, out);
        }
        encode_str(name, out);
        encode(field, out);
    }
    for (name, value) in rest {
        encode_str(name, out);
        encode(value, out);
    }
}

/// Appends the encoding of the map `body` (laid out as `spans`, names ascending) with the
/// fields of `replaced` (sorted by name) in place of any of the same names, as
/// `encode_map_replacing` writes a `Map`: the kept fields are copied as they are. Returns the
/// layout of what it wrote when `out` held nothing before (and the offsets fit a `u32`), so the
/// written document needs no second pass to be laid out.
pub(crate) fn encode_spans_replacing(
    body: &[u8],
    spans: &[FieldSpan],
    replaced: &[(&str, &Value)],
    out: &mut Vec<u8>,
) -> Option<Vec<FieldSpan>> {
    debug_assert!(replaced.windows(2).all(|pair| pair[0].0 < pair[1].0));
    let is_replaced =
        |span: &FieldSpan| replaced.iter().any(|(name, _)| name.as_bytes() == span.name(body));
    let kept = spans.iter().filter(|span| !is_replaced(span)).count();
    let fresh = out.is_empty();
    encode_count(kept + replaced.len(), 0x80, 0xde, out);
    let mut written = Vec::with_capacity(kept + replaced.len());
    // Writes one field (its name, then `value` appending its encoding) and notes its span.
    let mut field = |name: &[u8], out: &mut Vec<u8>, value: &dyn Fn(&mut Vec<u8>)| {
        encode_str_bytes(name, out);
        let value_start = out.len();
        value(out);
        written.push((value_start - name.len(), value_start, out.len()));
    };
    let mut rest = replaced.iter().peekable();
    for span in spans.iter().filter(|span| !is_replaced(span)) {
        let name = span.name(body);
        while let Some((replaced_name, value)) =
            rest.next_if(|(other, _)| name_order(other.as_bytes(), name).is_lt())
        {
            field(replaced_name.as_bytes(), out, &|out| encode(value, out));
        }
        let copied = &body[span.value_start as usize..span.value_end as usize];
        field(name, out, &|out| out.extend_from_slice(copied));
    }
    for (name, value) in rest {
        field(name.as_bytes(), out, &|out| encode(value, out));
    }
    u32::try_from(out.len()).ok().filter(|_| fresh)?;
    let span = |(name_start, value_start, value_end): (usize, usize, usize)| FieldSpan {
        name_start: name_start as u32,
        name_end: value_start as u32,
        value_start: value_start as u32,
        value_end: value_end as u32,
    };
    Some(written.into_iter().map(span).collect())
}

pub(crate) fn encode_str(text: &str, out: &mut Vec<u8>) {
    encode_str_bytes(text.as_bytes(), out);
}

/// `encode_str` of text given as its (UTF-8) bytes.
pub(crate) fn encode_str_bytes(text: &[u8], out: &mut Vec<u8>) {
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
    out.extend_from_slice(text);
}

/// The content of a string `encode_str` wrote (`encoded` is exactly its bytes).
pub(crate) fn str_content(encoded: &[u8]) -> &[u8] {
    let header = match encoded.first() {
        Some(0xd9) => 2,
        Some(0xda) => 3,
        Some(0xdb) => 5,
        _ => 1,
    };
    encoded.get(header..).unwrap_or_default()
}

/// The MessagePack encoding of `value`.
pub fn to_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode(value, &mut out);
    out
}

pub(crate) fn encode_int(n: i64, out: &mut Vec<u8>) {
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
pub(crate) fn encode_count(count: usize, fix: u8, wide: u8, out: &mut Vec<u8>) {
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
    reader.end()?;
    Ok(value)
}

/// Where one top-level field of an encoded map lies: the byte ranges of its name and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldSpan {
    name_start: u32,
    name_end: u32,
    value_start: u32,
    value_end: u32,
}

impl FieldSpan {
    /// The span of a field whose name's text lies at `name` and whose value lies at `value`
    /// (byte ranges of an encoded map of at most `u32::MAX` bytes).
    pub(crate) fn new(name: std::ops::Range<usize>, value: std::ops::Range<usize>) -> FieldSpan {
        FieldSpan {
            name_start: name.start as u32,
            name_end: name.end as u32,
            value_start: value.start as u32,
            value_end: value.end as u32,
        }
    }

    /// The field's name, in `bytes` (the bytes the span was found in).
    pub(crate) fn name<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        &bytes[self.name_start as usize..self.name_end as usize]
    }
}

/// Checks that `bytes` hold exactly one valid map, as `decode` would, and locates its
/// top-level fields without building any value. `Ok(None)` when the value is not a map, or
/// some map in it (nested ones included) does not list its names in strictly ascending byte
/// order, as the encoder writes them: only `decode` can then tell what is wrong or whether a
/// name repeats. Spans are in the stored (ascending) order.
pub(crate) fn map_layout(bytes: &[u8]) -> Result<Option<Vec<FieldSpan>>, DecodeError> {
    if u32::try_from(bytes.len()).is_err() {
        return Ok(None);
    }
    let mut reader = Reader { bytes, at: 0 };
    let Token::Map(count) = reader.token()? else { return Ok(None) };
    reader.enter(0, count, 2)?;
    let mut spans = Vec::with_capacity(count);
    let mut previous: Option<&[u8]> = None;
    for _ in 0..count {
        let name = reader.name()?;
        if previous.is_some_and(|previous| name_order(previous, name.as_bytes()).is_ge()) {
            return Ok(None);
        }
        previous = Some(name.as_bytes());
        let value_start = reader.at;
        if !reader.skip(1)? {
            return Ok(None);
        }
        // `bytes.len()` fits in a u32 (checked above), so every offset does.
        spans.push(FieldSpan {
            name_start: (value_start - name.len()) as u32,
            name_end: value_start as u32,
            value_start: value_start as u32,
            value_end: reader.at as u32,
        });
    }
    reader.end()?;
    Ok(Some(spans))
}

/// The byte order of two field names (the order of `Map`), deciding on the first byte
/// without a call when it differs, as it mostly does between the names of one map.
pub(crate) fn name_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    match (a.first(), b.first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

/// Locates the top-level fields of a map this process has just encoded (`encode_map_replacing`
/// of a checked map), stepping over values with bounds and depth checks only, as the bytes
/// come from valid `Value`s. `None` if they are not a map after all.
pub(crate) fn encoded_map_layout(bytes: &[u8]) -> Option<Vec<FieldSpan>> {
    u32::try_from(bytes.len()).ok()?;
    let mut reader = Reader { bytes, at: 0 };
    let Ok(Token::Map(count)) = reader.token() else { return None };
    reader.enter(0, count, 2).ok()?;
    let mut spans = Vec::with_capacity(count);
    for _ in 0..count {
        let name = reader.name_bytes().ok()?;
        let value_start = reader.at;
        reader.step_over(1).ok()?;
        spans.push(FieldSpan {
            name_start: (value_start - name.len()) as u32,
            name_end: value_start as u32,
            value_start: value_start as u32,
            value_end: reader.at as u32,
        });
    }
    reader.end().ok()?;
    Some(spans)
}

/// The kind of the value of the field at `span` (found by `map_layout` in the same `bytes`),
/// read from its first byte alone: `map_layout` checked the whole value, so a string or
/// timestamp marker starts a valid string or date.
pub(crate) fn field_kind(bytes: &[u8], span: &FieldSpan) -> FieldKind {
    match bytes.get(span.value_start as usize) {
        Some(0xa0..=0xbf | 0xd9..=0xdb) => FieldKind::String,
        Some(0xd6 | 0xd7 | 0xc7) => FieldKind::Date,
        _ => FieldKind::Other,
    }
}

/// What `field_kind` tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    String,
    Date,
    Other,
}

/// Decodes the value of the field at `span`, found by `map_layout` in the same `bytes`.
pub(crate) fn decode_field(bytes: &[u8], span: &FieldSpan) -> Result<Value, DecodeError> {
    let end = (span.value_end as usize).min(bytes.len());
    let mut reader = Reader { bytes: &bytes[..end], at: span.value_start as usize };
    let value = reader.value(1)?;
    reader.end()?;
    Ok(value)
}

/// Decodes only the top-level fields of the map in `bytes` named in `names` (each checked as
/// `decode` checks it), stepping over the others with bounds and depth checks only. `None`
/// when `bytes` are not such a map or are malformed where they were read: the caller decodes
/// them whole to learn what is wrong. A query's filter reads these few fields of every
/// document it passes over; only the documents it keeps are decoded and checked whole.
pub(crate) fn decode_fields(bytes: &[u8], names: &[&str]) -> Option<Map> {
    let mut reader = Reader { bytes, at: 0 };
    let Ok(Token::Map(count)) = reader.token() else { return None };
    reader.enter(0, count, 2).ok()?;
    let mut fields = Map::new();
    for _ in 0..count {
        // Compared as bytes: a name equal to one asked for is that (valid) string.
        let name = reader.name_bytes().ok()?;
        if let Some(wanted) = names.iter().find(|wanted| wanted.as_bytes() == name) {
            let value = reader.value(1).ok()?;
            if fields.insert(wanted.to_string(), value).is_some() {
                return None;
            }
        } else {
            reader.step_over(1).ok()?;
        }
    }
    reader.end().ok()?;
    Some(fields)
}

/// One MessagePack item as read from its marker: a whole scalar, or the head of a container.
pub(crate) enum Token<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Date(Date),
    Array(usize),
    Map(usize),
}

/// Reads MessagePack items one by one (`value::deserialize` walks documents with it).
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    /// Where the next item starts.
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    /// The marker of the next item, without moving (`None` at the end).
    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// The bytes from `start` (a `position` returned) to where the reader is.
    pub(crate) fn since(&self, start: usize) -> &'a [u8] {
        &self.bytes[start.min(self.at)..self.at]
    }

    /// Goes back to `position` (one `position` returned).
    pub(crate) fn rewind(&mut self, position: usize) {
        self.at = position.min(self.bytes.len());
    }

    fn error(&self, detail: impl Into<String>) -> DecodeError {
        DecodeError { offset: self.at, detail: detail.into() }
    }

    pub(crate) fn end(&self) -> Result<(), DecodeError> {
        if self.at != self.bytes.len() {
            return Err(self.error(format!("{} bytes after the value", self.bytes.len() - self.at)));
        }
        Ok(())
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

    /// Reads one marker and what it carries (for a container, only its count).
    pub(crate) fn token(&mut self) -> Result<Token<'a>, DecodeError> {
        let marker = self.u8()?;
        Ok(match marker {
            0x00..=0x7f => Token::Int(i64::from(marker)),
            0xe0..=0xff => Token::Int(i64::from(marker as i8)),
            0xc0 => Token::Null,
            0xc2 => Token::Bool(false),
            0xc3 => Token::Bool(true),
            0xcc => Token::Int(i64::from(self.u8()?)),
            0xcd => Token::Int(self.u16()? as i64),
            0xce => Token::Int(self.u32()? as i64),
            0xcf => {
                let n = u64::from_be_bytes(self.array()?);
                i64::try_from(n).map_or(Token::Float(n as f64), Token::Int)
            }
            0xd0 => Token::Int(i64::from(i8::from_be_bytes(self.array()?))),
            0xd1 => Token::Int(i64::from(i16::from_be_bytes(self.array()?))),
            0xd2 => Token::Int(i64::from(i32::from_be_bytes(self.array()?))),
            0xd3 => Token::Int(i64::from_be_bytes(self.array()?)),
            0xca => Token::Float(f64::from(f32::from_be_bytes(self.array()?))),
            0xcb => Token::Float(f64::from_be_bytes(self.array()?)),
            0xa0..=0xbf => Token::Str(self.str(usize::from(marker & 0x1f))?),
            0xd9 => {
                let len = usize::from(self.u8()?);
                Token::Str(self.str(len)?)
            }
            0xda => {
                let len = self.u16()?;
                Token::Str(self.str(len)?)
            }
            0xdb => {
                let len = self.u32()?;
                Token::Str(self.str(len)?)
            }
            0x90..=0x9f => Token::Array(usize::from(marker & 0x0f)),
            0xdc => Token::Array(self.u16()?),
            0xdd => Token::Array(self.u32()?),
            0x80..=0x8f => Token::Map(usize::from(marker & 0x0f)),
            0xde => Token::Map(self.u16()?),
            0xdf => Token::Map(self.u32()?),
            0xd6 => Token::Date(self.timestamp(4)?),
            0xd7 => Token::Date(self.timestamp(8)?),
            0xc7 => {
                let len = usize::from(self.u8()?);
                Token::Date(self.timestamp(len)?)
            }
            0xd4 | 0xd5 | 0xd8 | 0xc8 | 0xc9 => {
                return Err(self.error("an extension type other than a timestamp"))
            }
            0xc4..=0xc6 => return Err(self.error("binary data is not a document value")),
            _ => return Err(self.error(format!("marker 0x{marker:02x} is never used"))),
        })
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        Ok(match self.token()? {
            Token::Null => Value::Null,
            Token::Bool(b) => Value::Bool(b),
            Token::Int(n) => Value::Int(n),
            Token::Float(x) => Value::Float(x),
            Token::Str(text) => Value::String(text.to_string()),
            Token::Date(date) => Value::Date(date),
            Token::Array(count) => self.list(count, depth)?,
            Token::Map(count) => self.map(count, depth)?,
        })
    }

    /// The bytes of a map key that must be a string, not checked for UTF-8.
    pub(crate) fn name_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let marker = self.u8()?;
        let len = match marker {
            0xa0..=0xbf => usize::from(marker & 0x1f),
            0xd9 => usize::from(self.u8()?),
            0xda => self.u16()?,
            0xdb => self.u32()?,
            _ => return Err(self.error("a map key is not a string")),
        };
        self.take(len)
    }

    /// Steps over one value, checking only that it lies within the bytes and is not nested
    /// deeper than `NESTING_DEPTH_MAX` (strings are not checked for UTF-8, names not for
    /// order).
    pub(crate) fn step_over(&mut self, depth: usize) -> Result<(), DecodeError> {
        let marker = self.u8()?;
        let (len, items) = match marker {
            0xa0..=0xbf => (usize::from(marker & 0x1f), 0),
            0xd9 | 0xc4 => (usize::from(self.u8()?), 0),
            0xda | 0xc5 => (self.u16()?, 0),
            0xdb | 0xc6 => (self.u32()?, 0),
            0x90..=0x9f => (0, usize::from(marker & 0x0f)),
            0xdc => (0, self.u16()?),
            0xdd => (0, self.u32()?),
            0x80..=0x8f => (0, 2 * usize::from(marker & 0x0f)),
            0xde => (0, 2 * self.u16()?),
            0xdf => (0, 2 * self.u32()?),
            _ => {
                self.at -= 1;
                self.token()?;
                return Ok(());
            }
        };
        self.take(len)?;
        if items > 0 {
            self.enter(depth, items, 1)?;
            for _ in 0..items {
                self.step_over(depth + 1)?;
            }
        }
        Ok(())
    }

    /// Walks one value without building it, checking all that `value` checks except repeated
    /// names; false if some map's names are not in strictly ascending byte order (only
    /// `value` can then tell whether a name repeats).
    fn skip(&mut self, depth: usize) -> Result<bool, DecodeError> {
        match self.token()? {
            Token::Array(count) => {
                self.enter(depth, count, 1)?;
                for _ in 0..count {
                    if !self.skip(depth + 1)? {
                        return Ok(false);
                    }
                }
            }
            Token::Map(count) => {
                self.enter(depth, count, 2)?;
                let mut previous: Option<&str> = None;
                for _ in 0..count {
                    let name = self.name()?;
                    let after = |previous: &str| name_order(previous.as_bytes(), name.as_bytes());
                    if previous.is_some_and(|previous| after(previous).is_ge()) {
                        return Ok(false);
                    }
                    previous = Some(name);
                    if !self.skip(depth + 1)? {
                        return Ok(false);
                    }
                }
            }
            _ => {}
        }
        Ok(true)
    }

    fn str(&mut self, len: usize) -> Result<&'a str, DecodeError> {
        let start = self.at;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map_err(|_| DecodeError { offset: start, detail: "a string is not UTF-8".into() })
    }

    pub(crate) fn enter(
        &self,
        depth: usize,
        count: usize,
        item_bytes_min: usize,
    ) -> Result<(), DecodeError> {
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

    /// A map key: a string of at most `FIELD_NAME_LEN_MAX` bytes.
    pub(crate) fn name(&mut self) -> Result<&'a str, DecodeError> {
        let start = self.at;
        let Token::Str(name) = self.token()? else {
            return Err(DecodeError { offset: start, detail: "a map key is not a string".into() });
        };
        if name.len() > FIELD_NAME_LEN_MAX {
            return Err(DecodeError {
                offset: start,
                detail: format!("a field name is longer than {FIELD_NAME_LEN_MAX} bytes"),
            });
        }
        Ok(name)
    }

    fn map(&mut self, count: usize, depth: usize) -> Result<Value, DecodeError> {
        self.enter(depth, count, 2)?;
        let mut map = Map::new();
        for _ in 0..count {
            let start = self.at;
            let name = self.name()?.to_string();
            let value = self.value(depth + 1)?;
            if map.insert(name, value).is_some() {
                return Err(DecodeError { offset: start, detail: "a field name repeats".into() });
            }
        }
        Ok(Value::Object(map))
    }

    /// A timestamp extension of `len` data bytes (32, 64 or 96 bit); other extension types
    /// are not values.
    fn timestamp(&mut self, len: usize) -> Result<Date, DecodeError> {
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
        ms.ok_or_else(|| DecodeError {
            offset: start,
            detail: "a date outside years 0000 to 9999".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string and timestamp marker is classified as `decode_field` decodes it.
    #[test]
    fn field_kinds_match_the_decoded_values_for_every_marker() {
        let mut bytes = vec![0x88];
        let mut field = |name: u8, value: &[u8]| {
            bytes.extend([0xa1, name]);
            bytes.extend_from_slice(value);
        };
        field(b'a', &[&[0xa3][..], b"abc"].concat());
        field(b'b', &[&[0xd9, 40][..], &[b'x'; 40]].concat());
        field(b'c', &[&[0xda, 0, 3][..], b"abc"].concat());
        field(b'd', &[&[0xdb, 0, 0, 0, 2][..], b"ab"].concat());
        field(b'e', &[0xd6, 0xff, 0, 0, 0, 7]);
        field(b'f', &[0xd7, 0xff, 0, 0, 0, 4, 0, 0, 0, 7]);
        field(b'g', &[&[0xc7, 12, 0xff, 0, 0, 0, 1][..], &7i64.to_be_bytes()].concat());
        field(b'h', &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let spans = map_layout(&bytes).unwrap().unwrap();
        assert_eq!(spans.len(), 8);
        for span in &spans {
            let kind = field_kind(&bytes, span);
            let decoded = decode_field(&bytes, span).unwrap();
            let expected = match decoded {
                Value::String(_) => FieldKind::String,
                Value::Date(_) => FieldKind::Date,
                _ => FieldKind::Other,
            };
            assert_eq!(kind, expected, "{:?}: {decoded:?}", span.name(&bytes));
        }
        let kinds: Vec<FieldKind> = spans.iter().map(|span| field_kind(&bytes, span)).collect();
        assert_eq!(&kinds[..4], [FieldKind::String; 4]);
        assert_eq!(&kinds[4..7], [FieldKind::Date; 3]);
        assert_eq!(kinds[7], FieldKind::Other, "a u64 past i64 decodes as a float");
    }

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

    /// Each timestamp form is used up to its last instant, and the next one takes the wider
    /// form: 32-bit for whole seconds to 2^32 - 1, 64-bit below 2^34 seconds, else 96-bit.
    #[test]
    fn dates_take_the_smallest_timestamp_form_at_each_boundary() {
        let size = |ms: i64| {
            let value = Value::Date(Date::from_unix_ms(ms).unwrap());
            round_trip(value.clone());
            to_bytes(&value).len()
        };
        let u32_max_ms = i64::from(u32::MAX) * 1000;
        let limit_ms = TIMESTAMP_64_SECONDS_LIMIT as i64 * 1000;
        assert_eq!(size(0), 6);
        assert_eq!(size(u32_max_ms), 6, "the last whole second of the 32-bit form");
        assert_eq!(size(u32_max_ms + 1), 10, "a millisecond past it");
        assert_eq!(size(u32_max_ms + 1000), 10, "the next whole second");
        assert_eq!(size(1), 10, "milliseconds need the 64-bit form");
        assert_eq!(size(limit_ms - 1), 10, "the last instant of the 64-bit form");
        assert_eq!(size(limit_ms), 15);
        assert_eq!(size(-1), 15, "before 1970");
        assert_eq!(size(-1000), 15);
        assert_eq!(to_bytes(&Value::Date(Date::from_unix_ms(10_005).unwrap()))[..2], [0xd7, 0xff]);
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

    /// `map_layout` accepts only what `decode` accepts, and then every field decodes alone
    /// to the value the whole decode gives it.
    fn layout_agrees_with_decode(bytes: &[u8]) {
        let Ok(Some(spans)) = map_layout(bytes) else { return };
        let Ok(Value::Object(map)) = decode(bytes) else {
            panic!("layout accepted what decode refuses: {bytes:02x?}")
        };
        assert_eq!(spans.len(), map.len());
        for (span, (name, value)) in spans.iter().zip(&map) {
            assert_eq!(span.name(bytes), name.as_bytes());
            // Compared encoded: a mutated float may be NaN, which equals nothing.
            let alone = decode_field(bytes, span).expect("a layout-checked field decodes");
            assert_eq!(to_bytes(&alone), to_bytes(value), "{name}");
        }
    }

    #[test]
    fn layouts_locate_fields_and_check_what_decode_checks() {
        let doc = Value::from(serde_json::json!({
            "id": "abc", "n": 1, "x": -2.5, "tags": ["a", {"z": 1, "b": [true, null]}],
            "address": {"city": "paris", "geo": {"lat": 1.5, "lon": 2}}, "": "empty name"
        }));
        let bytes = to_bytes(&doc);
        let spans = map_layout(&bytes).unwrap().unwrap();
        assert_eq!(spans.len(), 6);
        layout_agrees_with_decode(&bytes);
        // Names out of order (another encoder), at the top or nested, or repeated: no layout.
        let unsorted = [0x82, 0xa1, b'b', 1, 0xa1, b'a', 2];
        assert_eq!(map_layout(&unsorted), Ok(None));
        assert!(decode(&unsorted).is_ok());
        let nested = [0x81, 0xa1, b'a', 0x82, 0xa1, b'b', 1, 0xa1, b'a', 2];
        assert_eq!(map_layout(&nested), Ok(None));
        assert_eq!(map_layout(&[0x82, 0xa1, b'a', 1, 0xa1, b'a', 2]), Ok(None));
        assert_eq!(map_layout(&[0x91, 0xc0]), Ok(None), "not a map");
        // Every bad input is refused by both (wrapped as a field's value).
        for bad in [&[0xc1][..], &[0xd9, 5, b'a'], &[0xa2, 0xff, 0xfe], &[0xd6, 0xff, 0, 0]] {
            let mut wrapped = vec![0x81, 0xa1, b'f'];
            wrapped.extend_from_slice(bad);
            assert!(map_layout(&wrapped).is_err(), "{wrapped:02x?}");
            assert!(decode(&wrapped).is_err());
        }
        for end in 0..bytes.len() {
            assert!(map_layout(&bytes[..end]).is_err(), "truncated at {end}");
        }
        // Random byte changes: whatever the layout accepts decodes, field by field.
        for_each_mutation(&bytes, layout_agrees_with_decode);
    }

    /// Calls `check` with 20,000 copies of `bytes`, each with one to three random bytes
    /// changed (seed `NANODB_TEST_SEED`, printed if `check` panics).
    fn for_each_mutation(bytes: &[u8], mut check: impl FnMut(&[u8])) {
        let seed = crate::test_support::seed_or(0x5eed);
        let mut rng = crate::test_support::Rng(seed);
        for _ in 0..20_000 {
            let mut mutated = bytes.to_vec();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(mutated.len());
                mutated[at] = rng.below(256) as u8;
            }
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&mutated)));
            if let Err(panic) = outcome {
                eprintln!("NANODB_TEST_SEED={seed} input {mutated:02x?}");
                std::panic::resume_unwind(panic);
            }
        }
    }

    #[test]
    fn chosen_fields_decode_alone_and_the_rest_is_only_bounded() {
        let doc = Value::from(serde_json::json!({
            "a": 1, "bio": "long text", "nested": {"x": [1, {"y": "z"}]}, "team": "t-1", "z": null
        }));
        let bytes = to_bytes(&doc);
        let Value::Object(all) = decode(&bytes).unwrap() else { panic!("a map") };
        let some = decode_fields(&bytes, &["team", "nested", "missing"]).unwrap();
        assert_eq!(some.len(), 2);
        assert_eq!(some.get("team"), all.get("team"));
        assert_eq!(some.get("nested"), all.get("nested"));
        assert_eq!(decode_fields(&bytes, &[]).unwrap().len(), 0);
        // Bad UTF-8 in a field not asked for is stepped over; in one asked for, refused.
        let mut bad = bytes.clone();
        let at = bad.windows(9).position(|w| w == b"long text").unwrap();
        bad[at] = 0xff;
        assert!(decode(&bad).is_err());
        assert!(decode_fields(&bad, &["team"]).is_some());
        assert!(decode_fields(&bad, &["bio"]).is_none());
        for end in 0..bytes.len() {
            assert!(decode_fields(&bytes[..end], &["a"]).is_none(), "truncated at {end}");
        }
        assert!(decode_fields(&[0x91, 0xc0], &["a"]).is_none(), "not a map");
        let deep = {
            let mut deep = vec![0x81, 0xa1, b'd'];
            deep.extend(std::iter::repeat_n(0x91, NESTING_DEPTH_MAX + 1));
            deep.push(0xc0);
            deep
        };
        assert!(decode_fields(&deep, &["a"]).is_none(), "too deep, even when stepped over");
        // Random byte changes: never a panic, and a field returned is the field decoded whole.
        for_each_mutation(&bytes, |mutated| {
            let picked = decode_fields(mutated, &["team", "nested"]);
            if let (Some(picked), Ok(Value::Object(whole))) = (picked, decode(mutated)) {
                for (name, value) in &picked {
                    assert_eq!(to_bytes(value), to_bytes(&whole[name]), "{name}");
                }
            }
        });
    }

    #[test]
    fn replacing_fields_encodes_as_the_merged_map_would() {
        let created = Value::Int(1);
        let id = Value::String("the-id".into());
        let updated = Value::Int(2);
        let replaced = [("created", &created), ("id", &id), ("updated", &updated)];
        let names: &[&[&str]] = &[
            &[],
            &["a", "b"],
            &["zz", "zzz"],
            &["", "d", "j", "v"],
            &["id", "x", "created"],
            &["a", "created", "id", "updated", "w"],
            &["ca", "cz", "ia", "iz", "ua", "uz"],
        ];
        for names in names {
            let mut fields = Map::new();
            for (i, name) in names.iter().enumerate() {
                fields.insert(name.to_string(), Value::Int(100 + i as i64));
            }
            let mut merged = fields.clone();
            for (name, value) in replaced {
                merged.insert(name.to_string(), value.clone());
            }
            let mut out = Vec::new();
            encode_map_replacing(&fields, &replaced, &mut out);
            assert_eq!(out, to_bytes(&Value::Object(merged)), "{names:?}");
            assert_eq!(encoded_map_layout(&out), map_layout(&out).unwrap(), "{names:?}");
            // From the encoded fields: the same bytes, and the layout it reports is the one a
            // pass over them finds.
            let body = to_bytes(&Value::Object(fields));
            let spans = encoded_map_layout(&body).unwrap();
            let mut copied = Vec::new();
            let layout = encode_spans_replacing(&body, &spans, &replaced, &mut copied);
            assert_eq!(copied, out, "{names:?}");
            assert_eq!(layout, encoded_map_layout(&copied), "{names:?}");
            // Appended after other bytes, it reports none (its offsets would be off).
            let mut after = vec![0xc0];
            assert_eq!(encode_spans_replacing(&body, &spans, &replaced, &mut after), None);
        }
    }
}
