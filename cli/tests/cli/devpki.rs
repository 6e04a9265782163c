//! What several modules here set up the same way: a development PKI for KZ and RU made by
//! `tereze pki init-dev`, KZ's document signer from it, and envelopes that signer signs.

use std::path::Path;

use tereze_codecs::dsig::{SignTarget, SigningKey};
use tereze_codecs::envelope::Header;

use crate::net::tereze;
use crate::util::arg;

/// The document the envelopes here carry.
pub const SAMPLE: &str =
    include_str!("../../../codecs/samples/eaeu.export-declaration/valid-grain.xml");

/// Runs `tereze pki init-dev` for KZ and RU into `d`, its ports from `base_port`, with the
/// `extra` flags (`--hub`, `--algorithm`); its exit code and stderr.
pub fn try_init_dev(d: &Path, base_port: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec![
        "pki",
        "init-dev",
        "--out",
        arg(d),
        "--states",
        "KZ,RU",
        "--base-port",
        base_port,
    ];
    args.extend_from_slice(extra);
    let (code, _, err) = tereze(&args);
    (code, err)
}

/// [`try_init_dev`], which must succeed.
pub fn init_dev(d: &Path, base_port: &str, extra: &[&str]) {
    let (code, err) = try_init_dev(d, base_port, extra);
    assert_eq!(code, 0, "init-dev: {err}");
}

/// KZ's document signer of the development PKI in `pki`.
pub fn kz_signer(pki: &Path) -> SigningKey {
    let read = |f: &str| std::fs::read(pki.join("kz").join(f)).expect("signer file");
    SigningKey::from_pem(&read("signer.key"), Some(&read("signer.pem"))).expect("KZ's signer")
}

/// Writes to `path` an envelope with header `h` carrying [`SAMPLE`], the document signed by
/// `key`.
pub fn write_envelope(path: &Path, h: &Header, key: &SigningKey) {
    std::fs::write(path, crate::net::sign(h, SAMPLE, key, SignTarget::Document)).expect("write");
}
