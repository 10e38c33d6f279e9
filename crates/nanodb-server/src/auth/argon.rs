//! argon2id password hashes as PHC strings (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`,
//! byte for byte what the `argon2` crate's own hasher writes, so stored hashes stay valid),
//! computed over memory each thread keeps and reuses.
//!
//! A hash needs `m` KiB of working memory. Allocated anew for every hash, that memory is
//! handed back to the allocator, which (glibc's malloc) may keep it in the calling thread's
//! arena and not reuse it for the next hash: a server hashing on a few threads still grew by
//! several times a hash's memory per thread. Here each thread keeps one buffer, grown to the
//! largest hash it computed, so a hashing thread holds exactly one hash's memory, and gives
//! it back after a while without hashes (`release_blocks`, called by `auth::password`).
//!
//! Thread safety: the buffer is thread-local; everything else is pure.
//!
//! Invariant: a stored hash asking for more than `HASH_MEMORY_KIB_MAX` KiB is never
//! computed (it does not verify), so no stored value can make a thread allocate more.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version, ARGON2ID_IDENT};
use std::cell::RefCell;

/// Most working memory a hash may ask for, in KiB (1 GiB).
pub const HASH_MEMORY_KIB_MAX: u32 = 1024 * 1024;
/// Bytes of a hash's output (argon2's default).
const OUTPUT_BYTES: usize = 32;

thread_local! {
    /// This thread's working memory, grown to the largest hash it computed.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` over `count` blocks of this thread's working memory.
fn with_blocks<T>(count: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
    BLOCKS.with(|cell| {
        let mut blocks = cell.borrow_mut();
        if blocks.len() < count {
            blocks.resize(count, Block::default());
        }
        work(&mut blocks[..count])
    })
}

/// Gives this thread's working memory back (a hashing thread that has been idle a while).
pub fn release_blocks() {
    BLOCKS.with(|cell| *cell.borrow_mut() = Vec::new());
}

/// The blocks this thread keeps (tests).
#[cfg(test)]
fn kept_blocks() -> usize {
    BLOCKS.with(|cell| cell.borrow().len())
}

/// The argon2id hash of `password` with `salt` (at least 8 bytes) and `params`, as a PHC
/// string.
pub fn hash(params: &Params, password: &[u8], salt: &[u8]) -> Result<String, String> {
    if params.m_cost() > HASH_MEMORY_KIB_MAX {
        return Err(format!("a hash of over {HASH_MEMORY_KIB_MAX} KiB"));
    }
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; OUTPUT_BYTES];
    with_blocks(params.block_count(), |blocks| {
        argon.hash_password_into_with_memory(password, salt, &mut out, blocks)
    })
    .map_err(|error| error.to_string())?;
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|error| error.to_string())?,
        salt: Some(Salt::new(salt).map_err(|error| error.to_string())?),
        hash: Some(Output::new(&out).map_err(|error| error.to_string())?),
    };
    Ok(phc.to_string())
}

/// True if `password` matches the PHC string `stored` (any argon2 variant and version, its
/// own parameters); false for anything malformed or over `HASH_MEMORY_KIB_MAX`. The
/// comparison takes the same time wherever the outputs differ.
pub fn verify(password: &[u8], stored: &str) -> bool {
    let Ok(phc) = PasswordHash::new(stored) else { return false };
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else { return false };
    let Ok(algorithm) = Algorithm::new(phc.algorithm) else { return false };
    let version = match phc.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&phc) else { return false };
    if params.m_cost() > HASH_MEMORY_KIB_MAX {
        return false;
    }
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    let computed = with_blocks(params.block_count(), |blocks| {
        argon.hash_password_into_with_memory(password, salt, &mut out, blocks)
    });
    computed.is_ok() && super::install::constant_time_eq(&out, expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHasher, PasswordVerifier};

    fn params(memory_kib: u32) -> Params {
        Params::new(memory_kib, 1, 1, None).unwrap()
    }

    #[test]
    fn hashes_verify_here_and_with_argon2s_own_code() {
        let ours = hash(&params(64), b"correct horse", b"0123456789abcdef").unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{ours}");
        assert!(verify(b"correct horse", &ours));
        assert!(!verify(b"correct horsf", &ours));
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params(64));
        assert!(
            reference.verify_password(b"correct horse", ours.as_str()).is_ok(),
            "argon2 reads ours"
        );
        let theirs =
            reference.hash_password_with_salt(b"correct horse", b"0123456789abcdef").unwrap();
        assert_eq!(theirs.to_string(), ours, "the same string for the same inputs");
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x10, params(32));
        let other = argon2i.hash_password_with_salt(b"pw", b"saltsaltsalt").unwrap().to_string();
        assert!(verify(b"pw", &other), "other variants and versions verify by their own terms");
        for bad in ["", "$argon2id$", "not a hash", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ"] {
            assert!(!verify(b"x", bad), "{bad}");
        }
    }

    #[test]
    fn a_thread_keeps_one_buffer_of_its_largest_hash() {
        std::thread::spawn(|| {
            assert_eq!(kept_blocks(), 0);
            hash(&params(256), b"a", b"0123456789abcdef").unwrap();
            assert_eq!(kept_blocks(), 256);
            hash(&params(64), b"a", b"0123456789abcdef").unwrap();
            assert_eq!(kept_blocks(), 256, "a smaller hash reuses it");
            hash(&params(512), b"a", b"0123456789abcdef").unwrap();
            assert_eq!(kept_blocks(), 512, "a larger one grows it");
            release_blocks();
            assert_eq!(kept_blocks(), 0, "released when idle");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn hashes_over_the_memory_limit_are_refused_at_the_boundary() {
        let over = Params::new(HASH_MEMORY_KIB_MAX + 1, 1, 1, None).unwrap();
        assert!(hash(&over, b"a", b"0123456789abcdef").is_err());
        let at = Params::new(HASH_MEMORY_KIB_MAX, 1, 1, None).unwrap();
        let stored = format!(
            "$argon2id$v=19$m={},t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            HASH_MEMORY_KIB_MAX + 1
        );
        assert!(!verify(b"a", &stored), "never computed");
        assert_eq!(at.m_cost(), HASH_MEMORY_KIB_MAX, "the limit itself is a valid cost");
    }
}
