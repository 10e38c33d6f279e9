//! Process counters from /proc (Linux): bytes written to storage, peak resident memory, and
//! the size of a directory on disk.

use std::path::Path;

/// `write_bytes` from /proc/self/io: bytes this process caused to be sent to storage.
pub fn storage_bytes_written() -> u64 {
    proc_field("/proc/self/io", "write_bytes:").unwrap_or(0)
}

/// Peak resident memory (VmHWM) since the last `reset_peak_rss`, in bytes.
pub fn peak_rss_bytes() -> u64 {
    proc_field("/proc/self/status", "VmHWM:").map_or(0, |kib| kib * 1024)
}

/// Resets the peak resident memory counter (writes 5 to /proc/self/clear_refs).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Current resident memory (VmRSS) of process `pid`, in bytes; 0 once it has exited.
pub fn resident_bytes_of(pid: u32) -> u64 {
    proc_field(&format!("/proc/{pid}/status"), "VmRSS:").map_or(0, |kib| kib * 1024)
}

fn proc_field(path: &str, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|line| line.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// Bytes of all files under `dir` (allocated size is not used: it hides preallocation).
pub fn dir_size_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_size_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}
