//! The trust space as this node reads it (DESIGN §5): the states, their trust anchors (for
//! document signatures and TLS), their CRLs, and their nodes with endpoints and TLS
//! certificates. It answers the two questions the relay asks: which state's node is on the
//! other end of this TLS connection, and which anchors a state's document signatures must
//! chain to. (The signed, versioned trust-space document that the Commission publishes and
//! nodes fetch is issue 6; this file is its unsigned predecessor, written by
//! `tereze pki init-dev`.)

use std::collections::BTreeMap;
use std::path::Path;

use openssl::hash::MessageDigest;
use openssl::x509::{X509Crl, X509};
use serde::Deserialize;
use tereze_codecs::dsig::TrustStore;

use crate::config::Role;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNode {
    endpoint: String,
    server_name: String,
    tls_certificate: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileState {
    code: String,
    #[allow(dead_code)] // for people reading the file
    name: String,
    role: Role,
    anchors: Vec<String>,
    #[serde(default)]
    crls: Vec<String>,
    #[serde(default, rename = "node")]
    nodes: Vec<FileNode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u64,
    issued_at: String,
    #[serde(rename = "state")]
    states: Vec<FileState>,
}

/// One node of a state.
#[derive(Debug, Clone)]
pub(crate) struct NodeEntry {
    pub(crate) endpoint: String,
    pub(crate) server_name: String,
    fingerprint: Vec<u8>,
}

/// One state (or the hub).
#[derive(Debug, Clone)]
pub(crate) struct StateEntry {
    pub(crate) code: String,
    pub(crate) role: Role,
    pub(crate) anchors: Vec<X509>,
    pub(crate) anchors_pem: String,
    /// DER.
    pub(crate) crls: Vec<Vec<u8>>,
    pub(crate) nodes: Vec<NodeEntry>,
    /// The anchors as a document-signature trust store (it caches accepted chains).
    pub(crate) documents: TrustStore,
}

/// The loaded trust space.
#[derive(Debug, Clone)]
pub(crate) struct TrustSpace {
    pub(crate) version: u64,
    pub(crate) issued_at: String,
    pub(crate) states: BTreeMap<String, StateEntry>,
}

/// Why a trust space was refused.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub(crate) struct TrustError {
    path: String,
    reason: String,
}

pub(crate) fn fingerprint(der: &[u8]) -> Vec<u8> {
    openssl::hash::hash(MessageDigest::sha256(), der)
        .map(|d| d.to_vec())
        .unwrap_or_default()
}

impl TrustSpace {
    pub(crate) fn load(path: &Path) -> Result<Self, TrustError> {
        let err = |reason: String| TrustError {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let file: File =
            toml::from_str(&text).map_err(|e| err(e.to_string().trim_end().replace('\n', " ")))?;
        let mut states = BTreeMap::new();
        for (i, s) in file.states.into_iter().enumerate() {
            let at = |f: &str| format!("state[{i}] ({}).{f}", s.code);
            let mut anchors = Vec::new();
            for (j, pem) in s.anchors.iter().enumerate() {
                let certs = X509::stack_from_pem(pem.as_bytes()).map_err(|e| {
                    err(format!(
                        "{}[{j}]: not a PEM certificate: {e}",
                        at("anchors")
                    ))
                })?;
                if certs.is_empty() {
                    return Err(err(format!("{}[{j}]: no certificate", at("anchors"))));
                }
                anchors.extend(certs);
            }
            if anchors.is_empty() {
                return Err(err(format!(
                    "{}: a state needs a trust anchor",
                    at("anchors")
                )));
            }
            let mut crls = Vec::new();
            for (j, pem) in s.crls.iter().enumerate() {
                let crl = X509Crl::from_pem(pem.as_bytes())
                    .and_then(|c| c.to_der())
                    .map_err(|e| err(format!("{}[{j}]: not a PEM CRL: {e}", at("crls"))))?;
                crls.push(crl);
            }
            let mut nodes = Vec::new();
            for (j, n) in s.nodes.iter().enumerate() {
                let cert = X509::from_pem(n.tls_certificate.as_bytes())
                    .map_err(|e| err(format!("{}[{j}].tls_certificate: {e}", at("node"))))?;
                let der = cert
                    .to_der()
                    .map_err(|e| err(format!("{}[{j}].tls_certificate: {e}", at("node"))))?;
                nodes.push(NodeEntry {
                    endpoint: n.endpoint.clone(),
                    server_name: n.server_name.clone(),
                    fingerprint: fingerprint(&der),
                });
            }
            let mut documents = TrustStore::new();
            for a in &anchors {
                documents.add_certificate(a.clone());
            }
            let anchors_pem = s.anchors.join("\n");
            if states.contains_key(&s.code) {
                return Err(err(format!("{}: listed twice", at("code"))));
            }
            states.insert(
                s.code.clone(),
                StateEntry {
                    code: s.code,
                    role: s.role,
                    anchors,
                    anchors_pem,
                    crls,
                    nodes,
                    documents,
                },
            );
        }
        Ok(Self {
            version: file.version,
            issued_at: file.issued_at,
            states,
        })
    }

    /// The state whose listed node presented this TLS certificate (DER).
    pub(crate) fn identify(&self, der: &[u8]) -> Option<&StateEntry> {
        let fp = fingerprint(der);
        self.states
            .values()
            .find(|s| s.nodes.iter().any(|n| n.fingerprint == fp))
    }

    pub(crate) fn state(&self, code: &str) -> Option<&StateEntry> {
        self.states.get(code)
    }

    /// Every anchor of every state, DER: the roots a client certificate may chain to.
    pub(crate) fn all_anchors_der(&self) -> Vec<Vec<u8>> {
        self.states
            .values()
            .flat_map(|s| s.anchors.iter())
            .filter_map(|c| c.to_der().ok())
            .collect()
    }

    /// Every CRL, DER.
    pub(crate) fn all_crls_der(&self) -> Vec<Vec<u8>> {
        self.states
            .values()
            .flat_map(|s| s.crls.iter().cloned())
            .collect()
    }
}
