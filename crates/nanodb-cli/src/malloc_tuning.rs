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
//! glibc also keeps the pages of freed chunks inside its heaps resident until a chunk at the
//! top of a heap is freed: the buffers of a flush or a compaction, freed between longer-lived
//! blocks, stay in the process's resident memory. `start_trimming` runs a thread that calls
//! `malloc_trim` every interval (`TRIM_INTERVAL_MS_DEFAULT`; `nanodb serve --malloc-trim-ms`),
//! which returns the whole free pages of every arena to the system (`MADV_DONTNEED`).
//! Measured with the same benchmark, one run each, the same binary with the trim off and on
//! (`NANODB_MALLOC_TRIM_MS=0` and the default): peak resident memory under creates 63 and 57
//! MiB, under gets 42 and 38 MiB, idle after the load 59 and 48 MiB; every 100 ms instead of
//! every second changed nothing more (56 MiB under creates): what stays is memory in use.
//! The cost: each trim walks every arena's free chunks under that arena's lock; lists, two
//! pairs off and on, ran 4% and 9% slower (list-indexed-filter) and 0.4% and 2% slower
//! (list-under-rule) with it, on a machine whose run-to-run noise is about that size.
//!
//! Thread safety: `apply` must run before the process starts any thread (it is the first
//! call in `main`); `mallopt` is not meant to race with allocations on other threads.
//! `malloc_trim` is thread-safe (glibc documents it MT-Safe): it takes each arena's lock in
//! turn.
//!
//! Invariants: `apply` runs once, before any thread; the trimming thread, once started, lives
//! as long as the process and never trims more often than every `TRIM_INTERVAL_MS_MIN`.

/// Heap arenas per core (glibc's default is eight per core).
pub const ARENAS_PER_CORE: usize = 1;
/// Blocks of at least this many bytes are mapped on their own and unmapped when freed.
pub const MMAP_THRESHOLD_BYTES: usize = 4 << 20;
/// Default interval between two `malloc_trim` calls of `serve`, in milliseconds (0: never).
pub const TRIM_INTERVAL_MS_DEFAULT: u64 = 1000;
/// Shortest interval accepted (a shorter one is raised to it): each trim walks every arena's
/// free chunks under its lock.
pub const TRIM_INTERVAL_MS_MIN: u64 = 10;

/// The interval `start_trimming` uses for `interval_ms` (None: no trimming).
pub fn trim_interval(interval_ms: u64) -> Option<std::time::Duration> {
    (interval_ms > 0)
        .then(|| std::time::Duration::from_millis(interval_ms.max(TRIM_INTERVAL_MS_MIN)))
}

/// Starts a thread that gives freed heap pages back to the system every `interval_ms` (see
/// the module header); none when the interval is 0, or off glibc. The thread lives as long
/// as the process. Returns the interval used.
pub fn start_trimming(interval_ms: u64) -> Option<std::time::Duration> {
    let interval = trim_interval(interval_ms)?;
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return None;
    }
    std::thread::Builder::new()
        .name("nanodb-malloc-trim".into())
        .spawn(move || loop {
            std::thread::sleep(interval);
            trim();
        })
        .ok()?;
    Some(interval)
}

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

// The two unsafe calls of this crate are `mallopt` and `malloc_trim`: C functions, and Rust
// has no safe way to set glibc's malloc options or to have it release free pages.
//
// `mallopt` only changes tunables, with plain integer arguments, and runs before any other
// thread exists (see the module header).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set(option: libc::c_int, value: libc::c_int) -> bool {
    // SAFETY: `mallopt` takes two integers and touches only malloc's own state; no other
    // thread is allocating yet.
    unsafe { libc::mallopt(option, value) == 1 }
}

// `malloc_trim` takes a plain integer and locks each arena itself.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: `malloc_trim(0)` takes no pointer and only releases whole free pages of
    // malloc's own heaps, taking each arena's lock; glibc documents it MT-Safe, so any thread
    // may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_interval_is_off_at_zero_and_never_below_the_minimum() {
        assert_eq!(trim_interval(0), None);
        let min = std::time::Duration::from_millis(TRIM_INTERVAL_MS_MIN);
        assert_eq!(trim_interval(1), Some(min));
        assert_eq!(trim_interval(TRIM_INTERVAL_MS_MIN - 1), Some(min));
        assert_eq!(trim_interval(TRIM_INTERVAL_MS_MIN), Some(min));
        assert_eq!(
            trim_interval(TRIM_INTERVAL_MS_MIN + 1),
            Some(min + std::time::Duration::from_millis(1))
        );
        assert_eq!(trim_interval(u64::MAX), Some(std::time::Duration::from_millis(u64::MAX)));
    }

    #[test]
    fn trimming_runs_beside_allocations() {
        assert_eq!(start_trimming(0), None);
        let started = start_trimming(TRIM_INTERVAL_MS_MIN);
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert_eq!(started, trim_interval(TRIM_INTERVAL_MS_MIN));
        }
        // Allocate and free across several trims: nothing may break.
        for round in 0..50 {
            let blocks: Vec<Vec<u8>> = (0..200).map(|i| vec![round as u8; 1024 + i * 37]).collect();
            assert!(blocks.iter().all(|block| block.iter().all(|&byte| byte == round as u8)));
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
