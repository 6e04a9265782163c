-- The event log (docs/notifications.md): events by sequence number, the newest number taken
-- (one row, locked by the transaction that appends, so numbers stay gap-free and in commit
-- order across replicas), and the readers' cursors.
CREATE TABLE events (
    seq bigint PRIMARY KEY,
    at bigint NOT NULL,
    event bytea NOT NULL
);
CREATE TABLE event_head (
    id integer PRIMARY KEY CHECK (id = 1),
    last bigint NOT NULL
);
INSERT INTO event_head (id, last) VALUES (1, 0);
CREATE TABLE event_cursors (
    reader text PRIMARY KEY,
    seq bigint NOT NULL
);
