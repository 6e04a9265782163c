//! `tereze recognise`: the receiving node's recognition checks, offline.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::Args;
use tereze_codecs::translate::Catalog;
use tereze_codecs::xml;
use tereze_reference_data::Directories;

use crate::common::Failure;
use tereze_recognition::{standing_of, Inbound, NoTraderCheck, Recogniser, Standing, TraderCheck};
use tereze_trust::TrustSpace;

/// Run the mutual-recognition checks on a signed envelope, as the recognising state's node
/// would (docs/recognition.md): exit 0 and "recognised", or exit 1 and the reason code that
/// rejected it with an explanation. For conformance testers and disputes.
#[derive(Debug, Args)]
pub(crate) struct RecogniseArgs {
    /// The trust space to judge by: the signed XML document (needs --anchor) or TOML.
    #[arg(long, value_name = "FILE")]
    trust: PathBuf,
    /// The Commission's anchor (PEM) that signed the trust space.
    #[arg(long, value_name = "FILE")]
    anchor: Option<PathBuf>,
    /// The recognising state.
    #[arg(long, value_name = "STATE")]
    state: String,
    /// When the recognising node first stored the envelope (RFC 3339): evidence of when the
    /// signature existed (the judged time is the earliest evidence) and the reference for
    /// its expiry; default now. A node judging it again uses its stored arrival time.
    #[arg(long, value_name = "TIME", conflicts_with = "at")]
    received_at: Option<String>,
    /// The older name of --received-at, meaning the same: when the envelope was first stored.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Time-stamp evidence over the envelope's signature value, as the node stores and sends
    /// it (an RFC 3161 token, or a batch token with the inclusion path): verified against the
    /// sender state's authorities in the trust space; its genTime is evidence of when the
    /// signature existed.
    #[arg(long, value_name = "FILE")]
    timestamp: Option<PathBuf>,
    /// The state whose node delivered it (checks transport identity); default: not checked.
    #[arg(long, value_name = "STATE")]
    transport: Option<String>,
    /// A CRL of STATE (PEM or DER), as fetched from its CRL location: checked against that
    /// state's anchors like a node checks it, then used next to the inline CRLs. Repeatable.
    #[arg(long, value_name = "STATE=FILE")]
    crl: Vec<String>,
    /// Signed change sets of the reference directories (`*.xml`, e.g. from `tereze ref sync`)
    /// to judge codes and permits with, over the shipped directories; each is verified under
    /// --trust first.
    #[arg(long, value_name = "DIR")]
    sets: Option<PathBuf>,
    /// Signed answers of the traders' states (`*.xml`, as `tereze trader resolve --out` keeps
    /// them): with them, each trader of the envelope must be registered and active on the
    /// document's date by its state's word; without, that part of the check is not made.
    #[arg(long, value_name = "DIR")]
    trader_answers: Option<PathBuf>,
    /// The signed envelope ("-" for stdin).
    file: PathBuf,
}

pub(crate) fn run(args: RecogniseArgs) -> Result<(), Failure> {
    let anchor = args
        .anchor
        .as_deref()
        .map(tereze_trust::read_anchor)
        .transpose()
        .map_err(|e| Failure::Input(e.to_string()))?;
    let mut trust = TrustSpace::load(&args.trust, anchor.as_ref())
        .map_err(|e| Failure::Input(e.to_string()))?;
    let mut extra: std::collections::BTreeMap<String, Vec<std::sync::Arc<openssl::x509::X509Crl>>> =
        Default::default();
    for c in &args.crl {
        let bad = |why: String| Failure::Input(format!("--crl {c}: {why}"));
        let (code, path) = c
            .split_once('=')
            .ok_or_else(|| bad("expected STATE=FILE".into()))?;
        let state = trust
            .state(code)
            .ok_or_else(|| bad(format!("{code} is not a state in the trust space")))?;
        let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let crls = tereze_trust::crl::parse_crls(&bytes).map_err(|e| bad(e.to_string()))?;
        for crl in crls {
            tereze_trust::crl::accept(&crl, state, trust.max_clock_skew_seconds)
                .map_err(|e| bad(e.to_string()))?;
            extra
                .entry(code.to_owned())
                .or_default()
                .push(std::sync::Arc::new(crl));
        }
    }
    if !extra.is_empty() {
        trust = trust
            .with_crls(&extra)
            .map_err(|e| Failure::Input(e.to_string()))?;
    }
    if trust.state(&args.state).is_none() {
        return Err(Failure::Input(format!(
            "--state: {} is not a state in {}",
            args.state,
            args.trust.display()
        )));
    }
    let received_at = match (&args.received_at, &args.at) {
        (Some(s), _) => time_arg("--received-at", s)?,
        (None, Some(s)) => time_arg("--at", s)?,
        (None, None) => Utc::now(),
    };
    let evidence = args
        .timestamp
        .as_ref()
        .map(|p| {
            std::fs::read(p).map_err(|e| {
                Failure::Input(format!("--timestamp {}: cannot read: {e}", p.display()))
            })
        })
        .transpose()?;
    let bytes = crate::common::read_input(&args.file)?;
    // The sender is whoever the envelope names; the signature decides whether that holds.
    let parsed =
        xml::parse(&bytes).map_err(|e| Failure::Input(format!("{}:{e}", args.file.display())))?;
    let claimed = tereze_codecs::envelope::Envelope::from_document(&parsed)
        .ok()
        .map(|e| e.header.sender.country)
        .ok_or_else(|| {
            Failure::Input(format!(
                "{}: not a well-formed envelope (tereze xml verify / the node's refusal say why)",
                args.file.display()
            ))
        })?;
    let catalog =
        Catalog::builtin().map_err(|e| Failure::Input(format!("built-in mappings: {e}")))?;
    let directories = match &args.sets {
        Some(dir) => crate::reference::with_sets(dir, &trust, anchor.as_ref())?,
        None => Directories::builtin(),
    };
    let answers = match &args.trader_answers {
        Some(dir) => Some(Evidence::read(dir, &trust)?),
        None => None,
    };
    let traders: &dyn TraderCheck = match &answers {
        Some(e) => e,
        None => &NoTraderCheck,
    };
    let recogniser = Recogniser {
        attachments: None,
        trust: &trust,
        state: &args.state,
        catalog: &catalog,
        directories: &directories,
        limits: xml::Limits::default(),
        traders,
    };
    let verdict = recogniser
        .recognise(&Inbound {
            envelope: &bytes,
            sender: &claimed,
            transport: args.transport.as_deref(),
            message_id: None,
            received_at,
            hub_received_at: None,
            evidence: evidence.as_deref(),
        })
        .map_err(|e| Failure::Input(format!("{}: {e}", args.file.display())))?;
    let about = verdict
        .envelope
        .as_ref()
        .map(|e| {
            format!(
                " {} {} from {}:{} to {}:{}",
                e.header.document.type_code,
                e.header.message_id,
                e.header.sender.country,
                e.header.sender.authority,
                e.header.recipient.country,
                e.header.recipient.authority
            )
        })
        .unwrap_or_default();
    // Which time the key was judged at, and why that one (docs/recognition.md).
    let judged = verdict
        .judged
        .as_ref()
        .map(|j| format!("\njudged at {j}"))
        .unwrap_or_default();
    if verdict.recognised() {
        crate::common::write_stdout(format!("recognised{about}{judged}\n").as_bytes())
    } else {
        let reasons: Vec<String> = verdict
            .reasons
            .iter()
            .map(|r| format!("{}: {}", r.code, r.message))
            .collect();
        Err(Failure::Verdict(format!(
            "{}: rejected by {} (trust space v{}){about}: {}{judged}",
            args.file.display(),
            args.state,
            trust.version,
            reasons.join("; "),
        )))
    }
}

/// An RFC 3339 time given as `flag`.
fn time_arg(flag: &str, s: &str) -> Result<DateTime<Utc>, Failure> {
    Ok(DateTime::parse_from_rfc3339(s)
        .map_err(|_| Failure::Input(format!("{flag}: {s:?} is not an RFC 3339 time")))?
        .with_timezone(&Utc))
}

/// Signed trader answers given as evidence, each verified under the trust space.
struct Evidence(std::collections::HashMap<String, tereze_trust::traders::Answer>);

impl Evidence {
    fn read(dir: &std::path::Path, trust: &TrustSpace) -> Result<Self, Failure> {
        let mut answers = std::collections::HashMap::new();
        for (path, bytes) in crate::common::xml_files(dir)? {
            let a = tereze_trust::traders::verify_answer(&bytes, trust, None)
                .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
            answers.insert(a.id.clone(), a);
        }
        Ok(Self(answers))
    }
}

impl TraderCheck for Evidence {
    fn standing(&self, id: &str, date: chrono::NaiveDate) -> Standing {
        match self.0.get(id) {
            Some(a) => standing_of(a.trader.as_ref(), date),
            None => Standing::Unresolved("no signed answer about it among the evidence".into()),
        }
    }
}
