//! Test tooling shared by the workspace's tests and the benchmark: for now a throwaway
//! PostgreSQL server (`pgcluster`); the multi-node cluster and the tests' network helpers
//! move here as the node is split (ARCHITECTURE.md).
//! **Invariant:** depends only on `support`, so that any crate may dev-depend on it.
#![forbid(unsafe_code)]

pub mod pgcluster;
