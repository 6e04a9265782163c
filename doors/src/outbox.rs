//! The outbox's size as backpressure sees it (`limits.max_queue`): the messages it holds and
//! the places reserved for commits still running. A submission, a hub's intake or an
//! operator's requeue reserves its places before its commit and turns them into held messages
//! after it; places a refused or failed commit does not use go back when its [`Places`] drops.
//! **Invariant:** held + reserved never passes the limit through a reservation, so concurrent
//! callers cannot together queue more than `limits.max_queue` (in one process; replicas sharing
//! a PostgreSQL store each see the others' messages only at the next refresh).

use std::sync::Mutex;

/// The outbox's count and the places reserved in it.
#[derive(Debug)]
pub struct OutboxCount {
    counts: Mutex<Counts>,
    max: u64,
}

#[derive(Debug, Default)]
struct Counts {
    /// Messages in the outbox (committed).
    held: u64,
    /// Places taken by commits still running.
    reserved: u64,
    /// Messages ever added here, so a refresh read while some were added does not undo them.
    added: u64,
}

/// No place for what a caller wants to queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the outbox holds {held} messages and {reserved} more are being queued, {wanted} more would pass limits.max_queue = {max}; try again later")]
pub struct Full {
    pub held: u64,
    pub reserved: u64,
    pub wanted: u64,
    pub max: u64,
}

/// Places reserved in the outbox for one commit. [`Places::commit`] after the commit that
/// queued the messages; dropped without it (refused, failed), the places go back.
#[must_use = "dropping the places gives them back at once"]
#[derive(Debug)]
pub struct Places<'a> {
    count: &'a OutboxCount,
    n: u64,
}

impl OutboxCount {
    /// `held` messages in the outbox now, at most `max` (`limits.max_queue`).
    pub fn new(held: u64, max: u64) -> Self {
        Self {
            counts: Mutex::new(Counts {
                held,
                ..Counts::default()
            }),
            max,
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts are plain numbers, consistent after every statement: a panic elsewhere
        // cannot leave them half-changed.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Messages in the outbox (committed), for metrics.
    pub fn held(&self) -> u64 {
        self.counts().held
    }

    /// Whether no place is left (a cheap refusal before any work).
    pub fn full(&self) -> Result<(), Full> {
        let c = self.counts();
        if c.held + c.reserved >= self.max {
            return Err(Full {
                held: c.held,
                reserved: c.reserved,
                wanted: 1,
                max: self.max,
            });
        }
        Ok(())
    }

    /// Exactly `n` places, or none.
    pub fn reserve(&self, n: u64) -> Result<Places<'_>, Full> {
        let mut c = self.counts();
        if c.held + c.reserved + n > self.max {
            return Err(Full {
                held: c.held,
                reserved: c.reserved,
                wanted: n,
                max: self.max,
            });
        }
        c.reserved += n;
        Ok(Places { count: self, n })
    }

    /// As many of `n` places as are free, at least one (none asked, none taken).
    pub fn reserve_up_to(&self, n: u64) -> Result<Places<'_>, Full> {
        if n == 0 {
            return Ok(Places { count: self, n: 0 });
        }
        let mut c = self.counts();
        let free = self.max.saturating_sub(c.held + c.reserved);
        if free == 0 {
            return Err(Full {
                held: c.held,
                reserved: c.reserved,
                wanted: n,
                max: self.max,
            });
        }
        let n = n.min(free);
        c.reserved += n;
        Ok(Places { count: self, n })
    }

    /// Messages queued without a reservation: what the node must queue whatever the limit
    /// (a final recipient's receipt a hub hands back in place of the message it forwarded).
    pub fn added(&self, n: u64) {
        let mut c = self.counts();
        c.held += n;
        c.added += n;
    }

    /// Messages that left the outbox.
    pub fn removed(&self, n: u64) {
        let mut c = self.counts();
        c.held = c.held.saturating_sub(n);
    }

    /// A mark to take before reading the store's count for [`refreshed`](Self::refreshed).
    pub fn mark(&self) -> u64 {
        self.counts().added
    }

    /// The store's count, read after [`mark`](Self::mark) returned `since` (other replicas
    /// add to a shared store). What this node added meanwhile is counted on top, since the
    /// read may have missed it: at worst an overcount (a refusal too early) until the next
    /// refresh, never an undercount.
    pub fn refreshed(&self, held: u64, since: u64) {
        let mut c = self.counts();
        c.held = held + (c.added - since);
    }
}

impl Places<'_> {
    /// How many places are reserved.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether none is (`reserve(0)`, `reserve_up_to(0)`).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The commit queued `used` of the places (at most all); the rest go back.
    pub fn commit(mut self, used: u64) {
        let used = used.min(self.n);
        let mut c = self.count.counts();
        c.held += used;
        c.added += used;
        c.reserved -= self.n;
        self.n = 0;
    }
}

impl Drop for Places<'_> {
    fn drop(&mut self) {
        if self.n > 0 {
            let mut c = self.count.counts();
            c.reserved -= self.n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_never_pass_the_limit() {
        let o = OutboxCount::new(2, 5);
        let a = o.reserve(2).expect("2 of 3 free");
        let e = o.reserve(2).expect_err("1 free");
        assert_eq!(
            e,
            Full {
                held: 2,
                reserved: 2,
                wanted: 2,
                max: 5
            }
        );
        assert!(e.to_string().contains("limits.max_queue = 5"), "{e}");
        let b = o.reserve(1).expect("the last place");
        assert!(o.full().is_err());
        a.commit(2);
        assert_eq!(o.held(), 4);
        assert!(o.reserve(1).is_err(), "b still holds the last place");
        drop(b);
        assert_eq!(o.held(), 4);
        o.reserve(1).expect("given back").commit(1);
        assert_eq!(o.held(), 5);
        assert!(o.full().is_err());
    }

    #[test]
    fn unused_places_go_back_and_a_partial_reservation_takes_what_is_free() {
        let o = OutboxCount::new(0, 4);
        let p = o.reserve_up_to(10).expect("some");
        assert_eq!(p.len(), 4);
        assert!(o.reserve_up_to(1).is_err());
        assert_eq!(o.reserve_up_to(0).expect("an empty call").len(), 0);
        p.commit(1);
        assert_eq!(o.held(), 1);
        assert_eq!(o.reserve_up_to(10).expect("the rest").len(), 3);
        o.removed(5);
        assert_eq!(o.held(), 0, "never below zero");
    }

    #[test]
    fn concurrent_reservations_stay_within_the_limit() {
        let o = std::sync::Arc::new(OutboxCount::new(0, 100));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let o = o.clone();
                std::thread::spawn(move || {
                    let mut taken = 0;
                    for i in 0..1000u64 {
                        if let Ok(p) = o.reserve(1 + i % 3) {
                            let n = p.len();
                            if i % 5 == 0 {
                                drop(p);
                            } else {
                                p.commit(n);
                                taken += n;
                            }
                        }
                    }
                    taken
                })
            })
            .collect();
        let taken: u64 = threads.into_iter().map(|t| t.join().expect("thread")).sum();
        assert_eq!(taken, o.held());
        assert!(o.held() <= 100, "{}", o.held());
    }

    #[test]
    fn a_refresh_read_before_an_addition_does_not_undo_it() {
        let o = OutboxCount::new(3, 10);
        let mark = o.mark();
        o.reserve(2).expect("room").commit(2);
        o.refreshed(3, mark);
        assert_eq!(
            o.held(),
            5,
            "the two added while the count was read stay counted"
        );
        let mark = o.mark();
        o.refreshed(7, mark);
        assert_eq!(o.held(), 7, "another replica's messages are counted");
    }
}
