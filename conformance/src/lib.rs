//! The conformance suite, runnable against any node that speaks the Tereze protocol
//! (docs/conformance.md). The suite acts as a peer node of a tester state: it connects over
//! mutual TLS with the tester's certificate, signs envelopes with the tester state's document
//! key, and checks what the target answers: refusals, receipts and the verdicts in them,
//! change sets, trader answers.
//!
//! **Invariant:** the suite talks to a node only through the published protocol (the gRPC
//! contracts in `proto/proto`, compiled by `tereze-proto`, and the XML formats of `codecs`); it never reads
//! the node's store, configuration or code.
#![forbid(unsafe_code)]

pub mod cases;
mod peer;
pub mod report;

use std::time::{Duration, Instant};

use serde::Serialize;

/// The gRPC contracts (`proto/proto`), compiled once in `tereze-proto`.
pub use tereze_proto as proto;

/// The node under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` of its `Exchange` service.
    pub address: String,
    /// The name its TLS certificate carries (SNI and verification).
    pub server_name: String,
    /// The anchors (PEM) its TLS certificate and its document signatures chain to.
    pub ca_pem: Vec<u8>,
    /// Its state (ISO 3166-1 alpha-2), the recipient of the suite's messages.
    pub state: String,
}

/// The tester: a node of another state listed in the target's trust space.
#[derive(Debug, Clone)]
pub struct Tester {
    pub state: String,
    /// TLS client certificate and key (PEM) as listed in the trust space.
    pub tls_cert_pem: Vec<u8>,
    pub tls_key_pem: Vec<u8>,
    /// Document-signing certificate (chain may follow) and key (PEM) of the tester state.
    pub signer_cert_pem: Vec<u8>,
    pub signer_key_pem: Vec<u8>,
    /// The tester state's CA (certificate, key): lets cases issue signers that are expired or
    /// not yet valid. Cases that need it are reported "not run" without it.
    pub issuer: Option<(Vec<u8>, Vec<u8>)>,
    /// Where the tester's node is listed in the target's trust space (`host:port`): the suite
    /// serves `Exchange` there (with the tester's TLS certificate) so the target can ask it
    /// about the tester state's traders. Cases that need it are "not run" without it.
    pub listen: Option<String>,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    pub tester: Tester,
    /// Time one case may take.
    pub case_timeout: Duration,
}

/// A case's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    /// The target behaved as required; the evidence says what it answered.
    Pass { evidence: String },
    /// It did not; the message says what was expected and what came instead.
    Fail { message: String },
    /// The case could not be run with what the run was given (never a silent pass).
    NotRun { reason: String },
}

impl Outcome {
    pub fn pass(evidence: impl Into<String>) -> Self {
        Outcome::Pass {
            evidence: evidence.into(),
        }
    }

    pub fn fail(message: impl Into<String>) -> Self {
        Outcome::Fail {
            message: message.into(),
        }
    }

    pub fn is_pass(&self) -> bool {
        matches!(self, Outcome::Pass { .. })
    }
}

/// One entry of the catalogue.
#[derive(Debug, Clone, Serialize)]
pub struct CaseInfo {
    /// Stable, e.g. `signature.tampered-body`.
    pub id: &'static str,
    pub suite: &'static str,
    pub title: &'static str,
    /// The requirement it checks: a link into `docs/`.
    pub requirement: &'static str,
}

/// One case's result.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    #[serde(flatten)]
    pub info: CaseInfo,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub millis: u128,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub target: String,
    pub target_state: String,
    pub tester_state: String,
    pub started_at: String,
    pub results: Vec<CaseResult>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.outcome.is_pass()).count()
    }

    pub fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Fail { .. }))
            .count()
    }

    pub fn not_run(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::NotRun { .. }))
            .count()
    }
}

/// The catalogue, in run order.
pub fn catalogue() -> Vec<CaseInfo> {
    cases::all().into_iter().map(|c| c.info).collect()
}

/// Runs the cases whose suite or id is in `only` (all when empty) and reports each to
/// `progress` as it finishes.
pub async fn run(
    config: &Config,
    only: &[String],
    mut progress: impl FnMut(usize, usize, &CaseResult),
) -> Report {
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let selected: Vec<cases::Case> = cases::all()
        .into_iter()
        .filter(|c| only.is_empty() || only.iter().any(|o| o == c.info.suite || o == c.info.id))
        .collect();
    let mut ctx = cases::Ctx::new(config.clone());
    if let Some(addr) = &config.tester.listen {
        match peer::start(addr, &config.tester, &config.target).await {
            Ok(p) => ctx.peer_node = Ok(p),
            Err(e) => {
                ctx.peer_node = Err(format!("cannot serve as the tester's node on {addr}: {e}"))
            }
        }
    }
    let total = selected.len();
    let mut results = Vec::with_capacity(total);
    for (i, case) in selected.into_iter().enumerate() {
        let start = Instant::now();
        let outcome = match tokio::time::timeout(config.case_timeout, (case.run)(&ctx)).await {
            Ok(o) => o,
            Err(_) => Outcome::fail(format!(
                "no conclusion within {} s",
                config.case_timeout.as_secs()
            )),
        };
        let r = CaseResult {
            info: case.info,
            outcome,
            millis: start.elapsed().as_millis(),
        };
        progress(i + 1, total, &r);
        results.push(r);
    }
    Report {
        target: config.target.address.clone(),
        target_state: config.target.state.clone(),
        tester_state: config.tester.state.clone(),
        started_at,
        results,
    }
}
