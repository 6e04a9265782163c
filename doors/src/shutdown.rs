//! How the node stops within its budget (`shutdown_seconds`). The servers' graceful shutdown
//! (tonic, axum, hyper) waits for every open call to end, and a stream the node serves
//! (`Window.Subscribe`, `SubscribeReference`, an attachment fetch) only ends when its client
//! hangs up: so every such stream is wrapped in [`until_shutdown`], which ends it with a last
//! item (gRPC `UNAVAILABLE`) as soon as shutdown begins. Whatever is still open when the
//! drain's share of the budget runs out is dropped ([`Budget`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio_stream::Stream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The part of the budget kept from the drain: [`FINAL_CHECKPOINT`] and [`RUNTIME_STOP`].
pub const RESERVE: Duration = Duration::from_secs(5);

/// How long the last audit checkpoint (one commit) may take before the node gives up on it
/// and exits non-zero.
pub const FINAL_CHECKPOINT: Duration = Duration::from_secs(3);

/// How long the runtime waits for blocking threads (file readers of attachment fetches,
/// store reads) once the node's tasks are done.
pub const RUNTIME_STOP: Duration = Duration::from_secs(2);

/// The shortest `shutdown_seconds` accepted: the reserve and a few seconds to drain.
pub const MIN_BUDGET_SECONDS: u64 = 10;

/// The node's shutdown budget, split between the drain and the [`RESERVE`].
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    total: Duration,
}

impl Budget {
    pub fn new(shutdown_seconds: u64) -> Self {
        Self {
            total: Duration::from_secs(shutdown_seconds),
        }
    }

    /// How long the servers, the relay and the other tasks may take to finish what is in
    /// flight before it is dropped.
    pub fn drain(self) -> Duration {
        self.total.saturating_sub(RESERVE)
    }
}

/// The message of the `UNAVAILABLE` that ends a gRPC stream at shutdown.
pub const SHUTTING_DOWN: &str =
    "the node is shutting down: call again once it is back (an attachment fetch from the offset reached)";

/// `inner`, ended by `last` when `shutdown` is cancelled (at once if it already is).
pub fn until_shutdown<S>(inner: S, shutdown: CancellationToken, last: S::Item) -> UntilShutdown<S>
where
    S: Stream + Unpin,
{
    UntilShutdown {
        inner,
        shutdown: Box::pin(shutdown.cancelled_owned()),
        last: Some(last),
        ended: false,
    }
}

/// See [`until_shutdown`].
pub struct UntilShutdown<S: Stream> {
    inner: S,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    last: Option<S::Item>,
    ended: bool,
}

impl<S> Stream for UntilShutdown<S>
where
    S: Stream + Unpin,
    S::Item: Unpin,
{
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        // Shutdown first: a stream that always has an item ready still ends.
        if this.shutdown.as_mut().poll(cx).is_ready() {
            this.ended = true;
            return Poll::Ready(this.last.take());
        }
        let next = Pin::new(&mut this.inner).poll_next(cx);
        if let Poll::Ready(None) = next {
            this.ended = true;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn a_stream_that_never_ends_ends_with_the_last_item_at_shutdown() {
        let token = CancellationToken::new();
        let never = tokio_stream::pending::<u32>();
        let mut s = until_shutdown(never, token.clone(), 99);
        let waited = tokio::time::timeout(Duration::from_millis(50), s.next()).await;
        assert!(waited.is_err(), "ended before shutdown: {waited:?}");
        token.cancel();
        assert_eq!(s.next().await, Some(99));
        assert_eq!(s.next().await, None);
    }

    #[tokio::test]
    async fn a_stream_with_items_ready_still_ends_and_one_that_ends_alone_gets_no_last_item() {
        let token = CancellationToken::new();
        let mut s = until_shutdown(tokio_stream::iter(1..=3u32), token.clone(), 99);
        assert_eq!(s.next().await, Some(1));
        token.cancel();
        assert_eq!(s.next().await, Some(99));
        assert_eq!(s.next().await, None);

        let mut s = until_shutdown(tokio_stream::iter(1..=2u32), CancellationToken::new(), 99);
        assert_eq!((&mut s).collect::<Vec<_>>().await, vec![1, 2]);
        assert_eq!(s.next().await, None);
    }

    #[test]
    fn the_drain_leaves_the_reserve_of_the_budget() {
        assert_eq!(Budget::new(30).drain(), Duration::from_secs(25));
        assert_eq!(
            Budget::new(MIN_BUDGET_SECONDS).drain(),
            Duration::from_secs(5)
        );
        assert!(FINAL_CHECKPOINT + RUNTIME_STOP <= RESERVE);
    }
}
