//! One realtime client: its id, the IP it connected from, its auth (set by its subscription
//! requests), its subscriptions, and the bounded queue of SSE messages its stream sends.
//!
//! The queue holds at most `messages_max` messages and `bytes_max` bytes, and all clients'
//! queues together at most the bytes of their shared `QueuedBytes`. A message that does not
//! fit closes the queue instead of waiting or growing: the client is dropped (its
//! stream sends what it holds, then ends, and the SDK reconnects with a new client id), so a
//! slow reader never holds back the feed or other clients, and never costs more memory than
//! its bounds.
//!
//! Thread safety: `Client` is shared (`Arc`) by the registry, the feed pump and the
//! subscription requests; every field is behind its own short lock or an atomic.
//!
//! Invariants:
//! 1. `queued_bytes` counts exactly the bytes in the queue, and every queue's bytes are in
//!    the shared count (added before a send; taken off when the stream receives a message,
//!    when a send fails, and for what is left when the stream is dropped).
//! 2. Once closed, a queue never opens again.

use super::topic::Subscription;
use crate::auth::requester::Requester;
use axum::body::Bytes;
use parking_lot::Mutex;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Length of a client id (PocketBase's: 40 characters of `A-Za-z0-9`).
pub const CLIENT_ID_LEN: usize = 40;

/// What became of a message handed to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued.
    Queued,
    /// The queue was full: it is now closed (the client is dropped).
    Overflowed,
    /// The queue was already closed.
    Closed,
}

/// The bytes queued for all clients, and their bound.
#[derive(Debug)]
pub struct QueuedBytes {
    used: AtomicUsize,
    max: usize,
}

impl QueuedBytes {
    /// None queued yet, at most `max`.
    pub fn new(max: usize) -> QueuedBytes {
        QueuedBytes { used: AtomicUsize::new(0), max }
    }

    /// The bytes queued now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// A realtime client.
pub struct Client {
    /// The client id (the SSE `id:` of every message).
    pub id: String,
    /// The IP its stream connected from.
    pub ip: Option<IpAddr>,
    auth: Mutex<Requester>,
    subscriptions: Mutex<Arc<Vec<Subscription>>>,
    sender: Mutex<Option<mpsc::Sender<Bytes>>>,
    queued_bytes: Arc<AtomicUsize>,
    bytes_max: usize,
    all_bytes: Arc<QueuedBytes>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("id", &self.id).finish_non_exhaustive()
    }
}

/// The receiving end of a client's queue (moved into its SSE stream). Dropping it takes
/// what is left off the counts.
#[derive(Debug)]
pub struct Inbox {
    receiver: mpsc::Receiver<Bytes>,
    queued_bytes: Arc<AtomicUsize>,
    all_bytes: Arc<QueuedBytes>,
}

impl Inbox {
    /// The next message, taken off the counts.
    pub fn poll_recv(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Bytes>> {
        let polled = self.receiver.poll_recv(cx);
        if let std::task::Poll::Ready(Some(message)) = &polled {
            self.received(message.len());
        }
        polled
    }

    /// The next message if one waits (tests).
    pub fn try_recv(&mut self) -> Option<Bytes> {
        let message = self.receiver.try_recv().ok()?;
        self.received(message.len());
        Some(message)
    }

    /// The bytes queued for this client now.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Acquire)
    }

    fn received(&self, len: usize) {
        self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
        self.all_bytes.used.fetch_sub(len, Ordering::AcqRel);
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        // Closed first, every later send fails (and undoes its own count).
        self.receiver.close();
        while self.try_recv().is_some() {}
    }
}

impl Client {
    /// A guest client without subscriptions, with a queue of at most `messages_max`
    /// messages (at least 1) and `bytes_max` bytes, counted in `all_bytes` too.
    pub fn new(
        id: String,
        ip: Option<IpAddr>,
        messages_max: usize,
        bytes_max: usize,
        all_bytes: Arc<QueuedBytes>,
    ) -> (Client, Inbox) {
        let (sender, receiver) = mpsc::channel(messages_max.max(1));
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let client = Client {
            id,
            ip,
            auth: Mutex::new(Requester::Guest),
            subscriptions: Mutex::new(Arc::new(Vec::new())),
            sender: Mutex::new(Some(sender)),
            queued_bytes: Arc::clone(&queued_bytes),
            bytes_max,
            all_bytes: Arc::clone(&all_bytes),
        };
        (client, Inbox { receiver, queued_bytes, all_bytes })
    }

    /// Queues `message`, or closes the queue if it does not fit.
    pub fn send(&self, message: Bytes) -> Sent {
        let mut sender = self.sender.lock();
        let Some(queue) = sender.as_ref() else { return Sent::Closed };
        let len = message.len();
        let before = self.queued_bytes.fetch_add(len, Ordering::AcqRel);
        let all_before = self.all_bytes.used.fetch_add(len, Ordering::AcqRel);
        let fits = before.saturating_add(len) <= self.bytes_max
            && all_before.saturating_add(len) <= self.all_bytes.max;
        if fits && queue.try_send(message).is_ok() {
            return Sent::Queued;
        }
        self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
        self.all_bytes.used.fetch_sub(len, Ordering::AcqRel);
        *sender = None;
        Sent::Overflowed
    }

    /// Closes the queue: the stream sends what it holds, then ends.
    pub fn close(&self) {
        self.sender.lock().take();
    }

    /// True once the queue is closed.
    pub fn is_closed(&self) -> bool {
        self.sender.lock().is_none()
    }

    /// Who the client is, as its subscription requests said.
    pub fn auth(&self) -> Requester {
        self.auth.lock().clone()
    }

    /// Sets who the client is.
    pub fn set_auth(&self, requester: Requester) {
        *self.auth.lock() = requester;
    }

    /// Applies `change` to the client's auth under its lock.
    pub fn update_auth(&self, change: impl FnOnce(&mut Requester)) {
        change(&mut self.auth.lock());
    }

    /// The client's subscriptions.
    pub fn subscriptions(&self) -> Arc<Vec<Subscription>> {
        Arc::clone(&self.subscriptions.lock())
    }

    /// The lock of the subscriptions (`Realtime` replaces them, keeping their byte count).
    pub(super) fn subscriptions_lock(&self) -> parking_lot::MutexGuard<'_, Arc<Vec<Subscription>>> {
        self.subscriptions.lock()
    }
}

/// One SSE message: `id:<client>`, `event:<name>`, `data:<json>` and a blank line (no space
/// after the colons, as PocketBase writes them). `data` must be one line (serialized JSON
/// is), `event` holds no control character (`topic`'s invariant).
pub fn message(client_id: &str, event: &str, data: &str) -> Bytes {
    debug_assert!(!data.contains('\n') && !event.chars().any(char::is_control));
    Bytes::from(format!("id:{client_id}\nevent:{event}\ndata:{data}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_pocketbase_framing() {
        let framed = message("abc", "PB_CONNECT", r#"{"clientId":"abc"}"#);
        assert_eq!(&framed[..], b"id:abc\nevent:PB_CONNECT\ndata:{\"clientId\":\"abc\"}\n\n");
    }

    fn shared(max: usize) -> Arc<QueuedBytes> {
        Arc::new(QueuedBytes::new(max))
    }

    #[test]
    fn a_full_queue_closes_at_its_message_and_byte_bounds() {
        let all = shared(usize::MAX);
        let (client, mut inbox) = Client::new("c".into(), None, 2, 1_000, Arc::clone(&all));
        assert_eq!(client.send(Bytes::from_static(b"one")), Sent::Queued);
        assert_eq!(client.send(Bytes::from_static(b"two")), Sent::Queued);
        assert_eq!((inbox.queued_bytes(), all.used()), (6, 6));
        assert_eq!(client.send(Bytes::from_static(b"three")), Sent::Overflowed, "2 messages max");
        assert!(client.is_closed());
        assert_eq!(client.send(Bytes::from_static(b"four")), Sent::Closed);
        assert_eq!((inbox.queued_bytes(), all.used()), (6, 6), "failed sends are not counted");
        assert_eq!(&inbox.try_recv().unwrap()[..], b"one", "held messages still go out");
        assert_eq!((inbox.queued_bytes(), all.used()), (3, 3));
        assert_eq!(&inbox.try_recv().unwrap()[..], b"two");
        assert!(inbox.try_recv().is_none(), "then the stream ends");

        let (client, _inbox) = Client::new("c".into(), None, 100, 10, shared(usize::MAX));
        assert_eq!(client.send(Bytes::from(vec![b'x'; 10])), Sent::Queued, "exactly the bytes");
        assert_eq!(client.send(Bytes::from_static(b"y")), Sent::Overflowed, "one byte more");
    }

    #[test]
    fn all_queues_share_one_byte_bound_and_a_dropped_stream_gives_its_bytes_back() {
        let all = shared(10);
        let (first, first_inbox) = Client::new("a".into(), None, 100, 100, Arc::clone(&all));
        let (second, _second_inbox) = Client::new("b".into(), None, 100, 100, Arc::clone(&all));
        assert_eq!(first.send(Bytes::from(vec![b'x'; 6])), Sent::Queued);
        assert_eq!(second.send(Bytes::from(vec![b'x'; 4])), Sent::Queued, "exactly the bound");
        assert_eq!(second.send(Bytes::from_static(b"y")), Sent::Overflowed, "one byte over it");
        assert_eq!(all.used(), 10);
        drop(first_inbox);
        assert_eq!(all.used(), 4, "the dropped stream's bytes are given back");
        assert_eq!(first.send(Bytes::from_static(b"z")), Sent::Overflowed, "its queue is gone");
        assert_eq!(all.used(), 4);
    }
}
