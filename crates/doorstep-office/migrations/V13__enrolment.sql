-- Why: phones are enrolled with a one-time code an admin issues for one member of staff; a phone's token expires and is renewed while in use, and an admin can revoke the phone: codes (kept only as hashes), each device's tokens (current, offered, replaced) and what the office knows of each device.
CREATE TABLE enrolment_codes (
    -- SHA-256 (hex) of the code in its canonical form (`protocol::normalise_enrolment_code`).
    code_sha256 TEXT PRIMARY KEY,
    school_id TEXT NOT NULL REFERENCES schools (id),
    -- The member of staff the code is for: the phone that redeems it is theirs.
    staff_id TEXT NOT NULL REFERENCES staff (id),
    issued_by TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    -- Set once, when a phone redeems it (single use), with the device it made.
    used_at TEXT,
    device_id TEXT,
    -- Set when a newer code for the same person replaced it before it was used.
    withdrawn_at TEXT
) STRICT;

CREATE INDEX enrolment_codes_by_staff ON enrolment_codes (staff_id);

-- The token moves out of `devices` into `device_tokens` (a device has several over its life); the rest of
-- the row is kept.
CREATE TABLE devices_enrolled (
    id TEXT PRIMARY KEY,
    staff_id TEXT NOT NULL REFERENCES staff (id),
    enrolled_at TEXT NOT NULL,
    -- The admin who issued the code it redeemed; NULL for a phone enrolled before codes existed.
    enrolled_by TEXT,
    -- The last request the office accepted from it (kept to the minute).
    last_seen_at TEXT,
    revoked_at TEXT,
    revoked_by TEXT,
    -- Two phones seem to share this device's credential: when it was first seen, and why.
    clone_suspected_at TEXT,
    clone_reason TEXT
) STRICT;

CREATE TABLE device_tokens (
    -- SHA-256 (hex) of the bearer token; the token itself is never stored.
    token_sha256 TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices_enrolled (id),
    -- current: the one in use; offered: handed over in a sync answer, not yet used; replaced: a current
    -- one whose phone has since used a newer one (kept to recognise a second phone still using it).
    state TEXT NOT NULL CHECK (state IN ('current', 'offered', 'replaced')),
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    replaced_at TEXT
) STRICT;

CREATE INDEX device_tokens_by_device ON device_tokens (device_id, state);

INSERT INTO devices_enrolled (id, staff_id, enrolled_at)
    SELECT id, staff_id, enrolled_at FROM devices;

-- A phone enrolled before tokens expired gets the usual 30 days from its enrolment.
INSERT INTO device_tokens (token_sha256, device_id, state, issued_at, expires_at)
    SELECT token_sha256, id, 'current', enrolled_at,
           strftime('%Y-%m-%dT%H:%M:%S+00:00', enrolled_at, '+30 days')
    FROM devices;

DROP TABLE devices;
ALTER TABLE devices_enrolled RENAME TO devices;
