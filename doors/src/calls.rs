//! The bound on Window calls in progress (`connections.window_max_calls`): a call over it is
//! answered `RESOURCE_EXHAUSTED` at once, on its own stream, so a burst on one connection
//! costs the client the calls over the bound (which it knows were not taken) instead of the
//! whole connection and every call in flight on it.

use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Semaphore;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;

/// Counters of the Window's calls, for `/metrics`.
#[derive(Debug, Default)]
pub struct CallCounters {
    in_progress: prometheus_client::metrics::gauge::Gauge,
    refused: prometheus_client::metrics::counter::Counter,
}

impl CallCounters {
    /// Registers the Window's calls in progress and refused (help texts without their final
    /// full stop: the registry adds it).
    pub fn register(&self, r: &mut prometheus_client::registry::Registry) {
        r.register(
            "window_calls_in_progress",
            "Window calls being answered now (connections.window_max_calls)",
            self.in_progress.clone(),
        );
        r.register(
            "window_calls_refused",
            "Window calls answered RESOURCE_EXHAUSTED because connections.window_max_calls were in progress",
            self.refused.clone(),
        );
    }
}

/// A gRPC service whose calls in progress are bounded (shared by every connection: the
/// bound is the node's, not a connection's).
#[derive(Clone)]
pub struct Bounded<S> {
    inner: S,
    permits: Arc<Semaphore>,
    counters: Arc<CallCounters>,
}

impl<S> Bounded<S> {
    pub fn new(inner: S, max_calls: usize, counters: Arc<CallCounters>) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(max_calls)),
            counters,
        }
    }
}

impl<S: NamedService> NamedService for Bounded<S> {
    const NAME: &'static str = S::NAME;
}

/// A call holding one of the permits, counted while it lives.
struct InProgress {
    _permit: tokio::sync::OwnedSemaphorePermit,
    counters: Arc<CallCounters>,
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.counters.in_progress.dec();
    }
}

impl<S, B, R> Service<http::Request<B>> for Bounded<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                self.counters.in_progress.inc();
                let call = InProgress {
                    _permit: permit,
                    counters: self.counters.clone(),
                };
                let answer = self.inner.call(request);
                Box::pin(async move {
                    let r = answer.await;
                    drop(call);
                    r
                })
            }
            Err(_) => {
                self.counters.refused.inc();
                let status = tonic::Status::resource_exhausted(
                    "too many Window calls in progress (connections.window_max_calls): not taken, retry later",
                );
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}
