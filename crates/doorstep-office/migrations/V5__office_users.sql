-- Why: office staff sign in to the live board with a password (kept only as an argon2 hash) and hold a session whose token is kept only as a SHA-256 hash, beside the CSRF token every form of that session must carry.
CREATE TABLE office_logins (
    staff_id TEXT PRIMARY KEY REFERENCES staff (id),
    -- An argon2id PHC string: algorithm, parameters, salt and hash together.
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE sessions (
    token_sha256 TEXT PRIMARY KEY,
    staff_id TEXT NOT NULL REFERENCES staff (id),
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;

CREATE INDEX sessions_by_staff ON sessions (staff_id);
