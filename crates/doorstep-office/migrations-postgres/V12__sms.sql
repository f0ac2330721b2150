-- Every text message the SMS gateway handed over, and what became of it (as the SQLite store's V15).
CREATE TABLE sms_messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at TEXT NOT NULL,
    from_number TEXT NOT NULL,
    body TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('stored', 'duplicate', 'forged', 'refused', 'unreadable')),
    detail TEXT NOT NULL,
    -- The device and event the text's reference named (absent when none could be read).
    device_id TEXT,
    event_id TEXT
);

CREATE INDEX sms_messages_by_event ON sms_messages (event_id);

-- A record of what arrived is evidence: never edited, never deleted.
CREATE FUNCTION sms_messages_are_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'recorded texts are immutable and never deleted';
END;
$$;

CREATE TRIGGER sms_messages_are_kept BEFORE UPDATE OR DELETE ON sms_messages
    FOR EACH ROW EXECUTE FUNCTION sms_messages_are_kept();
