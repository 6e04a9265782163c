//! The node's durable store. For now: the crash-durability probe that decides which embedded
//! engine backs it (docs/decisions/0004-embedded-store.md); the outbox, inbox, state history
//! and receipts arrive with the relay (issue 5).

pub(crate) mod probe;
