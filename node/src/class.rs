//! One classification of the errors a request can end with: whose fault it is and whether
//! trying again can help. Each request-path error says its [`Class`] once (the
//! [`Classify`] trait); the doors render a class as a gRPC code or an HTTP status through one
//! function each (`node::answer`), so every door answers the same failure the same way.
//! This module knows nothing of gRPC or HTTP.

/// What kind of failure an error is, as a client needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// The request is wrong; sending it again cannot help.
    Invalid,
    /// The request is over a size limit.
    TooLarge,
    /// The bytes received are not the ones declared (another digest).
    Mismatch,
    /// What the request names is not here.
    NotFound,
    /// The request assumes another state than the one held (e.g. another offset).
    Conflict,
    /// An offset past the end of what is held.
    OutOfRange,
    /// Another request holds what this one needs; retry when it ends.
    Contended,
    /// The node is at one of its bounds; retry later.
    Busy,
    /// The disk has no room for what the request would write; retry later.
    NoRoom,
    /// The node cannot take the request now (shutting down, disk reserve, I/O); retry later.
    Unavailable,
    /// The node asked another one, which did not answer or answered wrongly.
    Upstream,
    /// The client's stream broke off or stalled.
    Cancelled,
    /// The node failed in a way retrying does not mend.
    Internal,
}

impl Class {
    /// A blocking worker's failure: a panic is ours; a worker the shutdown stopped before it
    /// ran is retried once the node is back.
    pub(crate) fn of_worker(e: &tokio::task::JoinError) -> Class {
        if e.is_cancelled() {
            Class::Unavailable
        } else {
            Class::Internal
        }
    }
}

/// An error that knows its [`Class`].
pub(crate) trait Classify: std::error::Error {
    fn class(&self) -> Class;

    /// Seconds after which a client may try again, when the error says so (HTTP
    /// `Retry-After`). By default: 30 for the node's own trouble (no room, unavailable).
    fn retry_after(&self) -> Option<u32> {
        match self.class() {
            Class::NoRoom | Class::Unavailable => Some(30),
            _ => None,
        }
    }
}

// The classes of the errors of the store and the attachments, kept here rather than beside
// them so that those parts need not know of requests (they become crates of their own).

impl Classify for crate::attachments::AttachmentError {
    fn class(&self) -> Class {
        use crate::attachments::AttachmentError as A;
        match self {
            // The node's own files failed: retry once the disk is mended.
            A::Io { .. } | A::Record { .. } => Class::Unavailable,
            A::TooLarge { .. } | A::Overrun { .. } => Class::TooLarge,
            A::DigestMismatch { .. } => Class::Mismatch,
            A::UnknownUpload(_) | A::NotHeld { .. } => Class::NotFound,
            A::Offset { .. } | A::UploadIncomplete { .. } => Class::Conflict,
            A::UploadBusy(_) => Class::Contended,
            A::BadId(_)
            | A::ChunkDigest { .. }
            | A::ChunkTooLarge { .. }
            | A::Short { .. }
            | A::Conflict { .. } => Class::Invalid,
        }
    }
}

impl Classify for crate::store::StoreError {
    fn class(&self) -> Class {
        match self {
            Self::Engine(_) | Self::Io(_) | Self::Corrupt(_) | Self::Closed | Self::Schema(_) => {
                Class::Unavailable
            }
            Self::NotQueued(_)
            | Self::NotParked(_)
            | Self::NotInInbox(_)
            | Self::NotQuarantined(_)
            | Self::NotConformance(_)
            | Self::NotAwaited(_) => Class::NotFound,
            Self::AlreadyQueued(_) | Self::SignedExpiryPassed { .. } => Class::Conflict,
        }
    }
}
