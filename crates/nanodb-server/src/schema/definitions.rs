//! `Definitions`: every collection definition, persisted in the nanodb collection
//! `_pb_collections` (one document per definition, its id the collection id) and held in
//! memory as an immutable snapshot that requests share.
//!
//! Each PocketBase collection's records live in the nanodb collection named by its id (so a
//! rename changes only the definition). Changes run one at a time (`changes` lock), with
//! record writes held off (`write_gate`: writes hold it shared from reading their
//! definition to their commit), and keep this order, so a crash at any point leaves a state
//! `open` repairs:
//! - create: the record collection and its indexes, then the definition (the commit point);
//! - update: the indexes (put back if that fails); then a pending migration record in
//!   `_pb_migrations` with the field changes and the new definition; the records migrated
//!   in chunks, each recording its progress in the pending record; then one transaction
//!   stores the new definition and deletes the pending record (the commit point). A
//!   migration cut short by an error keeps the old definition and indexes in use, refuses
//!   writes to the collection (503) and is finished by the next change; one cut short by a
//!   crash is finished by the next open;
//! - delete: the definition (the commit point), then the record collection.
//!
//! On open, pending migrations are finished, a record collection without a definition is
//! dropped, and a definition whose record collection or indexes are missing gets them back
//! (`storage::ensure`). The default collections are created on the first start only (a
//! deleted `users` stays deleted).
//!
//! Thread safety: `Definitions` is `Send + Sync`; readers take an `Arc` of the snapshot and
//! never wait for a change in progress. Lock order: `changes`, then `writes`.
//!
//! Invariant: the snapshot holds exactly the stored definitions, and for each one its
//! record collection exists with the definition's indexes (or, while its migration is
//! unfinished, the old definition's indexes); no id or name of one collection is the id or
//! name of another.

use super::collection::{CollectionDef, CollectionKind};
use super::defaults;
use super::field::FieldKind;
use super::storage::{self, FieldMigration};
use crate::error::{Error, Result};
use nanodb::{Collection, Database, Document, Value};
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use serde_json::{json, Value as Json};
use std::collections::HashSet;
use std::sync::Arc;

/// The nanodb collection holding the definitions.
pub const DEFINITIONS_COLLECTION: &str = "_pb_collections";
/// The nanodb collection holding server settings (the token secret).
pub const SETTINGS_COLLECTION: &str = "_pb_settings";
/// The nanodb collection holding pending field migrations (one per collection id, while
/// its records are rewritten for a new definition).
pub const MIGRATIONS_COLLECTION: &str = "_pb_migrations";
/// The nanodb collections of the server itself (no definition of their own).
pub const INTERNAL_COLLECTIONS: [&str; 3] =
    [DEFINITIONS_COLLECTION, SETTINGS_COLLECTION, MIGRATIONS_COLLECTION];

/// Every definition at one moment.
#[derive(Debug, Default)]
pub struct DefinitionsSnapshot {
    defs: Vec<Arc<CollectionDef>>,
}

impl DefinitionsSnapshot {
    /// A snapshot of `defs`.
    pub fn from_defs(defs: Vec<Arc<CollectionDef>>) -> DefinitionsSnapshot {
        DefinitionsSnapshot { defs }
    }

    /// The collection with id `key`, else the one named `key` (names compare
    /// case-insensitively, as in PocketBase).
    pub fn find(&self, key: &str) -> Option<Arc<CollectionDef>> {
        self.by_id(key)
            .or_else(|| self.defs.iter().find(|def| def.name.eq_ignore_ascii_case(key)).cloned())
    }

    /// The collection with id `id`.
    pub fn by_id(&self, id: &str) -> Option<Arc<CollectionDef>> {
        self.defs.iter().find(|def| def.id == id).cloned()
    }

    /// Every definition, in creation order.
    pub fn all(&self) -> &[Arc<CollectionDef>] {
        &self.defs
    }
}

/// The definitions and their storage.
pub struct Definitions {
    db: Database,
    store: Collection,
    migrations: Collection,
    snapshot: RwLock<Arc<DefinitionsSnapshot>>,
    changes: Mutex<()>,
    /// Held shared by record writes, exclusively by definition changes (`write_gate`).
    writes: RwLock<()>,
    /// Collections whose field migration an error cut short: writes to them wait for it to
    /// finish (at the next change of the definitions, or the next open).
    unfinished: Mutex<HashSet<String>>,
}

impl Definitions {
    /// Loads the definitions of `db`, repairs their storage, and creates the default
    /// collections (`_superusers`, `users`) on the first start.
    pub fn open(db: &Database) -> Result<Definitions> {
        let store = db.collection(DEFINITIONS_COLLECTION)?;
        let migrations = db.collection(MIGRATIONS_COLLECTION)?;
        // Pending migrations first: each ends by storing its new definition.
        for pending in migrations.documents()? {
            let id = pending?.id().to_string();
            tracing::warn!(collection = %id, "finishing a field migration cut short");
            finish_migration(db, &store, &migrations, &id, &mut |_| Ok(()))?;
        }
        let mut defs = Vec::new();
        for document in store.documents()? {
            defs.push(Arc::new(decode(&document?)?));
        }
        defs.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
        for name in db.collections() {
            let internal = INTERNAL_COLLECTIONS.contains(&name.as_str());
            if !internal && !defs.iter().any(|def| def.id == name) {
                tracing::warn!(collection = %name, "dropping records without a definition");
                db.drop_collection(&name)?;
            }
        }
        for def in &defs {
            storage::ensure(db, def)?;
        }
        let definitions = Definitions {
            db: db.clone(),
            store,
            migrations,
            snapshot: RwLock::new(Arc::new(DefinitionsSnapshot { defs })),
            changes: Mutex::new(()),
            writes: RwLock::new(()),
            unfinished: Mutex::new(HashSet::new()),
        };
        // `users` only on the first start (no definitions at all): one deleted later stays
        // deleted. `_superusers` is a system collection (it cannot be deleted), so it is
        // only ever missing on the first start, or after a crash in the middle of it.
        let first_start = definitions.snapshot().all().is_empty();
        let mut wanted = vec![defaults::superusers()];
        if first_start {
            wanted.push(defaults::users());
        }
        for def in wanted {
            if definitions.snapshot().by_id(&def.id).is_none()
                && definitions.snapshot().find(&def.name).is_none()
            {
                definitions.create(def)?;
            }
        }
        Ok(definitions)
    }

    /// The definitions now.
    pub fn snapshot(&self) -> Arc<DefinitionsSnapshot> {
        Arc::clone(&self.snapshot.read())
    }

    /// The database the records live in.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The nanodb collection holding the definitions (for listing them with a filter).
    pub fn store(&self) -> &Collection {
        &self.store
    }

    /// Held (shared) by a record write from reading its collection's definition
    /// (`writable`) to its commit: a definition change waits for the writes in flight, and
    /// writes wait for it, so no write uses a definition that is being replaced.
    pub fn write_gate(&self) -> RwLockReadGuard<'_, ()> {
        self.writes.read()
    }

    /// The definition of collection `id` now, for a write under `write_gate`: 404 if it is
    /// gone, 503 while a field migration of it that an error cut short is unfinished.
    pub fn writable(&self, id: &str) -> Result<Arc<CollectionDef>> {
        if self.unfinished.lock().contains(id) {
            return Err(Error::Unavailable(
                "The collection's last field change is unfinished; it completes with the next \
                 change of the collections, or at the next start."
                    .into(),
            ));
        }
        self.snapshot().by_id(id).ok_or_else(Error::not_found)
    }

    /// The record collection of `def`.
    pub fn records(&self, def: &CollectionDef) -> Result<Collection> {
        Ok(self.db.open_collection(&def.id)?)
    }

    /// Adds a new collection. Its id and name must be free: neither may be another
    /// collection's id or name, since either finds a collection in a path (checked here,
    /// under the change lock).
    pub fn create(&self, mut def: CollectionDef) -> Result<Arc<CollectionDef>> {
        let _change = self.changes.lock();
        let snapshot = self.snapshot();
        if snapshot.find(&def.id).is_some() || snapshot.find(&def.name).is_some() {
            return Err(Error::bad_request(format!(
                "A collection with the id {:?} or the name {:?} already exists.",
                def.id, def.name
            )));
        }
        storage::ensure(&self.db, &def)?;
        let stored = self.store.insert(encode(&def)?)?;
        (def.created, def.updated) = (Some(stored.created()), Some(stored.updated()));
        let def = Arc::new(def);
        self.publish(|defs| defs.push(Arc::clone(&def)));
        Ok(def)
    }

    /// Replaces the definition of `old.id` with `new`, changing indexes and field data.
    pub fn update(&self, old: &CollectionDef, new: CollectionDef) -> Result<Arc<CollectionDef>> {
        self.update_with(old, new, &mut |_| Ok(()))
    }

    /// `update`, with `after_chunk` run after each chunk of migrated records.
    ///
    /// Crash safety: the indexes are changed first (put back on failure); then a pending
    /// migration record holding the field changes and the new definition is stored, the
    /// records are migrated in chunks that each record their progress, and one transaction
    /// stores the new definition and deletes the pending record. A crash or error on the
    /// way leaves the pending record, which the next open (or change) finishes.
    fn update_with(
        &self,
        old: &CollectionDef,
        new: CollectionDef,
        after_chunk: &mut dyn FnMut(usize) -> Result<()>,
    ) -> Result<Arc<CollectionDef>> {
        let _change = self.changes.lock();
        let _writes = self.writes.write();
        self.finish_unfinished()?;
        let snapshot = self.snapshot();
        let Some(current) = snapshot.by_id(&old.id) else { return Err(Error::not_found()) };
        if let Some(other) = snapshot.find(&new.name).filter(|other| other.id != old.id) {
            return Err(Error::bad_request(format!(
                "A collection named {:?} already exists.",
                other.name
            )));
        }
        if let Err(error) = storage::ensure(&self.db, &new) {
            storage::ensure(&self.db, &current)?; // put the old indexes back
            return Err(error);
        }
        let migration = FieldMigration::between(&current, &new);
        let pending = json!({"migration": migration.to_json(), "after": "",
            "definition": encode_json(&new)?});
        let stored =
            self.migrations.upsert(&new.id, Value::from(pending)).map_err(Error::from).and_then(
                |_| finish_migration(&self.db, &self.store, &self.migrations, &new.id, after_chunk),
            );
        let new = match stored {
            Ok(stored) => Arc::new(decode(&stored)?),
            Err(error) => {
                // The old definition stays in use, with its indexes; writes to the
                // collection wait until the migration is finished.
                self.unfinished.lock().insert(new.id.clone());
                storage::ensure(&self.db, &current)?;
                return Err(error);
            }
        };
        self.publish_replaced(&new);
        Ok(new)
    }

    /// Finishes the migrations an error cut short (under the change lock and the write
    /// gate), publishing their definitions with their indexes.
    fn finish_unfinished(&self) -> Result<()> {
        let ids: Vec<String> = self.unfinished.lock().iter().cloned().collect();
        for id in ids {
            let stored =
                finish_migration(&self.db, &self.store, &self.migrations, &id, &mut |_| Ok(()))?;
            let def = Arc::new(decode(&stored)?);
            storage::ensure(&self.db, &def)?;
            self.unfinished.lock().remove(&id);
            self.publish_replaced(&def);
        }
        Ok(())
    }

    /// Deletes a collection and all its records; 400 if a relation field of another
    /// collection points to it (checked under the change lock, so a relation created
    /// meanwhile cannot slip past the check).
    pub fn delete(&self, def: &CollectionDef) -> Result<()> {
        let _change = self.changes.lock();
        let _writes = self.writes.write();
        self.finish_unfinished()?;
        let snapshot = self.snapshot();
        for other in snapshot.all().iter().filter(|other| other.id != def.id) {
            let points_here = other.fields.iter().any(|field| match &field.kind {
                FieldKind::Relation { collection_id, .. } => *collection_id == def.id,
                _ => false,
            });
            if points_here {
                return Err(Error::bad_request(format!(
                    "The collection is referenced by a relation field of {:?}.",
                    other.name
                )));
            }
        }
        if self.store.delete(&def.id)?.is_none() {
            return Err(Error::not_found());
        }
        self.publish(|defs| defs.retain(|other| other.id != def.id));
        match self.db.drop_collection(&def.id) {
            Ok(()) | Err(nanodb::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes every record of a collection (drops and recreates its storage: cheap).
    pub fn truncate(&self, def: &CollectionDef) -> Result<()> {
        let _change = self.changes.lock();
        let _writes = self.writes.write();
        let Some(current) = self.snapshot().by_id(&def.id) else { return Err(Error::not_found()) };
        self.db.drop_collection(&current.id)?;
        storage::ensure(&self.db, &current)
    }

    /// Publishes `def` in place of the definition with its id.
    fn publish_replaced(&self, def: &Arc<CollectionDef>) {
        self.publish(|defs| {
            if let Some(slot) = defs.iter_mut().find(|other| other.id == def.id) {
                *slot = Arc::clone(def);
            }
        });
    }

    fn publish(&self, change: impl FnOnce(&mut Vec<Arc<CollectionDef>>)) {
        let mut guard = self.snapshot.write();
        let mut defs = guard.defs.clone();
        change(&mut defs);
        *guard = Arc::new(DefinitionsSnapshot { defs });
    }
}

/// A definition as the document stored for it (its id is the document id).
fn encode(def: &CollectionDef) -> Result<Value> {
    Ok(Value::from(encode_json(def)?))
}

/// `encode`, as JSON.
fn encode_json(def: &CollectionDef) -> Result<Json> {
    let Json::Object(mut map) = def.to_json() else {
        return Err(Error::Internal("a definition is not a JSON object".into()));
    };
    for reserved in ["created", "updated"] {
        map.remove(reserved);
    }
    Ok(Json::Object(map))
}

/// Finishes the pending migration of collection `id`: migrates the records it has not
/// reached, then, in one transaction, stores its new definition and deletes it (the commit
/// point). The stored definition.
fn finish_migration(
    db: &Database,
    store: &Collection,
    migrations: &Collection,
    id: &str,
    after_chunk: &mut dyn FnMut(usize) -> Result<()>,
) -> Result<Document> {
    let corrupt = |detail: &str| {
        Error::Internal(format!("the pending migration of collection {id:?} is invalid: {detail}"))
    };
    let pending = migrations.get(id)?.ok_or_else(|| corrupt("missing"))?.to_json();
    let migration = pending
        .get("migration")
        .and_then(FieldMigration::from_json)
        .ok_or_else(|| corrupt("no field changes"))?;
    let after = pending.get("after").and_then(Json::as_str).unwrap_or("");
    let definition = pending.get("definition").cloned().ok_or_else(|| corrupt("no definition"))?;
    let records = db.collection(id)?;
    storage::migrate_records(db, &records, migrations, id, &migration, after, after_chunk)?;
    let definition = Value::from(definition);
    Ok(db.run_transaction(|txn| {
        let stored = txn.replace(store, id, definition.clone())?;
        txn.delete(migrations, id)?;
        Ok(stored)
    })?)
}

/// A stored definition, read back.
fn decode(document: &Document) -> Result<CollectionDef> {
    let corrupt = |detail: String| {
        Error::Internal(format!(
            "stored definition of collection {:?} is invalid: {detail}",
            document.id()
        ))
    };
    let Json::Object(map) = document.to_json() else { return Err(corrupt("not an object".into())) };
    let kind = match map.get("type").and_then(Json::as_str) {
        Some("auth") => CollectionKind::Auth,
        Some("base") => CollectionKind::Base,
        other => return Err(corrupt(format!("type {other:?}"))),
    };
    let name = map.get("name").and_then(Json::as_str).unwrap_or("");
    let mut start = CollectionDef::new(name, kind);
    start.id = document.id().to_string();
    let mut def =
        CollectionDef::from_body(&start, &map).map_err(|errors| corrupt(format!("{errors:?}")))?;
    def.system = map.get("system").and_then(Json::as_bool).unwrap_or(false);
    (def.created, def.updated) = (Some(document.created()), Some(document.updated()));
    Ok(def)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::defaults::{SUPERUSERS_ID, USERS_NAME};
    use crate::test_support::TestState;

    #[test]
    fn a_deleted_users_collection_stays_deleted_after_a_restart() {
        let test = TestState::new();
        let users =
            test.state.definitions.snapshot().find(USERS_NAME).expect("made at first start");
        test.state.definitions.delete(&users).unwrap();
        let test = test.reopen();
        let snapshot = test.state.definitions.snapshot();
        assert!(snapshot.find(USERS_NAME).is_none(), "not recreated with its open createRule");
        assert!(snapshot.by_id(SUPERUSERS_ID).is_some());
    }

    #[test]
    fn ids_and_names_never_shadow_each_other() {
        let test = TestState::new();
        let tags = test.create_collection(serde_json::json!({"name": "tags", "id": "tagsid"}));
        let definitions = &test.state.definitions;
        let named = |name: &str, id: &str| {
            let mut def = crate::schema::CollectionDef::new(name, tags.kind);
            def.id = id.to_string();
            def
        };
        for (name, id) in [("other", "tags"), ("other", "TAGS"), ("tagsid", "other2")] {
            let refused = definitions.create(named(name, id)).unwrap_err();
            assert_eq!(refused.status().as_u16(), 400, "{name} {id}");
        }
        definitions.create(named("other", "other1")).unwrap();
        assert_eq!(definitions.snapshot().find("tags").unwrap().id, "tagsid");
    }

    #[test]
    fn a_collection_a_relation_points_to_cannot_be_deleted() {
        let test = TestState::new();
        let tags = test.create_collection(serde_json::json!({"name": "tags"}));
        let posts = test.create_collection(serde_json::json!({"name": "posts",
            "fields": [{"name": "tag", "type": "relation", "collectionId": "tags"}]}));
        let refused = test.state.definitions.delete(&tags).unwrap_err();
        assert!(refused.to_string().contains("\"posts\""), "{refused}");
        assert!(test.state.definitions.snapshot().by_id(&tags.id).is_some());
        test.state.definitions.delete(&posts).unwrap();
        test.state.definitions.delete(&tags).unwrap();
    }

    /// `notes` with `count` records whose `a` is their number, and an index on `a`.
    fn notes(test: &TestState, count: usize) -> Arc<CollectionDef> {
        let def = test.create_collection(serde_json::json!({"name": "notes",
            "fields": [{"name": "a", "type": "number"}, {"name": "gone", "type": "text"}],
            "indexes": ["CREATE INDEX idx_a ON notes (a)"]}));
        let records = test.state.definitions.records(&def).unwrap();
        for n in 0..count {
            records.insert(Value::from(serde_json::json!({"a": n, "gone": "x"}))).unwrap();
        }
        def
    }

    /// `a` renamed `b` (its index too), `gone` removed, a bool `flag` added.
    fn changed(old: &CollectionDef) -> CollectionDef {
        let mut new = old.clone();
        new.fields.retain(|field| field.name != "gone");
        for field in &mut new.fields {
            if field.name == "a" {
                field.name = "b".into();
            }
        }
        let mut errors = Default::default();
        let flag = serde_json::json!({"name": "flag", "type": "bool"});
        new.fields.push(crate::schema::Field::from_json(&flag, "f", &mut errors).unwrap());
        new.indexes = vec!["CREATE INDEX idx_b ON notes (b)".into()];
        new
    }

    fn index_names(test: &TestState, def: &CollectionDef) -> Vec<String> {
        let records = test.state.definitions.records(def).unwrap();
        let mut names: Vec<String> = records
            .indexes()
            .into_iter()
            .map(|index| index.definition.name)
            .filter(|name| name != nanodb::TTL_INDEX_NAME)
            .collect();
        names.sort();
        names
    }

    /// A migration that fails after its first chunk keeps the old definition and indexes,
    /// holds writes off the collection, and is finished by the next open: every record
    /// migrated exactly once, with the new definition and indexes.
    #[test]
    fn a_migration_cut_short_is_finished_at_the_next_open() {
        let count = storage::MIGRATION_CHUNK_DOCUMENTS * 2 + 10;
        let test = TestState::new();
        let old = notes(&test, count);
        {
            let definitions = &test.state.definitions;
            let mut fail = |chunk: usize| match chunk {
                1 => Err(Error::Internal("injected after the first chunk".into())),
                _ => Ok(()),
            };
            let error = definitions.update_with(&old, changed(&old), &mut fail).unwrap_err();
            assert!(error.to_string().contains("injected"), "{error}");
            let now = definitions.snapshot().by_id(&old.id).unwrap();
            assert!(now.field("a").is_some() && now.field("b").is_none(), "the old definition");
            assert_eq!(index_names(&test, &now), ["idx_a"], "the old indexes are back");
            let refused = definitions.writable(&old.id).unwrap_err();
            assert_eq!(refused.status().as_u16(), 503);
            let records = definitions.records(&old).unwrap();
            let moved =
                records.documents().unwrap().filter(|d| d.as_ref().unwrap().get("b").is_some());
            assert_eq!(moved.count(), storage::MIGRATION_CHUNK_DOCUMENTS, "one chunk migrated");
        } // every handle on the database dropped before the reopen
        let test = test.reopen();
        let definitions = &test.state.definitions;
        let new = definitions.snapshot().by_id(&old.id).unwrap();
        assert!(new.field("b").is_some() && new.field("a").is_none(), "the new definition");
        assert_eq!(index_names(&test, &new), ["idx_b"]);
        assert!(definitions.writable(&new.id).is_ok());
        let records = definitions.records(&new).unwrap();
        let mut seen: Vec<i64> = Vec::new();
        for document in records.documents().unwrap() {
            let document = document.unwrap();
            assert!(document.get("a").is_none() && document.get("gone").is_none());
            assert_eq!(document.get("flag"), Some(&Value::Bool(false)));
            seen.push(document.get("b").and_then(Value::as_i64).unwrap());
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..count as i64).collect::<Vec<_>>(), "each record migrated once");
        let store = test.state.database().collection(MIGRATIONS_COLLECTION).unwrap();
        assert_eq!(store.documents().unwrap().count(), 0, "no migration left pending");
    }

    /// An error cut short is also finished by the next change of the definitions.
    #[test]
    fn a_migration_cut_short_is_finished_by_the_next_change() {
        let test = TestState::new();
        let old = notes(&test, 3);
        let definitions = &test.state.definitions;
        let mut fail = |_| Err(Error::Internal("injected".into()));
        assert!(definitions.update_with(&old, changed(&old), &mut fail).is_err());
        let other = test.create_collection(serde_json::json!({"name": "other"}));
        definitions.delete(&other).unwrap();
        let new = definitions.snapshot().by_id(&old.id).unwrap();
        assert!(new.field("b").is_some());
        assert!(definitions.writable(&new.id).is_ok());
    }

    /// A definition change waits for the record writes in flight (and they for it).
    #[test]
    fn changes_wait_for_writes_in_flight() {
        let test = TestState::new();
        let old = notes(&test, 1);
        let gate = test.state.definitions.write_gate();
        let (done, finished) = std::sync::mpsc::channel();
        let state = Arc::clone(&test.state);
        let changing = std::thread::spawn(move || {
            let result = state.definitions.update(&old, changed(&old)).map(|_| ());
            done.send(()).unwrap();
            result
        });
        let wait = std::time::Duration::from_millis(200);
        assert!(finished.recv_timeout(wait).is_err(), "the change waits for the write");
        drop(gate);
        finished.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        changing.join().unwrap().unwrap();
    }
}
