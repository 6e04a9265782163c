//! The reference directories in the running node (DESIGN §6, docs/reference-data.md).
//!
//! The node starts from the shipped directories and the change sets it stored before, in
//! (directory, number) order. A change set arrives signed by its directory's owning authority
//! from three doors: the `publish_dir` of the authority's own node, `POST
//! /v1/reference/change-sets`, and `FetchChangeSets` pulled from the sources (a member's hub;
//! a hub's members). Each is verified against the trust space in force, applied to a copy of
//! the directories in force, recorded durably, and only then swapped in whole, so a request
//! reads one consistent snapshot and a crash loses nothing acknowledged. Applying is
//! idempotent (the same set again is a no-op) and refuses a different set with a number
//! already used. A set that skips numbers is a gap: the node pulls the missing sets from its
//! sources and tries again. Every set put in force is announced to subscribers (the Window
//! `SubscribeReference` stream and the configured webhooks).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tereze_reference_data::{Applied, ChangeError, ChangeSet, Directories};
use tokio_stream::StreamExt;

use super::proto::FetchChangeSetsRequest;
use super::Node;
use crate::config::Role;
use crate::reference_document::{self, DocumentError};

/// Change sets one `FetchChangeSets` answer carries at most.
pub(crate) const MAX_SETS_PER_FETCH: usize = 500;

/// The largest signed change set a node takes.
pub(crate) const MAX_CHANGE_SET_BYTES: usize = 32 << 20;

/// A change set put in force, as subscribers are told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Change {
    pub(crate) directory: String,
    pub(crate) version: u64,
    pub(crate) authority: String,
    pub(crate) issued_at: String,
    /// The codes the set touched, sorted.
    pub(crate) codes: Vec<String>,
}

impl Change {
    fn of(set: &ChangeSet) -> Self {
        let codes: BTreeSet<&str> = set.operations.iter().map(|o| o.code()).collect();
        Self {
            directory: set.directory.clone(),
            version: set.number,
            authority: set.authority.clone(),
            issued_at: set.issued_at.clone(),
            codes: codes.into_iter().map(str::to_owned).collect(),
        }
    }
}

/// Why a change set was not put in force.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl crate::class::Classify for ApplyError {
    fn class(&self) -> crate::class::Class {
        use crate::class::Class;
        match self {
            ApplyError::Store(_) => Class::Unavailable,
            // The sets before it are missing, or it changes what another set changed: the
            // sender sends those first.
            ApplyError::Change(ChangeError::Gap { .. } | ChangeError::Conflict { .. }) => {
                Class::Conflict
            }
            ApplyError::Change(_) | ApplyError::Document(_) => Class::Invalid,
        }
    }
}

impl ApplyError {
    /// A gap: the sets before this one are missing here.
    pub(crate) fn is_gap(&self) -> bool {
        matches!(self, ApplyError::Change(ChangeError::Gap { .. }))
    }
}

/// The node's part: one apply at a time, and the announcements.
pub(crate) struct Reference {
    apply: tokio::sync::Mutex<()>,
    changes: tokio::sync::broadcast::Sender<Change>,
}

impl Reference {
    pub(crate) fn new() -> Self {
        Self {
            apply: tokio::sync::Mutex::new(()),
            changes: tokio::sync::broadcast::Sender::new(1024),
        }
    }

    pub(crate) fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}

/// The shipped directories with the stored change sets applied in order. A stored set that
/// no longer applies (the shipped data changed under it) is reported and the directory stays
/// at the set before; its later sets are not applied either.
pub(crate) fn load(store: &crate::store::Store) -> Result<Directories, crate::store::StoreError> {
    let mut dirs = Directories::builtin();
    let mut broken: HashSet<String> = HashSet::new();
    for (directory, number, bytes) in store.change_sets_after(&HashMap::new(), usize::MAX)? {
        if broken.contains(&directory) {
            continue;
        }
        let applied = reference_document::read_unverified(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|(_, set)| dirs.apply(&set).map_err(|e| e.to_string()));
        if let Err(e) = applied {
            tracing::error!(directory = %directory, number, error = %e,
                "a stored change set does not apply: the directory stays at the set before");
            broken.insert(directory);
        }
    }
    Ok(dirs)
}

/// Each directory's version in `dirs`.
pub(crate) fn versions(dirs: &Directories) -> HashMap<String, u64> {
    dirs.ids()
        .filter_map(|id| dirs.get(id).map(|d| (id.to_owned(), d.version)))
        .collect()
}

impl Node {
    /// Verifies a signed change set and puts it in force (module docs). Returns what it did.
    pub(crate) async fn apply_change_set(&self, bytes: Vec<u8>) -> Result<Applied, ApplyError> {
        if bytes.len() > MAX_CHANGE_SET_BYTES {
            return Err(DocumentError::Malformed(format!(
                "{} bytes is over the limit of {MAX_CHANGE_SET_BYTES}",
                bytes.len()
            ))
            .into());
        }
        let trust = self.trust();
        let (set, signer) = reference_document::verify(&bytes, &trust, self.trust_anchor.as_ref())?;
        let _one_at_a_time = self.reference.apply.lock().await;
        let mut next = (*self.directories()).clone();
        let version = match next.apply(&set)? {
            Applied::AlreadyApplied => return Ok(Applied::AlreadyApplied),
            Applied::Now(v) => v,
        };
        let (d, n) = (set.directory.clone(), set.number);
        self.committer
            .run(move |t| t.record_change_set(&d, n, &bytes))
            .await?;
        self.put_directories_in_force(next);
        self.metrics.change_sets.inc();
        tracing::info!(directory = %set.directory, version, authority = %set.authority,
            signer = %signer, "reference change set in force");
        let _ = self.reference.changes.send(Change::of(&set));
        Ok(Applied::Now(version))
    }

    /// Applies a set; on a gap, pulls the missing sets from the sources first and tries again.
    pub(crate) async fn apply_change_set_or_catch_up(
        self: &Arc<Self>,
        bytes: Vec<u8>,
    ) -> Result<Applied, ApplyError> {
        match self.apply_change_set(bytes.clone()).await {
            Err(e) if e.is_gap() => {
                tracing::info!(error = %e, "change set gap: pulling the missing sets");
                self.metrics.change_set_gaps.inc();
                pull_all(self).await;
                self.apply_change_set(bytes).await
            }
            other => other,
        }
    }

    /// The states whose nodes this node pulls change sets from.
    pub(crate) fn reference_sources(&self) -> Vec<String> {
        if let Some(s) = &self.config.reference.sync_from {
            return s.clone();
        }
        match (&self.config.routing.hub, self.config.role) {
            (Some(hub), Role::Member) => vec![hub.clone()],
            (_, Role::Hub) => self
                .trust()
                .states
                .values()
                .filter(|s| s.role == Role::Member && !s.nodes.is_empty())
                .filter(|s| s.code != self.config.state)
                .map(|s| s.code.clone())
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Why a pull from a change-set source stopped.
#[derive(Debug, thiserror::Error)]
enum PullError {
    /// No client could be made for the source (not in the trust space, no address).
    #[error("{0}")]
    Connect(#[source] super::relay::ClientError),
    /// The source answered the call, or the stream, with an error.
    #[error("{from}: {}", .status.message())]
    Call {
        from: String,
        #[source]
        status: tonic::Status,
    },
    /// The source's sets do not follow the ones held here, and it has not the missing ones.
    #[error("{from} cannot fill a gap: {gap}")]
    Gap {
        from: String,
        #[source]
        gap: ApplyError,
    },
    #[error("{from}: no answer within {seconds} s")]
    Timeout { from: String, seconds: u64 },
}

/// Pulls newer sets from one source until it has nothing more (or fails). Returns how many
/// sets were put in force.
async fn pull(node: &Arc<Node>, source: &str) -> Result<usize, PullError> {
    let mut client = super::relay::client(&**node, source).map_err(PullError::Connect)?;
    let call = |status| PullError::Call {
        from: source.to_owned(),
        status,
    };
    let mut total = 0;
    loop {
        let have = versions(&node.directories());
        let mut stream = client
            .fetch_change_sets(FetchChangeSetsRequest {
                have,
                limit: MAX_SETS_PER_FETCH as u32,
            })
            .await
            .map_err(call)?
            .into_inner();
        let mut got = 0;
        let mut applied = 0;
        let mut gap = None;
        while let Some(item) = stream.next().await {
            let item = item.map_err(call)?;
            got += 1;
            match node.apply_change_set(item.document).await {
                Ok(Applied::Now(_)) => applied += 1,
                Ok(Applied::AlreadyApplied) => {}
                Err(e) if e.is_gap() => gap = Some(e),
                Err(e) => {
                    node.metrics.change_sets_refused.inc();
                    tracing::warn!(source, directory = %item.directory, number = item.number,
                        error = %e, "change set from a source refused");
                }
            }
        }
        total += applied;
        if got < MAX_SETS_PER_FETCH || applied == 0 {
            if let Some(gap) = gap {
                return Err(PullError::Gap {
                    from: source.to_owned(),
                    gap,
                });
            }
            return Ok(total);
        }
    }
}

/// Pulls from every source in turn.
pub(crate) async fn pull_all(node: &Arc<Node>) -> usize {
    let mut total = 0;
    for source in node.reference_sources() {
        // A source that stalls (a TLS handshake that never ends) must not stop the loop.
        let limit = Duration::from_secs(node.config.relay.timeout_seconds.max(1) * 4);
        let pulled = tokio::time::timeout(limit, pull(node, &source))
            .await
            .unwrap_or_else(|_| {
                Err(PullError::Timeout {
                    from: source.clone(),
                    seconds: limit.as_secs(),
                })
            });
        match pulled {
            Ok(n) => {
                node.metrics.change_set_pulls.inc();
                total += n
            }
            Err(e) => {
                node.metrics.change_set_pull_failures.inc();
                tracing::debug!(source = %source, error = %e, "reference: pull failed");
            }
        }
    }
    total
}

/// Applies the signed sets in `publish_dir` that are newer than the directories in force, in
/// (directory, number) order. `refused` remembers documents already reported.
async fn read_publish_dir(node: &Arc<Node>, refused: &mut HashSet<Vec<u8>>) {
    let Some(dir) = &node.config.reference.publish_dir else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "reference.publish_dir cannot be read");
        return;
    };
    let mut sets = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "xml") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        match reference_document::peek(&bytes) {
            Ok(h) => sets.push((h.directory, h.number, path, bytes)),
            Err(e) => {
                if refused.insert(bytes) {
                    tracing::warn!(file = %path.display(), error = %e, "not a change set");
                }
            }
        }
    }
    sets.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    for (directory, number, path, bytes) in sets {
        let have = node.directories().get(&directory).map(|d| d.version);
        if have.is_some_and(|v| number <= v) || refused.contains(&bytes) {
            continue;
        }
        if let Err(e) = node.apply_change_set_or_catch_up(bytes.clone()).await {
            node.metrics.change_sets_refused.inc();
            tracing::warn!(file = %path.display(), error = %e, "published change set refused");
            refused.insert(bytes);
        }
    }
}

/// Keeps the directories current: the publish directory, then the sources, every
/// `reference.refresh_seconds`.
pub(crate) async fn refresh(node: Arc<Node>) {
    let every = Duration::from_secs(node.config.reference.refresh_seconds.max(1));
    let mut refused = HashSet::new();
    // The first round soon after start: a node that was down catches up at once.
    let mut wait = Duration::from_millis(200);
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = every;
        read_publish_dir(&node, &mut refused).await;
        pull_all(&node).await;
    }
}

/// Tries again after a webhook's first failure before it is logged and given up.
const WEBHOOK_RETRIES: u32 = 4;
/// The first pause and the cap between a webhook's tries (with 4 retries the pauses stay
/// under 3.2 s: a subscriber on the node's own network is back soon or reads the history).
const WEBHOOK_PAUSE: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(5));

/// Tells the configured webhooks of every change they follow (a few tries each, then it is
/// logged: a subscriber that was away reads the directory's history).
pub(crate) async fn notify_webhooks(node: Arc<Node>) {
    if node.config.reference.webhooks.is_empty() {
        return;
    }
    let mut rx = node.reference.subscribe();
    loop {
        let change = tokio::select! {
            _ = node.shutdown.cancelled() => break,
            c = rx.recv() => match c {
                Ok(c) => c,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "webhooks: changes missed");
                    continue;
                }
                Err(_) => break,
            },
        };
        let body = match serde_json::to_vec(&change) {
            Ok(b) => b,
            Err(_) => continue,
        };
        for hook in &node.config.reference.webhooks {
            if !hook.directories.is_empty() && !hook.directories.contains(&change.directory) {
                continue;
            }
            let (url, body, node) = (hook.url.clone(), body.clone(), node.clone());
            tokio::spawn(async move {
                let mut failures = 0u32;
                loop {
                    let sent = tereze_support::http::exchange(
                        &url,
                        Some(("application/json", body.clone())),
                        Duration::from_secs(5),
                        1 << 16,
                    )
                    .await;
                    failures += 1;
                    match sent {
                        Ok(_) => {
                            node.metrics.webhooks_sent.inc();
                            break;
                        }
                        Err(_) if failures <= WEBHOOK_RETRIES => {
                            let (min, max) = WEBHOOK_PAUSE;
                            tokio::time::sleep(tereze_support::backoff::pause(min, max, failures))
                                .await
                        }
                        Err(e) => {
                            node.metrics.webhooks_failed.inc();
                            tracing::warn!(url = %url, error = %e, "webhook not delivered");
                            break;
                        }
                    }
                }
            });
        }
    }
}
