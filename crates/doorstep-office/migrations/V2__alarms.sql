-- Why: alarms the office raises on silence or duress, held until a named person acknowledges them, and a log of every step (raised, escalated, contact resumed, acknowledged) for the visit's timeline.
CREATE TABLE alarms (
    id INTEGER PRIMARY KEY,
    visit_id TEXT NOT NULL REFERENCES visits (id),
    kind TEXT NOT NULL CHECK (kind IN ('overdue', 'duress')),
    -- Overdue: what the office was waiting for. Duress: who raised it.
    about TEXT NOT NULL,
    -- Overdue: the missed deadline. Duress: when the alert was raised on the phone.
    due_at TEXT NOT NULL,
    raised_at TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('board', 'authoriser')),
    escalated_at TEXT,
    contact_resumed_at TEXT,
    acknowledged_by TEXT,
    acknowledged_at TEXT,
    UNIQUE (visit_id, kind, about, due_at)
) STRICT;

CREATE INDEX alarms_open ON alarms (acknowledged_at);

CREATE TABLE alarm_log (
    id INTEGER PRIMARY KEY,
    alarm_id INTEGER NOT NULL REFERENCES alarms (id),
    at TEXT NOT NULL,
    what TEXT NOT NULL,
    detail TEXT NOT NULL
) STRICT;

CREATE INDEX alarm_log_by_alarm ON alarm_log (alarm_id);
