#!/usr/bin/env bash
# Restarts the test bed's Docker daemon the way a package upgrade or `systemctl restart docker`
# does: SIGTERM (the daemon stops its containers), then a new daemon, which starts again the
# containers whose restart policy says so. Waits `HOIST_ENGINE_DOWN_SECS` (default 0) between the
# two. Only for a test that runs alone: every container on the engine is stopped meanwhile.
set -euo pipefail
state=${HOIST_TESTBED_STATE:-/var/lib/hoist-testbed}
logs=$state/logs
say() { printf 'restart-engine: %s\n' "$*" >&2; }

pid=$(pgrep -xo dockerd) || { say "no dockerd is running"; exit 1; }
kill -TERM "$pid"
for _ in $(seq 1 600); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
# A daemon that will not stop is killed, as a crash or an OOM kill would end it: the bed must
# never be left without a daemon.
if kill -0 "$pid" 2>/dev/null; then
  say "dockerd ($pid) did not stop within 60 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
sleep "${HOIST_ENGINE_DOWN_SECS:-0}"
setsid dockerd >>"$logs/dockerd.log" 2>&1 </dev/null &
for _ in $(seq 1 600); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.1
done
tail -20 "$logs/dockerd.log" >&2
say "dockerd did not come back within 60 s"
exit 1
