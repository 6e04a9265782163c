//! `tereze audit verify DATA_DIR` (or `--store postgres://…`): checks a node's audit chain,
//! and says exactly what it checked: the checkpoints against an anchor (`--anchor`, or the
//! state's document anchors from `--trust-space`), or only against the certificate stored with
//! each (which an attacker who rewrote the store could have re-signed), and their RFC 3161
//! time-stamps against the authorities (`--tsa-cert`, or the state's from `--trust-space`).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use openssl::x509::X509;

use crate::common::Failure;
use tereze_store::audit::AuditReport;
use tereze_store::{verify_audit_file_with, Location, PgOptions, Store};
use tereze_timestamp::{Authority, Evidence};
use tereze_trust::TrustSpace;

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify the hash chain, its signed checkpoints and the message histories of a node's
    /// store: the embedded store in DATA_DIR (the node must be stopped), or a PostgreSQL
    /// store given by --store (read in one consistent snapshot; the replicas may run). Exit 0
    /// when intact, 1 with each problem found (an edited, inserted or deleted entry; a history
    /// that disagrees with the chain; a truncation before the last checkpoint; with --anchor
    /// or --trust-space, a checkpoint whose certificate does not chain to an anchor at its
    /// time). Each checkpoint is checked with the scheme it names (a GOST one needs the
    /// OpenSSL GOST engine, Debian package libengine-gost-openssl). Without --anchor or
    /// --trust-space a checkpoint is checked only against the certificate stored with it,
    /// which proves nothing against whoever could rewrite the store; the output says which.
    /// With --tsa-cert, or a --trust-space whose state lists time-stamping authorities, each
    /// checkpoint's time-stamp token must cover its signature value and come from one of them
    /// (a failure exits 1); checkpoints without a token are listed.
    Verify {
        #[arg(value_name = "DATA_DIR", required_unless_present = "store")]
        data_dir: Option<PathBuf>,
        /// A PostgreSQL store's URL (postgres://user@host:port/database), instead of DATA_DIR.
        #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
        store: Option<String>,
        /// A file holding the PostgreSQL password (owner-only), when the URL has none.
        #[arg(long, value_name = "FILE", requires = "store")]
        store_password_file: Option<PathBuf>,
        /// The node's state's document anchor (PEM, one or more certificates; repeatable):
        /// each checkpoint's certificate, with the intermediates stored beside it, must chain
        /// to one of them at the checkpoint's time.
        #[arg(long, value_name = "CERT", conflicts_with = "trust_space")]
        anchor: Vec<PathBuf>,
        /// The trust space (the signed XML document, which needs --trust-space-anchor, or
        /// TOML) whose --state's document anchors the checkpoints must chain to.
        #[arg(long, value_name = "FILE", requires = "state")]
        trust_space: Option<PathBuf>,
        /// The Commission's anchor (PEM) that signed the --trust-space document.
        #[arg(long, value_name = "FILE", requires = "trust_space")]
        trust_space_anchor: Option<PathBuf>,
        /// The state whose node wrote the store (with --trust-space).
        #[arg(long, value_name = "STATE", requires = "trust_space")]
        state: Option<String>,
        /// A time-stamping authority's certificate (PEM; repeatable) that checkpoint tokens
        /// must chain to, instead of or besides the --trust-space state's authorities.
        #[arg(long, value_name = "PEM")]
        tsa_cert: Vec<PathBuf>,
    },
}

/// An anchor given to the verification and how the output names it.
struct Anchor {
    certificate: X509,
    /// The anchor's subject, with the state it stands for when that is known.
    label: String,
}

pub(crate) fn run(cmd: AuditCommand) -> Result<(), Failure> {
    match cmd {
        AuditCommand::Verify {
            data_dir,
            store,
            store_password_file,
            anchor,
            trust_space,
            trust_space_anchor,
            state,
            tsa_cert,
        } => {
            let (anchors, mut authorities) = match (&trust_space, state.as_deref()) {
                (Some(path), Some(state)) => {
                    state_anchors(path, trust_space_anchor.as_deref(), state)?
                }
                _ => (anchor_files(&anchor)?, Vec::new()),
            };
            authorities.extend(tsa_files(&tsa_cert)?);
            let certs: Vec<X509> = anchors.iter().map(|a| a.certificate.clone()).collect();
            let given = (!certs.is_empty()).then_some(certs.as_slice());
            let (what, report) = match (data_dir, store) {
                (_, Some(url)) => {
                    let password = store_password_file
                        .as_deref()
                        .map(tereze_store::read_password_file)
                        .transpose()
                        .map_err(|e| Failure::Input(e.to_string()))?;
                    let opts = PgOptions::parse(&url, 60_000, password, None)
                        .map_err(|e| Failure::Input(format!("--store: {e}")))?;
                    let what = opts.redacted();
                    let store = Store::open(&Location::Postgres(opts))
                        .map_err(|e| Failure::Input(format!("{what}: {e}")))?;
                    let report = store
                        .verify_audit_with(given)
                        .map_err(|e| Failure::Input(format!("{what}: {e}")))?;
                    (what, report)
                }
                (Some(data_dir), None) => {
                    let path = data_dir.join("node.redb");
                    if !path.exists() {
                        return Err(Failure::Input(format!(
                            "{}: no node store here",
                            path.display()
                        )));
                    }
                    let report = verify_audit_file_with(&path, given)
                        .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
                    (path.display().to_string(), report)
                }
                (None, None) => {
                    return Err(Failure::Input("give DATA_DIR or --store URL".into()));
                }
            };
            let stamps = check_tokens(&report, &authorities);
            let mut report = report;
            for (seq, outcome) in &stamps {
                if let Err(why) = outcome {
                    report
                        .problems
                        .push(format!("checkpoint at entry {seq}: time-stamp: {why}"));
                }
            }
            let out = describe(&report, &anchors, &authorities, &stamps);
            if report.problems.is_empty() {
                crate::common::write_stdout(out.as_bytes())
            } else {
                crate::common::write_stdout(out.as_bytes())?;
                Err(Failure::Verdict(format!(
                    "{what}: the audit chain is not intact:\n  {}",
                    report.problems.join("\n  ")
                )))
            }
        }
    }
}

/// A checkpoint's token checked: the authority that stamped it (its signer's subject and the
/// listed authority's name), or why it fails.
type Stamped = Result<String, String>;

/// Each checkpoint's time-stamp checked against `authorities` (none when none are given):
/// (covered entry, outcome). Checkpoints without a token are not in it.
fn check_tokens(report: &AuditReport, authorities: &[Authority]) -> Vec<(u64, Stamped)> {
    if authorities.is_empty() {
        return Vec::new();
    }
    report
        .checkpoint_results
        .iter()
        .filter_map(|c| {
            let token = c.token.as_deref()?;
            let outcome = Evidence::from_bytes(token)
                .and_then(|e| e.verify(&c.signature, authorities))
                .map(|stamp| format!("{} ({})", stamp.authority, stamp.authority_name))
                .map_err(|e| format!("{e} ({})", e.code()));
            Some((c.seq, outcome))
        })
        .collect()
}

/// The report as the operator reads it: the counts, then what was checked and against what,
/// then the first failing checkpoint, then the verdict.
fn describe(
    report: &AuditReport,
    anchors: &[Anchor],
    authorities: &[Authority],
    stamps: &[(u64, Stamped)],
) -> String {
    let mut out = format!(
        "entries {}\ncheckpoints {}\nafter the last checkpoint {}\n",
        report.entries, report.checkpoints, report.unsigned_tail
    );
    for s in &report.signers {
        out.push_str(&format!("signed by {s}\n"));
    }
    out.push_str(&format!(
        "checked: {} entries walked (hash chain and message histories)\n",
        report.entries
    ));
    let verified = report
        .checkpoint_results
        .iter()
        .filter(|c| c.failure.is_none())
        .count();
    if anchors.is_empty() {
        out.push_str(&format!(
            "checked: {verified} of {} checkpoints against the certificate stored with each checkpoint only: no anchor given (--anchor or --trust-space)\n",
            report.checkpoints
        ));
    } else {
        let mut used: Vec<&str> = Vec::new();
        for c in &report.checkpoint_results {
            if let Some(a) = &c.anchor {
                let label = anchors
                    .iter()
                    .find(|x| tereze_codecs::dsig::subject_of(&x.certificate) == *a)
                    .map_or(a.as_str(), |x| x.label.as_str());
                if !used.contains(&label) {
                    used.push(label);
                }
            }
        }
        let against = if used.is_empty() {
            anchors
                .iter()
                .map(|a| a.label.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            used.join("; ")
        };
        out.push_str(&format!(
            "checked: {verified} of {} checkpoints against anchor {against}\n",
            report.checkpoints
        ));
    }
    let with_token = report
        .checkpoint_results
        .iter()
        .filter(|c| c.token.is_some())
        .count();
    if authorities.is_empty() {
        out.push_str(&format!(
            "time-stamps: not checked (no --tsa-cert, no authority of the --trust-space state); {with_token} of {} checkpoints carry one\n",
            report.checkpoints
        ));
    } else {
        let mut by: Vec<String> = Vec::new();
        for (_, outcome) in stamps {
            if let Ok(who) = outcome {
                if !by.contains(who) {
                    by.push(who.clone());
                }
            }
        }
        let good = stamps.iter().filter(|(_, o)| o.is_ok()).count();
        out.push_str(&format!(
            "time-stamps: {good} of {with_token} tokens verified{}\n",
            if by.is_empty() {
                String::new()
            } else {
                format!(" by authority {}", by.join("; "))
            }
        ));
        let without: Vec<String> = report
            .checkpoint_results
            .iter()
            .filter(|c| c.token.is_none())
            .map(|c| c.seq.to_string())
            .collect();
        if !without.is_empty() {
            out.push_str(&format!(
                "time-stamps: {} checkpoints without a token (entries {})\n",
                without.len(),
                without.join(", ")
            ));
        }
    }
    let first_signature = report
        .checkpoint_results
        .iter()
        .find_map(|c| c.failure.as_ref().map(|f| (c.seq, f.clone())));
    let first_stamp = stamps
        .iter()
        .find_map(|(seq, o)| o.as_ref().err().map(|e| (*seq, format!("time-stamp: {e}"))));
    let first = match (first_signature, first_stamp) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    };
    if let Some((seq, why)) = first {
        out.push_str(&format!(
            "first failure: checkpoint at entry {seq}: {why}\n"
        ));
    }
    out.push_str(if report.problems.is_empty() {
        "intact\n"
    } else {
        "failed\n"
    });
    out
}

/// The certificates of each `--anchor` file.
fn anchor_files(paths: &[PathBuf]) -> Result<Vec<Anchor>, Failure> {
    let mut anchors = Vec::new();
    for path in paths {
        let pem = std::fs::read(path).map_err(|e| {
            Failure::Input(format!("--anchor {}: cannot read: {e}", path.display()))
        })?;
        let certs = X509::stack_from_pem(&pem).map_err(|e| {
            Failure::Input(format!(
                "--anchor {}: not a PEM certificate: {e}",
                path.display()
            ))
        })?;
        if certs.is_empty() {
            return Err(Failure::Input(format!(
                "--anchor {}: no certificate in it",
                path.display()
            )));
        }
        anchors.extend(certs.into_iter().map(|c| Anchor {
            label: tereze_codecs::dsig::subject_of(&c),
            certificate: c,
        }));
    }
    Ok(anchors)
}

/// The authorities of each `--tsa-cert` file.
fn tsa_files(paths: &[PathBuf]) -> Result<Vec<Authority>, Failure> {
    paths
        .iter()
        .map(|path| {
            let pem = std::fs::read(path).map_err(|e| {
                Failure::Input(format!("--tsa-cert {}: cannot read: {e}", path.display()))
            })?;
            Authority::from_pem(&path.display().to_string(), "", &pem)
                .map_err(|e| Failure::Input(format!("--tsa-cert {}: {e}", path.display())))
        })
        .collect()
}

/// The document anchors and time-stamping authorities of `state` in the trust space at `path`.
fn state_anchors(
    path: &Path,
    commission: Option<&Path>,
    state: &str,
) -> Result<(Vec<Anchor>, Vec<Authority>), Failure> {
    let commission = commission
        .map(tereze_trust::read_anchor)
        .transpose()
        .map_err(|e| Failure::Input(format!("--trust-space-anchor: {e}")))?;
    let space = TrustSpace::load(path, commission.as_ref())
        .map_err(|e| Failure::Input(format!("--trust-space: {e}")))?;
    let entry = space.state(state).ok_or_else(|| {
        Failure::Input(format!(
            "--state: {state} is not a state in {}",
            path.display()
        ))
    })?;
    let anchors = entry
        .anchors
        .iter()
        .map(|c| Anchor {
            label: format!("{} ({state})", tereze_codecs::dsig::subject_of(c)),
            certificate: c.clone(),
        })
        .collect();
    Ok((anchors, entry.timestamp_authorities.clone()))
}
