//! Group commit: one thread owns the store's writes and puts the requests of every concurrent
//! caller that arrive while a commit is running into the next commit, so throughput follows
//! the number of callers instead of the disk's fsync rate. Each caller gets its own answer
//! only after the commit that holds its change is durable. Committed state changes are
//! published to subscribers. A gate may hold a commit back while the disk has no room for it
//! (`limits.min_free_disk_mb`, docs/reliability.md): the callers wait, readers do not.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::{Change, Store, StoreError, Txn};
use tereze_support::clock::now_ms;

/// Told the commit's outcome after the transaction ends.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// One caller's request: runs inside the group's transaction.
type Run = Box<dyn FnOnce(&mut Txn<'_>) -> (Result<(), StoreError>, Finish) + Send>;
/// Tells the caller of a request that never ran why (the transaction failed before it).
type Refuse = Box<dyn FnOnce(StoreError) + Send>;

/// A request and whether its caller needs it on disk before the answer.
struct Job {
    run: Run,
    refuse: Refuse,
    durable: bool,
    /// The store's last write ([`Committer::run_last`]).
    last: bool,
}

/// Most requests in one commit.
const MAX_GROUP: usize = 1024;

/// Whether the next commit may be written now.
#[derive(Debug, PartialEq, Eq)]
pub enum Room {
    Go,
    /// Not yet (why, in words for the log): asked again shortly, the commit waiting.
    Wait(String),
    /// Never (the node is stopping): the waiting requests are refused with
    /// [`StoreError::Closed`], nothing of them written.
    GiveUp,
}

/// Asked before each commit.
pub type Gate = Arc<dyn Fn() -> Room + Send + Sync>;

/// How often a waiting commit asks its gate again.
const GATE_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

/// The handle callers use; cheap to clone.
#[derive(Clone)]
pub struct Committer {
    jobs: mpsc::Sender<Job>,
    changes: broadcast::Sender<Change>,
    store: Arc<Store>,
    /// Set (once) when the disk refused a write: the store takes no more writes until the node
    /// restarts and reopens it.
    failed: watch::Receiver<Option<String>>,
    /// Why the next commit waits (its gate said so), while it does.
    paused: Arc<std::sync::Mutex<Option<String>>>,
    /// The newest event this node's commits wrote to the log (another replica's commits are
    /// not seen here: readers also look again now and then).
    newest_event: watch::Receiver<u64>,
}

impl Committer {
    /// Starts the commit thread for `store`; each commit first waits for `gate`, if any.
    pub fn start(store: Arc<Store>, gate: Option<Gate>) -> Result<Self, StoreError> {
        let (jobs, mut rx) = mpsc::channel::<Job>(8192);
        let (changes, _) = broadcast::channel(16_384);
        let publish = changes.clone();
        let thread_store = store.clone();
        let (fail, failed) = watch::channel(None);
        let paused: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let thread_paused = paused.clone();
        let (event_tx, newest_event) = watch::channel(store.events(0, 1).map_or(0, |p| p.newest));
        std::thread::Builder::new()
            .name("tereze-commit".into())
            .spawn(move || {
                let mut group = Vec::with_capacity(MAX_GROUP);
                while let Some(first) = rx.blocking_recv() {
                    let mut last = first.last;
                    group.push(first);
                    while !last && group.len() < MAX_GROUP {
                        match rx.try_recv() {
                            Ok(job) => {
                                last = job.last;
                                group.push(job);
                            }
                            Err(_) => break,
                        }
                    }
                    if let Some(gate) = &gate {
                        if !wait_for_room(gate, &thread_paused) {
                            // Given up (the node stops with no room): nothing of it was
                            // written, and each caller is told so.
                            for job in group.drain(..) {
                                (job.refuse)(StoreError::Closed);
                            }
                            if last {
                                rx.close();
                                while let Ok(job) = rx.try_recv() {
                                    (job.refuse)(StoreError::Closed);
                                }
                                break;
                            }
                            continue;
                        }
                    }
                    if let Err(StoreError::Io(e)) = commit_group(
                        &thread_store,
                        &publish,
                        &event_tx,
                        std::mem::take(&mut group),
                    ) {
                        fail.send_if_modified(|f| {
                            f.is_none() && f.replace(e.to_string()).is_none()
                        });
                    }
                    if last {
                        // Nothing is written after the last write: what is queued behind it
                        // and whatever comes later is refused.
                        rx.close();
                        while let Ok(job) = rx.try_recv() {
                            (job.refuse)(StoreError::Closed);
                        }
                        break;
                    }
                }
            })
            .map_err(|e| {
                StoreError::engine_failed(format!("cannot start the commit thread: {e}"), e)
            })?;
        Ok(Self {
            jobs,
            changes,
            failed,
            store,
            paused,
            newest_event,
        })
    }

    /// The newest event number committed by this node, changing after each commit that
    /// wrote events: readers of the log wait on it instead of polling.
    pub fn newest_event(&self) -> watch::Receiver<u64> {
        self.newest_event.clone()
    }

    /// Why commits wait for room now, if they do.
    pub fn paused(&self) -> Option<String> {
        self.paused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads go straight to the store (redb readers do not wait for writers).
    /// Becomes `Some(reason)` when the disk refused a write (see [`StoreError::Io`]).
    pub fn failed(&self) -> watch::Receiver<Option<String>> {
        self.failed.clone()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// State changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Runs `f` in the next group commit and returns its result once the commit is durable.
    /// A request `f` refuses must have written nothing.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.submit(true, f).await
    }

    /// Like [`run`](Self::run), but the answer may come before the change is on disk (it
    /// becomes durable with the next durable commit, or is lost whole in a crash). For changes
    /// that are safe to redo and on whose strength nothing is acknowledged: a delivery outcome
    /// at the sender (lost, the message is sent again and the receiver answers with its first
    /// receipt), a failed attempt.
    pub async fn run_lazily<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.submit(false, f).await
    }

    /// Like [`run`](Self::run), as the store's last write (the audit checkpoint at shutdown):
    /// requests behind it, and every later one, are refused with [`StoreError::Closed`].
    pub async fn run_last<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.send(true, true, f).await
    }

    async fn submit<R: Send + 'static>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.send(durable, false, f).await
    }

    async fn send<R: Send + 'static>(
        &self,
        durable: bool,
        last: bool,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (tx, rx) = oneshot::channel::<Result<R, StoreError>>();
        // Answered once: by the commit that ran the request, or with the error that ended the
        // transaction before it ran.
        let tx = Arc::new(std::sync::Mutex::new(Some(tx)));
        let answer = move |tx: &std::sync::Mutex<Option<oneshot::Sender<_>>>, r| {
            if let Some(tx) = tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = tx.send(r);
            }
        };
        let for_run = tx.clone();
        let run: Run = Box::new(move |t: &mut Txn<'_>| {
            let r = f(t);
            let status = r.as_ref().map(|_| ()).map_err(StoreError::clone);
            let finish: Finish = Box::new(move |commit: Result<(), StoreError>| {
                answer(&for_run, commit.and(r));
            });
            (status, finish)
        });
        let refuse: Refuse = Box::new(move |e| answer(&tx, Err(e)));
        self.jobs
            .send(Job {
                run,
                refuse,
                durable,
                last,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.unwrap_or_else(|_| {
            Err(StoreError::Engine(
                "the group commit failed before this request ran".into(),
            ))
        })
    }
}

/// Waits until `gate` lets the next commit go (true) or gives it up (false), saying why it
/// waits in `paused` meanwhile.
fn wait_for_room(gate: &Gate, paused: &std::sync::Mutex<Option<String>>) -> bool {
    let set = |v: Option<String>| *paused.lock().unwrap_or_else(|p| p.into_inner()) = v;
    loop {
        match gate() {
            Room::Go => {
                set(None);
                return true;
            }
            Room::Wait(why) => {
                set(Some(why));
                std::thread::sleep(GATE_RETRY);
            }
            Room::GiveUp => {
                set(None);
                return false;
            }
        }
    }
}

/// Commits one group; the engine's error, if the commit failed.
fn commit_group(
    store: &Store,
    publish: &broadcast::Sender<Change>,
    newest_event: &watch::Sender<u64>,
    group: Vec<Job>,
) -> Result<(), StoreError> {
    let mut finishes: Vec<Finish> = Vec::with_capacity(group.len());
    let durable = group.iter().any(|j| j.durable);
    // Left here if the transaction fails before running them all (a connection lost at its
    // start, a fatal error of an earlier request).
    let mut jobs = group.into_iter();
    let outcome = store.write_logged(durable, now_ms(), |t| {
        for job in jobs.by_ref() {
            let (status, finish) = (job.run)(t);
            finishes.push(finish);
            if let Err(e) = status {
                if e.is_fatal() {
                    return Err(e);
                }
            }
        }
        Ok(())
    });
    match outcome {
        Ok(((), changes, last_event)) => {
            // Told before the callers are answered, so a caller that reads the log next finds
            // its readers already woken.
            if let Some(seq) = last_event {
                newest_event.send_if_modified(|n| {
                    let newer = seq > *n;
                    *n = (*n).max(seq);
                    newer
                });
            }
            for f in finishes {
                f(Ok(()));
            }
            for c in changes {
                // No subscriber is not an error.
                let _ = publish.send(c);
            }
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed");
            for f in finishes {
                f(Err(e.clone()));
            }
            for job in jobs {
                (job.refuse)(e.clone());
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{test_message, Outgoing, State};
    use super::*;

    fn msg(n: u128) -> Outgoing {
        test_message(n, "RU")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_commits_and_each_gets_its_own_answer() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(
            Store::open(&crate::Location::File(dir.path().join("s.redb"))).expect("opens"),
        );
        let c = Committer::start(store.clone(), None).expect("starts");
        let mut events = c.subscribe();
        let mut tasks = Vec::new();
        for n in 0..200u128 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                c.run(move |t| t.enqueue(&[msg(n % 150)], &[])).await
            }));
        }
        let mut ok = 0;
        let mut refused = 0;
        for t in tasks {
            match t.await.expect("joined") {
                Ok(()) => ok += 1,
                Err(StoreError::AlreadyQueued(_)) => refused += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!((ok, refused), (150, 50));
        assert_eq!(store.queued("RU").expect("count"), 150);
        let first = events.recv().await.expect("an event");
        assert_eq!(first.transition.state, State::Queued);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_of_the_event_log_are_told_of_each_commit_that_adds_events() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s.redb");
        {
            let store = Arc::new(Store::open(&crate::Location::File(path.clone())).expect("opens"));
            let c = Committer::start(store, None).expect("starts");
            let mut newest = c.newest_event();
            assert_eq!(*newest.borrow_and_update(), 0);
            c.run(|t| t.enqueue(&[msg(1), msg(2)], &[]))
                .await
                .expect("enqueued");
            assert!(newest.has_changed().expect("open"), "not told");
            assert_eq!(*newest.borrow_and_update(), 2);
            // A commit without events tells nothing.
            c.run(|t| t.set_event_cursor("erp", 1)).await.expect("kept");
            assert!(!newest.has_changed().expect("open"));
        }
        // A committer starts from the newest event the store holds (the first one's thread
        // lets go of the file once its channel closes).
        let mut reopened = Store::open(&crate::Location::File(path.clone()));
        for _ in 0..100 {
            if reopened.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            reopened = Store::open(&crate::Location::File(path.clone()));
        }
        let store = Arc::new(reopened.expect("opens"));
        let c = Committer::start(store, None).expect("starts");
        assert_eq!(*c.newest_event().borrow(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_is_written_after_the_last_write() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(
            Store::open(&crate::Location::File(dir.path().join("s.redb"))).expect("opens"),
        );
        let c = Committer::start(store.clone(), None).expect("starts");
        c.run(|t| t.enqueue(&[msg(1)], &[])).await.expect("before");
        c.run_last(|t| t.enqueue(&[msg(2)], &[]))
            .await
            .expect("the last");
        let after = c.run(|t| t.enqueue(&[msg(3)], &[])).await;
        assert!(matches!(after, Err(StoreError::Closed)), "{after:?}");
        assert_eq!(store.queued("RU").expect("count"), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_a_failed_transaction_never_ran_is_told_why() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(
            Store::open(&crate::Location::File(dir.path().join("s.redb"))).expect("opens"),
        );
        let c = Committer::start(store, None).expect("starts");
        // Holds the commit thread so that the next two requests share a group, in order.
        let busy = {
            let c = c.clone();
            tokio::spawn(async move {
                c.run(|_| {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let fatal = {
            let c = c.clone();
            tokio::spawn(async move {
                c.run(|_| Err::<(), _>(StoreError::Engine("the engine broke".into())))
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let after = c.run(|t| t.enqueue(&[msg(1)], &[])).await;
        busy.await.expect("joined").expect("the first commit");
        let fatal = fatal.await.expect("joined");
        assert!(
            matches!(&fatal, Err(StoreError::Engine(m)) if m == "the engine broke"),
            "{fatal:?}"
        );
        assert!(
            matches!(&after, Err(StoreError::Engine(m)) if m == "the engine broke"),
            "the request after it was not told why: {after:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_gate_holds_commits_until_room_returns_and_reads_go_on() {
        use std::sync::atomic::{AtomicU8, Ordering};
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(
            Store::open(&crate::Location::File(dir.path().join("s.redb"))).expect("opens"),
        );
        // 0: no room, 1: room, 2: stopping.
        let room = Arc::new(AtomicU8::new(0));
        let r = room.clone();
        let gate: Gate = Arc::new(move || match r.load(Ordering::Relaxed) {
            0 => Room::Wait("no room".into()),
            1 => Room::Go,
            _ => Room::GiveUp,
        });
        let c = Committer::start(store.clone(), Some(gate)).expect("starts");
        let c2 = c.clone();
        let waiting = tokio::spawn(async move { c2.run(|t| t.enqueue(&[msg(1)], &[])).await });
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        assert!(!waiting.is_finished(), "committed without room");
        assert_eq!(c.paused().as_deref(), Some("no room"));
        assert_eq!(store.queued("RU").expect("reads go on"), 0);
        assert!(c.failed().borrow().is_none(), "waiting is not a failure");
        room.store(1, Ordering::Relaxed);
        waiting
            .await
            .expect("joined")
            .expect("committed once room returned");
        assert_eq!(store.queued("RU").expect("count"), 1);
        assert_eq!(c.paused(), None);
        // Stopping while waiting: the request is given up, not written, and nothing fails.
        room.store(0, Ordering::Relaxed);
        let c3 = c.clone();
        let given_up = tokio::spawn(async move { c3.run(|t| t.enqueue(&[msg(2)], &[])).await });
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        room.store(2, Ordering::Relaxed);
        let given_up = given_up.await.expect("joined");
        assert!(matches!(given_up, Err(StoreError::Closed)), "{given_up:?}");
        assert_eq!(store.queued("RU").expect("count"), 1);
        assert!(c.failed().borrow().is_none());
    }
}
