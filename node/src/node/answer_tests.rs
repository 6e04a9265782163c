//! The doors answer every failure alike: each request-path error of the node, rendered through
//! `answer`, gets the gRPC code and HTTP status docs/protocol.md gives it. Kept apart from
//! `answer` so that it alone names the errors of the services (which themselves use `answer`).

use super::answer::*;
use crate::class::{Class, Classify};
use crate::store::StoreError;
use axum::http::{header, StatusCode};
use tonic::Code;

/// Every class, with the pair of statuses the doors answer it with (docs/protocol.md).
const PAIRS: [(Class, Code, StatusCode); 13] = [
    (
        Class::Invalid,
        Code::InvalidArgument,
        StatusCode::BAD_REQUEST,
    ),
    (
        Class::TooLarge,
        Code::InvalidArgument,
        StatusCode::PAYLOAD_TOO_LARGE,
    ),
    (
        Class::Mismatch,
        Code::InvalidArgument,
        StatusCode::UNPROCESSABLE_ENTITY,
    ),
    (Class::NotFound, Code::NotFound, StatusCode::NOT_FOUND),
    (
        Class::Conflict,
        Code::FailedPrecondition,
        StatusCode::CONFLICT,
    ),
    (Class::Contended, Code::Aborted, StatusCode::CONFLICT),
    (
        Class::Busy,
        Code::ResourceExhausted,
        StatusCode::TOO_MANY_REQUESTS,
    ),
    (
        Class::NoRoom,
        Code::ResourceExhausted,
        StatusCode::INSUFFICIENT_STORAGE,
    ),
    (
        Class::Unavailable,
        Code::Unavailable,
        StatusCode::SERVICE_UNAVAILABLE,
    ),
    (Class::Upstream, Code::Unavailable, StatusCode::BAD_GATEWAY),
    (
        Class::OutOfRange,
        Code::OutOfRange,
        StatusCode::RANGE_NOT_SATISFIABLE,
    ),
    (Class::Cancelled, Code::Cancelled, StatusCode::BAD_REQUEST),
    (
        Class::Internal,
        Code::Internal,
        StatusCode::INTERNAL_SERVER_ERROR,
    ),
];

#[test]
fn each_class_has_one_grpc_code_and_one_http_status() {
    for (class, code, http) in PAIRS {
        assert_eq!(grpc_code(class), code, "{class:?}");
        assert_eq!(http_status(class), http, "{class:?}");
    }
}

/// An error's answer at both doors: the gRPC code, the HTTP status and `Retry-After`.
type Pair = (Code, StatusCode, Option<String>);

fn pair<E: Classify>(e: &E) -> Pair {
    let r = response(e);
    let retry = r
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    (status(e).code(), r.status(), retry)
}

fn disk_low() -> crate::node::disk::DiskLow {
    crate::node::disk::DiskLow {
        dir: "/data".into(),
        free_mib: 1,
        promised_mib: 0,
        reserve_mib: 16,
        wanted: "new work".into(),
    }
}

fn io() -> AttachmentError {
    AttachmentError::Io {
        path: "/data/x".into(),
        source: std::io::Error::other("failing disk"),
    }
}

use crate::attachments::AttachmentError;
use crate::node::submit::SubmitError;
use crate::node::transfer::TransferError;

#[test]
fn submission_refusals_answer_alike_at_both_doors() {
    use SubmitError as S;
    let r = |s: &str| Some(s.to_owned());
    let full = crate::node::outbox::Full {
        held: 10,
        reserved: 0,
        wanted: 1,
        max: 10,
    };
    let bytes = crate::node::queue_bytes::Full {
        held: 10,
        wanted: 1,
        max: 10,
    };
    let cases: Vec<(SubmitError, Pair)> = vec![
        (
            S::Invalid("recipient_country: required".into()),
            (Code::InvalidArgument, StatusCode::BAD_REQUEST, None),
        ),
        (
            S::Attachment {
                field: "attachments[0].upload_id".into(),
                source: AttachmentError::UnknownUpload("u".into()),
            },
            (Code::InvalidArgument, StatusCode::BAD_REQUEST, None),
        ),
        (
            S::Attachment {
                field: "body_attachment".into(),
                source: io(),
            },
            (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE, r("30")),
        ),
        (
            S::Busy(full),
            (Code::ResourceExhausted, StatusCode::TOO_MANY_REQUESTS, None),
        ),
        (
            S::TransfersBusy(4),
            (Code::ResourceExhausted, StatusCode::TOO_MANY_REQUESTS, None),
        ),
        (
            S::QueueBytes(bytes),
            (
                Code::ResourceExhausted,
                StatusCode::TOO_MANY_REQUESTS,
                r("1"),
            ),
        ),
        (
            S::PreparingBusy(8),
            (
                Code::ResourceExhausted,
                StatusCode::TOO_MANY_REQUESTS,
                r("1"),
            ),
        ),
        (
            S::PreparingMemory {
                need: 9,
                free: 1,
                limit: 8,
            },
            (
                Code::ResourceExhausted,
                StatusCode::TOO_MANY_REQUESTS,
                r("1"),
            ),
        ),
        (
            S::DiskLow(disk_low()),
            (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE, r("30")),
        ),
        (
            S::ShuttingDown,
            (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE, r("30")),
        ),
        (
            S::Store(StoreError::Closed),
            (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE, r("30")),
        ),
    ];
    for (e, want) in cases {
        assert_eq!(pair(&e), want, "{e}");
    }
}

#[test]
fn transfer_refusals_answer_as_the_protocol_documents() {
    use AttachmentError as A;
    use TransferError as T;
    let r = |s: &str| Some(s.to_owned());
    let upload = uuid::Uuid::from_u128(7);
    let cases: Vec<(TransferError, Pair)> = vec![
        (
            T::Refused(A::BadId("..".into())),
            (Code::InvalidArgument, StatusCode::BAD_REQUEST, None),
        ),
        (
            T::Refused(A::TooLarge { size: 9, limit: 8 }),
            (Code::InvalidArgument, StatusCode::PAYLOAD_TOO_LARGE, None),
        ),
        (
            T::Refused(A::Overrun {
                written: 9,
                size: 8,
            }),
            (Code::InvalidArgument, StatusCode::PAYLOAD_TOO_LARGE, None),
        ),
        (
            T::Refused(A::DigestMismatch {
                declared: "a".into(),
                actual: "b".into(),
            }),
            (
                Code::InvalidArgument,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
            ),
        ),
        (
            T::Refused(A::UnknownUpload(upload.to_string())),
            (Code::NotFound, StatusCode::NOT_FOUND, None),
        ),
        (
            T::Refused(A::Offset {
                offered: 3,
                have: 5,
            }),
            (Code::FailedPrecondition, StatusCode::CONFLICT, None),
        ),
        (
            T::Refused(A::UploadBusy(upload)),
            (Code::Aborted, StatusCode::CONFLICT, None),
        ),
        (
            T::Refused(io()),
            (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE, r("30")),
        ),
        (
            T::Refused(A::Record {
                path: "/data/x.want".into(),
                reason: "EOF".into(),
            }),
            (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE, r("30")),
        ),
        (
            T::Disk(disk_low()),
            (
                Code::ResourceExhausted,
                StatusCode::INSUFFICIENT_STORAGE,
                r("30"),
            ),
        ),
        (
            T::Busy(4),
            (Code::ResourceExhausted, StatusCode::TOO_MANY_REQUESTS, None),
        ),
        (
            T::Stream(std::io::Error::other("reset").into()),
            (Code::Cancelled, StatusCode::BAD_REQUEST, None),
        ),
        (
            T::Stalled { seconds: 30 },
            (Code::Cancelled, StatusCode::BAD_REQUEST, None),
        ),
        (
            T::ShuttingDown,
            (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE, r("30")),
        ),
    ];
    for (e, want) in cases {
        assert_eq!(pair(&e), want, "{e}");
    }
}

#[test]
fn a_fetch_past_the_end_is_out_of_range_at_both_doors() {
    use crate::node::window::FetchError;
    let past = FetchError::PastEnd { offset: 9, size: 8 };
    assert_eq!(
        pair(&past),
        (Code::OutOfRange, StatusCode::RANGE_NOT_SATISFIABLE, None)
    );
    let busy = FetchError::Busy(TransferError::Busy(4));
    assert_eq!(
        pair(&busy),
        (Code::ResourceExhausted, StatusCode::TOO_MANY_REQUESTS, None)
    );
    let gone = FetchError::NotHeld {
        message: uuid::Uuid::from_u128(1),
        id: "a.pdf".into(),
    };
    assert_eq!(pair(&gone), (Code::NotFound, StatusCode::NOT_FOUND, None));
}

#[tokio::test]
async fn a_failed_worker_is_ours_and_a_stopped_one_is_retried() {
    let panicked = tokio::spawn(async { panic!("boom") }).await.unwrap_err();
    let e = TransferError::Worker(panicked);
    assert_eq!(
        pair(&e),
        (Code::Internal, StatusCode::INTERNAL_SERVER_ERROR, None),
        "{e}"
    );
    let stopped = tokio::spawn(std::future::pending::<()>());
    stopped.abort();
    let e = SubmitError::Worker(stopped.await.unwrap_err());
    assert_eq!(
        pair(&e),
        (
            Code::Unavailable,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("30".into())
        ),
        "{e}"
    );
}

#[test]
fn store_refusals_name_what_is_missing_or_in_the_way() {
    let id = uuid::Uuid::from_u128(1);
    assert_eq!(
        pair(&StoreError::NotParked(id)),
        (Code::NotFound, StatusCode::NOT_FOUND, None)
    );
    let expired = StoreError::SignedExpiryPassed { id, expires_at: 0 };
    assert_eq!(
        pair(&expired),
        (Code::FailedPrecondition, StatusCode::CONFLICT, None)
    );
    for e in [
        StoreError::Engine("x".into()),
        StoreError::Io(std::sync::Arc::new(std::io::Error::other("x"))),
        StoreError::Closed,
    ] {
        assert_eq!(
            pair(&e),
            (
                Code::Unavailable,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("30".into())
            ),
            "{e}"
        );
    }
    assert_eq!(
        store_status(&StoreError::Closed).message(),
        "store: the store is shutting down"
    );
}

#[test]
fn trader_and_change_set_refusals_say_whose_fault_it_is() {
    use crate::node::reference::ApplyError;
    use crate::node::traders::ResolveError;
    use tereze_reference_data::ChangeError;
    let bad_id = tereze_reference_data::trader::parse("K").unwrap_err();
    let cases: Vec<(ResolveError, (Code, StatusCode))> = vec![
        (
            ResolveError::Id {
                id: "K".into(),
                source: bad_id,
            },
            (Code::InvalidArgument, StatusCode::BAD_REQUEST),
        ),
        (
            ResolveError::UnknownState { state: "XX".into() },
            (Code::InvalidArgument, StatusCode::BAD_REQUEST),
        ),
        (
            ResolveError::Unreachable {
                state: "RU".into(),
                reason: "no answer within 5 s".into(),
            },
            (Code::Unavailable, StatusCode::BAD_GATEWAY),
        ),
        (
            ResolveError::Store(StoreError::Closed),
            (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
        ),
    ];
    for (e, (code, http)) in cases {
        let (c, h, _) = pair(&e);
        assert_eq!((c, h), (code, http), "{e}");
    }
    let gap = ApplyError::Change(ChangeError::Gap {
        directory: "tnved".into(),
        have: 1,
        got: 3,
    });
    assert_eq!(pair(&gap).1, StatusCode::CONFLICT);
    let not_owner = ApplyError::Change(ChangeError::UnknownDirectory {
        directory: "x".into(),
    });
    assert_eq!(pair(&not_owner).1, StatusCode::BAD_REQUEST);
    assert_eq!(
        pair(&ApplyError::Store(StoreError::Closed)).1,
        StatusCode::SERVICE_UNAVAILABLE
    );
}
