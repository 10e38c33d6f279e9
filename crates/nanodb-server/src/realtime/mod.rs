//! Realtime: PocketBase's SSE subscriptions to record changes, fed by nanodb's change feed.
//!
//! `Realtime` is the registry of connected clients (`client`), each with its subscriptions
//! (`topic`) and a bounded queue its SSE stream (`sse`) sends from. The feed pump (`pump`)
//! is one thread reading a `Database::subscribe` change stream and, for every committed
//! change, pushing an event to each subscription it matches whose rule lets the client see
//! the record (list rule for `coll/*`, view rule for `coll/id`, with the client's auth).
//!
//! The pump runs only while clients are connected: the first connect subscribes to the feed
//! (before the client gets its `PB_CONNECT`, so no commit after that is missed), and the pump
//! unsubscribes once no client has been connected for `ServerConfig::realtime_feed_linger`, so writes pay for the
//! feed only while someone listens. If the pump falls more than the feed's buffer behind
//! (`nanodb::Error::Lagged`) it cannot know what it missed: it drops every client (their
//! streams end, the SDK reconnects and subscribes again) and stops; the next connect starts a
//! fresh feed. Nothing is lost silently.
//!
//! Thread safety: `Realtime` is shared by requests, streams and the pump. Lock order: `pump`
//! before `clients`; a client's own locks are taken alone.
//!
//! Invariants:
//! 1. While any client is registered, a pump is running (clients are registered, and the pump
//!    stops, only under the `pump` lock).
//! 2. At most `realtime_clients_max` clients are registered.

pub mod client;
mod pump;
pub mod sse;
pub mod topic;

use crate::auth::install::random_text;
use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::state::AppState;
use client::{message, Client, Inbox, QueuedBytes, CLIENT_ID_LEN};
use parking_lot::{Mutex, RwLock};
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Default of `ServerConfig::realtime_feed_linger`: how long the pump keeps its feed
/// subscription after the last client left.
pub const FEED_LINGER_DEFAULT: Duration = Duration::from_secs(10);
/// How often the pump looks for the end of its linger and for a closed server.
const PUMP_POLL: Duration = Duration::from_millis(100);

/// Counters of the realtime machinery (for `/metrics`).
#[derive(Debug, Default)]
pub struct RealtimeStats {
    /// Clients connected since start.
    pub connects: AtomicU64,
    /// Event messages queued for clients.
    pub events_sent: AtomicU64,
    /// Clients dropped because their queue was full.
    pub clients_dropped_slow: AtomicU64,
    /// Times the pump fell behind the feed and dropped every client.
    pub feed_lagged: AtomicU64,
}

/// The realtime clients and the feed pump.
pub struct Realtime {
    config: ServerConfig,
    clients: RwLock<HashMap<String, Arc<Client>>>,
    /// True while a pump thread runs.
    pump: Mutex<bool>,
    closed: AtomicBool,
    /// The bytes queued for all clients.
    pub queued_bytes: Arc<QueuedBytes>,
    /// The bytes of all clients' subscriptions.
    subscription_bytes: AtomicUsize,
    /// The counters.
    pub stats: RealtimeStats,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime").field("clients", &self.clients.read().len()).finish()
    }
}

impl Realtime {
    /// No clients yet, with the limits of `config`.
    pub fn new(config: &ServerConfig) -> Realtime {
        Realtime {
            config: config.clone(),
            clients: RwLock::new(HashMap::new()),
            pump: Mutex::new(false),
            closed: AtomicBool::new(false),
            queued_bytes: Arc::new(QueuedBytes::new(config.realtime_queued_bytes_total_max)),
            subscription_bytes: AtomicUsize::new(0),
            stats: RealtimeStats::default(),
        }
    }

    /// Registers a new client connecting from `ip`, starting the feed pump if none runs;
    /// the client and its queue, which already holds its `PB_CONNECT`. Blocking (starting
    /// the feed waits for writes in flight).
    pub fn connect(
        &self,
        state: &Arc<AppState>,
        ip: Option<IpAddr>,
    ) -> Result<(Arc<Client>, Inbox)> {
        self.check_open()?;
        let mut running = self.pump.lock();
        self.check_room()?;
        if !*running {
            pump::start(state, self.config.realtime_feed_buffer_events)?;
            *running = true;
        }
        self.register(ip)
    }

    /// `connect` without blocking, for the event loop: `None` when it would block (no pump
    /// runs yet, or one is starting or stopping and holds its lock), and the caller runs
    /// `connect` on a blocking thread instead. So a burst of connections does not take the
    /// blocking pool's threads (sized for document work) once the feed runs.
    pub fn connect_if_running(&self, ip: Option<IpAddr>) -> Option<Result<(Arc<Client>, Inbox)>> {
        if let Err(error) = self.check_open() {
            return Some(Err(error));
        }
        let running = self.pump.try_lock()?;
        if !*running {
            return None;
        }
        Some(self.check_room().and_then(|()| self.register(ip)))
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("The server is shutting down.".into()));
        }
        Ok(())
    }

    fn check_room(&self) -> Result<()> {
        if self.clients.read().len() >= self.config.realtime_clients_max {
            return Err(Error::TooManyRequests("Too many realtime connections.".into()));
        }
        Ok(())
    }

    /// Adds a client; the caller holds the `pump` lock with a pump running (invariant 1).
    fn register(&self, ip: Option<IpAddr>) -> Result<(Arc<Client>, Inbox)> {
        let id = random_text(CLIENT_ID_LEN)?;
        let (client, inbox) = Client::new(
            id.clone(),
            ip,
            self.config.realtime_queue_messages_max,
            self.config.realtime_queue_bytes_max,
            Arc::clone(&self.queued_bytes),
        );
        let client = Arc::new(client);
        client.send(message(&id, "PB_CONNECT", &json!({"clientId": id}).to_string()));
        let mut clients = self.clients.write();
        // Checked again under the lock `close_all` takes (see there).
        self.check_open()?;
        clients.insert(id, Arc::clone(&client));
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        Ok((client, inbox))
    }

    /// The client with `id`, if connected.
    pub fn client(&self, id: &str) -> Option<Arc<Client>> {
        self.clients.read().get(id).cloned()
    }

    /// Every connected client.
    pub fn clients(&self) -> Vec<Arc<Client>> {
        self.clients.read().values().cloned().collect()
    }

    /// True while the feed pump runs (subscribed to the change feed).
    pub fn feed_running(&self) -> bool {
        *self.pump.lock()
    }

    /// How many clients are connected.
    pub fn client_count(&self) -> usize {
        self.clients.read().len()
    }

    /// Forgets client `id` (its stream ended) and closes its queue.
    pub fn remove(&self, id: &str) {
        if let Some(client) = self.clients.write().remove(id) {
            self.forget(&client);
        }
    }

    /// Replaces the subscriptions of `client`; 429 if all clients' subscriptions would pass
    /// `realtime_subscription_bytes_total_max` bytes.
    pub fn set_subscriptions(
        &self,
        client: &Client,
        subscriptions: Vec<topic::Subscription>,
    ) -> Result<()> {
        let bytes: usize = subscriptions.iter().map(|sub| sub.name.len()).sum();
        let mut replaced = client.subscriptions_lock();
        if client.is_closed() {
            // Forgotten meanwhile: its subscriptions must not be counted again.
            return Err(Error::NotFound(crate::api::MESSAGE_UNKNOWN_CLIENT.into()));
        }
        let old: usize = replaced.iter().map(|sub| sub.name.len()).sum();
        let max = self.config.realtime_subscription_bytes_total_max;
        let updated =
            self.subscription_bytes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |total| {
                let total = total - old + bytes;
                (total <= max).then_some(total)
            });
        if updated.is_err() {
            return Err(Error::TooManyRequests("Too many realtime subscriptions.".into()));
        }
        *replaced = Arc::new(subscriptions);
        Ok(())
    }

    /// The bytes of all clients' subscriptions.
    pub fn subscription_bytes(&self) -> usize {
        self.subscription_bytes.load(Ordering::Acquire)
    }

    /// Closes a client taken out of the registry and takes its subscriptions off the count.
    fn forget(&self, client: &Client) {
        client.close();
        let mut subscriptions = client.subscriptions_lock();
        let bytes: usize = subscriptions.iter().map(|sub| sub.name.len()).sum();
        self.subscription_bytes.fetch_sub(bytes, Ordering::AcqRel);
        *subscriptions = Arc::new(Vec::new());
    }

    /// Stops: closes every client's queue (their streams end, so a graceful shutdown does
    /// not wait for them) and refuses new clients.
    pub fn close_all(&self) {
        // Under the clients' lock, so a `register` racing with it either ends before (and is
        // dropped here) or sees `closed` (and refuses).
        let mut clients = self.clients.write();
        self.closed.store(true, Ordering::SeqCst);
        self.forget_all(&mut clients);
    }

    /// True once `close_all` ran.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Drops every client of `clients` (the map behind the `clients` lock, held).
    fn forget_all(&self, clients: &mut HashMap<String, Arc<Client>>) {
        for (_, client) in clients.drain() {
            self.forget(&client);
        }
    }

    /// Called by the pump when idle: true (and the pump is marked stopped) if no client has
    /// been connected for `realtime_feed_linger`, or the server is stopping.
    fn pump_may_stop(&self, idle_since: &mut Option<std::time::Instant>) -> bool {
        let mut running = self.pump.lock();
        if !self.clients.read().is_empty() && !self.is_closed() {
            *idle_since = None;
            return false;
        }
        let since = *idle_since.get_or_insert_with(std::time::Instant::now);
        if self.is_closed() || since.elapsed() >= self.config.realtime_feed_linger {
            *running = false;
            return true;
        }
        false
    }

    /// Called by a pump whose feed ended (lagged, or the database closed): every client is
    /// dropped and the pump marked stopped.
    fn pump_failed(&self) {
        let mut running = self.pump.lock();
        self.forget_all(&mut self.clients.write());
        *running = false;
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::TestState;

    #[test]
    fn connecting_without_blocking_needs_a_running_feed_and_keeps_the_limits() {
        let test = TestState::with(|config| config.realtime_clients_max = 2);
        let realtime = &test.state.realtime;
        // No feed yet: the caller must start it on a blocking thread.
        assert!(realtime.connect_if_running(None).is_none());
        assert!(!realtime.feed_running());
        let (first, _first_inbox) = realtime.connect(&test.state, None).unwrap();
        assert!(realtime.feed_running());
        // While the pump's lock is held (a start or a stop), it does not wait for it.
        {
            let _held = realtime.pump.lock();
            assert!(realtime.connect_if_running(None).is_none());
        }
        let (second, _second_inbox) = realtime.connect_if_running(None).unwrap().unwrap();
        assert_ne!(first.id, second.id);
        assert_eq!(realtime.client_count(), 2);
        assert!(realtime.client(&second.id).is_some());
        // At the limit: refused, on either path.
        let refused = realtime.connect_if_running(None).unwrap().unwrap_err();
        assert!(refused.to_string().contains("Too many realtime connections"), "{refused}");
        assert!(realtime.connect(&test.state, None).is_err());
        // Closed: refused without touching the pump.
        realtime.close_all();
        let closed = realtime.connect_if_running(None).unwrap().unwrap_err();
        assert!(closed.to_string().contains("shutting down"), "{closed}");
    }
}
