"""Spectron, the test bed's app whose durable state lives in SurrealDB (runbook 000's shape).

Schema migrations are bundled in the binary and applied at start-up; applied versions are tracked
inside the database (table `migration`, one record per version). Most are additive; one is
destructive (2.0.0 moves `document.body` into `chunk` records and removes the field), and an older
release refuses to start on that schema ("the older binary may not start against the new schema").
It serves HTTP on 8080: `GET /` (the version), `GET /health`, `GET /documents` (JSON list).

Stdlib only: it speaks SurrealDB's HTTP API (`POST /sql` with Surreal-NS/Surreal-DB headers).
"""

import base64
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("SPECTRON_RELEASE", "0.0.0")
SURREAL = os.environ.get("SURREAL_ENDPOINT", "http://surrealdb:8000")
AUTH = base64.b64encode(
    f"{os.environ.get('SURREAL_USER', 'root')}:{os.environ.get('SURREAL_PASS', 'root')}".encode()
).decode()
NS = os.environ.get("SURREAL_NS", "spectron")
DB = os.environ.get("SURREAL_DB", "main")

# version -> (description, SurrealQL). Append-only.
MIGRATIONS = [
    (1, "create documents", "DEFINE TABLE document SCHEMALESS; DEFINE FIELD title ON document TYPE string; DEFINE FIELD body ON document TYPE string;"),
    (2, "create tags", "DEFINE TABLE tag SCHEMALESS; DEFINE FIELD name ON tag TYPE string;"),
    # 2.0.0: destructive. The bodies move to chunks and the field is removed.
    (3, "split bodies into chunks", "DEFINE TABLE chunk SCHEMALESS; FOR $d IN (SELECT id, body FROM document) { CREATE chunk SET document = $d.id, text = $d.body; }; REMOVE FIELD body ON document; UPDATE document UNSET body;"),
]

# What each release ships: its migration head, the fields it needs, and how it breaks.
RELEASES = {
    "1.0.0": {"head": 1, "needs": "body"},
    "1.1.0": {"head": 2, "needs": "body"},
    # Migrates destructively, then fails to start: its new indexer cannot open.
    "2.0.0": {"head": 3, "needs": None, "broken": "indexer"},
}


def log(line):
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} spectron {line}", flush=True)


def sql(text):
    request = urllib.request.Request(
        f"{SURREAL}/sql",
        data=text.encode(),
        method="POST",
        headers={"Authorization": f"Basic {AUTH}", "Surreal-NS": NS, "Surreal-DB": DB, "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        results = json.load(answer)
    for r in results:
        if r.get("status") != "OK":
            raise RuntimeError(r.get("result"))
    return [r.get("result") for r in results]


def wait_for_database():
    for _ in range(60):
        try:
            sql("RETURN 1")
            return
        except (OSError, urllib.error.URLError):
            time.sleep(1)
    log("ERROR cannot reach SurrealDB at " + SURREAL)
    sys.exit(1)


def applied():
    try:
        return sorted(sql("SELECT VALUE version FROM migration")[0] or [])
    except RuntimeError:
        return []


def migrate(release):
    done = applied()
    known = {v for v, _, _ in MIGRATIONS}
    newer = [v for v in done if v not in known or v > release["head"]]
    if newer:
        log(f"WARN the database has migrations this release does not know: {newer}")
    for version, description, text in MIGRATIONS:
        if version > release["head"] or version in done:
            continue
        log(f"INFO applying migration {version}: {description}")
        sql(f"BEGIN; {text} CREATE migration SET version = {version}, name = {json.dumps(description)}; COMMIT;")
    log(f"INFO migrations complete (at {max(applied() or [0])})")


def schema_check(release):
    """An older binary reads `document.body`; on the reshaped schema it cannot start."""
    need = release.get("needs")
    if not need:
        return
    fields = (sql("INFO FOR TABLE document")[0] or {}).get("fields", {})
    if need not in fields:
        log(f"ERROR schema is newer than this binary: field document.{need} is gone (migrations {applied()}); "
            "restore the database backup taken before the upgrade")
        sys.exit(1)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        log("INFO " + fmt % args)

    def reply(self, status, body, kind="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/":
            self.reply(200, f"Spectron {VERSION}\n", "text/plain")
        elif self.path == "/health":
            try:
                sql("RETURN 1")
                self.reply(200, json.dumps({"status": "ok", "version": VERSION}))
            except Exception as error:  # noqa: BLE001 - the health page says why
                self.reply(503, json.dumps({"status": "database unreachable", "error": str(error)}))
        elif self.path == "/documents":
            self.reply(200, json.dumps(sql("SELECT id, title FROM document ORDER BY id")[0]))
        else:
            self.reply(404, "not found\n", "text/plain")


def main():
    release = RELEASES.get(VERSION)
    if release is None:
        log(f"ERROR unknown release {VERSION}")
        sys.exit(2)
    log(f"INFO Spectron {VERSION} starting")
    wait_for_database()
    migrate(release)
    schema_check(release)
    if release.get("broken") == "indexer":
        log("ERROR indexer: cannot open the vector index (record type mismatch); refusing to serve")
        sys.exit(1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = ThreadingHTTPServer(("0.0.0.0", 8080), Handler)
    log("INFO serving on :8080")
    server.serve_forever()


if __name__ == "__main__":
    main()
