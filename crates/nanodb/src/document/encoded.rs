//! `Encoded`: a stored document kept as its MessagePack bytes, each top-level field decoded
//! only when it is first read. A query that tests one field of a million documents, or a
//! caller that reads two fields of each, then builds two values per document instead of a
//! whole map of them.
//!
//! The bytes are checked whole when the document is read (`stored::expand` as it puts a
//! stored document back together, or `msgpack::map_layout` for one in the plain form: every
//! marker, length, string, date and nesting depth, and the names of every map in strictly
//! ascending order, as the encoder writes them), so decoding a field later cannot fail.
//! Stored bytes that pass the checks but are not in that order (another encoder's) are
//! decoded whole at once instead (`Document::decode`). The document a write returns is laid
//! out without the checks (`msgpack::encoded_map_layout`): its bytes were just encoded from
//! checked values.
//!
//! Thread safety: `Send + Sync`; each field, and the whole map, is decoded at most once
//! (`OnceLock`), whichever thread reads it first.
//!
//! Invariants:
//! 1. `fields` are the top-level fields of `bytes` in strictly ascending name order, so a name
//!    is found by binary search.
//! 2. Once `map` is set, it holds exactly the fields' decoded values.

use crate::value::msgpack::{self, FieldSpan};
use crate::value::{Map, Value};
use std::sync::OnceLock;

/// One top-level field: where it lies, and its value once decoded.
#[derive(Debug, Clone)]
struct LazyField {
    span: FieldSpan,
    value: OnceLock<Value>,
}

/// A document as stored, decoded field by field on demand.
#[derive(Debug, Clone)]
pub(super) struct Encoded {
    bytes: Vec<u8>,
    fields: Box<[LazyField]>,
    map: OnceLock<Map>,
}

impl Encoded {
    /// `bytes` with their layout from `msgpack::map_layout`.
    pub(super) fn new(bytes: Vec<u8>, spans: Vec<FieldSpan>) -> Encoded {
        let fields =
            spans.into_iter().map(|span| LazyField { span, value: OnceLock::new() }).collect();
        Encoded { bytes, fields, map: OnceLock::new() }
    }

    /// The document's stored bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn position(&self, name: &str) -> Option<usize> {
        let name = name.as_bytes();
        self.fields
            .binary_search_by(|field| msgpack::name_order(field.span.name(&self.bytes), name))
            .ok()
    }

    fn decoded<'a>(&'a self, field: &'a LazyField) -> &'a Value {
        // The bytes passed `map_layout`, which checks all that decoding checks: this cannot
        // fail (a test decodes every layout-checked input).
        field
            .value
            .get_or_init(|| msgpack::decode_field(&self.bytes, &field.span).unwrap_or(Value::Null))
    }

    /// The value of top-level field `name`, decoding it on first use.
    pub(super) fn field(&self, name: &str) -> Option<&Value> {
        if let Some(map) = self.map.get() {
            return map.get(name);
        }
        let position = self.position(name)?;
        Some(self.decoded(&self.fields[position]))
    }

    /// The kind of top-level field `name`'s value, without decoding it (`None` if absent).
    pub(super) fn kind(&self, name: &str) -> Option<msgpack::FieldKind> {
        let position = self.position(name)?;
        Some(msgpack::field_kind(&self.bytes, &self.fields[position].span))
    }

    /// All fields, decoded (once) into a map.
    pub(super) fn map(&self) -> &Map {
        self.map.get_or_init(|| {
            self.fields
                .iter()
                .map(|field| (self.name_of(field), self.decoded(field).clone()))
                .collect()
        })
    }

    /// All fields as a map, reusing what was decoded already.
    pub(super) fn into_map(self) -> Map {
        let Encoded { bytes, fields, map } = self;
        if let Some(map) = map.into_inner() {
            return map;
        }
        fields
            .into_vec()
            .into_iter()
            .map(|field| {
                let name = String::from_utf8_lossy(field.span.name(&bytes)).into_owned();
                let value = match field.value.into_inner() {
                    Some(value) => value,
                    None => msgpack::decode_field(&bytes, &field.span).unwrap_or(Value::Null),
                };
                (name, value)
            })
            .collect()
    }

    fn name_of(&self, field: &LazyField) -> String {
        // Names passed UTF-8 validation in `map_layout`.
        String::from_utf8_lossy(field.span.name(&self.bytes)).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Date;

    fn sample() -> Map {
        let mut inner = Map::new();
        inner.insert("zip".into(), Value::Int(12345));
        inner.insert("city".into(), "paris".into());
        let mut map = Map::new();
        map.insert("id".into(), "abc".into());
        map.insert("created".into(), Value::Date(Date::now()));
        map.insert("address".into(), Value::Object(inner));
        map.insert("tags".into(), Value::Array(vec!["a".into(), Value::Null, Value::Float(1.5)]));
        map.insert("zzz".into(), Value::Bool(true));
        map.insert("".into(), Value::Int(-7));
        map
    }

    fn encoded(map: &Map) -> Encoded {
        let bytes = msgpack::to_bytes(&Value::Object(map.clone()));
        let spans = msgpack::map_layout(&bytes).unwrap().expect("the encoder sorts names");
        Encoded::new(bytes, spans)
    }

    #[test]
    fn fields_decode_one_at_a_time_and_agree_with_the_whole() {
        let map = sample();
        let document = encoded(&map);
        for (name, value) in &map {
            assert_eq!(document.field(name), Some(value), "{name}");
        }
        assert_eq!(document.field("missing"), None);
        assert_eq!(document.field("zz"), None);
        assert_eq!(document.map(), &map);
        assert_eq!(document.field("zzz"), Some(&Value::Bool(true)), "after the map is built");
        assert_eq!(encoded(&map).into_map(), map, "nothing decoded yet");
        let partly = encoded(&map);
        partly.field("tags");
        assert_eq!(partly.into_map(), map, "one field decoded");
        let whole = encoded(&map);
        whole.map();
        assert_eq!(whole.into_map(), map, "the map built");
    }
}
