//! The JSON error body every HTTP door answers with: `{"error": "..."}` and a status, so a
//! client reads every door's refusals the same way.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A JSON error answer `{"error": msg}` (every HTTP interface of the node answers so).
pub fn error(code: StatusCode, msg: impl std::fmt::Display) -> Response {
    (code, Json(json!({ "error": msg.to_string() }))).into_response()
}

/// The answer to a JSON body that could not be taken: 413 when it is over the interface's
/// size limit (reading stopped there), else 400 with what was wrong.
pub fn bad_body(e: axum::extract::rejection::JsonRejection) -> Response {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body over this interface's size limit: {}", e.body_text()),
        )
    } else {
        error(StatusCode::BAD_REQUEST, e.body_text())
    }
}
