//! A development trust space for loopback demos and tests (`tereze pki init-dev`): per state
//! a root CA, a node TLS certificate (server and client authentication, named
//! `node.<cc>.tereze.test`, `localhost` and 127.0.0.1) and a document-signing certificate, all
//! real X.509 from OpenSSL; the trust-space file listing them; and a `node.toml` per node.
//! Never for production: production keys come from each state's accredited CA.
//!
//! A state's CA and document signer use the key algorithm asked for it ([`KeyAlgorithm`],
//! `tereze pki init-dev --algorithm KZ=gost2012-256`), ECDSA P-256 by default. TLS stays on
//! ECDSA P-256 whatever the state's algorithm (rustls has no GOST): a state whose CA is not
//! ECDSA gets a second root, its TLS CA, and the trust space lists both as its anchors.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use tereze_codecs::pki::{
    generate_key, issue_certificate, issue_tls_certificate, CertificateSpec, KeyKind,
};

/// What to create.
#[derive(Debug, Clone)]
pub struct DevPkiSpec {
    pub out: PathBuf,
    pub states: Vec<String>,
    pub hub: Option<String>,
    /// Recipients the members reach through the hub.
    pub via_hub: Vec<String>,
    /// The first node's exchange port; each node takes the next three ports of its block of 10.
    pub base_port: u16,
    pub days: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum DevPkiError {
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("OpenSSL: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    #[error("certificate: {0}")]
    Certificate(#[from] tereze_codecs::dsig::DsigError),
    /// What is wrong with the request (the text is the whole story).
    #[error("{0}")]
    Spec(String),
    /// The trust space the spec describes could not be read.
    #[error(transparent)]
    TrustSpace(#[from] crate::space::ReadError),
    /// The trust space could not be signed.
    #[error("{0}")]
    Signing(#[source] tereze_codecs::dsig::SignError),
    /// What is wrong with a state's key algorithm (`--algorithm`).
    #[error("--algorithm: {0}")]
    Algorithm(String),
    /// A state's keys of `algorithm` could not be made (for GOST: the engine is missing, and
    /// the cause names the package).
    #[error("{state}: cannot make {algorithm} keys: {source}")]
    KeyAlgorithm {
        state: String,
        algorithm: &'static str,
        #[source]
        source: tereze_codecs::dsig::DsigError,
    },
}

/// Ports of one node.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub exchange: u16,
    pub window: u16,
    pub http: u16,
    /// The operators' admin API (HTTPS).
    pub admin: u16,
    /// The peer door (`GET /v1/crl`).
    pub peer: u16,
}

fn key() -> Result<PKey<Private>, DevPkiError> {
    generate_key(KeyKind::EcP256).map_err(DevPkiError::from)
}

/// The key algorithm of a state's root CA and document signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    #[default]
    EcdsaP256,
    Rsa2048,
    /// GOST R 34.10-2012, 256-bit key, signing with Streebog-256 (needs the GOST engine).
    Gost2012_256,
    /// GOST R 34.10-2012, 512-bit key, signing with Streebog-512 (needs the GOST engine).
    Gost2012_512,
}

impl KeyAlgorithm {
    const ALL: [KeyAlgorithm; 4] = [
        Self::EcdsaP256,
        Self::Rsa2048,
        Self::Gost2012_256,
        Self::Gost2012_512,
    ];

    /// The name `--algorithm` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::Rsa2048 => "rsa-2048",
            Self::Gost2012_256 => "gost2012-256",
            Self::Gost2012_512 => "gost2012-512",
        }
    }

    /// The algorithm a name (any case) names.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// The state's `[state.algorithms]` in the trust space: a GOST state's documents may be
    /// signed with its GOST method and Streebog only, so an ECDSA signature in its name (the
    /// TLS root is ECDSA) is refused as a downgrade; ECDSA and RSA states keep the defaults.
    fn policy(self) -> &'static str {
        match self {
            Self::EcdsaP256 | Self::Rsa2048 => "",
            Self::Gost2012_256 => {
                "\n[state.algorithms]\nsignature = [\"gost2012-256\"]\ndigest = [\"gost2012-256\"]\n"
            }
            Self::Gost2012_512 => {
                "\n[state.algorithms]\nsignature = [\"gost2012-512\"]\ndigest = [\"gost2012-512\"]\n"
            }
        }
    }

    fn kind(self) -> KeyKind {
        match self {
            Self::EcdsaP256 => KeyKind::EcP256,
            Self::Rsa2048 => KeyKind::Rsa(2048),
            Self::Gost2012_256 => KeyKind::Gost2012_256,
            Self::Gost2012_512 => KeyKind::Gost2012_512,
        }
    }
}

/// Reads `STATE=ALGORITHM` items (`KZ=gost2012-256`), each state at most once.
pub fn parse_algorithms(items: &[String]) -> Result<Vec<(String, KeyAlgorithm)>, DevPkiError> {
    let mut out: Vec<(String, KeyAlgorithm)> = Vec::new();
    for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        let (state, name) = item.split_once('=').ok_or_else(|| {
            DevPkiError::Algorithm(format!(
                "{item:?} is not STATE=ALGORITHM (e.g. KZ=gost2012-256)"
            ))
        })?;
        let state = state.trim().to_ascii_uppercase();
        let algorithm = KeyAlgorithm::from_name(name.trim()).ok_or_else(|| {
            let known: Vec<&str> = KeyAlgorithm::ALL.iter().map(|a| a.name()).collect();
            DevPkiError::Algorithm(format!(
                "{item}: unknown algorithm {:?}; use one of {}",
                name.trim(),
                known.join(", ")
            ))
        })?;
        if out.iter().any(|(s, _)| *s == state) {
            return Err(DevPkiError::Algorithm(format!("{state} is given twice")));
        }
        out.push((state, algorithm));
    }
    Ok(out)
}

enum Kind<'a> {
    Root,
    Tls { names: &'a [String] },
    Signer,
}

fn issue(
    subject: &[(&str, String)],
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    kind: Kind<'_>,
    days: u32,
) -> Result<X509, DevPkiError> {
    let subject: Vec<(&str, &str)> = subject.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let spec = CertificateSpec {
        subject: &subject,
        not_before_days: -1,
        not_after_days: i64::from(days),
        is_ca: matches!(kind, Kind::Root),
    };
    Ok(match kind {
        Kind::Tls { names } => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            issue_tls_certificate(&spec, key, issuer, &names)?
        }
        Kind::Root | Kind::Signer => issue_certificate(&spec, key, issuer)?,
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), DevPkiError> {
    std::fs::write(path, bytes).map_err(|e| DevPkiError::Io(path.display().to_string(), e))
}

fn write_key(path: &Path, key: &PKey<Private>) -> Result<(), DevPkiError> {
    write(path, &key.private_key_to_pem_pkcs8()?)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| DevPkiError::Io(path.display().to_string(), e))?;
    }
    Ok(())
}

/// A fresh token (64 hex characters: the operator's, a national client's), readable by the
/// owner only.
fn write_token(path: &Path) -> Result<(), DevPkiError> {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes)?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write(path, format!("{token}\n").as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| DevPkiError::Io(path.display().to_string(), e))?;
    }
    Ok(())
}

/// Writes `trust-space.xml`: the TOML source as the XML document, signed by the hub's
/// (the Commission's) document-signing key.
fn sign_trust_space(out: &Path, hub: &str) -> Result<(), DevPkiError> {
    let source = out.join("trust-space.toml");
    let bytes =
        std::fs::read(&source).map_err(|e| DevPkiError::Io(source.display().to_string(), e))?;
    let (file, _) = crate::TrustSpace::read(&bytes, None)?;
    let mut doc = crate::document::to_document(&file);
    let dir = out.join(hub.to_ascii_lowercase());
    let read = |f: &str| {
        let p = dir.join(f);
        std::fs::read(&p).map_err(|e| DevPkiError::Io(p.display().to_string(), e))
    };
    let key = tereze_codecs::dsig::SigningKey::from_pem(
        &read("signer.key")?,
        Some(&read("signer.pem")?),
    )?;
    crate::document::sign(&mut doc, &key).map_err(DevPkiError::Signing)?;
    write(&out.join("trust-space.xml"), doc.to_xml().as_bytes())
}

/// Lists a time-stamping authority for `state` in a development trust space written by
/// [`init`] in `out` (`url`, `certificates` PEM; `required`: the state's envelopes must carry a
/// token), checks the result, and signs `trust-space.xml` again when `hub` is given (as
/// [`init`] does). For tests and demos that run a test authority (`testkit::tsa`); nodes read
/// the change at their next start or trust-space reload.
pub fn add_timestamp_authority(
    out: &Path,
    hub: Option<&str>,
    state: &str,
    url: &str,
    certificates: &str,
    required: bool,
) -> Result<(), DevPkiError> {
    let source = out.join("trust-space.toml");
    let text = std::fs::read_to_string(&source)
        .map_err(|e| DevPkiError::Io(source.display().to_string(), e))?;
    let head = format!("[[state]]\ncode = \"{state}\"\n");
    let start = text.find(&head).ok_or_else(|| {
        DevPkiError::Spec(format!("{state} is not a state of {}", source.display()))
    })? + head.len();
    // The state's block ends where the next state or the recognition matrix begins.
    let end = ["\n[[state]]", "\n# Recognition", "\n[[recognition]]"]
        .iter()
        .filter_map(|m| text[start..].find(m))
        .min()
        .map_or(text.len(), |i| start + i + 1);
    let table = format!(
        "\n[[state.timestamp_authority]]\nurl = \"{url}\"\ncertificates = \"\"\"\n{}\n\"\"\"\n\n",
        certificates.trim()
    );
    let flag = if required {
        "timestamp_required = true\n"
    } else {
        ""
    };
    let changed = format!(
        "{}{flag}{}{table}{}",
        &text[..start],
        &text[start..end],
        &text[end..]
    );
    // Check it as a node would before writing it.
    let (file, _) = crate::TrustSpace::read(changed.as_bytes(), None)?;
    crate::TrustSpace::from_file(file, &source).map_err(|e| DevPkiError::Spec(e.to_string()))?;
    write(&source, changed.as_bytes())?;
    match hub {
        Some(h) => sign_trust_space(out, h),
        None => Ok(()),
    }
}

pub fn ports(base: u16, index: usize) -> Ports {
    let start = base + (index as u16) * 10;
    Ports {
        exchange: start,
        window: start + 1,
        http: start + 2,
        admin: start + 3,
        peer: start + 4,
    }
}

pub fn server_name(code: &str) -> String {
    format!("node.{}.tereze.test", code.to_ascii_lowercase())
}

/// The common processes of the built-in EAEU document models.
const MEMBER_PROCESSES: &str = "\"P.CC.01\", \"P.SF.01\", \"P.SF.02\", \"P.TS.01\"";

const STATE_NAMES: &[(&str, &str)] = &[
    ("AM", "Armenia"),
    ("BY", "Belarus"),
    ("KZ", "Kazakhstan"),
    ("KG", "Kyrgyzstan"),
    ("RU", "Russia"),
    ("EEC", "Eurasian Economic Commission"),
];

/// Creates the whole tree, every key ECDSA P-256; returns the config path of each node in
/// order.
pub fn init(spec: &DevPkiSpec) -> Result<Vec<(String, PathBuf)>, DevPkiError> {
    init_with(spec, &[])
}

/// [`init`] with each listed state's CA and document signer on its own key algorithm (the
/// others, and every TLS key, on ECDSA P-256).
pub fn init_with(
    spec: &DevPkiSpec,
    algorithms: &[(String, KeyAlgorithm)],
) -> Result<Vec<(String, PathBuf)>, DevPkiError> {
    let mut all: Vec<(String, bool)> = spec.states.iter().map(|s| (s.clone(), false)).collect();
    if let Some(h) = &spec.hub {
        all.push((h.clone(), true));
    }
    for (code, _) in &all {
        if !(2..=3).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(DevPkiError::Spec(format!(
                "{code:?} is not a state code (two or three capital letters)"
            )));
        }
    }
    for (state, _) in algorithms {
        if !all.iter().any(|(c, _)| c == state) {
            let codes: Vec<&str> = all.iter().map(|(c, _)| c.as_str()).collect();
            return Err(DevPkiError::Algorithm(format!(
                "{state} is not one of the states or the hub ({})",
                codes.join(", ")
            )));
        }
    }
    std::fs::create_dir_all(&spec.out)
        .map_err(|e| DevPkiError::Io(spec.out.display().to_string(), e))?;
    let mut trust = String::new();
    let _ = writeln!(
        trust,
        "# Development trust space written by `tereze pki init-dev`. Not for production.\nversion = 1\nissued_at = \"{}\"\nmax_clock_skew_seconds = 300\n",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let mut configs = Vec::new();
    for (i, (code, is_hub)) in all.iter().enumerate() {
        let dir = spec.out.join(code.to_ascii_lowercase());
        std::fs::create_dir_all(&dir).map_err(|e| DevPkiError::Io(dir.display().to_string(), e))?;
        let name = STATE_NAMES
            .iter()
            .find(|(c, _)| c == code)
            .map_or(code.as_str(), |(_, n)| n);
        // The Commission is not a country: its names carry no C= attribute.
        let subject = |cn: &str| -> Vec<(&str, String)> {
            let mut v = Vec::new();
            if !*is_hub {
                v.push(("C", code.clone()));
            }
            v.push(("O", name.to_owned()));
            v.push(("CN", cn.to_owned()));
            v
        };
        let algorithm = algorithms
            .iter()
            .find(|(s, _)| s == code)
            .map_or(KeyAlgorithm::default(), |(_, a)| *a);
        let state_key = || {
            generate_key(algorithm.kind()).map_err(|source| DevPkiError::KeyAlgorithm {
                state: code.clone(),
                algorithm: algorithm.name(),
                source,
            })
        };
        let root_key = state_key()?;
        let root_cn = format!("{code} root CA (Tereze dev)");
        let root = issue(&subject(&root_cn), &root_key, None, Kind::Root, spec.days)?;
        // rustls verifies only ECDSA, RSA and EdDSA chains: a state whose CA is of another
        // family issues its TLS certificate from a second root on ECDSA.
        let tls_root = match algorithm {
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::Rsa2048 => None,
            KeyAlgorithm::Gost2012_256 | KeyAlgorithm::Gost2012_512 => {
                let k = key()?;
                let cn = format!("{code} TLS CA (Tereze dev)");
                Some((issue(&subject(&cn), &k, None, Kind::Root, spec.days)?, k))
            }
        };
        let (tls_issuer, tls_issuer_key) = match &tls_root {
            Some((c, k)) => (c, k),
            None => (&root, &root_key),
        };
        let tls_key = key()?;
        let sn = server_name(code);
        let tls = issue(
            &subject(&sn),
            &tls_key,
            Some((tls_issuer, tls_issuer_key)),
            Kind::Tls {
                names: &[sn.clone(), "localhost".into()],
            },
            spec.days,
        )?;
        let signer_key = state_key()?;
        let signer_cn = format!("{code} document signer (Tereze dev)");
        let signer = issue(
            &subject(&signer_cn),
            &signer_key,
            Some((&root, &root_key)),
            Kind::Signer,
            spec.days,
        )?;
        let root_pem = root.to_pem()?;
        write(&dir.join("root.pem"), &root_pem)?;
        write_key(&dir.join("root.key"), &root_key)?;
        // tls-root.pem is always the CA of the node's TLS certificate (what a TLS client such
        // as `tereze admin --ca` trusts); root.pem, the document anchor, is the same root
        // unless the state's algorithm is not one rustls verifies.
        let tls_root_pem = match &tls_root {
            Some((c, k)) => {
                write_key(&dir.join("tls-root.key"), k)?;
                c.to_pem()?
            }
            None => root_pem.clone(),
        };
        write(&dir.join("tls-root.pem"), &tls_root_pem)?;
        let mut chain = tls.to_pem()?;
        chain.extend_from_slice(&tls_root_pem);
        write(&dir.join("node-tls.pem"), &chain)?;
        write_key(&dir.join("node-tls.key"), &tls_key)?;
        let mut chain = signer.to_pem()?;
        chain.extend_from_slice(&root_pem);
        write(&dir.join("signer.pem"), &chain)?;
        write_key(&dir.join("signer.key"), &signer_key)?;

        let p = ports(spec.base_port, i);
        let mut anchors = format!("\"\"\"\n{}\"\"\"", String::from_utf8_lossy(&root_pem));
        if tls_root.is_some() {
            let _ = write!(
                anchors,
                ", \"\"\"\n{}\"\"\"",
                String::from_utf8_lossy(&tls_root_pem)
            );
        }
        let _ = writeln!(
            trust,
            "[[state]]\ncode = \"{code}\"\nname = \"{name}\"\nrole = \"{}\"\nprocesses = [{}]\nanchors = [{}]\n{}\n[[state.node]]\nendpoint = \"https://127.0.0.1:{}\"\nserver_name = \"{sn}\"\ntls_certificate = \"\"\"\n{}\"\"\"\n",
            if *is_hub { "hub" } else { "member" },
            if *is_hub { "" } else { MEMBER_PROCESSES },
            anchors,
            algorithm.policy(),
            p.exchange,
            String::from_utf8_lossy(&tls.to_pem()?),
        );
        let mut routing = String::new();
        if let (Some(h), false) = (&spec.hub, is_hub) {
            let via: Vec<String> = spec
                .via_hub
                .iter()
                .filter(|s| *s != code)
                .map(|s| format!("\"{s}\""))
                .collect();
            let _ = write!(
                routing,
                "\n[routing]\nhub = \"{h}\"\nvia_hub = [{}]\n",
                via.join(", ")
            );
        }
        let trust_lines = match &spec.hub {
            // The Commission (the hub) signs the trust space; every node checks its signature.
            Some(h) => format!(
                "trust_space = \"../trust-space.xml\"\ntrust_anchor = \"../{}/root.pem\"\n",
                h.to_ascii_lowercase()
            ),
            None => "trust_space = \"../trust-space.toml\"\n".to_owned(),
        };
        let config = format!(
            "# Node {code} ({name}), written by `tereze pki init-dev`. See docs/config.md.\nstate = \"{code}\"\nrole = \"{}\"\ndata_dir = \"data\"\n{trust_lines}\n[listen]\nexchange = \"127.0.0.1:{}\"\nwindow = \"127.0.0.1:{}\"\nhttp = \"127.0.0.1:{}\"\npeer = \"127.0.0.1:{}\"\n\n[tls]\ncertificate = \"node-tls.pem\"\nkey = \"node-tls.key\"\n\n[signing]\ncertificate = \"signer.pem\"\nkey = \"signer.key\"\nauthority = \"SW\"\n\n[admin]\nlisten = \"127.0.0.1:{}\"\ntoken_file = \"admin.token\"\n\n# The national system, on the national doors (listen.http, listen.window): one client\n# allowed everything. Give each system of the national window its own entry and token.\n[[national.client]]\nname = \"national-system\"\ntoken_file = \"national.token\"\noperations = [\"submit\", \"inbox\", \"ack\", \"upload\", \"traders\", \"reference\"]\n{routing}",
            if *is_hub { "hub" } else { "member" },
            p.exchange,
            p.window,
            p.http,
            p.peer,
            p.admin,
        );
        let path = dir.join("node.toml");
        write(&path, config.as_bytes())?;
        write_token(&dir.join("admin.token"))?;
        write_token(&dir.join("national.token"))?;
        configs.push((code.clone(), path));
    }
    let _ = writeln!(
        trust,
        "# Recognition matrix: every member recognises every document type from every member\n# (a production space lists type, issuer and recognising state row by row).\n[[recognition]]\ndocument = \"*\"\nissuer = \"*\"\nrecognised_by = [\"*\"]\nvalid_from = \"{}\"\nvalid_to = \"\"",
        (chrono::Utc::now() - chrono::Duration::days(365)).format("%Y-%m-%d")
    );
    write(&spec.out.join("trust-space.toml"), trust.as_bytes())?;
    if let Some(h) = &spec.hub {
        sign_trust_space(&spec.out, h)?;
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tereze_codecs::dsig::gost::is_gost_key;

    fn spec(dir: &Path) -> DevPkiSpec {
        DevPkiSpec {
            out: dir.to_path_buf(),
            states: vec!["KZ".into(), "RU".into(), "BY".into()],
            hub: Some("EEC".into()),
            via_hub: vec![],
            base_port: 21900,
            days: 30,
        }
    }

    fn cert(dir: &Path, state: &str, file: &str) -> X509 {
        let p = dir.join(state).join(file);
        X509::from_pem(&std::fs::read(&p).expect("read")).expect("certificate")
    }

    #[test]
    fn gost_states_get_gost_ca_and_signer_and_an_ecdsa_tls_root() {
        let dir = tempfile::tempdir().expect("dir");
        let algorithms = parse_algorithms(&[
            "kz=gost2012-256".into(),
            "RU=GOST2012-512".into(),
            "EEC=gost2012-256".into(),
        ])
        .expect("parsed");
        init_with(&spec(dir.path()), &algorithms).expect("dev PKI");
        let d = dir.path();
        for (state, bits) in [("kz", 256), ("ru", 512), ("eec", 256)] {
            for file in ["root.pem", "signer.pem"] {
                let key = cert(d, state, file).public_key().expect("key");
                assert!(is_gost_key(&key), "{state}/{file}");
                assert_eq!(key.bits(), bits, "{state}/{file}");
            }
            let tls_root = cert(d, state, "tls-root.pem").public_key().expect("key");
            assert_eq!(tls_root.id(), openssl::pkey::Id::EC, "{state}");
            let tls = cert(d, state, "node-tls.pem");
            assert!(tls.verify(&tls_root).expect("verifies"), "{state}");
        }
        // BY was not listed: one ECDSA root for everything.
        let by_root = cert(d, "by", "root.pem");
        assert_eq!(
            by_root.public_key().expect("key").id(),
            openssl::pkey::Id::EC
        );
        assert_eq!(
            cert(d, "by", "tls-root.pem").to_der().expect("der"),
            by_root.to_der().expect("der")
        );
        // The space, signed by the GOST hub, reads back with both of a GOST state's roots as
        // its anchors.
        let anchor = crate::read_anchor(&d.join("eec/root.pem")).expect("anchor");
        let trust = crate::TrustSpace::load(&d.join("trust-space.xml"), Some(&anchor))
            .expect("signed trust space");
        assert!(trust.signer.is_some());
        assert_eq!(trust.state("KZ").expect("KZ").anchors.len(), 2);
        assert_eq!(trust.state("BY").expect("BY").anchors.len(), 1);
        // GOST states permit their own GOST method and digest only; BY keeps the defaults.
        let policy =
            |s: &str| crate::algorithms::describe(trust.state(s).expect(s).algorithms.as_ref());
        assert_eq!(
            policy("RU"),
            crate::algorithms::describe(Some(&crate::algorithms::AlgorithmPolicy {
                signature: Some(vec![tereze_codecs::dsig::SignatureMethodName::find(
                    "gost2012-512"
                )
                .expect("name")]),
                digest: Some(vec![tereze_codecs::dsig::DigestMethod::GOST_512]),
                min_rsa_bits: None,
                min_ec_bits: None,
            }))
        );
        assert!(trust.state("BY").expect("BY").algorithms.is_none());
    }

    #[test]
    fn bad_algorithm_items_are_refused_naming_the_flag() {
        let e = |items: &[&str]| {
            let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
            parse_algorithms(&items).expect_err("refused").to_string()
        };
        assert_eq!(
            e(&["KZ=gost2012-1024"]),
            "--algorithm: KZ=gost2012-1024: unknown algorithm \"gost2012-1024\"; use one of ecdsa-p256, rsa-2048, gost2012-256, gost2012-512"
        );
        assert_eq!(
            e(&["KZ"]),
            "--algorithm: \"KZ\" is not STATE=ALGORITHM (e.g. KZ=gost2012-256)"
        );
        assert_eq!(
            e(&["KZ=gost2012-256", "kz=ecdsa-p256"]),
            "--algorithm: KZ is given twice"
        );
        let dir = tempfile::tempdir().expect("dir");
        let unknown = parse_algorithms(&["CN=gost2012-256".into()]).expect("parsed");
        assert_eq!(
            init_with(&spec(dir.path()), &unknown)
                .expect_err("refused")
                .to_string(),
            "--algorithm: CN is not one of the states or the hub (KZ, RU, BY, EEC)"
        );
    }

    #[test]
    fn a_time_stamping_authority_is_added_to_the_signed_dev_trust_space() {
        let dir = tempfile::tempdir().expect("dir");
        init(&spec(dir.path())).expect("dev PKI");
        let d = dir.path();
        let pem = std::fs::read_to_string(d.join("kz/root.pem")).expect("a certificate");
        add_timestamp_authority(d, Some("EEC"), "RU", "http://127.0.0.1:9/tsa", &pem, true)
            .expect("added");
        add_timestamp_authority(d, Some("EEC"), "RU", "http://127.0.0.1:8/tsa", &pem, false)
            .expect("a second one");
        let anchor = crate::read_anchor(&d.join("eec/root.pem")).expect("anchor");
        let trust = crate::TrustSpace::load(&d.join("trust-space.xml"), Some(&anchor))
            .expect("signed trust space");
        let ru = trust.state("RU").expect("RU");
        assert!(ru.timestamp_required);
        let urls: Vec<&str> = ru
            .timestamp_authorities
            .iter()
            .map(|a| a.url.as_str())
            .collect();
        assert_eq!(urls, ["http://127.0.0.1:9/tsa", "http://127.0.0.1:8/tsa"]);
        assert!(trust
            .state("KZ")
            .expect("KZ")
            .timestamp_authorities
            .is_empty());
        let e = add_timestamp_authority(d, Some("EEC"), "XX", "http://x/", &pem, false)
            .expect_err("no such state");
        assert!(e.to_string().starts_with("XX is not a state"), "{e}");
        let e = add_timestamp_authority(d, Some("EEC"), "KZ", "https://x/", &pem, false)
            .expect_err("https");
        assert!(e.to_string().contains("timestamp_authority[0].url"), "{e}");
    }
}

#[cfg(test)]
mod gost_tests {
    use tereze_codecs::dsig::{self, SigningKey, TrustStore, VerifyPolicy};
    use tereze_codecs::xml;

    use super::*;

    /// The primitives `init` uses (`issue`, `write_key`, the PEM chain, `SigningKey::from_pem`
    /// and the trust space's `document::sign`) work with GOST keys: a GOST root issues a GOST
    /// signer, whose signature (GOST, with its own Streebog) verifies against the root.
    #[test]
    fn the_dev_pki_primitives_issue_and_sign_with_gost_keys() {
        dsig::gost::require_engine("GOST").expect("GOST engine: run scripts/setup");
        for (kind, method) in [
            (KeyKind::Gost2012_256, "gostr34102012-gostr34112012-256"),
            (KeyKind::Gost2012_512, "gostr34102012-gostr34112012-512"),
        ] {
            let dir = tempfile::tempdir().expect("temp dir");
            let subject = |cn: &str| vec![("C", "RU".to_owned()), ("CN", cn.to_owned())];
            let root_key = generate_key(kind).expect("GOST root key");
            let root = issue(&subject("RU root"), &root_key, None, Kind::Root, 30).expect("root");
            let signer_key = generate_key(kind).expect("GOST signer key");
            let signer = issue(
                &subject("RU document signer"),
                &signer_key,
                Some((&root, &root_key)),
                Kind::Signer,
                30,
            )
            .expect("signer");
            write_key(&dir.path().join("signer.key"), &signer_key).expect("key file");
            let mut chain = signer.to_pem().expect("pem");
            chain.extend_from_slice(&root.to_pem().expect("pem"));
            write(&dir.path().join("signer.pem"), &chain).expect("chain file");

            let key = SigningKey::from_pem(
                &std::fs::read(dir.path().join("signer.key")).expect("read"),
                Some(&std::fs::read(dir.path().join("signer.pem")).expect("read")),
            )
            .expect("GOST signing key from the files");
            let mut doc =
                xml::parse(b"<TrustSpace version=\"1\"><State code=\"RU\"/></TrustSpace>")
                    .expect("parses");
            crate::document::sign(&mut doc, &key).expect("signs");
            let signed = doc.to_xml();
            assert!(signed.contains(method), "{kind:?}");

            let mut anchor = TrustStore::new();
            anchor
                .add_pem(&root.to_pem().expect("pem"))
                .expect("anchor");
            let verified = dsig::verify(
                &xml::parse(signed.as_bytes()).expect("parses"),
                &anchor,
                &VerifyPolicy::default(),
            )
            .expect("verifies against the GOST root");
            assert_eq!(verified.signer.subject, "C=RU, CN=RU document signer");
        }
    }
}

/// A development PKI for KZ and RU in a temporary directory, for the unit tests of the
/// documents the states sign: the trust space it writes, and a state's document signer.
#[cfg(test)]
pub(crate) mod fixture {
    use tereze_codecs::dsig::SigningKey;

    use super::*;
    use crate::TrustSpace;

    pub(crate) struct DevPki {
        pub(crate) dir: tempfile::TempDir,
        pub(crate) trust: TrustSpace,
    }

    impl DevPki {
        /// KZ and RU, with the states listed in `algorithms` (`KZ=gost2012-256`) on that key
        /// algorithm and the others on ECDSA P-256.
        pub(crate) fn kz_ru(base_port: u16, algorithms: &[&str]) -> Self {
            let dir = tempfile::tempdir().expect("dir");
            let items: Vec<String> = algorithms.iter().map(|a| a.to_string()).collect();
            let algorithms = parse_algorithms(&items).expect("algorithms");
            let spec = DevPkiSpec {
                out: dir.path().to_path_buf(),
                states: vec!["KZ".into(), "RU".into()],
                hub: None,
                via_hub: vec![],
                base_port,
                days: 30,
            };
            init_with(&spec, &algorithms).expect("dev PKI");
            let trust =
                TrustSpace::load(&dir.path().join("trust-space.toml"), None).expect("trust");
            Self { dir, trust }
        }

        /// The document signer of `state` (`kz`, `ru`).
        pub(crate) fn signer(&self, state: &str) -> SigningKey {
            let read = |f: &str| std::fs::read(self.dir.path().join(state).join(f)).expect("read");
            SigningKey::from_pem(&read("signer.key"), Some(&read("signer.pem"))).expect("key")
        }
    }
}
