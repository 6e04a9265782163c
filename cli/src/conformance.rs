//! `tereze conformance`: the conformance suite against any node (docs/conformance.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;
use tereze_conformance::{report, Config, Target, Tester};

use crate::common::Failure;

#[derive(Debug, Subcommand)]
pub(crate) enum ConformanceCommand {
    /// Run the suite against a node as a peer node of the tester state: console progress,
    /// and reports on request. Exit 0 when every case that ran passed and none was left
    /// unrun, 1 otherwise.
    Run(Box<RunArgs>),
    /// Print the catalogue: every case with its suite, title and requirement.
    List {
        /// Markdown, as docs/conformance.md includes it.
        #[arg(long)]
        markdown: bool,
    },
}

/// What `tereze conformance run` needs.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The node's Exchange address, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    target: String,
    /// The name in the target's TLS certificate (default: HOST).
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// The target state's anchors (PEM): its TLS certificate and its signatures chain to them.
    #[arg(long, value_name = "FILE")]
    ca: PathBuf,
    /// The target's state (the recipient of the suite's messages).
    #[arg(long, value_name = "STATE")]
    target_state: String,
    /// The tester's TLS certificate (PEM), listed in the target's trust space.
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// The key of --cert (PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The tester's state.
    #[arg(long, value_name = "STATE")]
    state: String,
    /// The tester state's document-signing certificate and key (PEM).
    #[arg(long, value_name = "FILE")]
    signer_cert: PathBuf,
    /// The key of --signer-cert (PEM).
    #[arg(long, value_name = "FILE")]
    signer_key: PathBuf,
    /// The tester state's CA certificate and key: lets cases issue expired and not yet
    /// valid signers (those cases are reported "not run" without them).
    #[arg(long, value_name = "FILE", requires = "issuer_key")]
    issuer_cert: Option<PathBuf>,
    /// The key of --issuer-cert (PEM).
    #[arg(long, value_name = "FILE")]
    issuer_key: Option<PathBuf>,
    /// Serve as the tester's node here (HOST:PORT, its endpoint in the target's trust space),
    /// so the target can ask it about the tester state's traders (those cases are "not run"
    /// without it).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Only these suites or case ids (repeatable).
    #[arg(long, value_name = "NAME")]
    suite: Vec<String>,
    /// Seconds one case may take.
    #[arg(long, default_value = "60")]
    case_timeout: u64,
    /// Write a JUnit XML report here (for CI systems).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a readable HTML report here.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write a JSON report here (every result with its evidence).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn read(p: &Path) -> Result<Vec<u8>, Failure> {
    crate::common::read_input(p)
}

fn write(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text)
        .map_err(|e| Failure::Input(format!("{}: cannot write: {e}", path.display())))
}

pub(crate) fn run(cmd: ConformanceCommand) -> Result<(), Failure> {
    match cmd {
        ConformanceCommand::List { markdown } => {
            let cases = tereze_conformance::catalogue();
            let text = if markdown {
                report::catalogue_markdown(&cases)
            } else {
                let mut s = String::new();
                for c in &cases {
                    s.push_str(&format!(
                        "{:<48} {}\n{:<48} → {}\n",
                        c.id, c.title, "", c.requirement
                    ));
                }
                s.push_str(&format!("{} cases\n", cases.len()));
                s
            };
            crate::common::write_stdout(text.as_bytes())
        }
        ConformanceCommand::Run(args) => {
            let RunArgs {
                target,
                server_name,
                ca,
                target_state,
                cert,
                key,
                state,
                signer_cert,
                signer_key,
                issuer_cert,
                issuer_key,
                listen,
                suite,
                case_timeout,
                junit,
                html,
                json,
            } = *args;
            let host = target
                .rsplit_once(':')
                .map(|(h, _)| h.to_owned())
                .ok_or_else(|| {
                    Failure::Input(format!("--target {target:?}: expected HOST:PORT"))
                })?;
            let issuer = match (issuer_cert, issuer_key) {
                (Some(c), Some(k)) => Some((read(&c)?, read(&k)?)),
                _ => None,
            };
            let known: Vec<&str> = tereze_conformance::catalogue()
                .iter()
                .flat_map(|c| [c.suite, c.id])
                .collect();
            if let Some(bad) = suite.iter().find(|s| !known.contains(&s.as_str())) {
                return Err(Failure::Input(format!(
                    "--suite {bad:?}: no such suite or case (tereze conformance list)"
                )));
            }
            let config = Config {
                target: Target {
                    address: target.clone(),
                    server_name: server_name.unwrap_or(host),
                    ca_pem: read(&ca)?,
                    state: target_state,
                },
                tester: Tester {
                    state,
                    tls_cert_pem: read(&cert)?,
                    tls_key_pem: read(&key)?,
                    signer_cert_pem: read(&signer_cert)?,
                    signer_key_pem: read(&signer_key)?,
                    issuer,
                    listen,
                },
                case_timeout: Duration::from_secs(case_timeout.max(1)),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| Failure::Input(format!("cannot start the runtime: {e}")))?;
            let rep = runtime.block_on(tereze_conformance::run(&config, &suite, |i, n, r| {
                println!("{}", report::console_line(i, n, r));
            }));
            println!("{}", report::summary(&rep));
            if let Some(p) = &junit {
                write(p, &report::junit(&rep))?;
            }
            if let Some(p) = &html {
                write(p, &report::html(&rep))?;
            }
            if let Some(p) = &json {
                write(p, &report::json(&rep))?;
            }
            if rep.failed() == 0 && rep.not_run() == 0 {
                Ok(())
            } else {
                Err(Failure::Verdict(format!(
                    "{} failed, {} not run",
                    rep.failed(),
                    rep.not_run()
                )))
            }
        }
    }
}
