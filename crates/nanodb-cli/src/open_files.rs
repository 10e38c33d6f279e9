//! The process's open-file limit for `nanodb serve`: every connection and every open database
//! file takes a descriptor, so past the limit accepts fail and, worse, the storage engine
//! cannot open the files of a flush or a compaction. At start the soft limit is raised to
//! the hard one (what Go's runtime does for its servers), and the connections served at once
//! are capped so that `OPEN_FILES_RESERVE` descriptors stay for the databases.
//!
//! Thread safety: `raise` runs once at start, before the server; `getrlimit` and `setrlimit`
//! are process-wide and thread-safe.
//!
//! Invariant: the limit is only ever raised, never lowered.

/// Descriptors kept for the databases beside the connections: the storage engine's cache of
/// open sst files (1,000 by default) and the WAL, manifest, directories, listener and logs.
/// Under a small limit, at most half of it (so a limit of 1,024 still serves 512
/// connections; a database of more than a few hundred files then needs a larger limit).
pub const OPEN_FILES_RESERVE: u64 = 1_100;

/// The connections to serve at once for `connections_max` asked and a soft open-file limit
/// of `soft` (`None`: unknown): at most the limit less the reserve (`OPEN_FILES_RESERVE`, or
/// half the limit if that is less), and at least 1.
pub fn connections_within(connections_max: usize, soft: Option<u64>) -> usize {
    let Some(soft) = soft else { return connections_max.max(1) };
    let reserve = OPEN_FILES_RESERVE.min(soft / 2);
    let room = usize::try_from(soft - reserve).unwrap_or(usize::MAX);
    connections_max.min(room).max(1)
}

/// Raises the soft open-file limit to the hard one; the soft limit after (None off Unix or
/// when it cannot be read). A refused raise keeps the old limit.
#[cfg(unix)]
pub fn raise() -> Option<u64> {
    let mut limit = get()?;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        if set(&raised) {
            limit = raised;
        }
    }
    Some(limit.rlim_cur)
}

#[cfg(not(unix))]
pub fn raise() -> Option<u64> {
    None
}

// The unsafe calls of this module are `getrlimit` and `setrlimit`: C functions, and the
// standard library has no safe way to read or raise the open-file limit.
#[cfg(unix)]
#[allow(unsafe_code)]
fn get() -> Option<libc::rlimit> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `getrlimit` writes one `rlimit` through the pointer, which points at a live,
    // writable local of that type.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (read == 0).then_some(limit)
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn set(limit: &libc::rlimit) -> bool {
    // SAFETY: `setrlimit` only reads the `rlimit` the reference points at.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, limit) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_the_reserve_to_the_databases() {
        assert_eq!(connections_within(16_384, None), 16_384);
        assert_eq!(connections_within(0, None), 1);
        // A small limit: half of it for the connections.
        assert_eq!(connections_within(16_384, Some(1_024)), 512);
        assert_eq!(connections_within(16_384, Some(OPEN_FILES_RESERVE * 2 - 2)), 1_099);
        assert_eq!(connections_within(16_384, Some(0)), 1);
        assert_eq!(connections_within(16_384, Some(1)), 1);
        // A larger one: all but the reserve, up to what was asked.
        assert_eq!(connections_within(16_384, Some(OPEN_FILES_RESERVE * 2)), 1_100);
        assert_eq!(connections_within(16_384, Some(OPEN_FILES_RESERVE + 5_000)), 5_000);
        assert_eq!(connections_within(16_384, Some(OPEN_FILES_RESERVE + 16_384)), 16_384);
        assert_eq!(connections_within(16_384, Some(OPEN_FILES_RESERVE + 16_385)), 16_384);
        assert_eq!(connections_within(16_384, Some(u64::MAX)), 16_384);
    }

    #[cfg(unix)]
    #[test]
    fn raising_never_lowers_the_limit() {
        let before = get().unwrap();
        let soft = raise().unwrap();
        assert!(soft >= before.rlim_cur && soft <= before.rlim_max, "{soft} from {before:?}");
        assert_eq!(raise(), Some(soft), "a second raise changes nothing");
    }
}
