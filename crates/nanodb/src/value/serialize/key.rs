//! Map keys as JSON writes them: a key of a map being serialized becomes text (strings, chars,
//! integers, bools, finite floats, unit variants, newtypes of those); anything else is an
//! error.
//!
//! Thread safety: a stateless serializer.
//!
//! Invariant: a key's text is what `serde_json::to_value` makes of it (floats formatted by
//! `serde_json` itself, so `1.0` stays `"1.0"`).

use super::SerializeError;
use serde::ser::{self, Serialize};

/// A map key as the text JSON would make of it.
pub(super) struct KeyText;

/// A float key's text, as JSON writes it; a NaN or infinite key is an error, as in JSON.
fn float_key(
    key: f64,
    text: serde_json::Result<String>,
) -> std::result::Result<String, SerializeError> {
    match text {
        Ok(text) if key.is_finite() => Ok(text),
        _ => Err(ser::Error::custom("a float map key must be finite")),
    }
}

fn not_a_key<T>() -> std::result::Result<T, SerializeError> {
    Err(ser::Error::custom("a map key must be a string, a number or a bool"))
}

macro_rules! key_as_text {
    ($($method:ident: $type:ty),*) => {$(
        fn $method(self, key: $type) -> std::result::Result<String, SerializeError> {
            Ok(key.to_string())
        }
    )*};
}

impl ser::Serializer for KeyText {
    type Ok = String;
    type Error = SerializeError;
    type SerializeSeq = ser::Impossible<String, SerializeError>;
    type SerializeTuple = ser::Impossible<String, SerializeError>;
    type SerializeTupleStruct = ser::Impossible<String, SerializeError>;
    type SerializeTupleVariant = ser::Impossible<String, SerializeError>;
    type SerializeMap = ser::Impossible<String, SerializeError>;
    type SerializeStruct = ser::Impossible<String, SerializeError>;
    type SerializeStructVariant = ser::Impossible<String, SerializeError>;

    key_as_text!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16,
        serialize_i32: i32, serialize_i64: i64, serialize_i128: i128, serialize_u8: u8,
        serialize_u16: u16, serialize_u32: u32, serialize_u64: u64, serialize_u128: u128,
        serialize_char: char, serialize_str: &str);

    fn serialize_f32(self, key: f32) -> std::result::Result<String, SerializeError> {
        float_key(f64::from(key), serde_json::to_string(&key))
    }
    fn serialize_f64(self, key: f64) -> std::result::Result<String, SerializeError> {
        float_key(key, serde_json::to_string(&key))
    }
    fn serialize_bytes(self, _: &[u8]) -> std::result::Result<String, SerializeError> {
        not_a_key()
    }
    fn serialize_none(self) -> std::result::Result<String, SerializeError> {
        not_a_key()
    }
    fn serialize_some<T: Serialize + ?Sized>(
        self,
        _: &T,
    ) -> std::result::Result<String, SerializeError> {
        not_a_key()
    }
    fn serialize_unit(self) -> std::result::Result<String, SerializeError> {
        not_a_key()
    }
    fn serialize_unit_struct(self, _: &'static str) -> std::result::Result<String, SerializeError> {
        not_a_key()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> std::result::Result<String, SerializeError> {
        Ok(variant.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> std::result::Result<String, SerializeError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> std::result::Result<String, SerializeError> {
        not_a_key()
    }
    fn serialize_seq(
        self,
        _: Option<usize>,
    ) -> std::result::Result<Self::SerializeSeq, SerializeError> {
        not_a_key()
    }
    fn serialize_tuple(
        self,
        _: usize,
    ) -> std::result::Result<Self::SerializeTuple, SerializeError> {
        not_a_key()
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeTupleStruct, SerializeError> {
        not_a_key()
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeTupleVariant, SerializeError> {
        not_a_key()
    }
    fn serialize_map(
        self,
        _: Option<usize>,
    ) -> std::result::Result<Self::SerializeMap, SerializeError> {
        not_a_key()
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeStruct, SerializeError> {
        not_a_key()
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeStructVariant, SerializeError> {
        not_a_key()
    }
}
