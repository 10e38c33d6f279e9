//! A stored document's MessagePack straight into any `T: Deserialize`, without building a
//! `Value`: the typed collection's read path.
//!
//! `T` is given what serde's JSON data model would give it (`serde_json::from_value` of the
//! document's JSON), so a typed read means the same as before this path existed:
//! - whole numbers come as `u64` when not negative, else `i64`; floats as `f64`, NaN and the
//!   infinities (which JSON cannot hold) as null;
//! - dates come as their RFC 3339 text;
//! - strings are borrowed from the bytes (a `&str` field of `T` borrows them);
//! - an enum is a string (a unit variant) or a one-field map `{variant: content}`;
//! - `Option` is `None` for null (and for the floats JSON makes null), else `Some`;
//! - an array or map that `T` leaves partly unread is an error, as with JSON.
//!
//! Fields `T` does not ask for are stepped over without being decoded, with bounds and depth
//! checks only (a key that is not a string, or text that is not UTF-8, goes unseen there):
//! the typed collection hands it bytes that `Document::decode` has checked whole.
//!
//! Thread safety: pure functions.
//!
//! Invariant: for bytes `msgpack::decode` accepts, `from_document_bytes::<T>(bytes)` equals
//! `serde_json::from_value::<T>(serde_json::Value::from(decode(bytes)))`, errors aside (a
//! test compares them over random documents); any bytes give a value or an error, never a
//! panic or an allocation a forged count asks for.

use super::msgpack::{self, Reader, Token};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// Why a document could not be read as a `T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeserializeError(pub String);

impl fmt::Display for DeserializeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeserializeError {}

impl de::Error for DeserializeError {
    fn custom<M: fmt::Display>(message: M) -> Self {
        DeserializeError(message.to_string())
    }
}

impl From<msgpack::DecodeError> for DeserializeError {
    fn from(error: msgpack::DecodeError) -> Self {
        DeserializeError(error.to_string())
    }
}

type Outcome<T> = std::result::Result<T, DeserializeError>;

/// The value in `bytes` (one whole MessagePack value) as a `T`.
pub(crate) fn from_document_bytes<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Outcome<T> {
    let mut decoder = Decoder { reader: Reader::new(bytes), depth: 0 };
    let value = T::deserialize(&mut decoder)?;
    decoder.reader.end()?;
    Ok(value)
}

struct Decoder<'de> {
    reader: Reader<'de>,
    /// Containers open around the next value.
    depth: usize,
}

impl<'de> Decoder<'de> {
    /// Reads the head of an array or map of `count` items of at least `item_bytes_min` bytes.
    fn enter(&mut self, count: usize, item_bytes_min: usize) -> Outcome<()> {
        self.reader.enter(self.depth, count, item_bytes_min)?;
        self.depth += 1;
        Ok(())
    }

    /// After a container's visitor: every item must have been read.
    fn leave(&mut self, left: usize, what: &str) -> Outcome<()> {
        self.depth -= 1;
        if left > 0 {
            return Err(DeserializeError(format!("{left} more {what} than the type reads")));
        }
        Ok(())
    }

    fn seq<V: Visitor<'de>>(&mut self, count: usize, visitor: V) -> Outcome<V::Value> {
        self.enter(count, 1)?;
        let mut access = Items { decoder: self, left: count };
        let value = visitor.visit_seq(&mut access)?;
        let left = access.left;
        self.leave(left, "array items")?;
        Ok(value)
    }

    fn map<V: Visitor<'de>>(&mut self, count: usize, visitor: V) -> Outcome<V::Value> {
        self.enter(count, 2)?;
        let mut access = Fields { decoder: self, left: count };
        let value = visitor.visit_map(&mut access)?;
        let left = access.left;
        self.leave(left, "fields")?;
        Ok(value)
    }
}

impl<'de> de::Deserializer<'de> for &mut Decoder<'de> {
    type Error = DeserializeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Outcome<V::Value> {
        match self.reader.token()? {
            Token::Null => visitor.visit_unit(),
            Token::Bool(b) => visitor.visit_bool(b),
            Token::Int(n) => match u64::try_from(n) {
                Ok(n) => visitor.visit_u64(n),
                Err(_) => visitor.visit_i64(n),
            },
            Token::Float(x) if x.is_finite() => visitor.visit_f64(x),
            Token::Float(_) => visitor.visit_unit(),
            Token::Str(text) => visitor.visit_borrowed_str(text),
            Token::Date(date) => visitor.visit_string(date.to_rfc3339()),
            Token::Array(count) => self.seq(count, visitor),
            Token::Map(count) => self.map(count, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Outcome<V::Value> {
        let start = self.reader.position();
        match self.reader.token()? {
            Token::Null => visitor.visit_none(),
            Token::Float(x) if !x.is_finite() => visitor.visit_none(),
            _ => {
                self.reader.rewind(start);
                visitor.visit_some(self)
            }
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Outcome<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Outcome<V::Value> {
        match self.reader.token()? {
            Token::Str(variant) => visitor.visit_enum(variant.into_deserializer()),
            Token::Map(1) => {
                self.enter(1, 2)?;
                let variant = self.reader.name()?;
                let value = visitor.visit_enum(Variant { decoder: &mut *self, variant })?;
                self.leave(0, "fields")?;
                Ok(value)
            }
            _ => {
                Err(DeserializeError("an enum must be a string or a map of one field".to_string()))
            }
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Outcome<V::Value> {
        self.reader.step_over(self.depth)?;
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

/// The items of an array being read.
struct Items<'a, 'de> {
    decoder: &'a mut Decoder<'de>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = DeserializeError;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Outcome<Option<S::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.decoder).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// The fields of a map being read.
struct Fields<'a, 'de> {
    decoder: &'a mut Decoder<'de>,
    left: usize,
}

impl<'de> de::MapAccess<'de> for Fields<'_, 'de> {
    type Error = DeserializeError;

    fn next_key_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Outcome<Option<S::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let name = self.decoder.reader.name()?;
        seed.deserialize(MapKey(name)).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Outcome<S::Value> {
        seed.deserialize(&mut *self.decoder)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// A map key as JSON hands one over: its text, parsed when the type asks for a number or a
/// bool (a `HashMap<u32, _>` reads back the keys it was written with).
struct MapKey<'de>(&'de str);

macro_rules! parsed_key {
    ($($method:ident => $visit:ident: $type:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Outcome<V::Value> {
            match self.0.parse::<$type>() {
                Ok(key) => visitor.$visit(key),
                Err(_) => Err(de::Error::invalid_type(de::Unexpected::Str(self.0), &visitor)),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for MapKey<'de> {
    type Error = DeserializeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Outcome<V::Value> {
        visitor.visit_borrowed_str(self.0)
    }

    parsed_key!(deserialize_bool => visit_bool: bool, deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16, deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64, deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8, deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32, deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128, deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64);

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Outcome<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Outcome<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Outcome<V::Value> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// An enum variant with content: `{variant: content}`, the name read.
struct Variant<'a, 'de> {
    decoder: &'a mut Decoder<'de>,
    variant: &'de str,
}

impl<'a, 'de> de::EnumAccess<'de> for Variant<'a, 'de> {
    type Error = DeserializeError;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Outcome<(S::Value, Self)> {
        let name = seed.deserialize(
            de::value::BorrowedStrDeserializer::<DeserializeError>::new(self.variant),
        )?;
        Ok((name, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = DeserializeError;

    fn unit_variant(self) -> Outcome<()> {
        // `{variant: null}` is a unit variant to JSON too.
        de::Deserialize::deserialize(&mut *self.decoder)
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Outcome<S::Value> {
        seed.deserialize(&mut *self.decoder)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Outcome<V::Value> {
        de::Deserializer::deserialize_seq(&mut *self.decoder, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Outcome<V::Value> {
        de::Deserializer::deserialize_map(&mut *self.decoder, visitor)
    }
}

#[cfg(test)]
mod tests;
