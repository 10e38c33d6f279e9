//! The stored form of a document: what a collection's keyspace holds under a document's id,
//! made smaller than the document's MessagePack map so that the block cache holds more
//! documents (docs/format/documents.md).
//!
//! Form 1: the bytes `STORED_MARKER STORED_VERSION`, then the document's map as
//! `value::msgpack` encodes it (names ascending at every level), except that
//! - the top-level `id` field is left out: the key holds it;
//! - a map key, at any depth, may be an unsigned integer (positive fixint, uint 8 or uint 16)
//!   naming a name of the database's `FieldNames` table, in place of the name's string.
//!
//! A value that starts with a map marker is the earlier form, the plain map with `id`: it is
//! read as it is. `STORED_MARKER` (0xc1) is the one byte MessagePack never uses, so the two
//! cannot be confused.
//!
//! `expand` turns the stored form back into the document's map: it resolves the ids (an
//! unknown id is an error), puts `id` back in its place, and checks the whole map as
//! `msgpack::map_layout` does, in the same walk, laying out its top-level fields. All three
//! walks (`compact`'s, `expand`'s and `decode_fields`') are one copying walk, `copy_value`,
//! with a policy for map keys (`Keys`).
//!
//! Thread safety: pure functions over bytes and the shared name table.
//!
//! Invariant: `expand(compact(m), id) == m` for every map `m` encoded by `value::msgpack`
//! whose top-level `id` is the string `id`.

use crate::document::{DOCUMENT_SIZE_BYTES_MAX, FIELD_ID};
use crate::field_names::{internable, FieldNames, Ids};
use crate::value::msgpack::{
    self, encode_count, encode_str, encode_str_bytes, name_order, DecodeError, FieldSpan, Reader,
    Token,
};
use crate::value::{Map, Value};
use std::collections::HashSet;

/// First byte of a document in the stored form (a MessagePack marker that is never used).
pub(crate) const STORED_MARKER: u8 = 0xc1;
/// The stored form's version, its second byte.
pub(crate) const STORED_VERSION: u8 = 1;

/// Bytes before the map in the stored form.
const HEADER_BYTES: usize = 2;

/// True if `bytes` are in the stored form (not the earlier plain map).
pub(crate) fn is_stored_form(bytes: &[u8]) -> bool {
    bytes.first() == Some(&STORED_MARKER)
}

/// The stored form of the map `map` of document `id` (whose top-level `id` is that string),
/// interning the names it has that `names` lacks (see `FieldNames::intern`). An error only for
/// bytes that are not such a map, or a failed write of new names.
pub(crate) fn compact(map: &[u8], id: &str, names: &FieldNames) -> crate::Result<Vec<u8>> {
    let mut missing = Missing::default();
    {
        let ids = names.ids();
        missing.room = ids.room();
        let stored = encode(map, id, &ids, &mut missing).map_err(not_encodable)?;
        if missing.names.is_empty() {
            return Ok(stored);
        }
    }
    names.intern(&missing.names)?;
    encode(map, id, &names.ids(), &mut Missing::default()).map_err(not_encodable)
}

/// The names a document has that could be interned but are not, in the order met, each
/// once, at most `room` of them (what the table has room for).
#[derive(Default)]
struct Missing<'a> {
    names: Vec<&'a [u8]>,
    seen: HashSet<&'a [u8]>,
    room: usize,
}

impl<'a> Missing<'a> {
    fn note(&mut self, name: &'a [u8]) {
        if self.names.len() < self.room && internable(name) && self.seen.insert(name) {
            self.names.push(name);
        }
    }
}

fn not_encodable(error: DecodeError) -> crate::Error {
    crate::Error::invalid(format!("a document could not be put in its stored form: {error}"))
}

/// `compact` with the names in `ids`; the names not there are spelled out, and noted in
/// `missing`.
fn encode<'a>(
    map: &'a [u8],
    id: &str,
    ids: &Ids,
    missing: &mut Missing<'a>,
) -> Result<Vec<u8>, DecodeError> {
    let mut reader = Reader::new(map);
    let mut out = Vec::with_capacity(map.len());
    out.extend_from_slice(&[STORED_MARKER, STORED_VERSION]);
    let count = match reader.token()? {
        Token::Map(count) if count > 0 => count,
        _ => return Err(DecodeError { offset: 0, detail: "not a map with an id".into() }),
    };
    reader.enter(0, count, 2)?;
    encode_count(count - 1, 0x80, 0xde, &mut out);
    let mut interning = Interning { ids, missing };
    let mut has_id = false;
    for _ in 0..count {
        let name = reader.name_bytes()?;
        if name == FIELD_ID.as_bytes() && has_id {
            return Err(DecodeError { offset: reader.position(), detail: "a repeated id".into() });
        }
        if name == FIELD_ID.as_bytes() {
            // Left out: the reader puts the key back, so it must be what the map holds.
            let start = reader.position();
            if !matches!(reader.token()?, Token::Str(text) if text == id) {
                return Err(DecodeError {
                    offset: start,
                    detail: "an id other than the key".into(),
                });
            }
            has_id = true;
            continue;
        }
        interning.write(name, &mut out);
        copy_value(&mut reader, 1, &mut interning, &mut out)?;
    }
    reader.end()?;
    if !has_id {
        return Err(DecodeError { offset: 0, detail: "a document map without its id".into() });
    }
    Ok(out)
}

/// A name id in the fewest bytes: positive fixint, uint 8 or uint 16.
fn encode_id(id: u16, out: &mut Vec<u8>) {
    match id {
        0..=0x7f => out.push(id as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, id as u8]),
        _ => {
            out.push(0xcd);
            out.extend_from_slice(&id.to_be_bytes());
        }
    }
}

/// How `copy_value` reads and writes the map keys of the value it copies, and whether it
/// checks its scalars.
trait Keys<'a> {
    /// Reads one map key, writes it to `out` and returns the name it stands for.
    fn key(&mut self, reader: &mut Reader<'a>, out: &mut Vec<u8>) -> Result<&'a [u8], DecodeError>;

    /// Sees each name of a map after the one before it (`None` for the first).
    fn next_name(&mut self, _previous: Option<&'a [u8]>, _name: &'a [u8]) {}

    /// True to check scalars as `Reader::token` does (else only their bounds).
    fn checks_scalars(&self) -> bool {
        false
    }
}

/// Copies one value at `depth` to `out`, its containers re-counted and its map keys passed
/// through `keys`, within the nesting limit and the bytes.
fn copy_value<'a>(
    reader: &mut Reader<'a>,
    depth: usize,
    keys: &mut impl Keys<'a>,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    match reader.peek() {
        Some(0x80..=0x8f | 0xde | 0xdf) => {
            let Token::Map(count) = reader.token()? else { return Err(not_container()) };
            reader.enter(depth, count, 2)?;
            encode_count(count, 0x80, 0xde, out);
            let mut previous = None;
            for _ in 0..count {
                let name = keys.key(reader, out)?;
                keys.next_name(previous, name);
                previous = Some(name);
                copy_value(reader, depth + 1, keys, out)?;
            }
        }
        Some(0x90..=0x9f | 0xdc | 0xdd) => {
            let Token::Array(count) = reader.token()? else { return Err(not_container()) };
            reader.enter(depth, count, 1)?;
            encode_count(count, 0x90, 0xdc, out);
            for _ in 0..count {
                copy_value(reader, depth + 1, keys, out)?;
            }
        }
        _ => {
            let start = reader.position();
            if keys.checks_scalars() {
                reader.token()?;
            } else {
                reader.step_over(depth)?;
            }
            out.extend_from_slice(reader.since(start));
        }
    }
    Ok(())
}

/// `compact`'s keys: a name the table holds as its id, any other spelled out (and noted in
/// `missing`).
struct Interning<'i, 'a> {
    ids: &'i Ids,
    missing: &'i mut Missing<'a>,
}

impl<'a> Interning<'_, 'a> {
    fn write(&mut self, name: &'a [u8], out: &mut Vec<u8>) {
        match self.ids.get(name) {
            Some(id) => encode_id(id, out),
            None => {
                self.missing.note(name);
                encode_str_bytes(name, out);
            }
        }
    }
}

impl<'a> Keys<'a> for Interning<'_, 'a> {
    fn key(&mut self, reader: &mut Reader<'a>, out: &mut Vec<u8>) -> Result<&'a [u8], DecodeError> {
        let name = reader.name_bytes()?;
        self.write(name, out);
        Ok(name)
    }
}

/// `expand`'s and `decode_fields`' keys: an interned name's id resolved, a name spelled out
/// checked as `Reader::name` checks it, each written as a string within the size limit.
struct Resolving<'n> {
    names: &'n FieldNames,
    /// Check scalars and the order of names (`expand`), or only bounds (`decode_fields`,
    /// which decodes what it copies).
    checking: bool,
    /// False once some map's names were not in strictly ascending order.
    sorted: bool,
}

impl<'n> Resolving<'n> {
    /// Writes name `name` as a string, unless the map would grow past the size limit (names,
    /// and the `id` put back, are all that can make it larger than the stored form).
    fn write(
        &self,
        name: &[u8],
        reader: &Reader<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), DecodeError> {
        encode_str_bytes(name, out);
        check_size(out, reader)
    }
}

impl<'a, 'n: 'a> Keys<'a> for Resolving<'n> {
    fn key(&mut self, reader: &mut Reader<'a>, out: &mut Vec<u8>) -> Result<&'a [u8], DecodeError> {
        let name = expand_key(reader, self.names)?;
        self.write(name, reader, out)?;
        Ok(name)
    }

    fn next_name(&mut self, previous: Option<&'a [u8]>, name: &'a [u8]) {
        if previous.is_some_and(|previous| name_order(previous, name).is_ge()) {
            self.sorted = false;
        }
    }

    fn checks_scalars(&self) -> bool {
        self.checking
    }
}

/// An error once `out`, a map being put back together, is past `DOCUMENT_SIZE_BYTES_MAX`.
fn check_size(out: &[u8], reader: &Reader<'_>) -> Result<(), DecodeError> {
    if out.len() > DOCUMENT_SIZE_BYTES_MAX {
        return Err(DecodeError {
            offset: reader.position(),
            detail: format!("the document grows past {DOCUMENT_SIZE_BYTES_MAX} bytes"),
        });
    }
    Ok(())
}

fn not_container() -> DecodeError {
    DecodeError { offset: 0, detail: "a container marker without its count".into() }
}

/// A document map put back together from its stored form.
#[derive(Debug)]
pub(crate) struct Expanded {
    /// The map, `id` included.
    pub map: Vec<u8>,
    /// Its top-level fields, when every map in it lists its names in strictly ascending
    /// order (else `Document::decode` must decode it whole, as for `msgpack::map_layout`).
    pub spans: Option<Vec<FieldSpan>>,
}

/// The document map of `stored` (the stored form of document `id`): the ids of interned
/// names resolved through `names` and `id` put back, with every check `msgpack::map_layout`
/// makes (markers, lengths, UTF-8, dates, nesting depth, name lengths and order), so the
/// result needs no second walk. Errors for malformed bytes, an unknown name id, an `id` field
/// in the stored form, and a map that would grow past `DOCUMENT_SIZE_BYTES_MAX`.
pub(crate) fn expand(stored: &[u8], id: &str, names: &FieldNames) -> Result<Expanded, DecodeError> {
    match stored.get(1) {
        Some(&STORED_VERSION) => {}
        Some(version) => {
            return Err(DecodeError {
                offset: 1,
                detail: format!("stored form version {version}, this build reads {STORED_VERSION}"),
            })
        }
        None => return Err(DecodeError { offset: 1, detail: "truncated stored form".into() }),
    }
    let mut reader = Reader::new(stored);
    reader.rewind(HEADER_BYTES);
    let Token::Map(count) = reader.token()? else {
        return Err(DecodeError { offset: HEADER_BYTES, detail: "not a map".into() });
    };
    reader.enter(0, count, 2)?;
    let mut keys = Resolving { names, checking: true, sorted: true };
    // Names spelled out come back as they are; interned ones a little longer.
    let mut out = Vec::with_capacity(stored.len() + stored.len() / 2 + id.len() + 8);
    encode_count(count + 1, 0x80, 0xde, &mut out);
    let mut spans = Vec::with_capacity(count + 1);
    let mut previous: Option<&[u8]> = None;
    let mut id_written = false;
    for _ in 0..count {
        let start = reader.position();
        let name = expand_key(&mut reader, names)?;
        if name == FIELD_ID.as_bytes() {
            return Err(DecodeError {
                offset: start,
                detail: "an id field in the stored form".into(),
            });
        }
        if !id_written && name > FIELD_ID.as_bytes() {
            spans.push(write_id(id, &mut out));
            id_written = true;
            previous = Some(FIELD_ID.as_bytes());
        }
        keys.next_name(previous, name);
        previous = Some(name);
        keys.write(name, &reader, &mut out)?;
        let name_end = out.len();
        copy_value(&mut reader, 1, &mut keys, &mut out)?;
        spans.push(FieldSpan::new(name_end - name.len()..name_end, name_end..out.len()));
    }
    reader.end()?;
    if !id_written {
        spans.push(write_id(id, &mut out));
    }
    check_size(&out, &reader)?;
    Ok(Expanded { map: out, spans: keys.sorted.then_some(spans) })
}

/// Writes the field `id` (a top-level name and string) and returns its span.
fn write_id(id: &str, out: &mut Vec<u8>) -> FieldSpan {
    encode_str(FIELD_ID, out);
    let name_end = out.len();
    encode_str(id, out);
    FieldSpan::new(name_end - FIELD_ID.len()..name_end, name_end..out.len())
}

/// A map key of the stored form: an interned name's id, or the name spelled out (checked as
/// `Reader::name` checks it: a string of at most `FIELD_NAME_LEN_MAX` bytes).
fn expand_key<'a>(reader: &mut Reader<'a>, names: &'a FieldNames) -> Result<&'a [u8], DecodeError> {
    let start = reader.position();
    let id = match reader.peek() {
        Some(marker @ 0x00..=0x7f) => {
            reader.token()?;
            usize::from(marker)
        }
        Some(0xcc | 0xcd) => match reader.token()? {
            Token::Int(id) => id as usize,
            _ => return Err(DecodeError { offset: start, detail: "a bad name id".into() }),
        },
        _ => return reader.name().map(str::as_bytes),
    };
    names.name(id).map(str::as_bytes).ok_or_else(|| DecodeError {
        offset: start,
        detail: format!("field name id {id} is not in the database's name table"),
    })
}

/// `msgpack::decode_fields` of document `id` as stored (either form; the plain one is passed
/// to `msgpack::decode_fields` as it is). For the stored form: only the top-level fields
/// named in `wanted` (`id` among them, from the key), each decoded and checked; `None` when
/// the bytes are malformed where they were read (the caller decodes them whole to learn what
/// is wrong). Fields whose value is a map are put back together first (their names may be
/// interned).
pub(crate) fn decode_fields(
    stored: &[u8],
    id: &str,
    wanted: &[&str],
    names: &FieldNames,
) -> Option<Map> {
    if !is_stored_form(stored) {
        return msgpack::decode_fields(stored, wanted);
    }
    if stored.get(1) != Some(&STORED_VERSION) {
        return None;
    }
    let mut reader = Reader::new(stored);
    reader.rewind(HEADER_BYTES);
    let Ok(Token::Map(count)) = reader.token() else { return None };
    reader.enter(0, count, 2).ok()?;
    let mut fields = Map::new();
    if wanted.contains(&FIELD_ID) {
        fields.insert(FIELD_ID.to_string(), Value::String(id.to_string()));
    }
    let mut value = Vec::new();
    for _ in 0..count {
        let name = expand_key(&mut reader, names).ok()?;
        if let Some(wanted) = wanted.iter().find(|wanted| wanted.as_bytes() == name) {
            value.clear();
            let mut keys = Resolving { names, checking: false, sorted: true };
            copy_value(&mut reader, 1, &mut keys, &mut value).ok()?;
            if fields.insert(wanted.to_string(), msgpack::decode(&value).ok()?).is_some() {
                return None;
            }
        } else {
            reader.step_over(1).ok()?;
        }
    }
    reader.end().ok()?;
    Some(fields)
}

#[cfg(test)]
mod tests;
