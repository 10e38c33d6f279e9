//! The `nanodb serve` process under test: started on a free port with its log at a chosen
//! level (`warn` leaves out the per-request lines), ready once its health check answers,
//! stopped with SIGTERM (a graceful stop, so every write is durable), and measured from
//! /proc: resident memory and CPU time.
//!
//! Thread safety: owned by the orchestrating thread; a reader thread forwards its log.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Longest wait for the server to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Clock ticks per second of /proc/<pid>/stat times (USER_HZ).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// A running server.
pub struct Served {
    child: Child,
    pub address: SocketAddr,
}

impl Served {
    /// Starts `bin serve` on a free port of 127.0.0.1 with data in `dir`, `args`, and its
    /// log at `log_level`; returns once its health check answers.
    pub fn start(bin: &Path, dir: &Path, args: &[&str], log_level: &str) -> Result<Served, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|probe| probe.local_addr())
            .map_err(|error| format!("no free port: {error}"))?
            .port();
        let address: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut child = Command::new(bin)
            .args(["serve", "--http", &address.to_string(), "--dir"])
            .arg(dir)
            .args(args)
            .env("NANODB_LOG", log_level)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot run {}: {error}", bin.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        // The log is read (so the server never blocks on a full pipe); problems are shown.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("ERROR") || line.contains("WARN") {
                    eprintln!("nanodb serve: {line}");
                }
            }
        });
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        while std::time::Instant::now() < deadline {
            if let Ok(mut connection) = super::http::Connection::open(address) {
                if connection.send("GET", "/api/health", None, None).is_ok_and(|a| a.status == 200)
                {
                    return Ok(Served { child, address });
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("nanodb serve exited at start with {status}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("nanodb serve did not answer its health check".into())
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) -> Result<(), String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(|error| format!("cannot run kill: {error}"))?;
        if !status.success() {
            return Err("kill -TERM failed".into());
        }
        let exit = self.child.wait().map_err(|error| error.to_string())?;
        if exit.success() {
            Ok(())
        } else {
            Err(format!("nanodb serve exited with {exit}"))
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of process `pid` (VmRSS), in bytes.
pub fn resident_bytes(pid: u32) -> u64 {
    crate::metrics::resident_bytes_of(pid)
}

/// User plus system CPU time of process `pid`, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| parse_cpu_seconds(&stat))
        .unwrap_or(0.0)
}

/// utime + stime (fields 14 and 15) of a /proc/<pid>/stat line, counted after the command
/// name's last `)`.
fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / CLOCK_TICKS_PER_SECOND)
}

/// The `nanodb` binary next to this one (both built by `cargo build --release`).
pub fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("nanodb")))
        .unwrap_or_else(|| PathBuf::from("nanodb"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_user_plus_system() {
        let stat = "77 (nanodb (serve)) S 1 77 77 0 -1 0 0 0 0 0 1234 66 0 0 20 0 4 0 100";
        assert_eq!(parse_cpu_seconds(stat), Some(13.0));
        assert!(cpu_seconds(std::process::id()) >= 0.0);
        assert!(resident_bytes(std::process::id()) > 0);
    }
}
