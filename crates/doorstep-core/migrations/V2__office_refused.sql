-- Why: the status line must not call a refusal "can't reach the office", so the log keeps whether the latest failed exchange was answered by the office with a refusal of the whole request (a bad or withdrawn device token, say) rather than going unanswered.
ALTER TABLE sync_status ADD COLUMN office_refused INTEGER NOT NULL DEFAULT 0 CHECK (office_refused IN (0, 1));
