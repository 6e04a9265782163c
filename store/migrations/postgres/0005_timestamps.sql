-- Tereze store on PostgreSQL, schema 5: time-stamping (issue 26, docs/timestamps.md).
-- Signatures this node made that wait for an RFC 3161 token, read oldest first.
CREATE TABLE stamp_pending (
    id        uuid PRIMARY KEY,
    kind      text NOT NULL,
    leaf      bytea NOT NULL,
    queued_at bigint NOT NULL
);
CREATE INDEX stamp_pending_age ON stamp_pending (queued_at, id);
-- The evidence of a message's (or a receipt batch's) signature: obtained here or received.
CREATE TABLE evidence (
    id       uuid PRIMARY KEY,
    evidence bytea NOT NULL
);
-- Evidence owed to a peer (sent after the envelope went).
CREATE TABLE evidence_out (
    peer text NOT NULL,
    id   uuid NOT NULL REFERENCES evidence (id),
    PRIMARY KEY (peer, id)
);
