-- Tereze store on PostgreSQL, schema 2: the conformance area (docs/conformance.md).
-- Messages from a tester state (`conformance = true` in the trust space) are kept here
-- instead of the inbox or quarantine, whatever their verdict, until an operator purges them.
CREATE TABLE conformance (
    message_id uuid PRIMARY KEY REFERENCES received (message_id),
    seq        bigint NOT NULL
);
