//! glibc malloc settings for the `nanodb` process, applied once at the start of `main`.
//!
//! Why: `nanodb serve` runs document work on many threads (tokio's blocking pool), and glibc
//! gives threads their own heap arenas, up to eight per core, each keeping what its threads
//! freed. Its mmap threshold also grows to the size of the largest block freed (up to 32 MiB),
//! so after the first argon2 hash (19 MiB) such buffers come from the heap and stay resident.
//! Measured with `nanodb-bench serve` at 1,000,000 records and 64 connections with a 32 MiB
//! budget (one run each): peak resident memory 86 to 112 MiB with glibc's defaults (and 8
//! document tasks), 66 to 99 MiB with one arena per core, 61 to 81 MiB with that and the fixed
//! threshold, at request rates within the machine's noise of each other; one arena in all cut
//! list requests by a third (docs/benchmarks.md, issue 7). So: one arena per core
//! (`ARENAS_PER_CORE`), and a fixed mmap threshold (`MMAP_THRESHOLD_BYTES`) so that buffers of
//! a few MiB and more go back to the system when freed.
//!
//! `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` in the environment win over these settings.
//! Other C libraries and systems: nothing is changed.
//!
//! Thread safety: `apply` must run before the process starts any thread (it is the first
//! call in `main`); `mallopt` is not meant to race with allocations on other threads.

/// Heap arenas per core (glibc's default is eight per core).
pub const ARENAS_PER_CORE: usize = 1;
/// Blocks of at least this many bytes are mapped on their own and unmapped when freed.
pub const MMAP_THRESHOLD_BYTES: usize = 4 << 20;

/// Applies the settings; returns the ones applied, for the log.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn apply() -> Vec<String> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let arenas = cores.saturating_mul(ARENAS_PER_CORE);
    let mut applied = Vec::new();
    for (variable, option, value, name) in [
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, arenas, "arenas"),
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES, "mmap threshold"),
    ] {
        if std::env::var_os(variable).is_some() {
            continue;
        }
        let Ok(value) = i32::try_from(value) else { continue };
        if set(option, value) {
            applied.push(format!("{name} {value}"));
        }
    }
    applied
}

/// Elsewhere: nothing to tune.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn apply() -> Vec<String> {
    Vec::new()
}

// The one unsafe call of this crate: `mallopt` is a C function, and Rust has no safe way to
// set glibc's malloc options. It only changes tunables, with plain integer arguments, and runs
// before any other thread exists (see the module header).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set(option: libc::c_int, value: libc::c_int) -> bool {
    // SAFETY: `mallopt` takes two integers and touches only malloc's own state; no other
    // thread is allocating yet.
    unsafe { libc::mallopt(option, value) == 1 }
}
