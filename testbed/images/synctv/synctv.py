"""SyncTV, the test bed's app of runbook 003: embedded SQLx migrations on PostgreSQL.

What an upgrade tool can see of it, as the runbook describes the real one: migrations are applied
at start-up and recorded in `_sqlx_migrations` (version, description, installed_on, success,
checksum, execution_time); `/health/ready` answers 200 only once the service is ready (and 503
with the reason otherwise), `/health/live` while the process runs; `synctv db status` and
`synctv config validate --strict` are its operator commands. The JWT secret must be at least 32
bytes: a secret rotated wrongly stops every release at start-up. Some releases never become
ready, so that each row of the runbook's rollback table happens for real.

Stdlib + psycopg2 only: the image is built from a Debian rootfs with no network access.
"""

import hashlib
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

VERSION = os.environ.get("SYNCTV_RELEASE", "0.0.0")

# version -> (description, SQL). Append-only, as sqlx keeps them.
MIGRATIONS = [
    (20240101000001, "create users", "CREATE TABLE users (id bigserial PRIMARY KEY, username text NOT NULL UNIQUE, role text NOT NULL DEFAULT 'member', legacy_role integer)"),
    (20240101000002, "create rooms", "CREATE TABLE rooms (id bigserial PRIMARY KEY, name text NOT NULL, owner_id bigint NOT NULL REFERENCES users(id))"),
    (20240101000003, "create movies", "CREATE TABLE movies (id bigserial PRIMARY KEY, room_id bigint NOT NULL REFERENCES rooms(id) ON DELETE CASCADE, url text NOT NULL)"),
    # 1.1.0: additive; older releases ignore it.
    (20240601000004, "create room settings", "CREATE TABLE room_settings (room_id bigint PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE, settings jsonb NOT NULL DEFAULT '{}')"),
    # 1.2.0: irreversible; older releases read users.legacy_role.
    (20241201000005, "drop users.legacy_role", "ALTER TABLE users DROP COLUMN legacy_role"),
]

# head: last migration it ships; ready: False for a release that never becomes ready.
RELEASES = {
    "1.0.0": {"head": 20240101000003, "ready": True},
    "1.0.1": {"head": 20240101000003, "ready": False},
    "1.1.0": {"head": 20240601000004, "ready": False},
    "1.2.0": {"head": 20241201000005, "ready": False},
    "1.3.0": {"head": 20240101000003, "ready": True},
}


def log(level, line):
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {level:5} synctv: {line}", flush=True)


def release():
    info = RELEASES.get(VERSION)
    if info is None:
        log("ERROR", f"unknown release {VERSION}")
        sys.exit(2)
    return info


def validate_config():
    """`config validate --strict`: the secret must be long enough, the database named."""
    problems = []
    if len(os.environ.get("SYNCTV_JWT_SECRET", "").encode()) < 32:
        problems.append("server.jwt_secret must be at least 32 bytes")
    if not os.environ.get("DATABASE_URL"):
        problems.append("database.url is not set")
    return problems


def connect(retries=60):
    for _ in range(retries):
        try:
            return psycopg2.connect(os.environ["DATABASE_URL"])
        except psycopg2.OperationalError:
            time.sleep(1)
    log("ERROR", "cannot connect to the database")
    sys.exit(1)


def applied(cur):
    cur.execute("SELECT to_regclass('_sqlx_migrations')")
    if cur.fetchone()[0] is None:
        return []
    cur.execute("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
    return [r[0] for r in cur.fetchall()]


def migrate(conn, head):
    with conn.cursor() as cur:
        # The lock sqlx takes so that replicas do not migrate at once.
        cur.execute("SELECT pg_advisory_lock(20240101)")
        cur.execute(
            "CREATE TABLE IF NOT EXISTS _sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL, "
            "installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL, checksum bytea NOT NULL, "
            "execution_time bigint NOT NULL)"
        )
        conn.commit()
        done = applied(cur)
        unknown = [v for v in done if v > head]
        if unknown:
            log("WARN", f"database has migrations newer than this release: {unknown}")
        for version, description, sql in MIGRATIONS:
            if version > head or version in done:
                continue
            started = time.monotonic()
            cur.execute(sql)
            cur.execute(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (%s, %s, true, %s, %s)",
                (version, description, hashlib.sha384(sql.encode()).digest(), int((time.monotonic() - started) * 1e9)),
            )
            conn.commit()
            log("INFO", f"applied migration {version}/migrate {description}")
        cur.execute("SELECT pg_advisory_unlock(20240101)")
        conn.commit()


def schema_check(conn, head):
    """A release before the irreversible migration reads users.legacy_role."""
    if head >= 20241201000005:
        return
    with conn.cursor() as cur:
        try:
            cur.execute("SELECT id, username, legacy_role FROM users LIMIT 1")
        except psycopg2.Error as e:
            log("ERROR", f"schema is newer than this release: {str(e).strip()}")
            sys.exit(1)
    conn.rollback()


class Handler(BaseHTTPRequestHandler):
    ready = False

    def log_message(self, fmt, *args):
        log("INFO", "http: " + fmt % args)

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health/live":
            self.reply(200, {"status": "live", "version": VERSION})
        elif self.path == "/health/ready":
            if Handler.ready:
                self.reply(200, {"status": "ready", "version": VERSION})
            else:
                self.reply(503, {"status": "not ready", "version": VERSION, "reason": "provider registry: vendor bilibili failed to initialise"})
        elif self.path == "/":
            self.reply(200, {"name": "SyncTV", "version": VERSION})
        else:
            self.reply(404, {"error": "not found"})


def serve():
    info = release()
    log("INFO", f"SyncTV {VERSION} starting")
    problems = validate_config()
    if problems:
        for p in problems:
            log("ERROR", f"config: {p}")
        sys.exit(1)
    conn = connect()
    migrate(conn, info["head"])
    schema_check(conn, info["head"])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = ThreadingHTTPServer(("0.0.0.0", 8080), Handler)
    Handler.ready = info["ready"]
    if not info["ready"]:
        log("ERROR", "provider registry: vendor bilibili failed to initialise; staying not ready")
    log("INFO", "listening on 0.0.0.0:8080")
    server.serve_forever()


def main(argv):
    if argv[:1] in ([], ["serve"]):
        return serve()
    if argv[:2] == ["db", "status"]:
        conn = connect(retries=5)
        with conn.cursor() as cur:
            done = applied(cur)
        head = release()["head"]
        for version, description, _ in MIGRATIONS:
            if version <= head or version in done:
                print(f"{version} {'installed' if version in done else 'pending'} {description}")
        return 0
    if argv[:2] == ["config", "validate"]:
        problems = validate_config()
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        print("config is valid" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    print(f"unknown command: {' '.join(argv)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
