//! Test tooling shared by the workspace's tests, the conformance suite's self-test and the
//! `tereze` binary's `demo` and `bench` (feature `dev-tools`): a throwaway PostgreSQL server
//! (`pgcluster`), a cluster of real node processes (`cluster`), the tests' helpers that start
//! nodes and speak HTTP, gRPC and TLS to them (`net`) or run the binary in a temporary
//! directory (`util`), one stub `Exchange` (`stub`), throwaway SoftHSM2 tokens (`softhsm`), an
//! RFC 3161 time-stamping authority (`tsa`, `openssl ts -reply` over HTTP), a webhook
//! receiver that records, fails and restarts on demand (`webhook`) and a root CA's `openssl ca`
//! that revokes and writes CRLs (`ca`).
//! **Invariant:** knows nothing of the node's code: it drives the `tereze` binary as a process
//! ([`binary::bin`]) and speaks the published protocol (`proto`), so it depends on `support`,
//! `proto`, `codecs` and `trust` (the development PKI) only, never on `node` or `store`, and
//! any of those may dev-depend on it. Never linked into a production build.
#![forbid(unsafe_code)]

pub mod binary;
pub mod ca;
pub mod cluster;
pub mod net;
pub mod pgcluster;
pub mod softhsm;
pub mod stub;
pub mod tsa;
pub mod util;
pub mod webhook;
