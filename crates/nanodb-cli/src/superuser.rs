//! `nanodb superuser create EMAIL [PASSWORD]`: creates a superuser, or sets the password of
//! the existing one with that email (an upsert). It opens the data directory itself, so no
//! server may be running on it.
//!
//! The password comes from the argument (visible to other users in `ps` while the command
//! runs: kept for scripts and the documented form), else `NANODB_SUPERUSER_PASSWORD`, else
//! the first line of standard input (also when the argument is `-`).
//!
//! Thread safety: runs on the main thread.

use nanodb_server::{create_superuser, ServerConfig, Upserted};
use std::io::BufRead;
use std::path::PathBuf;

/// Longest line read from standard input as a password, in bytes (longer passwords are
/// refused by the server's own limit anyway).
pub const PASSWORD_LINE_BYTES_MAX: u64 = 4 * 1024;

/// The password given as `argument` (from argv or the environment), or, if it is missing
/// or `-`, the first line of `input` without its line end.
pub fn password(argument: Option<String>, input: impl BufRead) -> Result<String, String> {
    if let Some(password) = argument.filter(|password| password != "-") {
        return Ok(password);
    }
    let mut line = String::new();
    input
        .take(PASSWORD_LINE_BYTES_MAX)
        .read_line(&mut line)
        .map_err(|error| format!("cannot read the password from standard input: {error}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Creates or updates the superuser; an error is a message for the user.
pub fn create(dir: PathBuf, email: &str, password: &str) -> Result<(), String> {
    match create_superuser(ServerConfig::new(&dir), email, password) {
        Ok(Upserted::Created(id)) => {
            println!("created superuser {email} (id {id}) in {}", dir.display());
            Ok(())
        }
        Ok(Upserted::Updated(id)) => {
            println!("updated the password of superuser {email} (id {id}) in {}", dir.display());
            Ok(())
        }
        Err(error) => Err(format!("cannot create the superuser: {error}")),
    }
}
