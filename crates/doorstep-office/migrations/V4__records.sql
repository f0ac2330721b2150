-- Why: records and reports pick a school's visits by month of agreed time; without this index every report reads every school's visits.
CREATE INDEX visits_by_school_and_time ON visits (school_id, agreed_time);
