-- Why: the office changes a visit after it was requested (declines it, withdraws its authorisation, calls it off, reschedules it, updates its risk assessment and briefing); each change is kept as a new version of the visit with who, when and the visit as it then stood, never overwritten. And a concern noted about an absent pupil keeps who noted it.
CREATE TABLE visit_versions (
    visit_id TEXT NOT NULL REFERENCES visits (id),
    -- 1 is the visit as requested; each office decision on it adds the next.
    version INTEGER NOT NULL CHECK (version >= 1),
    -- When and by whom (a staff id); NULL only for a first version whose request was not made on the office's pages.
    at TEXT,
    by TEXT,
    -- What changed, by a stable name (`versions::Change::name`).
    change TEXT NOT NULL,
    -- The reason given with a decline, a withdrawal, a call-off or an evening override; '' otherwise.
    reason TEXT NOT NULL,
    -- The visit (as the phones receive it) after this change, as JSON.
    body TEXT NOT NULL,
    -- The office's event recorded with the change, if any.
    event_id TEXT,
    PRIMARY KEY (visit_id, version)
) STRICT;

CREATE TRIGGER visit_versions_are_immutable BEFORE UPDATE ON visit_versions
BEGIN
    SELECT RAISE(ABORT, 'visit versions are immutable');
END;

CREATE TRIGGER visit_versions_are_kept BEFORE DELETE ON visit_versions
BEGIN
    SELECT RAISE(ABORT, 'visit versions are never deleted');
END;

-- Every visit already stored is its own first version: nothing could change a visit before this.
INSERT INTO visit_versions (visit_id, version, at, by, change, reason, body, event_id)
    SELECT v.id, 1, r.requested_at, r.requested_by, 'requested', '', v.body, NULL
    FROM visits v LEFT JOIN visit_requests r ON r.visit_id = v.id;

ALTER TABLE absence_concerns ADD COLUMN noted_by TEXT;
