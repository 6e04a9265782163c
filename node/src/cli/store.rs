//! `tereze store probe`: the crash-durability probe behind docs/decisions/0004 (hidden; a
//! diagnostic, not an operator command).

use std::path::PathBuf;

use clap::Subcommand;

use super::Failure;
use crate::store::probe::{self, Engine};

#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Write 4 KiB records, acknowledging each durable batch on stdout ("acked N"), or check
    /// that acknowledged records survived.
    Probe {
        #[arg(long, value_enum)]
        engine: Engine,
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Check records 0..=N instead of writing.
        #[arg(long, value_name = "N", conflicts_with_all = ["start", "count"])]
        check_through: Option<u64>,
        /// Only report how many records the store holds.
        #[arg(long, conflicts_with_all = ["start", "count", "check_through"])]
        count_only: bool,
        /// First key to write.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Records to write (default: until killed).
        #[arg(long)]
        count: Option<u64>,
        /// Records per durable batch.
        #[arg(long, default_value_t = 32)]
        batch: u64,
    },
}

pub(crate) fn run(cmd: StoreCommand) -> Result<(), Failure> {
    match cmd {
        StoreCommand::Probe {
            engine,
            dir,
            check_through,
            count_only,
            start,
            count,
            batch,
        } => {
            if check_through.is_some() || count_only {
                let held = probe::check(engine, &dir, check_through)
                    .map_err(|e| Failure::Verdict(format!("{}: {e}", dir.display())))?;
                return super::write_stdout(format!("ok {held}\n").as_bytes());
            }
            let rate = probe::write(engine, &dir, start, count, batch)
                .map_err(|e| Failure::Input(format!("{}: {e}", dir.display())))?;
            super::write_stdout(format!("rate {rate:.0}\n").as_bytes())
        }
    }
}
