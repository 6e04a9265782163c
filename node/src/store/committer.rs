//! Group commit: one thread owns the store's writes and puts the requests of every concurrent
//! caller that arrive while a commit is running into the next commit, so throughput follows
//! the number of callers instead of the disk's fsync rate. Each caller gets its own answer
//! only after the commit that holds its change is durable. Committed state changes are
//! published to subscribers.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::{now_ms, Change, Store, StoreError, Txn};

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

/// The handle callers use; cheap to clone.
#[derive(Clone)]
pub(crate) struct Committer {
    jobs: mpsc::Sender<Job>,
    changes: broadcast::Sender<Change>,
    store: Arc<Store>,
    /// Set (once) when the disk refused a write: the store takes no more writes until the node
    /// restarts and reopens it.
    failed: watch::Receiver<Option<String>>,
}

impl Committer {
    /// Starts the commit thread for `store`.
    pub(crate) fn start(store: Arc<Store>) -> Result<Self, StoreError> {
        let (jobs, mut rx) = mpsc::channel::<Job>(8192);
        let (changes, _) = broadcast::channel(16_384);
        let publish = changes.clone();
        let thread_store = store.clone();
        let (fail, failed) = watch::channel(None);
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
                    if let Err(StoreError::Io(e)) =
                        commit_group(&thread_store, &publish, std::mem::take(&mut group))
                    {
                        fail.send_if_modified(|f| f.is_none() && f.replace(e).is_none());
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
            .map_err(|e| StoreError::Engine(format!("cannot start the commit thread: {e}")))?;
        Ok(Self {
            jobs,
            changes,
            failed,
            store,
        })
    }

    /// Reads go straight to the store (redb readers do not wait for writers).
    /// Becomes `Some(reason)` when the disk refused a write (see [`StoreError::Io`]).
    pub(crate) fn failed(&self) -> watch::Receiver<Option<String>> {
        self.failed.clone()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// State changes from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Runs `f` in the next group commit and returns its result once the commit is durable.
    /// A request `f` refuses must have written nothing.
    pub(crate) async fn run<R: Send + 'static>(
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
    pub(crate) async fn run_lazily<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.submit(false, f).await
    }

    /// Like [`run`](Self::run), as the store's last write (the audit checkpoint at shutdown):
    /// requests behind it, and every later one, are refused with [`StoreError::Closed`].
    pub(crate) async fn run_last<R: Send + 'static>(
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

/// Commits one group; the engine's error, if the commit failed.
fn commit_group(
    store: &Store,
    publish: &broadcast::Sender<Change>,
    group: Vec<Job>,
) -> Result<(), StoreError> {
    let mut finishes: Vec<Finish> = Vec::with_capacity(group.len());
    let durable = group.iter().any(|j| j.durable);
    // Left here if the transaction fails before running them all (a connection lost at its
    // start, a fatal error of an earlier request).
    let mut jobs = group.into_iter();
    let outcome = store.write_with(durable, now_ms(), |t| {
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
        Ok(((), changes)) => {
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
        let store = Arc::new(Store::Redb(
            crate::store::RedbStore::open(&dir.path().join("s.redb")).expect("opens"),
        ));
        let c = Committer::start(store.clone()).expect("starts");
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
    async fn nothing_is_written_after_the_last_write() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(Store::Redb(
            crate::store::RedbStore::open(&dir.path().join("s.redb")).expect("opens"),
        ));
        let c = Committer::start(store.clone()).expect("starts");
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
        let store = Arc::new(Store::Redb(
            crate::store::RedbStore::open(&dir.path().join("s.redb")).expect("opens"),
        ));
        let c = Committer::start(store).expect("starts");
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
}
