//! Keyspaces in the database: the registry of live keyspaces, create and drop, and the
//! `Keyspace` handle (see `keyspace.rs` for the key layout).
//!
//! Create is one manifest edit. Drop is one manifest edit too, and that edit is the commit
//! point: it removes the keyspace from the registry and, in the same record, every SST that
//! holds only its keys and no running compaction uses. A crash before the edit is durable
//! leaves the keyspace whole; after, it is gone, and whatever of it is left (in L0 files of
//! databases written before flushes split by keyspace, in files being compacted, in memtables
//! and the WAL) is invisible,
//! since its id is never reused, and dropped by the next flush or compaction that reads it.
//!
//! Thread safety: the registry is an `RwLock` taken after `engine` (lock order `wal` →
//! `engine` → `keyspaces`). Drop holds `wal` while it commits, and the group-commit leader
//! checks that every keyspace of a batch is live under the same lock, so no write is
//! acknowledged into a keyspace after its drop.
//!
//! Invariants:
//! 1. The registry holds exactly the keyspaces of `EngineState::state` (plus the default).
//! 2. A handle of a dropped keyspace refuses every read and write with `KeyspaceDropped`.

use super::flush::commit_edit;
use super::read::{self, Iter, KeyBounds};
use super::{Db, DbInner};
use crate::found::FoundValue;
use crate::keyspace::{
    check_name, file_keyspace, stored_bounds, stored_key, KeyspaceState, DEFAULT_KEYSPACE_ID,
    DEFAULT_KEYSPACE_NAME, KEYSPACES_LIVE_MAX,
};
use crate::manifest::{ManifestState, VersionEdit};
use crate::options::WriteOptions;
use crate::version::Version;
use crate::{Error, Result};
use std::collections::HashMap;
use std::ops::RangeBounds;
use std::sync::Arc;

/// The live keyspaces by name, the default one included.
pub(crate) type KeyspaceRegistry = HashMap<String, Arc<KeyspaceState>>;

/// The registry for a recovered manifest state, and its default keyspace.
pub(crate) fn registry_of(
    state: &ManifestState,
    db_token: u64,
) -> (KeyspaceRegistry, Arc<KeyspaceState>) {
    let default =
        Arc::new(KeyspaceState::new(DEFAULT_KEYSPACE_ID, DEFAULT_KEYSPACE_NAME, db_token));
    let mut registry = KeyspaceRegistry::new();
    registry.insert(DEFAULT_KEYSPACE_NAME.to_string(), Arc::clone(&default));
    for (&id, name) in &state.keyspaces {
        registry.insert(name.clone(), Arc::new(KeyspaceState::new(id, name, db_token)));
    }
    (registry, default)
}

/// How `open` treats a keyspace that exists or does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// It must exist (`KeyspaceNotFound` otherwise).
    Existing,
    /// It must not exist (`KeyspaceExists` otherwise).
    New,
    /// Either.
    Any,
}

/// Opens keyspace `name`, creating it as `mode` allows.
pub(crate) fn open(inner: &DbInner, name: &str, mode: OpenMode) -> Result<Arc<KeyspaceState>> {
    check_name(name)?;
    inner.check_open()?;
    let existing = |registry: &KeyspaceRegistry| match (registry.get(name), mode) {
        (Some(_), OpenMode::New) => Some(Err(Error::KeyspaceExists { name: name.to_string() })),
        (Some(state), _) => Some(Ok(Arc::clone(state))),
        (None, OpenMode::Existing) => Some(Err(Error::KeyspaceNotFound { name: name.to_string() })),
        (None, _) => None,
    };
    if let Some(result) = existing(&inner.keyspaces.read()) {
        return result;
    }
    let mut engine = inner.engine.lock();
    // Another thread may have created it meanwhile.
    if let Some(result) = existing(&inner.keyspaces.read()) {
        return result;
    }
    if engine.state.keyspaces.len() >= KEYSPACES_LIVE_MAX {
        return Err(Error::LimitExceeded {
            what: "live keyspaces",
            size: engine.state.keyspaces.len() as u64 + 1,
            max: KEYSPACES_LIVE_MAX as u64,
        });
    }
    let id = engine.state.next_keyspace_id;
    if id == u32::MAX {
        return Err(Error::LimitExceeded {
            what: "keyspace ids ever used",
            size: u64::from(id) + 1,
            max: u64::from(u32::MAX),
        });
    }
    inner.check_writable()?;
    let edit =
        VersionEdit { created_keyspaces: vec![(id, name.to_string())], ..Default::default() };
    commit_edit(inner, &mut engine, &edit).map_err(|error| inner.poison(error))?;
    let state = Arc::new(KeyspaceState::new(id, name, inner.token));
    inner.keyspaces.write().insert(name.to_string(), Arc::clone(&state));
    Ok(state)
}

/// Drops keyspace `name`: one manifest edit removes it and every SST that holds only its keys.
pub(crate) fn drop_keyspace(inner: &DbInner, name: &str) -> Result<()> {
    check_name(name)?;
    if name == DEFAULT_KEYSPACE_NAME {
        return Err(Error::InvalidArgument("the default keyspace cannot be dropped".into()));
    }
    let _wal = inner.wal.lock();
    inner.check_writable()?;
    let mut engine = inner.engine.lock();
    let Some(keyspace) = inner.keyspaces.read().get(name).cloned() else {
        return Err(Error::KeyspaceNotFound { name: name.to_string() });
    };
    let id = keyspace.id;
    let removed: Vec<(u32, u64)> = engine
        .state
        .files()
        .filter(|file| file_keyspace(file) == Some(id) && !engine.compacting.contains(&file.number))
        .map(|file| (file.level, file.number))
        .collect();
    let edit = VersionEdit { dropped_keyspaces: vec![id], removed, ..Default::default() };
    commit_edit(inner, &mut engine, &edit).map_err(|error| inner.poison(error))?;
    // Committed: from here the keyspace is gone whatever happens.
    keyspace.mark_dropped();
    inner.keyspaces.write().remove(name);

    let view = inner.current_view();
    let open = view.version.handles_by_number();
    let version = Arc::new(Version::build(&engine.state, &open, view.version.read_seqno_min));
    let stale: Vec<_> = edit.removed.iter().filter_map(|(_, number)| open.get(number)).collect();
    *inner.view.write() = Arc::new(view.with_version(version));
    for handle in stale {
        handle.mark_obsolete();
    }
    super::stats::StatsCounters::add(&inner.stats.keyspaces_dropped, 1);
    super::stats::StatsCounters::add(
        &inner.stats.keyspace_drop_files_removed,
        edit.removed.len() as u64,
    );
    inner.engine_changed.notify_all();
    // Range tombstones of the keyspace hide nothing once its files are gone.
    super::range_del::collect_garbage(inner, &mut engine).map_err(|error| inner.poison(error))
}

/// The names of the live keyspaces, the default one included, sorted.
pub(crate) fn list(inner: &DbInner) -> Vec<String> {
    let mut names: Vec<String> = inner.keyspaces.read().keys().cloned().collect();
    names.sort();
    names
}

/// The value of `key` in `keyspace`, as of now.
pub(crate) fn get(
    inner: &DbInner,
    keyspace: &KeyspaceState,
    key: &[u8],
) -> Result<Option<Vec<u8>>> {
    Ok(get_found(inner, keyspace, key)?.map(FoundValue::into_vec))
}

/// The value of `key` in `keyspace`, as of now, where it lies (see `FoundValue`).
pub(crate) fn get_found(
    inner: &DbInner,
    keyspace: &KeyspaceState,
    key: &[u8],
) -> Result<Option<FoundValue>> {
    inner.check_open()?;
    keyspace.check_live()?;
    // Most keys are short: build the stored key on the stack, not the heap.
    const STACK_KEY_BYTES: usize = 128;
    let stored_len = keyspace.prefix.len() + key.len();
    if stored_len <= STACK_KEY_BYTES {
        let mut buffer = [0u8; STACK_KEY_BYTES];
        buffer[..keyspace.prefix.len()].copy_from_slice(&keyspace.prefix);
        buffer[keyspace.prefix.len()..stored_len].copy_from_slice(key);
        return read::get_latest_found(inner, &buffer[..stored_len]);
    }
    read::get_latest_found(inner, &stored_key(&keyspace.prefix, key))
}

/// An iterator over `bounds` of `keyspace`, as of now.
pub(crate) fn range_latest(
    inner: &Arc<DbInner>,
    keyspace: &KeyspaceState,
    bounds: KeyBounds,
) -> Result<Iter> {
    inner.check_open()?;
    keyspace.check_live()?;
    let stored = stored_bounds(&keyspace.prefix, bounds);
    Ok(Iter::latest(inner, stored, keyspace.prefix.len()))
}

/// A named, independent ordered key space of a database (`Db::keyspace`). Cheap to clone;
/// every clone refers to the same keyspace. Operations work like the `Db` methods of the same
/// name, within this keyspace only. Once the keyspace is dropped every operation returns
/// `Error::KeyspaceDropped`. A handle shares the database like a `Db` clone: after
/// `Db::close` it returns `Error::Closed`, and the directory stays locked until it drops.
#[derive(Clone)]
pub struct Keyspace {
    db: Db,
    state: Arc<KeyspaceState>,
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace").field("name", &self.state.name).finish_non_exhaustive()
    }
}

impl Keyspace {
    pub(crate) fn new(db: Db, state: Arc<KeyspaceState>) -> Keyspace {
        Keyspace { db, state }
    }

    pub(crate) fn state(&self) -> &Arc<KeyspaceState> {
        &self.state
    }

    /// The keyspace's name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Sets `key` to `value`.
    pub fn put(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        options: WriteOptions,
    ) -> Result<()> {
        self.db.write_one(options, |batch| batch.put_in(self, key, value))
    }

    /// Sets `key` to `value` for `ttl` (see `Db::put_with_ttl`).
    pub fn put_with_ttl(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: std::time::Duration,
        options: WriteOptions,
    ) -> Result<()> {
        let expires_at_ms = crate::ttl::expiry_after(self.db.inner().options.clock.now_ms(), ttl);
        self.db
            .write_one(options, |batch| batch.put_expiring_at_in(self, key, value, expires_at_ms))
    }

    /// Removes `key` (not an error if it is absent).
    pub fn delete(&self, key: impl AsRef<[u8]>, options: WriteOptions) -> Result<()> {
        self.db.write_one(options, |batch| batch.delete_in(self, key))
    }

    /// Removes every key from `start` (inclusive) to `end` (exclusive) without reading them
    /// (see `Db::delete_range`).
    pub fn delete_range(
        &self,
        start: impl AsRef<[u8]>,
        end: impl AsRef<[u8]>,
        options: WriteOptions,
    ) -> Result<()> {
        self.db.write_one(options, |batch| batch.delete_range_in(self, start, end))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        get(self.db.inner(), &self.state, key.as_ref())
    }

    /// `f` of the value of `key`, if any, read where it lies: a value found in an SST is
    /// passed from inside its cached block, without the copy `get` makes. For a reader that
    /// decodes the value into something of its own. `f` runs on the calling thread, with no
    /// lock of the database held; keep it short: while it runs, the value's block stays in
    /// memory even if the block cache evicts it, outside the cache's accounting.
    pub fn get_with<T>(
        &self,
        key: impl AsRef<[u8]>,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>> {
        let found = get_found(self.db.inner(), &self.state, key.as_ref())?;
        Ok(found.map(|value| f(value.as_slice())))
    }

    /// Every key and value of the keyspace in key order (`.rev()` for descending).
    pub fn iter(&self) -> Result<Iter> {
        self.range::<&[u8], _>(..)
    }

    /// The keys in `range` with their values, in key order.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<Iter> {
        range_latest(self.db.inner(), &self.state, read::bounds_of(&range))
    }

    /// The keys starting with `prefix` with their values, in key order.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Iter> {
        range_latest(self.db.inner(), &self.state, read::prefix_bounds(prefix.as_ref()))
    }
}
