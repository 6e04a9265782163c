//! The running node (DESIGN §1, §2, §7): the `Exchange` service for peer nodes over mutual
//! TLS, the `Window` service and HTTP/JSON for the national system, the relay workers, the
//! audit checkpoints, and their orderly start and shutdown. Long-lived tasks share one
//! cancellation token; on SIGTERM/SIGINT the servers stop taking work and end the streams they
//! serve, relay workers finish the batch in flight, whatever is still open when the shutdown
//! budget's drain runs out is dropped ([`shutdown`]), a last audit checkpoint is signed, and
//! the store closes; a store that refused a write or that checkpoint makes the exit non-zero.
//! Whatever was acknowledged is on disk, so a restart (or a crash) resumes from the store.

pub(crate) mod admin;
pub(crate) mod answer;
#[cfg(test)]
mod answer_tests;
mod checkpoint_token;
pub(crate) mod crl;
pub(crate) mod events;
pub(crate) mod exchange;
mod gost;
pub(crate) mod http;
pub(crate) mod http_reference;
pub(crate) mod metrics;
pub(crate) mod national_signature;
pub(crate) mod reference;
mod relay_host;
mod run;
pub(crate) mod stamper;
mod submission_sets;
pub(crate) mod submit;
pub(crate) mod traders;
pub(crate) mod transfer;
mod verdicts;
pub(crate) mod webhooks;
pub(crate) mod window;

use std::path::Path;

use std::sync::Arc;
use std::time::Duration;

use tereze_codecs::dsig::SigningKey;
use tereze_codecs::translate::Catalog;
use tereze_reference_data::Directories;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{NodeConfig, Role};
use crate::receipt::ReceiptVerifier;
use crate::store::committer::Committer;
use crate::store::{Store, StoreError};
use crate::trust::TrustSpace;
use tereze_doors::serve as doors;
use tereze_doors::{accept, calls, disk, national, outbox, queue_bytes};
use tereze_trust::tls;

pub use run::run;
pub(crate) use tereze_proto as proto;
pub(crate) use tereze_relay as relay;

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("{path}: {source}")]
    Key {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Token(#[from] tereze_support::fs::TokenError),
    /// The signing key (a PEM file or a key in a PKCS#11 token); the text starts with the
    /// field to fix.
    #[error(transparent)]
    SigningKey(#[from] tereze_hsm::KeyLoadError),
    /// The TLS key in a token (`tls.key`); the cause names the field to fix.
    #[error("TLS key (tls.key): {0}")]
    TlsKey(#[source] tereze_hsm::KeyLoadError),
    #[error("built-in mappings: {0}")]
    Mappings(#[source] tereze_codecs::translate::CatalogError),
    #[error("attachments: {0}")]
    Attachments(#[source] crate::attachments::AttachmentError),
    #[error(transparent)]
    NationalClients(#[from] national::ClientsError),
    /// A file of the national trust store (`[national.signatures]`) cannot be used.
    #[error(transparent)]
    NationalTrust(#[from] national_signature::TrustStoreError),
    #[error("store: {0}")]
    StoreLocation(#[from] crate::config::StoreLocationError),
    #[error("{path}: cannot create: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("store {path}: {source}")]
    Store {
        path: String,
        source: crate::store::StoreError,
    },
    /// The configuration and the trust space disagree (the text names both).
    #[error("{0}")]
    Config(String),
    /// The node needs GOST R 34.10 (`needed_by` says which key or state) and the OpenSSL GOST
    /// engine could not be loaded; the cause names the Debian package to install.
    #[error("{needed_by}, but the OpenSSL GOST engine is not available: {source}")]
    GostEngine {
        needed_by: String,
        #[source]
        source: tereze_gost_engine::EngineError,
    },
    /// The trust space with the CRLs kept from before the restart cannot be put in force.
    #[error(transparent)]
    TrustInForce(#[from] TrustUpdateError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The disk refused a write while the node ran; a restart reopens the store.
    #[error("{0}")]
    StoreFailed(String),
    /// The last audit checkpoint could not be signed at shutdown: the chain's tail since the
    /// one before is unsigned until the restarted node signs one.
    #[error("store {path}: the last audit checkpoint could not be signed at shutdown: {source}; the chain's tail is unsigned until the node, restarted, signs its first checkpoint (audit_checkpoint_seconds)")]
    FinalCheckpoint {
        path: String,
        source: CheckpointFailure,
    },
}

/// Why a trust space was not put in force (an update offered by the hub or read from the
/// file, or the CRLs fetched for it).
#[derive(Debug, thiserror::Error)]
pub enum TrustUpdateError {
    #[error("no trust_anchor configured: trust-space updates are not accepted")]
    NoAnchor,
    #[error(transparent)]
    Unreadable(#[from] crate::trust::ReadError),
    #[error("version {offered} is not newer than the version {in_force} in force (downgrades and replays are refused)")]
    NotNewer { offered: u64, in_force: u64 },
    #[error(transparent)]
    Invalid(#[from] crate::trust::TrustError),
    #[error("it does not list this node's state {0}")]
    NotListed(String),
    #[error(transparent)]
    Crl(#[from] crate::trust::CrlDerError),
    /// A fetched CRL set that may not replace the one held.
    #[error(transparent)]
    CrlRefused(#[from] crate::trust::crl::CrlError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why the last audit checkpoint was not signed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointFailure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no answer from the store within {} s", crate::shutdown::FINAL_CHECKPOINT.as_secs())]
    NoAnswer,
}

/// HTTP/2 flow-control windows of the Window, per stream and per connection: a stream takes a
/// small document without waiting for window updates, and what one connection can make the
/// node buffer is bounded (which also sets HTTP/2's allowance for small DATA frames, half the
/// connection window).
pub(crate) const WINDOW_STREAM_WINDOW: u32 = 1 << 20;
pub(crate) const WINDOW_CONNECTION_WINDOW: u32 = 8 << 20;

/// HTTP/2 pings on the servers' connections: a peer or client that stops answering (a host
/// gone without closing its connections, a middlebox that dropped the flow) is noticed within
/// interval + timeout, and its calls end (transfers keep what arrived).
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub(crate) const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Everything the services and workers share.
pub(crate) struct Node {
    pub(crate) config: NodeConfig,
    /// The trust space in force: the signed version with the CRLs fetched from its CRL
    /// locations; replaced whole, never edited.
    trust_space: std::sync::RwLock<Arc<TrustSpace>>,
    /// The signed version in force, and the CRLs fetched for it: what `trust_space` is made
    /// of. One lock, so a trust-space update and a CRL update never undo each other.
    parts: std::sync::Mutex<(Arc<TrustSpace>, crl::Fetched)>,
    /// The Commission's anchor that must sign trust spaces (none: unsigned TOML, development).
    pub(crate) trust_anchor: Option<tereze_codecs::dsig::TrustStore>,
    /// The node's TLS certificate and key (`[tls]`; the key possibly in a token).
    pub(crate) tls_identity: tls::NodeIdentity,
    /// The TLS server configuration for the trust space in force.
    tls_server: std::sync::RwLock<Arc<rustls::ServerConfig>>,
    pub(crate) signing: SigningKey,
    pub(crate) committer: Committer,
    /// Where the store is, for messages (a PostgreSQL URL without its password).
    store_path: String,
    pub(crate) catalog: Catalog,
    /// The reference directories in force; replaced whole when a change set is applied.
    directories: std::sync::RwLock<Arc<Directories>>,
    /// Applying change sets and telling subscribers.
    pub(crate) reference: reference::Reference,
    pub(crate) receipts: ReceiptVerifier,
    /// Per peer: what the relay keeps (wake-ups, gates, transfer slots, lane places).
    pub(crate) peers: tereze_relay::Peers,
    /// Messages in the outbox and places reserved in it: the bound `limits.max_queue`.
    pub(crate) outbox: outbox::OutboxCount,
    /// Bytes of messages in memory on their way into the store (`limits.max_queue_bytes`).
    pub(crate) queue_bytes: Arc<queue_bytes::QueueBytes>,
    pub(crate) metrics: metrics::Metrics,
    /// Every series of `/metrics`, each component's registered beside its code.
    pub(crate) registry: prometheus_client::registry::Registry,
    /// The data directory's free space; below the reserve no new work is taken.
    pub(crate) disk: Arc<disk::DiskWatch>,
    /// Attachments on disk (docs/attachments.md).
    pub(crate) attachments: crate::attachments::Attachments,
    /// Attachments being received, each with the bytes written so far (one transfer of an
    /// attachment at a time; a hub forwarding while it receives follows the count).
    pub(crate) receiving: transfer::Receiving,
    /// Uploads and fetches of the national system in flight (`attachments.max_national_transfers`).
    pub(crate) national_transfers: Arc<tokio::sync::Semaphore>,
    /// Documents being prepared at intake (`limits.max_preparing`).
    pub(crate) preparing: Arc<tokio::sync::Semaphore>,
    /// MiB reserved by the documents being prepared (`limits.max_preparing_mb`).
    pub(crate) preparing_mb: Arc<tokio::sync::Semaphore>,
    /// The national clients allowed on the national doors, and the calls they refused.
    pub(crate) national: Arc<national::NationalDoor>,
    /// The national trust store for the issuing authorities' signatures at intake.
    pub(crate) national_trust: national_signature::NationalTrust,
    pub(crate) shutdown: CancellationToken,
    /// The version in force, announced to whoever follows trust-space changes (the relay).
    trust_version: tokio::sync::watch::Sender<u64>,
    /// Time-stamping's counters and wake-up (docs/timestamps.md).
    pub(crate) stamping: stamper::Stamping,
}

fn read(path: &Path) -> Result<Vec<u8>, StartError> {
    std::fs::read(path).map_err(|e| StartError::Key {
        path: path.display().to_string(),
        source: Box::new(tereze_support::fs::SecretError::Unreadable(e)),
    })
}

fn private_key(path: &Path) -> Result<(), StartError> {
    tereze_support::fs::owner_only(path, "this private key").map_err(|e| StartError::Key {
        path: path.display().to_string(),
        source: Box::new(e),
    })
}

impl Node {
    /// Why `recipient` is not for this node: neither this node's state nor, at a hub, a state it
    /// forwards to.
    pub(crate) fn not_this_node(&self, recipient: &str) -> String {
        format!(
            "{recipient} is not this node ({}){}",
            self.config.state,
            if self.is_hub() {
                " nor a state in the trust space"
            } else {
                ", and this node does not forward"
            }
        )
    }

    /// The trust space in force: one snapshot, to use for a whole request.
    pub(crate) fn trust(&self) -> Arc<TrustSpace> {
        self.trust_space
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The reference directories in force: one snapshot, to use for a whole request.
    pub(crate) fn directories(&self) -> Arc<Directories> {
        self.directories
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes `next` the directories in force (whole).
    pub(crate) fn put_directories_in_force(&self, next: Directories) {
        *self.directories.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
    }

    pub(crate) fn tls_server(&self) -> Arc<rustls::ServerConfig> {
        self.tls_server
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies a signed trust space if it is newer than the one in force: verified against
    /// the Commission's anchor, recorded durably, then swapped in whole (with the TLS roots and
    /// CRLs it implies). Returns the version now in force, or why the document was refused.
    pub(crate) async fn apply_trust_space(
        self: &Arc<Self>,
        bytes: Vec<u8>,
    ) -> Result<u64, TrustUpdateError> {
        let Some(anchor) = &self.trust_anchor else {
            return Err(TrustUpdateError::NoAnchor);
        };
        let (file, signer) = TrustSpace::read(&bytes, Some(anchor))?;
        let current = self.trust();
        if file.version <= current.version {
            return Err(TrustUpdateError::NotNewer {
                offered: file.version,
                in_force: current.version,
            });
        }
        let mut next = TrustSpace::from_file(file, Path::new("(update)"))?;
        next.signer = signer;
        next.source = bytes.clone();
        if next.state(&self.config.state).is_none() {
            return Err(TrustUpdateError::NotListed(self.config.state.clone()));
        }
        // Refuse before recording what cannot be put in force.
        let fetched = self.parts().1.clone();
        tls::server_config(
            &self.tls_identity,
            &next.with_crls(&fetched.by_state(&next))?,
        )?;
        let version = next.version;
        self.committer
            .run(move |t| t.record_trust_space(version, &bytes))
            .await?;
        {
            let mut parts = self.parts();
            parts.0 = Arc::new(next);
            self.put_in_force(&parts)?;
        }
        self.trust_version.send_replace(version);
        tracing::info!(version, "trust space updated");
        Ok(version)
    }

    fn parts(&self) -> std::sync::MutexGuard<'_, (Arc<TrustSpace>, crl::Fetched)> {
        self.parts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the signed trust space and the fetched CRLs in `parts` the trust space in force,
    /// with the TLS roots and CRLs they imply. Call with `parts` locked.
    fn put_in_force(
        &self,
        parts: &(Arc<TrustSpace>, crl::Fetched),
    ) -> Result<(), TrustUpdateError> {
        let (signed, fetched) = parts;
        let next = signed.with_crls(&fetched.by_state(signed))?;
        let tls = tls::server_config(&self.tls_identity, &next)?;
        // Both swaps under the trust-space write lock: no reader sees one without the other.
        let mut guard = self.trust_space.write().unwrap_or_else(|p| p.into_inner());
        *self.tls_server.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tls);
        *guard = Arc::new(next);
        Ok(())
    }

    /// Puts a verified CRL set fetched from `url` in force, if it is newer than the one held;
    /// recorded durably first.
    pub(crate) async fn install_crls(
        &self,
        url: &str,
        bytes: &[u8],
        crls: Vec<openssl::x509::X509Crl>,
    ) -> Result<(), TrustUpdateError> {
        if !crl::compare(&crls, self.parts().1.by_url.get(url)).inspect_err(|_| {
            self.metrics.crl_refused.inc();
        })? {
            return Ok(());
        }
        let (u, b) = (url.to_owned(), bytes.to_vec());
        self.committer.run(move |t| t.record_crls(&u, &b)).await?;
        let mut parts = self.parts();
        parts
            .1
            .by_url
            .insert(url.to_owned(), crls.into_iter().map(Arc::new).collect());
        self.put_in_force(&parts)?;
        drop(parts);
        self.metrics.crl_updates.inc();
        tracing::info!(url = %url, "CRL from a CRL location now in force");
        Ok(())
    }

    /// Follows trust-space changes: `changed()` resolves after each new version is in force.
    pub(crate) fn trust_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.trust_version.subscribe()
    }

    pub(crate) fn store(&self) -> &Store {
        self.committer.store()
    }

    /// Why the node exits for a restart after the disk refused a write (`reason`).
    fn store_failed(&self, reason: &str) -> StartError {
        StartError::StoreFailed(format!(
            "store {}: the disk refused a write ({reason}); nothing acknowledged is lost; restart the node once space returns",
            self.store_path
        ))
    }

    pub(crate) fn is_hub(&self) -> bool {
        self.config.role == Role::Hub
    }

    /// The notifier of `peer`'s relay workers ([`tereze_relay::Peers::waker`]).
    pub(crate) fn waker(&self, peer: &str) -> Arc<Notify> {
        self.peers.waker(peer)
    }

    /// The transfers `peer` may have in flight with this node, each way.
    pub(crate) fn transfer_slots(&self, peer: &str, outgoing: bool) -> Arc<tokio::sync::Semaphore> {
        self.peers.transfer_slots(peer, outgoing)
    }

    /// Messages in all peers' attachments lanes now.
    pub(crate) fn lane_messages(&self) -> usize {
        self.peers.lane_messages()
    }

    /// The next hop for a message to `recipient`: its node, or the hub; `None` when the trust
    /// space knows no such state.
    pub(crate) fn next_hop(&self, recipient: &str) -> Option<String> {
        let known = self.trust().state(recipient).map(|s| s.role)?;
        if known == Role::Hub || self.is_hub() {
            return Some(recipient.to_owned());
        }
        let r = &self.config.routing;
        let via = r.via_hub.iter().any(|s| s == recipient || s == "*");
        match (&r.hub, via) {
            (Some(hub), true) => Some(hub.clone()),
            _ => Some(recipient.to_owned()),
        }
    }

    /// Loads keys, trust space and store; starts the commit thread.
    pub(crate) fn open(config: NodeConfig) -> Result<Arc<Self>, StartError> {
        // Before any key or certificate is read: without the engine OpenSSL cannot decode a
        // GOST key. A node whose own certificate is GOST stops here, before the trust space
        // (perhaps GOST-signed too) fails for a reason that hides the missing package.
        let gost_engine = gost::load();
        if let Err(e) = &gost_engine {
            let cert = std::fs::read(&config.signing.certificate).ok();
            let path = config.signing.certificate.display().to_string();
            if let Some(needed_by) =
                gost::needed_by(cert.as_deref().map(|c| (path.as_str(), c)), None)
            {
                return Err(StartError::GostEngine {
                    needed_by,
                    source: e.clone(),
                });
            }
        }
        let anchor = config
            .trust_anchor
            .as_deref()
            .map(crate::trust::read_anchor)
            .transpose()?;
        let mut trust = TrustSpace::load(&config.trust_space, anchor.as_ref())?;
        if trust.state(&config.state).is_none() {
            return Err(StartError::Config(format!(
                "{}: this node's state {} is not in the trust space",
                config.trust_space.display(),
                config.state
            )));
        }
        if let Some(h) = &config.routing.hub {
            if trust.state(h).map(|s| s.role) != Some(Role::Hub) {
                return Err(StartError::Config(format!(
                    "routing.hub: {h} is not a hub in the trust space"
                )));
            }
        }
        if let Err(e) = &gost_engine {
            if let Some(needed_by) = gost::needed_by(None, Some(&trust)) {
                return Err(StartError::GostEngine {
                    needed_by,
                    source: e.clone(),
                });
            }
        }
        // The TLS key first: with both keys in one token, a wrong PIN is reported once, for
        // the key the node needs before anything else.
        let tls_identity = if tereze_hsm::is_pkcs11(&config.tls.key) {
            let key = tereze_hsm::open_tls_key(
                &config.tls.key.to_string_lossy(),
                &config.pkcs11.settings(),
                &tereze_hsm::Fields::NODE_TLS,
            )
            .map_err(StartError::TlsKey)?;
            tls::NodeIdentity::with_token_key(config.tls.clone(), Arc::new(key))?
        } else {
            private_key(&config.tls.key)?;
            tls::NodeIdentity::files(config.tls.clone())
        };
        if !tereze_hsm::is_pkcs11(&config.signing.key) {
            private_key(&config.signing.key)?;
        }
        let cert_pem = read(&config.signing.certificate)?;
        let signing = tereze_hsm::load_signing_key(
            &config.signing.key.to_string_lossy(),
            Some(&cert_pem),
            &config.pkcs11.settings(),
            &tereze_hsm::Fields::NODE_SIGNING,
        )?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let location = config.store_location()?;
        let store_path = location.to_string();
        let cache = config.limits.store_cache_mb << 20;
        let store =
            Store::open_with_cache(&location, cache).map_err(|source| StartError::Store {
                path: store_path.clone(),
                source,
            })?;
        let max_queue = config.limits.max_queue;
        let outbox_len = store.outbox_len().map_err(|source| StartError::Store {
            path: store_path.clone(),
            source,
        })?;
        // The store's writes wait under the node's own floor instead of running the disk out.
        let disk = Arc::new(disk::DiskWatch::new(
            &config.data_dir,
            config.limits.min_free_disk_mb,
        ));
        let room = disk.clone();
        let gate: crate::store::committer::Gate = Arc::new(move || room.own_write());
        let committer =
            Committer::start(Arc::new(store), Some(gate)).map_err(|source| StartError::Store {
                path: store_path.clone(),
                source,
            })?;
        // A newer signed version received earlier (from the hub) wins over the file.
        if let Some(anchor) = &anchor {
            if let Some((version, bytes)) =
                committer
                    .store()
                    .latest_trust_space()
                    .map_err(|source| StartError::Store {
                        path: store_path.clone(),
                        source,
                    })?
            {
                if version > trust.version {
                    if let Ok((file, signer)) = TrustSpace::read(&bytes, Some(anchor)) {
                        let mut stored = TrustSpace::from_file(file, Path::new("(store)"))?;
                        stored.signer = signer;
                        stored.source = bytes;
                        trust = stored;
                    }
                }
            }
        }
        let directories =
            reference::load(committer.store()).map_err(|source| StartError::Store {
                path: store_path.clone(),
                source,
            })?;
        let tls_server = tls::server_config(&tls_identity, &trust)?;
        let catalog = Catalog::builtin().map_err(StartError::Mappings)?;
        let trust_version = tokio::sync::watch::Sender::new(trust.version);
        let trust = Arc::new(trust);
        let attachments =
            crate::attachments::Attachments::open(&config.data_dir, config.attachments.clone())
                .map_err(StartError::Attachments)?;
        let national_transfers = Arc::new(tokio::sync::Semaphore::new(
            config.attachments.max_national_transfers,
        ));
        let preparing = Arc::new(tokio::sync::Semaphore::new(config.limits.max_preparing));
        let preparing_mb = Arc::new(tokio::sync::Semaphore::new(config.limits.max_preparing_mb));
        let national = Arc::new(national::NationalDoor {
            clients: national::Clients::load(&config.national)?,
            refusals: Default::default(),
        });
        let national_trust = national_signature::NationalTrust::load(&config.national)?;
        let queue_bytes = Arc::new(queue_bytes::QueueBytes::new(config.limits.max_queue_bytes));
        let peers = tereze_relay::Peers::new(
            &config.relay,
            config.limits.max_batch,
            config.attachments.max_transfers_per_peer,
        );
        let metrics = metrics::Metrics::default();
        let stamping = stamper::Stamping::default();
        let node = Arc::new_cyclic(|node| Self {
            registry: {
                let mut r = metrics::registry(
                    node.clone(),
                    &metrics,
                    &national.refusals,
                    &queue_bytes,
                    &disk,
                );
                stamping.register(&mut r);
                r.register_collector(Box::new(stamper::Lag { node: node.clone() }));
                r
            },
            config,
            trust_space: std::sync::RwLock::new(trust.clone()),
            parts: std::sync::Mutex::new((trust, crl::Fetched::default())),
            trust_anchor: anchor,
            tls_identity,
            tls_server: std::sync::RwLock::new(Arc::new(tls_server)),
            signing,
            committer,
            store_path: store_path.clone(),
            catalog,
            directories: std::sync::RwLock::new(Arc::new(directories)),
            reference: reference::Reference::new(),
            receipts: ReceiptVerifier::default(),
            peers,
            outbox: outbox::OutboxCount::new(outbox_len, max_queue),
            queue_bytes,
            metrics,
            disk,
            attachments,
            receiving: Default::default(),
            national_transfers,
            preparing,
            preparing_mb,
            national,
            national_trust,
            shutdown: CancellationToken::new(),
            trust_version,
            stamping,
        });
        // The CRLs fetched before the restart stay in force, whether or not their location
        // answers now.
        let fetched = crl::load(&node);
        if !fetched.by_url.is_empty() {
            let mut parts = node.parts();
            parts.1 = fetched;
            node.put_in_force(&parts)?;
        }
        Ok(node)
    }

    /// Signs an audit checkpoint over the chain's head (none when the last one covers it):
    /// the number of entries it covers.
    pub(crate) async fn checkpoint(self: &Arc<Self>) -> Result<Option<u64>, StoreError> {
        let node = self.clone();
        let stamped = !checkpoint_token::authorities(self).is_empty();
        self.committer
            .run(move |t| sign_checkpoint(t, &node.signing, stamped))
            .await
    }

    /// The checkpoint at shutdown, the store's last write: a request still running (one the
    /// budget dropped) cannot add an entry after it.
    async fn last_checkpoint(self: &Arc<Self>) -> Result<Option<u64>, StoreError> {
        let node = self.clone();
        let stamped = !checkpoint_token::authorities(self).is_empty();
        self.committer
            .run_last(move |t| sign_checkpoint(t, &node.signing, stamped))
            .await
    }

    /// Messages queued without a reservation ([`outbox::OutboxCount::added`]).
    pub(crate) fn outbox_add(&self, n: u64) {
        self.outbox.added(n);
    }

    pub(crate) fn outbox_sub(&self, n: u64) {
        self.outbox.removed(n);
    }
}

/// Signs a checkpoint and, when the state's checkpoints are time-stamped (`stamped`), marks it
/// as waiting for its token in the same transaction: the token comes later
/// ([`checkpoint_token`]), the checkpoint never waits for it.
fn sign_checkpoint(
    t: &mut crate::store::Txn<'_>,
    key: &SigningKey,
    stamped: bool,
) -> Result<Option<u64>, StoreError> {
    let covered = t.audit_checkpoint(key)?;
    if let (true, Some(count)) = (stamped, covered) {
        t.want_checkpoint_token(count - 1)?;
    }
    Ok(covered)
}
