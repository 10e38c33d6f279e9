//! Password hashing with argon2id, under a cap on how many hashes run at once.
//!
//! One argon2id hash takes `password_hash_memory_kib` of memory and a core for tens of
//! milliseconds, so unbounded logins could exhaust the machine. `Passwords` lets at most
//! `password_hashes_concurrent_max` hashes run (a semaphore), each on a blocking thread, and
//! at most `password_hash_waiters_max` requests wait for a slot; past that a request gets
//! 429 at once instead of queueing without bound.
//!
//! A login for an unknown identity still verifies against a fixed dummy hash
//! (`verify(password, None)`), so its timing does not tell whether the account exists.
//!
//! Thread safety: `Passwords` is `Send + Sync`, shared by all requests.
//!
//! Invariant: passwords longer than `PASSWORD_BYTES_MAX` never reach argon2 (they are
//! refused by validation first).

use crate::config::ServerConfig;
use crate::error::{Error, Result};
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// Longest password accepted, in bytes.
pub const PASSWORD_BYTES_MAX: usize = 256;
/// Bytes of random salt per hash.
const SALT_BYTES: usize = 16;

/// The argon2id hasher with its concurrency cap.
pub struct Passwords {
    params: Params,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
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
        Ok(Passwords {
            params,
            permits: Arc::new(Semaphore::new(config.password_hashes_concurrent_max)),
            waiting: AtomicUsize::new(0),
            waiters_max: config.password_hash_waiters_max,
            dummy_hash: OnceLock::new(),
        })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes `password` on this thread (for the CLI; servers use `hash`).
    pub fn hash_blocking(&self, password: &str) -> Result<String> {
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt).map_err(|error| {
            Error::Internal(format!("the system random source failed: {error}"))
        })?;
        let hash = self
            .argon2()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map_err(|error| Error::Internal(format!("password hashing failed: {error}")))?;
        Ok(hash.to_string())
    }

    /// True if `password` matches `hash` (a PHC string); on this thread. `None` verifies
    /// against a dummy hash and is always false.
    pub fn verify_blocking(&self, password: &str, hash: Option<&str>) -> bool {
        match hash {
            Some(hash) => self.argon2().verify_password(password.as_bytes(), hash).is_ok(),
            None => {
                let dummy = self
                    .dummy_hash
                    .get_or_init(|| self.hash_blocking("dummy password").unwrap_or_default());
                let _same_work = self.argon2().verify_password(password.as_bytes(), dummy.as_str());
                false
            }
        }
    }

    /// Runs `work` on a blocking thread once a hashing slot is free; 429 if too many wait.
    async fn with_slot<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Passwords) -> T + Send + 'static,
    ) -> Result<T> {
        let waiting = self.waiting.fetch_add(1, Ordering::AcqRel);
        let waiter = WaiterGuard(&self.waiting);
        if waiting >= self.waiters_max {
            return Err(Error::TooManyRequests(
                "Too many password checks are waiting, try again later.".into(),
            ));
        }
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("the password hashing slots are closed".into()))?;
        drop(waiter);
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&this)
        })
        .await
        .map_err(|error| Error::Internal(format!("a password hashing task failed: {error}")))
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

/// Counts a request as waiting until dropped.
struct WaiterGuard<'a>(&'a AtomicUsize);

impl Drop for WaiterGuard<'_> {
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
            let held = Arc::clone(&passwords.permits).acquire_owned().await.unwrap();
            let first = tokio::spawn({
                let passwords = Arc::clone(&passwords);
                async move { passwords.hash("a".into()).await }
            });
            tokio::task::yield_now().await;
            assert_eq!(passwords.waiting.load(Ordering::Acquire), 1, "one waits at the cap");
            let second = passwords.hash("b".into()).await;
            assert!(matches!(second, Err(Error::TooManyRequests(_))), "{second:?}");
            drop(held);
            assert!(first.await.unwrap().unwrap().starts_with("$argon2id$"));
            assert_eq!(passwords.waiting.load(Ordering::Acquire), 0);
        });
    }
}
