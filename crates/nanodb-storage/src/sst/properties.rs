//! `SstProperties`: what an SST holds, stored in its properties block and copied into the
//! manifest when the file is added.
//!
//! Encoding: `entry_count u64 | data_block_count u64 | seqno_min u64 | seqno_max u64 |
//! key_bytes u64 | value_bytes u64 | smallest_key (varint len, bytes) | largest_key (same)
//! [| range_del_applied_seqno u64 [| expiry_min u64]]`, all integers little-endian. Keys are
//! encoded internal keys. The last two fields are optional (absent: 0); `expiry_min` is written
//! only when the file holds an expiring version, and then `range_del_applied_seqno` is written
//! too (maybe 0).
//!
//! Thread safety: a plain value.

use crate::coding::{put_length_prefixed, put_u64, Decoder};

/// Summary of one SST.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SstProperties {
    /// Entries (versions, including tombstones).
    pub entry_count: u64,
    /// Data blocks.
    pub data_block_count: u64,
    /// Smallest seqno of any entry.
    pub seqno_min: u64,
    /// Largest seqno of any entry.
    pub seqno_max: u64,
    /// Total bytes of encoded keys.
    pub key_bytes: u64,
    /// Total bytes of values.
    pub value_bytes: u64,
    /// Smallest internal key.
    pub smallest_key: Vec<u8>,
    /// Largest internal key.
    pub largest_key: Vec<u8>,
    /// Every range tombstone up to this seqno was applied when the file was written (0: none).
    pub range_del_applied_seqno: u64,
    /// The earliest expiry (ms since the Unix epoch) of an expiring version in the file (0:
    /// none), for the expiry sweep.
    pub expiry_min: u64,
}

impl SstProperties {
    /// Records one entry added in order.
    pub(crate) fn note_entry(&mut self, key: &[u8], seqno: u64, value_len: usize) {
        if self.entry_count == 0 {
            self.smallest_key = key.to_vec();
            self.seqno_min = seqno;
            self.seqno_max = seqno;
        }
        self.entry_count += 1;
        self.seqno_min = self.seqno_min.min(seqno);
        self.seqno_max = self.seqno_max.max(seqno);
        self.key_bytes += key.len() as u64;
        self.value_bytes += value_len as u64;
        self.largest_key.clear();
        self.largest_key.extend_from_slice(key);
    }

    /// Records an expiring version's expiry.
    pub(crate) fn note_expiry(&mut self, expires_at_ms: u64) {
        // 0 means "none", so an expiry of 0 (long past) is kept as 1, which is just as past.
        let expires_at_ms = expires_at_ms.max(1);
        self.expiry_min = match self.expiry_min {
            0 => expires_at_ms,
            current => current.min(expires_at_ms),
        };
    }

    /// Encodes the properties block contents.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for value in [
            self.entry_count,
            self.data_block_count,
            self.seqno_min,
            self.seqno_max,
            self.key_bytes,
            self.value_bytes,
        ] {
            put_u64(&mut out, value);
        }
        put_length_prefixed(&mut out, &self.smallest_key);
        put_length_prefixed(&mut out, &self.largest_key);
        if self.range_del_applied_seqno > 0 || self.expiry_min > 0 {
            put_u64(&mut out, self.range_del_applied_seqno);
        }
        if self.expiry_min > 0 {
            put_u64(&mut out, self.expiry_min);
        }
        out
    }

    /// Decodes a properties block; `None` if malformed.
    pub fn decode(bytes: &[u8]) -> Option<SstProperties> {
        let mut decoder = Decoder::new(bytes);
        let mut properties = SstProperties {
            entry_count: decoder.u64()?,
            data_block_count: decoder.u64()?,
            seqno_min: decoder.u64()?,
            seqno_max: decoder.u64()?,
            key_bytes: decoder.u64()?,
            value_bytes: decoder.u64()?,
            smallest_key: decoder.length_prefixed()?.to_vec(),
            largest_key: decoder.length_prefixed()?.to_vec(),
            range_del_applied_seqno: 0,
            expiry_min: 0,
        };
        if !decoder.is_empty() {
            properties.range_del_applied_seqno = decoder.u64()?;
        }
        if !decoder.is_empty() {
            properties.expiry_min = decoder.u64()?;
        }
        decoder.is_empty().then_some(properties)
    }
}
