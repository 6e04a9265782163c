//! `tereze pki init-dev`: a development trust space with real X.509 chains.

use std::path::PathBuf;

use clap::Subcommand;

use crate::common::Failure;
use tereze_trust::devpki::{self, DevPkiSpec};

#[derive(Debug, Subcommand)]
pub(crate) enum PkiCommand {
    /// Create a development PKI and node configurations: per state a root CA, a node TLS
    /// certificate, a document-signing certificate and node.toml; the trust-space file listing
    /// them all. ECDSA P-256 unless --algorithm says otherwise for a state. For loopback demos
    /// and tests, never for production.
    InitDev {
        /// Directory to write (created; existing files are overwritten).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Member states, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "AM,BY,KZ,KG,RU")]
        states: Vec<String>,
        /// The Commission's hub code (none when empty).
        #[arg(long, default_value = "EEC")]
        hub: String,
        /// States the members reach through the hub rather than directly.
        #[arg(long, value_delimiter = ',', default_value = "KG,AM")]
        via_hub: Vec<String>,
        /// First port; node N uses base+10N (exchange), +1 (window), +2 (http).
        #[arg(long, default_value_t = 17100)]
        base_port: u16,
        /// Certificate validity in days.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Key algorithm of a state's root CA and document signer, as STATE=ALGORITHM,
        /// comma-separated (e.g. KZ=gost2012-256,RU=gost2012-512). ALGORITHM is ecdsa-p256
        /// (the default for states not listed), rsa-2048, gost2012-256 or gost2012-512 (GOST
        /// R 34.10-2012; needs the OpenSSL GOST engine, Debian package libengine-gost-openssl).
        /// TLS keys stay ECDSA P-256: a GOST state gets a second root for TLS (tls-root.pem),
        /// listed as its anchor too.
        #[arg(long, value_name = "STATE=ALG", value_delimiter = ',')]
        algorithm: Vec<String>,
    },
}

pub(crate) fn run(cmd: PkiCommand) -> Result<(), Failure> {
    match cmd {
        PkiCommand::InitDev {
            out,
            states,
            hub,
            via_hub,
            base_port,
            days,
            algorithm,
        } => {
            let algorithms =
                devpki::parse_algorithms(&algorithm).map_err(|e| Failure::Input(e.to_string()))?;
            let spec = DevPkiSpec {
                out: out.clone(),
                states: states.into_iter().filter(|s| !s.is_empty()).collect(),
                hub: (!hub.is_empty()).then_some(hub),
                via_hub: via_hub.into_iter().filter(|s| !s.is_empty()).collect(),
                base_port,
                days,
            };
            let configs =
                devpki::init_with(&spec, &algorithms).map_err(|e| Failure::Input(e.to_string()))?;
            let mut listing = format!("{}\n", out.join("trust-space.toml").display());
            for (code, path) in configs {
                listing.push_str(&format!("{code} {}\n", path.display()));
            }
            crate::common::write_stdout(listing.as_bytes())
        }
    }
}
