//! Any `T: Serialize` straight to a document's MessagePack, without building a `Value`: the
//! typed collection's write path.
//!
//! The bytes are exactly those `msgpack::encode` writes for the `Value` that serde's JSON data
//! model makes of `T` (`serde_json::to_value`, then `Value::from`), and the checks are those a
//! `Value` document passes (`document::check_fields`), so a typed write stores what the
//! dynamic one would:
//! - integers are `Int` when they fit an `i64`, else floats up to `u64::MAX` (past that, an
//!   `i128` or `u128` is refused, as JSON refuses it); NaN and the infinities are null;
//! - `None`, `()` and unit structs are null; a unit variant is its name as a string; a
//!   newtype, tuple or struct variant is a one-field map `{variant: content}`; bytes are an
//!   array of numbers;
//! - map keys may be strings, chars, integers, bools or finite floats (written as JSON writes
//!   them, as text);
//! - every map's names are written in ascending byte order, a repeated name keeping its last
//!   value (as `serde_json::Map` does), so a stored document has the layout `Encoded` reads;
//! - names are checked as field names and nesting as `NESTING_DEPTH_MAX`, except inside the
//!   top-level fields the collection sets (`id`, `created`, `updated`), which it replaces:
//!   `created` and `updated` are left out, and an `id` that is an array or an object is
//!   written empty (the insert only needs its type, to refuse it).
//!
//! One difference remains, for maps that repeat a name (only hand-written `Serialize`
//! impls and `#[serde(flatten)]` collisions do): the value a repeat replaces is checked too.
//!
//! Thread safety: pure functions.
//!
//! Invariant: `to_document_bytes(v)` equals `msgpack::to_bytes(&Value::from(to_value(v)))`
//! with `created` and `updated` taken out, whenever the latter is a valid document (a test
//! compares them over random values).

use super::{msgpack, NESTING_DEPTH_MAX};
use crate::document::{check_field_name, FIELD_CREATED, FIELD_ID, FIELD_UPDATED};
use crate::{Error, Result};
use msgpack::name_order;
use serde::ser::{self, Serialize};
use std::fmt;

/// `value` as a document's MessagePack map (its reserved fields as `value` has them).
pub(crate) fn to_document_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut encoder = Encoder::default();
    value.serialize(&mut encoder).map_err(|error| error.0)?;
    let bytes = encoder.out;
    if !matches!(bytes.first(), Some(0x80..=0x8f | 0xde | 0xdf)) {
        let kind = msgpack::decode(&bytes).map_or("value", |value| value.type_name());
        return Err(Error::invalid(format!("a document must be an object, not a {kind}")));
    }
    Ok(bytes)
}

/// A serialization failure: the crate's error, carried through serde.
#[derive(Debug)]
pub(crate) struct SerializeError(Error);

impl fmt::Display for SerializeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SerializeError {}

impl ser::Error for SerializeError {
    fn custom<M: fmt::Display>(message: M) -> Self {
        SerializeError(Error::invalid(message.to_string()))
    }
}

impl From<Error> for SerializeError {
    fn from(error: Error) -> Self {
        SerializeError(error)
    }
}

/// What each step of the serializer returns.
type Written = std::result::Result<(), SerializeError>;

/// Where one field of a map being written lies in `Encoder::out`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    name_start: usize,
    value_start: usize,
    value_end: usize,
}

#[derive(Default)]
struct Encoder {
    out: Vec<u8>,
    /// Containers open around the next value (the document itself is 1).
    depth: usize,
    /// Containers open below a reserved top-level field (0 outside one): not checked.
    unchecked: usize,
    /// The fields of the maps being written, innermost last (each map knows where its own
    /// begin).
    entries: Vec<Entry>,
    /// Room to reorder a map's fields.
    scratch: Vec<u8>,
    /// A map's fields in name order, while they are reordered.
    sorted: Vec<Entry>,
}

impl Encoder {
    fn enter(&mut self) -> Written {
        self.depth += 1;
        if self.unchecked > 0 {
            self.unchecked += 1;
        } else if self.depth > 1 {
            Error::check_limit("document nesting depth", self.depth, NESTING_DEPTH_MAX)?;
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
        if self.unchecked > 0 {
            self.unchecked -= 1;
        }
    }

    /// Starts a container: a one-byte placeholder for its marker (`finish` widens it).
    fn open(&mut self) -> std::result::Result<usize, SerializeError> {
        self.enter()?;
        self.out.push(0);
        Ok(self.out.len() - 1)
    }

    /// Writes the marker of the container begun at `start` with `count` items.
    fn finish(&mut self, start: usize, count: usize, fix: u8, wide: u8) {
        match count {
            0..=15 => self.out[start] = fix | count as u8,
            16..=0xffff => {
                self.out[start] = wide;
                self.out.splice(start + 1..start + 1, (count as u16).to_be_bytes());
            }
            _ => {
                self.out[start] = wide + 1;
                self.out.splice(start + 1..start + 1, (count as u32).to_be_bytes());
            }
        }
        self.leave();
    }

    fn float(&mut self, x: f64) -> Written {
        if x.is_finite() {
            self.out.push(0xcb);
            self.out.extend_from_slice(&x.to_bits().to_be_bytes());
        } else {
            self.out.push(0xc0);
        }
        Ok(())
    }

    fn name(&mut self, name: &str) -> Written {
        // Inside a reserved field nothing is kept: no name is checked.
        if self.unchecked == 0 {
            check_field_name(name)?;
        }
        msgpack::encode_str(name, &mut self.out);
        Ok(())
    }

    /// Starts a one-field map `{variant: ...}` (an enum's newtype, tuple or struct variant).
    fn variant(&mut self, variant: &str) -> Written {
        self.enter()?;
        self.out.push(0x81);
        self.name(variant)
    }
}

macro_rules! integer {
    ($($method:ident: $type:ty),*) => {$(
        fn $method(self, n: $type) -> Written {
            match (i64::try_from(n), u64::try_from(n)) {
                (Ok(n), _) => msgpack::encode_int(n, &mut self.out),
                // What JSON's `Number` holds past `i64`, and `Value` keeps as a float.
                (Err(_), Ok(n)) => return self.float(n as f64),
                (Err(_), Err(_)) => return Err(ser::Error::custom("number out of range")),
            }
            Ok(())
        }
    )*};
}

impl<'a> ser::Serializer for &'a mut Encoder {
    type Ok = ();
    type Error = SerializeError;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = MapWriter<'a>;
    type SerializeStruct = MapWriter<'a>;
    type SerializeStructVariant = MapWriter<'a>;

    integer!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);

    fn serialize_bool(self, b: bool) -> Written {
        self.out.push(if b { 0xc3 } else { 0xc2 });
        Ok(())
    }

    fn serialize_f32(self, x: f32) -> Written {
        self.float(f64::from(x))
    }

    fn serialize_f64(self, x: f64) -> Written {
        self.float(x)
    }

    fn serialize_char(self, c: char) -> Written {
        self.serialize_str(c.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, text: &str) -> Written {
        msgpack::encode_str(text, &mut self.out);
        Ok(())
    }

    fn serialize_bytes(self, bytes: &[u8]) -> Written {
        let start = self.open()?;
        for &byte in bytes {
            msgpack::encode_int(i64::from(byte), &mut self.out);
        }
        self.finish(start, bytes.len(), 0x90, 0xdc);
        Ok(())
    }

    fn serialize_none(self) -> Written {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Written {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Written {
        self.out.push(0xc0);
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Written {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Written {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Written {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Written {
        self.variant(variant)?;
        value.serialize(&mut *self)?;
        self.leave();
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> std::result::Result<Seq<'a>, SerializeError> {
        let start = self.open()?;
        Ok(Seq { encoder: self, start, count: 0, variant: false })
    }

    fn serialize_tuple(self, len: usize) -> std::result::Result<Seq<'a>, SerializeError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> std::result::Result<Seq<'a>, SerializeError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> std::result::Result<Seq<'a>, SerializeError> {
        self.variant(variant)?;
        let start = self.open()?;
        Ok(Seq { encoder: self, start, count: 0, variant: true })
    }

    fn serialize_map(
        self,
        _len: Option<usize>,
    ) -> std::result::Result<MapWriter<'a>, SerializeError> {
        MapWriter::begin(self, false)
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> std::result::Result<MapWriter<'a>, SerializeError> {
        MapWriter::begin(self, false)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> std::result::Result<MapWriter<'a>, SerializeError> {
        self.variant(variant)?;
        MapWriter::begin(self, true)
    }
}

/// An array being written.
pub(crate) struct Seq<'a> {
    encoder: &'a mut Encoder,
    start: usize,
    count: usize,
    /// Inside a variant's one-field map, closed with it.
    variant: bool,
}

impl Seq<'_> {
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Written {
        self.count += 1;
        value.serialize(&mut *self.encoder)
    }

    fn close(self) -> Written {
        self.encoder.finish(self.start, self.count, 0x90, 0xdc);
        if self.variant {
            self.encoder.leave();
        }
        Ok(())
    }
}

macro_rules! seq_impl {
    ($($trait:ident: $method:ident),*) => {$(
        impl ser::$trait for Seq<'_> {
            type Ok = ();
            type Error = SerializeError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Written {
                self.item(value)
            }
            fn end(self) -> Written {
                self.close()
            }
        }
    )*};
}

seq_impl!(SerializeSeq: serialize_element, SerializeTuple: serialize_element,
    SerializeTupleStruct: serialize_field, SerializeTupleVariant: serialize_field);

/// A map (or struct) being written: its fields as they come, put in name order at the end.
pub(crate) struct MapWriter<'a> {
    encoder: &'a mut Encoder,
    start: usize,
    /// Where this map's entries begin in `Encoder::entries`.
    first_entry: usize,
    /// The document itself (depth 1), whose reserved fields are not checked.
    top: bool,
    /// Inside a variant's one-field map, closed with it.
    variant: bool,
}

impl<'a> MapWriter<'a> {
    fn begin(
        encoder: &'a mut Encoder,
        variant: bool,
    ) -> std::result::Result<MapWriter<'a>, SerializeError> {
        let start = encoder.open()?;
        let top = encoder.depth == 1;
        let first_entry = encoder.entries.len();
        Ok(MapWriter { encoder, start, first_entry, top, variant })
    }

    fn key(&mut self, name: &str) -> Written {
        let name_start = self.encoder.out.len();
        self.encoder.name(name)?;
        let value_start = self.encoder.out.len();
        self.encoder.entries.push(Entry { name_start, value_start, value_end: value_start });
        if self.top && [FIELD_ID, FIELD_CREATED, FIELD_UPDATED].contains(&name) {
            self.encoder.unchecked = 1;
        }
        Ok(())
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Written {
        let written = value.serialize(&mut *self.encoder);
        let reserved = self.top && std::mem::take(&mut self.encoder.unchecked) > 0;
        written?;
        let encoder = &mut *self.encoder;
        let Some(entry) = encoder.entries[self.first_entry..].last_mut() else {
            return Err(ser::Error::custom("a map value without its key"));
        };
        if reserved {
            // The collection sets these: `created` and `updated` go; of an `id` that is no
            // string only its type matters (the insert refuses it by that).
            let name = msgpack::str_content(&encoder.out[entry.name_start..entry.value_start]);
            if name != FIELD_ID.as_bytes() {
                encoder.out.truncate(entry.name_start);
                encoder.entries.pop();
                return Ok(());
            }
            let empty = match encoder.out.get(entry.value_start) {
                Some(0x80..=0x8f | 0xde | 0xdf) => Some(0x80),
                Some(0x90..=0x9f | 0xdc | 0xdd) => Some(0x90),
                _ => None,
            };
            if let Some(empty) = empty {
                encoder.out.truncate(entry.value_start);
                encoder.out.push(empty);
            }
        }
        entry.value_end = encoder.out.len();
        Ok(())
    }

    fn close(self) -> Written {
        let MapWriter { encoder, start, first_entry, variant, .. } = self;
        let count = sort_entries(encoder, start + 1, first_entry);
        encoder.entries.truncate(first_entry);
        encoder.finish(start, count, 0x80, 0xde);
        if variant {
            encoder.leave();
        }
        Ok(())
    }
}

/// Puts the fields written from `content_start` (entries from `first_entry` on) in ascending
/// name order, the last of equal names kept; returns how many remain.
fn sort_entries(encoder: &mut Encoder, content_start: usize, first_entry: usize) -> usize {
    let out = &encoder.out;
    let entries = &mut encoder.entries[first_entry..];
    let name = |entry: &Entry| msgpack::str_content(&out[entry.name_start..entry.value_start]);
    let ascending =
        entries.windows(2).all(|pair| name_order(name(&pair[0]), name(&pair[1])).is_lt());
    if ascending {
        return entries.len();
    }
    // Stable: of equal names the last written stays last, and is the one kept.
    entries.sort_by(|a, b| name_order(name(a), name(b)));
    let mut kept = std::mem::take(&mut encoder.sorted);
    kept.clear();
    for entry in entries.iter() {
        match kept.last_mut() {
            Some(last) if name(last) == name(entry) => *last = *entry,
            _ => kept.push(*entry),
        }
    }
    encoder.scratch.clear();
    encoder.scratch.extend_from_slice(&encoder.out[content_start..]);
    encoder.out.truncate(content_start);
    for entry in &kept {
        let (from, to) = (entry.name_start - content_start, entry.value_end - content_start);
        encoder.out.extend_from_slice(&encoder.scratch[from..to]);
    }
    let count = kept.len();
    encoder.sorted = kept;
    count
}

impl ser::SerializeMap for MapWriter<'_> {
    type Ok = ();
    type Error = SerializeError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Written {
        let name = key.serialize(key::KeyText)?;
        self.key(&name)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Written {
        self.value(value)
    }

    fn end(self) -> Written {
        self.close()
    }
}

macro_rules! struct_impl {
    ($($trait:ident),*) => {$(
        impl ser::$trait for MapWriter<'_> {
            type Ok = ();
            type Error = SerializeError;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                name: &'static str,
                value: &T,
            ) -> Written {
                self.key(name)?;
                self.value(value)
            }

            fn end(self) -> Written {
                self.close()
            }
        }
    )*};
}

struct_impl!(SerializeStruct, SerializeStructVariant);

mod key;

#[cfg(test)]
mod tests;
