-- Why: office sign-ins on PostgreSQL (store/postgres/sign_ins.rs), the same tables as SQLite's V5: a member of staff's password kept only as an argon2 hash, and each browser's session kept only as the SHA-256 hash of its token, beside the CSRF token every form of that session must carry.
CREATE TABLE office_logins (
    staff_id TEXT PRIMARY KEY REFERENCES staff (id),
    -- An argon2id PHC string: algorithm, parameters, salt and hash together.
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE sessions (
    token_sha256 TEXT PRIMARY KEY,
    staff_id TEXT NOT NULL REFERENCES staff (id),
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE INDEX sessions_by_staff ON sessions (staff_id);
