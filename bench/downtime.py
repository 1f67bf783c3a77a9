#!/usr/bin/env python3
"""Downtime of one restart as a user sees it, measured from outside, the same way for hoist and
for the runbook's `docker compose up -d`: from the first container of PROJECT that Docker stops
(its `kill` or `die` event) to the first answer of http://127.0.0.1:PORT/health that names
VERSION. Runs until it has both or until SIGTERM; prints the milliseconds (or `-`).

    bench/downtime.py PROJECT PORT VERSION
"""
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request

project, port, version = sys.argv[1], sys.argv[2], sys.argv[3]
first_stop = None
answered = None
done = threading.Event()


def events():
    global first_stop
    cmd = ["docker", "events", "--format", "{{json .}}",
           "--filter", "type=container",
           "--filter", f"label=com.docker.compose.project={project}",
           "--filter", "event=kill", "--filter", "event=die", "--filter", "event=stop"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as p:
        for line in p.stdout:
            e = json.loads(line)
            t = e.get("timeNano", 0) / 1e9
            if first_stop is None or t < first_stop:
                first_stop = t
            if done.is_set():
                break
        p.kill()


def poll():
    global answered
    while not done.is_set():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if f'"{version}"' in r.read().decode() and first_stop is not None:
                    answered = time.time()
                    done.set()
                    return
        except Exception:
            pass
        time.sleep(0.02)


signal.signal(signal.SIGTERM, lambda *_: done.set())
threading.Thread(target=events, daemon=True).start()
poller = threading.Thread(target=poll, daemon=True)
poller.start()
while not done.wait(0.1):
    pass
if first_stop is not None and answered is not None and answered > first_stop:
    print(round((answered - first_stop) * 1000))
else:
    print("-")
