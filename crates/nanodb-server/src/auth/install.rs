//! The first-run path: while no superuser exists, the server holds one random install token
//! and prints it to the log at start; `POST /api/install {token, email, password}` with it
//! creates the first superuser, and the token is used up. There are no default credentials.
//!
//! Thread safety: the token sits behind a mutex; taking it is atomic, so two requests with
//! the same token cannot both create a superuser.
//!
//! Invariant: a token is accepted at most once, and only while it is held (it is dropped as
//! soon as any superuser exists).

use crate::error::{Error, Result};
use parking_lot::Mutex;

/// Length of a generated install token.
pub const INSTALL_TOKEN_LEN: usize = 40;
const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The one-time install token.
#[derive(Debug)]
pub struct InstallToken {
    fixed: Option<String>,
    held: Mutex<Option<String>>,
}

impl InstallToken {
    /// No token held yet; `fixed` is the one `issue` will hold (a random one if `None`).
    pub fn new(fixed: Option<String>) -> InstallToken {
        InstallToken { fixed, held: Mutex::new(None) }
    }

    /// Holds a token (the configured one, or a new random one) and returns it.
    pub fn issue(&self) -> Result<String> {
        let token = match &self.fixed {
            Some(token) => token.clone(),
            None => random_text(INSTALL_TOKEN_LEN)?,
        };
        *self.held.lock() = Some(token.clone());
        Ok(token)
    }

    /// True if `given` is the held token (compared in constant time); nothing is taken.
    pub fn matches(&self, given: &str) -> bool {
        let held = self.held.lock();
        held.as_deref().is_some_and(|token| constant_time_eq(token.as_bytes(), given.as_bytes()))
    }

    /// Takes the held token if `given` is it (compared in constant time); true if taken.
    pub fn take(&self, given: &str) -> bool {
        let mut held = self.held.lock();
        let matches = held
            .as_deref()
            .is_some_and(|token| constant_time_eq(token.as_bytes(), given.as_bytes()));
        if matches {
            *held = None;
        }
        matches
    }

    /// Holds `token` again (after a take whose superuser could not be created).
    pub fn restore(&self, token: String) {
        *self.held.lock() = Some(token);
    }

    /// Drops the held token (a superuser exists).
    pub fn clear(&self) {
        *self.held.lock() = None;
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// `len` random characters of `A-Za-z0-9` from the OS random source.
pub fn random_text(len: usize) -> Result<String> {
    let mut out = String::with_capacity(len);
    let mut buffer = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buffer).map_err(|error| {
            Error::Internal(format!("the system random source failed: {error}"))
        })?;
        for byte in buffer {
            // 248 = 4 * 62: bytes above are skipped so every character is equally likely.
            if usize::from(byte) < 4 * ALPHANUMERIC.len() && out.len() < len {
                out.push(char::from(ALPHANUMERIC[usize::from(byte) % ALPHANUMERIC.len()]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_taken_once() {
        let install = InstallToken::new(None);
        assert!(!install.take(""), "nothing held yet");
        let token = install.issue().unwrap();
        assert_eq!(token.len(), INSTALL_TOKEN_LEN);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(!install.take("wrong"));
        assert!(install.matches(&token) && !install.matches("wrong"));
        assert!(!install.take(&token[..INSTALL_TOKEN_LEN - 1]));
        assert!(install.take(&token));
        assert!(!install.take(&token), "used up");
        install.restore(token.clone());
        install.clear();
        assert!(!install.take(&token));
        let fixed = InstallToken::new(Some("fixed".into()));
        assert_eq!(fixed.issue().unwrap(), "fixed");
        assert_ne!(random_text(20).unwrap(), random_text(20).unwrap());
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
    }
}
