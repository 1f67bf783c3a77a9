#!/usr/bin/env bash
# Measures the wizard itself (issue 18), on a release build and a fixture stack:
#   1. its CPU with nothing happening: the wizard open on the home of a healthy stack, left to
#      settle, then its utime+stime from /proc/PID/stat over a window, as % of one core;
#   2. its peak RSS while it follows a log of 1,600 lines/s: the upgrade 0.1.9 -> 0.1.10 run in
#      the wizard, where the new api (a compose override of the fixture stack) logs 1,600
#      realistic lines a second and only turns healthy after the window, so the Watch step
#      follows it all along. The peak is VmHWM, reset (clear_refs 5) when the flood reaches
#      the screen, so what came before (the backup) is not counted in it.
#   bench/wizard.sh [--short]      (needs the test bed: sudo testbed/up.sh)
# --short: idle 10 s, follow 15 s (instead of 30 s and 60 s). The details (the RSS curve, the
# wakeups, what the screen showed) go to stderr; stdout ends with the two result lines.
# HOIST_BIN uses that hoist instead of building one (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
settle=10 idle=30 follow=60 rate=1600
case "${1:-}" in
  --short) settle=5 idle=10 follow=15 ;;
  "") ;;
  *) echo "usage: bench/wizard.sh [--short]" >&2; exit 2 ;;
esac
export HOIST_FIXTURE_UPLOAD_MB=${HOIST_FIXTURE_UPLOAD_MB:-10}
say() { echo "wizard.sh: $*" >&2; }

if [ -n "${HOIST_BIN:-}" ]; then
  hoist=$HOIST_BIN
else
  cargo build --release --quiet --locked
  hoist=${CARGO_TARGET_DIR:-target}/release/hoist
fi
hoist=$(realpath "$hoist")

work=$(mktemp -d /tmp/benchw.XXXXXX)
dir=$work/benchw-wizard-$$
sock=benchw-$$
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  tmux -L "$sock" kill-server 2>/dev/null || true
  testbed/down-stack.sh "$dir" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say "a fixture stack at 0.1.9 in $dir"
testbed/new-stack.sh "$dir" 0.1.9 >/dev/null

# The flooding api: the release the flood is for logs $rate lines a second, from its start to
# BENCHW_READY_AFTER s later, while the app itself starts beside it (as a child); its
# healthcheck fails until then (start_period keeps it "starting", not unhealthy). Any other
# release is the fixture's api, untouched. No "$" in the code: Compose would read it.
ready_after=$((follow + 40))
cat >"$dir/compose.override.yaml" <<EOF
services:
  api:
    environment:
      BENCHW_FLOOD_RELEASE: "0.1.10"
      BENCHW_RATE: "$rate"
      BENCHW_READY_AFTER: "$ready_after"
    entrypoint:
      - python3
      - -c
      - |
        import os, random, subprocess, sys, time
        app = ["python3", "/app/specivo.py"] + sys.argv[1:]
        if os.environ.get("SPECIVO_RELEASE") != os.environ["BENCHW_FLOOD_RELEASE"]:
            os.execvp(app[0], app)
        child = subprocess.Popen(app)
        rate = int(os.environ["BENCHW_RATE"])
        ready_after = float(os.environ["BENCHW_READY_AFTER"])
        rnd = random.Random(18)
        paths = ["/api/v1/issues/%d/comments?page=%d&per_page=50", "/api/v1/workspaces/acme/issues?q=label%%3Abug&page=%d%d",
                 "/api/v1/search?q=release+notes&limit=25&offset=%d%d", "/static/js/app.%d.%d.chunk.js"]
        def line(n):
            k = n % 10
            if k < 5:
                p = rnd.choice(paths) % (rnd.randint(1, 9999), rnd.randint(1, 40))
                return 'INFO  #%07d 172.18.0.%d:%d - "GET %s HTTP/1.1" 200 OK %.1f ms\n' % (
                    n, rnd.randint(2, 254), rnd.randint(30000, 60999), p, rnd.uniform(0.4, 80))
            if k < 8:
                now = time.time()
                return ('{"seq": %d, "ts": "%s.%03dZ", "level": "info", "logger": "specivo.search.indexer", '
                        '"event": "document indexed", "doc_id": %d, "workspace": "acme-%d", "took_ms": %.2f}\n') % (
                    n, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)), int(now * 1000) % 1000,
                    rnd.randint(1, 10**6), rnd.randint(1, 50), rnd.uniform(0.1, 30))
            if k < 9:
                return "\x1b[32mINFO\x1b[0m  #%07d [specivo.tasks] notification mail queued for user %d about issue %d (template issue_commented)\n" % (
                    n, rnd.randint(1, 5000), rnd.randint(1, 9999))
            return "\x1b[33mWARN\x1b[0m  #%07d [specivo.cache] redis GET issue:%d:render took %d ms (slow threshold 50 ms), serving stale\n" % (
                n, rnd.randint(1, 9999), rnd.randint(51, 400))
        t0 = time.time()
        n = 0
        while time.time() - t0 < ready_after and child.poll() is None:
            due = int((time.time() - t0) * rate)
            chunk = []
            while n < due:
                n += 1
                chunk.append(line(n))
            if chunk:
                sys.stdout.write("".join(chunk))
                sys.stdout.flush()
            time.sleep(0.01)
        print("benchw: %d lines in %.0f s, the api now reports healthy" % (n, time.time() - t0), flush=True)
        open("/tmp/benchw-ready", "w").close()
        sys.exit(child.wait())
    healthcheck:
      test:
        - CMD
        - python3
        - -c
        - |
          import os, sys, urllib.request
          if os.environ.get("SPECIVO_RELEASE") == os.environ["BENCHW_FLOOD_RELEASE"] and not os.path.exists("/tmp/benchw-ready"):
              sys.exit(1)
          urllib.request.urlopen("http://127.0.0.1:8000/health", timeout=2)
      start_period: 600s
EOF
docker compose --project-directory "$dir" up -d --wait --quiet-pull >"$work/up.log" 2>&1 \
  || { cat "$work/up.log" >&2; exit 1; }

screen() { tmux -L "$sock" capture-pane -p -t benchw 2>/dev/null || true; }
alive() { [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
ticks() { # utime+stime of the whole process, in clock ticks (fields after the ")" of comm)
  sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}'
}
switches() { # context switches of every thread so far: how often it woke
  cat /proc/"$pid"/task/*/status 2>/dev/null \
    | awk '/^(voluntary|nonvoluntary)_ctxt_switches/ {s += $2} END {print s + 0}'
}
status_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pid/status"; }

tmux -L "$sock" -f /dev/null new-session -d -x 80 -y 24 -s benchw \
  "exec '$hoist' -C '$dir' --state-dir '$work/state' --backup-dir '$work/backups'"
pid=$(tmux -L "$sock" list-panes -t benchw -F '#{pane_pid}')
for _ in $(seq 1 300); do
  screen | grep -q 'upgrade' && break
  alive || { say "the wizard ended:"; screen >&2; exit 1; }
  sleep 0.1
done
say "the wizard (pid $pid) is on its home; settling ${settle} s"
sleep "$settle"

# 1. Idle.
hz=$(getconf CLK_TCK)
t0=$(date +%s.%N) c0=$(ticks) w0=$(switches)
sleep "$idle"
t1=$(date +%s.%N) c1=$(ticks) w1=$(switches)
idle_cpu=$(awk -v c="$((c1 - c0))" -v hz="$hz" -v t="$t0" -v u="$t1" 'BEGIN {printf "%.1f", 100 * c / hz / (u - t)}')
say "idle: $((c1 - c0)) ticks of CPU, $((w1 - w0)) context switches in ${idle} s; RSS $(status_kb VmRSS) kB"

# 2. Following: the upgrade to 0.1.10, its plan said yes to, until the flood is on screen.
hwm_before=$(status_kb VmHWM)
tmux -L "$sock" send-keys -t benchw 0.1.10 Enter
answered=0
for _ in $(seq 1 600); do
  alive || { say "the wizard ended:"; screen >&2; exit 1; }
  s=$(screen)
  grep -q '#[0-9]\{7\}' <<<"$s" && break
  if grep -q '\[y/n\]' <<<"$s" && [ "$answered" = 0 ]; then
    tmux -L "$sock" send-keys -t benchw y; answered=1
  fi
  if grep -q -i 'type override' <<<"$s"; then sleep 2; say "the upgrade did not reach its Watch step:"; screen >&2; exit 1; fi
  sleep 0.5
done
grep -q '#[0-9]\{7\}' <<<"$(screen)" || { say "no flood on screen:"; screen >&2; exit 1; }
echo 5 >"/proc/$pid/clear_refs" # VmHWM := VmRSS from now on
say "the flood is on screen; following ${follow} s (RSS now $(status_kb VmRSS) kB: $(status_kb RssAnon) kB anonymous, $(status_kb RssFile) kB of files mapped, the binary's among them; VmHWM before the upgrade: $hwm_before kB)"
curve=()
c0=$(ticks) t0=$(date +%s.%N)
for i in $(seq 1 "$follow"); do
  sleep 1
  alive || { say "the wizard ended:"; screen >&2; exit 1; }
  curve+=("$(( $(status_kb VmRSS) / 1024 ))")
done
c1=$(ticks) t1=$(date +%s.%N)
peak_kb=$(status_kb VmHWM)
say "at the end: RSS $(status_kb VmRSS) kB: $(status_kb RssAnon) kB anonymous, $(status_kb RssFile) kB of files mapped"
s=$(screen)
api=$(docker compose --project-directory "$dir" ps -q api)
newest=$(docker logs --tail 40 "$api" 2>&1 | grep -o '#[0-9]\{7\}\|"seq": [0-9]*' | grep -o '[0-9]*$' | sort -n | tail -1)
shown=$(grep -o '#[0-9]\{7\}' <<<"$s" | tr -d '#' | sort -n | tail -1)
dropped=$(grep -o '([0-9]* older lines not kept)' <<<"$s" | grep -o '[0-9]*' || echo 0)
say "RSS each second (MB): ${curve[*]}"
say "following: $(awk -v c="$((c1 - c0))" -v hz="$hz" -v t="$t0" -v u="$t1" 'BEGIN {printf "%.1f", 100 * c / hz / (u - t)}') % of a core; the screen shows line #$((10#$shown)), the api has written #$((10#${newest:-0})); the pane has let ${dropped} older lines go"
say "the screen at the end:"; echo "$s" >&2
grep -q 'Watch logs' <<<"$s" || { say "the wizard is no longer on its Watch step"; exit 1; }

echo "wizard idle CPU: $idle_cpu % of a core over $idle s"
echo "wizard following $rate lines/s for $follow s: peak RSS $(awk -v k="$peak_kb" 'BEGIN {printf "%.1f", k / 1024}') MB"
