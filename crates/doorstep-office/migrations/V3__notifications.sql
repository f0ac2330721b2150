-- Why: alarms and escalations leave the building by email and signed webhook; each target says which alarm levels it wants, and each delivery is recorded (with the exact payload) before it is sent, retried until it lands, and never made twice for the same alarm step.
CREATE TABLE notification_targets (
    id INTEGER PRIMARY KEY,
    school_id TEXT NOT NULL REFERENCES schools (id),
    kind TEXT NOT NULL CHECK (kind IN ('email', 'webhook')),
    -- An email address, or the webhook's http(s) URL.
    address TEXT NOT NULL,
    -- The webhook's HMAC-SHA256 key (kept as given: the office needs it to sign). NULL for email.
    secret TEXT,
    wants_board INTEGER NOT NULL CHECK (wants_board IN (0, 1)),
    wants_authoriser INTEGER NOT NULL CHECK (wants_authoriser IN (0, 1)),
    -- A target hears of alarm steps from this moment on, never of older ones.
    created_at TEXT NOT NULL,
    CHECK ((kind = 'webhook') = (secret IS NOT NULL)),
    CHECK (wants_board = 1 OR wants_authoriser = 1),
    UNIQUE (school_id, kind, address)
) STRICT;

CREATE TABLE deliveries (
    -- A UUID: the webhook's X-Doorstep-Delivery header and the email's Message-ID, so a receiver can drop a repeat.
    id TEXT PRIMARY KEY,
    alarm_id INTEGER NOT NULL REFERENCES alarms (id),
    -- The step of the alarm's history this tells of: raised, authoriser told, or authoriser reminded.
    alarm_log_id INTEGER NOT NULL REFERENCES alarm_log (id),
    target_id INTEGER NOT NULL REFERENCES notification_targets (id),
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Fixed-width UTC (…T10:00:00.000000Z) so it sorts as text. NULL once delivered, or once the alarm was
    -- acknowledged before it could be.
    next_attempt_at TEXT,
    delivered_at TEXT,
    -- The error of the latest failed attempt, if any.
    last_error TEXT,
    -- Exactly what every attempt sends: the webhook's JSON body, or the whole email message.
    payload TEXT NOT NULL,
    UNIQUE (alarm_log_id, target_id)
) STRICT;

CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_by_alarm ON deliveries (alarm_id);
