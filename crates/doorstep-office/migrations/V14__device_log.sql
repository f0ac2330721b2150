-- Why: who issued an enrolment code, which phone enrolled, renewed its credential, was revoked or seemed to be cloned must be on record and stay there: an append-only log of what happened to the school's phones.
CREATE TABLE device_log (
    seq INTEGER PRIMARY KEY,
    -- When, by the office's clock (RFC 3339, UTC).
    at TEXT NOT NULL,
    school_id TEXT NOT NULL,
    -- Who: a staff id, or 'office' for what the office did or saw by itself.
    actor TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('code_issued', 'enrolled', 'renewed', 'revoked', 'clone_suspected')),
    -- The member of staff the phone (or the code) belongs to.
    staff_id TEXT NOT NULL,
    device_id TEXT,
    -- In words; never a code or a token.
    detail TEXT NOT NULL
) STRICT;

CREATE INDEX device_log_by_school ON device_log (school_id, seq);

CREATE TRIGGER device_log_is_append_only BEFORE UPDATE ON device_log
BEGIN
    SELECT RAISE(ABORT, 'the device log is append-only');
END;

CREATE TRIGGER device_log_is_kept BEFORE DELETE ON device_log
BEGIN
    SELECT RAISE(ABORT, 'device log entries are never deleted');
END;
