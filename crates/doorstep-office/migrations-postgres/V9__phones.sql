-- Why: the school's phones on PostgreSQL (store/postgres/phones.rs), the same tables as SQLite's V13 and V14: one-time enrolment codes (kept only as hashes), each phone and its tokens (current, offered, replaced; kept only as hashes), and the append-only log of what happened to them.
CREATE TABLE enrolment_codes (
    -- SHA-256 (hex) of the code in its canonical form (`protocol::normalise_enrolment_code`).
    code_sha256 TEXT PRIMARY KEY,
    school_id TEXT NOT NULL REFERENCES schools (id),
    staff_id TEXT NOT NULL REFERENCES staff (id),
    issued_by TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    device_id TEXT,
    withdrawn_at TEXT
);

CREATE INDEX enrolment_codes_by_staff ON enrolment_codes (staff_id);
CREATE INDEX enrolment_codes_by_school ON enrolment_codes (school_id);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    staff_id TEXT NOT NULL REFERENCES staff (id),
    enrolled_at TEXT NOT NULL,
    enrolled_by TEXT,
    last_seen_at TEXT,
    revoked_at TEXT,
    revoked_by TEXT,
    clone_suspected_at TEXT,
    clone_reason TEXT
);

CREATE INDEX devices_by_staff ON devices (staff_id);

CREATE TABLE device_tokens (
    token_sha256 TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id),
    state TEXT NOT NULL CHECK (state IN ('current', 'offered', 'replaced')),
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    replaced_at TEXT
);

CREATE INDEX device_tokens_by_device ON device_tokens (device_id, state);

CREATE TABLE device_log (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TEXT NOT NULL,
    school_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('code_issued', 'enrolled', 'renewed', 'revoked', 'clone_suspected')),
    staff_id TEXT NOT NULL,
    device_id TEXT,
    detail TEXT NOT NULL
);

CREATE INDEX device_log_by_school ON device_log (school_id, seq);

CREATE FUNCTION device_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the device log is append-only';
END;
$$;

CREATE TRIGGER device_log_is_kept BEFORE UPDATE OR DELETE ON device_log
    FOR EACH ROW EXECUTE FUNCTION device_log_is_append_only();
