#!/usr/bin/env bash
# Runs CMD and prints, as its last line on stderr, its own peak resident memory in kB: the
# kernel's high-water mark (VmHWM) read every 20 ms. Not `time -f %M`, which reports the
# largest of the process and the children it waited for (hoist runs `docker compose`, a Go
# program of about 50 MB).
#   bench/peak_rss.sh CMD [ARGS...]
set -uo pipefail
"$@" &
pid=$!
peak=0
while kill -0 "$pid" 2>/dev/null; do
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null)
  if [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ]; then peak=$hwm; fi
  sleep 0.02
done
wait "$pid"
rc=$?
echo "$peak" >&2
exit "$rc"
