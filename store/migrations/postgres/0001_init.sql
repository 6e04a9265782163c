-- Tereze store on PostgreSQL, schema 1: the same records as the embedded store
-- (node/src/store/redb_store.rs), shared by every replica of one node.
-- JSON rows are the embedded store's encodings (serde_json), kept as bytea.

-- Messages waiting for their next hop. A replica claims due rows with a lease
-- (lease_owner, lease_until); an expired lease is free again (a crashed replica's work).
CREATE TABLE outbox (
    message_id      uuid PRIMARY KEY,
    peer            text   NOT NULL,
    sequence        bigint NOT NULL,
    conversation_id uuid   NOT NULL,
    message         bytea  NOT NULL,  -- JSON Outgoing (payload bytes in `payload`)
    payload         bytea  NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    last_error      text,
    lease_owner     text,
    lease_until     bigint
);
CREATE UNIQUE INDEX outbox_by_peer ON outbox (peer, sequence);
CREATE INDEX outbox_by_conversation ON outbox (peer, conversation_id, sequence);
CREATE SEQUENCE outbox_sequence;

-- Expired or dead messages, kept for an operator's requeue.
CREATE TABLE parked (
    message_id uuid PRIMARY KEY,
    entry      bytea NOT NULL,        -- JSON OutboxEntry
    payload    bytea NOT NULL
);

-- Every message ever received: the deduplication memory. The primary key is the
-- exactly-once guarantee across replicas.
CREATE TABLE received (
    message_id uuid PRIMARY KEY,
    row        bytea NOT NULL,        -- JSON Incoming
    envelope   bytea,
    receipt    bytea NOT NULL,
    digest     text  NOT NULL
);
CREATE SEQUENCE inbox_sequence;
CREATE TABLE inbox (
    seq        bigint PRIMARY KEY,
    message_id uuid NOT NULL UNIQUE REFERENCES received (message_id)
);
CREATE TABLE quarantine (
    message_id uuid PRIMARY KEY REFERENCES received (message_id),
    seq        bigint NOT NULL
);

-- Each message's transitions, keyed by their audit sequence.
CREATE TABLE history (
    message_id uuid   NOT NULL,
    seq        bigint NOT NULL,
    state      text   NOT NULL,
    at         bigint NOT NULL,
    transition bytea  NOT NULL,       -- JSON Transition
    PRIMARY KEY (message_id, seq)
);

CREATE TABLE receipts     (message_id uuid PRIMARY KEY, receipt bytea NOT NULL);
CREATE TABLE hub_receipts (message_id uuid PRIMARY KEY, receipt bytea NOT NULL);
CREATE TABLE awaiting     (message_id uuid PRIMARY KEY, recipient text NOT NULL, digest bytea NOT NULL);
CREATE TABLE message_meta (message_id uuid PRIMARY KEY, meta bytea NOT NULL);
CREATE TABLE trust_history (version bigint PRIMARY KEY, document bytea NOT NULL);
CREATE TABLE fetched_crls (url text PRIMARY KEY, crls bytea NOT NULL);
CREATE TABLE traders (id text PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE trader_answers (id text PRIMARY KEY, fetched_at bigint NOT NULL, document bytea NOT NULL);
CREATE TABLE change_sets (
    directory text   NOT NULL,
    number    bigint NOT NULL,
    document  bytea  NOT NULL,
    PRIMARY KEY (directory, number)
);

-- The audit chain: one chain for all replicas. Every write transaction locks the head
-- row first (SELECT ... FOR UPDATE), so appends are serialised and sequence numbers have
-- no gaps.
CREATE TABLE audit (seq bigint PRIMARY KEY, entry bytea NOT NULL);
CREATE TABLE audit_head (
    id    integer PRIMARY KEY CHECK (id = 1),
    count bigint NOT NULL,
    hash  bytea                       -- NULL before the first entry
);
INSERT INTO audit_head (id, count, hash) VALUES (1, 0, NULL);
CREATE TABLE audit_checkpoints (seq bigint PRIMARY KEY, checkpoint bytea NOT NULL);
