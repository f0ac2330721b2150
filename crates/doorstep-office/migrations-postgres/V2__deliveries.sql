-- Why: the notifier on PostgreSQL (store/postgres/deliveries.rs): every alarm step and safeguarding notice told to each notification target, with each attempt, as the SQLite store's deliveries table keeps them. Times compared in SQL are fixed-width UTC text in the "C" collation, so text order is time order whatever the database's locale.
CREATE TABLE deliveries (
    -- The order the office recorded them in (SQLite's rowid).
    position BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    -- A UUID: the webhook's X-Doorstep-Delivery header and the email's Message-ID, so a receiver can drop a repeat.
    id TEXT PRIMARY KEY,
    -- An alarm step (alarm and log line), or a notice: one or the other.
    alarm_id BIGINT REFERENCES alarms (id),
    alarm_log_id BIGINT REFERENCES alarm_log (id),
    notice_id BIGINT REFERENCES notices (id),
    target_id BIGINT NOT NULL REFERENCES notification_targets (id),
    -- Who it was sent to as, at the time: alarm levels ("board,authoriser"), "contact" or "role:dsl".
    audience TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- NULL once delivered, or once it was stopped (the alarm acknowledged, the target removed).
    next_attempt_at TEXT COLLATE "C",
    delivered_at TEXT,
    last_error TEXT,
    -- Exactly what every attempt sends: the webhook's JSON body, or the whole email message.
    payload TEXT NOT NULL,
    CHECK ((notice_id IS NULL) = (alarm_log_id IS NOT NULL) AND (alarm_id IS NULL) = (alarm_log_id IS NULL)),
    -- A step or a notice reaches a target once, whichever office planned it first.
    UNIQUE (alarm_log_id, target_id),
    UNIQUE (notice_id, target_id)
);

CREATE INDEX deliveries_by_alarm ON deliveries (alarm_id);
CREATE INDEX deliveries_waiting ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

-- One live target per school (or visit) and address, even when two offices add it at once.
CREATE UNIQUE INDEX notification_targets_live
    ON notification_targets (school_id, kind, address, COALESCE(visit_id, ''))
    WHERE removed_at IS NULL;

CREATE INDEX notices_by_time ON notices ((raised_at COLLATE "C"));
