//! CRLs by location (DESIGN §5): a state's trust-space entry may name where its CRLs are
//! published (`crl_urls`, usually its own node's `GET /v1/crl`). Every node fetches them
//! periodically, accepts a CRL only when one of that state's anchors signed it (the transport
//! needs no trust, as for CRL distribution points in RFC 5280 §4.2.1.13) and it is not older
//! than the one held (no rollback to a CRL from before a revocation), stores what it accepted
//! durably (so a restart, or a peer that is down, does not forget a revocation) and puts it in
//! force next to the inline CRLs: for recognition (revoked at signing time) and for TLS.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openssl::asn1::Asn1Time;
use openssl::x509::X509Crl;

use super::Node;
use crate::trust::StateEntry;

/// Largest CRL document a node fetches.
pub(crate) const MAX_CRL_BYTES: usize = 16 << 20;

/// Reads one or more PEM CRLs, or one DER CRL.
pub(crate) fn parse_crls(bytes: &[u8]) -> Result<Vec<X509Crl>, String> {
    const BEGIN: &[u8] = b"-----BEGIN X509 CRL-----";
    const END: &[u8] = b"-----END X509 CRL-----";
    if !bytes.windows(BEGIN.len()).any(|w| w == BEGIN) {
        return X509Crl::from_der(bytes)
            .map(|c| vec![c])
            .map_err(|e| format!("neither PEM nor DER CRL: {e}"));
    }
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(start) = rest.windows(BEGIN.len()).position(|w| w == BEGIN) {
        let after = &rest[start..];
        let end = after
            .windows(END.len())
            .position(|w| w == END)
            .ok_or("a PEM CRL without its END line")?
            + END.len();
        let crl =
            X509Crl::from_pem(&after[..end]).map_err(|e| format!("CRL {}: {e}", out.len() + 1))?;
        out.push(crl);
        rest = &after[end..];
    }
    Ok(out)
}

/// Checks that one of `state`'s anchors issued and signed `crl`, and that it is not from the
/// future (beyond `skew`).
pub(crate) fn accept(crl: &X509Crl, state: &StateEntry, skew: i64) -> Result<(), String> {
    let issuer = state.anchors.iter().find(|a| {
        a.subject_name()
            .try_cmp(crl.issuer_name())
            .is_ok_and(|o| o == std::cmp::Ordering::Equal)
    });
    let Some(issuer) = issuer else {
        return Err(format!(
            "its issuer is not an anchor of {} in the trust space",
            state.code
        ));
    };
    let key = issuer.public_key().map_err(|e| e.to_string())?;
    if !crl.verify(&key).unwrap_or(false) {
        return Err(format!(
            "its signature does not verify with {}'s anchor",
            state.code
        ));
    }
    let latest =
        Asn1Time::from_unix(chrono::Utc::now().timestamp() + skew).map_err(|e| e.to_string())?;
    if crl.last_update() > latest.as_ref() {
        return Err(format!(
            "it was issued in the future ({})",
            crl.last_update()
        ));
    }
    Ok(())
}

/// Fetches `url` with a plain HTTP/1.1 GET, at most `MAX_CRL_BYTES`.
pub(crate) async fn fetch(url: &str, timeout: Duration) -> Result<Vec<u8>, String> {
    tereze_support::http::exchange(url, None, timeout, MAX_CRL_BYTES).await
}

/// The CRLs a node holds from CRL locations, by URL: the state that lists the URL, and what
/// was accepted from it (PEM, as stored).
#[derive(Clone, Default)]
pub(crate) struct Fetched {
    pub(crate) by_url: BTreeMap<String, Vec<Arc<X509Crl>>>,
}

impl Fetched {
    /// The CRLs to put in force for each state, for URLs the trust space still lists.
    pub(crate) fn by_state(
        &self,
        trust: &crate::trust::TrustSpace,
    ) -> BTreeMap<String, Vec<Arc<X509Crl>>> {
        let mut out: BTreeMap<String, Vec<Arc<X509Crl>>> = BTreeMap::new();
        for (code, s) in &trust.states {
            for url in &s.crl_urls {
                if let Some(crls) = self.by_url.get(url) {
                    out.entry(code.clone())
                        .or_default()
                        .extend(crls.iter().cloned());
                }
            }
        }
        out
    }
}

/// Reads a stored or fetched CRL set for `state` and checks every CRL in it.
fn verify_set(bytes: &[u8], state: &StateEntry, skew: i64) -> Result<Vec<X509Crl>, String> {
    let crls = parse_crls(bytes)?;
    if crls.is_empty() {
        return Err("no CRL in it".into());
    }
    for (i, c) in crls.iter().enumerate() {
        accept(c, state, skew).map_err(|e| format!("CRL {}: {e}", i + 1))?;
    }
    Ok(crls)
}

/// Whether `new` would roll back a revocation: a CRL from an issuer older than the held one.
fn older_than_held(new: &[X509Crl], held: &[Arc<X509Crl>]) -> Option<String> {
    for n in new {
        for h in held {
            let same = n
                .issuer_name()
                .try_cmp(h.issuer_name())
                .is_ok_and(|o| o == std::cmp::Ordering::Equal);
            if same && n.last_update() < h.last_update() {
                return Some(format!(
                    "it was issued at {}, before the CRL held ({})",
                    n.last_update(),
                    h.last_update()
                ));
            }
        }
    }
    None
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

/// The decision `install_crls` makes on a verified set.
pub(crate) fn compare(new: &[X509Crl], held: Option<&Vec<Arc<X509Crl>>>) -> Result<bool, String> {
    let Some(held) = held else {
        return Ok(true);
    };
    if let Some(why) = older_than_held(new, held) {
        return Err(why);
    }
    let der = |c: &X509Crl| c.to_der().unwrap_or_default();
    let same = new.len() == held.len() && new.iter().zip(held).all(|(a, b)| der(a) == der(b));
    Ok(!same)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_crl() {
        assert!(parse_crls(b"not a crl").is_err());
        assert!(parse_crls(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n").is_err());
        assert!(parse_crls(b"-----BEGIN X509 CRL-----\nAAAA\n").is_err());
    }
}
