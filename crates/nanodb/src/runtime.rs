//! `NanoDb`: the runtime that holds many logical databases under one root directory.
//!
//! Each database is a subdirectory of the root (named by its validated name) holding one
//! storage `Db`. Databases open lazily, on first use, and stay open until dropped or until the
//! runtime closes. All of them share one `MemoryBudget` (memtables and one block cache), and
//! each has its own memtable cap, so one busy database cannot take all the memory. At most
//! `databases_open_max` are open at once.
//!
//! Thread safety: `NanoDb` is `Send + Sync` and cheap to clone. `open` (the map of open
//! databases) is held while a database opens, so two threads never open one twice.
//!
//! Invariant: a database name reaching the filesystem has passed `check_database_name`, so it
//! is one plain path component under the root.

use crate::database::{Database, DatabaseOptions};
use crate::names::check_database_name;
use crate::{Error, Result};
use nanodb_storage::fs::{Fs, RealFs, SimFs};
use nanodb_storage::{MemoryBudget, Options};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Default memory budget shared by all databases (memtables and block cache), in bytes.
pub const MEMORY_BYTES_DEFAULT: u64 = 256 * 1024 * 1024;
/// Default cap of one database's memtable, in bytes.
pub const DATABASE_MEMTABLE_BYTES_MAX_DEFAULT: usize = 16 * 1024 * 1024;
/// Default most databases open at once.
pub const DATABASES_OPEN_MAX_DEFAULT: usize = 256;
/// The file whose presence marks a directory as a database (the storage engine's).
const DATABASE_MARKER_FILE: &str = "CURRENT";

/// How a runtime runs.
#[derive(Debug, Clone)]
pub struct NanoDbOptions {
    /// Memory shared by every database's memtables and the one block cache, in bytes (at
    /// least `nanodb_storage::MEMORY_BUDGET_BYTES_MIN`).
    pub memory_bytes: u64,
    /// Largest memtable of one database, in bytes.
    pub database_memtable_bytes_max: usize,
    /// Most databases open at once; opening one more is `Error::LimitExceeded`.
    pub databases_open_max: usize,
    /// Options every database gets.
    pub database: DatabaseOptions,
}

impl Default for NanoDbOptions {
    fn default() -> NanoDbOptions {
        NanoDbOptions {
            memory_bytes: MEMORY_BYTES_DEFAULT,
            database_memtable_bytes_max: DATABASE_MEMTABLE_BYTES_MAX_DEFAULT,
            databases_open_max: DATABASES_OPEN_MAX_DEFAULT,
            database: DatabaseOptions::default(),
        }
    }
}

struct RuntimeInner {
    root: PathBuf,
    fs: Arc<dyn Fs>,
    options: NanoDbOptions,
    budget: Arc<MemoryBudget>,
    open: Mutex<HashMap<String, Database>>,
    closed: AtomicBool,
}

/// Many logical databases in one process. Cheap to clone; all clones share it.
#[derive(Clone)]
pub struct NanoDb {
    inner: Arc<RuntimeInner>,
}

impl std::fmt::Debug for NanoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NanoDb").field("root", &self.inner.root).finish_non_exhaustive()
    }
}

impl NanoDb {
    /// A runtime over the databases under directory `root` (created if missing).
    pub fn open(root: impl AsRef<Path>, options: NanoDbOptions) -> Result<NanoDb> {
        NanoDb::with_fs(root.as_ref(), Arc::new(RealFs), options)
    }

    /// A runtime whose databases live in memory only (for tests and caches).
    pub fn in_memory(options: NanoDbOptions) -> Result<NanoDb> {
        NanoDb::with_fs(Path::new("/nanodb"), Arc::new(SimFs::new()), options)
    }

    /// A runtime on the given filesystem (the storage engine's in-memory one for crash
    /// tests).
    pub fn with_fs(root: &Path, fs: Arc<dyn Fs>, options: NanoDbOptions) -> Result<NanoDb> {
        if options.databases_open_max == 0 {
            return Err(Error::invalid("databases_open_max must be at least 1"));
        }
        options.database.validate()?;
        let budget = MemoryBudget::new(options.memory_bytes)?;
        fs.create_dir_all(root).map_err(|error| io_error(root, "create", error))?;
        let inner = RuntimeInner {
            root: root.to_path_buf(),
            fs,
            options,
            budget,
            open: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        };
        Ok(NanoDb { inner: Arc::new(inner) })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The memory budget every database shares.
    pub fn memory_budget(&self) -> &Arc<MemoryBudget> {
        &self.inner.budget
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn exists(&self, name: &str) -> Result<bool> {
        let marker = self.inner.root.join(name).join(DATABASE_MARKER_FILE);
        self.inner.fs.exists(&marker).map_err(|error| io_error(&marker, "look for", error))
    }

    /// Database `name`, opened if it exists and created if not.
    pub fn database(&self, name: &str) -> Result<Database> {
        self.open_or_create(name, None)
    }

    /// Database `name`; `Error::NotFound` if it does not exist.
    pub fn open_database(&self, name: &str) -> Result<Database> {
        self.open_or_create(name, Some(false))
    }

    /// Creates database `name`; `Error::AlreadyExists` if it exists.
    pub fn create_database(&self, name: &str) -> Result<Database> {
        self.open_or_create(name, Some(true))
    }

    /// `create`: `None` opens or creates, `Some(true)` only creates, `Some(false)` only opens.
    fn open_or_create(&self, name: &str, create: Option<bool>) -> Result<Database> {
        check_database_name(name)?;
        self.check_open()?;
        let mut open = self.inner.open.lock();
        self.check_open()?;
        if let Some(database) = open.get(name) {
            if create == Some(true) {
                return Err(Error::AlreadyExists { kind: "database", name: name.to_string() });
            }
            return Ok(database.clone());
        }
        match (create, self.exists(name)?) {
            (Some(true), true) => {
                return Err(Error::AlreadyExists { kind: "database", name: name.to_string() })
            }
            (Some(false), false) => {
                return Err(Error::NotFound { kind: "database", name: name.to_string() })
            }
            _ => {}
        }
        Error::check_limit(
            "open databases",
            open.len() + 1,
            self.inner.options.databases_open_max,
        )?;
        let options = Options {
            fs: Arc::clone(&self.inner.fs),
            memory_budget: Some(Arc::clone(&self.inner.budget)),
            memtable_size_bytes_max: self.inner.options.database_memtable_bytes_max,
            ..self.inner.options.database.storage_options()
        };
        let db = nanodb_storage::Db::open(self.inner.root.join(name), options)?;
        let database = Database::load(name, db, self.inner.options.database)?;
        open.insert(name.to_string(), database.clone());
        Ok(database)
    }

    /// The names of the databases under the root, sorted.
    pub fn databases(&self) -> Result<Vec<String>> {
        self.check_open()?;
        let root = &self.inner.root;
        let entries =
            self.inner.fs.list_dir(root).map_err(|error| io_error(root, "list", error))?;
        let mut names = Vec::new();
        for name in entries {
            if check_database_name(&name).is_ok() && self.exists(&name)? {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Closes database `name` (its handles then return errors) and deletes all its files.
    pub fn drop_database(&self, name: &str) -> Result<()> {
        check_database_name(name)?;
        self.check_open()?;
        let mut open = self.inner.open.lock();
        if !open.contains_key(name) && !self.exists(name)? {
            return Err(Error::NotFound { kind: "database", name: name.to_string() });
        }
        if let Some(database) = open.remove(name) {
            database.shutdown();
            database.inner.db.clone().close()?;
        } else {
            // Not open here: make sure no other process has it, by opening it once.
            let options = Options { fs: Arc::clone(&self.inner.fs), ..Options::default() };
            nanodb_storage::Db::open(self.inner.root.join(name), options)?.close()?;
        }
        let dir = self.inner.root.join(name);
        let fs = &self.inner.fs;
        // The marker goes first: a crash part-way leaves a directory that is no database.
        let marker = dir.join(DATABASE_MARKER_FILE);
        fs.remove_file(&marker).map_err(|error| io_error(&marker, "remove", error))?;
        fs.sync_dir(&dir).map_err(|error| io_error(&dir, "sync", error))?;
        for file in fs.list_dir(&dir).map_err(|error| io_error(&dir, "list", error))? {
            let path = dir.join(&file);
            fs.remove_file(&path).map_err(|error| io_error(&path, "remove", error))?;
        }
        fs.remove_dir(&dir).map_err(|error| io_error(&dir, "remove", error))?;
        let root = &self.inner.root;
        fs.sync_dir(root).map_err(|error| io_error(root, "sync", error))?;
        Ok(())
    }

    /// Closes every open database (each syncs its wal); later calls return `Error::Closed`,
    /// and so do the databases' handles, which keep their directories locked until they drop.
    /// `Ok` means every acknowledged write is durable.
    pub fn close(&self) -> Result<()> {
        let mut open = self.inner.open.lock();
        self.inner.closed.store(true, Ordering::Release);
        let mut first_error = None;
        for (_, database) in open.drain() {
            database.shutdown();
            if let Err(error) = database.inner.db.clone().close() {
                first_error.get_or_insert(Error::from(error));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn io_error(path: &Path, action: &str, error: std::io::Error) -> Error {
    Error::Storage(nanodb_storage::Error::io(format!("{action} {}", path.display()), error))
}
