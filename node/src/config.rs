//! `node.toml`: what one node is and where it finds everything (docs/config.md). Relative
//! paths are relative to the file. Loading checks every value and names the field it rejects.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub(crate) use tereze_trust::Role;

/// `[tls]`: the trust crate's, which builds the TLS configurations (as for `[national.tls]`).
pub(crate) use tereze_trust::tls::KeyPair;

/// `[connections]` and `[national]`: the doors crate's own.
use tereze_doors::config::check_national;
pub(crate) use tereze_doors::config::{Connections, National, Operation};

/// `[attachments]`: the attachments crate's own limits.
pub(crate) use tereze_attachments::Limits as Attachments;

/// `[relay]` and `[[peer]]`: the relay crate's own settings.
pub(crate) use tereze_relay::config::{Config as Relay, Peer};

use serde::Deserialize;

/// `[notifications]`: the event log's retention and webhooks.
mod notifications;
pub(crate) use notifications::{Notifications, Target as WebhookTarget, Webhook as EventWebhook};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Listen {
    /// gRPC `Exchange` between nodes, mutual TLS.
    pub(crate) exchange: SocketAddr,
    /// gRPC `Window` for the national system (plaintext: bind it to loopback or a private
    /// network).
    pub(crate) window: Option<SocketAddr>,
    /// HTTP/JSON for the national system (intake, status, inbox), with health, readiness and
    /// metrics.
    pub(crate) http: Option<SocketAddr>,
    /// HTTP, read-only, for other states' nodes: `GET /v1/crl` (this state's CRLs) and nothing
    /// else. The only HTTP door meant to be reachable from outside the state.
    #[serde(default)]
    pub(crate) peer: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Signing {
    pub(crate) certificate: PathBuf,
    /// A PEM file, or a key in a PKCS#11 token as a `pkcs11:` URI (then `[pkcs11]` says
    /// how to reach the token).
    pub(crate) key: PathBuf,
    /// The authority named as sender when a submission names none.
    #[serde(default = "default_authority")]
    pub(crate) authority: String,
}

/// `[pkcs11]`: how to reach the token holding a `pkcs11:` key (docs/config.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pkcs11 {
    /// The token vendor's PKCS#11 module library.
    pub(crate) module: Option<PathBuf>,
    /// A file holding the token's user PIN, readable by its owner only.
    pub(crate) pin_file: Option<PathBuf>,
}

impl Pkcs11 {
    pub(crate) fn settings(&self) -> tereze_hsm::Pkcs11Settings {
        tereze_hsm::Pkcs11Settings {
            module: self.module.clone(),
            pin_file: self.pin_file.clone(),
        }
    }
}

fn default_authority() -> String {
    "SW".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Routing {
    /// The hub's code in the trust space.
    pub(crate) hub: Option<String>,
    /// Recipient states reached through the hub; `"*"` for every state without a direct route.
    #[serde(default)]
    pub(crate) via_hub: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest envelope accepted, in bytes.
    pub(crate) max_message_bytes: usize,
    /// Messages in the outbox above which submissions are refused (RESOURCE_EXHAUSTED / 429).
    pub(crate) max_queue: u64,
    /// Bytes of messages in memory on their way into the store (submissions from intake to
    /// their commit, delivered batches from the Exchange to theirs) above which new ones are
    /// refused (RESOURCE_EXHAUSTED / 429): pushback before memory grows.
    pub max_queue_bytes: u64,
    /// Threads for blocking work (parsing, signing and verifying, store reads, attachment
    /// files); more waits in line. Each thread keeps a stack and its own allocator heap, so
    /// hundreds of them cost hundreds of megabytes after a burst.
    pub blocking_threads: usize,
    /// Most messages in one Deliver call.
    pub(crate) max_batch: usize,
    /// Most envelope bytes in one Deliver call: the relay closes a batch there (a message
    /// larger than this goes alone), and the Exchange refuses larger calls (with 1 MiB for
    /// framing), so a listed peer cannot make a node hold more than this for one call.
    pub(crate) max_call_bytes: usize,
    /// Messages handed to the national system per inbox pull, at most.
    pub(crate) max_inbox_pull: usize,
    /// Free space (MiB) the data directory's file system must keep: below it the node takes
    /// no new work (national intake 503 with Retry-After, Exchange UNAVAILABLE) until space
    /// returns, so the store never meets a full disk in the middle of a commit.
    pub(crate) min_free_disk_mb: u64,
    /// MiB of the embedded store's pages kept in memory (redb's page cache); the rest is read
    /// from the file (the kernel's page cache) when needed.
    pub(crate) store_cache_mb: usize,
    /// Documents being prepared (parsed, translated, checked, signed) at once, from both
    /// national doors; one more waits a few seconds for a place, then is refused (429 /
    /// RESOURCE_EXHAUSTED), so that intake works on this many documents at most. Default:
    /// the cores.
    pub(crate) max_preparing: usize,
    /// MiB of memory the documents being prepared may hold together. Each reserves its
    /// parse's budget (`xml::Limits::max_memory_per_byte` times its size, plus 1 MiB) before
    /// it is parsed; one that does not fit is refused (429 / RESOURCE_EXHAUSTED).
    pub(crate) max_preparing_mb: usize,
}

/// The default `limits.max_preparing`: preparing is CPU work, so one document per core keeps
/// every core busy and no more documents in memory than the cores can work on.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 * 1024 * 1024,
            max_call_bytes: 32 * 1024 * 1024,
            max_queue: 100_000,
            max_queue_bytes: 16 * 1024 * 1024,
            blocking_threads: 32,
            max_batch: 256,
            max_inbox_pull: 1_000,
            min_free_disk_mb: 100,
            store_cache_mb: crate::store::DEFAULT_CACHE_BYTES >> 20,
            max_preparing: cores(),
            max_preparing_mb: 192,
        }
    }
}

/// A national system or operator told of reference-directory changes (docs/reference-data.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Webhook {
    /// `http://` URL that receives a JSON POST per applied change set.
    pub(crate) url: String,
    /// Directory ids to notify of; empty: every directory.
    #[serde(default)]
    pub(crate) directories: Vec<String>,
}

/// Reference directories (DESIGN §6, docs/reference-data.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Reference {
    /// Seconds between pulls of newer change sets from the sources (and re-reads of
    /// `publish_dir`).
    pub(crate) refresh_seconds: u64,
    /// A directory of signed change sets (`*.xml`, as `tereze ref publish` writes them) that
    /// this node applies and then serves to its peers: how an owning authority publishes.
    pub(crate) publish_dir: Option<PathBuf>,
    /// The states whose nodes this node pulls change sets from. Default: a member pulls from
    /// its hub; a hub from every member state with a node in the trust space.
    pub(crate) sync_from: Option<Vec<String>>,
    pub(crate) webhooks: Vec<Webhook>,
}

impl Default for Reference {
    fn default() -> Self {
        Self {
            refresh_seconds: 60,
            publish_dir: None,
            sync_from: None,
            webhooks: Vec::new(),
        }
    }
}

/// The operators' admin API (docs/operations.md): HTTPS with the node's TLS certificate,
/// every request carrying the operator token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Admin {
    /// `host:port` of the HTTPS listener.
    pub(crate) listen: SocketAddr,
    /// A file holding the operator token (one line, at least 32 characters). It must not be
    /// readable by group or others: the node refuses to start otherwise.
    pub(crate) token_file: PathBuf,
}

/// Trader identifiers (docs/traders.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Traders {
    /// How long an answer about another state's trader is used before it is asked again.
    pub(crate) cache_ttl_seconds: u64,
    /// The same for an answer that the trader is not registered: shorter, so a trader added
    /// to its state's register is known here soon (an operator can also flush at once:
    /// `tereze admin flush-traders`).
    pub(crate) negative_ttl_seconds: u64,
    /// How long to wait for the owner state's node.
    pub(crate) resolve_timeout_seconds: u64,
}

impl Default for Traders {
    fn default() -> Self {
        Self {
            cache_ttl_seconds: 86_400,
            negative_ttl_seconds: 300,
            resolve_timeout_seconds: 5,
        }
    }
}

/// Obtaining RFC 3161 time-stamps for what this node signs (docs/timestamps.md), when the
/// trust space lists an authority for this node's state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Timestamping {
    /// Most signatures under one token (one Merkle batch).
    pub(crate) batch_size: usize,
    /// The longest a signature waits for a fuller batch before its batch goes.
    pub(crate) max_wait_ms: u64,
    /// How long an authority has to answer one request.
    pub(crate) timeout_ms: u64,
    /// The longest pause after failed requests (the pause doubles from 1 s up to this).
    pub(crate) max_backoff_ms: u64,
}

impl Default for Timestamping {
    fn default() -> Self {
        Self {
            batch_size: 512,
            max_wait_ms: 1_000,
            timeout_ms: 5_000,
            max_backoff_ms: 30_000,
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// ISO 3166-1 alpha-2 of this node's state, or the hub's code.
    pub(crate) state: String,
    pub(crate) role: Role,
    pub(crate) data_dir: PathBuf,
    /// The store: omitted, the embedded file `node.redb` in `data_dir` (one replica); a
    /// PostgreSQL URL (`postgres://user@host:port/database`), several replicas of this node
    /// sharing one database (docs/operations.md, high availability).
    #[serde(default)]
    pub(crate) store: Option<String>,
    /// A file holding the PostgreSQL password (owner-only permissions), so that the URL need
    /// not carry it.
    #[serde(default)]
    pub(crate) store_password_file: Option<PathBuf>,
    /// CA certificates (PEM) that sign the PostgreSQL server's TLS certificate, besides the
    /// system's.
    #[serde(default)]
    pub(crate) store_ca_file: Option<PathBuf>,
    /// Seconds a replica holds the messages it took from a shared (PostgreSQL) outbox; after
    /// that another replica may send them (a crashed replica's work is taken over). Must be
    /// longer than `relay.timeout_seconds`.
    #[serde(default = "default_store_lease")]
    pub(crate) store_lease_seconds: u64,
    /// The trust space file (states, anchors, node certificates, endpoints): the
    /// Commission-signed XML document, or (development, without `trust_anchor`) TOML.
    pub(crate) trust_space: PathBuf,
    /// The Commission's anchor (PEM) that must have signed the trust space. Without it only an
    /// unsigned TOML trust space is read (development).
    pub(crate) trust_anchor: Option<PathBuf>,
    pub(crate) listen: Listen,
    pub(crate) tls: KeyPair,
    pub(crate) signing: Signing,
    #[serde(default)]
    pub(crate) pkcs11: Pkcs11,
    #[serde(default)]
    pub(crate) routing: Routing,
    #[serde(default, rename = "peer")]
    pub(crate) peers: Vec<Peer>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub(crate) connections: Connections,
    #[serde(default)]
    pub(crate) relay: Relay,
    #[serde(default)]
    pub(crate) attachments: Attachments,
    /// Seconds between signed audit checkpoints.
    #[serde(default = "default_checkpoint")]
    pub(crate) audit_checkpoint_seconds: u64,
    /// Seconds from SIGTERM/SIGINT to exit: the drain, the last audit checkpoint and the
    /// runtime's stop all fit in it; whatever is still open when the drain's share runs out is
    /// dropped (`node::shutdown`).
    #[serde(default = "default_shutdown")]
    pub(crate) shutdown_seconds: u64,
    /// Seconds between checks for a newer trust space (a member asks its hub; a hub re-reads
    /// its file).
    #[serde(default = "default_trust_refresh")]
    pub(crate) trust_refresh_seconds: u64,
    /// Seconds between fetches of the trust space's CRL locations (`crl_urls`).
    #[serde(default = "default_crl_refresh")]
    pub(crate) crl_refresh_seconds: u64,
    /// CRL files (PEM or DER) of this state's CAs that this node serves to peers at
    /// `GET /v1/crl` on its HTTP listener; read at each request, so the CA's newest CRL is
    /// served without a restart.
    #[serde(default)]
    pub(crate) publish_crls: Vec<PathBuf>,
    #[serde(default)]
    pub(crate) reference: Reference,
    #[serde(default)]
    pub(crate) traders: Traders,
    /// Omit to run without the admin API.
    pub(crate) admin: Option<Admin>,
    #[serde(default)]
    pub(crate) timestamping: Timestamping,
    /// The national system's clients and the national doors' TLS.
    #[serde(default)]
    pub(crate) national: National,
    /// The event log's retention and the webhooks that follow it.
    #[serde(default)]
    pub(crate) notifications: Notifications,
    /// The log filter (`tracing` EnvFilter syntax: `info`, `info,tereze_node=debug`); the
    /// `TEREZE_LOG` environment variable wins; changeable at run time (admin API).
    #[serde(default)]
    pub log: Option<String>,
}

fn default_store_lease() -> u64 {
    60
}

fn default_crl_refresh() -> u64 {
    600
}

fn default_trust_refresh() -> u64 {
    60
}

fn default_checkpoint() -> u64 {
    10
}

/// Half of the 60 s that the systemd unit and the Kubernetes manifests allow before SIGKILL.
fn default_shutdown() -> u64 {
    30
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Syntax { path: String, reason: String },
    #[error("{path}: {field}: {reason}")]
    Invalid {
        path: String,
        field: String,
        reason: String,
    },
}

/// The member states of the Eurasian Economic Union (Treaty on the EAEU of 29 May 2014, with
/// the accession treaties of Armenia and Kyrgyzstan): each has its own node, so none may be
/// listed as a partner whose national formats another member's doors take in.
pub(crate) const MEMBER_STATES: [&str; 5] = ["AM", "BY", "KZ", "KG", "RU"];

fn is_state_code(s: &str) -> bool {
    (2..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// Why the store's location (`store`, `store_password_file`) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreLocationError {
    #[error("store_password_file {0}")]
    PasswordFile(#[source] crate::store::PasswordFileError),
    #[error(transparent)]
    Url(crate::store::PgUrlError),
}

impl NodeConfig {
    /// Where the store lives (the password file is read here, at start).
    pub(crate) fn store_location(&self) -> Result<crate::store::Location, StoreLocationError> {
        match &self.store {
            None => Ok(crate::store::Location::File(
                self.data_dir.join("node.redb"),
            )),
            Some(url) => {
                let password = self
                    .store_password_file
                    .as_deref()
                    .map(crate::store::read_password_file)
                    .transpose()
                    .map_err(StoreLocationError::PasswordFile)?;
                crate::store::PgOptions::parse(
                    url,
                    (self.store_lease_seconds as i64).saturating_mul(1000),
                    password,
                    self.store_ca_file.clone(),
                )
                .map(crate::store::Location::Postgres)
                .map_err(StoreLocationError::Url)
            }
        }
    }

    /// Reads and checks `path`; relative paths in it become relative to its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut c: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.display().to_string(),
            reason: e.to_string().trim_end().replace('\n', " "),
        })?;
        c.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        c.check().map_err(|(field, reason)| ConfigError::Invalid {
            path: path.display().to_string(),
            field,
            reason,
        })?;
        Ok(c)
    }

    /// Makes every relative path in the file relative to `base`, the file's directory.
    fn resolve_paths(&mut self, base: &Path) {
        if let Some(p) = self.trust_anchor.as_mut() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(a) = self.admin.as_mut() {
            if a.token_file.is_relative() {
                a.token_file = base.join(&a.token_file);
            }
        }
        if let Some(t) = self.national.tls.as_mut() {
            for p in [&mut t.certificate, &mut t.key]
                .into_iter()
                .chain(t.client_ca.iter_mut())
            {
                // Kept as written so that a `pkcs11:` key is refused by name below.
                if p.is_relative() && !tereze_hsm::is_pkcs11(p) {
                    *p = base.join(&*p);
                }
            }
        }
        for client in &mut self.national.clients {
            for p in client
                .token_file
                .iter_mut()
                .chain(client.certificate.iter_mut())
            {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        if let Some(s) = self.national.signatures.as_mut() {
            let partners = s.partners.iter_mut().flat_map(|p| p.anchors.iter_mut());
            for p in s
                .anchors
                .iter_mut()
                .chain(s.intermediates.iter_mut())
                .chain(s.crls.iter_mut())
                .chain(partners)
            {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        self.notifications.resolve_paths(base);
        if let Some(p) = self.reference.publish_dir.as_mut() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        for p in self
            .publish_crls
            .iter_mut()
            .chain(self.store_password_file.iter_mut())
            .chain(self.store_ca_file.iter_mut())
            .chain(self.pkcs11.module.iter_mut())
            .chain(self.pkcs11.pin_file.iter_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        for p in [
            &mut self.data_dir,
            &mut self.trust_space,
            &mut self.tls.certificate,
            &mut self.tls.key,
            &mut self.signing.certificate,
            &mut self.signing.key,
        ] {
            // A `pkcs11:` URI is not a path.
            if p.is_relative() && !tereze_hsm::is_pkcs11(p) {
                *p = base.join(&*p);
            }
        }
    }

    /// The checks in the order they report: the first failing one names its field.
    fn check(&self) -> Result<(), Refusal> {
        self.check_state()?;
        self.check_limits()?;
        self.check_connections()?;
        self.check_relay()?;
        self.check_attachments()?;
        self.check_attachment_rates()?;
        self.check_peers_and_services()?;
        self.check_store()?;
        self.check_pkcs11()?;
        check_national(&self.national)?;
        self.check_partners()?;
        self.check_timestamping()?;
        self.notifications.check()?;
        self.check_shutdown_and_routing()
    }

    /// `[[national.signatures.partner]]`: a partner is neither this node's state nor another
    /// member state, since listing one admits its national formats at these doors.
    fn check_partners(&self) -> Result<(), Refusal> {
        let Some(s) = &self.national.signatures else {
            return Ok(());
        };
        for (i, p) in s.partners.iter().enumerate() {
            let field = format!("national.signatures.partner[{i}].state");
            if p.state == self.state {
                return refuse(
                    &field,
                    format!(
                        "{} is this node's own state (`state`): its formats are national \
                         here, verified against [national.signatures]; list partner states only",
                        p.state
                    ),
                );
            }
            if MEMBER_STATES.contains(&p.state.as_str()) {
                return refuse(
                    &field,
                    format!(
                        "{} is a member state of the EAEU: its documents come from its own \
                         node, not through these doors; list partner states only",
                        p.state
                    ),
                );
            }
        }
        Ok(())
    }

    /// `[timestamping]`: a batch holds at least one signature, and each wait is bounded.
    fn check_timestamping(&self) -> Result<(), Refusal> {
        let t = &self.timestamping;
        if !(1..=65_536).contains(&t.batch_size) {
            return refuse(
                "timestamping.batch_size",
                format!("{} is not within 1..=65536", t.batch_size),
            );
        }
        for (field, v) in [
            ("timestamping.max_wait_ms", t.max_wait_ms),
            ("timestamping.timeout_ms", t.timeout_ms),
            ("timestamping.max_backoff_ms", t.max_backoff_ms),
        ] {
            if !(1..=3_600_000).contains(&v) {
                return refuse(field, format!("{v} is not within 1..=3600000 (one hour)"));
            }
        }
        Ok(())
    }

    /// A `pkcs11:` signing or TLS key is a well-formed URI, and `[pkcs11]` names the module
    /// and the PIN file (both keys, when in tokens, are reached through the same module); the
    /// national doors' key is a file.
    fn check_pkcs11(&self) -> Result<(), Refusal> {
        if let Some(t) = &self.national.tls {
            if tereze_hsm::is_pkcs11(&t.key) {
                return refuse(
                    "national.tls.key",
                    "a key in a PKCS#11 token is supported for tls.key and signing.key, not yet \
                     for the national doors; give a PEM file"
                        .into(),
                );
            }
        }
        for (field, path) in [
            ("signing.key", &self.signing.key),
            ("tls.key", &self.tls.key),
        ] {
            if !tereze_hsm::is_pkcs11(path) {
                continue;
            }
            let key = path.to_string_lossy();
            if let Err(e) = tereze_hsm::Pkcs11Uri::parse(&key) {
                return refuse(field, format!("{key}: {e}"));
            }
            if self.pkcs11.module.is_none() {
                return refuse(
                    "pkcs11.module",
                    format!("not set, and {field} names a key in a token ({key})"),
                );
            }
            if self.pkcs11.pin_file.is_none() {
                return refuse(
                    "pkcs11.pin_file",
                    format!("not set, and {field} names a key in a token ({key})"),
                );
            }
        }
        Ok(())
    }

    /// `state` is a state code.
    fn check_state(&self) -> Result<(), Refusal> {
        if !is_state_code(&self.state) {
            return refuse(
                "state",
                format!(
                    "{:?} is not a state code (ISO 3166-1 alpha-2, or the hub's code)",
                    self.state
                ),
            );
        }
        Ok(())
    }

    /// `[limits]`: batches, message and call sizes, what is held in memory, threads.
    fn check_limits(&self) -> Result<(), Refusal> {
        if self.limits.max_batch == 0 || self.limits.max_batch > 10_000 {
            return refuse("limits.max_batch", "must be between 1 and 10000".into());
        }
        if self.limits.max_message_bytes < 1024 {
            return refuse("limits.max_message_bytes", "must be at least 1024".into());
        }
        if self.limits.max_call_bytes < self.limits.max_message_bytes {
            return refuse(
                "limits.max_call_bytes",
                format!(
                    "must be at least limits.max_message_bytes ({}), or a largest message could never be sent",
                    self.limits.max_message_bytes
                ),
            );
        }
        if !(1..=1_024).contains(&self.limits.max_preparing) {
            return refuse(
                "limits.max_preparing",
                "must be between 1 and 1024 (documents prepared at once, each held in memory)"
                    .into(),
            );
        }
        if !(16..=65_536).contains(&self.limits.max_preparing_mb) {
            return refuse(
                "limits.max_preparing_mb",
                "must be between 16 and 65536 (MiB)".into(),
            );
        }
        if self.limits.max_queue_bytes < 65_536 {
            return refuse(
                "limits.max_queue_bytes",
                "must be at least 65536 (bytes)".into(),
            );
        }
        // National fetches hold a thread for their whole transfer: some must stay for the rest.
        let fetches = self.attachments.max_national_transfers;
        if self.limits.blocking_threads < fetches + 8 || self.limits.blocking_threads > 4096 {
            return refuse(
                "limits.blocking_threads",
                format!("must be between attachments.max_national_transfers + 8 ({}) and 4096, so that fetches cannot take every thread", fetches + 8),
            );
        }
        if !(1..=65_536).contains(&self.limits.store_cache_mb) {
            return refuse(
                "limits.store_cache_mb",
                "must be between 1 and 65536 (MiB)".into(),
            );
        }
        Ok(())
    }

    /// `[connections]`: timeouts and how many connections and streams each door takes.
    fn check_connections(&self) -> Result<(), Refusal> {
        let k = &self.connections;
        for (field, v) in [
            (
                "connections.header_timeout_seconds",
                k.header_timeout_seconds,
            ),
            ("connections.body_stall_seconds", k.body_stall_seconds),
            ("connections.idle_timeout_seconds", k.idle_timeout_seconds),
        ] {
            if v == 0 || v > 3_600 {
                return refuse(field, format!("{v}: must be between 1 and 3600 seconds"));
            }
        }
        if k.max_per_door == 0 {
            return refuse("connections.max_per_door", "must be at least 1".into());
        }
        for (field, v) in [
            (
                "connections.window_max_streams",
                k.window_max_streams as usize,
            ),
            ("connections.window_max_calls", k.window_max_calls),
            (
                "connections.exchange_max_streams",
                k.exchange_max_streams as usize,
            ),
        ] {
            if v == 0 {
                return refuse(field, "must be at least 1".into());
            }
        }
        Ok(())
    }

    /// `[relay]`: attempts, backoff, lingering and concurrency.
    fn check_relay(&self) -> Result<(), Refusal> {
        if self.relay.max_attempts == 0 {
            return refuse("relay.max_attempts", "must be at least 1".into());
        }
        if self.relay.min_backoff_ms == 0 || self.relay.min_backoff_ms > self.relay.max_backoff_ms {
            return refuse(
                "relay.min_backoff_ms",
                "must be positive and not above relay.max_backoff_ms".into(),
            );
        }
        if self.relay.linger_ms > 1_000 {
            return refuse(
                "relay.linger_ms",
                "must not exceed 1000 (it delays every batch under load)".into(),
            );
        }
        if self.relay.concurrency == 0 {
            return refuse("relay.concurrency", "must be at least 1".into());
        }
        Ok(())
    }

    /// `[attachments]`: sizes, transfers, chunks and the largest body checked in memory.
    fn check_attachments(&self) -> Result<(), Refusal> {
        let a = &self.attachments;
        if a.max_attachment_bytes == 0 || a.max_message_bytes < a.max_attachment_bytes {
            return refuse(
                "attachments.max_message_bytes",
                format!(
                    "must be at least attachments.max_attachment_bytes ({}), which must be positive",
                    a.max_attachment_bytes
                ),
            );
        }
        if a.max_per_message == 0 || a.max_per_message > 1_000 {
            return refuse(
                "attachments.max_per_message",
                "must be between 1 and 1000".into(),
            );
        }
        if a.max_national_transfers == 0 {
            return refuse(
                "attachments.max_national_transfers",
                "must be at least 1".into(),
            );
        }
        if a.max_transfers_per_peer == 0 {
            return refuse(
                "attachments.max_transfers_per_peer",
                "must be at least 1".into(),
            );
        }
        if a.chunk_bytes < 4096 || a.chunk_bytes > crate::attachments::MAX_CHUNK_BYTES {
            return refuse(
                "attachments.chunk_bytes",
                format!(
                    "must be between 4096 and {} (what a receiver takes in one chunk)",
                    crate::attachments::MAX_CHUNK_BYTES
                ),
            );
        }
        if a.max_checked_body_bytes > 256 << 20 {
            return refuse(
                "attachments.max_checked_body_bytes",
                "must not exceed 268435456 (256 MiB): a checked body is parsed in memory".into(),
            );
        }
        Ok(())
    }

    /// `[attachments]` rates: a sender never so slow that its receiver gives it up as stalled.
    fn check_attachment_rates(&self) -> Result<(), Refusal> {
        let a = &self.attachments;
        if a.send_rate_kib != 0 && a.send_rate_kib < a.min_rate_kib {
            return refuse(
                "attachments.send_rate_kib",
                format!(
                    "must be 0 (no limit) or at least attachments.min_rate_kib ({}): slower transfers are given up",
                    a.min_rate_kib
                ),
            );
        }
        if a.stall_seconds < 10 {
            return refuse("attachments.stall_seconds", "must be at least 10".into());
        }
        if a.send_rate_kib != 0
            && (a.chunk_bytes as u64).div_ceil(a.send_rate_kib.saturating_mul(1024))
                >= a.stall_seconds
        {
            return refuse(
                "attachments.send_rate_kib",
                format!(
                    "at {} KiB/s a chunk of attachments.chunk_bytes ({}) takes attachments.stall_seconds ({}) or more: a receiver would stop the transfer as stalled; send faster or in smaller chunks",
                    a.send_rate_kib, a.chunk_bytes, a.stall_seconds
                ),
            );
        }
        if a.min_rate_kib == 0 || a.gc_interval_seconds == 0 {
            return refuse(
                "attachments.min_rate_kib",
                "attachments.min_rate_kib and attachments.gc_interval_seconds must be at least 1"
                    .into(),
            );
        }
        Ok(())
    }

    /// Peers over TLS only, `[reference]` and `[traders]`.
    fn check_peers_and_services(&self) -> Result<(), Refusal> {
        for (i, p) in self.peers.iter().enumerate() {
            if !p.endpoint.starts_with("https://") {
                return refuse(
                    &format!("peer[{i}].endpoint"),
                    format!("{:?}: nodes talk over TLS only; use https://", p.endpoint),
                );
            }
        }
        if self.reference.refresh_seconds == 0 {
            return refuse("reference.refresh_seconds", "must be at least 1".into());
        }
        if self.traders.resolve_timeout_seconds == 0 || self.traders.resolve_timeout_seconds > 60 {
            return refuse(
                "traders.resolve_timeout_seconds",
                "must be between 1 and 60".into(),
            );
        }
        for (i, w) in self.reference.webhooks.iter().enumerate() {
            if !w.url.starts_with("http://") {
                return refuse(
                    &format!("reference.webhooks[{i}].url"),
                    format!(
                        "{:?}: only http:// URLs (a national system on the node's own network)",
                        w.url
                    ),
                );
            }
        }
        Ok(())
    }

    /// `store` and its files, and a lease longer than a relay call.
    fn check_store(&self) -> Result<(), Refusal> {
        if let Some(url) = &self.store {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return refuse(
                    "store",
                    "must be a PostgreSQL URL (postgres://user@host:port/database); omit it for the embedded store".into(),
                );
            }
            if let Err(reason) = crate::store::PgOptions::parse(url, 1, None, None) {
                return refuse("store", reason.to_string());
            }
        } else if self.store_password_file.is_some() || self.store_ca_file.is_some() {
            return refuse(
                "store",
                "store_password_file and store_ca_file need a PostgreSQL store".into(),
            );
        }
        if self.store_lease_seconds <= self.relay.timeout_seconds {
            return refuse(
                "store_lease_seconds",
                format!(
                    "must be longer than relay.timeout_seconds ({}): a call still running when its lease ends would be sent again by another replica",
                    self.relay.timeout_seconds
                ),
            );
        }
        Ok(())
    }

    /// `shutdown_seconds` leaves room for the last checkpoint; routes through a hub name it.
    fn check_shutdown_and_routing(&self) -> Result<(), Refusal> {
        if !(crate::shutdown::MIN_BUDGET_SECONDS..=3600).contains(&self.shutdown_seconds) {
            return refuse(
                "shutdown_seconds",
                format!(
                    "must be between {} (the last audit checkpoint and the runtime's stop take up to {} s of it) and 3600",
                    crate::shutdown::MIN_BUDGET_SECONDS,
                    crate::shutdown::RESERVE.as_secs()
                ),
            );
        }
        if !self.routing.via_hub.is_empty() && self.routing.hub.is_none() {
            return refuse(
                "routing.via_hub",
                "routes through a hub need routing.hub".into(),
            );
        }
        Ok(())
    }
}

/// A refused value: the field's path and why.
type Refusal = (String, String);

fn refuse(field: &str, reason: String) -> Result<(), Refusal> {
    Err((field.into(), reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<NodeConfig, ConfigError> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).expect("written");
        NodeConfig::load(&path)
    }

    const MINIMAL: &str = r#"
state = "KZ"
role = "member"
data_dir = "data"
trust_space = "trust-space.toml"
[listen]
exchange = "127.0.0.1:7101"
[tls]
certificate = "tls.pem"
key = "tls.key"
[signing]
certificate = "signer.pem"
key = "signer.key"
"#;

    #[test]
    fn a_minimal_file_gets_defaults_and_paths_relative_to_it() {
        let c = load(MINIMAL).expect("loads");
        assert_eq!(c.role, Role::Member);
        assert_eq!(c.limits.max_batch, 256);
        assert_eq!(c.relay.max_attempts, 50);
        assert_eq!(c.shutdown_seconds, 30);
        assert!(c.data_dir.is_absolute() && c.data_dir.ends_with("data"));
    }

    #[test]
    fn a_pkcs11_signing_or_tls_key_is_kept_as_a_uri_and_needs_the_module_and_pin_file() {
        let token = MINIMAL.replace(
            "key = \"signer.key\"",
            "key = \"pkcs11:token=kz-signer;object=doc-sign\"",
        );
        let e = load(&token).expect_err("no [pkcs11]");
        assert!(e.to_string().contains("pkcs11.module: not set"), "{e}");
        let e = load(&format!("{token}[pkcs11]\nmodule = \"/m.so\"\n")).expect_err("no PIN");
        assert!(e.to_string().contains("pkcs11.pin_file: not set"), "{e}");
        let c = load(&format!(
            "{token}[pkcs11]\nmodule = \"/m.so\"\npin_file = \"token.pin\"\n"
        ))
        .expect("loads");
        assert_eq!(
            c.signing.key,
            Path::new("pkcs11:token=kz-signer;object=doc-sign"),
            "a URI is not made relative to the file"
        );
        let pin = c.pkcs11.pin_file.expect("pin file");
        assert!(pin.is_absolute() && pin.ends_with("token.pin"), "{pin:?}");
        let e = load(&token.replace("object=doc-sign", "object=doc-sign;slot=2")).expect_err("bad");
        assert!(e.to_string().contains("signing.key"), "{e}");
        assert!(e.to_string().contains("unknown attribute \"slot\""), "{e}");
        let tls_in_token = format!(
            "{}[pkcs11]\nmodule = \"/m.so\"\npin_file = \"token.pin\"\n",
            MINIMAL.replace(
                "key = \"tls.key\"",
                "key = \"pkcs11:token=kz-tls;object=tls\""
            )
        );
        let c = load(&tls_in_token).expect("a TLS key in a token loads");
        assert_eq!(c.tls.key, Path::new("pkcs11:token=kz-tls;object=tls"));
        let e = load(&MINIMAL.replace("key = \"tls.key\"", "key = \"pkcs11:token=t;object=k\""))
            .expect_err("TLS key in a token without [pkcs11]");
        assert!(
            e.to_string()
                .contains("pkcs11.module: not set, and tls.key names a key in a token"),
            "{e}"
        );
        let e = load(&tls_in_token.replace("object=tls", "object=tls;slot=2")).expect_err("bad");
        assert!(e.to_string().contains("tls.key"), "{e}");
        let e = load(&format!(
            "{tls_in_token}\n[national.tls]\ncertificate = \"n.pem\"\nkey = \"pkcs11:token=t;object=n\"\n"
        ))
        .expect_err("national doors' key in a token");
        assert!(
            e.to_string()
                .contains("national.tls.key: a key in a PKCS#11 token"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_named_by_their_field() {
        let e = load(&MINIMAL.replace("\"KZ\"", "\"kz\"")).expect_err("bad state");
        assert!(e.to_string().contains("state: \"kz\""), "{e}");
        let e = load(&format!("{MINIMAL}\n[limits]\nmax_batch = 0\n")).expect_err("bad batch");
        assert!(e.to_string().contains("limits.max_batch"), "{e}");
        let e = load(&format!(
            "{MINIMAL}\n[[peer]]\nstate = \"RU\"\nendpoint = \"http://x:1\"\n"
        ))
        .expect_err("plaintext peer");
        assert!(e.to_string().contains("peer[0].endpoint"), "{e}");
        let e = load(&MINIMAL.replace("[listen]", "shutdown_seconds = 3\n[listen]"))
            .expect_err("a budget too short for the last checkpoint");
        assert!(e.to_string().contains("shutdown_seconds"), "{e}");
        let e = load(&format!("{MINIMAL}\n[limits]\nmax_preparing = 0\n")).expect_err("none");
        assert!(e.to_string().contains("limits.max_preparing"), "{e}");
        let e = load(&format!("{MINIMAL}\n[limits]\nmax_preparing_mb = 1\n")).expect_err("small");
        assert!(e.to_string().contains("limits.max_preparing_mb"), "{e}");
        let e = load(&format!("{MINIMAL}\n[limits]\nstore_cache_mb = 0\n")).expect_err("no cache");
        assert!(e.to_string().contains("limits.store_cache_mb"), "{e}");
        let e = load(&format!("{MINIMAL}\ncolour = 1\n")).expect_err("unknown key");
        assert!(e.to_string().contains("colour"), "{e}");
    }

    #[test]
    fn connection_bounds_have_defaults_and_refuse_zero() {
        let c = load(MINIMAL).expect("minimal");
        assert_eq!(c.connections.header_timeout_seconds, 10);
        assert_eq!(c.connections.max_per_door, 1024);
        assert_eq!(c.connections.window_max_calls, 256);
        for (lines, field) in [
            (
                "header_timeout_seconds = 0",
                "connections.header_timeout_seconds",
            ),
            (
                "body_stall_seconds = 4000",
                "connections.body_stall_seconds",
            ),
            ("max_per_door = 0", "connections.max_per_door"),
            ("window_max_calls = 0", "connections.window_max_calls"),
            (
                "exchange_max_streams = 0",
                "connections.exchange_max_streams",
            ),
        ] {
            let e = load(&format!("{MINIMAL}\n[connections]\n{lines}\n")).expect_err("bad bound");
            assert!(e.to_string().contains(field), "{lines}: {e}");
        }
    }

    #[test]
    fn national_clients_are_checked_and_named_by_their_field() {
        let client =
            |lines: &str| format!("{MINIMAL}\n[[national.client]]\nname = \"a\"\n{lines}\n");
        for (text, field, says) in [
            (
                client("token_file = \"t\"\noperations = []"),
                "national.client[0].operations",
                "list what it may call",
            ),
            (
                client("token_file = \"t\"\ncertificate = \"c.pem\"\noperations = [\"submit\"]"),
                "national.client[0].token_file",
                "exactly one",
            ),
            (
                client("certificate = \"c.pem\"\noperations = [\"inbox\"]"),
                "national.client[0].certificate",
                "client_ca",
            ),
            (
                client("token_file = \"t\"\noperations = [\"submit\"]")
                    + "[[national.client]]\nname = \"a\"\ntoken_file = \"u\"\noperations = [\"ack\"]\n",
                "national.client[1].name",
                "listed twice",
            ),
            (
                format!("{MINIMAL}\n[[national.client]]\nname = \"a b\"\ntoken_file = \"t\"\noperations = [\"ack\"]\n"),
                "national.client[0].name",
                "letters, digits",
            ),
        ] {
            let e = load(&text).expect_err(field).to_string();
            assert!(e.contains(field) && e.contains(says), "{field}: {e}");
        }
        let e = load(&client("token_file = \"t\"\noperations = [\"everything\"]"))
            .expect_err("unknown operation")
            .to_string();
        assert!(e.contains("everything"), "{e}");
        let c = load(&client(
            "token_file = \"t\"\noperations = [\"submit\", \"ack\"]",
        ))
        .expect("loads");
        assert!(c.national.clients[0]
            .token_file
            .as_ref()
            .is_some_and(|p| p.is_absolute()));
    }

    #[test]
    fn national_signature_settings_are_checked_and_named_by_their_field() {
        const STORE: &str = "[national.signatures]\nanchors = [\"national-ca.pem\"]\n";
        let clients = |lines: &[&str]| {
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    format!("[[national.client]]\nname = \"c{i}\"\ntoken_file = \"t{i}\"\noperations = [\"submit\"]\n{l}\n")
                })
                .collect::<String>()
        };
        for (text, field, says) in [
            (
                format!("{MINIMAL}{STORE}{}", clients(&["", "", "signature_profile = \"wsse\""])),
                "national.client[2].signature_profile",
                "unknown profile \"wsse\"; expected one of enveloped, detached-by-id, wss",
            ),
            (
                format!("{MINIMAL}{STORE}{}", clients(&["signature_policy = \"strict\""])),
                "national.client[0].signature_policy",
                "unknown policy \"strict\"; expected one of verify, require, off",
            ),
            (
                format!("{MINIMAL}{}", clients(&["signature_policy = \"require\""])),
                "national.client[0].signature_policy",
                "needs [national.signatures]",
            ),
            (
                format!("{MINIMAL}{STORE}{}", clients(&["signed_element = \"Certificate\""])),
                "national.client[0].signed_element",
                "not an element path",
            ),
            (
                format!("{MINIMAL}[national.signatures]\nanchors = []\n"),
                "national.signatures.anchors",
                "at least one",
            ),
            (
                format!("{MINIMAL}{STORE}profile = \"xades\"\n"),
                "national.signatures.profile",
                "unknown profile",
            ),
            (
                format!("{MINIMAL}{STORE}[[national.signatures.partner]]\nstate = \"cn\"\nanchors = [\"cn.pem\"]\n"),
                "national.signatures.partner[0].state",
                "not an ISO 3166-1",
            ),
            (
                format!("{MINIMAL}{STORE}[[national.signatures.partner]]\nstate = \"CN\"\nanchors = [\"cn.pem\"]\npolicy = \"maybe\"\n"),
                "national.signatures.partner[0].policy",
                "unknown policy",
            ),
            (
                format!("{MINIMAL}{STORE}[[national.signatures.partner]]\nstate = \"VN\"\nanchors = [\"vn.pem\"]\n[[national.signatures.partner]]\nstate = \"KZ\"\nanchors = [\"kz.pem\"]\n"),
                "national.signatures.partner[1].state",
                "KZ is this node's own state",
            ),
            (
                format!("{MINIMAL}{STORE}[[national.signatures.partner]]\nstate = \"RU\"\nanchors = [\"ru.pem\"]\n"),
                "national.signatures.partner[0].state",
                "RU is a member state of the EAEU",
            ),
        ] {
            let e = load(&text).expect_err(field).to_string();
            assert!(e.contains(field) && e.contains(says), "{field}: {e}");
        }
        // Defaults: `off` without a store; with one, `verify` and `enveloped`, a client's own
        // settings winning; paths relative to the file.
        let c = load(&format!("{MINIMAL}{}", clients(&[""]))).expect("loads");
        assert_eq!(
            c.national.signature_settings(Some("c0")).policy,
            tereze_doors::config::SignaturePolicy::Off
        );
        let c = load(&format!(
            "{MINIMAL}{STORE}crls = [\"n.crl\"]\n{}",
            clients(&[
                "",
                "signature_policy = \"require\"\nsigned_element = \"/Certificate\""
            ])
        ))
        .expect("loads");
        let s0 = c.national.signature_settings(Some("c0"));
        assert_eq!(s0.policy, tereze_doors::config::SignaturePolicy::Verify);
        assert_eq!(s0.profile, "enveloped");
        let s1 = c.national.signature_settings(Some("c1"));
        assert_eq!(s1.policy, tereze_doors::config::SignaturePolicy::Require);
        assert_eq!(s1.signed_element.as_deref(), Some("/Certificate"));
        let store = c.national.signatures.as_ref().expect("store");
        assert!(store.anchors[0].is_absolute() && store.crls[0].is_absolute());
        // A partner that is no member: its entry loads, anchors relative to the file.
        let c = load(&format!(
            "{MINIMAL}{STORE}[[national.signatures.partner]]\nstate = \"VN\"\nanchors = [\"vn.pem\"]\n"
        ))
        .expect("a partner state loads");
        let partner = &c.national.signatures.as_ref().expect("store").partners[0];
        assert_eq!(partner.state, "VN");
        assert!(partner.anchors[0].is_absolute());
    }

    #[test]
    fn attachment_limits_are_checked_with_what_is_wrong() {
        for (lines, field, says) in [
            (
                "stall_seconds = 5",
                "attachments.stall_seconds",
                "at least 10",
            ),
            (
                "chunk_bytes = 4194304\nsend_rate_kib = 256\nstall_seconds = 10",
                "attachments.send_rate_kib",
                "stalled",
            ),
            (
                "chunk_bytes = 100",
                "attachments.chunk_bytes",
                "between 4096",
            ),
            (
                "send_rate_kib = 10",
                "attachments.send_rate_kib",
                "min_rate_kib",
            ),
        ] {
            let e = load(&format!("{MINIMAL}\n[attachments]\n{lines}\n"))
                .expect_err(lines)
                .to_string();
            assert!(e.contains(field) && e.contains(says), "{lines}: {e}");
        }
        let c = load(&format!(
            "{MINIMAL}\n[attachments]\nchunk_bytes = 1048576\nsend_rate_kib = 256\n"
        ))
        .expect("a chunk every 4 s is under the default 300 s");
        assert_eq!(c.attachments.stall_seconds, 300);
    }

    #[test]
    fn a_postgresql_store_is_checked_at_start() {
        let with = |lines: &str| MINIMAL.replace("[listen]", &format!("{lines}\n[listen]"));
        let c = load(&with("store = \"postgres://tereze@db.example:5432/kz\"")).expect("loads");
        assert!(matches!(
            c.store_location(),
            Ok(crate::store::Location::Postgres(_))
        ));
        assert!(matches!(
            load(MINIMAL).expect("loads").store_location(),
            Ok(crate::store::Location::File(p)) if p.ends_with("node.redb")
        ));
        for (lines, field, says) in [
            ("store = \"mysql://x/y\"", "store", "PostgreSQL URL"),
            (
                "store = \"postgres://tereze@db.example\"",
                "store",
                "names no database",
            ),
            (
                "store_password_file = \"pw\"",
                "store",
                "need a PostgreSQL store",
            ),
            (
                "store = \"postgres://t@h/kz\"\nstore_lease_seconds = 30",
                "store_lease_seconds",
                "relay.timeout_seconds (30)",
            ),
        ] {
            let e = load(&with(lines)).expect_err(lines).to_string();
            assert!(e.contains(field) && e.contains(says), "{lines}: {e}");
        }
    }

    #[test]
    fn the_store_password_file_must_be_owner_only_and_is_never_quoted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret-pw\n").expect("written");
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).expect("mode");
        let text = MINIMAL.replace(
            "[listen]",
            &format!(
                "store = \"postgres://tereze@db.example/kz\"\nstore_password_file = \"{}\"\n[listen]",
                pw.display()
            ),
        );
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).expect("written");
        let c = NodeConfig::load(&path).expect("loads");
        let e = c
            .store_location()
            .expect_err("loose permissions")
            .to_string();
        assert!(
            e.contains("store_password_file") && e.contains("chmod 600"),
            "{e}"
        );
        assert!(!e.contains("s3cret-pw"), "{e}");
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).expect("mode");
        match c.store_location() {
            Ok(crate::store::Location::Postgres(o)) => {
                assert!(!format!("{o:?}").contains("s3cret-pw"), "{o:?}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            crate::store::read_password_file(&pw).expect("reads"),
            "s3cret-pw",
            "the trailing newline is not part of it"
        );
    }
}
