//! One timed workload: `connections` threads, each with its own keep-alive connection,
//! sending requests back to back for a warm-up and then a measured window; every answer must
//! have the expected status. Measured: requests per second, p50 and p99 latency (client
//! side, per request), the server's CPU time over the window (so requests per CPU-second of
//! the server alone), and its peak resident memory (sampled every `RSS_SAMPLE_INTERVAL`).
//!
//! Thread safety: each thread owns its connection, random state and histogram; they are
//! merged after the window.

use super::http::Connection;
use super::seed::{item_id, n_values};
use super::server::{cpu_seconds, resident_bytes};
use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the server's resident memory is sampled during a window.
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// What a workload's requests do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `GET /api/collections/items/records/{id}` of a random item, as a guest.
    Get,
    /// `GET /api/collections/items/records?filter=n=X&perPage=20` (indexed), as a guest.
    ListFilter,
    /// `POST /api/collections/items/records`, as a guest.
    Create,
    /// `GET /api/collections/notes/records?perPage=20` as a user, under the list rule
    /// `owner = @request.auth.id` (indexed), with the total count (the SDK's `getList`).
    AuthList,
    /// The same with `skipTotal=1` (the SDK's `getFullList` and `getFirstListItem`).
    AuthListNoTotal,
}

impl Kind {
    /// Every workload, in the order they run (creates last: they add records).
    pub const ALL: [Kind; 5] =
        [Kind::Get, Kind::ListFilter, Kind::AuthList, Kind::AuthListNoTotal, Kind::Create];

    /// The workload's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Get => "get-by-id",
            Kind::ListFilter => "list-indexed-filter",
            Kind::Create => "create",
            Kind::AuthList => "list-under-rule",
            Kind::AuthListNoTotal => "list-under-rule-skip-total",
        }
    }
}

/// What a workload needs to know of the data.
#[derive(Debug, Clone)]
pub struct Target {
    pub address: SocketAddr,
    pub server_pid: u32,
    pub records: u64,
    /// One user token per connection (reused round robin).
    pub tokens: Vec<String>,
}

/// A workload's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figures {
    pub workload: String,
    pub connections: usize,
    pub seconds: f64,
    pub requests: u64,
    pub requests_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub server_cpu_seconds: f64,
    pub requests_per_cpu_second: f64,
    pub server_rss_peak_bytes: u64,
}

/// A small fast random source (xorshift64*), one per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Runs `kind` on `target` with `connections` threads: `warmup`, then `window` measured.
pub fn run(
    kind: Kind,
    target: &Target,
    connections: usize,
    warmup: Duration,
    window: Duration,
) -> Result<Figures, String> {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..connections)
        .map(|index| {
            let (measuring, stop, created) =
                (Arc::clone(&measuring), Arc::clone(&stop), Arc::clone(&created));
            let target = target.clone();
            std::thread::spawn(move || worker(kind, &target, index, &measuring, &stop, &created))
        })
        .collect();
    std::thread::sleep(warmup);
    let cpu_before = cpu_seconds(target.server_pid);
    let started = Instant::now();
    measuring.store(true, Ordering::SeqCst);
    let mut rss_peak = 0;
    while started.elapsed() < window {
        rss_peak = rss_peak.max(resident_bytes(target.server_pid));
        std::thread::sleep(RSS_SAMPLE_INTERVAL.min(window.saturating_sub(started.elapsed())));
    }
    measuring.store(false, Ordering::SeqCst);
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(target.server_pid) - cpu_before;
    stop.store(true, Ordering::SeqCst);
    let mut latency = Histogram::<u64>::new(3).map_err(|error| error.to_string())?;
    for thread in threads {
        let histogram = thread.join().map_err(|_| "a load thread panicked".to_string())??;
        latency.add(&histogram).map_err(|error| error.to_string())?;
    }
    let requests = latency.len();
    Ok(Figures {
        workload: kind.name().to_string(),
        connections,
        seconds,
        requests,
        requests_per_sec: requests as f64 / seconds,
        p50_us: latency.value_at_quantile(0.50) as f64,
        p99_us: latency.value_at_quantile(0.99) as f64,
        p999_us: latency.value_at_quantile(0.999) as f64,
        server_cpu_seconds: cpu,
        requests_per_cpu_second: if cpu > 0.0 { requests as f64 / cpu } else { 0.0 },
        server_rss_peak_bytes: rss_peak,
    })
}

/// One connection's loop; its latencies (µs) during the measured window.
fn worker(
    kind: Kind,
    target: &Target,
    index: usize,
    measuring: &AtomicBool,
    stop: &AtomicBool,
    created: &AtomicU64,
) -> Result<Histogram<u64>, String> {
    let mut latency = Histogram::<u64>::new(3).map_err(|error| error.to_string())?;
    let mut connection = Connection::open(target.address).map_err(|error| error.to_string())?;
    let mut rng =
        Rng(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let token = match kind {
        Kind::AuthList | Kind::AuthListNoTotal => {
            Some(target.tokens[index % target.tokens.len()].as_str())
        }
        _ => None,
    };
    let mut body = String::new();
    while !stop.load(Ordering::Relaxed) {
        let (method, path, payload) = match kind {
            Kind::Get => (
                "GET",
                format!("/api/collections/items/records/{}", item_id(rng.below(target.records))),
                None,
            ),
            Kind::ListFilter => {
                let n = rng.below(n_values(target.records)); // every value is on 10 items
                ("GET", format!("/api/collections/items/records?filter=n%3D{n}&perPage=20"), None)
            }
            Kind::AuthList => {
                ("GET", "/api/collections/notes/records?perPage=20".to_string(), None)
            }
            Kind::AuthListNoTotal => {
                ("GET", "/api/collections/notes/records?perPage=20&skipTotal=1".to_string(), None)
            }
            Kind::Create => {
                let k = created.fetch_add(1, Ordering::Relaxed);
                body.clear();
                body.push_str(&format!(
                    r#"{{"title":"created {index}-{k}","n":{},"body":"made by the load test"}}"#,
                    rng.below(n_values(target.records))
                ));
                ("POST", "/api/collections/items/records".to_string(), Some(body.as_bytes()))
            }
        };
        let sent = Instant::now();
        let answer = connection
            .send(method, &path, token, payload)
            .map_err(|error| format!("{method} {path}: {error}"))?;
        let micros = sent.elapsed().as_micros() as u64;
        if answer.status != 200 {
            return Err(format!(
                "{method} {path}: {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ));
        }
        if measuring.load(Ordering::Relaxed) {
            latency.record(micros.max(1)).map_err(|error| error.to_string())?;
        }
    }
    Ok(latency)
}
