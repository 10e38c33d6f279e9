//! The body of a `GET /api/realtime` response: a client's queued SSE messages as they come,
//! a keep-alive comment (`:ping`) every `ping_interval` while nothing else is sent, and the
//! end of the stream when the client's queue closes (dropped as slow, or the server is
//! stopping) or after `idle_timeout` without a message (pings do not count), after which the
//! SDK reconnects.
//!
//! Each message is its own body frame, written to the socket as it comes (hyper does not
//! buffer frames; nothing compresses them).
//!
//! Thread safety: polled by one connection task; dropping it (the client went away, or the
//! stream ended) runs `on_drop`, which forgets the client.

use super::client::Inbox;
use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};

/// The keep-alive comment.
pub const PING: &[u8] = b":ping\n\n";

/// A realtime client's event stream.
pub struct EventStream {
    inbox: Inbox,
    ping: Interval,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    ended: bool,
    on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").field("ended", &self.ended).finish_non_exhaustive()
    }
}

impl EventStream {
    /// A stream of `inbox`'s messages; `on_drop` runs once when it is dropped.
    pub fn new(
        inbox: Inbox,
        ping_interval: Duration,
        idle_timeout: Duration,
        on_drop: impl FnOnce() + Send + Sync + 'static,
    ) -> EventStream {
        let period = ping_interval.max(Duration::from_millis(1));
        let mut ping = tokio::time::interval_at(Instant::now() + period, period);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        EventStream {
            inbox,
            ping,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
            ended: false,
            on_drop: Some(Box::new(on_drop)),
        }
    }
}

impl Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match this.inbox.poll_recv(cx) {
            Poll::Ready(Some(message)) => {
                let deadline = Instant::now() + this.idle_timeout;
                this.idle.as_mut().reset(deadline);
                this.ping.reset();
                return Poll::Ready(Some(Ok(Frame::data(message))));
            }
            Poll::Ready(None) => {
                this.ended = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        if this.idle.as_mut().poll(cx).is_ready() {
            this.ended = true;
            return Poll::Ready(None);
        }
        if this.ping.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(PING)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if let Some(on_drop) = self.on_drop.take() {
            on_drop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::client::QueuedBytes;
    use crate::realtime::client::{Client, Sent};
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    }

    #[test]
    fn messages_then_pings_then_the_idle_end() {
        runtime().block_on(async {
            let all = Arc::new(QueuedBytes::new(1_000));
            let (client, inbox) = Client::new("c".into(), None, 8, 1_000, all);
            let dropped = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&dropped);
            let mut stream = EventStream::new(
                inbox,
                Duration::from_secs(10),
                Duration::from_secs(25),
                move || flag.store(true, Ordering::SeqCst),
            );
            assert_eq!(client.send(Bytes::from_static(b"hello")), Sent::Queued);
            let first = stream.frame().await.unwrap().unwrap().into_data().unwrap();
            assert_eq!(&first[..], b"hello");
            let started = Instant::now();
            for _ in 0..2 {
                let ping = stream.frame().await.unwrap().unwrap().into_data().unwrap();
                assert_eq!(&ping[..], PING);
            }
            assert_eq!(started.elapsed(), Duration::from_secs(20), "a ping every interval");
            assert!(stream.frame().await.is_none(), "idle: no message for the timeout");
            assert_eq!(started.elapsed(), Duration::from_secs(25), "pings do not count");
            assert!(stream.is_end_stream());
            drop(stream);
            assert!(dropped.load(Ordering::SeqCst), "dropping the stream forgets the client");
        });
    }

    #[test]
    fn a_closed_queue_ends_the_stream_after_its_messages() {
        runtime().block_on(async {
            let all = Arc::new(QueuedBytes::new(1_000));
            let (client, inbox) = Client::new("c".into(), None, 8, 1_000, all);
            let mut stream =
                EventStream::new(inbox, Duration::from_secs(10), Duration::from_secs(60), || {});
            client.send(Bytes::from_static(b"last"));
            client.close();
            let last = stream.frame().await.unwrap().unwrap().into_data().unwrap();
            assert_eq!(&last[..], b"last");
            assert!(stream.frame().await.is_none());
        });
    }
}
