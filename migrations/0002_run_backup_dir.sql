-- The backup a run goes back to (its own, or the one of the interrupted run it continued),
-- recorded as soon as it is known, so that a run killed afterwards still names it.
ALTER TABLE runs ADD COLUMN backup_dir TEXT;
