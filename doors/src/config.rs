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
}

/// The national doors: who may call them (docs/operations.md, "Doors").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct National {
    /// Omitted: plaintext (bind the doors to loopback).
    pub tls: Option<NationalTls>,
    #[serde(default, rename = "client")]
    pub clients: Vec<NationalClient>,
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
    }
    Ok(())
}
