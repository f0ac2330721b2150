-- Why: reconciliation. An event the office holds under the same number as one this phone recorded after being
-- restored from a backup is recorded again under a new number; the old outbox entry is then 'superseded' (and
-- names its successor) rather than waiting or refused. sync_status remembers the last reconciliation (it runs
-- daily) and what a restore left behind, so the phone can say so. The events trigger reads the outbox, so it is
-- dropped while the outbox is rebuilt and then created again as V3 left it.
DROP TRIGGER events_are_immutable;

CREATE TABLE outbox_new (
    event_id TEXT PRIMARY KEY REFERENCES events (id),
    state TEXT NOT NULL CHECK (state IN ('waiting', 'confirmed', 'refused', 'superseded')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_at TEXT,
    confirmed_at TEXT,
    refused_reason TEXT,
    superseded_by TEXT REFERENCES events (id)
) STRICT;

INSERT INTO outbox_new (event_id, state, attempts, last_attempt_at, confirmed_at, refused_reason)
    SELECT event_id, state, attempts, last_attempt_at, confirmed_at, refused_reason FROM outbox;

DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_by_state ON outbox (state);

ALTER TABLE sync_status ADD COLUMN reconciled_at TEXT;
ALTER TABLE sync_status ADD COLUMN restored_at TEXT;
ALTER TABLE sync_status ADD COLUMN restored_office_seq INTEGER;
ALTER TABLE sync_status ADD COLUMN restored_only_at_office INTEGER;

CREATE TRIGGER events_are_immutable BEFORE UPDATE ON events
WHEN NOT (
    OLD.redacted = 0 AND NEW.redacted = 1
    AND NEW.id = OLD.id AND NEW.seq = OLD.seq AND NEW.visit_id = OLD.visit_id
    AND NEW.recorded_at = OLD.recorded_at AND NEW.urgent = OLD.urgent
    AND (SELECT state FROM outbox WHERE event_id = OLD.id) = 'confirmed'
)
BEGIN
    SELECT RAISE(ABORT, 'events are immutable');
END;
