"""Specivo, the fixture app of hoist's test bed.

It behaves like the real self-hosted app the runbooks describe, in the ways an upgrade tool can see:
the api applies alembic-style migrations on start and logs them as alembic does, serves HTTP on
port 8000 (`GET /` -> 302 /login, `/health` -> 200 with the version), writes user files in /data;
the worker and beat processes share the image. Each release differs only in RELEASES below, and
some releases are deliberately broken so that hoist's failure paths can be tested for real.

Stdlib + psycopg2 only: the image is built from a Debian rootfs with no network access.
"""

import json
import os
import signal
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

VERSION = os.environ.get("SPECIVO_RELEASE", "0.0.0")
DATA = os.environ.get("SPECIVO_DATA", "/data")

# revision -> (description, SQL). A chain 0001 -> 0002 -> ... as alembic keeps it.
MIGRATIONS = [
    ("0001", "create users", "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"),
    ("0002", "create projects", "CREATE TABLE projects (id serial PRIMARY KEY, key text NOT NULL UNIQUE, name text NOT NULL)"),
    ("0003", "create issues", "CREATE TABLE issues (id serial PRIMARY KEY, project_id integer NOT NULL REFERENCES projects(id), title text NOT NULL, body text NOT NULL DEFAULT '', status text NOT NULL DEFAULT 'open', legacy_priority integer, created_at timestamptz NOT NULL DEFAULT now())"),
    ("0004", "create comments", "CREATE TABLE comments (id serial PRIMARY KEY, issue_id integer NOT NULL REFERENCES issues(id) ON DELETE CASCADE, author_id integer NOT NULL REFERENCES users(id), body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"),
    ("0005", "create wiki pages", "CREATE TABLE wiki_pages (id serial PRIMARY KEY, project_id integer NOT NULL REFERENCES projects(id), slug text NOT NULL, body text NOT NULL)"),
    ("0006", "add users.locale", "ALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT 'en'"),
    ("0007", "index issues by status", "CREATE INDEX ix_issues_status ON issues (status)"),
    ("0008", "create labels", "CREATE TABLE labels (id serial PRIMARY KEY, project_id integer NOT NULL REFERENCES projects(id), name text NOT NULL)"),
    ("0009", "create issue labels", "CREATE TABLE issue_labels (issue_id integer NOT NULL REFERENCES issues(id) ON DELETE CASCADE, label_id integer NOT NULL REFERENCES labels(id), PRIMARY KEY (issue_id, label_id))"),
    ("0010", "create attachments", "CREATE TABLE attachments (id serial PRIMARY KEY, issue_id integer NOT NULL REFERENCES issues(id) ON DELETE CASCADE, path text NOT NULL, size bigint NOT NULL)"),
    ("0011", "index comments by issue", "CREATE INDEX ix_comments_issue ON comments (issue_id)"),
    ("0012", "add issues.updated_at", "ALTER TABLE issues ADD COLUMN updated_at timestamptz"),
    ("0013", "create audit log", "CREATE TABLE audit_log (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), actor_id integer, action text NOT NULL)"),
    ("0014", "add wiki history", "CREATE TABLE wiki_history (id serial PRIMARY KEY, page_id integer NOT NULL REFERENCES wiki_pages(id) ON DELETE CASCADE, body text NOT NULL)"),
    ("0015", "add users.is_admin", "ALTER TABLE users ADD COLUMN is_admin boolean NOT NULL DEFAULT false"),
    ("0016", "create api tokens", "CREATE TABLE api_tokens (id serial PRIMARY KEY, user_id integer NOT NULL REFERENCES users(id), token_hash text NOT NULL)"),
    ("0017", "index audit log", "CREATE INDEX ix_audit_at ON audit_log (at)"),
    ("0018", "add projects.description", "ALTER TABLE projects ADD COLUMN description text NOT NULL DEFAULT ''"),
    ("0019", "create webhooks", "CREATE TABLE webhooks (id serial PRIMARY KEY, project_id integer NOT NULL REFERENCES projects(id), url text NOT NULL)"),
    ("0020", "add issues.search_vector", "ALTER TABLE issues ADD COLUMN search_vector tsvector"),
    # 0.1.11: additive.
    ("0021", "add issue metadata", "ALTER TABLE issues ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'; CREATE TABLE saved_searches (id serial PRIMARY KEY, user_id integer NOT NULL REFERENCES users(id), query text NOT NULL)"),
    # 0.1.12: destructive (the dropped column's data is gone; the data dir format is rewritten too).
    ("0022", "drop issues.legacy_priority", "ALTER TABLE issues DROP COLUMN legacy_priority"),
    # 0.1.14: 0023 applies, 0024 fails half way through the upgrade.
    ("0023", "create notifications", "CREATE TABLE notifications (id serial PRIMARY KEY, user_id integer NOT NULL REFERENCES users(id), body text NOT NULL)"),
    ("0024", "move comments to threads", "ALTER TABLE comments ADD COLUMN thread_id integer; UPDATE comments SET thread_id = threads.id FROM threads WHERE threads.issue_id = comments.issue_id"),
]

# What each release ships: its migration head, the data dir format it writes, and how it breaks.
RELEASES = {
    "0.1.9": {"head": "0020", "data_format": 1},
    "0.1.10": {"head": "0020", "data_format": 1},
    "0.1.11": {"head": "0021", "data_format": 1},
    "0.1.12": {"head": "0022", "data_format": 2},
    "0.1.13": {"head": "0022", "data_format": 2, "broken": True},
    "0.1.14": {"head": "0024", "data_format": 2},
}


def log(line):
    print(line, flush=True)


def release():
    info = RELEASES.get(VERSION)
    if info is None:
        log(f"FATAL: unknown release {VERSION}")
        sys.exit(2)
    return info


def connect(retries=30):
    url = os.environ["DATABASE_URL"]
    for attempt in range(retries):
        try:
            return psycopg2.connect(url, connect_timeout=3)
        except psycopg2.OperationalError as err:
            if attempt == retries - 1:
                raise
            log(f"WARNING: database not ready ({str(err).strip()}), retrying")
            time.sleep(1)


def current_revision(cur):
    cur.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL")
    if not cur.fetchone()[0]:
        return None
    cur.execute("SELECT version_num FROM alembic_version")
    row = cur.fetchone()
    return row[0] if row else None


def migrate(conn):
    """alembic upgrade head, one transaction per migration (so a failure leaves the ones before it applied)."""
    head = release()["head"]
    chain = [m[0] for m in MIGRATIONS]
    target = chain.index(head)
    log("Running database migrations...")
    log("INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.")
    log("INFO  [alembic.runtime.migration] Will assume transactional DDL.")
    cur = conn.cursor()
    cur.execute("SELECT pg_advisory_lock(4242)")
    conn.commit()
    current = current_revision(cur)
    fresh = current is None
    if fresh:
        cur.execute("CREATE TABLE alembic_version (version_num varchar(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))")
        conn.commit()
        start = 0
    elif current not in chain[: target + 1]:
        # What alembic says when the database is ahead of the code (a newer release migrated it).
        log(f"ERROR [alembic.util.messaging] Can't locate revision identified by '{current}'")
        log(f"FAILED: Can't locate revision identified by '{current}'")
        sys.exit(1)
    else:
        start = chain.index(current) + 1
    previous = current
    for rev, desc, sql in MIGRATIONS[start : target + 1]:
        log(f"INFO  [alembic.runtime.migration] Running upgrade {previous or ''} -> {rev}, {desc}")
        try:
            cur.execute(sql)
            if previous is None:
                cur.execute("INSERT INTO alembic_version (version_num) VALUES (%s)", (rev,))
            else:
                cur.execute("UPDATE alembic_version SET version_num = %s", (rev,))
            conn.commit()
        except psycopg2.Error:
            conn.rollback()
            traceback.print_exc()
            log(f"ERROR [alembic.util.messaging] Migration {rev} failed; database left at revision {previous}")
            sys.exit(1)
        previous = rev
    if fresh:
        seed(conn)
    cur.execute("SELECT pg_advisory_unlock(4242)")
    conn.commit()


def seed(conn):
    """A first install creates a workspace with some content, as the real installer's demo does."""
    cur = conn.cursor()
    for i in range(1, 4):
        cur.execute("INSERT INTO users (email, name) VALUES (%s, %s)", (f"user{i}@example.test", f"User {i}"))
    cur.execute("INSERT INTO projects (key, name) VALUES ('OPS', 'Operations'), ('WEB', 'Website')")
    # A fresh install at 0.1.12 or later has no legacy_priority column (0022 dropped it).
    cur.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 'issues' AND column_name = 'legacy_priority'")
    legacy = cur.fetchone()[0] > 0
    for i in range(1, 41):
        if legacy:
            cur.execute(
                "INSERT INTO issues (project_id, title, body, legacy_priority) VALUES (%s, %s, %s, %s)",
                (1 + i % 2, f"Issue {i}", f"Body of issue {i}", i % 4),
            )
        else:
            cur.execute(
                "INSERT INTO issues (project_id, title, body) VALUES (%s, %s, %s)",
                (1 + i % 2, f"Issue {i}", f"Body of issue {i}"),
            )
    for i in range(1, 121):
        cur.execute("INSERT INTO comments (issue_id, author_id, body) VALUES (%s, %s, %s)", (1 + i % 40, 1 + i % 3, f"Comment {i}"))
    for i in range(1, 6):
        cur.execute("INSERT INTO wiki_pages (project_id, slug, body) VALUES (1, %s, %s)", (f"page-{i}", f"Wiki page {i}"))
    conn.commit()
    log("INFO  [specivo.setup] Created the initial workspace (3 users, 40 issues, 120 comments)")


def data_format_check():
    """The data dir carries a format number; a release refuses a format newer than it knows, and
    0.1.12 rewrites format 1 into format 2 (so going back needs the data archive restored)."""
    want = release()["data_format"]
    meta = os.path.join(DATA, "meta")
    os.makedirs(meta, exist_ok=True)
    path = os.path.join(meta, "format")
    have = int(open(path).read().strip()) if os.path.exists(path) else want
    if have > want:
        log(f"ERROR [specivo.storage] Data directory format {have} is newer than this release understands ({want})")
        sys.exit(1)
    if have < want:
        log(f"INFO  [specivo.storage] Rewriting data directory from format {have} to {want}")
        index = os.path.join(DATA, "uploads", "index.json")
        if os.path.exists(index):
            entries = json.load(open(index))
            tmp = index + ".tmp"
            with open(tmp, "w") as out:
                json.dump({"format": want, "files": entries}, out)
            os.replace(tmp, index)
    with open(path + ".tmp", "w") as out:
        out.write(f"{want}\n")
    os.replace(path + ".tmp", path)


class Handler(BaseHTTPRequestHandler):
    server_version = "specivo"

    def log_message(self, fmt, *args):
        log(f'INFO:     {self.client_address[0]} - "{self.requestline}" {args[1] if len(args) > 1 else ""}')

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/":
            self.send(302, headers=[("Location", "/login")])
        elif self.path == "/login":
            self.send(200, b"<html><body><h1>Sign in to Specivo</h1></body></html>", [("Content-Type", "text/html")])
        elif self.path == "/health":
            body = json.dumps({"status": "ok", "version": VERSION}).encode()
            self.send(200, body, [("Content-Type", "application/json")])
        else:
            self.send(404, b"not found")

    def do_POST(self):
        # Creates an issue and an uploaded file: how tests write "new data" the way a user would.
        if self.path != "/api/issues":
            self.send(404, b"not found")
            return
        length = int(self.headers.get("Content-Length", "0"))
        title = self.rfile.read(length).decode() or "New issue"
        conn = connect(retries=1)
        cur = conn.cursor()
        cur.execute("INSERT INTO issues (project_id, title) VALUES (1, %s) RETURNING id", (title,))
        issue_id = cur.fetchone()[0]
        conn.commit()
        conn.close()
        os.makedirs(os.path.join(DATA, "uploads"), exist_ok=True)
        with open(os.path.join(DATA, "uploads", f"issue-{issue_id}.txt"), "w") as out:
            out.write(title)
        self.send(201, json.dumps({"id": issue_id}).encode(), [("Content-Type", "application/json")])


def serve():
    conn = connect()
    migrate(conn)
    conn.close()
    data_format_check()
    log("INFO:     Waiting for application startup.")
    if release().get("broken"):
        time.sleep(1)
        log("Traceback (most recent call last):")
        log('  File "/app/specivo/main.py", line 41, in <module>')
        log("    from specivo.search import SearchIndex")
        log("ImportError: cannot import name 'SearchIndex' from 'specivo.search' (/app/specivo/search.py)")
        sys.exit(3)
    httpd = ThreadingHTTPServer(("0.0.0.0", 8000), Handler)
    httpd.daemon_threads = True
    log("INFO:     Application startup complete.")
    log("INFO:     Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)")
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    signal.pause()


def loop(name, line):
    log(f"{name}: ready (specivo {VERSION})")
    os.makedirs(os.path.join(DATA, name), exist_ok=True)
    n = 0
    while True:
        n += 1
        if name == "worker":
            with open(os.path.join(DATA, name, "heartbeat"), "w") as out:
                out.write(f"{n}\n")
        log(line.format(n=n))
        time.sleep(5)


def stop(signum, _frame):
    # PID 1 in a container gets no default SIGTERM handling: exit promptly, as real servers do.
    log(f"INFO:     Shutting down (signal {signum})")
    sys.exit(0)


def main():
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    release()
    if command == "serve":
        serve()
    elif command == "worker":
        loop("worker", "[tasks] Task specivo.tasks.index_issues[{n}] succeeded")
    elif command == "beat":
        loop("beat", "[beat] Scheduler: Sending due task refresh-search ({n})")
    else:
        log(f"unknown command {command}")
        sys.exit(2)


if __name__ == "__main__":
    main()
