//! Request metrics, and `/metrics` in Prometheus' text format (version 0.0.4).
//!
//! Every answered request counts in `nanodb_http_requests_total{route, method, status}` and
//! its time to the response head in the histogram
//! `nanodb_http_request_duration_seconds{route}` (`LATENCY_BUCKETS_SECONDS`). `route` is the
//! route table's path template (`/api/collections/{collection}/records/{id}`) or
//! `unmatched`, and `method` one of the HTTP methods or `OTHER`, so label values are few
//! whatever clients send. The rendered page adds gauges and counters read at scrape time:
//! the storage engine's (`Db::stats`, `Db::memory_usage`), realtime's, the auth rate
//! limit's, and the process' resident memory and CPU time.
//!
//! Thread safety: counters are one mutex-guarded map (held for an insert) and atomics.
//!
//! Invariant: label values are static strings from the route table and method list, never
//! request text.

use crate::api::routes::ROUTES;
use crate::state::AppState;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds (`+Inf` follows).
pub const LATENCY_BUCKETS_SECONDS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
/// The `route` label of requests no route matches.
pub const ROUTE_UNMATCHED: &str = "unmatched";
/// The methods that are their own `method` label; any other is `OTHER`.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// One route's latency histogram.
#[derive(Debug, Default)]
struct Histogram {
    /// Requests at or under each bound, not cumulative (summed when rendered); the last slot
    /// is over every bound.
    buckets: [AtomicU64; LATENCY_BUCKETS_SECONDS.len() + 1],
    sum_micros: AtomicU64,
}

/// The request counters.
#[derive(Debug)]
pub struct Metrics {
    /// (route index or `ROUTES.len()` for unmatched, method, status) to count.
    counts: Mutex<BTreeMap<(usize, &'static str, u16), u64>>,
    /// One histogram per route, the last for unmatched requests.
    latency: Vec<Histogram>,
    /// Connections being served now (shared with their `OpenConnection` guards).
    connections_open: Arc<AtomicU64>,
    /// Connections accepted since start.
    connections_accepted: AtomicU64,
}

/// Counts one connection as open while it lives (`Metrics::connection_opened`).
#[derive(Debug)]
pub struct OpenConnection {
    open: Arc<AtomicU64>,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// No requests yet.
    pub fn new() -> Metrics {
        Metrics {
            counts: Mutex::new(BTreeMap::new()),
            latency: (0..=ROUTES.len()).map(|_| Histogram::default()).collect(),
            connections_open: Arc::new(AtomicU64::new(0)),
            connections_accepted: AtomicU64::new(0),
        }
    }

    /// Counts an accepted connection, open until the returned guard drops.
    pub fn connection_opened(&self) -> OpenConnection {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        OpenConnection { open: Arc::clone(&self.connections_open) }
    }

    /// Counts a request to `route` (an index into `ROUTES`, `None` unmatched) answered with
    /// `status` after `elapsed`.
    pub fn record(&self, route: Option<usize>, method: &str, status: u16, elapsed: Duration) {
        let route = route.filter(|index| *index < ROUTES.len()).unwrap_or(ROUTES.len());
        let method = METHODS.iter().find(|known| **known == method).copied().unwrap_or("OTHER");
        *self.counts.lock().entry((route, method, status)).or_insert(0) += 1;
        let histogram = &self.latency[route];
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS_SECONDS.len());
        histogram.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        histogram.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The request metrics in Prometheus' text format.
    pub fn render_requests(&self, out: &mut String) {
        let label = |route: usize| ROUTES.get(route).map_or(ROUTE_UNMATCHED, |r| r.path);
        header(out, "nanodb_http_requests_total", "counter", "HTTP requests answered.");
        for ((route, method, status), count) in self.counts.lock().iter() {
            let _ = writeln!(
                out,
                "nanodb_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {count}",
                label(*route)
            );
        }
        let name = "nanodb_http_request_duration_seconds";
        header(out, name, "histogram", "Time from a request to its response head.");
        for (route, histogram) in self.latency.iter().enumerate() {
            let counts: Vec<u64> =
                histogram.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
            let total: u64 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let route = label(route);
            let mut cumulative = 0;
            for (bound, count) in LATENCY_BUCKETS_SECONDS.iter().zip(&counts) {
                cumulative += count;
                let _ =
                    writeln!(out, "{name}_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {total}");
            let sum = histogram.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {total}");
        }
    }
}

/// The whole `/metrics` page: requests, storage, realtime, rate limits, process.
pub fn render(state: &AppState) -> String {
    let mut out = String::new();
    state.metrics.render_requests(&mut out);
    render_storage(state, &mut out);
    let realtime = &state.realtime;
    let stats = &realtime.stats;
    for (name, kind, help, value) in [
        (
            "nanodb_realtime_clients",
            "gauge",
            "Realtime clients connected.",
            realtime.client_count() as u64,
        ),
        (
            "nanodb_realtime_feed_running",
            "gauge",
            "1 while the realtime pump reads the change feed.",
            u64::from(realtime.feed_running()),
        ),
        (
            "nanodb_realtime_queued_bytes",
            "gauge",
            "Bytes waiting in realtime clients' queues.",
            realtime.queued_bytes.used() as u64,
        ),
        (
            "nanodb_realtime_subscription_bytes",
            "gauge",
            "Bytes of all realtime subscriptions.",
            realtime.subscription_bytes() as u64,
        ),
        (
            "nanodb_realtime_connects_total",
            "counter",
            "Realtime clients connected since start.",
            stats.connects.load(Ordering::Relaxed),
        ),
        (
            "nanodb_realtime_events_sent_total",
            "counter",
            "Realtime event messages queued.",
            stats.events_sent.load(Ordering::Relaxed),
        ),
        (
            "nanodb_realtime_clients_dropped_slow_total",
            "counter",
            "Realtime clients dropped for a full queue.",
            stats.clients_dropped_slow.load(Ordering::Relaxed),
        ),
        (
            "nanodb_realtime_feed_lagged_total",
            "counter",
            "Times the realtime pump fell behind the change feed.",
            stats.feed_lagged.load(Ordering::Relaxed),
        ),
        (
            "nanodb_http_connections_open",
            "gauge",
            "Connections being served.",
            state.metrics.connections_open.load(Ordering::Relaxed),
        ),
        (
            "nanodb_http_connections_max",
            "gauge",
            "Most connections served at once (more wait to be accepted).",
            state.config.connections_max as u64,
        ),
        (
            "nanodb_http_connections_accepted_total",
            "counter",
            "Connections accepted since start.",
            state.metrics.connections_accepted.load(Ordering::Relaxed),
        ),
        (
            "nanodb_auth_rate_limited_total",
            "counter",
            "Auth requests refused by the per-IP rate limit.",
            state.auth_rate_limit.limited(),
        ),
    ] {
        metric(&mut out, name, kind, help, value);
    }
    if let Some(bytes) = super::process::resident_memory_bytes() {
        metric(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            bytes,
        );
    }
    if let Some(seconds) = super::process::cpu_seconds() {
        header(
            &mut out,
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
        );
        let _ = writeln!(out, "process_cpu_seconds_total {seconds}");
    }
    out
}

fn render_storage(state: &AppState, out: &mut String) {
    let db = state.database().storage();
    let stats = db.stats();
    let memory = db.memory_usage();
    for (name, kind, help, value) in [
        ("nanodb_storage_seqno_last", "gauge", "Last committed seqno.", stats.seqno_last),
        (
            "nanodb_storage_memtable_bytes",
            "gauge",
            "Bytes in the active memtable.",
            memory.memtable_bytes,
        ),
        (
            "nanodb_storage_frozen_memtable_bytes",
            "gauge",
            "Bytes in frozen memtables.",
            memory.frozen_memtable_bytes,
        ),
        (
            "nanodb_storage_block_cache_bytes",
            "gauge",
            "Bytes in the block cache.",
            memory.block_cache_bytes,
        ),
        (
            "nanodb_storage_block_cache_capacity_bytes",
            "gauge",
            "The block cache's bound.",
            memory.block_cache_capacity_bytes,
        ),
        (
            "nanodb_storage_pinned_bytes",
            "gauge",
            "Bytes of index and bloom filter the table cache's SST readers pin, outside the block cache.",
            stats.table_cache_pinned_bytes,
        ),
        ("nanodb_storage_l0_depth", "gauge", "Most L0 files of one keyspace.", stats.l0_depth),
        ("nanodb_storage_snapshots_live", "gauge", "Snapshots held.", stats.snapshots_live),
        (
            "nanodb_storage_write_ops_total",
            "counter",
            "Writes (puts and deletes).",
            stats.write_ops,
        ),
        ("nanodb_storage_group_commits_total", "counter", "Group commits.", stats.group_commits),
        (
            "nanodb_storage_wal_bytes_written_total",
            "counter",
            "Bytes appended to the wal.",
            stats.wal_bytes_written,
        ),
        ("nanodb_storage_wal_syncs_total", "counter", "Wal fsyncs.", stats.wal_syncs),
        ("nanodb_storage_gets_total", "counter", "Point reads.", stats.gets),
        (
            "nanodb_storage_get_hits_total",
            "counter",
            "Point reads that found a value.",
            stats.get_hits,
        ),
        ("nanodb_storage_flushes_total", "counter", "Memtable flushes.", stats.flushes),
        ("nanodb_storage_compactions_total", "counter", "Compactions.", stats.compactions),
        (
            "nanodb_storage_compaction_bytes_read_total",
            "counter",
            "Bytes read by compactions.",
            stats.compaction_bytes_read,
        ),
        (
            "nanodb_storage_compaction_bytes_written_total",
            "counter",
            "Bytes written by compactions.",
            stats.compaction_bytes_written,
        ),
        (
            "nanodb_storage_write_stalls_total",
            "counter",
            "Writes that waited for a flush or compaction.",
            stats.write_stalls,
        ),
        (
            "nanodb_storage_write_slowdowns_total",
            "counter",
            "Writes slowed down by L0 depth.",
            stats.write_slowdowns,
        ),
        (
            "nanodb_storage_transaction_commits_total",
            "counter",
            "Committed transactions.",
            stats.transaction_commits,
        ),
        (
            "nanodb_storage_transaction_conflicts_total",
            "counter",
            "Transactions that lost a conflict.",
            stats.transaction_conflicts,
        ),
        (
            "nanodb_storage_block_cache_hits_total",
            "counter",
            "Block cache hits.",
            stats.block_cache.as_ref().map_or(0, |cache| cache.hits),
        ),
        (
            "nanodb_storage_block_cache_misses_total",
            "counter",
            "Block cache misses.",
            stats.block_cache.as_ref().map_or(0, |cache| cache.misses),
        ),
    ] {
        metric(out, name, kind, help, value);
    }
    header(out, "nanodb_storage_sst_files", "gauge", "Sst files per level.");
    for (level, stats) in stats.levels.iter().enumerate() {
        let _ = writeln!(out, "nanodb_storage_sst_files{{level=\"{level}\"}} {}", stats.files);
    }
    header(out, "nanodb_storage_sst_bytes", "gauge", "Sst bytes per level.");
    for (level, stats) in stats.levels.iter().enumerate() {
        let _ = writeln!(out, "nanodb_storage_sst_bytes{{level=\"{level}\"}} {}", stats.size_bytes);
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_and_bucketed_at_the_bounds() {
        let metrics = Metrics::new();
        let health = ROUTES.iter().position(|route| route.path == "/api/health");
        metrics.record(health, "GET", 200, Duration::from_micros(100));
        metrics.record(health, "GET", 200, Duration::from_micros(101));
        metrics.record(health, "BREW", 405, Duration::from_secs(60));
        metrics.record(None, "GET", 404, Duration::from_millis(1));
        let mut out = String::new();
        metrics.render_requests(&mut out);
        for line in [
            "nanodb_http_requests_total{route=\"/api/health\",method=\"GET\",status=\"200\"} 2",
            "nanodb_http_requests_total{route=\"/api/health\",method=\"OTHER\",status=\"405\"} 1",
            "nanodb_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
            // 100 µs is at the first bound, 101 µs over it.
            "nanodb_http_request_duration_seconds_bucket{route=\"/api/health\",le=\"0.0001\"} 1",
            "nanodb_http_request_duration_seconds_bucket{route=\"/api/health\",le=\"0.00025\"} 2",
            "nanodb_http_request_duration_seconds_bucket{route=\"/api/health\",le=\"2.5\"} 2",
            "nanodb_http_request_duration_seconds_bucket{route=\"/api/health\",le=\"+Inf\"} 3",
            "nanodb_http_request_duration_seconds_count{route=\"/api/health\"} 3",
            "nanodb_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.001\"} 1",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
        assert!(out.contains("# TYPE nanodb_http_request_duration_seconds histogram"));
    }
}
