//! Internal keys: a user key with the seqno and kind of one version of it.
//!
//! Encoded form (in SSTs and in the manifest): the user key bytes followed by an 8-byte
//! little-endian trailer `(seqno << 8) | kind`. Internal keys order by user key ascending,
//! then by trailer descending, so the newest version of a key comes first.
//!
//! Thread safety: plain values and functions.
//!
//! Invariants:
//! 1. `seqno <= SEQNO_MAX` (56 bits), so the trailer never overflows.
//! 2. Decoding a key from disk checks its length and kind; bad bytes are an error, not a panic.

use std::cmp::Ordering;

/// Largest seqno that fits in the trailer (56 bits).
pub const SEQNO_MAX: u64 = (1 << 56) - 1;

/// Size of the trailer after the user key, in bytes. DO NOT CHANGE: on-disk format.
pub const TRAILER_LEN: usize = 8;

/// What one version of a key records. DO NOT CHANGE the numbers: on-disk format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ValueKind {
    /// The key was deleted at this seqno (a tombstone).
    Delete = 0,
    /// The key was set to a value at this seqno.
    Put = 1,
    /// The key was set to a value that expires: the stored value is the expiry time (8 bytes)
    /// then the value (`ttl.rs`).
    PutExpiring = 3,
}

impl ValueKind {
    /// Decodes a kind byte; `None` for a byte no version of the format uses.
    pub fn from_byte(byte: u8) -> Option<ValueKind> {
        match byte {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Put),
            3 => Some(ValueKind::PutExpiring),
            _ => None,
        }
    }
}

/// Kind used in lookup keys: the highest kind value, so a lookup key at seqno S sorts before
/// (or at) every version with seqno <= S.
pub const KIND_FOR_SEEK: u8 = ValueKind::PutExpiring as u8;

/// Packs a seqno and kind into the trailer.
pub fn pack_trailer(seqno: u64, kind: u8) -> u64 {
    debug_assert!(seqno <= SEQNO_MAX, "seqno {seqno} over SEQNO_MAX");
    (seqno << 8) | u64::from(kind)
}

/// Appends the encoded internal key for (`user_key`, `seqno`, `kind`) to `out`.
pub fn encode_internal_key(out: &mut Vec<u8>, user_key: &[u8], seqno: u64, kind: u8) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&pack_trailer(seqno, kind).to_le_bytes());
}

/// Returns the encoded internal key for (`user_key`, `seqno`, `kind`).
pub fn internal_key(user_key: &[u8], seqno: u64, kind: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(user_key.len() + TRAILER_LEN);
    encode_internal_key(&mut out, user_key, seqno, kind);
    out
}

/// A borrowed, decoded view of an encoded internal key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    /// The user's key.
    pub user_key: &'a [u8],
    /// The seqno of this version.
    pub seqno: u64,
    /// Put or delete.
    pub kind: ValueKind,
}

/// Splits an encoded internal key; `None` if it is too short or its kind is unknown.
pub fn parse_internal_key(encoded: &[u8]) -> Option<ParsedKey<'_>> {
    let split = encoded.len().checked_sub(TRAILER_LEN)?;
    let (user_key, trailer) = encoded.split_at(split);
    let trailer = u64::from_le_bytes(trailer.try_into().ok()?);
    let kind = ValueKind::from_byte((trailer & 0xff) as u8)?;
    Some(ParsedKey { user_key, seqno: trailer >> 8, kind })
}

/// The user-key part of an encoded internal key (the whole slice if it is too short, which
/// only happens for keys that failed validation earlier).
pub fn user_key_of(encoded: &[u8]) -> &[u8] {
    &encoded[..encoded.len().saturating_sub(TRAILER_LEN)]
}

/// The user-key part and the trailer of an encoded internal key, without checking the kind
/// (a slice too short for a trailer is all user key, with trailer 0).
pub fn split_internal_key(encoded: &[u8]) -> (&[u8], u64) {
    let (user_key, trailer) = encoded.split_at(encoded.len().saturating_sub(TRAILER_LEN));
    (user_key, trailer.try_into().map(u64::from_le_bytes).unwrap_or(0))
}

/// Orders two encoded internal keys: user key ascending, then trailer descending.
pub fn compare_internal_keys(left: &[u8], right: &[u8]) -> Ordering {
    let ((left_user_key, left_trailer), (right_user_key, right_trailer)) =
        (split_internal_key(left), split_internal_key(right));
    left_user_key.cmp(right_user_key).then_with(|| right_trailer.cmp(&left_trailer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_versions_sort_first_and_user_keys_ascend() {
        let a5 = internal_key(b"a", 5, 1);
        let a3 = internal_key(b"a", 3, 0);
        let ab1 = internal_key(b"ab", 1, 1);
        let b9 = internal_key(b"b", 9, 1);
        let mut keys = vec![b9.clone(), ab1.clone(), a3.clone(), a5.clone()];
        keys.sort_by(|x, y| compare_internal_keys(x, y));
        assert_eq!(keys, vec![a5, a3, ab1, b9]);
    }

    #[test]
    fn parse_round_trips_and_rejects_bad_bytes() {
        let key = internal_key(b"user", SEQNO_MAX, ValueKind::Delete as u8);
        let parsed = parse_internal_key(&key).unwrap();
        assert_eq!(parsed.user_key, b"user");
        assert_eq!(parsed.seqno, SEQNO_MAX);
        assert_eq!(parsed.kind, ValueKind::Delete);
        assert!(parse_internal_key(b"short").is_none());
        let mut bad_kind = internal_key(b"k", 1, 1);
        bad_kind[1] = 7;
        assert!(parse_internal_key(&bad_kind).is_none());
    }

    #[test]
    fn seek_key_sorts_before_every_visible_version() {
        let seek = internal_key(b"k", 10, KIND_FOR_SEEK);
        assert!(compare_internal_keys(&seek, &internal_key(b"k", 10, 0)).is_le());
        assert!(compare_internal_keys(&seek, &internal_key(b"k", 9, 1)).is_lt());
        assert!(compare_internal_keys(&seek, &internal_key(b"k", 11, 1)).is_gt());
    }
}
