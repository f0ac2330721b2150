-- Why: deadlines and "last heard" use the time the office trusts for each event (the phone's time corrected by its measured clock offset, never later than the office received it), and a visit's derived state is rebuilt whenever the lifecycle's rules change.
ALTER TABLE events ADD COLUMN trusted_at TEXT;

UPDATE events SET trusted_at = CASE WHEN recorded_at < received_at THEN recorded_at ELSE received_at END;

CREATE TABLE derived_state (
    -- The `lifecycle::RULES_VERSION` the stored phases and states were built with; 0 forces a rebuild.
    rules_version INTEGER NOT NULL
) STRICT;

INSERT INTO derived_state (rules_version) VALUES (0);
