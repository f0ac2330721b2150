-- Why: the phone's own record of every visit event, and the outbox that holds each one until the office confirms it.
CREATE TABLE device (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    device_id TEXT NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
) STRICT;

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE CHECK (seq >= 1),
    visit_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    urgent INTEGER NOT NULL CHECK (urgent IN (0, 1)),
    body TEXT NOT NULL
) STRICT;

CREATE INDEX events_by_visit ON events (visit_id, seq);

-- Events are facts: a correction is a new event, never an edit.
CREATE TRIGGER events_are_immutable BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are immutable');
END;

CREATE TRIGGER events_are_kept BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are never deleted');
END;

CREATE TABLE outbox (
    event_id TEXT PRIMARY KEY REFERENCES events (id),
    state TEXT NOT NULL CHECK (state IN ('waiting', 'confirmed', 'refused')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_at TEXT,
    confirmed_at TEXT,
    refused_reason TEXT
) STRICT;

CREATE INDEX outbox_by_state ON outbox (state);

CREATE TABLE sync_status (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_success_at TEXT,
    failing_since TEXT,
    last_error TEXT,
    server_offset_ms INTEGER
) STRICT;

INSERT INTO sync_status (id) VALUES (1);

CREATE TABLE holdings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL,
    received_at TEXT NOT NULL
) STRICT;
