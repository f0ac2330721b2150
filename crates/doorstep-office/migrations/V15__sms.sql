-- Why: every text message the SMS gateway hands the office, with what became of it (stored, duplicate, forged,
-- refused, unreadable), so a forged or altered alert is on record and an alert that came by text can be traced.
CREATE TABLE sms_messages (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    from_number TEXT NOT NULL,
    body TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('stored', 'duplicate', 'forged', 'refused', 'unreadable')),
    detail TEXT NOT NULL,
    -- The device and event the text's reference named (absent when none could be read).
    device_id TEXT,
    event_id TEXT
) STRICT;

CREATE INDEX sms_messages_by_event ON sms_messages (event_id);

-- A record of what arrived is evidence: never edited, never deleted.
CREATE TRIGGER sms_messages_are_immutable BEFORE UPDATE ON sms_messages
BEGIN
    SELECT RAISE(ABORT, 'recorded texts are immutable');
END;

CREATE TRIGGER sms_messages_are_kept BEFORE DELETE ON sms_messages
BEGIN
    SELECT RAISE(ABORT, 'recorded texts are never deleted');
END;
