//! `Document`: one stored object, with its `id`, `created` and `updated` fields, and the checks
//! every document passes before it is written.
//!
//! A document is a `Map` whose `id` is a string and whose `created` and `updated` are dates;
//! the collection sets all three (a caller may choose the id on insert). The rest are the
//! caller's fields. Limits: encoded size `DOCUMENT_SIZE_BYTES_MAX`, nesting
//! `NESTING_DEPTH_MAX`, field names `FIELD_NAME_LEN_MAX` bytes; field names may not be empty,
//! start with `$` (operators), or contain `.` (paths) or a NUL.
//!
//! Thread safety: `Send + Sync`; a stored document decodes each field once (`encoded`).
//!
//! Invariant: a `Document` read from a collection always has the three reserved fields with
//! their types (stored bytes without them are corruption); one a projection cut down always
//! keeps `id`.

mod encoded;
pub(crate) mod stored;

use crate::field_names::FieldNames;
use crate::value::{msgpack, Date, Map, Value, FIELD_NAME_LEN_MAX, NESTING_DEPTH_MAX};
use crate::{Error, Result};
use encoded::Encoded;

/// Largest encoded document, in bytes (16 MiB, MongoDB's limit).
pub const DOCUMENT_SIZE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// The reserved field holding a document's id.
pub const FIELD_ID: &str = "id";
/// The reserved field holding when a document was inserted.
pub const FIELD_CREATED: &str = "created";
/// The reserved field holding when a document last changed.
pub const FIELD_UPDATED: &str = "updated";

/// A stored document.
///
/// One read from a collection keeps its stored bytes and decodes each top-level field the
/// first time it is read (`get`, `id`, a query's filter), or all of them once by `fields`;
/// one a write returns holds its fields decoded.
#[derive(Clone)]
pub struct Document {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    Decoded(Map),
    Encoded(Box<Encoded>),
}

impl Document {
    fn check_reserved(&self, context: impl FnOnce() -> String) -> Result<()> {
        let ok = match &self.repr {
            // From the values' first bytes: a read decodes none of the three it does not use.
            Repr::Encoded(encoded) => {
                use msgpack::FieldKind;
                encoded.kind(FIELD_ID) == Some(FieldKind::String)
                    && encoded.kind(FIELD_CREATED) == Some(FieldKind::Date)
                    && encoded.kind(FIELD_UPDATED) == Some(FieldKind::Date)
            }
            Repr::Decoded(map) => {
                matches!(map.get(FIELD_ID), Some(Value::String(_)))
                    && matches!(map.get(FIELD_CREATED), Some(Value::Date(_)))
                    && matches!(map.get(FIELD_UPDATED), Some(Value::Date(_)))
            }
        };
        if !ok {
            return Err(Error::corruption(
                context(),
                "a document without its id, created or updated",
            ));
        }
        Ok(())
    }

    /// A document cut down by a query's projection (it may lack `created` and `updated`).
    pub(crate) fn projected(fields: Map) -> Document {
        Document { repr: Repr::Decoded(fields) }
    }

    /// Document `id` as a collection stores it (`stored`: either form), put back together
    /// (`stored::expand`) and then `decode`d.
    pub(crate) fn from_stored(
        bytes: Vec<u8>,
        id: &str,
        names: &FieldNames,
        context: impl FnOnce() -> String,
    ) -> Result<Document> {
        if !stored::is_stored_form(&bytes) {
            return Document::decode(bytes, context);
        }
        Document::from_stored_slice(&bytes, id, names, context)
    }

    /// `from_stored` of bytes read where they lie (`Keyspace::get_with`): a document in the
    /// stored form is put back together straight from them, one in the plain form copied.
    pub(crate) fn from_stored_slice(
        bytes: &[u8],
        id: &str,
        names: &FieldNames,
        context: impl FnOnce() -> String,
    ) -> Result<Document> {
        if !stored::is_stored_form(bytes) {
            return Document::decode(bytes.to_vec(), context);
        }
        match stored::expand(bytes, id, names) {
            Ok(stored::Expanded { map, spans: Some(spans) }) => {
                let document = Document::laid_out(map, spans);
                document.check_reserved(context)?;
                Ok(document)
            }
            Ok(stored::Expanded { map, spans: None }) => Document::decode(map, context),
            Err(error) => Err(Error::corruption(context(), error)),
        }
    }

    /// A stored document, checked whole but decoded field by field as it is read; `context`
    /// names it in an error (called only on failure, so reads do not format a name per
    /// document).
    pub(crate) fn decode(bytes: Vec<u8>, context: impl FnOnce() -> String) -> Result<Document> {
        let layout = msgpack::map_layout(&bytes);
        let document = match layout {
            Ok(Some(spans)) => {
                Document { repr: Repr::Encoded(Box::new(Encoded::new(bytes, spans))) }
            }
            Ok(None) | Err(_) => match msgpack::decode(&bytes) {
                Ok(Value::Object(fields)) => Document { repr: Repr::Decoded(fields) },
                Ok(other) => {
                    return Err(Error::corruption(
                        context(),
                        format!("a stored {} is not a document", other.type_name()),
                    ))
                }
                Err(error) => return Err(Error::corruption(context(), error)),
            },
        };
        document.check_reserved(context)?;
        Ok(document)
    }

    /// A document this process has just encoded from a checked map (a write's result): laid
    /// out without checking its bytes again.
    pub(crate) fn encoded(bytes: Vec<u8>, context: impl FnOnce() -> String) -> Result<Document> {
        match msgpack::encoded_map_layout(&bytes) {
            Some(spans) => {
                Ok(Document { repr: Repr::Encoded(Box::new(Encoded::new(bytes, spans))) })
            }
            None => Document::decode(bytes, context),
        }
    }

    /// A document this process has just written, with the layout the writing produced
    /// (`msgpack::encode_spans_replacing`).
    pub(crate) fn laid_out(bytes: Vec<u8>, spans: Vec<msgpack::FieldSpan>) -> Document {
        Document { repr: Repr::Encoded(Box::new(Encoded::new(bytes, spans))) }
    }

    /// The bytes of a document read from a collection or just written (checked, names
    /// ascending at every level), or `None` for one held as decoded fields (a projection, or
    /// stored bytes in another encoder's order).
    pub(crate) fn map_bytes(&self) -> Option<&[u8]> {
        match &self.repr {
            Repr::Decoded(_) => None,
            Repr::Encoded(encoded) => Some(encoded.bytes()),
        }
    }

    /// The value of top-level field `name` (a name, not a dotted path), if present; only that
    /// field is decoded.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match &self.repr {
            Repr::Decoded(map) => map.get(name),
            Repr::Encoded(encoded) => encoded.field(name),
        }
    }

    /// The document's id.
    pub fn id(&self) -> &str {
        self.field(FIELD_ID).and_then(Value::as_str).unwrap_or_default()
    }

    /// When the document was inserted.
    pub fn created(&self) -> Date {
        match self.field(FIELD_CREATED) {
            Some(Value::Date(date)) => *date,
            _ => Date::from_unix_ms(0).unwrap_or_else(Date::now),
        }
    }

    /// When the document last changed.
    pub fn updated(&self) -> Date {
        match self.field(FIELD_UPDATED) {
            Some(Value::Date(date)) => *date,
            _ => self.created(),
        }
    }

    /// The value at dotted `path`, if present.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let (head, rest) = path.split_once('.').unwrap_or((path, ""));
        let value = self.field(head)?;
        if rest.is_empty() {
            Some(value)
        } else {
            value.get_path(rest)
        }
    }

    /// All fields, the reserved ones included (decoding those not read yet).
    pub fn fields(&self) -> &Map {
        match &self.repr {
            Repr::Decoded(map) => map,
            Repr::Encoded(encoded) => encoded.map(),
        }
    }

    /// The fields, the reserved ones included.
    pub fn into_map(self) -> Map {
        match self.repr {
            Repr::Decoded(map) => map,
            Repr::Encoded(encoded) => encoded.into_map(),
        }
    }

    /// The document as a `Value::Object`.
    pub fn into_value(self) -> Value {
        Value::Object(self.into_map())
    }

    /// The document as JSON (dates as RFC 3339 strings).
    pub fn to_json(&self) -> serde_json::Value {
        Value::Object(self.fields().clone()).into()
    }
}

impl PartialEq for Document {
    fn eq(&self, other: &Document) -> bool {
        self.fields() == other.fields()
    }
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document").field("fields", self.fields()).finish()
    }
}

/// Checks the caller's fields of a document to be written: names and nesting (size is
/// checked on the encoded bytes by `check_size`).
pub(crate) fn check_fields(fields: &Map) -> Result<()> {
    // The reserved fields are the collection's to set: whatever the caller put under their
    // names is replaced, so it is not checked.
    let reserved = [FIELD_ID, FIELD_CREATED, FIELD_UPDATED];
    for (name, value) in fields.iter().filter(|(name, _)| !reserved.contains(&name.as_str())) {
        check_field_name(name)?;
        check_value(value, 1)?;
    }
    Ok(())
}

fn check_names(map: &Map, depth: usize) -> Result<()> {
    Error::check_limit("document nesting depth", depth, NESTING_DEPTH_MAX)?;
    for (name, value) in map {
        check_field_name(name)?;
        check_value(value, depth)?;
    }
    Ok(())
}

fn check_value(value: &Value, depth: usize) -> Result<()> {
    match value {
        Value::Object(inner) => check_names(inner, depth + 1),
        Value::Array(items) => {
            Error::check_limit("document nesting depth", depth + 1, NESTING_DEPTH_MAX)?;
            items.iter().try_for_each(|item| check_value(item, depth + 1))
        }
        _ => Ok(()),
    }
}

/// Checks one field name.
pub fn check_field_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > FIELD_NAME_LEN_MAX {
        return Error::check_limit("field name length in bytes", name.len(), FIELD_NAME_LEN_MAX);
    } else if name.starts_with('$') {
        "it starts with '$'"
    } else if name.contains('.') {
        "it contains '.'"
    } else if name.contains('\0') {
        "it contains a NUL"
    } else {
        return Ok(());
    };
    let shown: String = name.chars().take(80).collect();
    Err(Error::InvalidName { kind: "field", name: shown, reason: reason.into() })
}

/// Checks an encoded document's size.
pub(crate) fn check_size(encoded: &[u8]) -> Result<()> {
    Error::check_limit("document size in bytes", encoded.len(), DOCUMENT_SIZE_BYTES_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_objects(depth: usize) -> Map {
        let mut map: Map = [("leaf".to_string(), Value::Int(1))].into();
        for _ in 1..depth {
            map = [("n".to_string(), Value::Object(map))].into();
        }
        map
    }

    #[test]
    fn nesting_and_names_are_checked_at_their_limits() {
        assert!(check_fields(&nested_objects(NESTING_DEPTH_MAX)).is_ok());
        assert!(matches!(
            check_fields(&nested_objects(NESTING_DEPTH_MAX + 1)),
            Err(Error::LimitExceeded { what: "document nesting depth", .. })
        ));
        let mut deep_array = Value::Int(1);
        for _ in 0..NESTING_DEPTH_MAX {
            deep_array = Value::Array(vec![deep_array]);
        }
        let map: Map = [("a".to_string(), deep_array)].into();
        assert!(check_fields(&map).is_err(), "a document of depth 1 plus 64 arrays");
        for bad in ["", "$set", "a.b", "a\0"] {
            let map: Map = [(bad.to_string(), Value::Null)].into();
            assert!(matches!(check_fields(&map), Err(Error::InvalidName { .. })), "{bad:?}");
        }
        assert!(check_field_name(&"f".repeat(FIELD_NAME_LEN_MAX)).is_ok());
        assert!(matches!(
            check_field_name(&"f".repeat(FIELD_NAME_LEN_MAX + 1)),
            Err(Error::LimitExceeded { .. })
        ));
        assert!(check_size(&vec![0; DOCUMENT_SIZE_BYTES_MAX]).is_ok());
        assert!(check_size(&vec![0; DOCUMENT_SIZE_BYTES_MAX + 1]).is_err());
    }

    #[test]
    fn stored_documents_need_their_reserved_fields() {
        let mut map = Map::new();
        map.insert(FIELD_ID.into(), "abc".into());
        let bytes = msgpack::to_bytes(&Value::Object(map.clone()));
        assert!(matches!(
            Document::decode(bytes.clone(), || "test".into()),
            Err(Error::Corruption { .. })
        ));
        map.insert(FIELD_CREATED.into(), Value::Date(Date::now()));
        map.insert(FIELD_UPDATED.into(), Value::Date(Date::now()));
        let document =
            Document::decode(msgpack::to_bytes(&Value::Object(map)), || "test".into()).unwrap();
        assert_eq!(document.id(), "abc");
        assert!(matches!(
            Document::decode(vec![0x01], || "test".into()),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            Document::decode(vec![0xc1], || "test".into()),
            Err(Error::Corruption { .. })
        ));
    }

    /// Each reserved field of the wrong type (or missing) is corruption, whether the bytes are
    /// in the encoder's order (checked from the values' first bytes, `Repr::Encoded`) or not
    /// (decoded whole, `Repr::Decoded`).
    #[test]
    fn reserved_fields_of_the_wrong_type_are_corruption_in_both_representations() {
        let date = Value::Date(Date::now());
        let good: Map = [
            (FIELD_ID.to_string(), Value::from("abc")),
            (FIELD_CREATED.to_string(), date.clone()),
            (FIELD_UPDATED.to_string(), date.clone()),
            ("a".to_string(), Value::Int(1)),
        ]
        .into();
        // The same map with its names written in reverse order: not the encoder's layout.
        let reversed = |map: &Map| {
            let mut bytes = vec![0x80 | map.len() as u8];
            for (name, value) in map.iter().rev() {
                bytes.extend(msgpack::to_bytes(&Value::from(name.as_str())));
                bytes.extend(msgpack::to_bytes(value));
            }
            bytes
        };
        for (bytes, in_order) in
            [(msgpack::to_bytes(&Value::Object(good.clone())), true), (reversed(&good), false)]
        {
            let document = Document::decode(bytes, || "test".into()).unwrap();
            assert_eq!((document.id(), document.field("a")), ("abc", Some(&Value::Int(1))));
            // Both representations are tested: kept encoded only in the encoder's order.
            assert_eq!(document.map_bytes().is_some(), in_order);
        }
        let wrong = [Value::Int(7), Value::from("2026-11-22"), Value::Null, date.clone()];
        for field in [FIELD_ID, FIELD_CREATED, FIELD_UPDATED] {
            let mut cases: Vec<Option<&Value>> = wrong.iter().map(Some).collect();
            cases.push(None);
            for value in cases {
                let mut map = good.clone();
                match value {
                    Some(value) => map.insert(field.to_string(), value.clone()),
                    None => map.remove(field),
                };
                let fits = match field {
                    FIELD_ID => matches!(value, Some(Value::String(_))),
                    _ => matches!(value, Some(Value::Date(_))),
                };
                for bytes in [msgpack::to_bytes(&Value::Object(map.clone())), reversed(&map)] {
                    let decoded = Document::decode(bytes, || "test".into());
                    assert_eq!(decoded.is_ok(), fits, "{field} = {value:?}");
                    if let Err(error) = decoded {
                        assert!(matches!(error, Error::Corruption { .. }), "{error}");
                    }
                }
            }
        }
    }
}
