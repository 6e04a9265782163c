//! The side-by-side benchmark suite (issue 13): Tereze's XMLDSig, C14N and two-node relay
//! measured in one run next to python-xmlsec (libxmlsec1), the `xmlsec1` command, lxml and a
//! RabbitMQ durable queue, with `openssl speed` as the physical reference; GOST R 34.10-2012
//! next to its crypto limit on the same machine (issue 25). The binary
//! (`tereze-bench`, run by `scripts/bench`) measures; this library holds the parts that are
//! tested without timing anything: the documents, the in-process loops, the parsing of the
//! other tools' output, the ratios, the targets and the tables.

pub mod docs;
pub mod gost;
pub mod measure;
pub mod report;
