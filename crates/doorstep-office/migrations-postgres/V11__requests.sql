-- Why: visits requested at the office and the attendance view's concerns, on PostgreSQL (store/postgres/requests.rs), the same columns as SQLite's V7, V10 and V12: each requested visit's office-only details (who asked and when, out of hours or evening, the responsible contact, the authoriser's override) and the pupils with a concern noted.
CREATE TABLE visit_requests (
    visit_id TEXT PRIMARY KEY REFERENCES visits (id),
    requested_by TEXT NOT NULL REFERENCES staff (id),
    requested_at TEXT NOT NULL,
    out_of_hours BOOLEAN NOT NULL,
    evening BOOLEAN NOT NULL,
    -- Both set when the visit is outside school hours; both NULL otherwise.
    contact_name TEXT,
    contact_phone TEXT,
    authoriser_override TEXT,
    contact_email TEXT
);

CREATE TABLE absence_concerns (
    pupil_id TEXT PRIMARY KEY REFERENCES pupils (id),
    noted_at TEXT NOT NULL,
    noted_by TEXT
);

CREATE INDEX visits_by_school_and_time ON visits (school_id, agreed_time);
CREATE INDEX visits_by_pupil ON visits (pupil_id, agreed_time);
