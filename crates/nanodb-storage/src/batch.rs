//! `WriteBatch`: a group of puts and deletes applied atomically, and its encoding, which is
//! also the payload of one WAL record (see docs/format/wal.md).
//!
//! Encoding: `seqno_first: u64 LE | count: u32 LE | op*`, where each op is
//! `kind: u8 | key_len: varint | key | [value_len: varint | value]` (the value only for puts).
//! Op `i` gets seqno `seqno_first + i`.
//!
//! Thread safety: a `WriteBatch` is a plain value; build it on one thread, hand it to `Db::write`.
//!
//! Invariants:
//! 1. `rep` always starts with a 12-byte header and holds exactly `count` well-formed ops.
//! 2. Decoding bytes from disk (`BatchOps`) never panics; malformed input is an error.

use crate::coding::{put_length_prefixed, varint_len, Decoder};
use crate::key::ValueKind;

/// Size of the batch header (`seqno_first` and `count`), in bytes. DO NOT CHANGE: on-disk format.
pub const BATCH_HEADER_LEN: usize = 12;

/// An atomic group of writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBatch {
    rep: Vec<u8>,
    count: u32,
    key_len_max: usize,
    value_len_max: usize,
}

impl Default for WriteBatch {
    fn default() -> WriteBatch {
        WriteBatch::new()
    }
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch { rep: vec![0; BATCH_HEADER_LEN], count: 0, key_len_max: 0, value_len_max: 0 }
    }

    /// Adds a put of `key` to `value`. Limits are checked when the batch is written.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut WriteBatch {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.rep.reserve(1 + varint_len(key.len() as u64) + key.len() + 5 + value.len());
        self.rep.push(ValueKind::Put as u8);
        put_length_prefixed(&mut self.rep, key);
        put_length_prefixed(&mut self.rep, value);
        self.note_op(key.len(), value.len());
        self
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut WriteBatch {
        let key = key.as_ref();
        self.rep.push(ValueKind::Delete as u8);
        put_length_prefixed(&mut self.rep, key);
        self.note_op(key.len(), 0);
        self
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

    /// Encoded size of the batch, in bytes (what it adds to the WAL, less framing).
    pub fn size_bytes(&self) -> usize {
        self.rep.len()
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

    /// Stamps the batch with its first seqno and returns the encoded record payload.
    pub(crate) fn encode_with_seqno(&mut self, seqno_first: u64) -> &[u8] {
        self.rep[0..8].copy_from_slice(&seqno_first.to_le_bytes());
        self.rep[8..12].copy_from_slice(&self.count.to_le_bytes());
        &self.rep
    }

    /// The operations of this batch, with seqnos from `seqno_first`.
    pub(crate) fn ops(&self) -> BatchOps<'_> {
        BatchOps { decoder: Decoder::new(&self.rep[BATCH_HEADER_LEN..]), remaining: self.count }
    }
}

/// One operation decoded from a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOp<'a> {
    /// Put or delete.
    pub kind: ValueKind,
    /// The key.
    pub key: &'a [u8],
    /// The value (empty for deletes).
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

/// Splits an encoded batch into its header and its operations; `Err` names what is wrong.
pub fn decode_batch(payload: &[u8]) -> Result<(BatchHeader, BatchOps<'_>), &'static str> {
    let mut decoder = Decoder::new(payload);
    let seqno_first = decoder.u64().ok_or("batch shorter than its header")?;
    let count = decoder.u32().ok_or("batch shorter than its header")?;
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
        let kind = self.decoder.u8().ok_or("batch op truncated")?;
        let kind = ValueKind::from_byte(kind).ok_or("unknown batch op kind")?;
        let key = self.decoder.length_prefixed().ok_or("batch key truncated")?;
        let value = match kind {
            ValueKind::Put => self.decoder.length_prefixed().ok_or("batch value truncated")?,
            ValueKind::Delete => &[],
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

    #[test]
    fn encode_then_decode_gives_the_same_ops() {
        let mut batch = WriteBatch::new();
        batch.put(b"a", b"1").delete(b"b").put(b"", vec![7u8; 300]);
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.key_len_max(), 1);
        assert_eq!(batch.value_len_max(), 300);
        let payload = batch.encode_with_seqno(42).to_vec();
        let (header, ops) = decode_batch(&payload).unwrap();
        assert_eq!(header, BatchHeader { seqno_first: 42, count: 3 });
        let ops: Vec<_> = ops.collect::<Result<_, _>>().unwrap();
        assert_eq!(ops[0], BatchOp { kind: ValueKind::Put, key: b"a", value: b"1" });
        assert_eq!(ops[1], BatchOp { kind: ValueKind::Delete, key: b"b", value: b"" });
        assert_eq!(ops[2].value.len(), 300);
        let from_batch: Vec<_> = batch.ops().collect::<Result<_, _>>().unwrap();
        assert_eq!(from_batch, ops);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut batch = WriteBatch::new();
        batch.put(b"key", b"value").delete(b"gone");
        let payload = batch.encode_with_seqno(1).to_vec();
        for len in 0..payload.len() {
            let result = decode_batch(&payload[..len])
                .and_then(|(_, ops)| ops.collect::<Result<Vec<_>, _>>());
            assert!(result.is_err(), "truncated to {len} bytes decoded");
        }
        let mut extra = payload.clone();
        extra.push(0);
        let result = decode_batch(&extra).and_then(|(_, ops)| ops.collect::<Result<Vec<_>, _>>());
        assert!(result.is_err());
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
