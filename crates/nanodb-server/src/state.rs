//! `AppState`: what every request shares: the nanodb runtime, the collection definitions,
//! the password hasher, the token secret, the first-run install token, the realtime
//! clients, the metrics, the auth rate limit and the allowed origins.
//!
//! All PocketBase collections live in one logical database, `DATABASE_NAME`, of a `NanoDb`
//! opened on the data directory. The token secret (50 random characters) is created on the
//! first start and kept in the `_pb_settings` collection, so tokens survive restarts.
//!
//! Document-layer calls block (they may wait for an fsync), so handlers run them through
//! `blocking`, on tokio's blocking threads. At most `ServerConfig::blocking_tasks_max` of
//! them run at once (a semaphore); the others wait, asynchronously, for a slot.
//!
//! Reads are the exception (`read_inline_first`): a list or view first runs on the async
//! worker itself, with a budget of `ServerConfig::inline_read_entries_max` entries per find
//! or count that nanodb checks as it reads; one that spends it stops and runs again, without
//! a budget, through `blocking`. Most reads stay well inside the budget and so skip the two
//! thread handoffs of `blocking` (a third of a get's CPU time); none holds a worker for more
//! than the budget's work, though a read that waits on the disk holds it that long.
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
use nanodb::query::ReadBudget;
use nanodb::{Database, DatabaseOptions, NanoDb, NanoDbOptions, Value};
use std::sync::Arc;
use tokio::sync::Semaphore;

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
    /// The slots of `blocking` (`ServerConfig::blocking_tasks_max`).
    blocking_slots: Arc<Semaphore>,
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
            database: DatabaseOptions {
                sync: config.sync_writes,
                ..DatabaseOptions::small_memory()
            },
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
        let blocking_slots = Arc::new(slots(config.blocking_tasks_max));
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
            blocking_slots,
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

/// A semaphore of `count` permits, at least one and at most what tokio's semaphore holds (a
/// bound from the config, where 0 or a huge number must not panic).
pub(crate) fn slots(count: usize) -> Semaphore {
    Semaphore::new(count.clamp(1, Semaphore::MAX_PERMITS))
}

/// Runs document-layer work on a blocking thread, once one of the
/// `ServerConfig::blocking_tasks_max` slots is free.
pub async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    work: impl FnOnce(&AppState) -> Result<T> + Send + 'static,
) -> Result<T> {
    let slot = Arc::clone(&state.blocking_slots)
        .acquire_owned()
        .await
        .map_err(|_| Error::Unavailable("The server is shutting down.".into()))?;
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work(&state)
    })
    .await
    .map_err(|error| Error::Internal(format!("a request task failed: {error}")))?
}

/// Runs read-only document work on the calling async worker with a budget of
/// `ServerConfig::inline_read_entries_max` entries; if the work spends it
/// (`Error::is_budget_spent`), runs it again with no budget through `blocking`. The work must
/// only read: it may run twice.
pub async fn read_inline_first<T: Send + 'static>(
    state: &Arc<AppState>,
    work: impl Fn(&AppState, ReadBudget) -> Result<T> + Send + 'static,
) -> Result<T> {
    let entries_max = state.config.inline_read_entries_max;
    if entries_max > 0 {
        // A panic is a 500, as it is through `blocking`, not a dropped connection.
        let inline = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            work(state, ReadBudget::entries(entries_max))
        }));
        match inline {
            Err(_) => return Err(Error::Internal("a request task failed: it panicked".into())),
            Ok(Err(error)) if error.is_budget_spent() => {}
            Ok(done) => return done,
        }
    }
    blocking(state, move |state| work(state, ReadBudget::UNLIMITED)).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TestState;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// The most `blocking` tasks seen running at once, of `tasks` started together.
    fn peak_of(slots: usize, tasks: usize) -> usize {
        let test = TestState::with(|config| config.blocking_tasks_max = slots);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        runtime.block_on(async {
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let (state, running, peak) =
                        (Arc::clone(&test.state), Arc::clone(&running), Arc::clone(&peak));
                    tokio::spawn(async move {
                        blocking(&state, move |_| {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(150));
                            running.fetch_sub(1, Ordering::SeqCst);
                            Ok(())
                        })
                        .await
                    })
                })
                .collect();
            for handle in handles {
                handle.await.unwrap().unwrap();
            }
        });
        peak.load(Ordering::SeqCst)
    }

    #[test]
    fn reads_run_inline_within_their_budget_and_move_to_a_blocking_slot_past_it() {
        use parking_lot::Mutex;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        for entries_max in [0, 100] {
            let test = TestState::with(|config| {
                config.blocking_tasks_max = 1;
                config.inline_read_entries_max = entries_max;
            });
            let state = Arc::clone(&test.state);
            runtime.block_on(async {
                // Every blocking slot taken: only an inline read can finish.
                let slot = Arc::clone(&state.blocking_slots).acquire_owned().await.unwrap();
                let seen = Arc::new(Mutex::new(Vec::new()));
                let record = Arc::clone(&seen);
                let quick = read_inline_first(&state, move |_, budget| {
                    record.lock().push(budget.entries_max);
                    Ok(7)
                });
                let quick = tokio::time::timeout(Duration::from_millis(300), quick).await;
                match entries_max == 0 {
                    true => assert!(quick.is_err(), "zero: waits for a blocking slot"),
                    false => assert_eq!(quick.unwrap().unwrap(), 7),
                }
                // A read that spends its budget runs again, without one, in a slot.
                let record = Arc::clone(&seen);
                let slow = tokio::spawn({
                    let state = Arc::clone(&state);
                    async move {
                        read_inline_first(&state, move |_, budget| {
                            record.lock().push(budget.entries_max);
                            match budget.entries_max {
                                Some(_) => Err(nanodb::Error::BudgetExceeded { spent: "x" }.into()),
                                None => Ok(8),
                            }
                        })
                        .await
                    }
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
                drop(slot);
                assert_eq!(slow.await.unwrap().unwrap(), 8);
                let expected: &[Option<u64>] = match entries_max {
                    0 => &[None],
                    _ => &[Some(100), Some(100), None],
                };
                assert_eq!(seen.lock().as_slice(), expected, "{entries_max}");
                if entries_max > 0 {
                    let failed = read_inline_first(&state, |_, _| -> Result<()> { panic!("bug") });
                    assert!(matches!(failed.await, Err(Error::Internal(_))));
                }
            });
        }
    }

    #[test]
    fn blocking_tasks_are_capped_at_the_configured_slots() {
        assert_eq!(peak_of(3, 3), 3, "as many as the slots run together");
        assert_eq!(peak_of(3, 6), 3, "one more waits for a slot");
        assert_eq!(peak_of(0, 2), 1, "0 is taken as 1");
        // More slots than a semaphore holds are taken as its most, not a panic.
        for slots in [Semaphore::MAX_PERMITS, Semaphore::MAX_PERMITS + 1, usize::MAX] {
            let test = TestState::with(|config| config.blocking_tasks_max = slots);
            assert_eq!(test.state.blocking_slots.available_permits(), Semaphore::MAX_PERMITS);
        }
    }
}
