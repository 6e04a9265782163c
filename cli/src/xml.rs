//! `tereze xml c14n|sign|verify`.

mod verify;

use std::path::{Path, PathBuf};

use clap::Subcommand;
use tereze_codecs::c14n::{self, C14nOptions, Mode, NodeSet};
use tereze_codecs::dsig::{self, DigestMethod, RsaPadding, SignOptions, SignTarget};
use tereze_codecs::xml::{Document, Limits};

use crate::common::Failure;

#[derive(Debug, Subcommand)]
pub(crate) enum XmlCommand {
    /// Write the canonical form of FILE to stdout (inclusive C14N 1.0 without comments by
    /// default).
    C14n {
        /// Exclusive XML Canonicalization 1.0 instead of inclusive C14N 1.0.
        #[arg(long)]
        exclusive: bool,
        /// Keep comments.
        #[arg(long)]
        with_comments: bool,
        /// Exclusive mode: the InclusiveNamespaces PrefixList, space-separated
        /// ("#default" names the default namespace).
        #[arg(long, value_name = "PREFIXES", requires = "exclusive")]
        prefixes: Option<String>,
        /// Canonicalise only the element with this identifier (Id, ID, id, wsu:Id or xml:id).
        #[arg(long, value_name = "ID")]
        id: Option<String>,
        /// The XML document ("-" for stdin).
        file: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Sign FILE with an enveloped XML signature and write the signed document to stdout.
    ///
    /// The signature (exclusive C14N, SHA-2, ECDSA or RSA by the key's type, the certificate
    /// in KeyInfo) goes in as the last child of the signed element: the document element, or
    /// the element with identifier ID.
    Sign {
        #[command(flatten)]
        key: crate::keys::SigningKeyArgs,
        /// Sign only the element with this identifier (Id, ID, id, wsu:Id or xml:id).
        #[arg(long, value_name = "ID")]
        id: Option<String>,
        /// Digest for the reference and the signature: sha256 (the default), sha384 or sha512
        /// (never sha1). A GOST R 34.10-2012 key signs with its own digest (gost2012-256 or
        /// gost2012-512) when this is left out; any other digest with it is an error.
        #[arg(long, value_name = "ALG")]
        digest: Option<String>,
        /// With an RSA key, sign with RSA-PSS (RFC 9231 sha*-rsa-MGF1) instead of PKCS#1 v1.5.
        #[arg(long)]
        rsa_pss: bool,
        /// The XML document ("-" for stdin).
        file: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Verify the signatures in FILE and report each: where it is, the signer (subject, serial,
    /// issuer), the algorithm, what it covers, valid or invalid and why.
    ///
    /// One line per signature on stdout (`--format json`: one JSON object). Exit 0 when every
    /// signature checked is valid; exit 1 when one is not or the document is refused (the
    /// reason also on stderr); exit 2 on usage, unreadable input or parse errors.
    ///
    /// Which signatures are checked: with one signature and no option, that one (under
    /// --profile enveloped, whatever element it envelops); with --element, the one signature
    /// the profile accepts over that element; with several signatures, or --all, every one (a
    /// single invalid one refuses the document); with --covering, only those signing that
    /// element.
    ///
    /// Examples:
    ///   tereze xml verify --trusted ca.pem signed.xml
    ///   tereze xml verify --trusted root.pem --untrusted issuing-ca.pem --crl issuing-ca.crl
    ///       --at 2025-06-30 archived.xml
    ///   tereze xml verify --trusted ca.pem --profile wss --signed-out body.xml message.xml
    ///   tereze xml verify --trusted ca.pem --ns c=urn:example:certificate
    ///       --covering /c:Certificate/c:Inspection certificate.xml
    #[command(verbatim_doc_comment)]
    Verify {
        #[command(flatten)]
        args: verify::VerifyArgs,
        /// The signed XML document ("-" for stdin).
        file: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

/// Parser limits; the defaults suit signed trade documents.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Parser limits")]
pub(crate) struct LimitArgs {
    /// Largest accepted document, in bytes.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_bytes)]
    max_bytes: usize,
    /// Deepest element nesting.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_depth)]
    max_depth: usize,
    /// Most attributes (namespace declarations included) on one element.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_attributes)]
    max_attributes: usize,
    /// Longest element or attribute name, in bytes.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_name_len)]
    max_name_len: usize,
    /// Most nodes in the document.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_nodes)]
    max_nodes: usize,
    /// Most memory the parsed tree may take per byte of input (beyond 1 MiB for any document).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_memory_per_byte)]
    max_memory_per_byte: usize,
}

impl From<&LimitArgs> for Limits {
    fn from(a: &LimitArgs) -> Self {
        Limits {
            max_bytes: a.max_bytes,
            max_depth: a.max_depth,
            max_attributes: a.max_attributes,
            max_name_len: a.max_name_len,
            max_nodes: a.max_nodes,
            max_memory_per_byte: a.max_memory_per_byte,
        }
    }
}

pub(crate) fn run(cmd: XmlCommand) -> Result<(), Failure> {
    match cmd {
        XmlCommand::C14n {
            exclusive,
            with_comments,
            prefixes,
            id,
            file,
            limits,
        } => {
            let doc = load(&file, &limits)?;
            let options = C14nOptions {
                mode: if exclusive {
                    Mode::Exclusive
                } else {
                    Mode::Inclusive
                },
                with_comments,
                inclusive_prefixes: prefixes
                    .map(|p| p.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default(),
            };
            let nodes = match id {
                Some(id) => NodeSet::subtree(
                    doc.find_by_id(&id)
                        .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?,
                ),
                None => NodeSet::document(),
            };
            crate::common::write_stdout(&c14n::canonicalize(&doc, nodes, &options))
        }
        XmlCommand::Sign {
            key,
            id,
            digest,
            rsa_pss,
            file,
            limits,
        } => {
            let digest_explicit = digest.is_some();
            let digest = match digest {
                None => DigestMethod::SHA256,
                Some(digest) => DigestMethod::from_name(&digest).ok_or_else(|| {
                    Failure::Input(format!(
                        "--digest {digest}: unknown digest; use sha256, sha384, sha512, gost2012-256 or gost2012-512"
                    ))
                })?,
            };
            let signing_key = key.load()?;
            let mut doc = load(&file, &limits)?;
            let target = match id {
                Some(id) => SignTarget::Id(id),
                None => SignTarget::Document,
            };
            let options = SignOptions {
                digest,
                digest_explicit,
                rsa_padding: if rsa_pss {
                    RsaPadding::Pss
                } else {
                    RsaPadding::Pkcs1v15
                },
                ..SignOptions::default()
            };
            dsig::sign_enveloped(&mut doc, &target, &signing_key, &options)
                .map_err(|e| Failure::Input(format!("{}: cannot sign: {e}", file.display())))?;
            crate::common::write_stdout(doc.to_xml().as_bytes())
        }
        XmlCommand::Verify { args, file, limits } => {
            let doc = load(&file, &limits)?;
            verify::run(&args, &file, &doc)
        }
    }
}

fn load(path: &Path, limits: &LimitArgs) -> Result<Document, Failure> {
    crate::common::load(path, &limits.into())
}
