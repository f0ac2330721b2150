-- Why: who opened a write-up or an export, and every decision the office made, must be on record in a way nobody can quietly change: an append-only log, each entry carrying the SHA-256 of the one before, so an altered or removed entry breaks the chain at that point (`audit::verify`).
CREATE TABLE audit_log (
    -- 1, 2, 3, ... with no gaps: a missing number is a removed entry.
    seq INTEGER PRIMARY KEY CHECK (seq >= 1),
    -- When, by the office's clock (RFC 3339, UTC).
    at TEXT NOT NULL,
    -- The school it concerns; NULL for the office as a whole.
    school_id TEXT,
    -- Who: a staff id, or 'office' for steps the office took by itself.
    actor TEXT NOT NULL,
    -- What, by a stable name (`audit::Action::name`).
    action TEXT NOT NULL,
    -- Which visit, when it concerns one.
    visit_id TEXT,
    -- Which record otherwise (a report's month, an export's dates, a pupil); '' when the visit says it all.
    record TEXT NOT NULL,
    -- Anything else worth keeping, in words (never a write-up's text).
    detail TEXT NOT NULL,
    -- The SHA-256 (hex) of the entry before; 64 zeros for the first.
    prev_hash TEXT NOT NULL CHECK (length(prev_hash) = 64),
    -- The SHA-256 (hex) of this entry's fields, prev_hash included (`audit::entry_hash`).
    hash TEXT NOT NULL UNIQUE CHECK (length(hash) = 64)
) STRICT;

CREATE INDEX audit_log_by_school ON audit_log (school_id, seq);
CREATE INDEX audit_log_by_visit ON audit_log (visit_id) WHERE visit_id IS NOT NULL;

CREATE TRIGGER audit_log_is_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_log_is_kept BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit log entries are never deleted');
END;
