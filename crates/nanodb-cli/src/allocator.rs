//! Tuning of glibc's malloc for a long-running server, applied once at start, before any
//! other thread exists. Without it, a loaded server kept tens of MiB it no longer used
//! (docs/benchmarks.md, issue 7): glibc hands up to 8 arenas per core to the threads that
//! touch them (tokio's pool runs up to hundreds) and keeps what each frees, and after the first
//! free of a large block it raises its mmap threshold to that block's size, so later blocks as
//! large (a big response, a sort buffer, an argon2 buffer) come from an arena and stay there.
//!
//! - at most one arena per core (at least `MALLOC_ARENAS_MIN`);
//! - blocks of `MALLOC_MMAP_THRESHOLD_BYTES` or more always mapped on their own, so freeing
//!   one returns it to the OS (a fixed threshold also stops glibc's dynamic raising).
//!
//! On other C libraries and systems this does nothing.
//!
//! Thread safety: `tune` must run before other threads start (glibc's `mallopt` is not meant
//! to race with allocation).

/// Fewest malloc arenas `tune` allows.
pub const MALLOC_ARENAS_MIN: usize = 2;
/// Blocks at least this large are mapped on their own and returned to the OS when freed.
pub const MALLOC_MMAP_THRESHOLD_BYTES: usize = 4 << 20;

/// Applies the settings above; the arenas follow the cores the process may use.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune() {
    let cores = std::thread::available_parallelism().map_or(MALLOC_ARENAS_MIN, |n| n.get());
    let arenas = cores.max(MALLOC_ARENAS_MIN).min(i32::MAX as usize) as i32;
    // mallopt is a C function with no memory-safety preconditions on its arguments; the only
    // requirement, no concurrent allocation, holds because `main` calls this first.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD_BYTES as i32);
    }
}

/// Applies the settings above (nothing to do off glibc).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}
