-- Why: the office's decisions on a visit on PostgreSQL (store/postgres/decisions.rs): each change the office makes to a visit after it was requested is kept as a new version (who, when, the visit as it then stood), never overwritten, as the SQLite store keeps them; version 1 is the visit as requested.
CREATE TABLE visit_versions (
    visit_id TEXT NOT NULL REFERENCES visits (id),
    version INTEGER NOT NULL CHECK (version >= 1),
    at TEXT,
    by TEXT,
    change TEXT NOT NULL,
    reason TEXT NOT NULL,
    body TEXT NOT NULL,
    event_id TEXT,
    PRIMARY KEY (visit_id, version)
);

CREATE FUNCTION visit_versions_are_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'visit versions are immutable and never deleted';
END;
$$;

CREATE TRIGGER visit_versions_are_kept BEFORE UPDATE OR DELETE ON visit_versions
    FOR EACH ROW EXECUTE FUNCTION visit_versions_are_kept();

-- Every visit already stored is its own first version.
INSERT INTO visit_versions (visit_id, version, at, by, change, reason, body, event_id)
    SELECT id, 1, NULL, NULL, 'requested', '', body, NULL FROM visits;
