//! The published gRPC contracts (`proto/tereze/v1/*.proto`): `Exchange` between nodes and
//! `Window` for the national system, compiled once (client and server) for the node, the
//! conformance suite and the tests.
//! **Invariant:** depends on no other crate of the workspace; the `.proto` files are the
//! contract, this crate only their generated code.
#![allow(clippy::all, clippy::pedantic)]

tonic::include_proto!("tereze.v1");
