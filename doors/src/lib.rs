//! The node's listening edge (DESIGN §9): the HTTP/1.1 serving loop of the national, peer and
//! admin doors (`serve`), the TLS accept loop (`accept`), the bounds on connections and
//! `Window` calls, who may call the national doors (`national`), the admission counters that
//! push overload back at the door (`queue_bytes`, `outbox`, `disk`), the JSON error body
//! (`response`) and the shutdown budget with the streams it ends (`shutdown`).
//! **Invariant:** knows nothing of the node's state or services (ARCHITECTURE.md, "Dependency
//! rules"): it knows `support`, `store` (only the committer's `Room`, the disk floor) and
//! `trust` (only `NationalTls`, a field of `[national]`); the node hands it routers, services
//! and configurations and reads its counters.
#![forbid(unsafe_code)]

pub mod accept;
pub mod calls;
pub mod config;
pub mod disk;
pub mod national;
pub mod outbox;
pub mod queue_bytes;
pub mod response;
pub mod serve;
pub mod shutdown;
