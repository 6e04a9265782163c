-- Tereze store on PostgreSQL, schema 4: RFC 3161 time-stamp tokens over audit checkpoints.
-- A row without a token is a checkpoint waiting for one (the node retries it each round); the
-- token is added after the checkpoint, which never waits for the authority.
CREATE TABLE audit_checkpoint_tokens (
    seq   bigint PRIMARY KEY REFERENCES audit_checkpoints (seq),
    token bytea
);
CREATE INDEX audit_checkpoint_tokens_waiting ON audit_checkpoint_tokens (seq) WHERE token IS NULL;
