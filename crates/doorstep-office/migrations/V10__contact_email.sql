-- Why: the out-of-hours responsible contact is told of the visit's alarms: an email address (optional) is kept beside their name and phone; with one, the request also adds a notification target for that visit alone (`notification_targets.visit_id`).
ALTER TABLE visit_requests ADD COLUMN contact_email TEXT;
