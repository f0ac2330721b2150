-- Why: reconciliation. An event the office holds under the same number as one this phone recorded after being
-- restored from a backup is recorded again under a new number; the old outbox entry is then 'superseded' (and
-- names its successor) rather than waiting or refused. sync_status remembers the last reconciliation (it runs
-- daily) and what a restore left behind, so the phone can say so.
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
