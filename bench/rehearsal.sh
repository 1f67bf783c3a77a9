#!/usr/bin/env bash
# What a rehearsal (`hoist upgrade --rehearse`) costs, on fresh fixture stacks with each size of
# uploads: the rehearsal's own time and its parts (copying the data, loading the dump, `up -d` to
# ready), the disk its copy took, and hoist's peak memory (VmHWM, bench/peak_rss.sh). The run is
# 0.1.9 -> 0.1.10 without --yes, so it ends after the rehearsal (exit 3) and the real app is
# never upgraded; the new image is pulled beforehand, so no download is counted.
#   bench/rehearsal.sh [MB ...]        (default: 100 1000; needs testbed/up.sh; run as root)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${*:-100 1000}
work=$(mktemp -d /tmp/hoist-bench-rehearsal.XXXXXX)
trap 'for d in "$work"/stack-*; do [ -d "$d" ] && testbed/down-stack.sh "$d" >/dev/null 2>&1; done; rm -rf "$work"' EXIT
cargo build --release --quiet --locked
docker pull -q 127.0.0.1:5000/specivo/specivo:0.1.10 >/dev/null
printf '%-8s %10s %9s %10s %9s %11s %9s\n' uploads rehearsal copy "dump load" "ready" "copy disk" "peak RSS"
for mb in $sizes; do
  dir=$work/stack-$mb
  HOIST_FIXTURE_UPLOAD_MB=$mb testbed/new-stack.sh "$dir" 0.1.9 >/dev/null
  out=$work/out-$mb.json
  set +e
  bench/peak_rss.sh target/release/hoist -C "$dir" --state-dir "$work/state-$mb" \
    upgrade --to 0.1.10 --rehearse --json >"$out" 2>"$work/rss-$mb"
  rc=$?
  set -e
  [ "$rc" = 3 ] || { echo "hoist exited $rc for $mb MB; see $out" >&2; exit 1; }
  python3 - "$out" "$mb" "$(tail -1 "$work/rss-$mb")" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
r = [l for l in lines if l.get("type") == "summary"][-1]["rehearsal"]
assert r["passed"], r
ready = sum(h["ready_ms"] for h in r["hops"])
disk = r.get("copy_bytes") or 0
print(f'{sys.argv[2] + " MB":<8} {r["took_ms"]/1000:9.1f}s {r["copy_ms"]/1000:8.1f}s '
      f'{(r["restore_ms"] or 0)/1000:9.1f}s {ready/1000:8.1f}s {disk/1e6:8.0f} MB {int(sys.argv[3])/1024:6.1f} MB')
PY
  testbed/down-stack.sh "$dir" >/dev/null 2>&1 || true
done
