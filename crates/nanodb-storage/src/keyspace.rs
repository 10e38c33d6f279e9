//! Keyspaces: named, independent ordered key spaces inside one database.
//!
//! Every key the engine stores starts with its keyspace's *prefix*, an order-preserving,
//! prefix-free encoding of the keyspace id: ids `0..=254` are one byte (the id), larger ids
//! are `0xff` then the id as a 4-byte big-endian number. The default keyspace is id 0. All
//! keyspaces share the WAL, the manifest and the seqno space; each has its own memtable
//! partitions (`memtable`) and SSTs (a flush writes one L0 file per keyspace, and compaction
//! splits its outputs where the keyspace changes), so dropping a keyspace removes its files from
//! the manifest in one edit without reading them; what is left (in memtables, in files being
//! flushed or compacted across the drop) is removed by flush and compaction. Ids are never reused, so a dropped keyspace's leftovers can never become
//! visible to a new keyspace of the same name.
//!
//! Thread safety: `KeyspaceState` is shared between every handle of one keyspace; its
//! `dropped` flag is set under the WAL lock, which every write holds while it checks it.
//!
//! Invariants:
//! 1. `encode_prefix` is prefix-free and preserves id order, so the keys of one keyspace form
//!    one contiguous range of the engine's key space.
//! 2. A keyspace id, once used, is never given to another keyspace.

use crate::{Error, Result};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};

/// Id of the default keyspace, which every database has and which cannot be dropped.
pub const DEFAULT_KEYSPACE_ID: u32 = 0;
/// Name of the default keyspace.
pub const DEFAULT_KEYSPACE_NAME: &str = "default";
/// Longest keyspace name, in bytes.
pub const KEYSPACE_NAME_LEN_MAX: usize = 255;
/// Most keyspaces (besides the default one) a database can hold at once.
pub const KEYSPACES_LIVE_MAX: usize = 65_536;
/// Longest keyspace prefix, in bytes.
pub const KEYSPACE_PREFIX_LEN_MAX: usize = 5;
/// First byte of a 5-byte prefix. DO NOT CHANGE: on-disk format.
const LONG_PREFIX_MARKER: u8 = 0xff;

/// Appends the prefix of keyspace `id` to `out`.
pub(crate) fn encode_prefix(out: &mut Vec<u8>, id: u32) {
    if id < u32::from(LONG_PREFIX_MARKER) {
        out.push(id as u8);
    } else {
        out.push(LONG_PREFIX_MARKER);
        out.extend_from_slice(&id.to_be_bytes());
    }
}

/// The prefix of keyspace `id`.
pub(crate) fn prefix_of(id: u32) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(KEYSPACE_PREFIX_LEN_MAX);
    encode_prefix(&mut prefix, id);
    prefix
}

/// A number for the keyspace part of any bytes that orders as the bytes do: if `a < b` then
/// `keyspace_order(a) <= keyspace_order(b)`, and every key of one keyspace gets that
/// keyspace's number (`keyspace_order(&prefix_of(id))`). Bytes too short to hold a full prefix
/// are read as if zero-padded, which keeps the order. Memtables are partitioned by it.
pub(crate) fn keyspace_order(stored_key: &[u8]) -> u64 {
    match stored_key.first() {
        None => 0,
        Some(&LONG_PREFIX_MARKER) => {
            let mut id = [0u8; 4];
            let tail = &stored_key[1..stored_key.len().min(KEYSPACE_PREFIX_LEN_MAX)];
            id[..tail.len()].copy_from_slice(tail);
            u64::from(LONG_PREFIX_MARKER) + u64::from(u32::from_be_bytes(id))
        }
        Some(&byte) => u64::from(byte),
    }
}

/// The keyspace id a stored key starts with; `None` for bytes no key can start with.
pub(crate) fn keyspace_of(stored_key: &[u8]) -> Option<u32> {
    match *stored_key.first()? {
        LONG_PREFIX_MARKER => {
            let bytes = stored_key.get(1..KEYSPACE_PREFIX_LEN_MAX)?;
            Some(u32::from_be_bytes(bytes.try_into().ok()?))
        }
        byte => Some(u32::from(byte)),
    }
}

/// The keyspace every key of SST `file` is in; `None` if the file spans keyspaces (only L0
/// files can).
pub(crate) fn file_keyspace(file: &crate::manifest::FileMeta) -> Option<u32> {
    let first = keyspace_of(crate::key::user_key_of(&file.smallest_key))?;
    let last = keyspace_of(crate::key::user_key_of(&file.largest_key))?;
    (first == last).then_some(first)
}

/// Length of the keyspace prefix a stored key starts with (the whole key if it is too short
/// to hold one, which no key written by this crate is).
pub(crate) fn prefix_len(stored_key: &[u8]) -> usize {
    let len = match stored_key.first() {
        Some(&LONG_PREFIX_MARKER) => KEYSPACE_PREFIX_LEN_MAX,
        _ => 1,
    };
    len.min(stored_key.len())
}

/// The stored form of `key` in keyspace `prefix`.
pub(crate) fn stored_key(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    let mut stored = Vec::with_capacity(prefix.len() + key.len());
    stored.extend_from_slice(prefix);
    stored.extend_from_slice(key);
    stored
}

/// Moves bounds over a keyspace's keys into the stored key space: unbounded ends become the
/// ends of the keyspace's range.
pub(crate) fn stored_bounds(
    prefix: &[u8],
    (lower, upper): (Bound<Vec<u8>>, Bound<Vec<u8>>),
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let (prefix_lower, prefix_upper) = crate::db::prefix_bounds(prefix);
    let map = |bound: Bound<Vec<u8>>, unbounded: Bound<Vec<u8>>| match bound {
        Bound::Included(key) => Bound::Included(stored_key(prefix, &key)),
        Bound::Excluded(key) => Bound::Excluded(stored_key(prefix, &key)),
        Bound::Unbounded => unbounded,
    };
    (map(lower, prefix_lower), map(upper, prefix_upper))
}

/// Checks a keyspace name: 1 to `KEYSPACE_NAME_LEN_MAX` bytes, no control characters.
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidArgument("a keyspace name cannot be empty".into()));
    }
    if name.len() > KEYSPACE_NAME_LEN_MAX {
        return Err(Error::LimitExceeded {
            what: "keyspace name length",
            size: name.len() as u64,
            max: KEYSPACE_NAME_LEN_MAX as u64,
        });
    }
    if name.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "keyspace name {name:?} holds a control character"
        )));
    }
    Ok(())
}

/// What every handle of one keyspace shares.
#[derive(Debug)]
pub(crate) struct KeyspaceState {
    pub(crate) id: u32,
    pub(crate) name: String,
    pub(crate) prefix: Vec<u8>,
    /// Identifies the database the keyspace belongs to (`DbInner::token`).
    pub(crate) db_token: u64,
    /// Set once the keyspace is dropped (under the WAL lock).
    dropped: AtomicBool,
}

/// Two states are equal when they name the same keyspace of the same open database.
impl PartialEq for KeyspaceState {
    fn eq(&self, other: &KeyspaceState) -> bool {
        self.id == other.id && self.db_token == other.db_token
    }
}

impl Eq for KeyspaceState {}

impl KeyspaceState {
    pub(crate) fn new(id: u32, name: &str, db_token: u64) -> KeyspaceState {
        KeyspaceState {
            id,
            name: name.to_string(),
            prefix: prefix_of(id),
            db_token,
            dropped: AtomicBool::new(false),
        }
    }

    pub(crate) fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    pub(crate) fn mark_dropped(&self) {
        self.dropped.store(true, Ordering::Release);
    }

    /// `Error::InvalidArgument` unless the keyspace belongs to the database `db_token` names:
    /// a handle of another database must never write into a namesake.
    pub(crate) fn check_owner(&self, db_token: u64) -> Result<()> {
        if self.db_token != db_token {
            return Err(Error::InvalidArgument(format!(
                "keyspace {:?} belongs to another database",
                self.name
            )));
        }
        Ok(())
    }

    /// `Error::KeyspaceDropped` if the keyspace was dropped.
    pub(crate) fn check_live(&self) -> Result<()> {
        if self.is_dropped() {
            return Err(Error::KeyspaceDropped { name: self.name.clone() });
        }
        Ok(())
    }
}

/// Which keyspace ids still hold live data, as of one moment: flush and compaction drop every
/// entry of the others.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyspaceFilter {
    /// Ids at or above this were not yet created: live.
    pub(crate) next_id: u32,
    /// Live ids below `next_id` besides the default keyspace, ascending.
    pub(crate) live: Vec<u32>,
}

impl KeyspaceFilter {
    /// True if the entry with stored key `key` belongs to a dropped keyspace.
    pub(crate) fn is_dropped_key(&self, key: &[u8]) -> bool {
        match keyspace_of(key) {
            Some(id) => self.is_dropped(id),
            None => false,
        }
    }

    /// `tombstones` without those of dropped keyspaces.
    pub(crate) fn live_range_tombstones(
        &self,
        tombstones: Vec<crate::range_del::RangeTombstone>,
    ) -> Vec<crate::range_del::RangeTombstone> {
        tombstones.into_iter().filter(|tombstone| !self.is_dropped_key(&tombstone.start)).collect()
    }

    /// True if keyspace `id` was dropped.
    pub(crate) fn is_dropped(&self, id: u32) -> bool {
        id != DEFAULT_KEYSPACE_ID && id < self.next_id && self.live.binary_search(&id).is_err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_prefix_free_and_keep_id_order() {
        let ids = [0u32, 1, 200, 253, 254, 255, 256, 70_000, u32::MAX - 1, u32::MAX];
        let prefixes: Vec<Vec<u8>> = ids.iter().map(|&id| prefix_of(id)).collect();
        for (index, prefix) in prefixes.iter().enumerate() {
            assert_eq!(keyspace_of(prefix), Some(ids[index]));
            assert_eq!(keyspace_of(&stored_key(prefix, b"\xff\xffkey")), Some(ids[index]));
            for (other_index, other) in prefixes.iter().enumerate() {
                if index != other_index {
                    assert!(!other.starts_with(prefix), "{prefix:?} prefixes {other:?}");
                }
                assert_eq!(index.cmp(&other_index), prefix.cmp(other));
            }
        }
        assert_eq!(prefix_of(254).len(), 1);
        assert_eq!(prefix_of(255).len(), KEYSPACE_PREFIX_LEN_MAX);
        assert_eq!(keyspace_of(b""), None);
        assert_eq!(keyspace_of(&[0xff, 1, 2]), None, "a truncated long prefix");
    }

    #[test]
    fn keyspace_order_is_monotone_over_any_bytes_and_constant_in_a_keyspace() {
        let ids = [0u32, 1, 254, 255, 256, 70_000, u32::MAX];
        let mut keys: Vec<Vec<u8>> = vec![Vec::new(), vec![0xff], vec![0xff, 0], vec![0xff, 1, 2]];
        for &id in &ids {
            let prefix = prefix_of(id);
            for tail in [&b""[..], b"\x00", b"key", b"\xff\xff\xff"] {
                let key = stored_key(&prefix, tail);
                assert_eq!(keyspace_order(&key), keyspace_order(&prefix), "{key:?}");
                keys.push(key);
            }
            keys.push(prefix[..prefix.len() - 1].to_vec());
        }
        keys.sort();
        for pair in keys.windows(2) {
            assert!(keyspace_order(&pair[0]) <= keyspace_order(&pair[1]), "{pair:?}");
        }
        let distinct: std::collections::BTreeSet<u64> =
            ids.iter().map(|&id| keyspace_order(&prefix_of(id))).collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn names_are_checked_at_their_limits() {
        assert!(check_name("users").is_ok());
        assert!(check_name(&"n".repeat(KEYSPACE_NAME_LEN_MAX)).is_ok());
        assert!(matches!(
            check_name(&"n".repeat(KEYSPACE_NAME_LEN_MAX + 1)),
            Err(Error::LimitExceeded { .. })
        ));
        assert!(check_name("").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name("ünïcode ok").is_ok());
    }

    #[test]
    fn the_filter_drops_only_ids_created_and_no_longer_live() {
        let filter = KeyspaceFilter { next_id: 10, live: vec![3, 7] };
        assert!(!filter.is_dropped(0), "the default keyspace is never dropped");
        assert!(!filter.is_dropped(3));
        assert!(filter.is_dropped(4));
        assert!(!filter.is_dropped(10), "created after the filter was taken");
        assert!(filter.is_dropped_key(&prefix_of(5)));
        assert!(!filter.is_dropped_key(&prefix_of(7)));
    }

    #[test]
    fn unbounded_ends_stay_inside_the_keyspace() {
        let prefix = prefix_of(4);
        let (lower, upper) = stored_bounds(&prefix, (Bound::Unbounded, Bound::Unbounded));
        assert_eq!(lower, Bound::Included(vec![4]));
        assert_eq!(upper, Bound::Excluded(vec![5]));
        let (lower, upper) = stored_bounds(
            &prefix,
            (Bound::Excluded(b"a".to_vec()), Bound::Included(b"z".to_vec())),
        );
        assert_eq!(lower, Bound::Excluded(vec![4, b'a']));
        assert_eq!(upper, Bound::Included(vec![4, b'z']));
    }
}
