//! `AppState`: what every request shares: the nanodb runtime, the collection definitions,
//! the password hasher, the token secret, the first-run install token, the realtime
//! clients, the metrics, the auth rate limit and the allowed origins.
//!
//! All PocketBase collections live in one logical database, `DATABASE_NAME`, of a `NanoDb`
//! opened on the data directory. The token secret (50 random characters) is created on the
//! first start and kept in the `_pb_settings` collection, so tokens survive restarts.
//!
//! Document-layer calls block (they may wait for an fsync), so handlers run them through
//! `blocking`, on tokio's blocking threads, never on the async workers.
//!
//! Thread safety: `AppState` is `Send + Sync`, shared as `Arc<AppState>`.

use crate::auth::install::InstallToken;
use crate::auth::password::Passwords;
use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::ops::cors::Cors;
use crate::ops::metrics::Metrics;
use crate::ops::rate_limit::RateLimiter;
use crate::realtime::Realtime;
use crate::schema::definitions::SETTINGS_COLLECTION;
use crate::schema::Definitions;
use nanodb::{Database, DatabaseOptions, NanoDb, NanoDbOptions, Value};
use std::sync::Arc;

/// The logical database holding every collection.
pub const DATABASE_NAME: &str = "pb";
/// Length of the server's token secret.
pub const TOKEN_SECRET_LEN: usize = 50;
/// The settings document holding the token secret.
const SETTINGS_DOCUMENT: &str = "server";

/// The state every request shares.
pub struct AppState {
    /// How the server runs.
    pub config: ServerConfig,
    /// The nanodb runtime on the data directory.
    pub runtime: NanoDb,
    /// The collection definitions.
    pub definitions: Definitions,
    /// The argon2id hasher with its concurrency cap.
    pub passwords: Arc<Passwords>,
    /// The server's part of every token signing key.
    pub secret: String,
    /// The first-run token that lets the first superuser be created.
    pub install: InstallToken,
    /// The realtime clients and the feed pump.
    pub realtime: Realtime,
    /// The request counters of `/metrics`.
    pub metrics: Metrics,
    /// The per-IP rate limit of the auth endpoints.
    pub auth_rate_limit: RateLimiter,
    /// The allowed browser origins.
    pub cors: Cors,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("data_dir", &self.config.data_dir).finish_non_exhaustive()
    }
}

impl AppState {
    /// Opens (or creates) the data directory and loads everything (blocking).
    pub fn open(config: ServerConfig) -> Result<AppState> {
        let options = NanoDbOptions {
            memory_bytes: config.memory_bytes,
            database: DatabaseOptions { sync: config.sync_writes, ..DatabaseOptions::default() },
            ..NanoDbOptions::default()
        };
        let runtime = NanoDb::open(&config.data_dir, options)?;
        let database = runtime.database(DATABASE_NAME)?;
        let definitions = Definitions::open(&database)?;
        let secret = token_secret(&database)?;
        let passwords = Arc::new(Passwords::new(&config)?);
        let install = InstallToken::new(config.install_token.clone());
        let realtime = Realtime::new(&config);
        let auth_rate_limit =
            RateLimiter::new(config.auth_rate_limit_burst, config.auth_rate_limit_per_minute);
        let cors = Cors::new(&config.cors_origins);
        Ok(AppState {
            config,
            runtime,
            definitions,
            passwords,
            secret,
            install,
            realtime,
            metrics: Metrics::new(),
            auth_rate_limit,
            cors,
        })
    }

    /// The database holding every collection.
    pub fn database(&self) -> &Database {
        self.definitions.database()
    }

    /// Closes the databases (every acknowledged write is then durable).
    pub fn close(&self) -> Result<()> {
        Ok(self.runtime.close()?)
    }
}

/// Runs document-layer work on a blocking thread.
pub async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    work: impl FnOnce(&AppState) -> Result<T> + Send + 'static,
) -> Result<T> {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || work(&state))
        .await
        .map_err(|error| Error::Internal(format!("a request task failed: {error}")))?
}

/// The stored token secret, created on first use.
fn token_secret(database: &Database) -> Result<String> {
    let settings = database.collection(SETTINGS_COLLECTION)?;
    if let Some(secret) = settings.get(SETTINGS_DOCUMENT)?.and_then(|document| {
        document.get("tokenSecret").and_then(Value::as_str).map(str::to_string)
    }) {
        return Ok(secret);
    }
    let secret = crate::auth::install::random_text(TOKEN_SECRET_LEN)?;
    let mut fields = nanodb::Map::new();
    fields.insert("tokenSecret".into(), Value::String(secret.clone()));
    settings.upsert(SETTINGS_DOCUMENT, Value::Object(fields))?;
    Ok(secret)
}
