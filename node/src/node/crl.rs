//! CRLs by location (DESIGN §5): a state's trust-space entry may name where its CRLs are
//! published (`crl_urls`, usually its own node's `GET /v1/crl`). Every node fetches them
//! periodically, accepts a CRL only as `tereze_trust::crl` allows (signed by one of that
//! state's anchors, not older than the one held), stores what it accepted durably (so a
//! restart, or a peer that is down, does not forget a revocation) and puts it in force next to
//! the inline CRLs: for recognition (revoked at signing time) and for TLS.

use std::sync::Arc;
use std::time::Duration;

pub(crate) use tereze_trust::crl::{compare, Fetched};
use tereze_trust::crl::{verify_set, MAX_CRL_BYTES};

use super::Node;

/// Fetches `url` with a plain HTTP/1.1 GET, at most `MAX_CRL_BYTES`.
pub(crate) async fn fetch(url: &str, timeout: Duration) -> Result<Vec<u8>, String> {
    tereze_support::http::exchange(url, None, timeout, MAX_CRL_BYTES).await
}

/// Loads the CRLs accepted earlier from the store, checked again against the trust space in
/// force (an anchor may have changed since).
pub(crate) fn load(node: &Node) -> Fetched {
    let mut fetched = Fetched::default();
    let trust = node.trust();
    let stored = match node.store().fetched_crls() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the stored CRLs");
            return fetched;
        }
    };
    for (url, bytes) in stored {
        let Some(state) = trust.states.values().find(|s| s.crl_urls.contains(&url)) else {
            continue;
        };
        match verify_set(&bytes, state, trust.max_clock_skew_seconds) {
            Ok(crls) => {
                fetched
                    .by_url
                    .insert(url, crls.into_iter().map(Arc::new).collect());
            }
            Err(e) => tracing::warn!(url = %url, error = %e, "stored CRL no longer accepted"),
        }
    }
    fetched
}

/// Fetches every CRL location of the trust space in force, now and every
/// `crl_refresh_seconds`, and right after a trust-space update.
pub(crate) async fn refresh(node: Arc<Node>) {
    let every = Duration::from_secs(node.config.crl_refresh_seconds.max(1));
    let mut changes = node.trust_changes();
    loop {
        refresh_once(&node).await;
        tokio::select! {
            _ = node.shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
            r = changes.changed() => if r.is_err() { break },
        }
    }
}

async fn refresh_once(node: &Arc<Node>) {
    let trust = node.trust();
    let timeout = Duration::from_secs(node.config.relay.timeout_seconds.max(1));
    for (code, state) in &trust.states {
        if *code == node.config.state {
            continue;
        }
        for url in &state.crl_urls {
            let bytes = match fetch(url, timeout).await {
                Ok(b) => b,
                Err(e) => {
                    node.metrics.crl_fetch_failures.inc();
                    tracing::warn!(state = %code, url = %url, error = %e, "CRL fetch failed; the CRL held stays in force");
                    continue;
                }
            };
            let crls = match verify_set(&bytes, state, trust.max_clock_skew_seconds) {
                Ok(c) => c,
                Err(e) => {
                    node.metrics.crl_refused.inc();
                    tracing::warn!(state = %code, url = %url, error = %e, "fetched CRL refused");
                    continue;
                }
            };
            if let Err(e) = node.install_crls(url, &bytes, crls).await {
                tracing::warn!(state = %code, url = %url, error = %e, "fetched CRL not installed");
            }
        }
    }
}
