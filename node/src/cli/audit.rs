//! `tereze audit verify DATA_DIR`: checks a stopped node's audit chain.

use std::path::PathBuf;

use clap::Subcommand;

use super::Failure;
use crate::store::audit;

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify the hash chain, its signed checkpoints and the message histories in a node's
    /// data directory (the node must be stopped). Exit 0 when intact, 1 with each problem
    /// found (an edited, inserted or deleted entry; a history that disagrees with the chain;
    /// a truncation before the last checkpoint).
    Verify {
        #[arg(value_name = "DATA_DIR")]
        data_dir: PathBuf,
    },
}

pub(crate) fn run(cmd: AuditCommand) -> Result<(), Failure> {
    match cmd {
        AuditCommand::Verify { data_dir } => {
            let path = data_dir.join("node.redb");
            if !path.exists() {
                return Err(Failure::Input(format!(
                    "{}: no node store here",
                    path.display()
                )));
            }
            let db = redb::Database::open(&path).map_err(|e| {
                Failure::Input(format!(
                    "{}: cannot open: {e} (is the node still running?)",
                    path.display()
                ))
            })?;
            let report = audit::verify(&db)
                .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
            let mut out = format!(
                "entries {}\ncheckpoints {}\nafter the last checkpoint {}\n",
                report.entries, report.checkpoints, report.unsigned_tail
            );
            for s in &report.signers {
                out.push_str(&format!("signed by {s}\n"));
            }
            if report.problems.is_empty() {
                out.push_str("intact\n");
                super::write_stdout(out.as_bytes())
            } else {
                super::write_stdout(out.as_bytes())?;
                Err(Failure::Verdict(format!(
                    "{}: the audit chain is not intact:\n  {}",
                    path.display(),
                    report.problems.join("\n  ")
                )))
            }
        }
    }
}
