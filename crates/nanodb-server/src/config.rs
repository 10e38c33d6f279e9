//! `ServerConfig`: how a server runs, and the limits every request is held to.
//!
//! Every limit is a named constant here (or beside the code that enforces it) and, where an
//! operator may want another value, a field of `ServerConfig` defaulting to the constant.
//!
//! Thread safety: plain owned data, cloned into the server state at start.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::api::batch_items::BATCH_REQUESTS_MAX_DEFAULT;

/// Default most bytes of one request body (PocketBase's default is 32 MiB, for files; this
/// server takes no files yet, and a document is at most 16 MiB).
pub const BODY_BYTES_MAX_DEFAULT: usize = 16 * 1024 * 1024;
/// Default most password hashes (argon2id) computed at once: each takes
/// `PASSWORD_HASH_MEMORY_KIB_DEFAULT` of memory and a core for tens of milliseconds.
pub const PASSWORD_HASHES_CONCURRENT_MAX_DEFAULT: usize = 2;
/// Default most requests waiting for a password hash slot; past it a request gets 429.
pub const PASSWORD_HASH_WAITERS_MAX_DEFAULT: usize = 64;
/// Default memory of one argon2id hash, in KiB (OWASP's recommendation: 19 MiB, 2 passes).
pub const PASSWORD_HASH_MEMORY_KIB_DEFAULT: u32 = 19 * 1024;
/// Default passes of one argon2id hash.
pub const PASSWORD_HASH_PASSES_DEFAULT: u32 = 2;
/// Default memory shared by the databases' memtables and block cache, in bytes: sized for a
/// small VPS. Blocks the cache does not hold are read through the kernel's page cache. At
/// 1,000,000 records and 64 connections (`nanodb-bench serve`, docs/benchmarks.md, issue 7)
/// 8 MiB kept 30 MiB resident under reads against 38 MiB with 16, at the same request rates
/// (a cache of a few MiB holds little of 140 MiB of records either way); 32 MiB was up to a
/// quarter faster than 16 for 18 MiB more. `--memory-mib` raises it for data sets that fit.
pub const MEMORY_BYTES_DEFAULT: u64 = 8 * 1024 * 1024;

/// Default most document-layer tasks (`state::blocking`) running at once; more wait for a
/// slot. Each holds a blocking thread and the memory of its request while it runs, so this,
/// not tokio's 512 blocking threads, bounds what concurrent requests can hold. Writers in
/// flight at once also bound a group commit, so fewer tasks mean more WAL syncs per write: at
/// 1,000,000 records and 64 connections (`nanodb-bench serve --workloads create`, issue 7 in
/// docs/benchmarks.md, three alternating pairs) 16 tasks on 20 threads ran 10, 13 and 19%
/// fewer creates/s than 64 on tokio's pool; 32 on 36 threads ran as many as 64 on 68 and
/// peaked at 36-39 MiB resident against 43-45 MiB for 64 on tokio's pool.
pub const BLOCKING_TASKS_MAX_DEFAULT: usize = 32;
/// Default most entries (index entries, documents, counted keys) a read (a list or view
/// without `expand`) examines on the event loop, per find or count, before it stops and runs
/// again on a blocking thread (`state::read_inline_first`). Most reads end well inside it
/// and skip two thread handoffs; a long one loses at most this much work. A budget of
/// entries, not of time: a thread preempted on a busy machine would spend a time budget
/// without doing anything.
pub const INLINE_READ_ENTRIES_MAX_DEFAULT: u64 = 2_048;
/// Default most bytes of documents one list request may hold in memory to sort them when no
/// index gives the order (past it: 400; add an index or sort by one).
pub const SORT_MEMORY_BYTES_MAX_DEFAULT: usize = 32 * 1024 * 1024;

/// Default longest a batch may run before it fails (PocketBase's `batch.timeout`).
pub const BATCH_TIMEOUT_DEFAULT: Duration = Duration::from_secs(3);

/// Default most realtime clients connected at once (more: 429).
pub const REALTIME_CLIENTS_MAX_DEFAULT: usize = 10_000;
/// Default most connections served at once (a realtime stream holds one, so more than
/// `REALTIME_CLIENTS_MAX_DEFAULT`); past it new connections wait in the listen backlog. The
/// process's open-file limit may bind first: an accept that fails for it is retried each
/// second.
pub const CONNECTIONS_MAX_DEFAULT: usize = 16_384;
/// Default longest wait for a request head (the first of a connection, or the next on a kept
/// alive one) before the connection is closed: a client sending its head a byte at a time
/// (slowloris) or sitting idle holds a connection at most this long.
pub const HEADER_READ_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// Shortest `ServerConfig::header_read_timeout` used (a shorter one is raised to it).
pub const HEADER_READ_TIMEOUT_MIN: Duration = Duration::from_millis(1);
/// Longest `ServerConfig::header_read_timeout` used (a longer one is lowered to it).
pub const HEADER_READ_TIMEOUT_MAX: Duration = Duration::from_secs(24 * 60 * 60);
/// Default longest wait, once a shutdown began, for open connections to finish (a client
/// that does not read its response, or sends its body slowly, would hold one without
/// bound); past it the databases are closed anyway.
pub const SHUTDOWN_GRACE_DEFAULT: Duration = Duration::from_secs(10);
/// Default most messages waiting in one realtime client's queue; one more drops the client.
pub const REALTIME_QUEUE_MESSAGES_MAX_DEFAULT: usize = 1_024;
/// Default most bytes waiting in one realtime client's queue; more drops the client.
pub const REALTIME_QUEUE_BYTES_MAX_DEFAULT: usize = 16 * 1024 * 1024;
/// Default most bytes waiting in all realtime clients' queues together; past it, the client
/// whose message does not fit is dropped.
pub const REALTIME_QUEUED_BYTES_TOTAL_MAX_DEFAULT: usize = 256 * 1024 * 1024;
/// Default most bytes of all realtime clients' subscriptions together (more: 429).
pub const REALTIME_SUBSCRIPTION_BYTES_TOTAL_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// Default time between keep-alive comments on an SSE stream with nothing else to send.
pub const REALTIME_PING_INTERVAL_DEFAULT: Duration = Duration::from_secs(30);
/// Default time without a message after which an SSE stream ends (PocketBase's: 5 minutes).
pub const REALTIME_IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5 * 60);
/// Default most change-feed events the realtime pump may fall behind before it drops every
/// client.
pub const REALTIME_FEED_BUFFER_EVENTS_DEFAULT: usize = 65_536;

pub use crate::ops::rate_limit::{
    AUTH_RATE_LIMIT_BURST_DEFAULT, AUTH_RATE_LIMIT_PER_MINUTE_DEFAULT,
};

/// How a server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The data directory (created if missing); the server's databases live under it.
    pub data_dir: PathBuf,
    /// Most bytes of one request body; a longer body is refused with 413.
    pub body_bytes_max: usize,
    /// Most connections served at once (at least 1); more wait in the listen backlog.
    pub connections_max: usize,
    /// Longest wait for a request head before its connection is closed (also how long a kept
    /// alive connection may sit idle between requests); within `HEADER_READ_TIMEOUT_MIN` and
    /// `HEADER_READ_TIMEOUT_MAX`.
    pub header_read_timeout: Duration,
    /// Longest wait, once a shutdown began, for open connections to finish before the
    /// databases are closed anyway.
    pub shutdown_grace: Duration,
    /// Most password hashes computed at once (see `PASSWORD_HASHES_CONCURRENT_MAX_DEFAULT`).
    pub password_hashes_concurrent_max: usize,
    /// Most requests waiting for a hash slot before new ones get 429.
    pub password_hash_waiters_max: usize,
    /// Memory of one argon2id hash, in KiB (at least 8 per lane, argon2's minimum).
    pub password_hash_memory_kib: u32,
    /// Passes of one argon2id hash (at least 1).
    pub password_hash_passes: u32,
    /// Memory shared by the databases' memtables and block cache, in bytes.
    pub memory_bytes: u64,
    /// Most document-layer tasks running at once (at least 1, at most tokio's
    /// `Semaphore::MAX_PERMITS`); more wait for a slot.
    pub blocking_tasks_max: usize,
    /// Most entries a read examines on the event loop before moving to a blocking thread;
    /// zero sends every read to a blocking thread.
    pub inline_read_entries_max: u64,
    /// Most bytes of documents one list request may hold to sort them.
    pub sort_memory_bytes_max: usize,
    /// Sync every write to stable storage before answering (durable against power loss).
    pub sync_writes: bool,
    /// Most requests in one `POST /api/batch` (more: 400).
    pub batch_requests_max: usize,
    /// Longest a batch's transaction may run; past it the batch fails at the request it
    /// reached.
    pub batch_timeout: Duration,
    /// Most realtime clients connected at once.
    pub realtime_clients_max: usize,
    /// Most messages waiting in one realtime client's queue.
    pub realtime_queue_messages_max: usize,
    /// Most bytes waiting in one realtime client's queue.
    pub realtime_queue_bytes_max: usize,
    /// Most bytes waiting in all realtime clients' queues together.
    pub realtime_queued_bytes_total_max: usize,
    /// Most bytes of all realtime clients' subscriptions together.
    pub realtime_subscription_bytes_total_max: usize,
    /// Time between keep-alive comments on an idle SSE stream.
    pub realtime_ping_interval: Duration,
    /// Time without a message after which an SSE stream ends.
    pub realtime_idle_timeout: Duration,
    /// The change-feed buffer of the realtime pump, in events (1 to
    /// `nanodb::FEED_BUFFER_EVENTS_MAX`).
    pub realtime_feed_buffer_events: usize,
    /// How long the realtime pump keeps its feed subscription after the last client left.
    pub realtime_feed_linger: Duration,
    /// Requests in a burst per client IP on the auth endpoints (0: no limit).
    pub auth_rate_limit_burst: u32,
    /// Refill of the auth endpoints' limit, in requests per minute per client IP.
    pub auth_rate_limit_per_minute: u32,
    /// The browser origins allowed to call the API (`*`: any; empty: no CORS headers).
    pub cors_origins: Vec<String>,
    /// The bearer token `GET /metrics` requires (`Authorization: Bearer <token>`); `None`:
    /// the page is open to anyone who can reach the server.
    pub metrics_token: Option<String>,
    /// Honour `X-Forwarded-For` for the client IP (the auth rate limit, realtime's IP
    /// check): set it only behind a reverse proxy that sets the header, or clients can
    /// pick their own address. Off: the IP is the connection's peer address.
    pub trusted_proxy: bool,
    /// The one-time token that lets the first superuser be created (`POST /api/install`)
    /// while none exists. `None`: a random one, printed to the log at start.
    pub install_token: Option<String>,
}

impl ServerConfig {
    /// The defaults, with data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            body_bytes_max: BODY_BYTES_MAX_DEFAULT,
            connections_max: CONNECTIONS_MAX_DEFAULT,
            header_read_timeout: HEADER_READ_TIMEOUT_DEFAULT,
            shutdown_grace: SHUTDOWN_GRACE_DEFAULT,
            password_hashes_concurrent_max: PASSWORD_HASHES_CONCURRENT_MAX_DEFAULT,
            password_hash_waiters_max: PASSWORD_HASH_WAITERS_MAX_DEFAULT,
            password_hash_memory_kib: PASSWORD_HASH_MEMORY_KIB_DEFAULT,
            password_hash_passes: PASSWORD_HASH_PASSES_DEFAULT,
            memory_bytes: MEMORY_BYTES_DEFAULT,
            sync_writes: true,
            blocking_tasks_max: BLOCKING_TASKS_MAX_DEFAULT,
            inline_read_entries_max: INLINE_READ_ENTRIES_MAX_DEFAULT,
            sort_memory_bytes_max: SORT_MEMORY_BYTES_MAX_DEFAULT,
            install_token: None,
            batch_requests_max: BATCH_REQUESTS_MAX_DEFAULT,
            batch_timeout: BATCH_TIMEOUT_DEFAULT,
            realtime_clients_max: REALTIME_CLIENTS_MAX_DEFAULT,
            realtime_queue_messages_max: REALTIME_QUEUE_MESSAGES_MAX_DEFAULT,
            realtime_queue_bytes_max: REALTIME_QUEUE_BYTES_MAX_DEFAULT,
            realtime_queued_bytes_total_max: REALTIME_QUEUED_BYTES_TOTAL_MAX_DEFAULT,
            realtime_subscription_bytes_total_max: REALTIME_SUBSCRIPTION_BYTES_TOTAL_MAX_DEFAULT,
            realtime_ping_interval: REALTIME_PING_INTERVAL_DEFAULT,
            realtime_idle_timeout: REALTIME_IDLE_TIMEOUT_DEFAULT,
            realtime_feed_buffer_events: REALTIME_FEED_BUFFER_EVENTS_DEFAULT,
            realtime_feed_linger: crate::realtime::FEED_LINGER_DEFAULT,
            auth_rate_limit_burst: AUTH_RATE_LIMIT_BURST_DEFAULT,
            auth_rate_limit_per_minute: AUTH_RATE_LIMIT_PER_MINUTE_DEFAULT,
            cors_origins: vec!["*".to_string()],
            metrics_token: None,
            trusted_proxy: false,
        }
    }
}
