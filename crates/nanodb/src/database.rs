//! `Database`: one logical database (one storage `Db` in its own directory) and its
//! collections: create, open, list, rename, drop.
//!
//! Each collection's documents live in their own keyspace (`catalog` module), so dropping a
//! collection is the engine's cheap keyspace drop: its files are deleted, its documents never
//! read. Catalog changes are durable (synced) before they return; the interned field names
//! (`field_names`), also in the catalog, follow the database's sync option instead, and are
//! written before the first document that uses them.
//!
//! Thread safety: `Database` is `Send + Sync` and cheap to clone. Catalog changes (create,
//! rename, drop) are serialized by `catalog_lock`; document reads and writes never take it.
//!
//! Invariants:
//! 1. `collections` holds exactly the collections of the stored catalog, each with exactly its
//!    catalog entry's indexes.
//! 2. A collection is dropped in two steps, the catalog entry first (the commit point), its
//!    keyspace second; open removes a keyspace whose catalog entry is gone, so a crash between
//!    the steps leaves no trace. Index keyspaces (`x<id>`) without a catalog entry are removed
//!    the same way.

use crate::catalog::{
    collection_key, collection_of_keyspace, CollectionOptions, CollectionSpec, CATALOG_KEYSPACE,
    COLLECTION_KEY_PREFIX, NEXT_COLLECTION_ID_KEY,
};
use crate::collection::Collection;
use crate::feed::{ChangeStream, FeedOptions, Hub};
use crate::field_names::FieldNames;
use crate::index::{
    index_of_keyspace, marker_key, recorded_ids, IndexSpec, IndexState, IndexStatus,
};
use crate::names::check_collection_name;
use crate::ttl::{
    start_reaper, ReaperWake, Ttl, TTL_CHECK_INTERVAL_DEFAULT, TTL_CHECK_INTERVAL_MAX,
    TTL_CHECK_INTERVAL_MIN,
};
use crate::value::{msgpack, Value};
use crate::{Error, Result};
use nanodb_storage::{CommitListener, Db, Keyspace, WriteBatch, WriteOptions};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Options of one logical database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseOptions {
    /// Sync the wal before a document write returns (durable against power loss). When
    /// false, writes survive a process crash but the last ones may be lost to a power cut.
    pub sync: bool,
    /// How often the background thread removes expired documents of TTL collections
    /// (expired documents are invisible at once either way).
    pub ttl_check_interval: Duration,
    /// Read the database's SST files through memory maps (default false): faster lookups
    /// when the block cache misses, but an I/O error reading the files ends the process with
    /// SIGBUS rather than returning an error, and the pages read count in the process's
    /// resident memory. See `nanodb_storage::Options::mmap_reads`.
    pub mmap_reads: bool,
    /// Bloom filter bits per key of the outputs of bottommost compactions (no deeper level
    /// holds their key range: the last level, mostly) (`None`: as the other files, 10; at most
    /// `nanodb_storage::BLOOM_BITS_PER_KEY_MAX`). Fewer bits save pinned memory at the cost of
    /// lookups of absent keys. See `nanodb_storage::Options::bloom_bits_per_key_bottommost`.
    pub bloom_bits_per_key_bottommost: Option<u32>,
    /// Target size of an SST data block before compression, in bytes (default
    /// `nanodb_storage::BLOCK_SIZE_BYTES_DEFAULT`, 4 KiB; from
    /// `nanodb_storage::BLOCK_SIZE_BYTES_MIN` to `BLOCK_SIZE_BYTES_LIMIT`). Each open SST pins
    /// one index entry per block, outside the memory budget, so larger blocks pin less; a
    /// lookup that misses the block cache reads and decompresses a whole block, so smaller
    /// blocks make those cheaper. Files written before a change keep their blocks until
    /// compaction rewrites them. Up to 16 KiB every data block keeps its hash index (one
    /// entry decoded per lookup); much larger blocks of small entries have more restart
    /// points than its one-byte buckets can name and are searched by bisection instead.
    pub block_size_bytes: usize,
}

impl Default for DatabaseOptions {
    fn default() -> DatabaseOptions {
        DatabaseOptions {
            sync: true,
            ttl_check_interval: TTL_CHECK_INTERVAL_DEFAULT,
            mmap_reads: false,
            bloom_bits_per_key_bottommost: None,
            block_size_bytes: nanodb_storage::BLOCK_SIZE_BYTES_DEFAULT,
        }
    }
}

/// Bloom filter bits per key of bottommost compaction outputs in
/// `DatabaseOptions::small_memory`.
pub const BLOOM_BITS_PER_KEY_BOTTOMMOST_SMALL_MEMORY: u32 = 5;
/// SST data block size of `DatabaseOptions::small_memory`, in bytes.
pub const BLOCK_SIZE_BYTES_SMALL_MEMORY: usize = 16 * 1024;

impl DatabaseOptions {
    /// The defaults, for a small machine (what `nanodb serve` uses), but for what each open
    /// file pins in memory outside the budget (its index and bloom filter):
    /// - the outputs of bottommost compactions (the last level's files, which hold most of the
    ///   keys) get bloom filters of `BLOOM_BITS_PER_KEY_BOTTOMMOST_SMALL_MEMORY` bits per key
    ///   instead of 10: about 40% off the filters, and about 9% of the lookups of absent keys
    ///   (an insert's check that its id is new, a unique index's check) read one more block
    ///   of those files, against 1%;
    /// - data blocks of `BLOCK_SIZE_BYTES_SMALL_MEMORY` (16 KiB) instead of 4 KiB: a quarter
    ///   of the index entries, and a lookup that misses the block cache decompresses 16 KiB.
    ///
    /// Measured with the server at 1,000,000 records and 1,000,000 notes (docs/benchmarks.md,
    /// issue 7): pinned 9 to 10 MiB with the defaults, 7 with the filters alone, 4 with both;
    /// with both, creates peaked at 35 MiB resident against 38 to 39 with the filters alone,
    /// gets as fast, lists under a rule 15% faster (more of the records in the small cache).
    pub fn small_memory() -> DatabaseOptions {
        DatabaseOptions {
            bloom_bits_per_key_bottommost: Some(BLOOM_BITS_PER_KEY_BOTTOMMOST_SMALL_MEMORY),
            block_size_bytes: BLOCK_SIZE_BYTES_SMALL_MEMORY,
            ..DatabaseOptions::default()
        }
    }

    /// The storage engine's options these set (the engine's defaults for the rest); the
    /// runtime adds its filesystem, memory budget and memtable size.
    pub(crate) fn storage_options(&self) -> nanodb_storage::Options {
        nanodb_storage::Options {
            mmap_reads: self.mmap_reads,
            bloom_bits_per_key_bottommost: self.bloom_bits_per_key_bottommost,
            block_size_bytes: self.block_size_bytes,
            ..nanodb_storage::Options::default()
        }
    }

    /// Checks the options against their limits (the engine's own checks for the options it
    /// takes).
    pub(crate) fn validate(&self) -> Result<()> {
        self.storage_options().validate().map_err(|error| match error {
            nanodb_storage::Error::InvalidArgument(detail) => Error::invalid(detail),
            other => Error::from(other),
        })?;
        let interval = self.ttl_check_interval;
        if !(TTL_CHECK_INTERVAL_MIN..=TTL_CHECK_INTERVAL_MAX).contains(&interval) {
            return Err(Error::invalid(format!(
                "ttl_check_interval must be {TTL_CHECK_INTERVAL_MIN:?} to \
                 {TTL_CHECK_INTERVAL_MAX:?}, not {interval:?}"
            )));
        }
        Ok(())
    }
}

/// A live collection's shared state; every `Collection` handle points at one.
pub(crate) struct CollectionState {
    pub spec: RwLock<CollectionSpec>,
    pub documents: Keyspace,
    /// The database's interned field names, which the stored documents use.
    pub names: Arc<FieldNames>,
    pub dropped: AtomicBool,
    /// The indexes every write maintains (a new list replaces the old when one is added or
    /// dropped, so a write keeps the list it started with).
    pub indexes: RwLock<Arc<Vec<Arc<IndexState>>>>,
    /// Held shared by every transaction that touches the collection, to its commit; an index
    /// is added (or a feed subscription starts) under it held exclusively, so after that every
    /// write in flight maintains the index (records its changes).
    pub writers: Arc<RwLock<()>>,
}

impl CollectionState {
    fn new(
        spec: CollectionSpec,
        documents: Keyspace,
        names: Arc<FieldNames>,
        indexes: Vec<Arc<IndexState>>,
    ) -> Self {
        CollectionState {
            spec: RwLock::new(spec),
            documents,
            names,
            dropped: AtomicBool::new(false),
            indexes: RwLock::new(Arc::new(indexes)),
            writers: Arc::new(RwLock::new(())),
        }
    }

    /// The current indexes.
    pub fn indexes(&self) -> Arc<Vec<Arc<IndexState>>> {
        Arc::clone(&self.indexes.read())
    }

    /// The indexes ready now. Take them before a storage snapshot: an index marked ready
    /// after the snapshot was taken may have build commits the snapshot does not hold.
    pub fn ready_indexes(&self) -> Vec<Arc<IndexState>> {
        self.indexes().iter().filter(|index| index.is_ready()).cloned().collect()
    }

    pub fn name(&self) -> String {
        self.spec.read().name.clone()
    }

    /// The collection's id. (Read into a local before calling anything that may lock: a
    /// `spec` guard held across a call can deadlock with a catalog change waiting to write.)
    pub fn id(&self) -> u64 {
        self.spec.read().id
    }

    pub fn check_live(&self) -> Result<()> {
        if self.dropped.load(Ordering::Acquire) {
            return Err(Error::NotFound { kind: "collection", name: self.name() });
        }
        Ok(())
    }
}

pub(crate) struct DatabaseInner {
    pub name: String,
    pub db: Db,
    pub options: DatabaseOptions,
    pub catalog: Keyspace,
    /// The interned field names of the stored documents.
    pub names: Arc<FieldNames>,
    collections: RwLock<HashMap<String, Arc<CollectionState>>>,
    /// Serializes catalog changes; holds the next collection (and index) id.
    pub catalog_lock: Mutex<u64>,
    /// Index builders running in the background.
    pub builders: Mutex<Vec<JoinHandle<()>>>,
    /// Set by `shutdown`: builders stop at their next step.
    pub closing: AtomicBool,
    /// The change feed's subscribers; the storage's commit listener.
    pub hub: Arc<Hub>,
    /// Whether the TTL thread runs (`ttl::start_reaper`).
    pub reaper_started: AtomicBool,
    /// Stops the TTL thread.
    pub reaper_wake: Arc<ReaperWake>,
}

impl DatabaseInner {
    /// Writes collection `spec` to the catalog (and the next id), durably.
    pub fn write_spec(&self, spec: &CollectionSpec, next_id: u64) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put_in(&self.catalog, spec.catalog_key(), spec.encode());
        let next = msgpack::to_bytes(&Value::Int(next_id as i64));
        batch.put_in(&self.catalog, NEXT_COLLECTION_ID_KEY, next);
        self.db.write(batch, WriteOptions::SYNC)?;
        Ok(())
    }

    pub fn write_options(&self) -> WriteOptions {
        if self.options.sync {
            WriteOptions::SYNC
        } else {
            WriteOptions::NO_SYNC
        }
    }
}

/// A logical database: a set of named collections. Cheap to clone; all clones share it.
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<DatabaseInner>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("name", &self.inner.name).finish_non_exhaustive()
    }
}

impl Database {
    /// Loads the catalog of the open storage database `db`, removing leftovers of interrupted
    /// collection drops.
    pub(crate) fn load(name: &str, db: Db, options: DatabaseOptions) -> Result<Database> {
        let catalog = db.keyspace(CATALOG_KEYSPACE)?;
        let mut next_id = match catalog.get(NEXT_COLLECTION_ID_KEY)? {
            None => 1,
            Some(bytes) => match msgpack::decode(&bytes) {
                Ok(Value::Int(n)) if n > 0 => n as u64,
                _ => return Err(Error::corruption("catalog", "next_collection_id is not a count")),
            },
        };
        let mut collections = HashMap::new();
        let mut live_ids = HashSet::new();
        let mut live_index_ids = HashSet::new();
        let mut unfinished = Vec::new();
        let multikey = recorded_ids(&catalog)?;
        let names = Arc::new(FieldNames::load(db.clone(), catalog.clone(), options.sync)?);
        for entry in catalog.prefix(COLLECTION_KEY_PREFIX)? {
            let (_, bytes) = entry?;
            let spec = CollectionSpec::decode(&bytes)?;
            next_id = next_id.max(spec.id + 1);
            let missing = |error: nanodb_storage::Error| {
                Error::corruption("catalog", format!("collection {:?}: {error}", spec.name))
            };
            let documents = db.open_keyspace(&spec.documents_keyspace()).map_err(missing)?;
            live_ids.insert(spec.id);
            let mut indexes = Vec::new();
            for index in &spec.indexes {
                next_id = next_id.max(index.id + 1);
                live_index_ids.insert(index.id);
                let keyspace = db.open_keyspace(&index.keyspace_name()).map_err(missing)?;
                let marked = multikey.contains(&index.id);
                indexes.push(Arc::new(IndexState::new(index, keyspace, catalog.clone(), marked)));
            }
            let state = Arc::new(CollectionState::new(
                spec.clone(),
                documents,
                Arc::clone(&names),
                indexes,
            ));
            for index in state.indexes().iter().filter(|index| !index.is_ready()) {
                unfinished.push((Arc::clone(&state), Arc::clone(index)));
            }
            collections.insert(spec.name, state);
        }
        for keyspace in db.keyspaces() {
            let leftover = collection_of_keyspace(&keyspace)
                .is_some_and(|id| !live_ids.contains(&id))
                || index_of_keyspace(&keyspace).is_some_and(|id| !live_index_ids.contains(&id));
            if leftover {
                db.drop_keyspace(&keyspace)?;
            }
        }
        for id in multikey.difference(&live_index_ids) {
            catalog.delete(marker_key(*id), WriteOptions::SYNC)?;
        }
        let inner = DatabaseInner {
            name: name.to_string(),
            db,
            options,
            catalog,
            names,
            collections: RwLock::new(collections),
            catalog_lock: Mutex::new(next_id),
            builders: Mutex::new(Vec::new()),
            closing: AtomicBool::new(false),
            hub: Arc::new(Hub::default()),
            reaper_started: AtomicBool::new(false),
            reaper_wake: Arc::new(ReaperWake::default()),
        };
        let database = Database { inner: Arc::new(inner) };
        let listener: Arc<dyn CommitListener> = database.inner.hub.clone();
        database.inner.db.set_commit_listener(Some(listener));
        if !database.ttl_collections().is_empty() {
            start_reaper(&database);
        }
        // Builds a crash interrupted start again from the first document.
        for (state, index) in unfinished {
            crate::index::start_build(&database, state, index);
        }
        Ok(database)
    }

    /// Stops the index builders and the TTL thread and waits for them, and ends every change
    /// feed subscription (called before the storage closes).
    pub(crate) fn shutdown(&self) {
        self.inner.closing.store(true, Ordering::Release);
        self.inner.reaper_wake.close();
        self.inner.hub.close_all();
        let builders = std::mem::take(&mut *self.inner.builders.lock());
        for builder in builders {
            let _ = builder.join();
        }
    }

    /// The live collections' states.
    pub(crate) fn collection_states(&self) -> Vec<Arc<CollectionState>> {
        self.inner.collections.read().values().cloned().collect()
    }

    /// Handles to the collections with a TTL.
    pub(crate) fn ttl_collections(&self) -> Vec<Collection> {
        let states = self.collection_states().into_iter();
        let ttl = states.filter(|state| state.spec.read().options.ttl.is_some());
        ttl.map(|state| Collection::new(self.clone(), state)).collect()
    }

    /// Subscribes to the committed changes of every collection of the database (see
    /// `ChangeStream`). Waits for the writes in flight to finish first.
    pub fn subscribe(&self, options: FeedOptions) -> Result<ChangeStream> {
        crate::feed::subscribe(self, None, &options)
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The storage engine database underneath (for statistics, checkpoints, verify).
    pub fn storage(&self) -> &Db {
        &self.inner.db
    }

    /// Collection `name`, created with default options if it does not exist.
    pub fn collection(&self, name: &str) -> Result<Collection> {
        match self.open_collection(name) {
            Err(Error::NotFound { .. }) => {
                match self.create_collection(name, CollectionOptions::default()) {
                    Err(Error::AlreadyExists { .. }) => self.open_collection(name),
                    other => other,
                }
            }
            other => other,
        }
    }

    /// Collection `name`; `Error::NotFound` if it does not exist.
    pub fn open_collection(&self, name: &str) -> Result<Collection> {
        check_collection_name(name)?;
        let state = self.inner.collections.read().get(name).cloned();
        match state {
            Some(state) => Ok(Collection::new(self.clone(), state)),
            None => Err(Error::NotFound { kind: "collection", name: name.to_string() }),
        }
    }

    /// Creates collection `name`; `Error::AlreadyExists` if it exists.
    pub fn create_collection(&self, name: &str, options: CollectionOptions) -> Result<Collection> {
        check_collection_name(name)?;
        options.validate()?;
        let mut next_id = self.inner.catalog_lock.lock();
        if self.inner.collections.read().contains_key(name) {
            return Err(Error::AlreadyExists { kind: "collection", name: name.to_string() });
        }
        let ttl_index = options.ttl.as_ref().map(Ttl::index).transpose()?;
        let mut spec =
            CollectionSpec { id: *next_id, name: name.to_string(), options, indexes: Vec::new() };
        // The keyspaces first: a crash before the catalog entry leaves leftover keyspaces,
        // which the next open removes.
        let documents = self.inner.db.create_keyspace(&spec.documents_keyspace())?;
        let mut indexes = Vec::new();
        if let Some(definition) = ttl_index {
            // Empty collection: the TTL index is complete from the start.
            let index = IndexSpec { id: spec.id + 1, definition, status: IndexStatus::Ready };
            let keyspace = self.inner.db.create_keyspace(&index.keyspace_name())?;
            let catalog = self.inner.catalog.clone();
            indexes.push(Arc::new(IndexState::new(&index, keyspace, catalog, false)));
            spec.indexes.push(index);
        }
        let next = spec.indexes.last().map_or(spec.id, |index| index.id) + 1;
        self.inner.write_spec(&spec, next)?;
        *next_id = next;
        let has_ttl = spec.options.ttl.is_some();
        let names = Arc::clone(&self.inner.names);
        let state = Arc::new(CollectionState::new(spec, documents, names, indexes));
        self.inner.collections.write().insert(name.to_string(), Arc::clone(&state));
        if has_ttl {
            start_reaper(self);
        }
        Ok(Collection::new(self.clone(), state))
    }

    /// The names of the collections, sorted.
    pub fn collections(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.collections.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// Drops collection `name` and every document in it. Cheap whatever its size: its files
    /// are deleted, its documents are not read. Handles to it return `Error::NotFound`.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        check_collection_name(name)?;
        let _guard = self.inner.catalog_lock.lock();
        let Some(state) = self.inner.collections.read().get(name).cloned() else {
            return Err(Error::NotFound { kind: "collection", name: name.to_string() });
        };
        let mut batch = WriteBatch::new();
        batch.delete_in(&self.inner.catalog, collection_key(name));
        self.inner.db.write(batch, WriteOptions::SYNC)?;
        state.dropped.store(true, Ordering::Release);
        self.inner.collections.write().remove(name);
        self.inner.hub.close_collection(state.id(), name);
        let keyspace = state.spec.read().documents_keyspace();
        self.inner.db.drop_keyspace(&keyspace)?;
        for index in state.indexes().iter() {
            index.dropped.store(true, Ordering::Release);
            self.inner.db.drop_keyspace(index.keyspace.name())?;
        }
        Ok(())
    }

    /// Renames collection `from` to `to`; its documents do not move. Handles to it follow.
    pub fn rename_collection(&self, from: &str, to: &str) -> Result<()> {
        check_collection_name(from)?;
        check_collection_name(to)?;
        let _guard = self.inner.catalog_lock.lock();
        let Some(state) = self.inner.collections.read().get(from).cloned() else {
            return Err(Error::NotFound { kind: "collection", name: from.to_string() });
        };
        if from == to {
            return Ok(());
        }
        if self.inner.collections.read().contains_key(to) {
            return Err(Error::AlreadyExists { kind: "collection", name: to.to_string() });
        }
        let mut renamed = state.spec.read().clone();
        renamed.name = to.to_string();
        let mut batch = WriteBatch::new();
        batch.delete_in(&self.inner.catalog, collection_key(from));
        batch.put_in(&self.inner.catalog, renamed.catalog_key(), renamed.encode());
        self.inner.db.write(batch, WriteOptions::SYNC)?;
        *state.spec.write() = renamed;
        let mut collections = self.inner.collections.write();
        collections.remove(from);
        collections.insert(to.to_string(), state);
        Ok(())
    }
}
