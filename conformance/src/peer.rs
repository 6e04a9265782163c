//! The tester's own node, as far as the cases need one: an `Exchange` server on the address
//! the target's trust space lists for the tester state, with the tester's TLS certificate,
//! answering `ResolveTrader` with whatever answer a case has put up (genuine or forged).
//! Everything else is UNIMPLEMENTED.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

use crate::proto::exchange_server::{Exchange, ExchangeServer};
use crate::proto::{
    AttachmentChunk, AttachmentHeader, AttachmentStatusResponse, PutAttachmentResponse,
};
use crate::proto::{
    ChangeSetDocument, DeliverRequest, DeliverResponse, FetchChangeSetsRequest,
    FetchTrustSpaceRequest, FetchTrustSpaceResponse, ResolveTraderRequest, ResolveTraderResponse,
    ReturnReceiptsRequest, ReturnReceiptsResponse,
};
use crate::{Target, Tester};

/// The answers the tester's node gives, by trader identifier.
#[derive(Clone, Default)]
pub struct Answers(Arc<Mutex<HashMap<String, Vec<u8>>>>);

impl Answers {
    pub fn put(&self, id: &str, answer: Vec<u8>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), answer);
    }

    fn get(&self, id: &str) -> Option<Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}

/// The running server; stops when dropped.
pub struct PeerNode {
    pub answers: Answers,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PeerNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Service {
    answers: Answers,
}

#[tonic::async_trait]
impl Exchange for Service {
    async fn deliver(
        &self,
        _: Request<DeliverRequest>,
    ) -> Result<Response<DeliverResponse>, Status> {
        Err(Status::unimplemented(
            "the conformance suite takes no deliveries",
        ))
    }

    async fn deliver_evidence(
        &self,
        _: Request<crate::proto::DeliverEvidenceRequest>,
    ) -> Result<Response<crate::proto::DeliverEvidenceResponse>, Status> {
        Err(Status::unimplemented(
            "the conformance suite takes no evidence",
        ))
    }

    async fn return_receipts(
        &self,
        _: Request<ReturnReceiptsRequest>,
    ) -> Result<Response<ReturnReceiptsResponse>, Status> {
        Err(Status::unimplemented("not a hub"))
    }

    async fn fetch_trust_space(
        &self,
        _: Request<FetchTrustSpaceRequest>,
    ) -> Result<Response<FetchTrustSpaceResponse>, Status> {
        Ok(Response::new(FetchTrustSpaceResponse {
            document: Vec::new(),
            version: 0,
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

    async fn put_attachment(
        &self,
        _: Request<tonic::Streaming<AttachmentChunk>>,
    ) -> Result<Response<PutAttachmentResponse>, Status> {
        Err(Status::unimplemented(
            "the conformance suite takes no attachments",
        ))
    }

    async fn attachment_status(
        &self,
        _: Request<AttachmentHeader>,
    ) -> Result<Response<AttachmentStatusResponse>, Status> {
        Err(Status::unimplemented(
            "the conformance suite takes no attachments",
        ))
    }

    async fn resolve_trader(
        &self,
        request: Request<ResolveTraderRequest>,
    ) -> Result<Response<ResolveTraderResponse>, Status> {
        let id = request.into_inner().id;
        match self.answers.get(&id) {
            Some(answer) => Ok(Response::new(ResolveTraderResponse { answer })),
            None => Err(Status::not_found(format!("no answer put up for {id}"))),
        }
    }
}

/// Starts the tester's node on `addr`.
pub async fn start(addr: &str, tester: &Tester, target: &Target) -> Result<PeerNode, String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            &tester.tls_cert_pem,
            &tester.tls_key_pem,
        ))
        .client_ca_root(Certificate::from_pem(&target.ca_pem));
    let answers = Answers::default();
    let server = Server::builder()
        .tls_config(tls)
        .map_err(|e| format!("TLS: {e}"))?
        .add_service(ExchangeServer::new(Service {
            answers: answers.clone(),
        }))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    let task = tokio::spawn(async move {
        let _ = server.await;
    });
    Ok(PeerNode { answers, task })
}
