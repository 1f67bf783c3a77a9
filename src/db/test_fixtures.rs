//! Each migration framework's table as the framework creates it, with rows, and what the probe
//! must read from it. Portable SQL (SQLite, PostgreSQL after `BLOB` → `BYTEA`, MySQL/MariaDB).
//! Shared by the unit tests (SQLite) and `tests/db_probe.rs` (servers), so it names frameworks
//! by `MigrationFramework::name()` and uses nothing of the crate.
#![allow(dead_code)]

pub struct Fixture {
    /// `MigrationFramework::name()`.
    pub framework: &'static str,
    pub statements: &'static [&'static str],
    pub revision: &'static str,
    pub applied: u64,
    pub dirty: bool,
}

pub const FIXTURES: &[Fixture] = &[
    Fixture {
        framework: "alembic",
        statements: &[
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
            // Two heads (branches not merged yet): both are the revision.
            "INSERT INTO alembic_version VALUES ('e3f1a9c2b7d4'), ('0a1b2c3d4e5f')",
        ],
        revision: "0a1b2c3d4e5f,e3f1a9c2b7d4",
        applied: 2,
        dirty: false,
    },
    Fixture {
        framework: "sqlx",
        statements: &[
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMP NULL, success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)",
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (20240101000000, 'init', TRUE, 'x', 1), (20240202000000, 'more', TRUE, 'x', 1)",
        ],
        revision: "20240202000000",
        applied: 2,
        dirty: false,
    },
    Fixture {
        framework: "sqlx",
        statements: &[
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMP NULL, success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)",
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (20240101000000, 'init', TRUE, 'x', 1), (20240202000000, 'more', TRUE, 'x', 1), (20240303000000, 'broken', FALSE, 'x', 1)",
        ],
        revision: "20240202000000",
        applied: 2,
        dirty: true,
    },
    Fixture {
        framework: "django",
        statements: &[
            "CREATE TABLE django_migrations (id INTEGER PRIMARY KEY, app VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, applied TIMESTAMP NULL)",
            "INSERT INTO django_migrations (id, app, name) VALUES (1, 'contenttypes', '0001_initial'), (2, 'auth', '0001_initial'), (3, 'blog', '0002_add_tags')",
        ],
        revision: "blog.0002_add_tags",
        applied: 3,
        dirty: false,
    },
    Fixture {
        framework: "rails",
        statements: &[
            "CREATE TABLE schema_migrations (version VARCHAR(255) NOT NULL PRIMARY KEY)",
            "INSERT INTO schema_migrations VALUES ('20240101120000'), ('20240301090000'), ('20231231000000')",
        ],
        revision: "20240301090000",
        applied: 3,
        dirty: false,
    },
    Fixture {
        framework: "rails",
        statements: &[
            "CREATE TABLE schema_migrations (version VARCHAR(255) NOT NULL PRIMARY KEY)",
            // Old Rails numbered migrations: 10 is after 9.
            "INSERT INTO schema_migrations VALUES ('1'), ('9'), ('10')",
        ],
        revision: "10",
        applied: 3,
        dirty: false,
    },
    Fixture {
        framework: "golang-migrate",
        statements: &[
            "CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL)",
            "INSERT INTO schema_migrations VALUES (7, FALSE)",
        ],
        revision: "7",
        applied: 1,
        dirty: false,
    },
    Fixture {
        framework: "golang-migrate",
        statements: &[
            "CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL)",
            "INSERT INTO schema_migrations VALUES (8, TRUE)",
        ],
        revision: "8 (dirty)",
        applied: 1,
        dirty: true,
    },
    Fixture {
        framework: "flyway",
        statements: &[
            "CREATE TABLE flyway_schema_history (installed_rank INT NOT NULL PRIMARY KEY, version VARCHAR(50), description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, checksum INT, installed_by VARCHAR(100) NOT NULL, installed_on TIMESTAMP NULL, execution_time INT NOT NULL, success BOOLEAN NOT NULL)",
            "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, installed_by, execution_time, success) VALUES \
             (1, '1', 'init', 'SQL', 'V1__init.sql', 'app', 1, TRUE), \
             (2, '1.1', 'more', 'SQL', 'V1_1__more.sql', 'app', 1, TRUE), \
             (3, NULL, 'views', 'SQL', 'R__views.sql', 'app', 1, TRUE), \
             (4, '1.2', 'broken', 'SQL', 'V1_2__broken.sql', 'app', 1, FALSE)",
        ],
        revision: "1.1",
        applied: 3,
        dirty: true,
    },
    Fixture {
        framework: "prisma",
        statements: &[
            "CREATE TABLE _prisma_migrations (id VARCHAR(36) PRIMARY KEY, checksum VARCHAR(64) NOT NULL, finished_at TIMESTAMP NULL, migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at TIMESTAMP NULL, started_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, applied_steps_count INTEGER NOT NULL DEFAULT 0)",
            "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name) VALUES \
             ('a', 'c', '2024-01-01 00:00:00', '20240101000000_init'), \
             ('b', 'c', '2024-02-01 00:00:00', '20240201000000_tags')",
        ],
        revision: "20240201000000_tags",
        applied: 2,
        dirty: false,
    },
    Fixture {
        framework: "knex",
        statements: &[
            "CREATE TABLE knex_migrations (id INTEGER PRIMARY KEY, name VARCHAR(255), batch INTEGER, migration_time TIMESTAMP NULL)",
            "CREATE TABLE knex_migrations_lock (id INTEGER PRIMARY KEY, is_locked INTEGER)",
            "INSERT INTO knex_migrations (id, name, batch) VALUES (1, '20240101_init.js', 1), (2, '20240201_more.js', 2)",
        ],
        revision: "20240201_more.js",
        applied: 2,
        dirty: false,
    },
    Fixture {
        framework: "diesel",
        statements: &[
            "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('20240301090000'), ('20240101120000')",
        ],
        revision: "20240301090000",
        applied: 2,
        dirty: false,
    },
    Fixture {
        framework: "laravel",
        statements: &[
            "CREATE TABLE migrations (id INTEGER PRIMARY KEY, migration VARCHAR(255) NOT NULL, batch INTEGER NOT NULL)",
            "INSERT INTO migrations VALUES (1, '2014_10_12_000000_create_users_table', 1), (2, '2024_01_01_000000_add_tags', 2)",
        ],
        revision: "2024_01_01_000000_add_tags",
        applied: 2,
        dirty: false,
    },
];

/// The app's own table, in every fixture database: 3 rows.
pub const APP_TABLE: &[&str] = &[
    "CREATE TABLE issues (id INTEGER PRIMARY KEY, title VARCHAR(200) NOT NULL)",
    "INSERT INTO issues (id, title) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
];
