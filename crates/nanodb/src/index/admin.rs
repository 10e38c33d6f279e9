//! Creating, dropping and listing the indexes of a collection, and the index updates every
//! document write makes.
//!
//! Catalog changes take the database's catalog lock and are durable before they return. An
//! index's keyspace is created before its catalog entry and dropped after it is removed, so a
//! crash between the two leaves only a keyspace the next open removes.
//!
//! Thread safety: index lists are swapped under `CollectionState::writers` held exclusively,
//! so a write sees one list from its snapshot to its commit.

use super::build::{start_build, IndexBuild};
use super::{
    entries_of, Entry, IndexDefinition, IndexInfo, IndexSpec, IndexState, IndexStatus,
    INDEXES_PER_COLLECTION_MAX,
};
use crate::collection::Collection;
use crate::database::{CollectionState, Database};
use crate::query::eval::{single, Root, TopFields};
use crate::transaction::Writes;
use crate::ttl::TTL_INDEX_NAME;
use crate::value::Map;
use crate::{Error, Result};
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Collection {
    /// Creates an index and starts building it over the existing documents in the background;
    /// writes maintain it from now on, queries use it once it is ready (`IndexBuild::wait`).
    pub fn create_index(&self, definition: IndexDefinition) -> Result<IndexBuild> {
        definition.validate()?;
        if definition.name == TTL_INDEX_NAME {
            return Err(reserved());
        }
        let (database, state) = (self.database(), self.state());
        let inner = &database.inner;
        let mut next_id = inner.catalog_lock.lock();
        state.check_live()?;
        let mut spec = state.spec.read().clone();
        if spec.indexes.iter().any(|index| index.definition.name == definition.name) {
            return Err(Error::AlreadyExists { kind: "index", name: definition.name });
        }
        Error::check_limit(
            "indexes of a collection",
            spec.indexes.len() + 1,
            INDEXES_PER_COLLECTION_MAX,
        )?;
        let index_spec = IndexSpec { id: *next_id, definition, status: IndexStatus::Building };
        let keyspace = inner.db.create_keyspace(&index_spec.keyspace_name())?;
        spec.indexes.push(index_spec.clone());
        inner.write_spec(&spec, index_spec.id + 1)?;
        *next_id += 1;
        *state.spec.write() = spec;
        let catalog = inner.catalog.clone();
        let index = Arc::new(IndexState::new(&index_spec, keyspace, catalog, false));
        replace_indexes(state, |list| list.push(Arc::clone(&index)));
        drop(next_id);
        Ok(start_build(database, Arc::clone(state), index))
    }

    /// Drops index `name`; `Error::NotFound` if there is none.
    pub fn drop_index(&self, name: &str) -> Result<()> {
        let (database, state) = (self.database(), self.state());
        let inner = &database.inner;
        let next_id = inner.catalog_lock.lock();
        state.check_live()?;
        if name == TTL_INDEX_NAME && state.spec.read().options.ttl.is_some() {
            return Err(reserved());
        }
        let Some(index) = state.indexes().iter().find(|i| i.definition.name == name).cloned()
        else {
            return Err(Error::NotFound { kind: "index", name: name.to_string() });
        };
        remove(database, state, &index, *next_id)
    }

    /// The collection's indexes, in creation order.
    pub fn indexes(&self) -> Vec<IndexInfo> {
        self.state()
            .indexes()
            .iter()
            .map(|index| IndexInfo {
                definition: index.definition.clone(),
                status: index.spec().status,
                built_documents: index.built_documents.load(Ordering::Relaxed),
            })
            .collect()
    }
}

fn reserved() -> Error {
    Error::InvalidName {
        kind: "index",
        name: TTL_INDEX_NAME.to_string(),
        reason: "it is reserved for the index a TTL collection keeps on its TTL field".into(),
    }
}

/// Swaps in a new index list, with no write in flight.
fn replace_indexes(state: &CollectionState, change: impl FnOnce(&mut Vec<Arc<IndexState>>)) {
    let _no_writes = state.writers.write();
    let mut list = (*state.indexes()).clone();
    change(&mut list);
    *state.indexes.write() = Arc::new(list);
}

/// Removes `index` from the catalog, the live list and the storage (catalog lock held).
fn remove(
    database: &Database,
    state: &CollectionState,
    index: &IndexState,
    next_id: u64,
) -> Result<()> {
    let inner = &database.inner;
    let mut spec = state.spec.read().clone();
    spec.indexes.retain(|other| other.id != index.id);
    inner.write_spec(&spec, next_id)?;
    *state.spec.write() = spec;
    index.dropped.store(true, Ordering::Release);
    replace_indexes(state, |list| list.retain(|other| other.id != index.id));
    inner.db.drop_keyspace(index.keyspace.name())?;
    Ok(())
}

/// Records a finished build in the catalog and opens the index to queries.
pub(crate) fn mark_ready(
    database: &Database,
    state: &CollectionState,
    index: &IndexState,
) -> Result<()> {
    let next_id = database.inner.catalog_lock.lock();
    state.check_live()?;
    let mut spec = state.spec.read().clone();
    let Some(entry) = spec.indexes.iter_mut().find(|other| other.id == index.id) else {
        return Err(Error::NotFound { kind: "index", name: index.definition.name.clone() });
    };
    entry.status = IndexStatus::Ready;
    database.inner.write_spec(&spec, *next_id)?;
    *state.spec.write() = spec;
    index.set_ready();
    Ok(())
}

/// Removes an index whose build failed (if it is still there).
pub(crate) fn remove_failed(
    database: &Database,
    state: &CollectionState,
    index: &IndexState,
) -> Result<()> {
    let next_id = database.inner.catalog_lock.lock();
    if state.check_live().is_err() || !state.indexes().iter().any(|other| other.id == index.id) {
        return Ok(());
    }
    remove(database, state, index, *next_id)
}

/// The unique-violation error for document `fields` in `index`.
pub(crate) fn violation(
    state: &CollectionState,
    index: &IndexState,
    fields: &dyn TopFields,
) -> Error {
    let values: Vec<serde_json::Value> = index
        .definition
        .fields
        .iter()
        .map(|field| single(Root::Fields(fields), &field.path).into_owned().into())
        .collect();
    let value = match values.as_slice() {
        [one] => one.to_string(),
        _ => serde_json::Value::Array(values).to_string(),
    };
    Error::UniqueViolation { collection: state.name(), index: index.definition.name.clone(), value }
}

/// Updates every index for document `id` changing from `old` to `new` (`None`: absent), in
/// `writes`; a unique index already holding a new value for another document is an
/// `Error::UniqueViolation`. An index the new version gives several entries is marked
/// multikey in the same transaction (`multikey`).
pub(crate) fn update_entries(
    writes: &mut Writes,
    state: &CollectionState,
    indexes: &[Arc<IndexState>],
    id: &str,
    old: Option<&dyn TopFields>,
    new: Option<&dyn TopFields>,
) -> Result<()> {
    for index in indexes {
        let entries = |fields: Option<&dyn TopFields>| -> Result<Vec<Entry>> {
            fields.map_or(Ok(Vec::new()), |fields| entries_of(&index.definition, fields, id))
        };
        let (before, after) = (entries(old)?, entries(new)?);
        let txn = &mut writes.txn;
        if index.note_entries(txn, after.len())? {
            writes.multikey_marked.push(Arc::clone(index));
        }
        for entry in before.iter().filter(|entry| after.binary_search(entry).is_err()) {
            txn.delete_in(&index.keyspace, &entry.key)?;
        }
        for entry in after.iter().filter(|entry| before.binary_search(entry).is_err()) {
            if entry.unique {
                if let Some(owner) = txn.get_in(&index.keyspace, &entry.key)? {
                    if owner != id.as_bytes() {
                        return Err(violation(state, index, new.unwrap_or(&Map::new())));
                    }
                }
            }
            txn.put_in(&index.keyspace, &entry.key, id.as_bytes())?;
        }
    }
    Ok(())
}

impl Collection {
    /// Checks that every ready index holds exactly the entries of the documents, at one
    /// snapshot; returns how many entries were checked, or `Error::Corruption` naming the
    /// first difference. Holds every index's expected entries in memory while it runs.
    pub fn verify_indexes(&self) -> Result<u64> {
        let state = self.state();
        state.check_live()?;
        // The ready set first: an index that became ready after the snapshot would be
        // checked against a snapshot without its last build commits.
        let indexes = state.ready_indexes();
        let snapshot = self.database().storage().snapshot()?;
        let mut checked = 0;
        for index in &indexes {
            let context = format!("index {:?} of {}", index.definition.name, state.name());
            let mut expected = std::collections::BTreeMap::new();
            for entry in snapshot.range_in::<&[u8], _>(&state.documents, ..)? {
                let (id, bytes) = entry?;
                let id = String::from_utf8_lossy(&id).into_owned();
                let document =
                    crate::Document::from_stored(bytes, &id, &state.names, || context.clone())?;
                for entry in entries_of(&index.definition, &document, &id)? {
                    expected.insert(entry.key, id.clone());
                }
            }
            let mut expected = expected.into_iter();
            for entry in snapshot.range_in::<&[u8], _>(&index.keyspace, ..)? {
                let (key, id) = entry?;
                let id = String::from_utf8_lossy(&id).into_owned();
                match expected.next() {
                    Some((want_key, want_id)) if want_key == key && want_id == id => checked += 1,
                    Some((_, want_id)) => {
                        return Err(Error::corruption(
                            context,
                            format!("entry for {id:?} where one for {want_id:?} belongs"),
                        ))
                    }
                    None => {
                        return Err(Error::corruption(context, format!("extra entry for {id:?}")))
                    }
                }
            }
            if let Some((_, id)) = expected.next() {
                return Err(Error::corruption(context, format!("no entry for document {id:?}")));
            }
        }
        Ok(checked)
    }
}
