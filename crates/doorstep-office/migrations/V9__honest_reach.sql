-- Why: the records say only what the office did and what it delivered. Alarms get a third level (the school's deputy and further contacts) and are closed with an outcome after being acknowledged; each log line names the level it concerns (and "nobody_to_tell" when no target covered it); notification targets say which levels they want, whose safeguarding notices they take (by role), may belong to one visit (its out-of-hours responsible contact) and can be removed without losing their history; deliveries carry safeguarding notices as well as alarm steps. SQLite cannot change a CHECK or a NOT NULL in place, so the four tables are rebuilt (ids kept), new ones first, old ones dropped child first, then renamed (which rewrites the foreign keys that name them).

CREATE TABLE alarms_v9 (
    id INTEGER PRIMARY KEY,
    visit_id TEXT NOT NULL REFERENCES visits (id),
    kind TEXT NOT NULL CHECK (kind IN ('overdue', 'duress')),
    -- Overdue: what the office was waiting for. Duress: who raised it.
    about TEXT NOT NULL,
    -- Overdue: the missed deadline. Duress: when the alert was raised on the phone.
    due_at TEXT NOT NULL,
    raised_at TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('board', 'authoriser', 'further')),
    -- When it reached its current level (or was last reminded there).
    escalated_at TEXT,
    contact_resumed_at TEXT,
    -- Who is handling it: acknowledging stops the reminders; the alarm stays on the board until closed.
    acknowledged_by TEXT,
    acknowledged_at TEXT,
    closed_by TEXT,
    closed_at TEXT,
    -- `lifecycle::AlarmOutcome`. NULL only on alarms closed by acknowledging, before outcomes were recorded.
    outcome TEXT CHECK (outcome IN ('spoke_to_staff', 'staff_safe', 'police_called')),
    close_note TEXT,
    CHECK (closed_at IS NULL OR acknowledged_at IS NOT NULL),
    CHECK (outcome IS NULL OR closed_at IS NOT NULL),
    UNIQUE (visit_id, kind, about, due_at)
) STRICT;

-- Before this migration acknowledging ended an alarm: those alarms are closed as they were, without an outcome.
INSERT INTO alarms_v9 (id, visit_id, kind, about, due_at, raised_at, level, escalated_at, contact_resumed_at,
                       acknowledged_by, acknowledged_at, closed_by, closed_at, close_note)
SELECT id, visit_id, kind, about, due_at, raised_at, level, escalated_at, contact_resumed_at,
       acknowledged_by, acknowledged_at, acknowledged_by, acknowledged_at,
       CASE WHEN acknowledged_at IS NOT NULL THEN 'closed by acknowledging, before outcomes were recorded' END
FROM alarms;

CREATE TABLE alarm_log_v9 (
    id INTEGER PRIMARY KEY,
    alarm_id INTEGER NOT NULL REFERENCES alarms_v9 (id),
    at TEXT NOT NULL,
    -- raised, reached_level, reminded, nobody_to_tell, contact_resumed, acknowledged, closed, notified,
    -- notification_failed, notification_cancelled (and, from before this migration, authoriser_told and
    -- authoriser_reminded, renamed below).
    what TEXT NOT NULL,
    -- The level a raise, an escalation, a reminder or a "nobody to tell" concerns.
    level TEXT CHECK (level IN ('board', 'authoriser', 'further')),
    detail TEXT NOT NULL
) STRICT;

INSERT INTO alarm_log_v9 (id, alarm_id, at, what, level, detail)
SELECT l.id, l.alarm_id, l.at,
       CASE l.what WHEN 'authoriser_told' THEN 'reached_level' WHEN 'authoriser_reminded' THEN 'reminded' ELSE l.what END,
       CASE WHEN l.what IN ('authoriser_told', 'authoriser_reminded') THEN 'authoriser'
            WHEN l.what = 'raised' THEN 'board' END,
       l.detail
FROM alarm_log l;

-- A duress alarm was raised straight at the authoriser's level and logged "authoriser_told" in the same instant.
UPDATE alarm_log_v9 SET level = 'authoriser'
WHERE what = 'raised' AND EXISTS (
    SELECT 1 FROM alarm_log_v9 o WHERE o.alarm_id = alarm_log_v9.alarm_id AND o.what = 'reached_level'
    AND o.at = alarm_log_v9.at);
DELETE FROM alarm_log_v9 WHERE what = 'reached_level' AND EXISTS (
    SELECT 1 FROM alarm_log_v9 r WHERE r.alarm_id = alarm_log_v9.alarm_id AND r.what = 'raised'
    AND r.at = alarm_log_v9.at)
    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alarm_log_id = alarm_log_v9.id);

CREATE TABLE notification_targets_v9 (
    id INTEGER PRIMARY KEY,
    school_id TEXT NOT NULL REFERENCES schools (id),
    kind TEXT NOT NULL CHECK (kind IN ('email', 'webhook')),
    -- An email address, or the webhook's http(s) URL.
    address TEXT NOT NULL,
    -- The webhook's HMAC-SHA256 key (kept as given: the office needs it to sign). NULL for email.
    secret TEXT,
    -- Whose it is, in the admin's words ("Priya Head", "deputy head"); a responsible contact's name.
    name TEXT NOT NULL DEFAULT '',
    wants_board INTEGER NOT NULL CHECK (wants_board IN (0, 1)),
    wants_authoriser INTEGER NOT NULL CHECK (wants_authoriser IN (0, 1)),
    wants_further INTEGER NOT NULL DEFAULT 0 CHECK (wants_further IN (0, 1)),
    -- The roles whose contact it is, as a JSON array (["dsl"]): safeguarding notices go to the targets of
    -- the policy's `safeguarding_concerns_to`.
    roles TEXT NOT NULL DEFAULT '[]',
    -- A visit's own contact (its out-of-hours responsible contact): told of every alarm of that visit only.
    visit_id TEXT REFERENCES visits (id),
    -- A target hears of alarm steps from this moment on, never of older ones.
    created_at TEXT NOT NULL,
    -- Removed targets stay, so the deliveries made to them stay readable.
    removed_at TEXT,
    removed_by TEXT,
    CHECK ((kind = 'webhook') = (secret IS NOT NULL))
) STRICT;

INSERT INTO notification_targets_v9 (id, school_id, kind, address, secret, wants_board, wants_authoriser, created_at)
SELECT id, school_id, kind, address, secret, wants_board, wants_authoriser, created_at FROM notification_targets;

-- A safeguarding concern, an incident or a "felt unsafe" cancellation, to pass on at once.
CREATE TABLE notices (
    id INTEGER PRIMARY KEY,
    visit_id TEXT NOT NULL REFERENCES visits (id),
    kind TEXT NOT NULL CHECK (kind IN ('safeguarding_concern', 'incident', 'felt_unsafe')),
    -- The event that carried it (a write-up or a cancellation), and who sent it.
    event_id TEXT NOT NULL,
    staff_id TEXT NOT NULL,
    -- The role it is for: the policy's `safeguarding_concerns_to` when it arrived.
    role TEXT NOT NULL,
    -- When the office received it.
    raised_at TEXT NOT NULL,
    UNIQUE (event_id, kind)
) STRICT;

CREATE INDEX notices_by_visit ON notices (visit_id);
CREATE INDEX notices_by_time ON notices (raised_at);

CREATE TABLE deliveries_v9 (
    -- A UUID: the webhook's X-Doorstep-Delivery header and the email's Message-ID, so a receiver can drop a repeat.
    id TEXT PRIMARY KEY,
    -- An alarm step (alarm and log line), or a notice: one or the other.
    alarm_id INTEGER REFERENCES alarms_v9 (id),
    alarm_log_id INTEGER REFERENCES alarm_log_v9 (id),
    notice_id INTEGER REFERENCES notices (id),
    target_id INTEGER NOT NULL REFERENCES notification_targets_v9 (id),
    -- Who it was sent to as, at the time: alarm levels ("board,authoriser"), "contact" (the visit's
    -- responsible contact) or "role:dsl" (a notice).
    audience TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Fixed-width UTC (…T10:00:00.000000Z) so it sorts as text. NULL once delivered, or once it was stopped
    -- (the alarm acknowledged, the target removed).
    next_attempt_at TEXT,
    delivered_at TEXT,
    -- The error of the latest failed attempt, if any.
    last_error TEXT,
    -- Exactly what every attempt sends: the webhook's JSON body, or the whole email message.
    payload TEXT NOT NULL,
    CHECK ((notice_id IS NULL) = (alarm_log_id IS NOT NULL) AND (alarm_id IS NULL) = (alarm_log_id IS NULL)),
    UNIQUE (alarm_log_id, target_id),
    UNIQUE (notice_id, target_id)
) STRICT;

INSERT INTO deliveries_v9 (id, alarm_id, alarm_log_id, target_id, audience, created_at, attempts, next_attempt_at,
                           delivered_at, last_error, payload)
SELECT d.id, d.alarm_id, d.alarm_log_id, d.target_id,
       CASE WHEN l.what = 'raised' AND l.level = 'authoriser' THEN 'board,authoriser'
            WHEN l.what = 'raised' THEN 'board' ELSE 'authoriser' END,
       d.created_at, d.attempts, d.next_attempt_at, d.delivered_at, d.last_error, d.payload
FROM deliveries d JOIN alarm_log_v9 l ON l.id = d.alarm_log_id;

DROP TABLE deliveries;
DROP TABLE alarm_log;
DROP TABLE notification_targets;
DROP TABLE alarms;

ALTER TABLE alarms_v9 RENAME TO alarms;
ALTER TABLE alarm_log_v9 RENAME TO alarm_log;
ALTER TABLE notification_targets_v9 RENAME TO notification_targets;
ALTER TABLE deliveries_v9 RENAME TO deliveries;

CREATE INDEX alarms_open ON alarms (closed_at);
CREATE INDEX alarms_unacknowledged ON alarms (acknowledged_at);
CREATE INDEX alarm_log_by_alarm ON alarm_log (alarm_id);
-- One live target per address and school (and per visit, for a visit's own contact).
CREATE UNIQUE INDEX notification_targets_once
    ON notification_targets (school_id, kind, address, COALESCE(visit_id, '')) WHERE removed_at IS NULL;
CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_by_alarm ON deliveries (alarm_id);
CREATE INDEX deliveries_by_notice ON deliveries (notice_id);
