//! HTTP/JSON for the reference directories (docs/reference-data.md): queries as of a date,
//! the integrated tariff, the change sets this node holds (what `tereze ref sync` copies), and
//! the door through which an owning authority's signed change set comes in.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tereze_reference_data::{tariff, Applied, Date, LookupError};

use super::answer::{self, Malformed};
use super::reference::{ApplyError, MAX_CHANGE_SET_BYTES, MAX_SETS_PER_FETCH};
use super::Node;

type Shared = State<Arc<Node>>;

/// Reading the directories, the tariff and the change sets (any national client).
pub(crate) fn lookup_routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/v1/reference", get(get_directories))
        .route("/v1/reference/change-sets", get(get_change_sets))
        .route("/v1/reference/tariff/{code}", get(get_tariff))
        .route("/v1/reference/{directory}", get(get_entries))
        .route("/v1/reference/{directory}/{code}", get(get_entry))
}

/// Publishing a signed change set (national clients allowed `reference`).
pub(crate) fn publish_routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/v1/reference/change-sets", post(post_change_set))
        .layer(DefaultBodyLimit::max(MAX_CHANGE_SET_BYTES))
}

use tereze_doors::response::error;

/// Unknown directory, unknown code, or not in force that day: all "no such thing" (404).
fn lookup_error(e: LookupError) -> Response {
    error(StatusCode::NOT_FOUND, e)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AsOf {
    /// `YYYY-MM-DD`; default today (UTC).
    as_of: Option<String>,
    /// Entries whose code or a name starts with this.
    prefix: Option<String>,
    /// `export` or `import` (tariff only).
    flow: Option<String>,
}

fn as_of(q: &AsOf) -> Result<Date, Malformed> {
    match &q.as_of {
        None => Ok(chrono::Utc::now().date_naive()),
        Some(s) => tereze_reference_data::date::parse(s)
            .map_err(|e| Malformed::new("as_of", s, "a date (YYYY-MM-DD)").because(e)),
    }
}

async fn get_directories(State(node): Shared) -> Response {
    let dirs = node.directories();
    let list: Vec<_> = dirs
        .ids()
        .filter_map(|id| dirs.get(id))
        .map(|d| {
            json!({
                "id": d.id,
                "name": d.name,
                "owner": d.owner,
                "version": d.version,
                "entries": d.entries.len(),
                "source": d.source,
            })
        })
        .collect();
    Json(json!({ "directories": list })).into_response()
}

async fn get_entries(
    State(node): Shared,
    Path(directory): Path<String>,
    Query(q): Query<AsOf>,
) -> Response {
    let date = match as_of(&q) {
        Ok(d) => d,
        Err(e) => return answer::response(&e),
    };
    let dirs = node.directories();
    let found = match &q.prefix {
        Some(p) => dirs.search(&directory, p, date),
        None => dirs.list(&directory, date),
    };
    match found {
        Ok(entries) => Json(json!({
            "directory": directory,
            "version": dirs.get(&directory).map_or(0, |d| d.version),
            "as_of": date.to_string(),
            "entries": entries,
        }))
        .into_response(),
        Err(e) => lookup_error(e),
    }
}

async fn get_entry(
    State(node): Shared,
    Path((directory, code)): Path<(String, String)>,
    Query(q): Query<AsOf>,
) -> Response {
    let date = match as_of(&q) {
        Ok(d) => d,
        Err(e) => return answer::response(&e),
    };
    let dirs = node.directories();
    let history = match dirs.history(&directory, &code) {
        Ok(h) => h,
        Err(e) => return lookup_error(e),
    };
    match dirs.entry(&directory, &code, date) {
        Ok(e) => Json(json!({
            "directory": directory,
            "as_of": date.to_string(),
            "entry": e,
            "history": history,
        }))
        .into_response(),
        Err(e) => lookup_error(e),
    }
}

async fn get_tariff(
    State(node): Shared,
    Path(code): Path<String>,
    Query(q): Query<AsOf>,
) -> Response {
    let date = match as_of(&q) {
        Ok(d) => d,
        Err(e) => return answer::response(&e),
    };
    if let Some(f) = &q.flow {
        if f != "export" && f != "import" {
            return error(
                StatusCode::BAD_REQUEST,
                format!("flow: {f:?} is not export or import"),
            );
        }
    }
    let dirs = node.directories();
    match tariff::tariff(&dirs, &code, date) {
        Ok(mut t) => {
            if let Some(f) = &q.flow {
                t.measures.retain(|m| m.flow == "both" || &m.flow == f);
            }
            Json(t).into_response()
        }
        Err(e) => lookup_error(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Since {
    /// Only this directory (default: all).
    directory: Option<String>,
    /// Sets after this number (default 0).
    since: Option<u64>,
}

async fn get_change_sets(State(node): Shared, Query(q): Query<Since>) -> Response {
    let store = node.store();
    let sets = match (&q.directory, q.since) {
        (Some(d), since) => store.change_sets_of(d, since.unwrap_or(0), MAX_SETS_PER_FETCH),
        (None, None) => store.change_sets_after(&Default::default(), MAX_SETS_PER_FETCH),
        (None, Some(_)) => return error(StatusCode::BAD_REQUEST, "since needs directory"),
    };
    let sets = match sets {
        Ok(s) => s,
        Err(e) => return answer::response(&e),
    };
    let list: Vec<_> = sets
        .into_iter()
        .map(|(directory, number, doc)| {
            json!({
                "directory": directory,
                "number": number,
                "document": String::from_utf8_lossy(&doc),
            })
        })
        .collect();
    Json(json!({ "change_sets": list, "limit": MAX_SETS_PER_FETCH })).into_response()
}

async fn post_change_set(State(node): Shared, body: Bytes) -> Response {
    match node.apply_change_set_or_catch_up(body.to_vec()).await {
        Ok(Applied::Now(version)) => {
            Json(json!({ "result": "applied", "version": version })).into_response()
        }
        Ok(Applied::AlreadyApplied) => {
            let version = crate::reference_document::peek(&body)
                .ok()
                .and_then(|h| node.directories().get(&h.directory).map(|d| d.version))
                .unwrap_or(0);
            Json(json!({ "result": "already applied: nothing changed", "version": version }))
                .into_response()
        }
        Err(e) => {
            // A set refused, not the store failing under it.
            if !matches!(e, ApplyError::Store(_)) {
                node.metrics.change_sets_refused.inc();
            }
            answer::response(&e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(as_of: &str) -> AsOf {
        AsOf {
            as_of: Some(as_of.into()),
            prefix: None,
            flow: None,
        }
    }

    #[test]
    fn as_of_is_read_strictly_and_a_refusal_says_why() {
        assert_eq!(
            as_of(&query("2026-01-05")).map(|d| d.to_string()),
            Ok("2026-01-05".into())
        );
        // chrono's `%Y-%m-%d` reads each of these; the reference API does not.
        for (raw, why) in [
            (
                "2026-1-05",
                "the month (MM) takes exactly 2 digits, found \"1\"",
            ),
            (
                "+2026-01-05",
                "the year (YYYY) takes exactly 4 digits, found '+'",
            ),
            (
                " 2026-01-05",
                "the year (YYYY) takes exactly 4 digits, found ' '",
            ),
        ] {
            let e = as_of(&query(raw)).expect_err(raw);
            assert_eq!(
                e.to_string(),
                format!("as_of: {raw:?} is not a date (YYYY-MM-DD): {why}")
            );
        }
    }
}
