-- Why: a requested visit carries office-only details the phones do not need (who asked, the responsible contact who checks on staff outside school hours, the authoriser's override of an evening visit the policy advises against); and the attendance view reads absences, whose real table comes with the admin pages (V6), so it is created here only if missing.
CREATE TABLE visit_requests (
    visit_id TEXT PRIMARY KEY REFERENCES visits (id),
    requested_by TEXT NOT NULL REFERENCES staff (id),
    requested_at TEXT NOT NULL,
    out_of_hours INTEGER NOT NULL CHECK (out_of_hours IN (0, 1)),
    evening INTEGER NOT NULL CHECK (evening IN (0, 1)),
    -- Both set when the visit is outside school hours; both NULL otherwise.
    contact_name TEXT,
    contact_phone TEXT,
    -- Set at authorisation of an evening visit the policy advises against: the authoriser's reason.
    authoriser_override TEXT
) STRICT;

-- The admin branch's migration 0006 owns this table; IF NOT EXISTS keeps the two compatible whichever lands first.
CREATE TABLE IF NOT EXISTS absences (
    pupil_id TEXT NOT NULL REFERENCES pupils (id),
    date TEXT NOT NULL,
    reason_code TEXT NOT NULL DEFAULT '',
    contact_made INTEGER NOT NULL DEFAULT 0
);

-- A pupil the school has a concern about: their visit is due on the policy's concern day (day 1), not day 3.
CREATE TABLE absence_concerns (
    pupil_id TEXT PRIMARY KEY REFERENCES pupils (id),
    noted_at TEXT NOT NULL
) STRICT;
