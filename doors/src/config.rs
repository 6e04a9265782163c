//! The doors' own configuration: `[connections]` (how long and how many connections a client
//! may hold) and `[national]` (who may call the national doors and with what credential).
//! Node's `config.rs` embeds them in `node.toml` unchanged; the checks that need only these
//! values are here.

use std::path::PathBuf;

use serde::Deserialize;
use tereze_trust::tls::NationalTls;

/// What a national client may do on the national doors (HTTP and gRPC `Window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Submit documents and follow the messages sent (`POST /v1/messages`, status, Subscribe).
    Submit,
    /// Read the inbox and the attachments of received messages.
    Inbox,
    /// Acknowledge (take) messages from the inbox.
    Ack,
    /// Upload attachments.
    Upload,
    /// Manage this state's trader register (`POST /v1/traders`).
    Traders,
    /// Publish signed reference change sets (`POST /v1/reference/change-sets`).
    Reference,
}

impl Operation {
    pub(crate) const ALL: [Operation; 6] = [
        Operation::Submit,
        Operation::Inbox,
        Operation::Ack,
        Operation::Upload,
        Operation::Traders,
        Operation::Reference,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Inbox => "inbox",
            Self::Ack => "ack",
            Self::Upload => "upload",
            Self::Traders => "traders",
            Self::Reference => "reference",
        }
    }
}

/// One national system (or part of it) allowed on the national doors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NationalClient {
    /// The name the audit log and the logs give it.
    pub name: String,
    /// A file holding its bearer token (one line, at least 32 characters, owner-only).
    pub token_file: Option<PathBuf>,
    /// Its client certificate (PEM), for mutual TLS on the national doors (`national.tls`
    /// with `client_ca`); matched exactly.
    pub certificate: Option<PathBuf>,
    /// What it may call.
    pub operations: Vec<Operation>,
    /// What intake does with the issuing authority's signature on this client's national
    /// documents: `verify`, `require` or `off` ([`SignaturePolicy`]). Omitted: `verify` when
    /// `[national.signatures]` lists the national trust store, else `off`.
    #[serde(default)]
    pub signature_policy: Option<String>,
    /// How its documents are signed: one of [`SIGNATURE_PROFILES`]. Omitted: `enveloped`.
    #[serde(default)]
    pub signature_profile: Option<String>,
    /// The element that must be signed (a path, `/Root/Child`, as the profile names it).
    /// Omitted: the document element (`enveloped`), or the profile's own default.
    #[serde(default)]
    pub signed_element: Option<String>,
}

/// The verification profiles a national client or partner may name (the strings of the
/// codecs verifier's profiles): `enveloped` (the signature inside the element it signs),
/// `detached-by-id` (SMEV 3: beside the signed element, by its Id) and `wss`
/// (WS-Security: in `soap:Header/wsse:Security`, signing the Body).
pub const SIGNATURE_PROFILES: [&str; 3] = ["enveloped", "detached-by-id", "wss"];

/// What intake does with the signature of the authority that issued a national document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignaturePolicy {
    /// Verify it if there is one and record the verdict (`valid`, `unsigned`, or why it
    /// failed) in the signed envelope; never refuse for it.
    Verify,
    /// Refuse at intake a document that is not validly signed.
    Require,
    /// Do not look at it: nothing is recorded.
    Off,
}

impl SignaturePolicy {
    pub const NAMES: [&'static str; 3] = ["verify", "require", "off"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "verify" => Some(Self::Verify),
            "require" => Some(Self::Require),
            "off" => Some(Self::Off),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Require => "require",
            Self::Off => "off",
        }
    }
}

/// The node's national trust store: the CAs (and authorities) whose signatures on national
/// documents intake accepts (`[national.signatures]`, docs/config.md). Paths are PEM files.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NationalSignatures {
    /// The national CAs or authority certificates a signer must chain to: at least one.
    pub anchors: Vec<PathBuf>,
    /// Intermediate CA certificates a signer's chain may need when its document does not
    /// carry them (never trusted on their own).
    #[serde(default)]
    pub intermediates: Vec<PathBuf>,
    /// CRLs of the national CAs: a signer revoked by one is refused.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// The policy of a client that names none (and of the doors when no client is listed);
    /// omitted: `verify`.
    #[serde(default)]
    pub policy: Option<String>,
    /// The profile of a client that names none; omitted: `enveloped`.
    #[serde(default)]
    pub profile: Option<String>,
    /// The signed element of a client that names none.
    #[serde(default)]
    pub signed_element: Option<String>,
    /// Partner states whose documents enter through the national doors, each with its own
    /// anchors and profile.
    #[serde(default, rename = "partner")]
    pub partners: Vec<PartnerSignatures>,
}

/// How the documents of one partner state (a national format of that state submitted here)
/// are signed and verified (`[[national.signatures.partner]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerSignatures {
    /// ISO 3166-1 alpha-2 code of the partner state (the country of its national formats).
    pub state: String,
    /// Its authorities' CAs (PEM); the national anchors do not vouch for a partner.
    pub anchors: Vec<PathBuf>,
    /// As a client's `signature_policy`; omitted: `verify`.
    #[serde(default)]
    pub policy: Option<String>,
    /// As a client's `signature_profile`; omitted: `enveloped`.
    #[serde(default)]
    pub profile: Option<String>,
    /// As a client's `signed_element`.
    #[serde(default)]
    pub signed_element: Option<String>,
}

/// The national doors: who may call them (docs/operations.md, "Doors").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct National {
    /// Omitted: plaintext (bind the doors to loopback).
    pub tls: Option<NationalTls>,
    #[serde(default, rename = "client")]
    pub clients: Vec<NationalClient>,
    /// The national trust store for the signatures of issuing authorities at intake;
    /// omitted: none (every client's policy then defaults to `off`).
    #[serde(default)]
    pub signatures: Option<NationalSignatures>,
}

/// The signature settings in force for one national client (or partner): policy, profile
/// and signed element, each its own or else the defaults of `[national.signatures]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureSettings {
    pub policy: SignaturePolicy,
    /// One of [`SIGNATURE_PROFILES`].
    pub profile: String,
    pub signed_element: Option<String>,
}

impl National {
    /// The settings for the client named `name` (`None`, or a name not listed: the doors'
    /// defaults). Read after [`check_national`] accepted the configuration.
    pub fn signature_settings(&self, name: Option<&str>) -> SignatureSettings {
        let client = name.and_then(|n| self.clients.iter().find(|c| c.name == n));
        let defaults = self.signatures.as_ref();
        let pick = |own: Option<&String>, default: Option<&String>| own.or(default).cloned();
        let policy = pick(
            client.and_then(|c| c.signature_policy.as_ref()),
            defaults.and_then(|d| d.policy.as_ref()),
        )
        .and_then(|p| SignaturePolicy::parse(&p))
        .unwrap_or(if defaults.is_some() {
            SignaturePolicy::Verify
        } else {
            SignaturePolicy::Off
        });
        SignatureSettings {
            policy,
            profile: pick(
                client.and_then(|c| c.signature_profile.as_ref()),
                defaults.and_then(|d| d.profile.as_ref()),
            )
            .unwrap_or_else(|| SIGNATURE_PROFILES[0].to_owned()),
            signed_element: pick(
                client.and_then(|c| c.signed_element.as_ref()),
                defaults.and_then(|d| d.signed_element.as_ref()),
            ),
        }
    }
}

impl PartnerSignatures {
    /// This partner's settings: its own, else `verify`, `enveloped`.
    pub fn settings(&self) -> SignatureSettings {
        SignatureSettings {
            policy: self
                .policy
                .as_deref()
                .and_then(SignaturePolicy::parse)
                .unwrap_or(SignaturePolicy::Verify),
            profile: self
                .profile
                .clone()
                .unwrap_or_else(|| SIGNATURE_PROFILES[0].to_owned()),
            signed_element: self.signed_element.clone(),
        }
    }
}

/// Bounds on the connections of the node's doors (docs/config.md `[connections]`): how long
/// a client may hold a connection without sending, and how many it may hold, so that slow or
/// idle clients cannot take every socket or task of a door.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Connections {
    /// Seconds a request's head (request line and headers) may take from its first byte on
    /// the HTTP doors (national, peer, admin); also the bound on a TLS handshake there.
    pub header_timeout_seconds: u64,
    /// Seconds a request body being read may go without a byte arriving on the HTTP doors;
    /// then the request fails and the connection is closed. A stall bound, not a total: a
    /// large upload that keeps moving is never cut (uploads also have
    /// `attachments.stall_seconds`; the shorter applies).
    pub body_stall_seconds: u64,
    /// Seconds an HTTP door's connection may stay open with no request in progress and no
    /// byte of a next one (after the TLS handshake, between keep-alive requests).
    pub idle_timeout_seconds: u64,
    /// Connections open at once on each HTTP door; one over it is accepted and closed at once.
    pub max_per_door: usize,
    /// HTTP/2 streams one Window connection may have open at once (the SETTINGS a client's
    /// HTTP/2 stack waits on before opening more).
    pub window_max_streams: u32,
    /// Window calls in progress at once, all connections together; a call over it is
    /// answered `RESOURCE_EXHAUSTED` at once (the others on its connection go on).
    pub window_max_calls: usize,
    /// HTTP/2 streams one peer connection to the Exchange may have open at once (the relay
    /// keeps `relay.concurrency` calls per peer and the attachments lane a few transfers).
    pub exchange_max_streams: u32,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            header_timeout_seconds: 10,
            body_stall_seconds: 60,
            idle_timeout_seconds: 60,
            max_per_door: 1024,
            window_max_streams: 256,
            window_max_calls: 256,
            exchange_max_streams: 256,
        }
    }
}

/// The national clients' names are unique words, each has one credential and some operations;
/// certificate clients need TLS that asks for client certificates.
pub fn check_national(n: &National) -> Result<(), (String, String)> {
    let mut names = std::collections::HashSet::new();
    for (i, client) in n.clients.iter().enumerate() {
        let field = |f: &str| format!("national.client[{i}].{f}");
        let good_name = !client.name.is_empty()
            && client.name.len() <= 64
            && client
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !good_name {
            return Err((
                field("name"),
                format!(
                    "{:?}: 1 to 64 letters, digits, '-', '_' or '.'",
                    client.name
                ),
            ));
        }
        if !names.insert(client.name.as_str()) {
            return Err((field("name"), format!("{:?} is listed twice", client.name)));
        }
        match (&client.token_file, &client.certificate) {
            (Some(_), None) => {}
            (None, Some(_)) => {
                if n.tls.as_ref().and_then(|t| t.client_ca.as_ref()).is_none() {
                    return Err((
                        field("certificate"),
                        "a client known by its certificate needs national.tls with client_ca"
                            .into(),
                    ));
                }
            }
            _ => {
                return Err((
                    field("token_file"),
                    "give exactly one of token_file and certificate".into(),
                ))
            }
        }
        if client.operations.is_empty() {
            return Err((
                field("operations"),
                format!(
                    "list what it may call: {}",
                    Operation::ALL.map(Operation::as_str).join(", ")
                ),
            ));
        }
        check_signature_settings(
            n,
            &field,
            ("signature_policy", client.signature_policy.as_deref()),
            ("signature_profile", client.signature_profile.as_deref()),
            ("signed_element", client.signed_element.as_deref()),
        )?;
    }
    if let Some(s) = &n.signatures {
        let field = |f: &str| format!("national.signatures.{f}");
        check_signature_settings(
            n,
            &field,
            ("policy", s.policy.as_deref()),
            ("profile", s.profile.as_deref()),
            ("signed_element", s.signed_element.as_deref()),
        )?;
        if s.anchors.is_empty() {
            return Err((
                "national.signatures.anchors".into(),
                "list at least one PEM file of the national CAs whose signatures intake accepts"
                    .into(),
            ));
        }
        let mut states = std::collections::HashSet::new();
        for (i, p) in s.partners.iter().enumerate() {
            let field = |f: &str| format!("national.signatures.partner[{i}].{f}");
            if p.state.len() != 2 || !p.state.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err((
                    field("state"),
                    format!("{:?} is not an ISO 3166-1 alpha-2 code", p.state),
                ));
            }
            if !states.insert(p.state.as_str()) {
                return Err((field("state"), format!("{} is listed twice", p.state)));
            }
            if p.anchors.is_empty() {
                return Err((
                    field("anchors"),
                    format!("list at least one PEM file of {}'s CAs", p.state),
                ));
            }
            check_signature_settings(
                n,
                &field,
                ("policy", p.policy.as_deref()),
                ("profile", p.profile.as_deref()),
                ("signed_element", p.signed_element.as_deref()),
            )?;
        }
    }
    Ok(())
}

/// A policy, a profile and a signed element as written for a client or a partner: known
/// names, a path, and a trust store for any policy that verifies.
fn check_signature_settings(
    n: &National,
    field: &dyn Fn(&str) -> String,
    policy: (&str, Option<&str>),
    profile: (&str, Option<&str>),
    element: (&str, Option<&str>),
) -> Result<(), (String, String)> {
    if let (name, Some(p)) = policy {
        match SignaturePolicy::parse(p) {
            None => {
                return Err((
                    field(name),
                    format!(
                        "unknown policy {p:?}; expected one of {}",
                        SignaturePolicy::NAMES.join(", ")
                    ),
                ))
            }
            Some(SignaturePolicy::Off) => {}
            Some(_) if n.signatures.is_none() => {
                return Err((
                    field(name),
                    format!("{p:?} needs [national.signatures] with the national CAs' anchors"),
                ))
            }
            Some(_) => {}
        }
    }
    if let (name, Some(p)) = profile {
        if !SIGNATURE_PROFILES.contains(&p) {
            return Err((
                field(name),
                format!(
                    "unknown profile {p:?}; expected one of {}",
                    SIGNATURE_PROFILES.join(", ")
                ),
            ));
        }
    }
    if let (name, Some(e)) = element {
        // The form only; the node parses the steps (namespaces in Clark notation) at start.
        let ok = e.len() > 1
            && e.len() <= 512
            && e.starts_with('/')
            && !e.ends_with('/')
            && !e.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err((
                field(name),
                format!(
                    "{e:?} is not an element path (/Root/Child, or /{{namespace}}Root/{{namespace}}Child; no spaces)"
                ),
            ));
        }
    }
    Ok(())
}
