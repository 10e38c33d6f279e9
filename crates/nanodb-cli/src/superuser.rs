//! `nanodb superuser create EMAIL PASSWORD`: creates a superuser, or sets the password of
//! the existing one with that email (an upsert). It opens the data directory itself, so no
//! server may be running on it.
//!
//! Thread safety: runs on the main thread.

use nanodb_server::{create_superuser, ServerConfig, Upserted};
use std::path::PathBuf;

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
