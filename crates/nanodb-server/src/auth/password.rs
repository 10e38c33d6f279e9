//! Password hashing with argon2id, under a cap on how many hashes run at once.
//!
//! One argon2id hash takes `password_hash_memory_kib` of memory and a core for tens of
//! milliseconds, so unbounded logins could exhaust the machine. `Passwords` runs every hash
//! on one of `password_hashes_concurrent_max` threads of its own, and at most
//! `password_hash_waiters_max` requests wait for one; past that a request gets 429 at once
//! instead of queueing without bound.
//!
//! Own threads, not tokio's blocking pool: the allocator (glibc's malloc) keeps a freed
//! hash's memory in the arena of the thread that used it, so hashing on whatever blocking
//! thread is free left up to one hash's memory behind in each of its many arenas (16 logins
//! at once took a server from 8 MB to 240 MB resident). On a few fixed threads, what is kept
//! is at most a hash's memory per thread, reused by the next hash, and given back after
//! `HASH_MEMORY_IDLE_RELEASE` without a job (the threads take turns waiting on the channel with
//! that timeout, so each one wakes and releases within a few such periods).
//!
//! A login for an unknown identity still verifies against a fixed dummy hash
//! (`verify(password, None)`), so its timing does not tell whether the account exists.
//!
//! Thread safety: `Passwords` is `Send + Sync`, shared by all requests; its hashing threads
//! take jobs from one channel and end when it is dropped.
//!
//! Invariant: passwords longer than `PASSWORD_BYTES_MAX` never reach argon2 (they are
//! refused by validation first).

use crate::config::ServerConfig;
use crate::error::{Error, FieldError, Result};
use argon2::Params;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};

/// Longest password accepted, in bytes.
pub const PASSWORD_BYTES_MAX: usize = 256;

/// Checks a new password's length: at least `min` characters, at most `PASSWORD_BYTES_MAX`
/// bytes; the failure with PocketBase's code.
pub fn check_length(password: &str, min: usize) -> std::result::Result<(), FieldError> {
    if password.chars().count() < min {
        let text = format!("Must be at least {min} character(s).");
        return Err(FieldError::new("validation_min_text_constraint", text));
    }
    if password.len() > PASSWORD_BYTES_MAX {
        let text = format!("Must be less than {PASSWORD_BYTES_MAX} bytes.");
        return Err(FieldError::new("validation_max_text_constraint", text));
    }
    Ok(())
}
/// How long a hashing thread waits for a job before it gives its working memory (one hash's,
/// 19 MiB by default) back; the next hash allocates it again.
pub const HASH_MEMORY_IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(1);
/// Bytes of random salt per hash.
const SALT_BYTES: usize = 16;

/// A hashing job: runs on a hashing thread and sends its own result.
type Job = Box<dyn FnOnce() + Send>;

/// The argon2id hasher with its concurrency cap.
pub struct Passwords {
    params: Params,
    /// Jobs for the hashing threads.
    jobs: mpsc::Sender<Job>,
    /// How many hashing threads there are.
    threads: usize,
    /// Jobs submitted and not finished (running ones included).
    outstanding: Arc<AtomicUsize>,
    waiters_max: usize,
    dummy_hash: OnceLock<String>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").field("params", &self.params).finish_non_exhaustive()
    }
}

impl Passwords {
    /// A hasher with the config's cost and caps.
    pub fn new(config: &ServerConfig) -> Result<Passwords> {
        let params =
            Params::new(config.password_hash_memory_kib, config.password_hash_passes, 1, None)
                .map_err(|error| {
                    Error::Internal(format!("bad password hash parameters: {error}"))
                })?;
        if config.password_hashes_concurrent_max == 0 {
            return Err(Error::Internal(
                "password_hashes_concurrent_max must be at least 1".into(),
            ));
        }
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..config.password_hashes_concurrent_max {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("nanodb-hash-{index}"))
                .spawn(move || loop {
                    let job = receiver.lock().recv_timeout(HASH_MEMORY_IDLE_RELEASE);
                    match job {
                        Ok(job) => job(),
                        // Idle: give the working memory back; an empty one is no work.
                        Err(mpsc::RecvTimeoutError::Timeout) => super::argon::release_blocks(),
                        Err(mpsc::RecvTimeoutError::Disconnected) => return, // hasher dropped
                    }
                })
                .map_err(|error| Error::io("start a password hashing thread", error))?;
        }
        Ok(Passwords {
            params,
            jobs,
            threads: config.password_hashes_concurrent_max,
            outstanding: Arc::new(AtomicUsize::new(0)),
            waiters_max: config.password_hash_waiters_max,
            dummy_hash: OnceLock::new(),
        })
    }

    /// Hashes `password` on this thread (for the CLI; servers use `hash`).
    pub fn hash_blocking(&self, password: &str) -> Result<String> {
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt).map_err(|error| {
            Error::Internal(format!("the system random source failed: {error}"))
        })?;
        super::argon::hash(&self.params, password.as_bytes(), &salt)
            .map_err(|error| Error::Internal(format!("password hashing failed: {error}")))
    }

    /// True if `password` matches `hash` (a PHC string); on this thread. `None` verifies
    /// against a dummy hash and is always false.
    pub fn verify_blocking(&self, password: &str, hash: Option<&str>) -> bool {
        match hash {
            Some(hash) => super::argon::verify(password.as_bytes(), hash),
            None => {
                let dummy = self
                    .dummy_hash
                    .get_or_init(|| self.hash_blocking("dummy password").unwrap_or_default());
                let _same_work = super::argon::verify(password.as_bytes(), dummy);
                false
            }
        }
    }

    /// Runs `work` on a hashing thread (waiting for one to be free); 429 if too many wait.
    async fn with_slot<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Passwords) -> T + Send + 'static,
    ) -> Result<T> {
        let outstanding = self.outstanding.fetch_add(1, Ordering::AcqRel);
        let guard = Outstanding(Arc::clone(&self.outstanding));
        if outstanding.saturating_sub(self.threads) >= self.waiters_max {
            return Err(Error::TooManyRequests(
                "Too many password checks are waiting, try again later.".into(),
            ));
        }
        let (answer, answered) = tokio::sync::oneshot::channel();
        let this = Arc::clone(self);
        let job: Job = Box::new(move || {
            let _done = guard; // counted until the work ends, even if the waiter went away
            let _ = answer.send(work(&this));
        });
        self.jobs
            .send(job)
            .map_err(|_| Error::Internal("the password hashing threads are gone".into()))?;
        answered.await.map_err(|_| Error::Internal("a password hashing job failed".into()))
    }

    /// Hashes `password` (argon2id, random salt) under the concurrency cap.
    pub async fn hash(self: &Arc<Self>, password: String) -> Result<String> {
        self.with_slot(move |this| this.hash_blocking(&password)).await?
    }

    /// True if `password` matches `hash`, under the concurrency cap (see `verify_blocking`).
    pub async fn verify(self: &Arc<Self>, password: String, hash: Option<String>) -> Result<bool> {
        self.with_slot(move |this| this.verify_blocking(&password, hash.as_deref())).await
    }
}

/// Counts a job as outstanding until dropped.
struct Outstanding(Arc<AtomicUsize>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn light_config() -> ServerConfig {
        ServerConfig {
            password_hash_memory_kib: 64,
            password_hash_passes: 1,
            ..ServerConfig::new("/unused")
        }
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let passwords = Passwords::new(&light_config()).unwrap();
        let hash = passwords.hash_blocking("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert_ne!(hash, passwords.hash_blocking("correct horse").unwrap(), "salted");
        assert!(passwords.verify_blocking("correct horse", Some(&hash)));
        assert!(!passwords.verify_blocking("wrong horse", Some(&hash)));
        assert!(!passwords.verify_blocking("dummy password", None), "the dummy never matches");
        assert!(!passwords.verify_blocking("x", Some("not a hash")));
    }

    #[test]
    fn waiters_over_the_cap_get_429() {
        let config = ServerConfig {
            password_hashes_concurrent_max: 1,
            password_hash_waiters_max: 1,
            ..light_config()
        };
        let passwords = Arc::new(Passwords::new(&config).unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            // The only hashing thread is held busy until `release` is sent.
            let (release, held) = mpsc::channel::<()>();
            let busy = tokio::spawn({
                let passwords = Arc::clone(&passwords);
                async move { passwords.with_slot(move |_| held.recv().is_ok()).await }
            });
            while passwords.outstanding.load(Ordering::Acquire) < 1 {
                tokio::task::yield_now().await;
            }
            let first = tokio::spawn({
                let passwords = Arc::clone(&passwords);
                async move { passwords.hash("a".into()).await }
            });
            while passwords.outstanding.load(Ordering::Acquire) < 2 {
                tokio::task::yield_now().await;
            }
            let second = passwords.hash("b".into()).await;
            assert!(matches!(second, Err(Error::TooManyRequests(_))), "one waits at the cap");
            release.send(()).unwrap();
            assert!(busy.await.unwrap().unwrap());
            assert!(first.await.unwrap().unwrap().starts_with("$argon2id$"));
            // A job stops counting just after it answers (its guard drops last).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while passwords.outstanding.load(Ordering::Acquire) != 0 {
                assert!(std::time::Instant::now() < deadline, "a job stayed outstanding");
                std::thread::yield_now();
            }
        });
    }
}
