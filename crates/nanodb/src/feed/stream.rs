//! `ChangeStream`: one subscription's receiving end, and the bounded buffer behind it.
//!
//! Thread safety: `ChangeStream` is `Send + Sync`; the buffer is a mutex and a condvar shared
//! with the hub, which pushes from the committing thread.
//!
//! Invariants:
//! 1. The buffer never holds more than `capacity` events; the first event that finds it full
//!    makes the subscriber lagged, and from then on events are only counted (`missed`).
//! 2. Events leave the buffer in the order they entered it; a lagged or closed stream first
//!    hands out what it holds, then its error, every time it is asked.

use super::{ChangeEvent, Hub};
use crate::{Error, Result};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Buffer {
    events: VecDeque<ChangeEvent>,
    /// Events dropped since the buffer overflowed; above zero once lagged.
    missed: u64,
    /// Why the stream ended, if it did.
    end: Option<Error>,
}

/// A subscriber as the hub sees it.
pub(crate) struct Subscriber {
    /// The collection id subscribed to; `None` for the whole database.
    pub scope: Option<u64>,
    /// Commits at or below this seqno are not delivered.
    pub start_seqno: u64,
    capacity: usize,
    buffer: Mutex<Buffer>,
    ready: Condvar,
}

impl Subscriber {
    pub fn new(scope: Option<u64>, start_seqno: u64, capacity: usize) -> Subscriber {
        Subscriber {
            scope,
            start_seqno,
            capacity,
            buffer: Mutex::new(Buffer::default()),
            ready: Condvar::new(),
        }
    }

    /// Appends `events`, or counts them as missed once the buffer has overflowed; returns
    /// false once the subscriber is lagged (the hub then forgets it).
    pub fn push(&self, events: impl Iterator<Item = ChangeEvent>) -> bool {
        let mut buffer = self.buffer.lock();
        for event in events {
            if buffer.missed == 0 && buffer.events.len() < self.capacity {
                buffer.events.push_back(event);
            } else {
                buffer.missed += 1;
            }
        }
        let lagged = buffer.missed > 0;
        drop(buffer);
        self.ready.notify_all();
        !lagged
    }

    /// Ends the stream with `error` after the events it holds.
    pub fn close(&self, error: Error) {
        self.buffer.lock().end.get_or_insert(error);
        self.ready.notify_all();
    }
}

/// A subscription to committed changes (`Collection::subscribe`, `Database::subscribe`).
/// Dropping it unsubscribes.
///
/// Events come in commit order. When the subscriber falls more than
/// `FeedOptions::buffer_events_max` events behind, it receives the events held and then
/// `Error::Lagged` with the count it missed: it must read the current state again and
/// subscribe anew. Closing the database ends every stream with `Error::Closed`, dropping its
/// collection with `Error::NotFound`.
pub struct ChangeStream {
    hub: Weak<Hub>,
    subscriber: Arc<Subscriber>,
    /// Set once the iterator has yielded the end error.
    finished: bool,
}

impl std::fmt::Debug for ChangeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeStream")
            .field("start_seqno", &self.subscriber.start_seqno)
            .finish_non_exhaustive()
    }
}

impl ChangeStream {
    pub(crate) fn new(hub: Weak<Hub>, subscriber: Arc<Subscriber>) -> ChangeStream {
        ChangeStream { hub, subscriber, finished: false }
    }

    /// The stream holds the changes of every commit after this seqno (and none before).
    pub fn start_seqno(&self) -> u64 {
        self.subscriber.start_seqno
    }

    /// The next event, waiting for it; `Error::Lagged` or the end's error after the last.
    pub fn recv(&self) -> Result<ChangeEvent> {
        loop {
            if let Some(event) = self.recv_until(None)? {
                return Ok(event);
            }
        }
    }

    /// The next event, waiting at most `timeout`; `Ok(None)` if none came in time.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<ChangeEvent>> {
        self.recv_until(Some(Instant::now() + timeout))
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Result<Option<ChangeEvent>> {
        self.recv_until(Some(Instant::now()))
    }

    /// How many events wait to be received.
    pub fn pending(&self) -> usize {
        self.subscriber.buffer.lock().events.len()
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<Option<ChangeEvent>> {
        let subscriber = &self.subscriber;
        let mut buffer = subscriber.buffer.lock();
        loop {
            if let Some(event) = buffer.events.pop_front() {
                return Ok(Some(event));
            }
            if buffer.missed > 0 {
                return Err(Error::Lagged { missed: buffer.missed });
            }
            if let Some(error) = &buffer.end {
                return Err(error.clone());
            }
            match deadline {
                None => subscriber.ready.wait(&mut buffer),
                Some(deadline) => {
                    if subscriber.ready.wait_until(&mut buffer, deadline).timed_out()
                        && buffer.events.is_empty()
                        && buffer.missed == 0
                        && buffer.end.is_none()
                    {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

/// Yields events until the stream ends; its last item is the end's error (`Error::Lagged`,
/// `Error::Closed`, ...).
impl Iterator for ChangeStream {
    type Item = Result<ChangeEvent>;

    fn next(&mut self) -> Option<Result<ChangeEvent>> {
        if self.finished {
            return None;
        }
        let item = self.recv();
        self.finished = item.is_err();
        Some(item)
    }
}

impl Drop for ChangeStream {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.remove(&self.subscriber);
        }
    }
}
