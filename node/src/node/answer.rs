//! How the doors answer a failed request: a [`Class`] becomes a gRPC code or an HTTP status
//! here and nowhere else, so the Window, the HTTP intake, the admin API and the Exchange give
//! the same failure the same meaning. The error's own text is the message either way.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use tonic::{Code, Status};

use crate::class::{Class, Classify};
use crate::store::StoreError;
use tereze_doors::response::error;

/// A request argument that cannot be read: what was sent for `field` (empty: a path
/// segment), and what it must be. Always the client's mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed {
    pub(crate) field: &'static str,
    pub(crate) value: String,
    /// What a value must be, as the message says it ("a urn:uuid", "RFC 3339").
    pub(crate) wanted: &'static str,
    /// What exactly is wrong with it, when the reader says (`the month (MM) takes exactly 2
    /// digits, found "1"`).
    pub(crate) why: Option<String>,
}

impl Malformed {
    pub(crate) fn new(field: &'static str, value: &str, wanted: &'static str) -> Self {
        Self {
            field,
            value: value.to_owned(),
            wanted,
            why: None,
        }
    }

    /// The same, saying what exactly is wrong.
    pub(crate) fn because(mut self, why: impl std::fmt::Display) -> Self {
        self.why = Some(why.to_string());
        self
    }
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{:?} is not {}", self.value, self.wanted)?;
        match &self.why {
            Some(why) => write!(f, ": {why}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Malformed {}

impl Classify for Malformed {
    fn class(&self) -> Class {
        Class::Invalid
    }
}

/// The gRPC code for a class. Size and digest refusals are the client's mistakes like any
/// other (`INVALID_ARGUMENT`); gRPC has no finer codes for them.
pub(crate) fn grpc_code(class: Class) -> Code {
    match class {
        Class::Invalid | Class::TooLarge | Class::Mismatch => Code::InvalidArgument,
        Class::NotFound => Code::NotFound,
        Class::Conflict => Code::FailedPrecondition,
        Class::OutOfRange => Code::OutOfRange,
        Class::Contended => Code::Aborted,
        Class::Busy | Class::NoRoom => Code::ResourceExhausted,
        Class::Unavailable | Class::Upstream => Code::Unavailable,
        Class::Cancelled => Code::Cancelled,
        Class::Internal => Code::Internal,
    }
}

/// The HTTP status for a class. A client's stream that broke off is a bad request: HTTP has
/// no status for a body the client stopped sending.
pub(crate) fn http_status(class: Class) -> StatusCode {
    match class {
        Class::Invalid | Class::Cancelled => StatusCode::BAD_REQUEST,
        Class::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Class::Mismatch => StatusCode::UNPROCESSABLE_ENTITY,
        Class::NotFound => StatusCode::NOT_FOUND,
        Class::Conflict | Class::Contended => StatusCode::CONFLICT,
        Class::OutOfRange => StatusCode::RANGE_NOT_SATISFIABLE,
        Class::Busy => StatusCode::TOO_MANY_REQUESTS,
        Class::NoRoom => StatusCode::INSUFFICIENT_STORAGE,
        Class::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Class::Upstream => StatusCode::BAD_GATEWAY,
        Class::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The gRPC answer to `e`.
pub(crate) fn status<E: Classify + ?Sized>(e: &E) -> Status {
    Status::new(grpc_code(e.class()), e.to_string())
}

/// The gRPC answer to a store failure met while serving a call (the text says it was the
/// store's).
pub(crate) fn store_status(e: &StoreError) -> Status {
    Status::new(grpc_code(e.class()), format!("store: {e}"))
}

/// The HTTP answer to `e`: `{"error": …}` with its status, and `Retry-After` when the error
/// gives one.
pub(crate) fn response<E: Classify + ?Sized>(e: &E) -> Response {
    let mut r = error(http_status(e.class()), e);
    if let Some(s) = e.retry_after() {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}
