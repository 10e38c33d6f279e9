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
//! `expand` turns the stored form back into the document's map, which `Document::decode`
//! then checks whole as before: it only has to stay within the bytes, resolve the ids (an
//! unknown id is an error) and put `id` back in its place.
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
    let mut has_id = false;
    for _ in 0..count {
        let name = reader.name_bytes()?;
        if name == FIELD_ID.as_bytes() && !has_id {
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
        encode_key(name, ids, missing, &mut out);
        encode_value(&mut reader, 1, ids, missing, &mut out)?;
    }
    reader.end()?;
    if !has_id {
        return Err(DecodeError { offset: 0, detail: "a document map without its id".into() });
    }
    Ok(out)
}

/// Writes map key `name`: its id when interned, else the string.
fn encode_key<'a>(name: &'a [u8], ids: &Ids, missing: &mut Missing<'a>, out: &mut Vec<u8>) {
    match ids.get(name) {
        Some(id) => encode_id(id, out),
        None => {
            missing.note(name);
            encode_str_bytes(name, out);
        }
    }
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

/// Copies one value at `depth`, with the keys of its maps encoded by `encode_key`.
fn encode_value<'a>(
    reader: &mut Reader<'a>,
    depth: usize,
    ids: &Ids,
    missing: &mut Missing<'a>,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    match reader.peek() {
        Some(0x80..=0x8f | 0xde | 0xdf) => {
            let Token::Map(count) = reader.token()? else { return Err(not_container()) };
            reader.enter(depth, count, 2)?;
            encode_count(count, 0x80, 0xde, out);
            for _ in 0..count {
                let name = reader.name_bytes()?;
                encode_key(name, ids, missing, out);
                encode_value(reader, depth + 1, ids, missing, out)?;
            }
        }
        Some(0x90..=0x9f | 0xdc | 0xdd) => {
            let Token::Array(count) = reader.token()? else { return Err(not_container()) };
            reader.enter(depth, count, 1)?;
            encode_count(count, 0x90, 0xdc, out);
            for _ in 0..count {
                encode_value(reader, depth + 1, ids, missing, out)?;
            }
        }
        _ => {
            let start = reader.position();
            reader.step_over(depth)?;
            out.extend_from_slice(reader.since(start));
        }
    }
    Ok(())
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
    let mut walk = Walk {
        names,
        // Names spelled out come back as they are; interned ones a little longer.
        out: Vec::with_capacity(stored.len() + stored.len() / 2 + id.len() + 8),
        sorted: true,
    };
    encode_count(count + 1, 0x80, 0xde, &mut walk.out);
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
            spans.push(walk.id(id));
            id_written = true;
            previous = Some(FIELD_ID.as_bytes());
        }
        walk.note_order(previous, name);
        previous = Some(name);
        walk.name(name, &reader)?;
        let name_end = walk.out.len();
        let value_start = name_end;
        walk.value(&mut reader, 1)?;
        spans.push(FieldSpan::new(name_end - name.len()..name_end, value_start..walk.out.len()));
    }
    reader.end()?;
    if !id_written {
        spans.push(walk.id(id));
    }
    walk.check_size(&reader)?;
    let sorted = walk.sorted;
    Ok(Expanded { map: walk.out, spans: sorted.then_some(spans) })
}

/// The state of `expand`'s walk.
struct Walk<'n> {
    names: &'n FieldNames,
    out: Vec<u8>,
    /// False once some map's names were not in strictly ascending order.
    sorted: bool,
}

impl<'n> Walk<'n> {
    /// Writes the field `id` (a top-level name and string) and returns its span.
    fn id(&mut self, id: &str) -> FieldSpan {
        encode_str(FIELD_ID, &mut self.out);
        let name_end = self.out.len();
        encode_str(id, &mut self.out);
        FieldSpan::new(name_end - FIELD_ID.len()..name_end, name_end..self.out.len())
    }

    fn note_order(&mut self, previous: Option<&[u8]>, name: &[u8]) {
        if previous.is_some_and(|previous| name_order(previous, name).is_ge()) {
            self.sorted = false;
        }
    }

    /// Writes map key `name` as a string, unless the map would grow past the size limit
    /// (names, and the `id` put back, are all that can make it larger than the stored form).
    fn name(&mut self, name: &[u8], reader: &Reader<'_>) -> Result<(), DecodeError> {
        encode_str_bytes(name, &mut self.out);
        self.check_size(reader)
    }

    fn check_size(&self, reader: &Reader<'_>) -> Result<(), DecodeError> {
        check_size(&self.out, reader)
    }

    /// Reads a map key (an interned name's id, or the name spelled out, checked as
    /// `Reader::name` checks it) and writes it as a string; returns the name.
    fn key<'a>(&mut self, reader: &mut Reader<'a>) -> Result<&'a [u8], DecodeError>
    where
        'n: 'a,
    {
        let name = expand_key(reader, self.names)?;
        self.name(name, reader)?;
        Ok(name)
    }

    /// Copies one value at `depth`, checking it as `msgpack::map_layout` does, with the keys
    /// of its maps resolved.
    fn value<'a>(&mut self, reader: &mut Reader<'a>, depth: usize) -> Result<(), DecodeError>
    where
        'n: 'a,
    {
        match reader.peek() {
            Some(0x80..=0x8f | 0xde | 0xdf) => {
                let Token::Map(count) = reader.token()? else { return Err(not_container()) };
                reader.enter(depth, count, 2)?;
                encode_count(count, 0x80, 0xde, &mut self.out);
                let mut previous: Option<&[u8]> = None;
                for _ in 0..count {
                    let name = self.key(reader)?;
                    self.note_order(previous, name);
                    previous = Some(name);
                    self.value(reader, depth + 1)?;
                }
            }
            Some(0x90..=0x9f | 0xdc | 0xdd) => {
                let Token::Array(count) = reader.token()? else { return Err(not_container()) };
                reader.enter(depth, count, 1)?;
                encode_count(count, 0x90, 0xdc, &mut self.out);
                for _ in 0..count {
                    self.value(reader, depth + 1)?;
                }
            }
            _ => {
                let start = reader.position();
                reader.token()?;
                self.out.extend_from_slice(reader.since(start));
            }
        }
        Ok(())
    }
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

/// Copies one value at `depth` without checking it beyond its bounds, with the keys of its
/// maps resolved (for `decode_fields`, which decodes what it copies).
fn expand_value<'a>(
    reader: &mut Reader<'a>,
    depth: usize,
    names: &'a FieldNames,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    match reader.peek() {
        Some(0x80..=0x8f | 0xde | 0xdf) => {
            let Token::Map(count) = reader.token()? else { return Err(not_container()) };
            reader.enter(depth, count, 2)?;
            encode_count(count, 0x80, 0xde, out);
            for _ in 0..count {
                let name = expand_key(reader, names)?;
                encode_str_bytes(name, out);
                check_size(out, reader)?;
                expand_value(reader, depth + 1, names, out)?;
            }
        }
        Some(0x90..=0x9f | 0xdc | 0xdd) => {
            let Token::Array(count) = reader.token()? else { return Err(not_container()) };
            reader.enter(depth, count, 1)?;
            encode_count(count, 0x90, 0xdc, out);
            for _ in 0..count {
                expand_value(reader, depth + 1, names, out)?;
            }
        }
        _ => {
            let start = reader.position();
            reader.step_over(depth)?;
            out.extend_from_slice(reader.since(start));
        }
    }
    Ok(())
}

/// `msgpack::decode_fields` of the stored form of document `id`: only the top-level fields
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
            expand_value(&mut reader, 1, names, &mut value).ok()?;
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
