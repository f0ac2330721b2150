-- Why: the office's record of its school, staff, pupils, visits, enrolled phones, and every visit event, each stored once.
CREATE TABLE schools (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    office_phone TEXT NOT NULL,
    policy TEXT NOT NULL
) STRICT;

CREATE TABLE staff (
    id TEXT PRIMARY KEY,
    school_id TEXT NOT NULL REFERENCES schools (id),
    name TEXT NOT NULL,
    body TEXT NOT NULL
) STRICT;

CREATE TABLE pupils (
    id TEXT PRIMARY KEY,
    school_id TEXT NOT NULL REFERENCES schools (id),
    name TEXT NOT NULL
) STRICT;

CREATE TABLE visits (
    id TEXT PRIMARY KEY,
    school_id TEXT NOT NULL REFERENCES schools (id),
    pupil_id TEXT NOT NULL REFERENCES pupils (id),
    agreed_time TEXT NOT NULL,
    body TEXT NOT NULL,
    -- Derived by replaying the visit's events through the core lifecycle; rewritten with every new event.
    phase TEXT NOT NULL,
    state TEXT NOT NULL
) STRICT;

CREATE TABLE visit_staff (
    visit_id TEXT NOT NULL REFERENCES visits (id),
    staff_id TEXT NOT NULL REFERENCES staff (id),
    position INTEGER NOT NULL,
    PRIMARY KEY (visit_id, staff_id)
) STRICT;

CREATE INDEX visit_staff_by_staff ON visit_staff (staff_id);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    staff_id TEXT NOT NULL REFERENCES staff (id),
    token_sha256 TEXT NOT NULL UNIQUE,
    enrolled_at TEXT NOT NULL
) STRICT;

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    -- A phone's device id, or 'office' for decisions made at the office (authorisation).
    device_id TEXT NOT NULL,
    seq INTEGER NOT NULL CHECK (seq >= 1),
    visit_id TEXT NOT NULL REFERENCES visits (id),
    staff_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (device_id, seq)
) STRICT;

CREATE INDEX events_by_visit ON events (visit_id);

CREATE TRIGGER events_are_immutable BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are immutable');
END;

CREATE TRIGGER events_are_kept BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are never deleted');
END;
