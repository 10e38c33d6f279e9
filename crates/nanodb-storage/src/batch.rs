//! `WriteBatch`: a group of puts and deletes applied atomically, and its encoding, which is
//! also the payload of one WAL record (see docs/format/wal.md).
//!
//! Encoding: a header, then `op*`, where each op is
//! `kind: u8 | key_len: varint | key | [value_len: varint | value]` (the value only for puts;
//! for a range deletion, kind 2, the "key" is the range's start and the "value" its end).
//! The header is `seqno_first: varint | count: varint` in WAL files from version 4
//! (`BatchHeaderFormat::Varint`) and `seqno_first: u64 LE | count: u32 LE` before
//! (`BatchHeaderFormat::Fixed`, read only). Op `i` gets seqno `seqno_first + i`. Keys are
//! stored keys: the keyspace prefix, then the caller's key (`keyspace.rs`).
//!
//! Thread safety: a `WriteBatch` is a plain value; build it on one thread, hand it to `Db::write`.
//!
//! Invariants:
//! 1. `rep` holds exactly `count` well-formed ops (the header is written only when the batch
//!    is committed, beside them: `varint_header`).
//! 2. Decoding bytes from disk (`BatchOps`) never panics; malformed input is an error.

use crate::coding::{put_length_prefixed, put_varint, varint_bytes, varint_len, Decoder};
use crate::db::Keyspace;
use crate::key::ValueKind;
use crate::keyspace::{KeyspaceState, DEFAULT_KEYSPACE_ID};
use crate::ttl::EXPIRY_HEADER_LEN;
use std::sync::Arc;

/// Size of the fixed batch header (`seqno_first` and `count`) of WAL files up to version 3,
/// in bytes; also what `WriteBatch::size_bytes` counts for a header. DO NOT CHANGE: on-disk
/// format.
pub const BATCH_HEADER_LEN: usize = 12;
/// Longest varint batch header, in bytes (two varints of at most ten bytes; a seqno below 2^56
/// and a `u32` count take at most 13).
pub const BATCH_VARINT_HEADER_LEN_MAX: usize = 20;

/// The header a batch encoding starts with; fixed by the WAL file's format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchHeaderFormat {
    /// `seqno_first: u64 LE | count: u32 LE`: WAL files up to version 3.
    Fixed,
    /// `seqno_first: varint | count: varint`: WAL files from version 4.
    Varint,
}
/// Op kind byte of a range deletion (puts and deletes use their `ValueKind` byte). DO NOT
/// CHANGE: on-disk format.
pub const OP_DELETE_RANGE: u8 = 2;

/// What one batch operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Sets the key to the value.
    Put,
    /// Removes the key.
    Delete,
    /// Removes every key in `key..value` (start inclusive, end exclusive).
    DeleteRange,
    /// Sets the key to a value that expires: the op's value is the expiry time (8 bytes LE,
    /// milliseconds since the Unix epoch) then the value.
    PutExpiring,
}

/// An atomic group of writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBatch {
    rep: Vec<u8>,
    count: u32,
    key_len_max: usize,
    value_len_max: usize,
    /// Range deletions in the batch.
    range_delete_count: u32,
    /// True if a range deletion has its start after its end.
    has_inverted_range: bool,
    /// The keyspaces besides the default one that the batch writes to (checked live when the
    /// batch commits).
    keyspaces: Vec<Arc<KeyspaceState>>,
}

/// The default keyspace's prefix.
const DEFAULT_PREFIX: &[u8] = &[DEFAULT_KEYSPACE_ID as u8];

impl Default for WriteBatch {
    fn default() -> WriteBatch {
        WriteBatch::new()
    }
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch {
            rep: Vec::new(),
            count: 0,
            key_len_max: 0,
            value_len_max: 0,
            range_delete_count: 0,
            has_inverted_range: false,
            keyspaces: Vec::new(),
        }
    }

    /// Adds a put of `key` to `value` in the default keyspace. Limits are checked when the
    /// batch is written.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut WriteBatch {
        self.put_prefixed(DEFAULT_PREFIX, key.as_ref(), value.as_ref())
    }

    /// Adds a put of `key` to `value` in `keyspace`.
    pub fn put_in(
        &mut self,
        keyspace: &Keyspace,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> &mut WriteBatch {
        let prefix = self.note_keyspace(keyspace);
        self.put_prefixed(&prefix, key.as_ref(), value.as_ref())
    }

    /// Adds a delete of `key` in the default keyspace.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut WriteBatch {
        self.delete_prefixed(DEFAULT_PREFIX, key.as_ref())
    }

    /// Adds a delete of `key` in `keyspace`.
    pub fn delete_in(&mut self, keyspace: &Keyspace, key: impl AsRef<[u8]>) -> &mut WriteBatch {
        let prefix = self.note_keyspace(keyspace);
        self.delete_prefixed(&prefix, key.as_ref())
    }

    /// Adds a deletion of every key of `keyspace` from `start` (inclusive) to `end`
    /// (exclusive); see `delete_range`.
    pub fn delete_range_in(
        &mut self,
        keyspace: &Keyspace,
        start: impl AsRef<[u8]>,
        end: impl AsRef<[u8]>,
    ) -> &mut WriteBatch {
        let prefix = self.note_keyspace(keyspace);
        self.delete_range_prefixed(&prefix, start.as_ref(), end.as_ref())
    }

    /// Remembers that the batch writes to `keyspace`; returns its prefix.
    fn note_keyspace(&mut self, keyspace: &Keyspace) -> Vec<u8> {
        self.note_keyspace_state(keyspace.state());
        keyspace.state().prefix.clone()
    }

    /// Remembers that the batch writes to the keyspace of `state`.
    pub(crate) fn note_keyspace_state(&mut self, state: &Arc<KeyspaceState>) {
        if state.id != DEFAULT_KEYSPACE_ID
            && !self.keyspaces.iter().any(|known| Arc::ptr_eq(known, state))
        {
            self.keyspaces.push(Arc::clone(state));
        }
    }

    /// The keyspaces besides the default one that the batch writes to.
    pub(crate) fn keyspaces(&self) -> &[Arc<KeyspaceState>] {
        &self.keyspaces
    }

    pub(crate) fn put_prefixed(
        &mut self,
        prefix: &[u8],
        key: &[u8],
        value: &[u8],
    ) -> &mut WriteBatch {
        let stored_len = prefix.len() + key.len();
        self.rep.reserve(1 + varint_len(stored_len as u64) + stored_len + 5 + value.len());
        self.rep.push(ValueKind::Put as u8);
        put_stored_key(&mut self.rep, prefix, key);
        put_length_prefixed(&mut self.rep, value);
        self.note_op(key.len(), value.len());
        self
    }

    /// Adds a put of `key` to `value` in the default keyspace that expires at `expires_at_ms`
    /// (milliseconds since the Unix epoch, by the database's `Options::clock`): from then on
    /// reads treat the key as deleted. `Db::put_with_ttl` computes the time from a duration.
    pub fn put_expiring_at(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        expires_at_ms: u64,
    ) -> &mut WriteBatch {
        self.put_expiring_prefixed(DEFAULT_PREFIX, key.as_ref(), value.as_ref(), expires_at_ms)
    }

    /// The same in `keyspace`.
    pub fn put_expiring_at_in(
        &mut self,
        keyspace: &Keyspace,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        expires_at_ms: u64,
    ) -> &mut WriteBatch {
        let prefix = self.note_keyspace(keyspace);
        self.put_expiring_prefixed(&prefix, key.as_ref(), value.as_ref(), expires_at_ms)
    }

    pub(crate) fn put_expiring_prefixed(
        &mut self,
        prefix: &[u8],
        key: &[u8],
        value: &[u8],
        expires_at_ms: u64,
    ) -> &mut WriteBatch {
        let stored_len = prefix.len() + key.len();
        let value_len = EXPIRY_HEADER_LEN + value.len();
        self.rep.reserve(1 + varint_len(stored_len as u64) + stored_len + 5 + value_len);
        self.rep.push(ValueKind::PutExpiring as u8);
        put_stored_key(&mut self.rep, prefix, key);
        put_varint(&mut self.rep, value_len as u64);
        self.rep.extend_from_slice(&expires_at_ms.to_le_bytes());
        self.rep.extend_from_slice(value);
        self.note_op(key.len(), value.len());
        self
    }

    pub(crate) fn delete_prefixed(&mut self, prefix: &[u8], key: &[u8]) -> &mut WriteBatch {
        self.rep.push(ValueKind::Delete as u8);
        put_stored_key(&mut self.rep, prefix, key);
        self.note_op(key.len(), 0);
        self
    }

    /// Adds a deletion of every key of the default keyspace from `start` (inclusive) to `end`
    /// (exclusive), written without reading them. An empty range (`start == end`) deletes
    /// nothing; `start > end` is refused when the batch is written. Both keys count against
    /// the key size limit.
    pub fn delete_range(
        &mut self,
        start: impl AsRef<[u8]>,
        end: impl AsRef<[u8]>,
    ) -> &mut WriteBatch {
        self.delete_range_prefixed(DEFAULT_PREFIX, start.as_ref(), end.as_ref())
    }

    pub(crate) fn delete_range_prefixed(
        &mut self,
        prefix: &[u8],
        start: &[u8],
        end: &[u8],
    ) -> &mut WriteBatch {
        self.rep.push(OP_DELETE_RANGE);
        put_stored_key(&mut self.rep, prefix, start);
        put_stored_key(&mut self.rep, prefix, end);
        self.note_op(start.len().max(end.len()), 0);
        self.range_delete_count = self.range_delete_count.saturating_add(1);
        self.has_inverted_range |= start > end;
        self
    }

    /// Number of range deletions in the batch.
    pub(crate) fn range_delete_count(&self) -> usize {
        self.range_delete_count as usize
    }

    /// True if a range deletion in the batch has its start after its end.
    pub(crate) fn has_inverted_range(&self) -> bool {
        self.has_inverted_range
    }

    fn note_op(&mut self, key_len: usize, value_len: usize) {
        // Saturates: a batch that large is refused by the batch size limit before it is written.
        self.count = self.count.saturating_add(1);
        self.key_len_max = self.key_len_max.max(key_len);
        self.value_len_max = self.value_len_max.max(value_len);
    }

    /// Number of operations in the batch.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True if the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the batch's operations plus a 12-byte header (`BATCH_HEADER_LEN`), in bytes:
    /// what the batch-size and group-commit limits count. Its WAL record takes about as much:
    /// the ops, a varint header (usually 4 to 6 bytes) and a frame of 5 to 9 bytes (5 for a
    /// payload under 128 bytes).
    pub fn size_bytes(&self) -> usize {
        BATCH_HEADER_LEN + self.rep.len()
    }

    /// Removes every operation.
    pub fn clear(&mut self) {
        *self = WriteBatch::new();
    }

    /// Longest key in the batch, in bytes.
    pub(crate) fn key_len_max(&self) -> usize {
        self.key_len_max
    }

    /// Longest value in the batch, in bytes.
    pub(crate) fn value_len_max(&self) -> usize {
        self.value_len_max
    }

    /// The varint header of the batch committed at `seqno_first`: a buffer and how many of
    /// its bytes are used. The WAL record's payload is this header, then `ops_bytes`.
    pub(crate) fn varint_header(
        &self,
        seqno_first: u64,
    ) -> ([u8; BATCH_VARINT_HEADER_LEN_MAX], usize) {
        let mut header = [0u8; BATCH_VARINT_HEADER_LEN_MAX];
        let (seqno, seqno_len) = varint_bytes(seqno_first);
        let (count, count_len) = varint_bytes(u64::from(self.count));
        header[..seqno_len].copy_from_slice(&seqno[..seqno_len]);
        header[seqno_len..seqno_len + count_len].copy_from_slice(&count[..count_len]);
        (header, seqno_len + count_len)
    }

    /// The encoded operations, without a header.
    pub(crate) fn ops_bytes(&self) -> &[u8] {
        &self.rep
    }

    /// The whole encoding with a header in `format`, as a WAL record's payload.
    #[cfg(test)]
    pub(crate) fn encode(&self, format: BatchHeaderFormat, seqno_first: u64) -> Vec<u8> {
        let mut payload = match format {
            BatchHeaderFormat::Fixed => {
                let mut header = seqno_first.to_le_bytes().to_vec();
                header.extend_from_slice(&self.count.to_le_bytes());
                header
            }
            BatchHeaderFormat::Varint => {
                let (header, len) = self.varint_header(seqno_first);
                header[..len].to_vec()
            }
        };
        payload.extend_from_slice(&self.rep);
        payload
    }

    /// The operations of this batch, with seqnos from `seqno_first`.
    pub(crate) fn ops(&self) -> BatchOps<'_> {
        BatchOps { decoder: Decoder::new(&self.rep), remaining: self.count }
    }
}

/// Appends `prefix ‖ key`, length-prefixed.
fn put_stored_key(out: &mut Vec<u8>, prefix: &[u8], key: &[u8]) {
    put_varint(out, (prefix.len() + key.len()) as u64);
    out.extend_from_slice(prefix);
    out.extend_from_slice(key);
}

/// One operation decoded from a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOp<'a> {
    /// Put, delete or range deletion.
    pub kind: OpKind,
    /// The key (the range's start for a range deletion).
    pub key: &'a [u8],
    /// The value (empty for deletes, the range's end for a range deletion).
    pub value: &'a [u8],
}

/// The header of an encoded batch read back from a WAL record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Seqno of the first operation.
    pub seqno_first: u64,
    /// Number of operations.
    pub count: u32,
}

/// Splits an encoded batch, whose header is in `format`, into its header and its operations;
/// `Err` names what is wrong.
pub fn decode_batch(
    payload: &[u8],
    format: BatchHeaderFormat,
) -> Result<(BatchHeader, BatchOps<'_>), &'static str> {
    let mut decoder = Decoder::new(payload);
    let (seqno_first, count) = match format {
        BatchHeaderFormat::Fixed => (
            decoder.u64().ok_or("batch shorter than its header")?,
            decoder.u32().ok_or("batch shorter than its header")?,
        ),
        BatchHeaderFormat::Varint => {
            let seqno_first = decoder.varint().ok_or("batch header truncated or malformed")?;
            let count = decoder.varint().ok_or("batch header truncated or malformed")?;
            (seqno_first, u32::try_from(count).map_err(|_| "batch op count over 2^32")?)
        }
    };
    Ok((BatchHeader { seqno_first, count }, BatchOps { decoder, remaining: count }))
}

/// Iterator over the operations of an encoded batch. Yields `Err` once on malformed input.
#[derive(Debug, Clone)]
pub struct BatchOps<'a> {
    decoder: Decoder<'a>,
    remaining: u32,
}

impl<'a> BatchOps<'a> {
    fn decode_one(&mut self) -> Result<BatchOp<'a>, &'static str> {
        let kind = match self.decoder.u8().ok_or("batch op truncated")? {
            OP_DELETE_RANGE => OpKind::DeleteRange,
            byte => match ValueKind::from_byte(byte).ok_or("unknown batch op kind")? {
                ValueKind::Put => OpKind::Put,
                ValueKind::Delete => OpKind::Delete,
                ValueKind::PutExpiring => OpKind::PutExpiring,
            },
        };
        let key = self.decoder.length_prefixed().ok_or("batch key truncated")?;
        let value = match kind {
            OpKind::Put => self.decoder.length_prefixed().ok_or("batch value truncated")?,
            OpKind::PutExpiring => {
                let value = self.decoder.length_prefixed().ok_or("batch value truncated")?;
                if value.len() < EXPIRY_HEADER_LEN {
                    return Err("expiring value shorter than its expiry time");
                }
                value
            }
            OpKind::DeleteRange => {
                let end = self.decoder.length_prefixed().ok_or("batch range end truncated")?;
                if key > end {
                    return Err("batch range deletion starts after its end");
                }
                end
            }
            OpKind::Delete => &[],
        };
        Ok(BatchOp { kind, key, value })
    }
}

impl<'a> Iterator for BatchOps<'a> {
    type Item = Result<BatchOp<'a>, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            if !self.decoder.is_empty() {
                self.decoder = Decoder::new(&[]);
                return Some(Err("bytes after the last batch op"));
            }
            return None;
        }
        self.remaining -= 1;
        let op = self.decode_one();
        if op.is_err() {
            self.remaining = 0;
            self.decoder = Decoder::new(&[]);
        }
        Some(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMATS: [BatchHeaderFormat; 2] = [BatchHeaderFormat::Fixed, BatchHeaderFormat::Varint];

    #[test]
    fn encode_then_decode_gives_the_same_ops() {
        let mut batch = WriteBatch::new();
        batch.put(b"a", b"1").delete(b"b").put(b"", vec![7u8; 300]).delete_range(b"c", b"e");
        assert_eq!(batch.len(), 4);
        assert_eq!(batch.range_delete_count(), 1);
        assert!(!batch.has_inverted_range());
        assert_eq!(batch.key_len_max(), 1);
        assert_eq!(batch.value_len_max(), 300);
        let from_batch: Vec<_> = batch.ops().collect::<Result<_, _>>().unwrap();
        for format in FORMATS {
            let payload = batch.encode(format, 42);
            let (header, ops) = decode_batch(&payload, format).unwrap();
            assert_eq!(header, BatchHeader { seqno_first: 42, count: 4 });
            let ops: Vec<_> = ops.collect::<Result<_, _>>().unwrap();
            assert_eq!(ops, from_batch, "{format:?}");
        }
        let ops = from_batch;
        // Keys carry the default keyspace's prefix.
        assert_eq!(ops[0], BatchOp { kind: OpKind::Put, key: b"\0a", value: b"1" });
        assert_eq!(ops[1], BatchOp { kind: OpKind::Delete, key: b"\0b", value: b"" });
        assert_eq!(ops[2].value.len(), 300);
        assert_eq!(ops[3], BatchOp { kind: OpKind::DeleteRange, key: b"\0c", value: b"\0e" });
    }

    #[test]
    fn the_varint_header_takes_a_byte_per_seven_bits() {
        let mut batch = WriteBatch::new();
        batch.put(b"k", b"v");
        assert_eq!(batch.encode(BatchHeaderFormat::Varint, 1)[..2], [1, 1]);
        // A seqno of 10 million takes four bytes and a count of one a byte: seven bytes less
        // than the fixed header.
        let varint = batch.encode(BatchHeaderFormat::Varint, 10_000_000);
        let fixed = batch.encode(BatchHeaderFormat::Fixed, 10_000_000);
        assert_eq!(fixed.len() - varint.len(), BATCH_HEADER_LEN - 5);
        // The largest header fits the buffer.
        let (_, len) = batch.varint_header(crate::key::SEQNO_MAX);
        assert!(len <= BATCH_VARINT_HEADER_LEN_MAX);
        let largest = batch.encode(BatchHeaderFormat::Varint, crate::key::SEQNO_MAX);
        let (header, ops) = decode_batch(&largest, BatchHeaderFormat::Varint).unwrap();
        assert_eq!(header.seqno_first, crate::key::SEQNO_MAX);
        assert_eq!(ops.count(), 1);
        // A count over 32 bits is corruption.
        let mut payload = vec![1];
        crate::coding::put_varint(&mut payload, 1 << 32);
        assert!(decode_batch(&payload, BatchHeaderFormat::Varint).is_err());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut batch = WriteBatch::new();
        batch.put(b"key", b"value").delete(b"gone").delete_range(b"a", b"b");
        for format in FORMATS {
            let payload = batch.encode(format, 1);
            for len in 0..payload.len() {
                let result = decode_batch(&payload[..len], format)
                    .and_then(|(_, ops)| ops.collect::<Result<Vec<_>, _>>());
                assert!(result.is_err(), "{format:?} truncated to {len} bytes decoded");
            }
            let mut extra = payload.clone();
            extra.push(0);
            let result = decode_batch(&extra, format)
                .and_then(|(_, ops)| ops.collect::<Result<Vec<_>, _>>());
            assert!(result.is_err());
        }
    }

    #[test]
    fn an_inverted_range_is_noted_and_refused_when_decoded() {
        let mut batch = WriteBatch::new();
        batch.delete_range(b"z", b"a");
        assert!(batch.has_inverted_range());
        let payload = batch.encode(BatchHeaderFormat::Varint, 1);
        let (_, ops) = decode_batch(&payload, BatchHeaderFormat::Varint).unwrap();
        assert!(ops.collect::<Result<Vec<_>, _>>().is_err());
    }

    #[test]
    fn expiring_puts_carry_their_expiry_and_short_ones_are_refused() {
        let mut batch = WriteBatch::new();
        batch.put_expiring_at(b"k", b"v", 77);
        assert_eq!(batch.value_len_max(), 1, "the limit applies to the caller's value");
        let payload = batch.encode(BatchHeaderFormat::Varint, 1);
        let (_, ops) = decode_batch(&payload, BatchHeaderFormat::Varint).unwrap();
        let ops: Vec<_> = ops.collect::<Result<_, _>>().unwrap();
        assert_eq!(ops[0].kind, OpKind::PutExpiring);
        assert_eq!(&ops[0].value[..EXPIRY_HEADER_LEN], &77u64.to_le_bytes());
        assert_eq!(&ops[0].value[EXPIRY_HEADER_LEN..], b"v");
        // An expiring op whose value cannot hold the expiry is corruption.
        let mut short = Vec::new();
        short.extend_from_slice(&1u64.to_le_bytes());
        short.extend_from_slice(&1u32.to_le_bytes());
        short.extend_from_slice(&[ValueKind::PutExpiring as u8, 1, b'k', 3, 1, 2, 3]);
        let (_, ops) = decode_batch(&short, BatchHeaderFormat::Fixed).unwrap();
        assert!(ops.collect::<Result<Vec<_>, _>>().is_err());
    }

    #[test]
    fn clear_empties_the_batch() {
        let mut batch = WriteBatch::new();
        batch.put(b"k", b"v");
        batch.clear();
        assert!(batch.is_empty());
        assert_eq!(batch.size_bytes(), BATCH_HEADER_LEN);
    }
}
