//! `FieldNames`: a database's table of interned field names. A stored document names each
//! field in it by a small number instead of spelling the name (`document::stored`), so the
//! block cache holds more documents: at 1,000,000 documents of 12 fields, names were a fifth
//! of each document's bytes. The table is shared by every collection of the database.
//!
//! A name is interned the first time a document with it is written, if it is at most
//! `INTERNED_NAME_BYTES_MAX` bytes long and the table has fewer than `INTERNED_NAMES_MAX`
//! names; otherwise documents spell it out, as before. The table only grows: ids are never
//! reused or reassigned, so a document stays readable for as long as the database lives.
//!
//! Each name is stored in the `_catalog` keyspace as `n/<id>` (decimal) → the name's UTF-8
//! bytes, written before the first document that uses it is committed, with the database's
//! sync option: the write-ahead log keeps writes in order and recovery replays a prefix of it,
//! so a document that survives a crash has its names with it.
//!
//! Thread safety: `Send + Sync`. Reading a name by id takes no lock (a slot is set once,
//! before any document using it is written). Interning is serialized by `interning`; it
//! writes the new entries holding only that mutex, then publishes them under a brief write
//! lock of the name → id map, which writes read under its shared side while they encode a
//! document (so a slow or synced entry write never holds up writes of known names).
//!
//! Invariants:
//! 1. Every id below `ids.next` names a slot that was set before the id was handed out, and
//!    its catalog entry was written (in the wal, at a lower seqno than any document using the
//!    id) before that.
//! 2. `ids` maps each interned name to its (first) id; ids are below `ids.next`, which is at
//!    most `INTERNED_NAMES_MAX`, and an id is never handed out twice.

use crate::catalog::FIELD_NAME_KEY_PREFIX;
use crate::{Error, Result};
use nanodb_storage::{Db, Keyspace, WriteBatch, WriteOptions};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// Most names a database interns; later new names are spelled out in every document.
pub const INTERNED_NAMES_MAX: usize = 4096;
/// Longest name interned, in bytes; longer names are spelled out.
pub const INTERNED_NAME_BYTES_MAX: usize = 64;
/// Names per lazily allocated slot chunk (so an empty table costs a few hundred bytes).
const CHUNK_NAMES: usize = 64;

type Chunk = Box<[OnceLock<Box<str>>]>;

/// The name → id side of the table.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    by_name: HashMap<Box<[u8]>, u16>,
    /// The id the next interned name gets: one past the largest id given.
    next: usize,
}

impl Ids {
    /// The id of `name`, if interned.
    pub(crate) fn get(&self, name: &[u8]) -> Option<u16> {
        self.by_name.get(name).copied()
    }

    /// How many more names the table has room for.
    pub(crate) fn room(&self) -> usize {
        INTERNED_NAMES_MAX.saturating_sub(self.next)
    }
}

/// A database's interned field names (see the module header).
pub(crate) struct FieldNames {
    /// id → name, in chunks of `CHUNK_NAMES` allocated on first use.
    chunks: Box<[OnceLock<Chunk>]>,
    /// name → id; written only to publish names already stored.
    ids: RwLock<Ids>,
    /// Held while names are interned, from choosing their ids to publishing them.
    interning: Mutex<()>,
    /// Where names are stored, and whether their writes sync.
    db: Db,
    catalog: Keyspace,
    sync: bool,
}

impl std::fmt::Debug for FieldNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldNames").field("next", &self.ids.read().next).finish_non_exhaustive()
    }
}

/// The catalog key of name `id`.
fn name_key(id: usize) -> Vec<u8> {
    let mut key = FIELD_NAME_KEY_PREFIX.to_vec();
    key.extend_from_slice(id.to_string().as_bytes());
    key
}

/// Whether `name` may be interned (not empty, not too long; the table's room is checked
/// apart). `load` refuses entries that are not.
pub(crate) fn internable(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= INTERNED_NAME_BYTES_MAX
}

impl FieldNames {
    fn empty(db: Db, catalog: Keyspace, sync: bool) -> FieldNames {
        let chunk_count = INTERNED_NAMES_MAX.div_ceil(CHUNK_NAMES);
        FieldNames {
            chunks: (0..chunk_count).map(|_| OnceLock::new()).collect(),
            ids: RwLock::new(Ids::default()),
            interning: Mutex::new(()),
            db,
            catalog,
            sync,
        }
    }

    /// The table stored in `catalog` (`n/<id>` entries); a malformed entry is a corruption
    /// error naming it.
    pub(crate) fn load(db: Db, catalog: Keyspace, sync: bool) -> Result<FieldNames> {
        let names = FieldNames::empty(db, catalog, sync);
        {
            let mut ids = names.ids.write();
            for entry in names.catalog.prefix(FIELD_NAME_KEY_PREFIX)? {
                let (key, value) = entry?;
                let bad = |detail: &str| {
                    let key = String::from_utf8_lossy(&key);
                    Error::corruption("catalog", format!("field name entry {key:?}: {detail}"))
                };
                let digits = &key[FIELD_NAME_KEY_PREFIX.len()..];
                let decimal = !digits.is_empty()
                    && digits.iter().all(u8::is_ascii_digit)
                    && (digits[0] != b'0' || digits.len() == 1);
                let id = std::str::from_utf8(digits)
                    .ok()
                    .filter(|_| decimal)
                    .and_then(|digits| digits.parse::<usize>().ok())
                    .ok_or_else(|| bad("the id is not a decimal number"))?;
                if id >= INTERNED_NAMES_MAX {
                    return Err(bad(&format!("the id is not below {INTERNED_NAMES_MAX}")));
                }
                let name = std::str::from_utf8(&value).map_err(|_| bad("the name is not UTF-8"))?;
                if !internable(name.as_bytes()) {
                    return Err(bad(&format!("not 1 to {INTERNED_NAME_BYTES_MAX} bytes long")));
                }
                names.set_slot(id, name);
                // A name under two ids (never written so) reads under both; writes use the
                // first.
                let first = ids.by_name.entry(name.as_bytes().into()).or_insert(id as u16);
                *first = (*first).min(id as u16);
                ids.next = ids.next.max(id + 1);
            }
        }
        Ok(names)
    }

    fn set_slot(&self, id: usize, name: &str) {
        let chunk = self.chunks[id / CHUNK_NAMES]
            .get_or_init(|| (0..CHUNK_NAMES).map(|_| OnceLock::new()).collect());
        let _ = chunk[id % CHUNK_NAMES].set(name.into());
    }

    /// The name interned under `id`, if any.
    pub(crate) fn name(&self, id: usize) -> Option<&str> {
        let chunk = self.chunks.get(id / CHUNK_NAMES)?.get()?;
        chunk[id % CHUNK_NAMES].get().map(|name| &**name)
    }

    /// A shared view of the name → id map, for encoding one document.
    pub(crate) fn ids(&self) -> parking_lot::RwLockReadGuard<'_, Ids> {
        self.ids.read()
    }

    /// Interns the `names` not interned yet, as far as the table has room, writing their
    /// catalog entries in one batch before they are handed out. A failed write interns none.
    pub(crate) fn intern(&self, names: &[&[u8]]) -> Result<()> {
        let _interning = self.interning.lock();
        let ids = self.ids.read();
        let mut batch = WriteBatch::new();
        let mut added: Vec<(&[u8], usize)> = Vec::new();
        let mut seen = HashSet::new();
        let mut next = ids.next;
        for &name in names {
            // Only valid UTF-8 is interned: it is read back as a name.
            let fresh = ids.get(name).is_none() && seen.insert(name);
            if !fresh || !internable(name) || std::str::from_utf8(name).is_err() {
                continue;
            }
            if next >= INTERNED_NAMES_MAX {
                break;
            }
            batch.put_in(&self.catalog, name_key(next), name);
            added.push((name, next));
            next += 1;
        }
        drop(ids);
        if added.is_empty() {
            return Ok(());
        }
        self.db.write(batch, WriteOptions { sync: self.sync })?;
        let mut ids = self.ids.write();
        for (name, id) in added {
            // UTF-8 was checked above.
            self.set_slot(id, &String::from_utf8_lossy(name));
            ids.by_name.insert(name.into(), id as u16);
        }
        ids.next = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
