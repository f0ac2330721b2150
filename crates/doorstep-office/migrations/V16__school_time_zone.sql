-- Why: each school keeps its own time zone (an IANA name), so every time a person reads is on the school's clock, not the server's; schools stored before this are in England.
ALTER TABLE schools ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'Europe/London';
