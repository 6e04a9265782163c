//! One classification of the errors a request can end with: whose fault it is and whether
//! trying again can help. Each request-path error says its [`Class`] once (the
//! [`Classify`] trait); the doors render a class as a gRPC code or an HTTP status through one
//! function each (`node::answer` in the node), so every door answers the same failure the same way.
//! This module knows nothing of gRPC or HTTP.

/// What kind of failure an error is, as a client needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
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
    pub fn of_worker(e: &tokio::task::JoinError) -> Class {
        if e.is_cancelled() {
            Class::Unavailable
        } else {
            Class::Internal
        }
    }
}

/// An error that knows its [`Class`].
pub trait Classify: std::error::Error {
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
