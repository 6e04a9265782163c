//! The national doors (HTTP and gRPC `Window`): who may call them. Every call but the health
//! probes and metrics must come from a client listed in `[[national.client]]`, known by its
//! bearer token (compared in constant time) or by its certificate on a mutual-TLS connection,
//! and may use only the operations listed for it. Each refusal is counted
//! (`tereze_national_refused_total`) and logged with the source address and the name the
//! caller claimed; tokens are never logged. The name of the client that made an accepted
//! state change goes into the audit log.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::{National, Operation};
use crate::response::error;

/// The header a caller may use to say which client it is (logged when it is refused).
pub(crate) const CLIENT_HEADER: &str = "x-tereze-client";

/// A listed client as the running node knows it.
#[derive(Debug)]
struct Known {
    name: Arc<str>,
    token: Option<String>,
    /// SHA-256 of the DER of its certificate.
    certificate: Option<[u8; 32]>,
    operations: Vec<Operation>,
}

/// The national clients of `[[national.client]]`, with their credentials read.
#[derive(Debug, Default)]
pub struct Clients {
    known: Vec<Known>,
}

/// What a caller showed on one call.
#[derive(Debug, Default, Clone, Copy)]
pub struct Credentials<'a> {
    /// The `Authorization` header's value, if any.
    pub authorization: Option<&'a str>,
    /// The name it claimed (`x-tereze-client`), for the logs only.
    pub claimed: Option<&'a str>,
    /// The DER of the client certificate of a mutual-TLS connection.
    pub certificate: Option<&'a [u8]>,
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("national client credentials required: Authorization: Bearer <token>, or a client certificate listed in national.client")]
    NoCredential,
    #[error("the credentials given are not those of any national client (national.client)")]
    Unknown,
    #[error("national client {client:?} may not {operation} (its national.client operations)")]
    NotPermitted {
        client: Arc<str>,
        operation: &'static str,
    },
}

impl Refusal {
    /// The metric's and the log's reason label.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::NoCredential => "no-credential",
            Self::Unknown => "unknown-credential",
            Self::NotPermitted { .. } => "not-permitted",
        }
    }

    pub(crate) fn http_status(&self) -> StatusCode {
        match self {
            Self::NoCredential | Self::Unknown => StatusCode::UNAUTHORIZED,
            Self::NotPermitted { .. } => StatusCode::FORBIDDEN,
        }
    }

    pub(crate) fn grpc_status(&self) -> tonic::Status {
        match self {
            Self::NoCredential | Self::Unknown => tonic::Status::unauthenticated(self.to_string()),
            Self::NotPermitted { .. } => tonic::Status::permission_denied(self.to_string()),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value: the scheme is case-insensitive
/// (RFC 7235) and the token is taken without surrounding whitespace.
pub fn bearer(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, token) = value.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

/// Constant-time comparison of equal-length byte strings (and false for unequal lengths).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

fn fingerprint(der: &[u8]) -> [u8; 32] {
    openssl::sha::sha256(der)
}

/// Why the national clients could not be loaded; the text names the `[[national.client]]`
/// entry and its field.
#[derive(Debug, thiserror::Error)]
pub enum ClientsError {
    #[error("national.client[{index}].token_file: {source}")]
    Token {
        index: usize,
        #[source]
        source: tereze_support::fs::TokenError,
    },
    #[error("national.client[{index}].token_file: the same token as client {other:?}: each client needs its own")]
    SharedToken { index: usize, other: String },
    #[error("national.client[{index}].certificate: {path}: cannot read: {source}")]
    CertificateUnreadable {
        index: usize,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("national.client[{index}].certificate: {path}: not a PEM certificate: {source}")]
    NotPem {
        index: usize,
        path: String,
        #[source]
        source: openssl::error::ErrorStack,
    },
    #[error("national.client[{index}].certificate: {path}: {source}")]
    Der {
        index: usize,
        path: String,
        #[source]
        source: openssl::error::ErrorStack,
    },
}

impl Clients {
    /// Reads every client's token file (owner-only, as the operator token) or certificate.
    pub fn load(national: &National) -> Result<Self, ClientsError> {
        let mut known: Vec<Known> = Vec::new();
        for (i, c) in national.clients.iter().enumerate() {
            let token = match &c.token_file {
                Some(path) => Some(
                    tereze_support::fs::read_token(path, "a national client token")
                        .map_err(|source| ClientsError::Token { index: i, source })?,
                ),
                None => None,
            };
            if let Some(t) = &token {
                if let Some(other) = known.iter().find(|k| {
                    k.token
                        .as_deref()
                        .is_some_and(|o| same(o.as_bytes(), t.as_bytes()))
                }) {
                    return Err(ClientsError::SharedToken {
                        index: i,
                        other: other.name.to_string(),
                    });
                }
            }
            let certificate = match &c.certificate {
                Some(path) => {
                    let shown = || path.display().to_string();
                    let pem = std::fs::read(path).map_err(|source| {
                        ClientsError::CertificateUnreadable {
                            index: i,
                            path: shown(),
                            source,
                        }
                    })?;
                    let cert = openssl::x509::X509::from_pem(&pem).map_err(|source| {
                        ClientsError::NotPem {
                            index: i,
                            path: shown(),
                            source,
                        }
                    })?;
                    let der = cert.to_der().map_err(|source| ClientsError::Der {
                        index: i,
                        path: shown(),
                        source,
                    })?;
                    Some(fingerprint(&der))
                }
                None => None,
            };
            known.push(Known {
                name: Arc::from(c.name.as_str()),
                token,
                certificate,
                operations: c.operations.clone(),
            });
        }
        Ok(Self { known })
    }

    /// The client these credentials belong to, if it may call `operation` (`None`: any
    /// listed client may, such as reading reference data).
    pub(crate) fn authorise(
        &self,
        given: &Credentials<'_>,
        operation: Option<Operation>,
    ) -> Result<Arc<str>, Refusal> {
        let token = given.authorization.and_then(bearer);
        if token.is_none() && given.certificate.is_none() {
            return Err(Refusal::NoCredential);
        }
        let by_token = token.and_then(|t| {
            self.known.iter().find(|k| {
                k.token
                    .as_deref()
                    .is_some_and(|mine| same(mine.as_bytes(), t.as_bytes()))
            })
        });
        let by_certificate = || {
            let fp = fingerprint(given.certificate?);
            self.known.iter().find(|k| k.certificate == Some(fp))
        };
        // A wrong token is refused even on a connection with a listed certificate: a caller
        // that presents a credential means it.
        let client = match (token, by_token) {
            (Some(_), Some(k)) => k,
            (Some(_), None) => return Err(Refusal::Unknown),
            (None, _) => by_certificate().ok_or(Refusal::Unknown)?,
        };
        match operation {
            Some(op) if !client.operations.contains(&op) => Err(Refusal::NotPermitted {
                client: client.name.clone(),
                operation: op.as_str(),
            }),
            _ => Ok(client.name.clone()),
        }
    }
}

/// The doors whose refusals are counted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Door {
    Http,
    Window,
}

impl Door {
    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Window => "window",
        }
    }
}

const REASONS: [&str; 3] = ["no-credential", "unknown-credential", "not-permitted"];

/// Refusals counted by door and reason (a clone counts into the same counters).
#[derive(Debug, Default, Clone)]
pub struct Refusals {
    counts: Arc<[[AtomicU64; 3]; 2]>,
}

impl Refusals {
    /// Counts and logs one refusal.
    pub(crate) fn refused(
        &self,
        door: Door,
        source: Option<SocketAddr>,
        given: &Credentials<'_>,
        what: &str,
        refusal: &Refusal,
    ) {
        let r = REASONS
            .iter()
            .position(|r| *r == refusal.reason())
            .unwrap_or(0);
        self.counts[door as usize][r].fetch_add(1, Ordering::Relaxed);
        let claimed = match refusal {
            Refusal::NotPermitted { client, .. } => client.to_string(),
            _ => given
                .claimed
                .map(|c| c.chars().take(64).collect())
                .or_else(|| given.certificate.and_then(subject_name))
                .unwrap_or_else(|| "-".to_owned()),
        };
        tracing::warn!(
            door = door.as_str(),
            source = %source.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            client = %claimed,
            reason = refusal.reason(),
            call = %what,
            "national call refused"
        );
    }

    /// Registers `tereze_national_refused_total` (every door and reason, zeros included).
    pub fn register(&self, r: &mut prometheus_client::registry::Registry) {
        r.register_collector(Box::new(self.clone()));
    }
}

impl prometheus_client::collector::Collector for Refusals {
    fn encode(&self, mut e: prometheus_client::encoding::DescriptorEncoder) -> std::fmt::Result {
        use prometheus_client::encoding::EncodeMetric as _;
        let mut m = e.encode_descriptor(
            "national_refused",
            "Calls to the national doors refused for missing, unknown or insufficient credentials.",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for door in [Door::Http, Door::Window] {
            for (i, reason) in REASONS.iter().enumerate() {
                prometheus_client::metrics::counter::ConstCounter::new(
                    self.counts[door as usize][i].load(Ordering::Relaxed),
                )
                .encode(m.encode_family(&[("door", door.as_str()), ("reason", reason)])?)?;
            }
        }
        Ok(())
    }
}

/// The subject's common name of a certificate, for the logs.
fn subject_name(der: &[u8]) -> Option<String> {
    let cert = openssl::x509::X509::from_der(der).ok()?;
    let cn = cert
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()?;
    cn.data()
        .to_string()
        .ok()
        .map(|s| format!("certificate {s}"))
}

/// What the HTTP servers know of a connection: put in every request's extensions.
#[derive(Debug, Clone)]
pub struct Connection {
    pub source: Option<SocketAddr>,
    /// The DER of the client certificate, on a mutual-TLS connection.
    pub certificate: Option<Arc<Vec<u8>>>,
}

/// The national client that made a call, for the audit log (an extension of the request).
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<str>);

impl Caller {
    /// How the audit log names it.
    pub fn by(&self) -> String {
        format!("by national client {}", self.0)
    }
}

/// The credentials of an HTTP request.
pub fn credentials<'a>(
    headers: &'a HeaderMap,
    connection: Option<&'a Connection>,
) -> Credentials<'a> {
    Credentials {
        authorization: headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        claimed: headers.get(CLIENT_HEADER).and_then(|v| v.to_str().ok()),
        certificate: connection
            .and_then(|c| c.certificate.as_deref())
            .map(Vec::as_slice),
    }
}

/// The national doors' gatekeeper, one per node, shared by the HTTP routes and `Window`: the
/// listed clients and the count of calls refused.
#[derive(Debug, Default)]
pub struct NationalDoor {
    pub clients: Clients,
    pub refusals: Refusals,
}

/// The state of [`guard`]: the national door and what the guarded routes do.
#[derive(Clone)]
pub struct Guarded {
    pub door: Arc<NationalDoor>,
    pub operation: Option<Operation>,
}

/// Middleware of the national HTTP routes: lets through a listed client allowed to call the
/// route's operation (its name in the request's [`Caller`]), refuses anything else.
pub async fn guard(State(g): State<Guarded>, mut req: Request, next: Next) -> Response {
    let connection = req.extensions().get::<Connection>().cloned();
    let given = credentials(req.headers(), connection.as_ref());
    match g.door.clients.authorise(&given, g.operation) {
        Ok(name) => {
            req.extensions_mut().insert(Caller(name));
            next.run(req).await
        }
        Err(refusal) => {
            let what = format!("{} {}", req.method(), req.uri().path());
            g.door.refusals.refused(
                Door::Http,
                connection.as_ref().and_then(|c| c.source),
                &given,
                &what,
                &refusal,
            );
            let mut r = error(refusal.http_status(), &refusal);
            if refusal.http_status() == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                );
            }
            r
        }
    }
}

/// The gRPC `Window`'s check of one call: the client's name, or the status to answer.
pub fn authorise_grpc<T>(
    door: &NationalDoor,
    request: &tonic::Request<T>,
    operation: Option<Operation>,
    what: &str,
) -> Result<Caller, tonic::Status> {
    let meta = request.metadata();
    let certs = request.peer_certs();
    let given = Credentials {
        authorization: meta.get("authorization").and_then(|v| v.to_str().ok()),
        claimed: meta.get(CLIENT_HEADER).and_then(|v| v.to_str().ok()),
        certificate: certs.as_ref().and_then(|c| c.first()).map(|c| c.as_ref()),
    };
    door.clients
        .authorise(&given, operation)
        .map(Caller)
        .map_err(|refusal| {
            door.refusals
                .refused(Door::Window, request.remote_addr(), &given, what, &refusal);
            refusal.grpc_status()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NationalClient;

    fn clients(dir: &std::path::Path) -> Clients {
        use std::os::unix::fs::PermissionsExt;
        let mut list = Vec::new();
        for (name, token, ops) in [
            ("sender", "s".repeat(40), vec![Operation::Submit]),
            (
                "reader",
                "r".repeat(40),
                vec![Operation::Inbox, Operation::Ack],
            ),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, format!("{token}\n")).expect("written");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("mode");
            list.push(NationalClient {
                name: name.into(),
                token_file: Some(path),
                certificate: None,
                operations: ops,
                signature_policy: None,
                signature_profile: None,
                signed_element: None,
            });
        }
        Clients::load(&National {
            tls: None,
            clients: list,
            signatures: None,
        })
        .expect("loads")
    }

    fn with(auth: &str) -> Credentials<'_> {
        Credentials {
            authorization: Some(auth),
            ..Credentials::default()
        }
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_whitespace_is_not_part_of_the_token() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER   abc  "), Some("abc"));
        assert_eq!(bearer("Bearer\tabc\t"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer   "), None);
        assert_eq!(bearer("Bearerabc"), None);
    }

    #[test]
    fn each_client_may_call_only_its_operations() {
        let dir = tempfile::tempdir().expect("dir");
        let c = clients(dir.path());
        let sender = format!("Bearer {}", "s".repeat(40));
        let reader = format!("bearer {} ", "r".repeat(40));
        assert_eq!(
            c.authorise(&with(&sender), Some(Operation::Submit))
                .as_deref()
                .ok(),
            Some("sender")
        );
        assert_eq!(
            c.authorise(&with(&reader), Some(Operation::Ack))
                .as_deref()
                .ok(),
            Some("reader")
        );
        assert!(matches!(
            c.authorise(&with(&sender), Some(Operation::Ack)),
            Err(Refusal::NotPermitted { ref client, .. }) if &**client == "sender"
        ));
        assert_eq!(
            c.authorise(&with(&reader), None).as_deref().ok(),
            Some("reader"),
            "any listed client may read"
        );
        assert_eq!(
            c.authorise(&Credentials::default(), None),
            Err(Refusal::NoCredential)
        );
        let wrong = format!("Bearer {}", "x".repeat(40));
        assert_eq!(c.authorise(&with(&wrong), None), Err(Refusal::Unknown));
        let prefix = format!("Bearer {}", "s".repeat(39));
        assert_eq!(c.authorise(&with(&prefix), None), Err(Refusal::Unknown));
        assert_eq!(
            c.authorise(&with("Basic abc"), None),
            Err(Refusal::NoCredential)
        );
    }

    #[test]
    fn two_clients_with_one_token_are_refused_at_start() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t");
        std::fs::write(&path, "t".repeat(40)).expect("written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("mode");
        let client = |name: &str| NationalClient {
            name: name.into(),
            token_file: Some(path.clone()),
            certificate: None,
            operations: vec![Operation::Submit],
            signature_policy: None,
            signature_profile: None,
            signed_element: None,
        };
        let e = Clients::load(&National {
            tls: None,
            clients: vec![client("a"), client("b")],
            signatures: None,
        })
        .expect_err("shared token")
        .to_string();
        assert!(
            e.contains("national.client[1].token_file") && e.contains("\"a\""),
            "{e}"
        );
        assert!(!e.contains(&"t".repeat(40)), "{e}");
    }
}
