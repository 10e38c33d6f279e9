//! The server process' own figures for `/metrics`: resident memory and CPU time, read from
//! Linux's `/proc/self` (`None` elsewhere, or if the files cannot be read).
//!
//! Thread safety: pure functions over files the kernel keeps.

/// Resident memory of this process, in bytes (`VmRSS` of `/proc/self/status`).
pub fn resident_memory_bytes() -> Option<u64> {
    parse_vm_rss_bytes(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// User plus system CPU time this process has used, in seconds (`/proc/self/stat`).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_seconds(&stat)
}

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`, 100 on Linux).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// The `VmRSS:   1234 kB` line of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// utime and stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in seconds. The
/// command name (field 2) may hold spaces and parentheses, so fields are counted after its
/// last `)`.
fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / CLOCK_TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_user_plus_system_time() {
        let line = "1234 (nano db (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0";
        assert_eq!(parse_cpu_seconds(line), Some(3.0));
        assert_eq!(parse_cpu_seconds("garbage"), None);
        assert_eq!(parse_vm_rss_bytes("Name:\tx\nVmRSS:\t  2048 kB\nThreads: 3\n"), Some(2 << 20));
        assert_eq!(parse_vm_rss_bytes("Name:\tx\n"), None);
        if cfg!(target_os = "linux") {
            assert!(resident_memory_bytes().unwrap() > 0);
            assert!(cpu_seconds().unwrap() >= 0.0);
        }
    }
}
