//! `tereze audit verify DATA_DIR` (or `--store postgres://…`): checks a node's audit chain.

use std::path::PathBuf;

use clap::Subcommand;

use crate::common::Failure;
use tereze_store::{verify_audit_file, Location, PgOptions, Store};

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify the hash chain, its signed checkpoints and the message histories of a node's
    /// store: the embedded store in DATA_DIR (the node must be stopped), or a PostgreSQL
    /// store given by --store (read in one consistent snapshot; the replicas may run). Exit 0
    /// when intact, 1 with each problem found (an edited, inserted or deleted entry; a history
    /// that disagrees with the chain; a truncation before the last checkpoint). Each checkpoint
    /// is checked with the scheme it names (a GOST one needs the OpenSSL GOST engine, Debian
    /// package libengine-gost-openssl).
    Verify {
        #[arg(value_name = "DATA_DIR", required_unless_present = "store")]
        data_dir: Option<PathBuf>,
        /// A PostgreSQL store's URL (postgres://user@host:port/database), instead of DATA_DIR.
        #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
        store: Option<String>,
        /// A file holding the PostgreSQL password (owner-only), when the URL has none.
        #[arg(long, value_name = "FILE", requires = "store")]
        store_password_file: Option<PathBuf>,
    },
}

pub(crate) fn run(cmd: AuditCommand) -> Result<(), Failure> {
    match cmd {
        AuditCommand::Verify {
            data_dir,
            store,
            store_password_file,
        } => {
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
                        .verify_audit()
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
                    let report = verify_audit_file(&path)
                        .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
                    (path.display().to_string(), report)
                }
                (None, None) => {
                    return Err(Failure::Input("give DATA_DIR or --store URL".into()));
                }
            };
            let mut out = format!(
                "entries {}\ncheckpoints {}\nafter the last checkpoint {}\n",
                report.entries, report.checkpoints, report.unsigned_tail
            );
            for s in &report.signers {
                out.push_str(&format!("signed by {s}\n"));
            }
            if report.problems.is_empty() {
                out.push_str("intact\n");
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
