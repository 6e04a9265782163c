//! Traders in the running node (docs/traders.md): the register of this state's traders, the
//! owner's signed answers (`ResolveTrader` over Exchange), and resolution of other states'
//! traders through their nodes with a cache that keeps each verified answer as evidence.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;
use tereze_reference_data::trader;

use super::answer;
use super::proto::ResolveTraderRequest;
use super::Node;
use crate::class::{Class, Classify};
use crate::recognition::{standing_of, Standing, TraderCheck};
use crate::store::{Store, StoreError};
use crate::traders::{self, Answer, AnswerError, Trader};

/// Why a trader could not be resolved.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error("{id}: {source}")]
    Id {
        id: String,
        #[source]
        source: trader::TraderError,
    },
    #[error("{state} is not a state of the trust space")]
    UnknownState { state: String },
    #[error("{state}'s node did not answer: {reason}")]
    Unreachable { state: String, reason: String },
    /// No client could be made for the owner's node (the same words as `Unreachable`).
    #[error("{state}'s node did not answer: {source}")]
    NoClient {
        state: String,
        #[source]
        source: super::relay::ClientError,
    },
    #[error(transparent)]
    Answer(#[from] AnswerError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot sign: {0}")]
    Sign(#[source] tereze_codecs::dsig::SignError),
}

impl ResolveError {
    fn id(id: &str, source: trader::TraderError) -> Self {
        Self::Id {
            id: id.to_owned(),
            source,
        }
    }
}

impl Classify for ResolveError {
    fn class(&self) -> Class {
        match self {
            ResolveError::Id { .. } | ResolveError::UnknownState { .. } => Class::Invalid,
            // The owner's node was asked: its silence or a bad answer is not ours to mend.
            ResolveError::Unreachable { .. }
            | ResolveError::NoClient { .. }
            | ResolveError::Answer(_) => Class::Upstream,
            // The answer cannot be made now; the owner's register is still there.
            ResolveError::Store(_) | ResolveError::Sign(_) => Class::Unavailable,
        }
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Source {
    /// This node's own register, signed now.
    Register,
    /// An answer kept from earlier, within its TTL.
    Cache,
    /// Asked of the owner state's node just now.
    Owner,
}

impl Node {
    /// This node's signed answer about `id` (of its own state) as of `as_of`.
    pub(crate) fn answer_for(&self, id: &str, as_of: NaiveDate) -> Result<Vec<u8>, ResolveError> {
        let t = register_record(self.store(), id)?;
        traders::sign_answer(id, &self.config.state, as_of, t.as_ref(), &self.signing)
            .map_err(ResolveError::Sign)
    }

    /// The answer of a still-fresh kept one, if any (verified again under the trust space in
    /// force); fresh for `traders.cache_ttl_seconds`, or `traders.negative_ttl_seconds` when
    /// it says the trader is not registered.
    pub(crate) fn cached_answer(
        &self,
        id: &str,
    ) -> Result<Option<(Answer, Vec<u8>)>, ResolveError> {
        let Some((at, bytes)) = self.store().trader_answer(id)? else {
            return Ok(None);
        };
        let age_ms = tereze_support::clock::now_ms().saturating_sub(at);
        match traders::verify_answer(&bytes, &self.trust(), Some(id)) {
            Ok(a) if fresh(&self.config.traders, a.trader.is_some(), age_ms) => {
                Ok(Some((a, bytes)))
            }
            Ok(_) | Err(_) => Ok(None),
        }
    }

    /// Forgets the kept answers about `id` (another state's trader), or all of them, so that
    /// the next resolution and recognition ask the owner again: after the owner's register
    /// was corrected. How many were forgotten.
    pub(crate) async fn flush_trader_answers(
        &self,
        id: Option<String>,
    ) -> Result<u64, ResolveError> {
        if let Some(id) = &id {
            trader::parse(id).map_err(|e| ResolveError::id(id, e))?;
        }
        let shown = id.clone();
        let forgotten = self
            .committer
            .run(move |t| t.forget_trader_answers(id.as_deref()))
            .await?;
        tracing::info!(
            trader = shown.as_deref().unwrap_or("all"),
            forgotten,
            "kept trader answers flushed by an operator"
        );
        Ok(forgotten)
    }

    /// What the owner state says of `id`: this node's register, a fresh kept answer, or the
    /// owner's node asked now (verified, then kept).
    pub(crate) async fn resolve_trader(
        &self,
        id: &str,
        as_of: NaiveDate,
    ) -> Result<(Answer, Vec<u8>, Source), ResolveError> {
        let parsed = trader::parse(id).map_err(|e| ResolveError::id(id, e))?;
        let state = parsed.country.as_str().to_owned();
        if state == self.config.state {
            let bytes = self.answer_for(id, as_of)?;
            let answer = traders::verify_answer(&bytes, &self.trust(), Some(id))?;
            return Ok((answer, bytes, Source::Register));
        }
        if let Some((a, b)) = self.cached_answer(id)? {
            return Ok((a, b, Source::Cache));
        }
        if self.trust().state(&state).is_none() {
            return Err(ResolveError::UnknownState { state });
        }
        let unreachable = |reason: String| ResolveError::Unreachable {
            state: state.clone(),
            reason,
        };
        let mut client =
            super::relay::client(self, &state).map_err(|source| ResolveError::NoClient {
                state: state.clone(),
                source,
            })?;
        let timeout = Duration::from_secs(self.config.traders.resolve_timeout_seconds);
        let call = client.resolve_trader(ResolveTraderRequest {
            id: id.to_owned(),
            as_of: as_of.to_string(),
        });
        let bytes = tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| unreachable(format!("no answer within {} s", timeout.as_secs())))?
            .map_err(|e| unreachable(e.message().to_owned()))?
            .into_inner()
            .answer;
        let answer = traders::verify_answer(&bytes, &self.trust(), Some(id))?;
        let (key, at, kept) = (
            id.to_owned(),
            tereze_support::clock::now_ms(),
            bytes.clone(),
        );
        self.committer
            .run(move |t| t.record_trader_answer(&key, at, &kept))
            .await?;
        Ok((answer, bytes, Source::Owner))
    }
}

/// Whether a kept answer `age_ms` old is still used without asking the owner again: a
/// "not registered" answer for `negative_ttl_seconds` (a register is corrected by adding the
/// trader, and the correction should be seen soon), any other for `cache_ttl_seconds`.
fn fresh(cfg: &crate::config::Traders, registered: bool, age_ms: i64) -> bool {
    let ttl = if registered {
        cfg.cache_ttl_seconds
    } else {
        cfg.negative_ttl_seconds
    };
    age_ms <= i64::try_from(ttl).unwrap_or(i64::MAX).saturating_mul(1000)
}

/// Recognition's view of traders in a running node: this state's register; for another
/// state's trader a kept answer, else the owner's node asked now (the recogniser runs on a
/// blocking thread), else an older kept answer.
pub(crate) struct NodeTraders<'a> {
    pub(crate) node: &'a Node,
}

impl NodeTraders<'_> {
    fn kept(&self, id: &str, date: NaiveDate) -> Option<Standing> {
        let (_, bytes) = self.node.store().trader_answer(id).ok()??;
        let a = traders::verify_answer(&bytes, &self.node.trust(), Some(id)).ok()?;
        Some(standing_of(a.trader.as_ref(), date))
    }
}

impl TraderCheck for NodeTraders<'_> {
    fn standing(&self, id: &str, date: NaiveDate) -> Standing {
        let node = self.node;
        if id.starts_with(&node.config.state) {
            return match register_record(node.store(), id) {
                Ok(t) => standing_of(t.as_ref(), date),
                Err(e) => Standing::Unresolved(format!("this node's register: {e}")),
            };
        }
        if let Ok(Some((a, _))) = node.cached_answer(id) {
            return standing_of(a.trader.as_ref(), date);
        }
        let asked = match tokio::runtime::Handle::try_current() {
            Ok(h) => tokio::task::block_in_place(|| h.block_on(node.resolve_trader(id, date))),
            Err(_) => return Standing::Unresolved("no runtime to ask with".into()),
        };
        match asked {
            Ok((a, _, _)) => standing_of(a.trader.as_ref(), date),
            Err(e) => self
                .kept(id, date)
                .unwrap_or_else(|| Standing::Unresolved(e.to_string())),
        }
    }
}

/// Changing the register (national clients allowed `traders`).
pub(crate) fn register_routes() -> Router<Arc<Node>> {
    Router::new().route("/v1/traders", post(post_traders))
}

/// Reading the register and resolving other states' traders (any national client).
pub(crate) fn lookup_routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/v1/traders/{id}", get(get_trader))
        .route("/v1/traders/{id}/resolve", get(get_resolve))
}

/// The audit log's key for the changes of one trader's register record: the same for every
/// change of that trader (a UUID made of the SHA-256 of its id), so its history lists them.
pub(crate) fn record_key(trader: &str) -> uuid::Uuid {
    let digest = openssl::sha::sha256(format!("tereze trader register {trader}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

use tereze_doors::response::error;

/// A record of this state's register, as the store keeps it (its JSON).
fn register_record(store: &Store, id: &str) -> Result<Option<Trader>, StoreError> {
    store
        .trader(id)?
        .map(|json| {
            serde_json::from_slice(&json)
                .map_err(|e| StoreError::Corrupt(format!("trader {id}: {e}")))
        })
        .transpose()
}

/// Register records in the store's form: (id, JSON).
fn register_rows(list: &[Trader]) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    list.iter()
        .map(|t| {
            serde_json::to_vec(t)
                .map(|json| (t.id.clone(), json))
                .map_err(|e| StoreError::Corrupt(format!("trader {}: {e}", t.id)))
        })
        .collect()
}

/// Imports register records (a JSON array of [`Trader`]); all or none. Each record changed
/// is noted in the audit log with the client that changed it.
async fn post_traders(
    State(node): State<Arc<Node>>,
    axum::Extension(by): axum::Extension<super::national::Caller>,
    body: Result<Json<Vec<Trader>>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(list) = match body {
        Ok(b) => b,
        Err(e) => return tereze_doors::response::bad_body(e),
    };
    for (i, t) in list.iter().enumerate() {
        if let Err(e) = t.check() {
            return error(StatusCode::BAD_REQUEST, format!("record {}: {e}", i + 1));
        }
        if !t.id.starts_with(&node.config.state) {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "record {}: {} is not a trader of {}: a node keeps its own state's register",
                    i + 1,
                    t.id,
                    node.config.state
                ),
            );
        }
    }
    let n = list.len();
    let by = by.by();
    let committed = node
        .committer
        .run(move |t| {
            t.put_traders(&register_rows(&list)?)?;
            for trader in &list {
                t.note(
                    record_key(&trader.id),
                    crate::store::State::Changed,
                    format!("trader register: {} written, {by}", trader.id),
                )?;
            }
            Ok(())
        })
        .await;
    match committed {
        Ok(()) => Json(json!({
            "imported": n,
            "register": node.store().trader_count().unwrap_or(0),
        }))
        .into_response(),
        Err(e) => answer::response(&e),
    }
}

async fn get_trader(State(node): State<Arc<Node>>, Path(id): Path<String>) -> Response {
    if let Err(e) = trader::parse(&id) {
        return error(StatusCode::BAD_REQUEST, format!("{id}: {e}"));
    }
    match register_record(node.store(), &id) {
        Ok(Some(t)) => Json(t).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("{id} is not in {}'s register", node.config.state),
        ),
        Err(e) => answer::response(&e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AsOf {
    as_of: Option<String>,
}

async fn get_resolve(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    Query(q): Query<AsOf>,
) -> Response {
    let as_of = match &q.as_of {
        None => Utc::now().date_naive(),
        Some(s) => match tereze_reference_data::date::parse(s) {
            Ok(d) => d,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("as_of: {s:?} is not a date (YYYY-MM-DD): {e}"),
                )
            }
        },
    };
    match node.resolve_trader(&id, as_of).await {
        Ok((answer, bytes, source)) => {
            let status = answer
                .trader
                .as_ref()
                .and_then(|t| t.status_on(as_of))
                .map(|s| s.as_str());
            Json(json!({
                "id": id,
                "as_of": as_of.to_string(),
                "registered": answer.trader.is_some(),
                "status": status,
                "answer": answer,
                "source": source,
                "document": String::from_utf8_lossy(&bytes),
            }))
            .into_response()
        }
        Err(e) => answer::response(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_not_registered_answer_is_kept_for_a_shorter_time() {
        let cfg = crate::config::Traders::default();
        assert_eq!(
            (cfg.cache_ttl_seconds, cfg.negative_ttl_seconds),
            (86_400, 300)
        );
        let minute = 60_000;
        assert!(fresh(&cfg, false, 0));
        assert!(fresh(&cfg, false, 5 * minute), "5 minutes: the last moment");
        assert!(!fresh(&cfg, false, 5 * minute + 1));
        assert!(!fresh(&cfg, false, 60 * minute));
        assert!(
            fresh(&cfg, true, 60 * minute),
            "a registered trader's: a day"
        );
        assert!(fresh(&cfg, true, 24 * 60 * minute));
        assert!(!fresh(&cfg, true, 24 * 60 * minute + 1));
        // 0: "not registered" is never taken from the cache.
        let never = crate::config::Traders {
            negative_ttl_seconds: 0,
            ..cfg.clone()
        };
        assert!(!fresh(&never, false, 1));
        assert!(fresh(&never, true, 1));
        // Huge settings do not overflow into "expired".
        let long = crate::config::Traders {
            cache_ttl_seconds: u64::MAX,
            negative_ttl_seconds: u64::MAX,
            ..cfg
        };
        assert!(fresh(&long, true, i64::MAX) && fresh(&long, false, i64::MAX));
    }
}
