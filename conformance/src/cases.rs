//! The cases, by suite. Each builds what a peer would send, sends it over the protocol and
//! judges the answer; the evidence says what the target answered.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{FixedOffset, Utc};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use tereze_codecs::dsig::{self, SignOptions, SignTarget, SigningKey, TrustStore, VerifyPolicy};
use tereze_codecs::envelope::{
    AttachmentRef, DocumentRef, Envelope, Header, MessageKind, Participant, Version, VERSION,
};
use tereze_codecs::pki::{
    generate_key, issue_certificate, issue_tls_certificate, CertificateSpec, KeyKind,
};
use tereze_codecs::xml;
use tereze_reference_data::trader::{complete, Country};
use tokio_stream::StreamExt;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use uuid::Uuid;

use crate::proto::exchange_client::ExchangeClient;
use crate::proto::{
    deliver_outcome, AttachmentChunk, AttachmentHeader, AttachmentInfo, AttachmentStatusResponse,
    DeliverItem, DeliverOutcome, DeliverRequest, FetchChangeSetsRequest, FetchTrustSpaceRequest,
    PutAttachmentResponse, ResolveTraderRequest, Route,
};
use crate::{CaseInfo, Config, Outcome};

/// The EAEU export declaration every message carries (a grain consignment with its
/// phytosanitary certificate listed).
const BODY: &str = include_str!("../../codecs/samples/eaeu.export-declaration/valid-grain.xml");

/// One mebibyte: the chunk size of the attachment cases (and of a node's default).
const MIB: u64 = 1 << 20;

type Run = for<'a> fn(&'a Ctx) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// A case: what it is, and how to run it.
pub struct Case {
    pub info: CaseInfo,
    pub run: Run,
}

/// What the target answered to one delivered item.
#[derive(Debug, Clone)]
pub enum Answer {
    Receipt {
        verdict: String,
        reasons: Vec<String>,
        bytes: Vec<u8>,
    },
    Forwarded,
    Refused {
        code: String,
        reason: String,
    },
}

impl Answer {
    fn describe(&self) -> String {
        match self {
            Answer::Receipt {
                verdict, reasons, ..
            } if reasons.is_empty() => format!("a receipt with verdict {verdict}"),
            Answer::Receipt {
                verdict, reasons, ..
            } => format!("a receipt with verdict {verdict} ({})", reasons.join(", ")),
            Answer::Forwarded => "an acceptance for forwarding".into(),
            Answer::Refused { code, reason } => format!("a refusal {code}: {reason}"),
        }
    }
}

/// The run's shared state: the configuration and the keys read from it.
pub struct Ctx {
    pub config: Config,
    signer: Result<SigningKey, String>,
    /// The tester's own node (for the target to resolve the tester state's traders).
    pub(crate) peer_node: Result<crate::peer::PeerNode, String>,
}

fn urn(id: Uuid) -> String {
    format!("urn:uuid:{id}")
}

impl Ctx {
    pub fn new(config: Config) -> Self {
        let t = &config.tester;
        let signer = SigningKey::from_pem(&t.signer_key_pem, Some(&t.signer_cert_pem))
            .map_err(|e| format!("the tester's document signer: {e}"));
        Self {
            config,
            signer,
            peer_node: Err(
                "needs --listen: the tester node's address in the target's trust space".into(),
            ),
        }
    }

    /// The tester's node, to put answers up on.
    fn answers(&self) -> Result<&crate::peer::Answers, Outcome> {
        self.peer_node
            .as_ref()
            .map(|p| &p.answers)
            .map_err(|e| Outcome::NotRun { reason: e.clone() })
    }

    /// A `tr:TraderAnswer` about `id` from the tester state (docs/traders.md), signed with
    /// `key`: registered with these (status, from) periods, or not registered.
    fn trader_answer(
        &self,
        id: &str,
        statuses: Option<&[(&str, &str)]>,
        key: &SigningKey,
    ) -> Result<Vec<u8>, Outcome> {
        let mut text = format!(
            "<tr:TraderAnswer xmlns:tr=\"urn:tereze:traders\" Id=\"{id}\" State=\"{}\" AsOf=\"{}\" AnsweredAt=\"{}\" Registered=\"{}\">",
            self.config.tester.state,
            Utc::now().date_naive(),
            Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            statuses.is_some()
        );
        if let Some(list) = statuses {
            text.push_str(
                "<tr:Name>Conformance Trader LLP</tr:Name><tr:Address>Test street 1</tr:Address>",
            );
            for (status, from) in list {
                text.push_str(&format!("<tr:Status From=\"{from}\">{status}</tr:Status>"));
            }
        }
        text.push_str("</tr:TraderAnswer>");
        let mut doc = xml::parse(text.as_bytes()).map_err(|e| Outcome::fail(e.to_string()))?;
        dsig::sign_enveloped(
            &mut doc,
            &SignTarget::Document,
            key,
            &SignOptions::default(),
        )
        .map_err(|e| Outcome::fail(format!("signing the answer: {e}")))?;
        Ok(doc.to_xml().into_bytes())
    }

    /// Puts `answer` up for a fresh tester-state trader and sends a document naming it.
    async fn with_trader_answer(
        &self,
        make: impl FnOnce(&str) -> Result<Vec<u8>, Outcome>,
    ) -> Result<Answer, Outcome> {
        let answers = self.answers()?;
        let id = fresh_trader(&self.config.tester.state).ok_or_else(|| Outcome::NotRun {
            reason: format!("no identifier rule for {}", self.config.tester.state),
        })?;
        answers.put(&id, make(&id)?);
        let mut h = self.header();
        h.traders = vec![id];
        self.send(&h, BODY).await
    }

    fn signer(&self) -> Result<&SigningKey, Outcome> {
        self.signer.as_ref().map_err(|e| Outcome::fail(e.clone()))
    }

    /// A client over TLS with `identity` (none: no client certificate).
    fn client_with(
        &self,
        identity: Option<(&[u8], &[u8])>,
    ) -> Result<ExchangeClient<Channel>, String> {
        Ok(ExchangeClient::new(self.channel_with(identity)?)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20))
    }

    /// A channel over TLS with `identity`.
    fn channel_with(&self, identity: Option<(&[u8], &[u8])>) -> Result<Channel, String> {
        let t = &self.config.target;
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&t.ca_pem))
            .domain_name(t.server_name.clone());
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        let channel = Endpoint::from_shared(format!("https://{}", t.address))
            .map_err(|e| format!("target {}: {e}", t.address))?
            .tls_config(tls)
            .map_err(|e| format!("TLS: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .connect_lazy();
        Ok(channel)
    }

    /// A client with the tester's listed certificate.
    fn peer(&self) -> Result<ExchangeClient<Channel>, Outcome> {
        let t = &self.config.tester;
        self.client_with(Some((&t.tls_cert_pem, &t.tls_key_pem)))
            .map_err(Outcome::fail)
    }

    /// A valid header from the tester state to the target state.
    fn header(&self) -> Header {
        let now = Utc::now().with_timezone(&FixedOffset::east_opt(0).unwrap_or_else(utc));
        let id = Uuid::new_v4();
        let me = &self.config.tester.state;
        Header {
            message_id: id,
            conversation_id: Uuid::new_v4(),
            procedure_id: Uuid::new_v4(),
            in_reply_to: None,
            process: "P.CC.01".into(),
            message: "P.CC.01.MSG.001".into(),
            transaction: "P.CC.01.TRN.001".into(),
            kind: MessageKind::Request,
            sender: Participant {
                country: me.clone(),
                authority: "SW".into(),
            },
            recipient: Participant {
                country: self.config.target.state.clone(),
                authority: "FCS".into(),
            },
            created_at: now,
            expires_at: Some(now + chrono::Duration::days(1)),
            document: DocumentRef {
                type_code: "R.CC.01.001".into(),
                version: "1.0.0".into(),
                issuing_authority: Participant {
                    country: me.clone(),
                    authority: "SW".into(),
                },
            },
            traders: Vec::new(),
            attachments: Vec::new(),
            national_signatures: Vec::new(),
        }
    }

    /// The signed envelope for `header` around `body`, with `key`.
    fn sign_with(
        &self,
        version: Version,
        header: &Header,
        body: &str,
        key: &SigningKey,
    ) -> Result<Vec<u8>, Outcome> {
        let content =
            xml::parse(body.as_bytes()).map_err(|e| Outcome::fail(format!("body: {e}")))?;
        let mut doc = Envelope::build_document(version, header, &content)
            .map_err(|e| Outcome::fail(format!("envelope: {e}")))?;
        dsig::sign_enveloped(
            &mut doc,
            &SignTarget::Document,
            key,
            &SignOptions::default(),
        )
        .map_err(|e| Outcome::fail(format!("signing: {e}")))?;
        Ok(doc.to_xml().into_bytes())
    }

    fn sign(&self, header: &Header, body: &str) -> Result<Vec<u8>, Outcome> {
        self.sign_with(VERSION, header, body, self.signer()?)
    }

    /// The item for `envelope` with a route that matches `header`.
    fn item(&self, header: &Header, envelope: Vec<u8>) -> DeliverItem {
        DeliverItem {
            route: Some(Route {
                message_id: urn(header.message_id),
                conversation_id: urn(header.conversation_id),
                sender: header.sender.country.clone(),
                recipient: self.config.target.state.clone(),
                digest: openssl::sha::sha256(&envelope).to_vec(),
                expires_at_ms: header.expires_at.map_or(0, |e| e.timestamp_millis()),
                attachments: Vec::new(),
            }),
            envelope,
            ..Default::default()
        }
    }

    async fn deliver_items(&self, items: Vec<DeliverItem>) -> Result<Vec<DeliverOutcome>, Outcome> {
        let mut c = self.peer()?;
        c.deliver(DeliverRequest { items })
            .await
            .map(|r| r.into_inner().outcomes)
            .map_err(|s| Outcome::fail(format!("Deliver failed: {:?}: {}", s.code(), s.message())))
    }

    async fn deliver(&self, item: DeliverItem) -> Result<Answer, Outcome> {
        let outcomes = self.deliver_items(vec![item]).await?;
        let Some(o) = outcomes.into_iter().next() else {
            return Err(Outcome::fail("Deliver answered no outcome for the item"));
        };
        answer(o)
    }

    /// Signs `header` around `body` and delivers it.
    async fn send(&self, header: &Header, body: &str) -> Result<Answer, Outcome> {
        let env = self.sign(header, body)?;
        self.deliver(self.item(header, env)).await
    }

    /// The transfer header of attachment `info` of `header`'s message, from the tester state
    /// to the target (the route's digest is unused by a transfer).
    fn attachment_header(&self, header: &Header, info: AttachmentInfo) -> AttachmentHeader {
        let mut route = self.item(header, Vec::new()).route;
        if let Some(r) = route.as_mut() {
            r.digest = Vec::new();
        }
        AttachmentHeader {
            route,
            attachment: Some(info),
        }
    }

    /// Streams `chunks` with `PutAttachment`: the target's answer (a failed call fails the
    /// case, UNIMPLEMENTED included).
    async fn put_attachment(
        &self,
        chunks: Vec<AttachmentChunk>,
    ) -> Result<PutAttachmentResponse, Outcome> {
        let mut c = self.peer()?;
        c.put_attachment(tokio_stream::iter(chunks))
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| {
                Outcome::fail(format!(
                    "PutAttachment failed: {:?}: {}",
                    s.code(),
                    s.message()
                ))
            })
    }

    /// `AttachmentStatus` for `header`.
    async fn attachment_status(
        &self,
        header: &AttachmentHeader,
    ) -> Result<AttachmentStatusResponse, Outcome> {
        let mut c = self.peer()?;
        c.attachment_status(header.clone())
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| {
                Outcome::fail(format!(
                    "AttachmentStatus failed: {:?}: {}",
                    s.code(),
                    s.message()
                ))
            })
    }

    /// Transfers `data` whole, in one stream, as the attachment `info` declares of `header`'s
    /// message; the target's answer.
    async fn transfer(
        &self,
        header: &Header,
        info: AttachmentInfo,
        data: &[u8],
    ) -> Result<PutAttachmentResponse, Outcome> {
        let h = self.attachment_header(header, info);
        self.put_attachment(chunks(&h, data, 0, None)).await
    }

    /// An envelope signed with SHA-1 digests and signature, otherwise valid: made by hand
    /// (codecs never signs with SHA-1) and checked to verify when SHA-1 is allowed.
    fn sha1_signed(&self, header: &Header) -> Result<Vec<u8>, Outcome> {
        use openssl::base64::encode_block;
        use tereze_codecs::c14n::{self, NodeSet};
        let fail = |e: String| Outcome::fail(format!("crafting the SHA-1 signature: {e}"));
        let content = xml::parse(BODY.as_bytes()).map_err(|e| fail(e.to_string()))?;
        let mut doc =
            Envelope::build_document(VERSION, header, &content).map_err(|e| fail(e.to_string()))?;
        dsig::sign_enveloped(
            &mut doc,
            &SignTarget::Document,
            self.signer()?,
            &SignOptions::default(),
        )
        .map_err(|e| fail(e.to_string()))?;
        let find = |doc: &xml::Document, local: &str| {
            doc.descendants_or_self(doc.root())
                .into_iter()
                .find(|&id| {
                    doc.element(id)
                        .is_some_and(|e| e.is(dsig::DSIG_NAMESPACE, local))
                })
                .ok_or_else(|| fail(format!("no ds:{local}")))
        };
        let opts = SignOptions::default().c14n;
        let signature = find(&doc, "Signature")?;
        let signed = c14n::canonicalize(
            &doc,
            NodeSet {
                apex: None,
                exclude: Some(signature),
            },
            &opts,
        );
        let digest = encode_block(&openssl::sha::sha1(&signed));
        let dm = find(&doc, "DigestMethod")?;
        if let Some(e) = doc.element_mut(dm) {
            e.set_attribute("Algorithm", "http://www.w3.org/2000/09/xmldsig#sha1");
        }
        let dv = find(&doc, "DigestValue")?;
        doc.set_text(dv, &digest);
        let key = PKey::private_key_from_pem(&self.config.tester.signer_key_pem)
            .map_err(|e| fail(e.to_string()))?;
        let ec = key.ec_key().ok();
        let sm = find(&doc, "SignatureMethod")?;
        let method = if ec.is_some() {
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1"
        } else {
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
        };
        if let Some(e) = doc.element_mut(sm) {
            e.set_attribute("Algorithm", method);
        }
        let si = find(&doc, "SignedInfo")?;
        let si_bytes = c14n::canonicalize(&doc, NodeSet::subtree(si), &opts);
        let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha1(), &key)
            .map_err(|e| fail(e.to_string()))?;
        let der = signer
            .sign_oneshot_to_vec(&si_bytes)
            .map_err(|e| fail(e.to_string()))?;
        let value = match ec {
            Some(ec) => {
                let width = (ec.group().degree() as i32 + 7) / 8;
                let sig =
                    openssl::ecdsa::EcdsaSig::from_der(&der).map_err(|e| fail(e.to_string()))?;
                let mut raw = sig
                    .r()
                    .to_vec_padded(width)
                    .map_err(|e| fail(e.to_string()))?;
                raw.extend(
                    sig.s()
                        .to_vec_padded(width)
                        .map_err(|e| fail(e.to_string()))?,
                );
                raw
            }
            None => der,
        };
        let sv = find(&doc, "SignatureValue")?;
        doc.set_text(sv, &encode_block(&value));
        let bytes = doc.to_xml().into_bytes();
        // It must be a good signature but for its algorithm.
        let mut trusted = TrustStore::new();
        let anchor = self
            .config
            .tester
            .issuer
            .as_ref()
            .map(|(c, _)| c.as_slice())
            .unwrap_or(&self.config.tester.signer_cert_pem);
        trusted.add_pem(anchor).map_err(|e| fail(e.to_string()))?;
        let check = xml::parse(&bytes).map_err(|e| fail(e.to_string()))?;
        let policy = VerifyPolicy {
            allow_sha1: true,
            ..VerifyPolicy::default()
        };
        dsig::verify(&check, &trusted, &policy)
            .map_err(|e| fail(format!("it does not verify even with SHA-1 allowed: {e}")))?;
        Ok(bytes)
    }

    /// A signer under the tester state's CA valid from/to these days (needs the issuer).
    fn issued_signer(&self, from_days: i64, to_days: i64) -> Result<SigningKey, Outcome> {
        let Some((ca_pem, ca_key_pem)) = &self.config.tester.issuer else {
            return Err(Outcome::NotRun {
                reason: "needs the tester state's CA (--issuer-cert, --issuer-key)".into(),
            });
        };
        let ca = X509::from_pem(ca_pem).map_err(|e| Outcome::fail(format!("issuer: {e}")))?;
        let ca_key: PKey<Private> = PKey::private_key_from_pem(ca_key_pem)
            .map_err(|e| Outcome::fail(format!("issuer key: {e}")))?;
        let key = generate_key(KeyKind::EcP256).map_err(|e| Outcome::fail(e.to_string()))?;
        let me = self.config.tester.state.clone();
        let cert = issue_certificate(
            &CertificateSpec {
                subject: &[("C", &me), ("CN", "conformance signer")],
                not_before_days: from_days,
                not_after_days: to_days,
                is_ca: false,
            },
            &key,
            Some((&ca, &ca_key)),
        )
        .map_err(|e| Outcome::fail(e.to_string()))?;
        SigningKey::new(key, Some(cert)).map_err(|e| Outcome::fail(e.to_string()))
    }
}

fn utc() -> FixedOffset {
    // East 0 is always in range; this is never called.
    FixedOffset::west_opt(0).unwrap_or_else(|| unreachable!("UTC exists"))
}

/// Reads a Deliver outcome.
fn answer(o: DeliverOutcome) -> Result<Answer, Outcome> {
    match o.outcome {
        Some(deliver_outcome::Outcome::Receipt(bytes)) => {
            let doc = xml::parse(&bytes)
                .map_err(|e| Outcome::fail(format!("the receipt is not XML: {e}")))?;
            let ns = "urn:tereze:receipt";
            let mut verdict = None;
            let mut reasons = Vec::new();
            for id in doc.descendants_or_self(doc.root()) {
                let Some(e) = doc.element(id) else { continue };
                if e.is(ns, "Verdict") && verdict.is_none() {
                    verdict = Some(doc.text_content(id));
                } else if e.is(ns, "Reason") {
                    reasons.push(doc.text_content(id));
                }
            }
            let verdict =
                verdict.ok_or_else(|| Outcome::fail("the receipt carries no rc:Verdict"))?;
            Ok(Answer::Receipt {
                verdict,
                reasons,
                bytes,
            })
        }
        Some(deliver_outcome::Outcome::Forwarded(_)) => Ok(Answer::Forwarded),
        Some(deliver_outcome::Outcome::Refused(r)) => Ok(Answer::Refused {
            code: r.code,
            reason: r.reason,
        }),
        None => Err(Outcome::fail("an outcome with nothing in it")),
    }
}

/// `len` bytes that differ from run to run (each case's attachment is its own).
fn attachment_bytes(len: u64) -> Vec<u8> {
    let mut x = (Uuid::new_v4().as_u128() as u64) | 1;
    let mut out = Vec::with_capacity(len as usize + 8);
    while (out.len() as u64) < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len as usize);
    out
}

/// What a transfer (and a route) says of `data` as attachment `id`: its size and SHA-256.
fn attachment_info(id: &str, data: &[u8]) -> AttachmentInfo {
    AttachmentInfo {
        id: id.into(),
        size: data.len() as u64,
        sha256: openssl::sha::sha256(data).to_vec(),
    }
}

/// The chunks of `data` from offset `from`, 1 MiB each, the first with `header`; the chunk at
/// offset `tamper` has a byte flipped after its SHA-256 was taken.
fn chunks(
    header: &AttachmentHeader,
    data: &[u8],
    from: u64,
    tamper: Option<u64>,
) -> Vec<AttachmentChunk> {
    let mut out = Vec::new();
    let mut at = from as usize;
    while at < data.len() {
        let end = (at + MIB as usize).min(data.len());
        let mut bytes = data[at..end].to_vec();
        let sha256 = openssl::sha::sha256(&bytes).to_vec();
        if tamper == Some(at as u64) {
            bytes[7] ^= 0x40;
        }
        out.push(AttachmentChunk {
            header: out.is_empty().then(|| header.clone()),
            offset: at as u64,
            data: bytes,
            sha256,
        });
        at = end;
    }
    out
}

/// Pass when the transfer was stopped with a refusal `code` and, when `have` is given, says
/// it holds that many bytes; `transient` likewise when given.
fn expect_put_refused(
    r: &PutAttachmentResponse,
    code: &str,
    have: Option<u64>,
    transient: Option<bool>,
) -> Result<String, Outcome> {
    let describe = |r: &PutAttachmentResponse| match &r.refused {
        Some(f) => format!(
            "a refusal {} ({}transient, have {}): {}",
            f.code,
            if f.transient { "" } else { "not " },
            r.have,
            f.reason
        ),
        None if r.complete => format!("complete (have {})", r.have),
        None => format!("no refusal and not complete (have {})", r.have),
    };
    let fail = |what: String| {
        Err(Outcome::fail(format!(
            "expected {what}, got {}",
            describe(r)
        )))
    };
    let Some(f) = &r.refused else {
        return fail(format!("a refusal {code}"));
    };
    if f.code != code {
        return fail(format!("a refusal {code}"));
    }
    if r.complete {
        return fail(format!("a refusal {code}, not complete"));
    }
    if let Some(t) = transient {
        if f.transient != t {
            return fail(format!(
                "a {}transient refusal {code}",
                if t { "" } else { "non-" }
            ));
        }
    }
    if let Some(h) = have {
        if r.have != h {
            return fail(format!("a refusal {code} saying {h} bytes are held"));
        }
    }
    Ok(describe(r))
}

/// Fails unless `AttachmentStatus` says `have` bytes held and `complete`.
fn expect_held(s: &AttachmentStatusResponse, have: u64, complete: bool) -> Result<(), Outcome> {
    if (s.have, s.complete) == (have, complete) {
        Ok(())
    } else {
        Err(Outcome::fail(format!(
            "AttachmentStatus: expected have {have}{}, got have {}{}",
            if complete {
                ", complete"
            } else {
                ", not complete"
            },
            s.have,
            if s.complete {
                ", complete"
            } else {
                ", not complete"
            }
        )))
    }
}

/// Fails unless the transfer completed with all `size` bytes.
fn expect_complete(r: &PutAttachmentResponse, size: u64) -> Result<(), Outcome> {
    if r.complete && r.have == size && r.refused.is_none() {
        return Ok(());
    }
    Err(Outcome::fail(match &r.refused {
        Some(f) => format!(
            "expected the transfer to complete ({size} bytes), got a refusal {} (have {}): {}",
            f.code, r.have, f.reason
        ),
        None => format!(
            "expected the transfer to complete ({size} bytes), got have {}{}",
            r.have,
            if r.complete {
                ", complete"
            } else {
                ", not complete"
            }
        ),
    }))
}

/// The signed header's declaration of attachment `id`: `size` bytes with SHA-256 `sha256`.
fn attachment_ref(id: &str, size: u64, sha256: [u8; 32]) -> AttachmentRef {
    AttachmentRef {
        id: id.into(),
        media_type: "application/pdf".into(),
        size,
        sha256,
    }
}

/// Pass when the target recognised it.
fn expect_recognised(a: Result<Answer, Outcome>) -> Outcome {
    match a {
        Err(o) => o,
        Ok(Answer::Receipt {
            verdict, reasons, ..
        }) if verdict == "recognised" && reasons.is_empty() => {
            Outcome::pass("a signed receipt with verdict recognised")
        }
        Ok(other) => Outcome::fail(format!("expected recognised, got {}", other.describe())),
    }
}

/// Pass when the target rejected it with `code` in the receipt.
fn expect_rejected(a: Result<Answer, Outcome>, codes: &[&str]) -> Outcome {
    match a {
        Err(o) => o,
        Ok(Answer::Receipt {
            verdict, reasons, ..
        }) if verdict == "rejected" && reasons.iter().any(|r| codes.contains(&r.as_str())) => {
            Outcome::pass(format!("rejected with {}", reasons.join(", ")))
        }
        Ok(other) => Outcome::fail(format!(
            "expected a rejection with {}, got {}",
            codes.join(" or "),
            other.describe()
        )),
    }
}

/// Pass when the target refused the item (not stored, not judged) with one of `codes`.
fn expect_refused(a: Result<Answer, Outcome>, codes: &[&str]) -> Outcome {
    match a {
        Err(o) => o,
        Ok(Answer::Refused { code, reason })
            if codes.is_empty() || codes.contains(&code.as_str()) =>
        {
            Outcome::pass(format!("refused {code}: {reason}"))
        }
        Ok(other) => Outcome::fail(format!(
            "expected a refusal{}, got {}",
            if codes.is_empty() {
                String::new()
            } else {
                format!(" {}", codes.join(" or "))
            },
            other.describe()
        )),
    }
}

/// Pass when the target did not recognise it: refused, or rejected with one of `codes`.
fn expect_not_recognised(a: Result<Answer, Outcome>, codes: &[&str]) -> Outcome {
    match a {
        Err(o) => o,
        Ok(Answer::Refused { code, reason }) => Outcome::pass(format!("refused {code}: {reason}")),
        Ok(Answer::Receipt {
            verdict, reasons, ..
        }) if verdict == "rejected" && reasons.iter().any(|r| codes.contains(&r.as_str())) => {
            Outcome::pass(format!("rejected with {}", reasons.join(", ")))
        }
        Ok(other) => Outcome::fail(format!(
            "expected a refusal or a rejection with {}, got {}",
            codes.join(" or "),
            other.describe()
        )),
    }
}

/// Pass when the gRPC call failed with `code` (or any failure when `None`).
fn expect_status<T>(r: Result<T, tonic::Status>, code: Option<tonic::Code>) -> Outcome {
    match r {
        Ok(_) => Outcome::fail(format!(
            "expected the call to fail{}, it succeeded",
            code.map(|c| format!(" with {c:?}")).unwrap_or_default()
        )),
        Err(s) if code.is_none_or(|c| s.code() == c) => {
            Outcome::pass(format!("{:?}: {}", s.code(), s.message()))
        }
        Err(s) => Outcome::fail(format!(
            "expected {:?}, got {:?}: {}",
            code.unwrap_or(tonic::Code::Unknown),
            s.code(),
            s.message()
        )),
    }
}

macro_rules! case {
    ($id:literal, $suite:literal, $title:literal, $req:literal, |$ctx:ident| $body:block) => {
        Case {
            info: CaseInfo {
                id: $id,
                suite: $suite,
                title: $title,
                requirement: $req,
            },
            run: |$ctx| Box::pin(async move $body),
        }
    };
}

/// Replaces the first `from` in the signed envelope's text (a change after signing).
fn edit(envelope: &[u8], from: &str, to: &str) -> Result<Vec<u8>, Outcome> {
    let text = String::from_utf8(envelope.to_vec()).map_err(|_| Outcome::fail("not UTF-8"))?;
    if !text.contains(from) {
        return Err(Outcome::fail(format!(
            "the signed envelope has no {from:?} to change"
        )));
    }
    Ok(text.replacen(from, to, 1).into_bytes())
}

/// A valid identifier of `country`'s that its register is unlikely to hold.
fn fresh_trader(country: &str) -> Option<String> {
    let c: Country = country.parse().ok()?;
    // Some bodies have no valid check digit (a KZ BIN whose checksum is 10 both ways):
    // another random serial then.
    (0..100).find_map(|_| {
        let serial = Uuid::new_v4().as_u128() % 100_000;
        let body = match c {
            Country::KZ => format!("250140{serial:05}"),
            Country::RU => format!("77{:07}", serial),
            Country::BY => format!("19{:06}", serial % 1_000_000),
            Country::AM => format!("9{:07}", serial),
            Country::KG => format!("0{:013}", serial),
        };
        complete(c, &body).map(|n| format!("{country}{n}"))
    })
}

/// Every case, in run order.
pub fn all() -> Vec<Case> {
    vec![
        // ---------------------------------------------------------------- transport
        case!("transport.mutual-tls", "transport",
            "A node listed in the trust space is served over mutual TLS",
            "docs/protocol.md#exchange-between-nodes", |ctx| {
            let mut c = match ctx.peer() { Ok(c) => c, Err(o) => return o };
            match c.fetch_trust_space(FetchTrustSpaceRequest { have_version: u64::MAX }).await {
                Ok(r) => Outcome::pass(format!("FetchTrustSpace answered (target's version {})", r.into_inner().version)),
                Err(s) => Outcome::fail(format!("a listed client was refused: {:?}: {}", s.code(), s.message())),
            }
        }),
        case!("transport.no-client-certificate", "transport",
            "A client without a certificate is refused",
            "docs/protocol.md#exchange-between-nodes", |ctx| {
            let mut c = match ctx.client_with(None) { Ok(c) => c, Err(e) => return Outcome::fail(e) };
            expect_status(c.fetch_trust_space(FetchTrustSpaceRequest { have_version: 0 }).await, None)
        }),
        case!("transport.unknown-ca", "transport",
            "A client certificate from a CA outside the trust space is refused",
            "docs/protocol.md#exchange-between-nodes", |ctx| {
            let made = (|| -> Result<(Vec<u8>, Vec<u8>), String> {
                let ca_key = generate_key(KeyKind::EcP256).map_err(|e| e.to_string())?;
                let ca_spec = CertificateSpec { subject: &[("CN", "Rogue CA")], not_before_days: -1, not_after_days: 30, is_ca: true };
                let node_spec = CertificateSpec { subject: &[("CN", "rogue node")], not_before_days: -1, not_after_days: 30, is_ca: false };
                let ca = issue_certificate(&ca_spec, &ca_key, None).map_err(|e| e.to_string())?;
                let key = generate_key(KeyKind::EcP256).map_err(|e| e.to_string())?;
                let cert = issue_tls_certificate(&node_spec, &key, Some((&ca, &ca_key)), &["rogue.test"]).map_err(|e| e.to_string())?;
                Ok((cert.to_pem().map_err(|e| e.to_string())?, key.private_key_to_pem_pkcs8().map_err(|e| e.to_string())?))
            })();
            let (cert, key) = match made { Ok(p) => p, Err(e) => return Outcome::fail(e) };
            let mut c = match ctx.client_with(Some((&cert, &key))) { Ok(c) => c, Err(e) => return Outcome::fail(e) };
            expect_status(c.fetch_trust_space(FetchTrustSpaceRequest { have_version: 0 }).await, None)
        }),
        case!("transport.plaintext-refused", "transport",
            "Plaintext HTTP/2 to the Exchange port is refused",
            "docs/protocol.md#exchange-between-nodes", |ctx| {
            let ep = match Endpoint::from_shared(format!("http://{}", ctx.config.target.address)) { Ok(e) => e, Err(e) => return Outcome::fail(e.to_string()) };
            let mut c = ExchangeClient::new(ep.connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(10)).connect_lazy());
            expect_status(c.fetch_trust_space(FetchTrustSpaceRequest { have_version: 0 }).await, None)
        }),
        case!("transport.unknown-protocol-version", "transport",
            "A call to another protocol version (tereze.v2) is answered UNIMPLEMENTED",
            "docs/protocol.md#exchange-between-nodes", |ctx| {
            let t = &ctx.config.tester;
            let channel = match ctx.channel_with(Some((&t.tls_cert_pem, &t.tls_key_pem))) { Ok(c) => c, Err(e) => return Outcome::fail(e) };
            let mut grpc = tonic::client::Grpc::new(channel);
            if let Err(e) = grpc.ready().await { return Outcome::fail(format!("not ready: {e}")) }
            let path = tonic::codegen::http::uri::PathAndQuery::from_static("/tereze.v2.Exchange/Deliver");
            let r: Result<tonic::Response<crate::proto::DeliverResponse>, _> = grpc
                .unary(tonic::Request::new(DeliverRequest { items: vec![] }), path, tonic_prost::ProstCodec::default())
                .await;
            expect_status(r, Some(tonic::Code::Unimplemented))
        }),
        case!("transport.identity-bound-to-state", "transport",
            "An item whose route names another sender state than the caller's is refused",
            "docs/protocol.md#deliverdeliverrequest--deliverresponse", |ctx| {
            let mut h = ctx.header();
            let other = if ctx.config.target.state == "KG" || ctx.config.tester.state == "KG" { "AM" } else { "KG" };
            h.sender.country = other.into();
            h.document.issuing_authority.country = other.into();
            let env = match ctx.sign(&h, BODY) { Ok(e) => e, Err(o) => return o };
            expect_refused(ctx.deliver(ctx.item(&h, env)).await, &["not-authorised", "unknown-sender"])
        }),
        // ---------------------------------------------------------------- envelope
        case!("envelope.valid", "envelope",
            "A valid signed envelope gets a signed receipt: recognised",
            "docs/recognition.md", |ctx| {
            expect_recognised(ctx.send(&ctx.header(), BODY).await)
        }),
        case!("envelope.newer-minor-version", "envelope",
            "An envelope of a newer minor version (1.9) is read",
            "docs/protocol.md", |ctx| {
            let h = ctx.header();
            let signer = match ctx.signer() { Ok(s) => s, Err(o) => return o };
            let env = match ctx.sign_with(Version { major: 1, minor: 9 }, &h, BODY, signer) { Ok(e) => e, Err(o) => return o };
            expect_recognised(ctx.deliver(ctx.item(&h, env)).await)
        }),
        case!("envelope.unknown-major-version", "envelope",
            "An envelope of an unknown major version (2.0) is refused",
            "docs/protocol.md", |ctx| {
            let h = ctx.header();
            let signer = match ctx.signer() { Ok(s) => s, Err(o) => return o };
            let env = match ctx.sign_with(Version { major: 2, minor: 0 }, &h, BODY, signer) { Ok(e) => e, Err(o) => return o };
            expect_refused(ctx.deliver(ctx.item(&h, env)).await, &["malformed-envelope"])
        }),
        case!("envelope.missing-message-id", "envelope",
            "An envelope without its MessageID is refused",
            "docs/protocol.md", |ctx| {
            let h = ctx.header();
            let env = match ctx.sign(&h, BODY) { Ok(e) => e, Err(o) => return o };
            let text = String::from_utf8_lossy(&env).into_owned();
            let (Some(a), Some(b)) = (text.find("<wsa:MessageID"), text.find("</wsa:MessageID>")) else {
                return Outcome::fail("the signed envelope has no wsa:MessageID to remove");
            };
            let env = format!("{}{}", &text[..a], &text[b + "</wsa:MessageID>".len()..]).into_bytes();
            expect_refused(ctx.deliver(ctx.item(&h, env)).await, &["malformed-envelope"])
        }),
        case!("envelope.not-well-formed", "envelope",
            "Bytes that are not well-formed XML are refused",
            "docs/xml-security.md", |ctx| {
            let h = ctx.header();
            expect_refused(ctx.deliver(ctx.item(&h, b"<env:Envelope><unclosed>".to_vec())).await, &["malformed-envelope"])
        }),
        case!("envelope.doctype", "envelope",
            "An envelope with a DOCTYPE (entities, XXE) is refused",
            "docs/xml-security.md", |ctx| {
            let h = ctx.header();
            let bytes = b"<?xml version=\"1.0\"?><!DOCTYPE e [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><e>&x;</e>".to_vec();
            expect_refused(ctx.deliver(ctx.item(&h, bytes)).await, &["malformed-envelope"])
        }),
        case!("envelope.oversize", "envelope",
            "An envelope over the size limit (8 MiB sent; the default limit is 4 MiB) is refused",
            "docs/config.md#limits", |ctx| {
            let h = ctx.header();
            let mut big = b"<e>".to_vec();
            big.resize(8 << 20, b'a');
            big.extend_from_slice(b"</e>");
            expect_refused(ctx.deliver(ctx.item(&h, big)).await, &["oversize"])
        }),
        case!("envelope.bad-digest", "envelope",
            "An item whose route digest is not the SHA-256 of its envelope is refused",
            "docs/protocol.md#deliverdeliverrequest--deliverresponse", |ctx| {
            let h = ctx.header();
            let env = match ctx.sign(&h, BODY) { Ok(e) => e, Err(o) => return o };
            let mut item = ctx.item(&h, env);
            if let Some(r) = item.route.as_mut() { r.digest = vec![0; 32]; }
            expect_refused(ctx.deliver(item).await, &[])
        }),
        case!("envelope.batch-too-large", "envelope",
            "A Deliver call over any batch limit (10,001 items) is refused whole",
            "docs/config.md#limits", |ctx| {
            let h = ctx.header();
            let items: Vec<DeliverItem> = (0..10_001).map(|_| ctx.item(&h, b"<e/>".to_vec())).collect();
            let mut c = match ctx.peer() { Ok(c) => c, Err(o) => return o };
            expect_status(c.deliver(DeliverRequest { items }).await, Some(tonic::Code::InvalidArgument))
        }),
        case!("envelope.route-mismatch", "envelope",
            "An item whose route names another message than the signed header is not recognised",
            "docs/recognition.md", |ctx| {
            let h = ctx.header();
            let env = match ctx.sign(&h, BODY) { Ok(e) => e, Err(o) => return o };
            let mut item = ctx.item(&h, env);
            if let Some(r) = item.route.as_mut() { r.message_id = urn(Uuid::new_v4()); }
            expect_not_recognised(ctx.deliver(item).await, &["route-mismatch"])
        }),
        // ---------------------------------------------------------------- signature
        case!("signature.receipt-signed", "signature",
            "The receipt is signed by the target state and verifies against its anchor",
            "docs/receipts.md", |ctx| {
            let a = match ctx.send(&ctx.header(), BODY).await { Ok(a) => a, Err(o) => return o };
            let Answer::Receipt { bytes, .. } = a else { return Outcome::fail(format!("expected a receipt, got {}", a.describe())) };
            let mut anchors = TrustStore::new();
            if let Err(e) = anchors.add_pem(&ctx.config.target.ca_pem) { return Outcome::fail(format!("--ca: {e}")) }
            let doc = match xml::parse(&bytes) { Ok(d) => d, Err(e) => return Outcome::fail(e.to_string()) };
            match dsig::verify(&doc, &anchors, &VerifyPolicy::default()) {
                Ok(v) => Outcome::pass(format!("receipt signed by {}", v.signer.subject)),
                Err(e) => Outcome::fail(format!("the receipt's signature does not verify: {e}")),
            }
        }),
        case!("signature.tampered-body", "signature",
            "An envelope changed after signing is not recognised",
            "docs/recognition.md", |ctx| {
            let h = ctx.header();
            let env = match ctx.sign(&h, BODY) { Ok(e) => e, Err(o) => return o };
            let env = match edit(&env, "Ячмень", "Пшеница") { Ok(e) => e, Err(o) => return o };
            expect_not_recognised(ctx.deliver(ctx.item(&h, env)).await, &["signature-invalid"])
        }),
        case!("signature.missing", "signature",
            "An unsigned envelope is not recognised",
            "docs/recognition.md", |ctx| {
            let h = ctx.header();
            let content = match xml::parse(BODY.as_bytes()) { Ok(c) => c, Err(e) => return Outcome::fail(e.to_string()) };
            let doc = match Envelope::build_document(VERSION, &h, &content) { Ok(d) => d, Err(e) => return Outcome::fail(e.to_string()) };
            expect_not_recognised(ctx.deliver(ctx.item(&h, doc.to_xml().into_bytes())).await, &["signature-invalid"])
        }),
        case!("signature.xsw-duplicate-id", "signature",
            "Signature wrapping: a second element with the signed Id is not recognised",
            "docs/xml-security.md", |ctx| {
            let h = ctx.header();
            let env = match ctx.sign(&h, BODY) { Ok(e) => e, Err(o) => return o };
            let env = match edit(&env, "<ccdo:PermitDocument Id=\"phyto-ref\">", "<ccdo:PermitDocument Id=\"phyto-ref\"><x Id=\"phyto-ref\"/>") { Ok(e) => e, Err(o) => return o };
            expect_not_recognised(ctx.deliver(ctx.item(&h, env)).await, &["signature-invalid"])
        }),
        case!("signature.xsw-wrapped-in-object", "signature",
            "Signature wrapping: the signed content moved into ds:Object and replaced is not recognised",
            "docs/xml-security.md", |ctx| {
            let h = ctx.header();
            let env = match ctx.sign(&h, BODY) { Ok(e) => e, Err(o) => return o };
            let text = String::from_utf8_lossy(&env).into_owned();
            let Some(sig_end) = text.rfind("</ds:Signature>") else { return Outcome::fail("no ds:Signature") };
            let wrapped = format!("{}<ds:Object>{}</ds:Object>{}", &text[..sig_end], "<env:Body/>", &text[sig_end..]);
            let wrapped = wrapped.replacen("Ячмень", "Пшеница", 1);
            expect_not_recognised(ctx.deliver(ctx.item(&h, wrapped.into_bytes())).await, &["signature-invalid"])
        }),
        case!("signature.unknown-transform", "signature",
            "A reference with an unknown transform is not recognised",
            "docs/xml-security.md", |ctx| {
            let h = ctx.header();
            let env = match ctx.sign(&h, BODY) { Ok(e) => e, Err(o) => return o };
            let env = match edit(&env, "Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"", "Algorithm=\"urn:example:unknown-transform\"") { Ok(e) => e, Err(o) => return o };
            expect_not_recognised(ctx.deliver(ctx.item(&h, env)).await, &["signature-invalid"])
        }),
        case!("signature.sha1", "signature",
            "A signature valid but made with SHA-1 (digest and signature) is not recognised",
            "docs/algorithms.md", |ctx| {
            let h = ctx.header();
            let env = match ctx.sha1_signed(&h) { Ok(e) => e, Err(o) => return o };
            expect_not_recognised(ctx.deliver(ctx.item(&h, env)).await, &["signature-invalid"])
        }),
        case!("signature.partial", "signature",
            "Signature wrapping: a valid signature over one element, not the envelope, is not recognised",
            "docs/xml-security.md", |ctx| {
            let h = ctx.header();
            let signer = match ctx.signer() { Ok(s) => s, Err(o) => return o };
            let content = match xml::parse(BODY.as_bytes()) { Ok(c) => c, Err(e) => return Outcome::fail(e.to_string()) };
            let mut doc = match Envelope::build_document(VERSION, &h, &content) { Ok(d) => d, Err(e) => return Outcome::fail(e.to_string()) };
            if let Err(e) = dsig::sign_enveloped(&mut doc, &SignTarget::Id("phyto-ref".into()), signer, &SignOptions::default()) {
                return Outcome::fail(format!("signing the permit element: {e}"));
            }
            expect_not_recognised(ctx.deliver(ctx.item(&h, doc.to_xml().into_bytes())).await, &["signature-invalid"])
        }),
        case!("signature.untrusted-signer", "signature",
            "A signer that does not chain to the sender state's anchor is rejected: chain-untrusted",
            "docs/recognition.md", |ctx| {
            let made = (|| -> Result<SigningKey, String> {
                let key = generate_key(KeyKind::EcP256).map_err(|e| e.to_string())?;
                let cert = issue_certificate(&CertificateSpec { subject: &[("CN", "self-made signer")], not_before_days: -1, not_after_days: 30, is_ca: false }, &key, None).map_err(|e| e.to_string())?;
                SigningKey::new(key, Some(cert)).map_err(|e| e.to_string())
            })();
            let key = match made { Ok(k) => k, Err(e) => return Outcome::fail(e) };
            let h = ctx.header();
            let env = match ctx.sign_with(VERSION, &h, BODY, &key) { Ok(e) => e, Err(o) => return o };
            expect_rejected(ctx.deliver(ctx.item(&h, env)).await, &["chain-untrusted"])
        }),
        case!("signature.expired-signer", "signature",
            "A signer whose certificate expired before the signing time is rejected: certificate-not-valid",
            "docs/recognition.md", |ctx| {
            let key = match ctx.issued_signer(-10, -1) { Ok(k) => k, Err(o) => return o };
            let h = ctx.header();
            let env = match ctx.sign_with(VERSION, &h, BODY, &key) { Ok(e) => e, Err(o) => return o };
            expect_rejected(ctx.deliver(ctx.item(&h, env)).await, &["certificate-not-valid"])
        }),
        case!("signature.not-yet-valid-signer", "signature",
            "A signer whose certificate is not yet valid at the signing time is rejected: certificate-not-valid",
            "docs/recognition.md", |ctx| {
            let key = match ctx.issued_signer(2, 10) { Ok(k) => k, Err(o) => return o };
            let h = ctx.header();
            let env = match ctx.sign_with(VERSION, &h, BODY, &key) { Ok(e) => e, Err(o) => return o };
            expect_rejected(ctx.deliver(ctx.item(&h, env)).await, &["certificate-not-valid"])
        }),
        // ---------------------------------------------------------------- recognition
        case!("recognition.sender-mismatch", "recognition",
            "A signed sender other than the route's is not recognised: sender-mismatch",
            "docs/recognition.md", |ctx| {
            let mut h = ctx.header();
            let env_sender = ctx.config.target.state.clone();
            h.sender.country = env_sender;
            let env = match ctx.sign(&h, BODY) { Ok(e) => e, Err(o) => return o };
            let mut item = ctx.item(&h, env);
            if let Some(r) = item.route.as_mut() { r.sender = ctx.config.tester.state.clone(); }
            expect_not_recognised(ctx.deliver(item).await, &["sender-mismatch"])
        }),
        case!("recognition.recipient-mismatch", "recognition",
            "A signed recipient other than the target's state is rejected: recipient-mismatch",
            "docs/recognition.md", |ctx| {
            let mut h = ctx.header();
            h.recipient.country = ctx.config.tester.state.clone();
            expect_not_recognised(ctx.send(&h, BODY).await, &["recipient-mismatch"])
        }),
        case!("recognition.signing-time-in-future", "recognition",
            "A signing time an hour ahead is rejected: signing-time-in-future",
            "docs/recognition.md", |ctx| {
            let mut h = ctx.header();
            h.created_at += chrono::Duration::hours(1);
            h.expires_at = Some(h.created_at + chrono::Duration::days(1));
            expect_rejected(ctx.send(&h, BODY).await, &["signing-time-in-future"])
        }),
        case!("recognition.document-expired", "recognition",
            "A document whose expiry passed is rejected: document-expired",
            "docs/recognition.md", |ctx| {
            let mut h = ctx.header();
            h.created_at -= chrono::Duration::hours(2);
            h.expires_at = Some(h.created_at + chrono::Duration::hours(1));
            let env = match ctx.sign(&h, BODY) { Ok(e) => e, Err(o) => return o };
            let mut item = ctx.item(&h, env);
            if let Some(r) = item.route.as_mut() { r.expires_at_ms = 0; }
            expect_not_recognised(ctx.deliver(item).await, &["document-expired"])
        }),
        case!("recognition.process-not-permitted", "recognition",
            "A common process the sender state may not use is rejected: process-not-permitted",
            "docs/recognition.md", |ctx| {
            let mut h = ctx.header();
            h.process = "P.ZZ.01".into();
            h.message = "P.ZZ.01.MSG.001".into();
            h.transaction = "P.ZZ.01.TRN.001".into();
            expect_rejected(ctx.send(&h, BODY).await, &["process-not-permitted"])
        }),
        case!("recognition.document-type-unknown", "recognition",
            "A document type with no model or no recognition agreement is rejected",
            "docs/recognition.md", |ctx| {
            let mut h = ctx.header();
            h.document.type_code = "R.ZZ.01.001".into();
            expect_rejected(ctx.send(&h, BODY).await, &["document-type-unknown", "document-not-recognised"])
        }),
        case!("recognition.document-invalid", "recognition",
            "A document with a code outside its classifier is rejected: document-invalid",
            "docs/recognition.md", |ctx| {
            let body = BODY.replacen(">KZ<", ">ZZ<", 1);
            expect_rejected(ctx.send(&ctx.header(), &body).await, &["document-invalid"])
        }),
        case!("recognition.permits-missing", "recognition",
            "Goods without the permit the integrated tariff requires are rejected: permits-missing",
            "docs/reference-data.md#the-integrated-tariff", |ctx| {
            let body = BODY.replacen(">01011<", ">02014<", 1);
            expect_rejected(ctx.send(&ctx.header(), &body).await, &["permits-missing"])
        }),
        case!("recognition.trader-invalid", "recognition",
            "A trader identifier with a wrong check digit is rejected: trader-invalid",
            "docs/traders.md", |ctx| {
            let Some(good) = fresh_trader("RU") else { return Outcome::fail("cannot make an identifier") };
            let last = good.as_bytes()[good.len() - 1] - b'0';
            let mut h = ctx.header();
            h.traders = vec![format!("{}{}", &good[..good.len() - 1], (last + 1) % 10)];
            expect_rejected(ctx.send(&h, BODY).await, &["trader-invalid"])
        }),
        case!("recognition.trader-unknown", "recognition",
            "A valid identifier the target state's register does not hold is rejected: trader-unknown",
            "docs/traders.md", |ctx| {
            let Some(id) = fresh_trader(&ctx.config.target.state) else {
                return Outcome::NotRun { reason: format!("no identifier rule for {}", ctx.config.target.state) };
            };
            let mut h = ctx.header();
            h.traders = vec![id];
            expect_rejected(ctx.send(&h, BODY).await, &["trader-unknown"])
        }),
        // ---------------------------------------------------------------- reliability
        case!("reliability.duplicate-returns-first-receipt", "reliability",
            "Delivering the same message again returns the first receipt, byte for byte",
            "docs/protocol.md#deliverdeliverrequest--deliverresponse", |ctx| {
            let h = ctx.header();
            let env = match ctx.sign(&h, BODY) { Ok(e) => e, Err(o) => return o };
            let first = match ctx.deliver(ctx.item(&h, env.clone())).await { Ok(a) => a, Err(o) => return o };
            let second = match ctx.deliver(ctx.item(&h, env)).await { Ok(a) => a, Err(o) => return o };
            match (first, second) {
                (Answer::Receipt { bytes: a, .. }, Answer::Receipt { bytes: b, .. }) if a == b => Outcome::pass(format!("the same {}-byte receipt twice", a.len())),
                (Answer::Receipt { .. }, Answer::Receipt { .. }) => Outcome::fail("a different receipt the second time"),
                (a, b) => Outcome::fail(format!("expected two receipts, got {} and {}", a.describe(), b.describe())),
            }
        }),
        case!("reliability.retry-after-timeout", "reliability",
            "A delivery abandoned by the sender and retried yields one message and one receipt",
            "docs/protocol.md#deliverdeliverrequest--deliverresponse", |ctx| {
            let h = ctx.header();
            let env = match ctx.sign(&h, BODY) { Ok(e) => e, Err(o) => return o };
            // The first attempt is abandoned almost at once (as a sender's timeout would).
            let _ = tokio::time::timeout(Duration::from_millis(2), ctx.deliver(ctx.item(&h, env.clone()))).await;
            let a = match ctx.deliver(ctx.item(&h, env.clone())).await { Ok(a) => a, Err(o) => return o };
            let b = match ctx.deliver(ctx.item(&h, env)).await { Ok(a) => a, Err(o) => return o };
            match (a, b) {
                (Answer::Receipt { bytes: x, verdict, .. }, Answer::Receipt { bytes: y, .. }) if x == y => Outcome::pass(format!("one receipt ({verdict}) after the retry")),
                (a, b) => Outcome::fail(format!("expected the same receipt twice, got {} and {}", a.describe(), b.describe())),
            }
        }),
        case!("reliability.concurrent-duplicates", "reliability",
            "The same message delivered on two connections at once gets one receipt",
            "docs/protocol.md#deliverdeliverrequest--deliverresponse", |ctx| {
            let h = ctx.header();
            let env = match ctx.sign(&h, BODY) { Ok(e) => e, Err(o) => return o };
            let (a, b) = tokio::join!(ctx.deliver(ctx.item(&h, env.clone())), ctx.deliver(ctx.item(&h, env)));
            match (a, b) {
                (Ok(Answer::Receipt { bytes: x, .. }), Ok(Answer::Receipt { bytes: y, .. })) if x == y => Outcome::pass("one receipt for both"),
                (Ok(a), Ok(b)) => Outcome::fail(format!("got {} and {}", a.describe(), b.describe())),
                (Err(o), _) | (_, Err(o)) => o,
            }
        }),
        case!("reliability.batch-outcome-per-item", "reliability",
            "In one batch each item gets its own outcome: good ones a receipt, a bad one a refusal",
            "docs/protocol.md#deliverdeliverrequest--deliverresponse", |ctx| {
            let (h1, h2) = (ctx.header(), ctx.header());
            let (e1, e2) = match (ctx.sign(&h1, BODY), ctx.sign(&h2, BODY)) { (Ok(a), Ok(b)) => (a, b), (Err(o), _) | (_, Err(o)) => return o };
            let bad = ctx.item(&ctx.header(), b"<not-an-envelope/>".to_vec());
            let outcomes = match ctx.deliver_items(vec![ctx.item(&h1, e1), bad, ctx.item(&h2, e2)]).await { Ok(o) => o, Err(o) => return o };
            let answers: Vec<Answer> = match outcomes.into_iter().map(answer).collect() { Ok(a) => a, Err(o) => return o };
            match answers.as_slice() {
                [Answer::Receipt { .. }, Answer::Refused { .. }, Answer::Receipt { .. }] => Outcome::pass("receipt, refusal, receipt"),
                other => Outcome::fail(format!("got {}", other.iter().map(Answer::describe).collect::<Vec<_>>().join("; "))),
            }
        }),
        // ---------------------------------------------------------------- attachments
        case!("attachments.tampered-chunk-refused-and-re-requested", "attachments",
            "A chunk whose bytes do not match its SHA-256 is refused (chunk-digest-mismatch, transient), the chunks before it kept, and the transfer resumes from there",
            "docs/attachments.md#putattachment-refusals", |ctx| {
            let data = attachment_bytes(3 * MIB);
            let att = ctx.attachment_header(&ctx.header(), attachment_info("scan", &data));
            let first = match ctx.put_attachment(chunks(&att, &data, 0, Some(MIB))).await { Ok(r) => r, Err(o) => return o };
            let said = match expect_put_refused(&first, "chunk-digest-mismatch", Some(MIB), Some(true)) { Ok(s) => s, Err(o) => return o };
            match ctx.attachment_status(&att).await { Ok(s) => if let Err(o) = expect_held(&s, MIB, false) { return o }, Err(o) => return o }
            let done = match ctx.put_attachment(chunks(&att, &data, MIB, None)).await { Ok(r) => r, Err(o) => return o };
            if let Err(o) = expect_complete(&done, 3 * MIB) { return o }
            match ctx.attachment_status(&att).await { Ok(s) => if let Err(o) = expect_held(&s, 3 * MIB, true) { return o }, Err(o) => return o }
            Outcome::pass(format!("{said}; AttachmentStatus said {MIB} held; resent from there: complete, {} bytes", 3 * MIB))
        }),
        case!("attachments.wrong-offset-refused", "attachments",
            "A transfer that begins anywhere but at the bytes held (behind or ahead) is refused: offset-mismatch, with the bytes held",
            "docs/attachments.md#resumption", |ctx| {
            let data = attachment_bytes(3 * MIB);
            let att = ctx.attachment_header(&ctx.header(), attachment_info("scan", &data));
            // The first chunk only: the stream ends early, as a sender that went away.
            let mut part = chunks(&att, &data, 0, None);
            part.truncate(1);
            let first = match ctx.put_attachment(part).await { Ok(r) => r, Err(o) => return o };
            if first.complete || first.have != MIB {
                return Outcome::fail(format!("after a stream of one 1 MiB chunk of 3 MiB, expected {MIB} bytes held and not complete, got have {}{}", first.have, if first.complete { ", complete" } else { "" }));
            }
            match ctx.attachment_status(&att).await { Ok(s) => if let Err(o) = expect_held(&s, MIB, false) { return o }, Err(o) => return o }
            let mut said = Vec::new();
            for from in [0, 2 * MIB] {
                let r = match ctx.put_attachment(chunks(&att, &data, from, None)).await { Ok(r) => r, Err(o) => return o };
                match expect_put_refused(&r, "offset-mismatch", Some(MIB), None) {
                    Ok(s) => said.push(format!("from {from}: {s}")),
                    Err(Outcome::Fail { message }) => return Outcome::fail(format!("a stream from {from} with {MIB} held: {message}")),
                    Err(o) => return o,
                }
            }
            let done = match ctx.put_attachment(chunks(&att, &data, MIB, None)).await { Ok(r) => r, Err(o) => return o };
            if let Err(o) = expect_complete(&done, 3 * MIB) { return o }
            Outcome::pass(format!("{}; from {MIB}: complete", said.join("; ")))
        }),
        case!("attachments.digest-mismatch-discarded", "attachments",
            "Bytes whose SHA-256 is not the one the transfer declared are refused (digest-mismatch) and discarded",
            "docs/attachments.md#putattachment-refusals", |ctx| {
            let data = attachment_bytes(2 * MIB);
            let mut lie = attachment_info("scan", &data);
            lie.sha256[0] ^= 1;
            let att = ctx.attachment_header(&ctx.header(), lie);
            let r = match ctx.put_attachment(chunks(&att, &data, 0, None)).await { Ok(r) => r, Err(o) => return o };
            let said = match expect_put_refused(&r, "digest-mismatch", None, None) { Ok(s) => s, Err(o) => return o };
            match ctx.attachment_status(&att).await { Ok(s) => if let Err(o) = expect_held(&s, 0, false) { return o }, Err(o) => return o }
            Outcome::pass(format!("{said}; AttachmentStatus then said 0 held"))
        }),
        case!("attachments.forged-digest-rejected", "attachments",
            "An envelope whose signed header declares another SHA-256 than the bytes transferred for it is rejected: attachment-digest-mismatch",
            "docs/recognition.md", |ctx| {
            let data = attachment_bytes(MIB + 1234);
            let info = attachment_info("scan", &data);
            let mut h = ctx.header();
            match ctx.transfer(&h, info.clone(), &data).await {
                Ok(r) => if let Err(o) = expect_complete(&r, data.len() as u64) { return o },
                Err(o) => return o,
            }
            let mut sha = openssl::sha::sha256(&data);
            sha[31] ^= 0x80;
            h.attachments = vec![attachment_ref("scan", data.len() as u64, sha)];
            let env = match ctx.sign(&h, BODY) { Ok(e) => e, Err(o) => return o };
            let mut item = ctx.item(&h, env);
            if let Some(r) = item.route.as_mut() { r.attachments = vec![info]; }
            expect_rejected(ctx.deliver(item).await, &["attachment-digest-mismatch"])
        }),
        case!("attachments.undeclared-transfer-not-enough", "attachments",
            "A Deliver whose route lists an attachment that was not transferred is refused for now: attachments-incomplete, transient",
            "docs/protocol.md#deliverdeliverrequest--deliverresponse", |ctx| {
            let data = attachment_bytes(4096);
            let info = attachment_info("annex", &data);
            let mut h = ctx.header();
            h.attachments = vec![attachment_ref("annex", data.len() as u64, openssl::sha::sha256(&data))];
            let env = match ctx.sign(&h, BODY) { Ok(e) => e, Err(o) => return o };
            let mut item = ctx.item(&h, env);
            if let Some(r) = item.route.as_mut() { r.attachments = vec![info]; }
            let outcomes = match ctx.deliver_items(vec![item]).await { Ok(o) => o, Err(o) => return o };
            let Some(o) = outcomes.into_iter().next() else { return Outcome::fail("Deliver answered no outcome for the item") };
            match o.outcome {
                Some(deliver_outcome::Outcome::Refused(r)) if r.code == "attachments-incomplete" && r.transient => Outcome::pass(format!("refused {} (transient): {}", r.code, r.reason)),
                Some(deliver_outcome::Outcome::Refused(r)) if r.code == "attachments-incomplete" => Outcome::fail(format!("refused attachments-incomplete but not transient: {}", r.reason)),
                other => match answer(DeliverOutcome { message_id: o.message_id, outcome: other }) {
                    Ok(a) => Outcome::fail(format!("expected a transient refusal attachments-incomplete, got {}", a.describe())),
                    Err(o) => o,
                },
            }
        }),
        case!("attachments.declared-never-sent", "attachments",
            "An envelope whose signed header declares an attachment never transferred (the route lists none) is rejected: attachment-missing",
            "docs/recognition.md", |ctx| {
            let mut h = ctx.header();
            h.attachments = vec![attachment_ref("annex", 10, [1; 32])];
            expect_rejected(ctx.send(&h, BODY).await, &["attachment-missing"])
        }),
        // ---------------------------------------------------------------- reference
        case!("reference.change-sets-in-order", "reference",
            "FetchChangeSets streams signed change sets in (directory, number) order, consecutive per directory",
            "docs/reference-data.md#change-sets", |ctx| {
            let mut c = match ctx.peer() { Ok(c) => c, Err(o) => return o };
            let mut stream = match c.fetch_change_sets(FetchChangeSetsRequest { have: Default::default(), limit: 0 }).await {
                Ok(s) => s.into_inner(), Err(s) => return Outcome::fail(format!("{:?}: {}", s.code(), s.message())),
            };
            let mut last: Option<(String, u64)> = None;
            let mut n = 0;
            while let Some(item) = stream.next().await {
                let item = match item { Ok(i) => i, Err(s) => return Outcome::fail(s.message().to_owned()) };
                let doc = match xml::parse(&item.document) { Ok(d) => d, Err(e) => return Outcome::fail(format!("{} #{}: {e}", item.directory, item.number)) };
                let root = doc.element(doc.root());
                let attrs = root.map(|e| (e.attribute("Directory").map(str::to_owned), e.attribute("Number").map(str::to_owned)));
                if attrs != Some((Some(item.directory.clone()), Some(item.number.to_string()))) {
                    return Outcome::fail(format!("{} #{}: the document says otherwise", item.directory, item.number));
                }
                if let Some((d, k)) = &last {
                    let ok = (d == &item.directory && item.number == k + 1) || (d < &item.directory && item.number == 1);
                    if !ok { return Outcome::fail(format!("{d} #{k} followed by {} #{}", item.directory, item.number)); }
                } else if item.number != 1 {
                    return Outcome::fail(format!("the first set is {} #{}", item.directory, item.number));
                }
                last = Some((item.directory, item.number));
                n += 1;
            }
            Outcome::pass(format!("{n} change sets in order"))
        }),
        case!("reference.code-ended-before-the-document", "reference",
            "A code that ended before the document's date (the kuna, HRK, after 2022-12-31) is rejected: document-invalid",
            "docs/reference-data.md#directories", |ctx| {
            let body = BODY.replacen("currencyCode=\"USD\"", "currencyCode=\"HRK\"", 1);
            if body == BODY { return Outcome::fail("the sample has no USD amount to change") }
            expect_rejected(ctx.send(&ctx.header(), &body).await, &["document-invalid"])
        }),
        case!("reference.nothing-newer", "reference",
            "FetchChangeSets after the newest version of every directory streams nothing",
            "docs/reference-data.md#change-sets", |ctx| {
            let mut c = match ctx.peer() { Ok(c) => c, Err(o) => return o };
            let mut have = std::collections::HashMap::new();
            let mut stream = match c.fetch_change_sets(FetchChangeSetsRequest { have: have.clone(), limit: 0 }).await {
                Ok(s) => s.into_inner(), Err(s) => return Outcome::fail(s.message().to_owned()),
            };
            while let Some(Ok(item)) = stream.next().await { have.insert(item.directory, item.number); }
            let mut stream = match c.fetch_change_sets(FetchChangeSetsRequest { have: have.clone(), limit: 0 }).await {
                Ok(s) => s.into_inner(), Err(s) => return Outcome::fail(s.message().to_owned()),
            };
            match stream.next().await {
                None => Outcome::pass(format!("nothing after {} directories' versions", have.len())),
                Some(Ok(i)) => Outcome::fail(format!("{} #{} came again", i.directory, i.number)),
                Some(Err(s)) => Outcome::fail(s.message().to_owned()),
            }
        }),
        // ---------------------------------------------------------------- traders
        case!("traders.signed-answer", "traders",
            "ResolveTrader answers about the target state's trader with a document signed by that state",
            "docs/traders.md", |ctx| {
            let target = ctx.config.target.state.clone();
            let Some(id) = fresh_trader(&target) else { return Outcome::NotRun { reason: format!("no identifier rule for {target}") } };
            let mut c = match ctx.peer() { Ok(c) => c, Err(o) => return o };
            let bytes = match c.resolve_trader(ResolveTraderRequest { id: id.clone(), as_of: String::new() }).await {
                Ok(r) => r.into_inner().answer, Err(s) => return Outcome::fail(format!("{:?}: {}", s.code(), s.message())),
            };
            let doc = match xml::parse(&bytes) { Ok(d) => d, Err(e) => return Outcome::fail(e.to_string()) };
            let root = doc.element(doc.root());
            if !root.is_some_and(|e| e.is("urn:tereze:traders", "TraderAnswer") && e.attribute("Id") == Some(id.as_str()) && e.attribute("State") == Some(target.as_str())) {
                return Outcome::fail("the answer is not a tr:TraderAnswer about the id asked, from the target state");
            }
            let mut anchors = TrustStore::new();
            if let Err(e) = anchors.add_pem(&ctx.config.target.ca_pem) { return Outcome::fail(format!("--ca: {e}")) }
            match dsig::verify(&doc, &anchors, &VerifyPolicy::default()) {
                Ok(v) => Outcome::pass(format!("answer about {id} signed by {}", v.signer.subject)),
                Err(e) => Outcome::fail(format!("the answer's signature does not verify: {e}")),
            }
        }),
        case!("traders.other-state-refused", "traders",
            "ResolveTrader for another state's trader is refused: FAILED_PRECONDITION",
            "docs/protocol.md", |ctx| {
            let Some(id) = fresh_trader(&ctx.config.tester.state) else { return Outcome::NotRun { reason: "no identifier rule for the tester state".into() } };
            let mut c = match ctx.peer() { Ok(c) => c, Err(o) => return o };
            expect_status(c.resolve_trader(ResolveTraderRequest { id, as_of: String::new() }).await, Some(tonic::Code::FailedPrecondition))
        }),
        case!("traders.owner-answer-active", "traders",
            "A trader the owner state's node vouches for as active is recognised",
            "docs/traders.md#the-register-resolution-and-recognition-the-node", |ctx| {
            let signer = match ctx.signer() { Ok(s) => s, Err(o) => return o };
            expect_recognised(ctx.with_trader_answer(|id| ctx.trader_answer(id, Some(&[("active", "2015-01-01")]), signer)).await)
        }),
        case!("traders.owner-answer-inactive", "traders",
            "A trader liquidated before the document's date by its state's word is rejected: trader-inactive",
            "docs/traders.md#the-register-resolution-and-recognition-the-node", |ctx| {
            let signer = match ctx.signer() { Ok(s) => s, Err(o) => return o };
            expect_rejected(ctx.with_trader_answer(|id| ctx.trader_answer(id, Some(&[("active", "2010-01-01"), ("liquidated", "2020-01-01")]), signer)).await, &["trader-inactive"])
        }),
        case!("traders.owner-answer-unknown", "traders",
            "A trader its state says it has not registered is rejected: trader-unknown",
            "docs/traders.md#the-register-resolution-and-recognition-the-node", |ctx| {
            let signer = match ctx.signer() { Ok(s) => s, Err(o) => return o };
            expect_rejected(ctx.with_trader_answer(|id| ctx.trader_answer(id, None, signer)).await, &["trader-unknown"])
        }),
        case!("traders.forged-answer-refused", "traders",
            "An answer vouching for the trader but not signed by its state is refused: trader-unresolved",
            "docs/traders.md#the-register-resolution-and-recognition-the-node", |ctx| {
            let made = (|| -> Result<SigningKey, String> {
                let key = generate_key(KeyKind::EcP256).map_err(|e| e.to_string())?;
                let cert = issue_certificate(&CertificateSpec { subject: &[("CN", "forger")], not_before_days: -1, not_after_days: 30, is_ca: false }, &key, None).map_err(|e| e.to_string())?;
                SigningKey::new(key, Some(cert)).map_err(|e| e.to_string())
            })();
            let forger = match made { Ok(k) => k, Err(e) => return Outcome::fail(e) };
            expect_rejected(ctx.with_trader_answer(|id| ctx.trader_answer(id, Some(&[("active", "2015-01-01")]), &forger)).await, &["trader-unresolved"])
        }),
        case!("traders.answer-about-another-id-refused", "traders",
            "A genuine answer about another trader than the one asked is refused: trader-unresolved",
            "docs/traders.md#the-register-resolution-and-recognition-the-node", |ctx| {
            let signer = match ctx.signer() { Ok(s) => s, Err(o) => return o };
            let Some(other) = fresh_trader(&ctx.config.tester.state) else { return Outcome::NotRun { reason: "no identifier rule for the tester state".into() } };
            expect_rejected(ctx.with_trader_answer(|_| ctx.trader_answer(&other, Some(&[("active", "2015-01-01")]), signer)).await, &["trader-unresolved"])
        }),
        case!("traders.malformed-id", "traders",
            "ResolveTrader for a malformed identifier is refused: INVALID_ARGUMENT",
            "docs/traders.md", |ctx| {
            let mut c = match ctx.peer() { Ok(c) => c, Err(o) => return o };
            let id = format!("{}12AB", ctx.config.target.state);
            expect_status(c.resolve_trader(ResolveTraderRequest { id, as_of: String::new() }).await, Some(tonic::Code::InvalidArgument))
        }),
    ]
}
