//! `tereze trust`: build, sign, verify, show and compare trust-space documents.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::common::Failure;
use tereze_trust::algorithms;
use tereze_trust::document as trust_document;
use tereze_trust::{read_anchor, File, TrustSpace};

#[derive(Debug, Subcommand)]
pub(crate) enum TrustCommand {
    /// Write the trust-space XML document (unsigned) from its TOML source; checks every field
    /// first.
    Build {
        /// Set the version (default: the source's).
        #[arg(long)]
        version: Option<u64>,
        /// The TOML source.
        source: PathBuf,
    },
    /// Sign a trust-space document with the Commission's key (enveloped XMLDSig, SHA-256).
    Sign {
        #[command(flatten)]
        key: crate::keys::SigningKeyArgs,
        file: PathBuf,
    },
    /// Verify a signed trust space against the Commission's anchor: exit 0 and its version, or
    /// exit 1 and why not.
    Verify {
        #[arg(long, value_name = "FILE")]
        anchor: PathBuf,
        file: PathBuf,
    },
    /// Summarise a trust space (signed XML with --anchor, or TOML).
    Show {
        #[arg(long, value_name = "FILE")]
        anchor: Option<PathBuf>,
        file: PathBuf,
    },
    /// What changed between two trust spaces (signed XML with --anchor, or TOML).
    Diff {
        #[arg(long, value_name = "FILE")]
        anchor: Option<PathBuf>,
        old: PathBuf,
        new: PathBuf,
    },
}

fn input(e: impl std::fmt::Display) -> Failure {
    Failure::Input(e.to_string())
}

/// Reads and checks a trust space, signed or TOML.
fn load(path: &Path, anchor: Option<&PathBuf>) -> Result<(File, TrustSpace), Failure> {
    let anchor = anchor.map(|a| read_anchor(a)).transpose().map_err(input)?;
    let bytes = crate::common::read_input(path)?;
    let (file, _) = TrustSpace::read(&bytes, anchor.as_ref())
        .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
    let space = TrustSpace::from_file(file.clone(), path).map_err(input)?;
    Ok((file, space))
}

pub(crate) fn run(cmd: TrustCommand) -> Result<(), Failure> {
    match cmd {
        TrustCommand::Build { version, source } => {
            let (mut file, _) = load(&source, None)?;
            if let Some(v) = version {
                file.version = v;
            }
            TrustSpace::from_file(file.clone(), &source).map_err(input)?;
            let doc = trust_document::to_document(&file);
            crate::common::write_stdout(doc.to_xml_pretty().as_bytes())
        }
        TrustCommand::Sign { key, file } => {
            let signer = key.load()?;
            let bytes = crate::common::read_input(&file)?;
            let doc = tereze_codecs::xml::parse(&bytes)
                .map_err(|e| Failure::Input(format!("{}:{e}", file.display())))?;
            // Check what is about to be signed: it must read as a trust space.
            let parsed = trust_document::from_document(&doc)
                .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?;
            TrustSpace::from_file(parsed, &file).map_err(input)?;
            let mut doc = doc;
            trust_document::sign(&mut doc, &signer)
                .map_err(|e| Failure::Input(format!("{}: cannot sign: {e}", file.display())))?;
            crate::common::write_stdout(doc.to_xml().as_bytes())
        }
        TrustCommand::Verify { anchor, file } => {
            let anchor_store = read_anchor(&anchor).map_err(input)?;
            let bytes = crate::common::read_input(&file)?;
            match trust_document::verify(&bytes, &anchor_store) {
                Ok((parsed, signer)) => {
                    let space = TrustSpace::from_file(parsed, &file).map_err(input)?;
                    crate::common::write_stdout(
                        format!(
                            "valid: trust space v{} issued {}, {} states, signed by {signer}\n",
                            space.version,
                            space.issued_at,
                            space.states.len()
                        )
                        .as_bytes(),
                    )
                }
                Err(e) => Err(Failure::Verdict(format!("{}: {e}", file.display()))),
            }
        }
        TrustCommand::Show { anchor, file } => {
            let (f, space) = load(&file, anchor.as_ref())?;
            let mut out = format!(
                "trust space v{} issued {} (clock skew {} s)\n",
                f.version, f.issued_at, f.max_clock_skew_seconds
            );
            for s in &f.states {
                let entry = space.state(&s.code);
                let anchors: Vec<String> = entry
                    .map(|e| {
                        e.anchors
                            .iter()
                            .map(|a| tereze_codecs::dsig::subject_of(a))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push_str(&format!(
                    "state {} ({}) {}{}{}\n  processes: {}\n  anchors: {}\n  crls: {}\n",
                    s.code,
                    s.name,
                    if s.role == tereze_trust::Role::Hub {
                        "hub"
                    } else {
                        "member"
                    },
                    if s.partner { ", partner" } else { "" },
                    if s.conformance {
                        ", conformance (a tester: its messages are kept out of the national inbox)"
                    } else {
                        ""
                    },
                    if s.processes.is_empty() {
                        "none".into()
                    } else {
                        s.processes.join(", ")
                    },
                    anchors.join("; "),
                    s.crls.len()
                ));
                out.push_str(&format!(
                    "  algorithms: {}\n",
                    algorithms::describe(entry.and_then(|e| e.algorithms.as_ref()))
                ));
                for a in &s.timestamp_authorities {
                    out.push_str(&format!("  time-stamping authority {}\n", a.url));
                }
                if s.timestamp_required {
                    out.push_str("  time-stamp token required before delivery\n");
                }
                let national: Vec<&str> = s
                    .national_signatures
                    .iter()
                    .filter(|n| n.required)
                    .map(|n| n.document.as_str())
                    .collect();
                if !national.is_empty() {
                    out.push_str(&format!(
                        "  national authority's signature required for: {}\n",
                        national.join(", ")
                    ));
                }
                for n in &s.nodes {
                    out.push_str(&format!("  node {} ({})\n", n.endpoint, n.server_name));
                }
            }
            for r in &f.recognition {
                out.push_str(&format!("recognition: {}\n", rule(r)));
            }
            crate::common::write_stdout(out.as_bytes())
        }
        TrustCommand::Diff { anchor, old, new } => {
            let old = load(&old, anchor.as_ref())?;
            let new = load(&new, anchor.as_ref())?;
            let lines = diff(&old, &new);
            let mut out = lines.join("\n");
            if !out.is_empty() {
                out.push('\n');
            } else {
                out = "no differences\n".into();
            }
            crate::common::write_stdout(out.as_bytes())
        }
    }
}

fn rule(r: &tereze_trust::FileRecognition) -> String {
    format!(
        "{} from {} recognised by {} from {} to {}",
        r.document,
        r.issuer,
        r.recognised_by.join(","),
        r.valid_from,
        if r.valid_to.is_empty() {
            "open"
        } else {
            &r.valid_to
        }
    )
}

/// Human-readable differences, one per line: `+` added, `-` removed, `~` changed.
fn diff((a, old): &(File, TrustSpace), (b, new): &(File, TrustSpace)) -> Vec<String> {
    let mut out = Vec::new();
    if a.version != b.version {
        out.push(format!("~ version {} -> {}", a.version, b.version));
    }
    if a.max_clock_skew_seconds != b.max_clock_skew_seconds {
        out.push(format!(
            "~ max_clock_skew_seconds {} -> {}",
            a.max_clock_skew_seconds, b.max_clock_skew_seconds
        ));
    }
    for s in &a.states {
        match b.states.iter().find(|x| x.code == s.code) {
            None => out.push(format!("- state {}", s.code)),
            Some(t) => {
                let mut changed = |what: &str, differs: bool| {
                    if differs {
                        out.push(format!("~ state {}: {what}", s.code));
                    }
                };
                changed("role", s.role != t.role);
                changed("partner", s.partner != t.partner);
                changed(
                    &format!("conformance {} -> {}", s.conformance, t.conformance),
                    s.conformance != t.conformance,
                );
                changed(
                    &format!("processes {:?} -> {:?}", s.processes, t.processes),
                    s.processes != t.processes,
                );
                changed("anchors", s.anchors != t.anchors);
                changed(
                    &format!("crls {} -> {}", s.crls.len(), t.crls.len()),
                    s.crls != t.crls,
                );
                changed("nodes", s.nodes != t.nodes);
                changed(
                    "time-stamping authorities",
                    s.timestamp_authorities != t.timestamp_authorities,
                );
                changed(
                    &format!(
                        "timestamp_required {} -> {}",
                        s.timestamp_required, t.timestamp_required
                    ),
                    s.timestamp_required != t.timestamp_required,
                );
                let required = |n: &[tereze_trust::FileNationalSignature]| {
                    n.iter()
                        .filter(|x| x.required)
                        .map(|x| x.document.clone())
                        .collect::<Vec<_>>()
                };
                let (r, q) = (
                    required(&s.national_signatures),
                    required(&t.national_signatures),
                );
                changed(
                    &format!("national signatures required {r:?} -> {q:?}"),
                    r != q,
                );
                // Compared as read, so a name and its URI are the same policy.
                let policy =
                    |space: &TrustSpace| space.state(&s.code).and_then(|e| e.algorithms.clone());
                let (p, q) = (policy(old), policy(new));
                changed(
                    &format!(
                        "algorithms {} -> {}",
                        algorithms::describe(p.as_ref()),
                        algorithms::describe(q.as_ref())
                    ),
                    p != q,
                );
            }
        }
    }
    for t in &b.states {
        if !a.states.iter().any(|s| s.code == t.code) {
            out.push(format!("+ state {}", t.code));
        }
    }
    for r in &a.recognition {
        if !b.recognition.contains(r) {
            out.push(format!("- recognition {}", rule(r)));
        }
    }
    for r in &b.recognition {
        if !a.recognition.contains(r) {
            out.push(format!("+ recognition {}", rule(r)));
        }
    }
    out
}
