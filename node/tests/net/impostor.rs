//! A stand-in for a node's Exchange service: the one hand-written `Exchange` the node's tests
//! serve, on a real node's address with that node's real TLS identity, for the attacks that
//! need a peer that lies (a forged receipt, a downgraded trust space). It answers from what it
//! is given, counts the calls it takes and never checks anything.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tereze_node::proto::exchange_server::{Exchange, ExchangeServer};
use tereze_node::proto::{
    deliver_outcome, AttachmentChunk, AttachmentHeader, AttachmentStatusResponse,
    ChangeSetDocument, DeliverOutcome, DeliverRequest, DeliverResponse, FetchChangeSetsRequest,
    FetchTrustSpaceRequest, FetchTrustSpaceResponse, PutAttachmentResponse, Refusal,
    ResolveTraderRequest, ResolveTraderResponse, ReturnReceiptsRequest, ReturnReceiptsResponse,
};
use tonic::transport::{Certificate, Identity, Server};
use tonic::{Request, Response, Status};

use super::{read, Net};

/// A fake node on a real node's address with its real TLS identity (as a thief of its TLS
/// key would be): it answers every `Deliver` with `receipts` in turn and offers `trust` to
/// whoever asks for a trust space.
#[derive(Clone, Default)]
pub struct Impostor {
    /// The receipts `Deliver` answers with, one call after another, round; none: every item
    /// is refused as transient.
    pub receipts: Arc<Vec<Vec<u8>>>,
    /// The trust space document and version `FetchTrustSpace` answers with.
    pub trust: Arc<(Vec<u8>, u64)>,
    /// `Deliver` calls taken.
    pub delivers: Arc<AtomicU64>,
    /// `FetchTrustSpace` calls taken.
    pub trust_asks: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl Exchange for Impostor {
    async fn deliver(
        &self,
        r: Request<DeliverRequest>,
    ) -> Result<Response<DeliverResponse>, Status> {
        let n = self.delivers.fetch_add(1, Ordering::SeqCst) as usize;
        let outcomes = r
            .into_inner()
            .items
            .into_iter()
            .map(|i| DeliverOutcome {
                message_id: i.route.map(|r| r.message_id).unwrap_or_default(),
                outcome: Some(match self.receipts.get(n % self.receipts.len().max(1)) {
                    Some(r) => deliver_outcome::Outcome::Receipt(r.clone()),
                    None => deliver_outcome::Outcome::Refused(Refusal {
                        code: "x".into(),
                        reason: "x".into(),
                        transient: true,
                    }),
                }),
            })
            .collect();
        Ok(Response::new(DeliverResponse { outcomes }))
    }

    async fn return_receipts(
        &self,
        _: Request<ReturnReceiptsRequest>,
    ) -> Result<Response<ReturnReceiptsResponse>, Status> {
        Ok(Response::new(ReturnReceiptsResponse {
            accepted: Vec::new(),
        }))
    }

    async fn put_attachment(
        &self,
        _: Request<tonic::Streaming<AttachmentChunk>>,
    ) -> Result<Response<PutAttachmentResponse>, Status> {
        Err(Status::unimplemented("the impostor takes no attachments"))
    }

    async fn attachment_status(
        &self,
        _: Request<AttachmentHeader>,
    ) -> Result<Response<AttachmentStatusResponse>, Status> {
        Err(Status::unimplemented("the impostor takes no attachments"))
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
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }

    async fn resolve_trader(
        &self,
        _: Request<ResolveTraderRequest>,
    ) -> Result<Response<ResolveTraderResponse>, Status> {
        Err(Status::not_found("impostor"))
    }
}

/// An impostor being served; [`Running::stop`] closes its connections too (a client's
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

/// Serves `service` on `state`'s Exchange address with `state`'s TLS identity, taking
/// clients of any state of the dev PKI.
pub async fn impersonate(net: &Net, state: &str, service: Impostor) -> Running {
    let mut roots = Vec::new();
    for s in ["KZ", "RU", "BY", "EEC"] {
        roots.extend(read(net, s, "root.pem"));
    }
    let tls = tonic::transport::ServerTlsConfig::new()
        .identity(Identity::from_pem(
            read(net, state, "node-tls.pem"),
            read(net, state, "node-tls.key"),
        ))
        .client_ca_root(Certificate::from_pem(roots));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", net.exchange_port(state)))
        .await
        .expect("bind the impostor");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = Server::builder()
        .tls_config(tls)
        .expect("tls")
        .add_service(ExchangeServer::new(service))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async {
                let _ = stopped.await;
            },
        );
    let task = tokio::spawn(async move {
        let _ = server.await;
    });
    Running { stop, task }
}
