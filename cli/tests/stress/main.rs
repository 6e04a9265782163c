//! The node under stress, with figures printed for docs/reliability.md: SIGKILL campaigns,
//! faults (a peer down, a full disk, stalls), hostile input at every entry point, fuzzed
//! intake, and the bench and overload runs. `deploy/chaos` runs these modules at full size in
//! a release build, one test at a time (`--test-threads 1`), selecting them by module:
//! `cargo test --release -p tereze --test stress -- chaos:: faults:: hostile:: fuzz_grpc::`.
//! Each test starts its own nodes on its own block of ports (`net::Net::init`). The campaigns
//! that had a test binary of their own (chaos, crash, fuzz_grpc) still run alone
//! (`net::machine_alone`); the others share the machine among themselves
//! (`net::machine_shared`), two at a time on two cores, as they did in their own binaries.

use tereze_testkit::net;

mod bench;
mod chaos;
mod crash;
mod faults;
mod fuzz_grpc;
mod hostile;
