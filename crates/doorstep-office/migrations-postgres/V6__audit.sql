-- Why: the audit log on PostgreSQL (store/postgres/audit.rs), as the SQLite store keeps it: append-only, each entry carrying the SHA-256 of the one before, numbered 1, 2, 3, ... with no gaps, so an entry changed or removed breaks the chain at that point. Offices sharing the database append one at a time, under one advisory lock (7303), so the chain stays one line.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY CHECK (seq >= 1),
    -- When, by the office's clock (RFC 3339 to the nanosecond, UTC): the hashed text.
    at TEXT NOT NULL,
    school_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    visit_id TEXT,
    record TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL CHECK (length(prev_hash) = 64),
    hash TEXT NOT NULL UNIQUE CHECK (length(hash) = 64)
);

CREATE INDEX audit_log_by_school ON audit_log (school_id, seq);
CREATE INDEX audit_log_by_visit ON audit_log (visit_id) WHERE visit_id IS NOT NULL;

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: entries are never changed or deleted';
END;
$$;

CREATE TRIGGER audit_log_is_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
