//! The signing-key flags every signing command shares (`--key`, `--cert`, `--pkcs11-module`,
//! `--pin-file`), loaded through `tereze_hsm`'s one loader: a PEM file or a key in a PKCS#11
//! token, the same strings node.toml takes.

use std::path::PathBuf;

use tereze_codecs::dsig::SigningKey;
use tereze_hsm::{load_signing_key, Fields, Pkcs11Settings};

use crate::common::Failure;

/// A signing key and its certificate.
#[derive(Debug, clap::Args)]
pub(crate) struct SigningKeyArgs {
    /// The private key: a PEM file (PKCS#8 or traditional, unencrypted; "-" for stdin), or a
    /// key in a PKCS#11 token as `pkcs11:token=LABEL;object=LABEL` (`;id=%01` to choose by
    /// CKA_ID), which needs --pkcs11-module and --pin-file. Quote a URI: the shell splits
    /// commands at ';'.
    #[arg(long, value_name = "KEY.pem|pkcs11:URI")]
    key: String,
    /// The signer's certificate (PEM); further certificates in the file are sent as the chain.
    #[arg(long, value_name = "CERT.pem")]
    cert: PathBuf,
    /// For a pkcs11: key: the token's PKCS#11 module library
    /// (e.g. /usr/lib/softhsm/libsofthsm2.so).
    #[arg(long, value_name = "MODULE.so")]
    pkcs11_module: Option<PathBuf>,
    /// For a pkcs11: key: a file holding the token's user PIN, readable by its owner only.
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
}

impl SigningKeyArgs {
    /// Opens the key, checked against the certificate.
    pub(crate) fn load(&self) -> Result<SigningKey, Failure> {
        let cert_pem = crate::common::read_input(&self.cert)?;
        if self.key == "-" {
            let key_pem = crate::common::read_input(std::path::Path::new("-"))?;
            return SigningKey::from_pem(&key_pem, Some(&cert_pem))
                .map_err(|e| Failure::Input(format!("--key -: {e}")));
        }
        let settings = Pkcs11Settings {
            module: self.pkcs11_module.clone(),
            pin_file: self.pin_file.clone(),
        };
        load_signing_key(&self.key, Some(&cert_pem), &settings, &Fields::CLI)
            .map_err(|e| Failure::Input(e.to_string()))
    }
}
