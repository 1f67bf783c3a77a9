#!/usr/bin/env bash
# Times a full upgrade 0.1.9 -> 0.1.10 of the fixture stack done by hoist against the same upgrade
# done with the Specivo runbook's manual commands (pg_dump to a file, tar czf of the data dir,
# edit .env, docker compose pull, docker compose up -d, curl until the app answers on the new
# version). Each round starts from a fresh stack with the new image absent locally, so both pull.
#   bench/upgrade_vs_runbook.sh [ROUNDS]      (needs the test bed: sudo testbed/up.sh)
# HOIST_FIXTURE_UPLOAD_MB sets the size of the uploads to back up (default 100).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
echo "uploads: ${HOIST_FIXTURE_UPLOAD_MB:-100} MB, $(nproc) cores"
image=127.0.0.1:5000/specivo/specivo:0.1.10
cargo build --release --quiet --locked
work=$(mktemp -d /tmp/hoist-bench.XXXXXX)
trap 'for d in "$work"/*/; do testbed/down-stack.sh "$d" 2>/dev/null || true; done; rm -rf "$work"' EXIT
now() { date +%s.%N; }

wait_for() { # wait_for PORT VERSION: until /health says VERSION and / answers 302
  for _ in $(seq 1 1200); do
    if curl -sf "http://127.0.0.1:$1/health" 2>/dev/null | grep -q "\"$2\"" \
      && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/")" = 302 ]; then return 0; fi
    sleep 0.1
  done
  echo "the app did not answer on $2" >&2; return 1
}

manual_total=0; hoist_total=0
for r in $(seq 1 "$rounds"); do
  dir=$work/manual$r; port=$(testbed/new-stack.sh "$dir" 0.1.9)
  docker rmi -f "$image" >/dev/null 2>&1 || true
  mkdir -p "$work/manual$r-backups"
  t0=$(now)
  ( cd "$dir"
    docker compose exec -T db pg_dump -U specivo specivo > "$work/manual$r-backups/backup.sql"
    tar czf "$work/manual$r-backups/specivo-data.tar.gz" specivo-data
    sed -i 's/^SPECIVO_VERSION=.*/SPECIVO_VERSION=0.1.10/' .env
    docker compose pull -q
    docker compose up -d -q 2>/dev/null || docker compose up -d >/dev/null 2>&1 )
  wait_for "$port" 0.1.10
  t1=$(now); manual=$(awk "BEGIN{print $t1 - $t0}")
  testbed/down-stack.sh "$dir"

  dir=$work/hoist$r; port=$(testbed/new-stack.sh "$dir" 0.1.9)
  docker rmi -f "$image" >/dev/null 2>&1 || true
  t0=$(now)
  ./target/release/hoist -C "$dir" --state-dir "$work/state$r" --backup-dir "$work/hoist$r-backups" upgrade --to 0.1.10 --yes --json > "$work/hoist$r.jsonl"
  wait_for "$port" 0.1.10
  t1=$(now); hoisted=$(awk "BEGIN{print $t1 - $t0}")
  downtime=$(tail -1 "$work/hoist$r.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("downtime_ms"))')
  tail -1 "$work/hoist$r.jsonl" | python3 -c 'import json,sys; s=json.load(sys.stdin); print("  hoist steps:", ", ".join("%s %d ms" % (x["name"], x["ms"]) for x in s["steps"]))'
  testbed/down-stack.sh "$dir"
  printf 'round %d: manual runbook %.1f s, hoist %.1f s (ratio %.2f), hoist downtime %s ms\n' "$r" "$manual" "$hoisted" "$(awk "BEGIN{print $hoisted / $manual}")" "$downtime"
  manual_total=$(awk "BEGIN{print $manual_total + $manual}"); hoist_total=$(awk "BEGIN{print $hoist_total + $hoisted}")
done
printf 'mean over %d rounds: manual %.1f s, hoist %.1f s, ratio %.2f\n' "$rounds" \
  "$(awk "BEGIN{print $manual_total / $rounds}")" "$(awk "BEGIN{print $hoist_total / $rounds}")" "$(awk "BEGIN{print $hoist_total / $manual_total}")"
