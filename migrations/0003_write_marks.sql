-- The database's write tallies at the moments of an upgrade that bound its own writes: before
-- each restart (`before_restart`) and once the new version has started, or failed to
-- (`after_start`). A rollback counts the app's writes outside these windows as what a restore
-- takes away, and leaves the migrations' own writes out.
CREATE TABLE write_marks (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id    TEXT NOT NULL REFERENCES runs (id),
    moment    TEXT NOT NULL,              -- before_restart, after_start
    hop       TEXT NOT NULL,              -- the version being started
    taken_at  TEXT NOT NULL,
    writes    TEXT                        -- JSON; NULL when the database would not say
);
CREATE INDEX write_marks_by_run ON write_marks (run_id, id);
