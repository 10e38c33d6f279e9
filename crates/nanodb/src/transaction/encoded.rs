//! Writes of documents that come serialized (`value::serialize::to_document_bytes`: a checked
//! MessagePack map, names ascending at every level), for the typed collection: insert,
//! replace and upsert, as the `Map` writes of `Context` do them, without decoding the bytes.
//! The reserved fields are set by copying the caller's fields around them
//! (`msgpack::encode_spans_replacing`). A collection with a schema, whose checks work on a
//! `Map`, has the bytes decoded and the general path taken.
//!
//! Thread safety: as `Context` (used by the thread running its transaction).
//!
//! Invariant: an encoded write stores the bytes, index entries and change-feed events that
//! the `Map` write of the same fields stores (the typed tests compare them).

use super::{not_found, Context, Writes};
use crate::document::{Document, FIELD_CREATED, FIELD_ID, FIELD_UPDATED};
use crate::ttl::expired;
use crate::value::msgpack::{self, FieldSpan};
use crate::value::{Map, Value};
use crate::{Error, Result};

/// Bytes the reserved fields add to a document, besides the id's text: two dates (15 bytes
/// each), the three names and the id's string header (at most 25), a wider map header (4).
const STAMP_BYTES_MAX: usize = 2 * 15 + 25 + 4;

impl Context<'_> {
    /// Inserts a document given as the MessagePack map `body` (`serialize::to_document_bytes`:
    /// checked, names ascending), as `insert` inserts its decoded fields.
    pub fn insert_encoded(&self, writes: &mut Writes, body: &[u8]) -> Result<Document> {
        if self.has_schema() {
            return self.insert(writes, &decoded(body)?);
        }
        let spans = layout(body)?;
        let given = match spans.iter().find(|span| span.name(body) == FIELD_ID.as_bytes()) {
            Some(span) => Some(msgpack::decode_field(body, span).map_err(|_| not_a_map())?),
            None => None,
        };
        let (id, stored) = self.claim_id(writes, given.as_ref())?;
        // An expired document under the id is replaced as if it were gone.
        self.store_encoded(writes, &id, body, &spans, stored.as_ref(), false)
    }

    /// `replace` of a document given as `insert_encoded` takes it.
    pub fn replace_encoded(&self, writes: &mut Writes, id: &str, body: &[u8]) -> Result<Document> {
        if self.has_schema() {
            return self.replace(writes, id, &decoded(body)?);
        }
        let spans = layout(body)?;
        let Some(old) = self.read(writes, id)? else { return Err(not_found(id)) };
        self.store_encoded(writes, id, body, &spans, Some(&old), true)
    }

    /// `upsert` of a document given as `insert_encoded` takes it.
    pub fn upsert_encoded(&self, writes: &mut Writes, id: &str, body: &[u8]) -> Result<Document> {
        if self.has_schema() {
            return self.upsert(writes, id, &decoded(body)?);
        }
        let spans = layout(body)?;
        let stored = self.read_stored(writes, id)?;
        let live = stored.as_ref().is_some_and(|old| !expired(self.expiry, old));
        self.store_encoded(writes, id, body, &spans, stored.as_ref(), live)
    }

    /// Whether the collection checks documents against a schema (which works on decoded
    /// fields: the encoded writes decode and take the general path then).
    fn has_schema(&self) -> bool {
        self.state.spec.read().options.schema.is_some()
    }

    /// `store` of the encoded map `body` laid out as `spans`: the reserved fields are set by
    /// copying the caller's fields around them.
    fn store_encoded(
        &self,
        writes: &mut Writes,
        id: &str,
        body: &[u8],
        spans: &[FieldSpan],
        old: Option<&Document>,
        updating: bool,
    ) -> Result<Document> {
        let (created, updated) = self.stamp_times(writes, old, updating);
        let (created, updated) = (Value::Date(created), Value::Date(updated));
        let id_value = Value::String(id.to_string());
        let reserved =
            [(FIELD_CREATED, &created), (FIELD_ID, &id_value), (FIELD_UPDATED, &updated)];
        let mut bytes = Vec::with_capacity(body.len() + STAMP_BYTES_MAX + id.len());
        let written = msgpack::encode_spans_replacing(body, spans, &reserved, &mut bytes);
        self.write_stamped(writes, id, bytes, written, old, updating)
    }
}

fn not_a_map() -> Error {
    Error::invalid("a serialized document is not a valid map")
}

/// The top-level fields of a serialized document.
fn layout(body: &[u8]) -> Result<Vec<FieldSpan>> {
    msgpack::encoded_map_layout(body).ok_or_else(not_a_map)
}

/// A serialized document's fields, decoded.
fn decoded(body: &[u8]) -> Result<Map> {
    match msgpack::decode(body).map_err(|_| not_a_map())? {
        Value::Object(fields) => Ok(fields),
        _ => Err(not_a_map()),
    }
}
