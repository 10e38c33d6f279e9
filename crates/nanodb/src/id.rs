//! Document ids: 15 random characters of `a-z0-9` by default (PocketBase's form).
//!
//! The randomness comes from the operating system (`getrandom`), drawn 256 bytes at a time
//! into a per-thread pool; bytes are mapped to the 36 characters by rejection (bytes 252 and
//! up are skipped), so every character is equally likely. 36^15 ids make a collision between
//! generated ids negligible; inserts still check, so a collision is an error, never an
//! overwrite.
//!
//! Thread safety: each thread has its own pool.
//!
//! Invariant: a generated id passes `names::check_document_id`.

use crate::{Error, Result};
use std::cell::RefCell;

/// Length of a generated id unless the collection says otherwise.
pub const GENERATED_ID_LEN_DEFAULT: usize = 15;
/// Shortest generated id a collection may ask for.
pub const GENERATED_ID_LEN_MIN: usize = 8;

const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const POOL_BYTES: usize = 256;

thread_local! {
    static POOL: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
}

fn random_byte() -> Result<u8> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let (bytes, used) = &mut *pool;
        if *used >= bytes.len() {
            bytes.resize(POOL_BYTES, 0);
            getrandom::fill(bytes).map_err(|error| {
                Error::invalid(format!("the system random source failed: {error}"))
            })?;
            *used = 0;
        }
        let byte = bytes[*used];
        *used += 1;
        Ok(byte)
    })
}

/// A new random id of `len` characters of `a-z0-9`.
pub fn generate(len: usize) -> Result<String> {
    let mut id = String::with_capacity(len);
    while id.len() < len {
        let byte = random_byte()?;
        if usize::from(byte) < 252 {
            id.push(char::from(ALPHABET[usize::from(byte) % 36]));
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_length_and_alphabet_and_do_not_repeat() {
        let mut seen = std::collections::HashSet::new();
        let mut counts = [0usize; 36];
        for _ in 0..10_000 {
            let id = generate(GENERATED_ID_LEN_DEFAULT).unwrap();
            assert_eq!(id.len(), 15);
            crate::names::check_document_id(&id).unwrap();
            for byte in id.bytes() {
                counts[ALPHABET.iter().position(|&c| c == byte).unwrap()] += 1;
            }
            assert!(seen.insert(id));
        }
        // 150,000 characters: each of the 36 about 4,167 times; far outside that is a bias.
        assert!(counts.iter().all(|&n| (3_600..4_800).contains(&n)), "{counts:?}");
    }
}
