-- Why: the part of the office's record that PostgreSQL holds so far (store/postgres.rs): schools, staff, pupils, visits with their events and the notices they carry, and the alarms the escalation engine raises and escalates, with their log and the targets that say whether anyone can be told. The same tables and columns as the SQLite store's; times are kept as the same RFC 3339 text, so both backends compare the same instants to the nanosecond.
CREATE TABLE schools (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    office_phone TEXT NOT NULL,
    policy TEXT NOT NULL,
    time_zone TEXT NOT NULL DEFAULT 'Europe/London'
);

CREATE TABLE staff (
    id TEXT PRIMARY KEY,
    school_id TEXT NOT NULL REFERENCES schools (id),
    name TEXT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE pupils (
    id TEXT PRIMARY KEY,
    school_id TEXT NOT NULL REFERENCES schools (id),
    name TEXT NOT NULL
);

CREATE TABLE visits (
    id TEXT PRIMARY KEY,
    school_id TEXT NOT NULL REFERENCES schools (id),
    pupil_id TEXT NOT NULL REFERENCES pupils (id),
    agreed_time TEXT NOT NULL,
    body TEXT NOT NULL,
    -- Derived by replaying the visit's events through the core lifecycle; rewritten with every new event.
    phase TEXT NOT NULL,
    state TEXT NOT NULL
);

CREATE INDEX visits_by_phase ON visits (phase);

CREATE TABLE visit_staff (
    visit_id TEXT NOT NULL REFERENCES visits (id),
    staff_id TEXT NOT NULL REFERENCES staff (id),
    position INTEGER NOT NULL,
    PRIMARY KEY (visit_id, staff_id)
);

CREATE TABLE events (
    -- The order the office stored them in (SQLite's rowid).
    position BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq >= 1),
    visit_id TEXT NOT NULL REFERENCES visits (id),
    staff_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    body TEXT NOT NULL,
    trusted_at TEXT,
    UNIQUE (device_id, seq)
);

CREATE INDEX events_by_visit ON events (visit_id, position);

CREATE FUNCTION events_are_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable and never deleted';
END;
$$;

CREATE TRIGGER events_are_kept BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_kept();

CREATE TABLE alarms (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    visit_id TEXT NOT NULL REFERENCES visits (id),
    kind TEXT NOT NULL CHECK (kind IN ('overdue', 'duress')),
    -- Overdue: what the office was waiting for. Duress: who raised it.
    about TEXT NOT NULL,
    -- Overdue: the missed deadline. Duress: when the alert was raised on the phone.
    due_at TEXT NOT NULL,
    raised_at TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('board', 'authoriser', 'further')),
    escalated_at TEXT,
    contact_resumed_at TEXT,
    acknowledged_by TEXT,
    acknowledged_at TEXT,
    closed_by TEXT,
    closed_at TEXT,
    outcome TEXT CHECK (outcome IN ('spoke_to_staff', 'staff_safe', 'police_called')),
    close_note TEXT,
    CHECK (closed_at IS NULL OR acknowledged_at IS NOT NULL),
    CHECK (outcome IS NULL OR closed_at IS NOT NULL),
    -- One alarm per silence or alert: two offices that both see it due raise it once between them.
    UNIQUE (visit_id, kind, about, due_at)
);

CREATE INDEX alarms_by_visit ON alarms (visit_id);

CREATE TABLE alarm_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alarm_id BIGINT NOT NULL REFERENCES alarms (id),
    at TEXT NOT NULL,
    what TEXT NOT NULL,
    level TEXT CHECK (level IN ('board', 'authoriser', 'further')),
    detail TEXT NOT NULL
);

CREATE INDEX alarm_log_by_alarm ON alarm_log (alarm_id);

CREATE TABLE notification_targets (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    school_id TEXT NOT NULL REFERENCES schools (id),
    kind TEXT NOT NULL CHECK (kind IN ('email', 'webhook')),
    address TEXT NOT NULL,
    secret TEXT,
    name TEXT NOT NULL DEFAULT '',
    wants_board INTEGER NOT NULL CHECK (wants_board IN (0, 1)),
    wants_authoriser INTEGER NOT NULL CHECK (wants_authoriser IN (0, 1)),
    wants_further INTEGER NOT NULL DEFAULT 0 CHECK (wants_further IN (0, 1)),
    roles TEXT NOT NULL DEFAULT '[]',
    visit_id TEXT REFERENCES visits (id),
    created_at TEXT NOT NULL,
    removed_at TEXT,
    removed_by TEXT,
    CHECK ((kind = 'webhook') = (secret IS NOT NULL))
);

-- Safeguarding concerns, incidents and "felt unsafe" notes, each recorded with the event that carries it.
CREATE TABLE notices (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    visit_id TEXT NOT NULL REFERENCES visits (id),
    kind TEXT NOT NULL CHECK (kind IN ('safeguarding_concern', 'incident', 'felt_unsafe')),
    event_id TEXT NOT NULL,
    staff_id TEXT NOT NULL,
    role TEXT NOT NULL,
    raised_at TEXT NOT NULL,
    UNIQUE (event_id, kind)
);

CREATE INDEX notices_by_visit ON notices (visit_id);
