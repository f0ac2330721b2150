-- Why: the words a person typed into an event (a write-up, a note) leave the phone once the office has confirmed it, so events may now be changed in exactly one way: a confirmed event's body replaced, once, by the same event without its words (`redacted` from 0 to 1); every other change is still refused.
ALTER TABLE events ADD COLUMN redacted INTEGER NOT NULL DEFAULT 0 CHECK (redacted IN (0, 1));

DROP TRIGGER events_are_immutable;

CREATE TRIGGER events_are_immutable BEFORE UPDATE ON events
WHEN NOT (
    OLD.redacted = 0 AND NEW.redacted = 1
    AND NEW.id = OLD.id AND NEW.seq = OLD.seq AND NEW.visit_id = OLD.visit_id
    AND NEW.recorded_at = OLD.recorded_at AND NEW.urgent = OLD.urgent
    AND (SELECT state FROM outbox WHERE event_id = OLD.id) = 'confirmed'
)
BEGIN
    SELECT RAISE(ABORT, 'events are immutable');
END;
