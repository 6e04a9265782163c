//! One stand-in for a node's `Exchange` service, the only hand-written `Exchange` the tests
//! serve: for the node's tests that need a peer that lies (a forged receipt, a downgraded trust
//! space, served on a real node's address with its TLS identity by
//! [`net::impersonate`](crate::net::impersonate)) and for the conformance suite's self-test (a
//! node that recognises whatever parses). It answers from what it is given, counts the calls
//! it takes and checks nothing; the attachment transfers are always UNIMPLEMENTED.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tereze_proto::exchange_server::{Exchange, ExchangeServer};
use tereze_proto::{
    deliver_outcome, AttachmentChunk, AttachmentHeader, AttachmentStatusResponse,
    ChangeSetDocument, DeliverItem, DeliverOutcome, DeliverRequest, DeliverResponse,
    FetchChangeSetsRequest, FetchTrustSpaceRequest, FetchTrustSpaceResponse, PutAttachmentResponse,
    Refusal, ResolveTraderRequest, ResolveTraderResponse, ReturnReceiptsRequest,
    ReturnReceiptsResponse,
};
use tonic::transport::{Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

/// How a [`StubExchange`] answers `Deliver`.
#[derive(Debug, Clone)]
pub enum Deliver {
    /// Every item of a call gets the next of these receipts, one call after another, round;
    /// none: every item is refused as transient.
    InTurn(Vec<Vec<u8>>),
    /// An item whose envelope parses as XML gets this receipt (nothing else is checked); any
    /// other is refused as a malformed envelope, for good.
    WellFormed(Vec<u8>),
}

/// A peer's `Exchange` that answers from its fields. The default refuses every delivery as
/// transient, accepts no returned receipts (but answers), offers an empty trust space at
/// version 0, streams no change sets and knows no trader.
#[derive(Clone)]
pub struct StubExchange {
    /// How `Deliver` answers.
    pub deliver: Arc<Deliver>,
    /// Whether `ReturnReceipts` answers (accepting none), as a hub's would; if not, it is
    /// UNIMPLEMENTED.
    pub takes_receipts: bool,
    /// The trust space document and version `FetchTrustSpace` answers with.
    pub trust: Arc<(Vec<u8>, u64)>,
    /// What `FetchChangeSets` streams, in this order, whatever was asked.
    pub change_sets: Arc<Vec<ChangeSetDocument>>,
    /// What `ResolveTrader` answers, for any identifier; none: NOT_FOUND.
    pub trader_answer: Option<Arc<Vec<u8>>>,
    /// `Deliver` calls taken.
    pub delivers: Arc<AtomicU64>,
    /// `FetchTrustSpace` calls taken.
    pub trust_asks: Arc<AtomicU64>,
}

impl Default for StubExchange {
    fn default() -> Self {
        Self {
            deliver: Arc::new(Deliver::InTurn(Vec::new())),
            takes_receipts: true,
            trust: Arc::default(),
            change_sets: Arc::default(),
            trader_answer: None,
            delivers: Arc::default(),
            trust_asks: Arc::default(),
        }
    }
}

impl StubExchange {
    /// The outcome for `item` in the `call`-th `Deliver` call (from 0).
    fn outcome(&self, call: usize, item: &DeliverItem) -> deliver_outcome::Outcome {
        let refused = |code: &str, reason: &str, transient: bool| {
            deliver_outcome::Outcome::Refused(Refusal {
                code: code.into(),
                reason: reason.into(),
                transient,
            })
        };
        match self.deliver.as_ref() {
            Deliver::InTurn(receipts) => match receipts.get(call % receipts.len().max(1)) {
                Some(r) => deliver_outcome::Outcome::Receipt(r.clone()),
                None => refused("x", "x", true),
            },
            Deliver::WellFormed(receipt) => {
                if tereze_codecs::xml::parse(&item.envelope).is_ok() {
                    deliver_outcome::Outcome::Receipt(receipt.clone())
                } else {
                    refused("malformed-envelope", "not XML", false)
                }
            }
        }
    }
}

#[tonic::async_trait]
impl Exchange for StubExchange {
    async fn deliver(
        &self,
        r: Request<DeliverRequest>,
    ) -> Result<Response<DeliverResponse>, Status> {
        let call = self.delivers.fetch_add(1, Ordering::SeqCst) as usize;
        let outcomes = r
            .into_inner()
            .items
            .into_iter()
            .map(|i| DeliverOutcome {
                outcome: Some(self.outcome(call, &i)),
                message_id: i.route.map(|r| r.message_id).unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(DeliverResponse { outcomes }))
    }

    async fn deliver_evidence(
        &self,
        _: Request<tereze_proto::DeliverEvidenceRequest>,
    ) -> Result<Response<tereze_proto::DeliverEvidenceResponse>, Status> {
        Err(Status::unimplemented("the stub keeps no evidence"))
    }

    async fn return_receipts(
        &self,
        _: Request<ReturnReceiptsRequest>,
    ) -> Result<Response<ReturnReceiptsResponse>, Status> {
        if !self.takes_receipts {
            return Err(Status::unimplemented("not a hub"));
        }
        Ok(Response::new(ReturnReceiptsResponse {
            accepted: Vec::new(),
        }))
    }

    async fn put_attachment(
        &self,
        _: Request<tonic::Streaming<AttachmentChunk>>,
    ) -> Result<Response<PutAttachmentResponse>, Status> {
        Err(Status::unimplemented("the stub takes no attachments"))
    }

    async fn attachment_status(
        &self,
        _: Request<AttachmentHeader>,
    ) -> Result<Response<AttachmentStatusResponse>, Status> {
        Err(Status::unimplemented("the stub takes no attachments"))
    }

    async fn fetch_trust_space(
        &self,
        _: Request<FetchTrustSpaceRequest>,
    ) -> Result<Response<FetchTrustSpaceResponse>, Status> {
        self.trust_asks.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(FetchTrustSpaceResponse {
            document: self.trust.0.clone(),
            version: self.trust.1,
        }))
    }

    type FetchChangeSetsStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<ChangeSetDocument, Status>> + Send>>;

    async fn fetch_change_sets(
        &self,
        _: Request<FetchChangeSetsRequest>,
    ) -> Result<Response<Self::FetchChangeSetsStream>, Status> {
        let sets: Vec<_> = self.change_sets.iter().cloned().map(Ok).collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(sets))))
    }

    async fn resolve_trader(
        &self,
        _: Request<ResolveTraderRequest>,
    ) -> Result<Response<ResolveTraderResponse>, Status> {
        match &self.trader_answer {
            Some(answer) => Ok(Response::new(ResolveTraderResponse {
                answer: answer.to_vec(),
            })),
            None => Err(Status::not_found("the stub knows no traders")),
        }
    }
}

/// A stub being served; [`Running::stop`] closes its connections too (a client's
/// HTTP/2 connection would otherwise outlive the accept loop and keep reaching it).
pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .is_err()
        {
            // Still draining: end it, so that its listener is gone before the port is reused.
            abort.abort();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Running {
    /// Ends it at once, open connections and all.
    pub fn abort(self) {
        self.task.abort();
    }
}

/// Serves `stub` over mutual TLS (`tls`) on `listener` until [`Running::stop`] or
/// [`Running::abort`].
pub fn serve(
    listener: tokio::net::TcpListener,
    tls: ServerTlsConfig,
    stub: StubExchange,
) -> Result<Running, tonic::transport::Error> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = Server::builder()
        .tls_config(tls)?
        .add_service(ExchangeServer::new(stub).max_decoding_message_size(64 << 20))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async {
                let _ = stopped.await;
            },
        );
    let task = tokio::spawn(async move {
        let _ = server.await;
    });
    Ok(Running { stop, task })
}
