//! Webhooks (`[[notifications.webhooks]]`, docs/notifications.md): each follows the event log
//! from its own cursor and POSTs the events of the kinds it wants, a few at a time, in order.
//! A POST is signed (`X-Tereze-Signature: sha256=<hex HMAC-SHA256 of the body>`, the shared
//! secret from `secret_file`) and repeated with backoff until the receiver answers 2xx; only
//! then does the cursor move, durably, in the store. So nothing is skipped, a restart of the
//! node or of the receiver loses nothing, and at most the POST that was not acknowledged is
//! sent again (receivers deduplicate by sequence number). The secret never reaches a log.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::Node;
use crate::config::{EventWebhook, WebhookTarget};
use crate::store::{Event, StoreError};

/// Events read from the log per look (filtered by kind afterwards).
const SCAN: usize = 1_000;
/// The first pause after a failed POST and the longest.
const PAUSE: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(60));
/// How often an idle webhook looks at the log without a local commit (another replica's).
const RECHECK: Duration = Duration::from_secs(1);
/// The most of a receiver's answer read (its body is ignored).
const MAX_ANSWER: usize = 1 << 16;

/// Per webhook: the last sequence number acknowledged and the newest in the log, for
/// `/metrics` (`event_webhook_acknowledged`, `event_webhook_lag`).
#[derive(Debug, Default, Clone)]
pub(crate) struct Progress(Arc<Mutex<BTreeMap<String, (u64, u64)>>>);

impl Progress {
    fn set(&self, name: &str, acked: u64, newest: u64) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), (acked, newest.max(acked)));
    }

    fn snapshot(&self) -> BTreeMap<String, (u64, u64)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Collector for Progress {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let now = self.snapshot();
        for (name, help, value) in [
            (
                "event_webhook_acknowledged",
                "Sequence number of the last event each webhook acknowledged (2xx).",
                (|a: u64, _n: u64| a) as fn(u64, u64) -> u64,
            ),
            (
                "event_webhook_lag",
                "Events written and not yet acknowledged by each webhook (of any kind; those it does not follow pass at once).",
                |a: u64, n: u64| n.saturating_sub(a),
            ),
        ] {
            let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (hook, (acked, newest)) in &now {
                ConstGauge::new(value(*acked, *newest) as i64)
                    .encode(m.encode_family(&[("webhook", hook.as_str())])?)?;
            }
        }
        Ok(())
    }
}

/// Starts one task per configured webhook; each ends with the shutdown.
pub(crate) fn spawn(node: &Arc<Node>, tasks: &mut tokio::task::JoinSet<()>) {
    for hook in node.config.notifications.webhooks.clone() {
        tasks.spawn(follow(node.clone(), hook));
    }
}

/// Why one POST was not acknowledged (logged with the URL, never with the secret).
#[derive(Debug, thiserror::Error)]
enum PostError {
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[source] std::io::Error),
    #[error("TLS configuration: {0}")]
    TlsConfig(String),
    #[error("HTTP: {0}")]
    Http(#[source] hyper::Error),
    #[error("request: {0}")]
    Request(#[source] hyper::http::Error),
    #[error("HTTP status {0}")]
    Status(hyper::StatusCode),
    #[error("no answer within {0} s")]
    Timeout(u64),
}

/// One webhook's loop: read after the cursor, POST, wait for 2xx, move the cursor.
async fn follow(node: Arc<Node>, hook: EventWebhook) {
    let name = hook.name.clone();
    let progress = node.metrics.event_webhooks.clone();
    let Some(target) = WebhookTarget::parse(&hook.url).ok() else {
        // Checked at load; a URL that no longer parses is a bug, told once.
        tracing::error!(webhook = %name, "webhook URL does not parse; not followed");
        return;
    };
    let mut cursor = loop {
        match node.store().event_cursor(&name) {
            Ok(c) => break c.unwrap_or(0),
            Err(e) => {
                tracing::warn!(webhook = %name, error = %e, "webhook cursor unreadable; trying again");
                if pause(&node, PAUSE.1).await {
                    return;
                }
            }
        }
    };
    let mut newest = node.committer.newest_event();
    let mut failures = 0u32;
    loop {
        newest.borrow_and_update();
        let page = match node.store().events(cursor, SCAN) {
            Ok(p) => p,
            Err(StoreError::EventsGone { oldest, .. }) => {
                // Retention dropped events this webhook never got: said loudly, then on.
                tracing::error!(webhook = %name, after = cursor, oldest,
                    "events compacted before this webhook acknowledged them; they are skipped (raise notifications.retention_hours or max_events)");
                cursor = oldest - 1;
                continue;
            }
            Err(e) => {
                tracing::warn!(webhook = %name, error = %e, "event log unreadable; trying again");
                if pause(&node, RECHECK).await {
                    return;
                }
                continue;
            }
        };
        progress.set(&name, cursor, page.newest);
        let wanted: Vec<&Event> = page
            .events
            .iter()
            .filter(|e| hook.events.is_empty() || hook.events.contains(&e.kind))
            .take(hook.max_batch)
            .collect();
        // The cursor moves past what this webhook does not follow, up to the batch's end.
        let upto = match (wanted.last(), wanted.len() == hook.max_batch) {
            (Some(last), true) => last.seq,
            _ => page.events.last().map_or(cursor, |e| e.seq),
        };
        if !wanted.is_empty() {
            let body = batch_body(&name, &wanted);
            let seqs: Vec<String> = wanted.iter().map(|e| e.seq.to_string()).collect();
            let secret = match read_secret(&hook) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(webhook = %name, error = %e, "webhook secret unreadable; trying again");
                    if pause(&node, PAUSE.1).await {
                        return;
                    }
                    continue;
                }
            };
            let signature = match sign(secret.as_bytes(), &body) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(webhook = %name, error = %e, "cannot sign a webhook POST");
                    if pause(&node, PAUSE.1).await {
                        return;
                    }
                    continue;
                }
            };
            let sent = post(&target, &hook, &name, &seqs.join(","), &signature, body).await;
            if let Err(e) = sent {
                failures = failures.saturating_add(1);
                let wait = tereze_support::backoff::pause(PAUSE.0, PAUSE.1, failures);
                tracing::warn!(webhook = %name, url = %hook.url, error = %e, events = %seqs.join(","),
                    retry_in_ms = wait.as_millis() as u64, "webhook POST not acknowledged; sent again");
                if pause(&node, wait).await {
                    return;
                }
                continue;
            }
            failures = 0;
        }
        if upto != cursor {
            // Durable before the next POST after an acknowledgement, so a crash repeats at
            // most the POST not yet acknowledged; passing over events it does not follow is
            // safe to redo, so not waited on to be durable.
            let n = name.clone();
            let keep = move |t: &mut crate::store::Txn<'_>| t.set_event_cursor(&n, upto);
            let kept = if wanted.is_empty() {
                node.committer.run_lazily(keep).await
            } else {
                node.committer.run(keep).await
            };
            if let Err(e) = kept {
                tracing::warn!(webhook = %name, error = %e, "webhook cursor not kept; the POST may be repeated");
                if pause(&node, RECHECK).await {
                    return;
                }
                continue;
            }
            cursor = upto;
            progress.set(&name, cursor, page.newest);
            continue;
        }
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            _ = newest.changed() => {}
            _ = tokio::time::sleep(RECHECK) => {}
        }
    }
}

/// Sleeps `d` unless the node stops first: whether it stops.
async fn pause(node: &Node, d: Duration) -> bool {
    tokio::select! {
        _ = node.shutdown.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

fn read_secret(hook: &EventWebhook) -> Result<String, tereze_support::fs::SecretError> {
    tereze_support::fs::read_secret(&hook.secret_file, "the webhook secret")
        .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
}

/// The POST's body: `{"webhook": name, "events": [...]}`.
fn batch_body(name: &str, events: &[&Event]) -> Vec<u8> {
    let v = serde_json::json!({
        "webhook": name,
        "events": events.iter().map(|e| super::events::event_json(e)).collect::<Vec<_>>(),
    });
    v.to_string().into_bytes()
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret` (OpenSSL's HMAC).
pub(crate) fn sign(secret: &[u8], body: &[u8]) -> Result<String, openssl::error::ErrorStack> {
    let key = openssl::pkey::PKey::hmac(secret)?;
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
    signer.update(body)?;
    Ok(format!(
        "sha256={}",
        tereze_support::hex::hex(&signer.sign_to_vec()?)
    ))
}

/// One POST; Ok once the receiver answered 2xx.
async fn post(
    target: &WebhookTarget,
    hook: &EventWebhook,
    name: &str,
    sequences: &str,
    signature: &str,
    body: Vec<u8>,
) -> Result<(), PostError> {
    let timeout = hook.timeout_seconds;
    let work = async {
        let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(PostError::Connect)?;
        let host = match (target.tls, target.port) {
            (false, 80) | (true, 443) => target.host.clone(),
            (_, p) => format!("{}:{p}", target.host),
        };
        let request = hyper::Request::builder()
            .method(hyper::Method::POST)
            .uri(&target.path)
            .header(hyper::header::HOST, host)
            .header(hyper::header::USER_AGENT, "tereze")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("X-Tereze-Webhook", name)
            .header("X-Tereze-Sequence", sequences)
            .header("X-Tereze-Signature", signature)
            .body(Full::new(Bytes::from(body)))
            .map_err(PostError::Request)?;
        if target.tls {
            let config = tls_config(hook)?;
            let server = rustls_pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| PostError::TlsConfig(format!("{}: {e}", target.host)))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(server, tcp)
                .await
                .map_err(PostError::Tls)?;
            exchange(stream, request).await
        } else {
            exchange(tcp, request).await
        }
    };
    tokio::time::timeout(Duration::from_secs(timeout), work)
        .await
        .map_err(|_| PostError::Timeout(timeout))?
}

async fn exchange<S>(stream: S, request: hyper::Request<Full<Bytes>>) -> Result<(), PostError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(PostError::Http)?;
    let conn = tokio::spawn(conn);
    let response = sender
        .send_request(request)
        .await
        .map_err(PostError::Http)?;
    let status = response.status();
    // Read (bounded) so the receiver is not cut off mid-answer; its content is not used.
    let _ = Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await;
    conn.abort();
    if !status.is_success() {
        return Err(PostError::Status(status));
    }
    Ok(())
}

/// The TLS client configuration for an `https://` receiver: its `ca_file`, else the system's
/// CA bundle (`SSL_CERT_FILE`, or Debian's and Red Hat's usual places).
fn tls_config(hook: &EventWebhook) -> Result<Arc<rustls::ClientConfig>, PostError> {
    use rustls_pki_types::pem::PemObject;
    let file = match &hook.ca_file {
        Some(f) => f.clone(),
        None => std::env::var_os("SSL_CERT_FILE")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                [
                    "/etc/ssl/certs/ca-certificates.crt",
                    "/etc/pki/tls/certs/ca-bundle.crt",
                ]
                .iter()
                .map(std::path::PathBuf::from)
                .find(|p| p.exists())
            })
            .ok_or_else(|| PostError::TlsConfig("no system CA bundle found; set ca_file".into()))?,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(&file)
        .map_err(|e| PostError::TlsConfig(format!("{}: {e}", file.display())))?;
    for c in certs {
        let c = c.map_err(|e| PostError::TlsConfig(format!("{}: {e}", file.display())))?;
        // A bundle may hold certificates rustls cannot use; the others still serve.
        let _ = roots.add(c);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| PostError::TlsConfig(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_sha256_of_the_body_in_hex() {
        // RFC 4231, test case 2.
        let s = sign(b"Jefe", b"what do ya want for nothing?").expect("signs");
        assert_eq!(
            s,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
