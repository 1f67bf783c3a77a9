"""Rooms, the test bed's realtime room server (the shape of runbook 002).

Clients connect to /ws/<room> (WebSocket), send `hello` and get a `welcome` with capabilities;
every later message is kept in the room's history on disk. GET /health/ready says it is ready,
GET /metrics serves Prometheus text, and `roomctl verify-replay --all` (an operator command)
replays every stored room and compares its hash. Each release differs only in RELEASES below,
and some are broken in ways only a protocol-aware check sees: the HTTP answers stay fine.

Stdlib only: the image is built from a Debian rootfs with no network access.
"""

import base64
import hashlib
import json
import os
import signal
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("ROOMS_RELEASE", "0.0.0")
DATA = os.environ.get("ROOMS_DATA", "/data")
PORT = int(os.environ.get("ROOMS_PORT", "8080"))
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# What each release does: the storage format it writes, and how it breaks.
RELEASES = {
    "1.0.0": {"format": 1},
    # Storage-impacting: rewrites every room into format 2, which 1.0.0 refuses to start on.
    "1.1.0": {"format": 2},
    # The releases after it keep format 2, and each is broken in a way HTTP does not show.
    # Refuses every client's hello (close code 4002); /health/ready still answers 200.
    "1.2.0": {"format": 2, "refuse_hello": True},
    # Serves everything, but its sessions crash: close code 1011 counted twice a second.
    "1.3.0": {"format": 2, "crashing_sessions": True},
    # Replays rooms with a changed hash: `roomctl verify-replay` finds every room corrupt.
    "1.4.0": {"format": 2, "replay_salt": "1.4"},
    # Good for its first 12 seconds, then its sessions crash as 1.3.0's do: only a window of
    # observation after the checks sees it.
    "1.5.0": {"format": 2, "crashing_sessions": True, "crash_after": 12},
}

LOCK = threading.Lock()
METRICS = {"connections": 0, "errors": 0, "closes": {}}


def log(line):
    print(line, flush=True)


def release():
    r = RELEASES.get(VERSION)
    if r is None:
        log(f"unknown release {VERSION}")
        sys.exit(2)
    return r


def rooms_dir():
    return os.path.join(DATA, "rooms")


def history_hash(history, salt=""):
    return hashlib.sha256((salt + json.dumps(history)).encode()).hexdigest()


def room_path(room):
    return os.path.join(rooms_dir(), f"{room}.json")


def load(room):
    path = room_path(room)
    if not os.path.exists(path):
        return {"format": release()["format"], "history": [], "hash": history_hash([])}
    return json.load(open(path))


def save(room, doc):
    os.makedirs(rooms_dir(), exist_ok=True)
    tmp = room_path(room) + ".tmp"
    with open(tmp, "w") as out:
        json.dump(doc, out)
    os.replace(tmp, room_path(room))


def storage_check():
    """A release refuses rooms stored in a newer format than it knows, and rewrites older ones."""
    want = release()["format"]
    os.makedirs(rooms_dir(), exist_ok=True)
    for name in sorted(os.listdir(rooms_dir())):
        if not name.endswith(".json"):
            continue
        room = name[:-5]
        doc = load(room)
        if doc["format"] > want:
            log(f"FATAL storage: room {room} is stored in format {doc['format']}, newer than this release understands ({want})")
            sys.exit(1)
        if doc["format"] < want:
            log(f"storage: rewriting room {room} from format {doc['format']} to {want}")
            doc["format"] = want
            save(room, doc)
    if not os.listdir(rooms_dir()):
        history = ["created"]
        save("lobby", {"format": want, "history": history, "hash": history_hash(history)})


def count_close(code):
    with LOCK:
        METRICS["closes"][code] = METRICS["closes"].get(code, 0) + 1


def metrics_text():
    with LOCK:
        lines = [
            "# HELP rooms_build_info The running release.",
            "# TYPE rooms_build_info gauge",
            f'rooms_build_info{{version="{VERSION}"}} 1',
            "# TYPE rooms_connections_total counter",
            f"rooms_connections_total {METRICS['connections']}",
            "# TYPE rooms_error_envelopes_total counter",
            f"rooms_error_envelopes_total {METRICS['errors']}",
            "# TYPE rooms_close_total counter",
        ]
        for code, n in sorted(METRICS["closes"].items()):
            lines.append(f'rooms_close_total{{code="{code}"}} {n}')
    stored = [n for n in os.listdir(rooms_dir()) if n.endswith(".json")]
    lines += ["# TYPE rooms_stored gauge", f"rooms_stored {len(stored)}"]
    return ("\n".join(lines) + "\n").encode()


def read_frame(rfile):
    head = rfile.read(2)
    if len(head) < 2:
        return None, b""
    opcode = head[0] & 0x0F
    n = head[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", rfile.read(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", rfile.read(8))[0]
    mask = rfile.read(4) if head[1] & 0x80 else b""
    data = rfile.read(n)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return opcode, data


def send_frame(wfile, opcode, payload):
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 126]) + struct.pack(">H", n)
    else:
        head = bytes([0x80 | opcode, 127]) + struct.pack(">Q", n)
    wfile.write(head + payload)
    wfile.flush()


def close(wfile, code, reason=""):
    count_close(code)
    send_frame(wfile, 8, struct.pack(">H", code) + reason.encode())


class Handler(BaseHTTPRequestHandler):
    server_version = "rooms"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        log(f'http: "{self.requestline}" {args[1] if len(args) > 1 else ""}')

    def send(self, status, body=b"", ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health/ready":
            self.send(200, json.dumps({"ready": True, "version": VERSION}).encode(), "application/json")
        elif self.path == "/":
            self.send(200, f"rooms {VERSION}\n".encode())
        elif self.path == "/metrics":
            self.send(200, metrics_text(), "text/plain; version=0.0.4")
        elif self.path.startswith("/ws/") and self.headers.get("Upgrade", "").lower() == "websocket":
            self.websocket(self.path[len("/ws/"):])
        else:
            self.send(404, b"not found\n")

    def websocket(self, room):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        with LOCK:
            METRICS["connections"] += 1
        greeted = False
        while True:
            opcode, data = read_frame(self.rfile)
            if opcode is None or opcode == 8:
                count_close(1000)
                if opcode == 8:
                    send_frame(self.wfile, 8, struct.pack(">H", 1000))
                return
            if opcode == 9:
                send_frame(self.wfile, 10, data)
                continue
            text = data.decode(errors="replace")
            if not greeted:
                if text != "hello" or release().get("refuse_hello"):
                    with LOCK:
                        METRICS["errors"] += 1
                    send_frame(self.wfile, 1, json.dumps({"type": "error", "reason": "unsupported client"}).encode())
                    close(self.wfile, 4002, "unsupported client")
                    return
                greeted = True
                welcome = {"type": "welcome", "room": room, "caps": ["pack", "request"], "version": VERSION}
                send_frame(self.wfile, 1, json.dumps(welcome).encode())
                continue
            with LOCK:
                doc = load(room)
                doc["history"].append(text)
                doc["hash"] = history_hash(doc["history"])
                save(room, doc)
            send_frame(self.wfile, 1, json.dumps({"type": "ack", "seq": len(doc["history"])}).encode())


def crashing_sessions():
    time.sleep(release().get("crash_after", 0))
    while True:
        time.sleep(0.5)
        count_close(1011)


def serve():
    storage_check()
    if release().get("crashing_sessions"):
        threading.Thread(target=crashing_sessions, daemon=True).start()
    httpd = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    httpd.daemon_threads = True
    log(f"rooms {VERSION} listening on :{PORT}")
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    signal.pause()


def verify_replay():
    """Replays every stored room's history and compares the hash it was stored with."""
    salt = release().get("replay_salt", "")
    bad = 0
    names = sorted(n[:-5] for n in os.listdir(rooms_dir()) if n.endswith(".json"))
    for room in names:
        doc = load(room)
        if history_hash(doc["history"], salt) != doc["hash"]:
            print(f"room {room}: replay hash mismatch ({len(doc['history'])} events)")
            bad += 1
    if bad:
        print(f"{bad} of {len(names)} rooms failed replay verification")
        return 1
    print(f"verified {len(names)} rooms: replay hashes match")
    return 0


def stop(signum, _frame):
    log(f"shutting down (signal {signum})")
    sys.exit(0)


def main():
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    release()
    args = sys.argv[1:] or ["serve"]
    if args[0] == "serve":
        serve()
    elif args[:2] == ["verify-replay", "--all"]:
        sys.exit(verify_replay())
    else:
        print("usage: roomctl verify-replay --all", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
