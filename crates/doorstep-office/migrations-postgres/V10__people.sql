-- Why: pupils and absences as the school's MIS exports them, on PostgreSQL (store/postgres/people.rs), the same columns as SQLite's V6: each pupil's date of birth, address, family notes and medical needs, and one absence per pupil per day.
ALTER TABLE pupils ADD COLUMN date_of_birth TEXT;
ALTER TABLE pupils ADD COLUMN address_line_1 TEXT NOT NULL DEFAULT '';
ALTER TABLE pupils ADD COLUMN address_line_2 TEXT NOT NULL DEFAULT '';
ALTER TABLE pupils ADD COLUMN town TEXT NOT NULL DEFAULT '';
ALTER TABLE pupils ADD COLUMN postcode TEXT NOT NULL DEFAULT '';
ALTER TABLE pupils ADD COLUMN family_notes TEXT NOT NULL DEFAULT '';
ALTER TABLE pupils ADD COLUMN medical_needs TEXT NOT NULL DEFAULT '';

CREATE INDEX pupils_by_school ON pupils (school_id);
CREATE INDEX staff_by_school ON staff (school_id);

CREATE TABLE absences (
    pupil_id TEXT NOT NULL REFERENCES pupils (id),
    -- A calendar date, YYYY-MM-DD, so text order is date order.
    date TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    contact_made BOOLEAN NOT NULL,
    PRIMARY KEY (pupil_id, date)
);

CREATE INDEX absences_by_date ON absences (date);
