//! Helpers for unit tests: stored documents (which only a collection can make), built in an
//! in-memory database, and a whole server state on a temporary directory (`TestState`).

use crate::schema::{CollectionDef, CollectionKind};
use nanodb::{Document, NanoDb, NanoDbOptions, Value};

/// `fields` stored as a document of a throwaway in-memory collection (so it has `id`,
/// `created` and `updated`; an `id` in `fields` is kept).
pub fn document(fields: serde_json::Value) -> Document {
    let runtime = NanoDb::in_memory(NanoDbOptions::default()).unwrap();
    let collection = runtime.database("test").unwrap().collection("test").unwrap();
    collection.insert(Value::from(fields)).unwrap()
}

/// A server state on a temporary directory, with cheap password hashing; closed when
/// dropped.
pub struct TestState {
    /// The state.
    pub state: std::sync::Arc<crate::state::AppState>,
    dir: Option<tempfile::TempDir>,
}

impl TestState {
    /// A fresh state.
    pub fn new() -> TestState {
        TestState::with(|_| {})
    }

    /// A fresh state, its config changed by `edit`.
    pub fn with(edit: impl FnOnce(&mut crate::config::ServerConfig)) -> TestState {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        edit(&mut config);
        let state = crate::state::AppState::open(config).unwrap();
        TestState { state: std::sync::Arc::new(state), dir: Some(dir) }
    }

    /// Closes the state and opens another on the same directory.
    pub fn reopen(mut self) -> TestState {
        self.state.close().unwrap();
        let dir = self.dir.take();
        drop(self); // the last handle of the runtime: its directory lock goes with it
        let path = dir.as_ref().map(|dir| dir.path().to_path_buf()).unwrap();
        let state = crate::state::AppState::open(config(&path)).unwrap();
        TestState { state: std::sync::Arc::new(state), dir }
    }

    /// Creates the collection of `body` (a collections API body), as the API does.
    pub fn create_collection(&self, body: serde_json::Value) -> std::sync::Arc<CollectionDef> {
        let body = body.as_object().cloned().unwrap();
        let kind = match body.get("type").and_then(|kind| kind.as_str()) {
            Some("auth") => CollectionKind::Auth,
            _ => CollectionKind::Base,
        };
        let name = body.get("name").and_then(|name| name.as_str()).unwrap_or("");
        let mut start = CollectionDef::new(name, kind);
        if let Some(id) = body.get("id").and_then(|id| id.as_str()) {
            start.id = id.to_string();
        }
        let mut def = CollectionDef::from_body(&start, &body).unwrap();
        crate::schema::validate::prepare(&mut def, &self.state.definitions.snapshot()).unwrap();
        self.state.definitions.create(def).unwrap()
    }
}

impl Default for TestState {
    fn default() -> TestState {
        TestState::new()
    }
}

impl Drop for TestState {
    fn drop(&mut self) {
        if self.dir.is_some() {
            let _ = self.state.close();
        }
    }
}

/// A config on `dir` with cheap password hashing and no syncs.
pub fn config(dir: &std::path::Path) -> crate::config::ServerConfig {
    crate::config::ServerConfig {
        password_hash_memory_kib: 256,
        password_hash_passes: 1,
        sync_writes: false,
        ..crate::config::ServerConfig::new(dir)
    }
}
