//! Mutation fuzzing on the stable toolchain: every file of the corpus and the samples, plus
//! signed envelopes built here, mutated by a seeded generator (bytes, tags, attributes,
//! namespaces, text, signature values, tricky fragments) and fed to the parser, every C14N
//! mode, the envelope reader and the signature verifier.
//!
//! Properties: no panic; no case slower than a bound; a parsed document serialises to XML
//! that parses to the same canonical forms; canonical forms are fixed points; an envelope read
//! back from its canonical form is the same envelope and writes the same bytes; a verified
//! signature's signed content parses.
//!
//! `TEREZE_FUZZ_ITERATIONS` (cases, default [`DEFAULT_ITERATIONS`]) and `TEREZE_FUZZ_SEED`
//! (decimal or 0x-hex, default [`DEFAULT_SEED`]) choose the run; every case has its own
//! generator derived from the seed and its number, so `TEREZE_FUZZ_CASE=n` replays case n
//! alone and `TEREZE_FUZZ_REPLAY=file` runs one saved input. A failing input is written under
//! `target/tmp/fuzz/` and named in the failure. See docs/fuzzing.md.

mod common;
mod mutator;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::DateTime;
use common::Pki;
use mutator::{mutate_some, Rng, Seed};
use tereze_codecs::c14n::{self, C14nOptions, Mode, NodeSet};
use tereze_codecs::dsig::{self, SignOptions, SignTarget, TrustStore, VerifyError, VerifyPolicy};
use tereze_codecs::envelope::{
    DocumentRef, Envelope, EnvelopeError, Header, MessageKind, Participant, VERSION,
};
use tereze_codecs::pki::KeyKind;
use tereze_codecs::xml::{self, Document, NodeKind, ParseError, ParseErrorKind};
use uuid::Uuid;

/// Enough for CI: about half a minute in a debug build on two cores.
const DEFAULT_ITERATIONS: u64 = 5_000;
const DEFAULT_SEED: u64 = 0x7E7E_2E5E_F022_0001;

fn time_limit() -> Duration {
    if cfg!(debug_assertions) {
        Duration::from_secs(15)
    } else {
        Duration::from_secs(2)
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn header(sender: &str, recipient: &str) -> Header {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("fixture time");
    let party = |country: &str, authority: &str| Participant {
        country: country.into(),
        authority: authority.into(),
    };
    Header {
        message_id: Uuid::parse_str("6f3c9a0e-58b2-4d1e-9c1a-2f0b7d4e8a11").expect("uuid"),
        conversation_id: Uuid::parse_str("0b9e7c52-1f0a-4c55-8a3e-5d2c9f1b7e44").expect("uuid"),
        procedure_id: Uuid::parse_str("d2a8f0c1-7b3e-4e6a-9f25-11c0e5b8a9d7").expect("uuid"),
        in_reply_to: Some(Uuid::parse_str("9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d").expect("uuid")),
        process: "P.CC.01".into(),
        message: "P.CC.01.MSG.001".into(),
        transaction: "P.CC.01.TRN.001".into(),
        kind: MessageKind::Request,
        sender: party(sender, "KGD"),
        recipient: party(recipient, "FCS"),
        created_at: at("2026-11-24T09:30:00+05:00"),
        expires_at: Some(at("2026-11-25T09:30:00+05:00")),
        document: DocumentRef {
            type_code: "R.CC.01.001".into(),
            version: "1.0.0".into(),
            issuing_authority: party(sender, "KGD"),
        },
        traders: vec!["KZ120440789014".into(), "RU7701234560".into()],
        attachments: Vec::new(),
        national_signatures: Vec::new(),
    }
}

/// Every corpus and sample file, and envelopes around the EAEU samples signed every way the
/// node signs (ECDSA and RSA, exclusive and inclusive C14N, whole document and by `Id`), GOST
/// R 34.10-2012 signed envelopes (256 and 512) and the vendored GOST vectors of xmlsec and
/// CryptoPro (`tests/data/gost/`).
fn seeds(pki_ec: &Pki, pki_rsa: &Pki, pki_gost: &[Pki]) -> Vec<Seed> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    files_under(&root.join("tests/corpus"), &mut paths);
    files_under(&root.join("samples"), &mut paths);
    paths.sort();
    let mut seeds: Vec<Seed> = paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e != "md"))
        .map(|p| Seed {
            name: p
                .strip_prefix(root)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned(),
            bytes: std::fs::read(p).expect("read seed"),
        })
        .collect();
    let eaeu: Vec<(String, Document)> = seeds
        .iter()
        .filter(|s| s.name.starts_with("samples/eaeu."))
        .map(|s| {
            (
                s.name.clone(),
                xml::parse(&s.bytes).expect("EAEU sample parses"),
            )
        })
        .collect();
    assert!(!eaeu.is_empty(), "no EAEU samples found");
    for (i, (name, content)) in eaeu.iter().enumerate() {
        let pki = if i % 2 == 0 { pki_ec } else { pki_rsa };
        let c14n = if i % 3 == 2 {
            C14nOptions::default()
        } else {
            C14nOptions::exclusive()
        };
        let mut doc =
            Envelope::build_document(VERSION, &header("KZ", "RU"), content).expect("envelope");
        let options = SignOptions {
            c14n,
            ..SignOptions::default()
        };
        dsig::sign_enveloped(
            &mut doc,
            &SignTarget::Document,
            &pki.signing_key(),
            &options,
        )
        .expect("signs");
        seeds.push(Seed {
            name: format!("signed envelope around {name}"),
            bytes: doc.to_xml().into_bytes(),
        });
        // The same unsigned, in canonical form, with the optional header fields left out.
        let mut h = header("RU", "BY");
        h.in_reply_to = None;
        h.expires_at = None;
        h.traders.clear();
        h.kind = MessageKind::ALL[i % MessageKind::ALL.len()];
        let unsigned = Envelope::build_document(VERSION, &h, content).expect("envelope");
        seeds.push(Seed {
            name: format!("unsigned envelope around {name}"),
            bytes: c14n::canonicalize_document(&unsigned, &C14nOptions::exclusive()),
        });
    }
    // A signature over one element by identifier, the other reference shape.
    let mut by_id = xml::parse(
        br#"<r xmlns:b="urn:b"><b:part Id="p1" xml:lang="kk"><v a="1&#x9;2">&lt;text&gt;</v><!-- c --></b:part></r>"#,
    )
    .expect("parses");
    dsig::sign_enveloped(
        &mut by_id,
        &SignTarget::Id("p1".into()),
        &pki_ec.signing_key(),
        &SignOptions::default(),
    )
    .expect("signs");
    seeds.push(Seed {
        name: "document signed by Id".into(),
        bytes: by_id.to_xml().into_bytes(),
    });
    // GOST: our signatures (each key with its own Streebog) and the independent vectors.
    for (i, pki) in pki_gost.iter().enumerate() {
        for (j, c14n) in [C14nOptions::exclusive(), C14nOptions::default()]
            .into_iter()
            .enumerate()
        {
            let (name, content) = &eaeu[(i + j) % eaeu.len()];
            let mut doc =
                Envelope::build_document(VERSION, &header("KZ", "RU"), content).expect("envelope");
            let options = SignOptions {
                c14n,
                ..SignOptions::default()
            };
            dsig::sign_enveloped(
                &mut doc,
                &SignTarget::Document,
                &pki.signing_key(),
                &options,
            )
            .expect("GOST signs");
            seeds.push(Seed {
                name: format!("signed GOST envelope ({i}) around {name}"),
                bytes: doc.to_xml().into_bytes(),
            });
        }
    }
    for (name, bytes) in gost_vectors() {
        seeds.push(Seed {
            name: format!("signed GOST vector {name}"),
            bytes,
        });
    }
    seeds
}

/// The vendored GOST vectors (xmlsec's and CryptoPro's signed documents).
fn gost_vectors() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gost");
    let mut out = Vec::new();
    for name in [
        "xmlsec/enveloped-gost2001.xml",
        "xmlsec/enveloped-gost2012-256.xml",
        "xmlsec/enveloped-gost2012-512.xml",
        "cryptopro/cp2001.xml",
        "cryptopro/cp2012_256.xml",
        "cryptopro/cp2012_512.xml",
    ] {
        out.push((
            name.to_owned(),
            std::fs::read(dir.join(name)).expect("GOST vector"),
        ));
    }
    out
}

/// Trust for the GOST vectors: xmlsec's root, and each CryptoPro document's self-signed signer
/// (the vectors come with no CA).
fn trust_gost_vectors(trust: &mut TrustStore) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gost");
    trust
        .add_pem(&std::fs::read(dir.join("xmlsec/cacert.pem")).expect("xmlsec CA"))
        .expect("xmlsec CA");
    for (name, bytes) in gost_vectors() {
        if !name.starts_with("cryptopro/") {
            continue;
        }
        let text = String::from_utf8(bytes).expect("UTF-8");
        let b64 = text
            .split("<X509Certificate>")
            .nth(1)
            .and_then(|t| t.split("</X509Certificate>").next())
            .expect("certificate in vector");
        let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
            .expect("base64 certificate");
        trust.add_certificate(openssl::x509::X509::from_der(&der).expect("certificate"));
    }
}

/// The input of one case: a seed and one to four mutations of it.
fn generate(seed: u64, case: u64, seeds: &[Seed]) -> (usize, Vec<u8>, Vec<&'static str>) {
    let mut rng = Rng::for_case(seed, case);
    // Envelopes are few among the seeds but the richest target: two cases in five start there.
    let envelopes: Vec<usize> = (0..seeds.len())
        .filter(|&i| seeds[i].name.contains("envelope"))
        .collect();
    let from = if !envelopes.is_empty() && rng.below(5) < 2 {
        *rng.pick(&envelopes)
    } else {
        rng.below(seeds.len())
    };
    let mut bytes = seeds[from].bytes.clone();
    let ops = mutate_some(&mut rng, &mut bytes, seeds);
    (from, bytes, ops)
}

// ---------------------------------------------------------------------------------------------
// Targets and properties

fn modes() -> Vec<C14nOptions> {
    let mut v = Vec::new();
    for mode in [Mode::Inclusive, Mode::Exclusive] {
        for with_comments in [false, true] {
            v.push(C14nOptions {
                mode,
                with_comments,
                inclusive_prefixes: if mode == Mode::Exclusive && with_comments {
                    vec!["env".into(), "#default".into()]
                } else {
                    Vec::new()
                },
            });
        }
    }
    v
}

/// The variant name of an error's `Debug` form.
fn variant(debug: &str) -> String {
    debug
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn verify_class(e: &VerifyError) -> String {
    match e {
        VerifyError::Dsig(inner) => format!("Dsig({})", variant(&format!("{inner:?}"))),
        other => variant(&format!("{other:?}")),
    }
}

fn envelope_class(e: &EnvelopeError) -> String {
    match e {
        EnvelopeError::Invalid { path, .. } => {
            // Keep the field; an element that has no place in an envelope (a prefixed or
            // lower-case name) is "<other>", so that classes stay few.
            let field: Vec<&str> = path
                .split('/')
                .map(|s| {
                    let s = s.split(['[', ' ']).next().unwrap_or(s);
                    if s.contains(':') || s.starts_with(|c: char| c.is_lowercase()) {
                        "<other>"
                    } else {
                        s
                    }
                })
                .collect();
            format!("Invalid({})", field.join("/"))
        }
        EnvelopeError::UnsupportedVersion { .. } => "UnsupportedVersion".into(),
        EnvelopeError::Parse(p) => format!("Parse({})", variant(&format!("{:?}", p.kind))),
    }
}

/// What one case came to, target by target.
#[derive(Default)]
struct Outcome {
    classes: Vec<String>,
    /// Broken properties (not panics): each a sentence.
    violations: Vec<String>,
}

impl Outcome {
    /// Canonicalisation adds namespace declarations (on every element that uses a prefix in
    /// exclusive mode, on the apex of a subtree in inclusive mode) and escapes, so a form of a
    /// document accepted at the edge of a limit can be over it: refused when re-read, which is
    /// safe (the reader reports a parse error), so it is counted, not failed.
    fn grew_past_a_limit(&mut self, e: &ParseError) -> bool {
        let grew = matches!(
            e.kind,
            ParseErrorKind::TooManyAttributes { .. } | ParseErrorKind::TooLarge { .. }
        );
        if grew {
            self.classes
                .push(format!("reread:{}", variant(&format!("{:?}", e.kind))));
        }
        grew
    }
}

struct Targets {
    trust: TrustStore,
    modes: Vec<C14nOptions>,
}

impl Targets {
    fn run(&self, input: &[u8], rng: &mut Rng) -> Outcome {
        let mut out = Outcome::default();
        let doc = match xml::parse(input) {
            Ok(doc) => doc,
            Err(e) => {
                out.classes
                    .push(format!("parse:{}", variant(&format!("{:?}", e.kind))));
                // A parse error must point inside (or just past) the input.
                if e.position.line == 0 || e.position.column == 0 {
                    out.violations
                        .push(format!("parse error without a position: {e}"));
                }
                return out;
            }
        };
        out.classes.push("parse:Ok".into());
        self.canonical_forms(&doc, rng, &mut out);
        self.envelope(&doc, &mut out);
        self.signature(&doc, rng, &mut out);
        out
    }

    fn canonical_forms(&self, doc: &Document, rng: &mut Rng, out: &mut Outcome) {
        let whole: Vec<Vec<u8>> = self
            .modes
            .iter()
            .map(|o| c14n::canonicalize(doc, NodeSet::document(), o))
            .collect();
        let elements: Vec<_> = doc
            .descendants_or_self(doc.root())
            .into_iter()
            .filter(|n| matches!(doc.kind(*n), NodeKind::Element(_)))
            .collect();
        for _ in 0..3 {
            let e = *rng.pick(&elements);
            let options = rng.pick(&self.modes);
            let sub = c14n::canonicalize(doc, NodeSet::subtree(e), options);
            if let Err(err) = xml::parse(&sub) {
                if out.grew_past_a_limit(&err) {
                    continue;
                }
                out.violations.push(format!(
                    "canonical form of subtree {} ({}) does not parse: {err}",
                    doc.path(e),
                    options.uri()
                ));
            }
        }
        // Serialise and parse again: the same canonical forms.
        let written = doc.to_xml();
        match xml::parse(written.as_bytes()) {
            Ok(again) => {
                for (o, before) in self.modes.iter().zip(&whole) {
                    let after = c14n::canonicalize(&again, NodeSet::document(), o);
                    if &after != before {
                        out.violations.push(format!(
                            "serialise and parse changed the {} form:\n  before {}\n  after  {}",
                            o.uri(),
                            String::from_utf8_lossy(before),
                            String::from_utf8_lossy(&after)
                        ));
                    }
                }
            }
            Err(e) if out.grew_past_a_limit(&e) => {}
            Err(e) => out
                .violations
                .push(format!("our own serialisation does not parse: {e}")),
        }
        // The canonical form is a fixed point (one mode a case, chosen at random).
        let i = rng.below(self.modes.len());
        match xml::parse(&whole[i]) {
            Ok(again) => {
                let twice = c14n::canonicalize(&again, NodeSet::document(), &self.modes[i]);
                if twice != whole[i] {
                    out.violations.push(format!(
                        "{} form is not a fixed point:\n  once  {}\n  twice {}",
                        self.modes[i].uri(),
                        String::from_utf8_lossy(&whole[i]),
                        String::from_utf8_lossy(&twice)
                    ));
                }
            }
            Err(e) if out.grew_past_a_limit(&e) => {}
            Err(e) => out
                .violations
                .push(format!("{} form does not parse: {e}", self.modes[i].uri())),
        }
    }

    fn envelope(&self, doc: &Document, out: &mut Outcome) {
        match Envelope::from_document(doc) {
            Ok(env) => {
                out.classes.push("envelope:Ok".into());
                match env.to_canonical_xml() {
                    Ok(wire) => match Envelope::parse(wire.as_bytes()) {
                        Ok(back) => {
                            if back != env {
                                out.violations.push(
                                    "envelope read back from its canonical form differs".into(),
                                );
                            }
                            match back.to_canonical_xml() {
                                Ok(again) if again == wire => {}
                                Ok(_) => out
                                    .violations
                                    .push("envelope's canonical form is not byte-stable".into()),
                                Err(e) => out
                                    .violations
                                    .push(format!("envelope read back cannot be written: {e}")),
                            }
                        }
                        Err(e) => out
                            .violations
                            .push(format!("envelope's own canonical form is refused: {e}")),
                    },
                    Err(EnvelopeError::Parse(e)) if out.grew_past_a_limit(&e) => {}
                    Err(e) => out
                        .violations
                        .push(format!("a read envelope cannot be written: {e}")),
                }
            }
            Err(e) => out.classes.push(format!("envelope:{}", envelope_class(&e))),
        }
    }

    fn signature(&self, doc: &Document, rng: &mut Rng, out: &mut Outcome) {
        let policy = if rng.chance(4) {
            VerifyPolicy {
                allow_sha1: true,
                require_enveloped: false,
                allow_unsigned_comments: true,
                ..VerifyPolicy::default()
            }
        } else {
            VerifyPolicy::default()
        };
        match dsig::verify(doc, &self.trust, &policy) {
            Ok(verified) => {
                out.classes.push("verify:Ok".into());
                if verified.references.is_empty() {
                    out.violations
                        .push("a verified signature has no references".into());
                }
                for r in &verified.references {
                    match r.document() {
                        // Reading the envelope from the signed view is what the node does.
                        Ok(signed) => {
                            let _ = Envelope::from_document(&signed);
                        }
                        Err(e) if out.grew_past_a_limit(&e) => {}
                        Err(e) => out
                            .violations
                            .push(format!("signed content of {:?} does not parse: {e}", r.uri)),
                    }
                }
            }
            Err(e) => out.classes.push(format!("verify:{}", verify_class(&e))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The campaign

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim().replace('_', "");
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

fn failure_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz");
    std::fs::create_dir_all(&dir).expect("failure directory");
    dir
}

/// Runs one input, catching panics; `Err` names what went wrong.
fn run_one(targets: &Targets, input: &[u8], rng: &mut Rng) -> (Duration, Result<Outcome, String>) {
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| targets.run(input, rng)));
    let took = started.elapsed();
    let result = match result {
        Ok(outcome) if outcome.violations.is_empty() => Ok(outcome),
        Ok(outcome) => Err(outcome.violations.join("\n")),
        Err(panic) => Err(format!(
            "panic: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default()
        )),
    };
    (took, result)
}

struct Slowest {
    took: Duration,
    case: Option<u64>,
    seed_name: String,
    len: usize,
}

#[test]
fn mutated_inputs_never_break_the_parser_c14n_envelope_or_verifier() {
    let pki_ec = Pki::new(KeyKind::EcP256);
    let pki_rsa = Pki::new(KeyKind::Rsa(2048));
    // GOST (scripts/setup installs the engine); the PKIs' signers are GOST keys under an EC CA.
    tereze_gost_engine::load().expect("GOST engine: run scripts/setup (libengine-gost-openssl)");
    let pki_gost = [
        Pki::new(KeyKind::Gost2012_256),
        Pki::new(KeyKind::Gost2012_512),
    ];
    let mut trust = pki_ec.trust();
    trust.add_certificate(pki_rsa.ca.clone());
    for p in &pki_gost {
        trust.add_certificate(p.ca.clone());
    }
    trust_gost_vectors(&mut trust);
    let targets = Targets {
        trust,
        modes: modes(),
    };
    let seeds = seeds(&pki_ec, &pki_rsa, &pki_gost);
    let seed = env_u64("TEREZE_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let iterations = env_u64("TEREZE_FUZZ_ITERATIONS").unwrap_or(DEFAULT_ITERATIONS);

    if let Ok(path) = std::env::var("TEREZE_FUZZ_REPLAY") {
        let input = std::fs::read(&path).expect("replay input");
        let (took, result) = run_one(&targets, &input, &mut Rng::for_case(seed, 0));
        match result {
            Ok(o) => println!("replay {path}: {:?} in {took:?}", o.classes),
            Err(e) => panic!("replay {path}: {e}"),
        }
        return;
    }
    let only = env_u64("TEREZE_FUZZ_CASE");

    println!(
        "mutation fuzz: seed {seed:#018x}, {iterations} cases over {} seeds",
        seeds.len()
    );
    let mut classes: BTreeMap<String, u64> = BTreeMap::new();
    let mut ops_seen: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut slowest = Slowest {
        took: Duration::ZERO,
        case: None,
        seed_name: String::new(),
        len: 0,
    };
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    let started = Instant::now();
    let mut executed = 0u64;

    // Every seed as it is first: the baseline, which must hold the properties too.
    let plain = if only.is_some() { 0 } else { seeds.len() };
    for s in &seeds[..plain] {
        let (took, result) = run_one(&targets, &s.bytes, &mut Rng::for_case(seed, u64::MAX));
        executed += 1;
        match result {
            Ok(o) => {
                for c in o.classes {
                    *classes.entry(c).or_default() += 1;
                }
            }
            Err(e) => failures.push(format!("seed {} as it is: {e}", s.name)),
        }
        if took > slowest.took {
            slowest = Slowest {
                took,
                case: None,
                seed_name: s.name.clone(),
                len: s.bytes.len(),
            };
        }
    }
    let signed_ok = classes.get("verify:Ok").copied().unwrap_or(0);
    assert!(
        signed_ok as usize
            >= seeds
                .iter()
                .filter(|s| s.name.starts_with("signed") || s.name.starts_with("document signed"))
                .count(),
        "the signed seeds do not all verify as they are ({signed_ok} verified): {failures:?}"
    );

    let cases: Box<dyn Iterator<Item = u64>> = match only {
        Some(k) => Box::new(std::iter::once(k)),
        None => Box::new(0..iterations),
    };
    for case in cases {
        let (from, input, ops) = generate(seed, case, &seeds);
        for op in &ops {
            *ops_seen.entry(op).or_default() += 1;
        }
        for &b in &input {
            digest = (digest ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        // The targets draw from their own generator so that replaying a case needs only its number.
        let mut rng = Rng::for_case(seed ^ 0x5555, case);
        let (took, result) = run_one(&targets, &input, &mut rng);
        executed += 1;
        if took > slowest.took {
            slowest = Slowest {
                took,
                case: Some(case),
                seed_name: seeds[from].name.clone(),
                len: input.len(),
            };
        }
        let problem = match result {
            Ok(o) if took <= time_limit() => {
                for c in o.classes {
                    *classes.entry(c).or_default() += 1;
                }
                None
            }
            Ok(_) => Some(format!(
                "took {took:?}, over the limit of {:?}",
                time_limit()
            )),
            Err(e) => Some(e),
        };
        if let Some(e) = problem {
            let file = failure_dir().join(format!("mutation-{seed:016x}-{case}.xml"));
            std::fs::write(&file, &input).expect("write failing input");
            failures.push(format!(
                "case {case} (seed {seed:#x}, from {}, mutations {ops:?}), input in {}: {e}",
                seeds[from].name,
                file.display()
            ));
            if failures.len() >= 20 {
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    println!(
        "mutation fuzz: {executed} executions in {:.1} s, {:.0} execs/s, input digest {digest:016x}",
        elapsed.as_secs_f64(),
        executed as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    println!(
        "slowest: {:?} for {} bytes ({}, from {})",
        slowest.took,
        slowest.len,
        slowest
            .case
            .map_or("unmutated seed".to_owned(), |c| format!("case {c}")),
        slowest.seed_name
    );
    println!("mutations: {ops_seen:?}");
    println!("{} outcome classes:", classes.len());
    for (class, n) in &classes {
        println!("  {n:>8}  {class}");
    }
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    if only.is_none() && iterations >= 500 {
        // The mutator must reach the error paths, not only the happy one.
        let count = |prefix: &str| classes.keys().filter(|c| c.starts_with(prefix)).count();
        assert!(count("parse:") >= 10, "few parse outcomes: {classes:?}");
        assert!(
            count("envelope:") >= 8,
            "few envelope outcomes: {classes:?}"
        );
        assert!(count("verify:") >= 5, "few verify outcomes: {classes:?}");
        for needed in [
            "parse:DoctypeForbidden",
            "parse:Encoding",
            "parse:TooDeep",
            "envelope:Ok",
            "verify:DigestMismatch",
        ] {
            assert!(
                classes.contains_key(needed),
                "{needed} never reached: {classes:?}"
            );
        }
    }
}

#[test]
fn the_mutator_is_deterministic_and_changes_its_input() {
    let seeds = vec![
        Seed {
            name: "a".into(),
            bytes: br#"<r xmlns:p="urn:p"><p:e a="1">text</p:e><f/></r>"#.to_vec(),
        },
        Seed {
            name: "b".into(),
            bytes: b"<x><y z='2'>w</y></x>".to_vec(),
        },
    ];
    let mut changed = 0;
    for case in 0..200 {
        let (from, one, ops) = generate(42, case, &seeds);
        let (_, two, _) = generate(42, case, &seeds);
        assert_eq!(one, two, "case {case} is not reproducible");
        assert!(!ops.is_empty());
        if one != seeds[from].bytes {
            changed += 1;
        }
    }
    assert!(
        changed >= 180,
        "only {changed} of 200 cases changed their seed"
    );
    let differs = (0..20)
        .filter(|&c| generate(43, c, &seeds).1 != generate(42, c, &seeds).1)
        .count();
    assert!(differs >= 15, "another seed gives mostly the same cases");
}
