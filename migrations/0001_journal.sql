-- hoist's journal: what each run did, step by step, written as it goes so that a crash leaves
-- an accurate record; and every backup, with its files' sizes and checksums.
CREATE TABLE runs (
    id            TEXT PRIMARY KEY,           -- e.g. 20261124T231500Z-3f9a
    kind          TEXT NOT NULL,              -- backup, upgrade, rollback
    project       TEXT NOT NULL,
    project_dir   TEXT NOT NULL,
    from_version  TEXT,
    to_version    TEXT,
    started_at    TEXT NOT NULL,              -- RFC 3339, UTC
    finished_at   TEXT,
    outcome       TEXT NOT NULL,              -- running, succeeded, failed, refused, rolled_back
    exit_code     INTEGER,
    pid           INTEGER NOT NULL,
    message       TEXT,                       -- the closing sentence
    summary       TEXT                        -- the JSON summary line
);
CREATE INDEX runs_by_project ON runs (project, started_at);

CREATE TABLE steps (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id        TEXT NOT NULL REFERENCES runs (id),
    name          TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    status        TEXT NOT NULL,              -- running, done, failed, skipped
    duration_ms   INTEGER,
    message       TEXT
);
CREATE INDEX steps_by_run ON steps (run_id, id);

CREATE TABLE backups (
    id                  TEXT PRIMARY KEY,     -- the backup directory's name
    run_id              TEXT NOT NULL REFERENCES runs (id),
    project             TEXT NOT NULL,
    path                TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    size_bytes          INTEGER NOT NULL,
    manifest_sha256     TEXT NOT NULL,
    app_version         TEXT,
    schema_revision     TEXT,
    schema_fingerprint  TEXT
);
CREATE INDEX backups_by_project ON backups (project, created_at);

CREATE TABLE backup_files (
    backup_id     TEXT NOT NULL REFERENCES backups (id),
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,              -- dump, archive, env, compose
    size_bytes    INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    PRIMARY KEY (backup_id, name)
);
