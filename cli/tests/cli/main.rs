//! The `tereze` command line as a user drives it: the real binary in temporary directories,
//! its output, exit codes and what stderr says; and the deployment files that call it. No test
//! here starts a node that listens: they link once and run in seconds.
//!
//! One module per former test binary, so `cargo test -p tereze --test cli -- cli_xml::`
//! runs what `--test cli_xml` used to.

use tereze_testkit::net;
use tereze_testkit::util;

mod cli_audit;
mod cli_gost;
mod cli_node;
mod cli_pkcs11;
mod cli_recognise;
mod cli_reference;
mod cli_translate;
mod cli_trust;
mod cli_xml;
mod cli_xml_verify;
mod deploy;
mod devpki;
