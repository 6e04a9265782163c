//! `tereze node run --config node.toml`.

use std::path::PathBuf;

use clap::Subcommand;

use crate::common::Failure;
use tereze_node::NodeConfig;

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Run a node until SIGTERM or SIGINT (then end its streams, drain in-flight work within
    /// `shutdown_seconds`, sign a last audit checkpoint and exit 0, or 75 if the store refused
    /// a write or the checkpoint). Prints
    /// "ready <STATE>" on stdout once it listens. Logs go to stderr (TEREZE_LOG sets the
    /// level, e.g. "info" or "tereze=debug"; TEREZE_LOG_FORMAT=json for JSON lines).
    Run {
        /// The node's configuration (docs/config.md).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

pub(crate) fn init_logging(configured: Option<&str>) {
    tereze_node::init_logging(configured);
}

pub(crate) fn run(cmd: NodeCommand) -> Result<(), Failure> {
    match cmd {
        NodeCommand::Run { config } => {
            let config = NodeConfig::load(&config).map_err(|e| Failure::Input(e.to_string()))?;
            init_logging(config.log.as_deref());
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("tereze")
                // Bounded: under a burst the default 512 threads each keep a stack and an
                // allocator heap long after it (docs/operations.md, memory).
                .max_blocking_threads(config.limits.blocking_threads)
                .build()
                .map_err(|e| Failure::Input(format!("cannot start the runtime: {e}")))?;
            let result = runtime.block_on(tereze_node::run(config));
            // Do not wait on work that can no longer finish (a store that refuses writes, a
            // reader whose client is gone); this is part of shutdown_seconds.
            runtime.shutdown_timeout(tereze_node::RUNTIME_STOP);
            result.map_err(|e| match e {
                e @ (tereze_node::StartError::StoreFailed(_)
                | tereze_node::StartError::FinalCheckpoint { .. }) => {
                    Failure::Unavailable(e.to_string())
                }
                other => Failure::Input(other.to_string()),
            })
        }
    }
}
