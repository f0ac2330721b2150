-- Why: admins import pupils from the school's MIS (date of birth, address, family notes, medical needs, for the visit request and briefing) and daily absences (for the attendance view's day-3 rule), re-importable without duplicates.
ALTER TABLE pupils ADD COLUMN date_of_birth TEXT;
ALTER TABLE pupils ADD COLUMN address_line_1 TEXT NOT NULL DEFAULT '';
ALTER TABLE pupils ADD COLUMN address_line_2 TEXT NOT NULL DEFAULT '';
ALTER TABLE pupils ADD COLUMN town TEXT NOT NULL DEFAULT '';
ALTER TABLE pupils ADD COLUMN postcode TEXT NOT NULL DEFAULT '';
ALTER TABLE pupils ADD COLUMN family_notes TEXT NOT NULL DEFAULT '';
ALTER TABLE pupils ADD COLUMN medical_needs TEXT NOT NULL DEFAULT '';

CREATE INDEX pupils_by_school ON pupils (school_id);

CREATE TABLE absences (
    pupil_id TEXT NOT NULL REFERENCES pupils (id),
    -- A calendar date, YYYY-MM-DD, so text order is date order.
    date TEXT NOT NULL,
    -- The MIS's attendance code for the absence (for example N: no reason yet given).
    reason_code TEXT NOT NULL,
    contact_made INTEGER NOT NULL CHECK (contact_made IN (0, 1)),
    -- One absence per pupil per day: importing the same day again updates it.
    PRIMARY KEY (pupil_id, date)
) STRICT;

CREATE INDEX absences_by_date ON absences (date);
