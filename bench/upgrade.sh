#!/usr/bin/env bash
# One measured upgrade 0.1.9 -> 0.1.10 of a fresh fixture stack, by hoist or by the Specivo
# runbook's commands, with the new image absent locally so that both pull it.
#   bench/upgrade.sh hoist|manual COMPOSE_FILE UPLOAD_MB WORKDIR [IMAGE_REPO]
# Prints one line: seconds, downtime in ms (bench/downtime.py), and for hoist its peak RSS in
# kB (its own, not its children's: `docker compose` is a separate program) and its step times.
set -euo pipefail
cd "$(dirname "$0")/.."
who=$1 compose=$2 mb=$3 work=$4 repo=${5:-127.0.0.1:5000/specivo/specivo}
image=$repo:0.1.10
dir=$work/$who-$mb-$RANDOM
mkdir -p "$work"
port=$(HOIST_FIXTURE_COMPOSE=$compose HOIST_FIXTURE_UPLOAD_MB=$mb testbed/new-stack.sh "$dir" 0.1.9)
project=$(basename "$dir")
trap 'testbed/down-stack.sh "$dir" >/dev/null 2>&1 || true; rm -rf "$dir.backups" "$dir.state"' EXIT
# Both must download the new release: its image must be gone, not only untagged (a container
# that uses it, or an image built on it, keeps its layers).
id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
docker rmi -f "$image" 127.0.0.1:5000/bench/specivo-big:0.1.10 >/dev/null 2>&1 || true
if [ -n "$id" ] && docker image inspect "$id" >/dev/null 2>&1; then
  echo "bench: $image is still here after docker rmi (in use by: $(docker ps -a --filter "ancestor=$id" --format '{{.Names}}' | tr '\n' ' ')); the pull would not be measured" >&2
  exit 1
fi

now() { date +%s.%N; }
healthy() { # every container of the project with a healthcheck says healthy (`docker ps`)
  ! docker ps --filter "label=com.docker.compose.project=$project" --format '{{.Status}}' \
    | grep -q -e 'health: starting' -e unhealthy
}
wait_for() { # until /health names the version, / answers 302 and `docker ps` says healthy:
  # the runbook's step 6 (`Up (healthy)`, the login page's 302)
  for _ in $(seq 1 3000); do
    if curl -sf "http://127.0.0.1:$port/health" 2>/dev/null | grep -q "\"$1\"" \
      && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")" = 302 ] \
      && healthy; then return 0; fi
    sleep 0.05
  done
  echo "the app did not answer on $1" >&2; return 1
}
revision() { docker compose exec -T db psql -U specivo -d specivo -tAc 'SELECT version_num FROM alembic_version'; }

bench/downtime.py "$project" "$port" 0.1.10 >"$dir.downtime" &
watcher=$!
sleep 0.5
t0=$(now)
case $who in
  manual)
    # The runbook (Specivo's, steps 1 to 6), as its commands are typed.
    lap() { t=$(now); laps="$laps $1=$(awk "BEGIN{printf \"%.1f\", $t - $mark}")"; mark=$t; }
    laps="" mark=$t0
    cd "$dir"
    docker compose ps >/dev/null
    revision >/dev/null
    df -h / >/dev/null
    lap checks
    mkdir -p "$dir.backups"
    docker compose exec -T db pg_dump -U specivo specivo >"$dir.backups/backup.sql"
    tar czf "$dir.backups/specivo-data.tar.gz" specivo-data
    lap backup
    sed -i 's/^SPECIVO_VERSION=.*/SPECIVO_VERSION=0.1.10/' .env
    docker compose pull -q 2>/dev/null
    lap pull
    docker compose up -d >/dev/null 2>&1
    lap up
    wait_for 0.1.10
    lap ready
    revision >/dev/null
    lap verify
    cd - >/dev/null
    extra=" -$laps"
    ;;
  hoist)
    rss=$(bench/peak_rss.sh ./target/release/hoist -C "$dir" --state-dir "$dir.state" \
      --backup-dir "$dir.backups" upgrade --to 0.1.10 --yes --json 2>&1 >"$dir.jsonl" | tail -1)
    wait_for 0.1.10
    steps=$(tail -1 "$dir.jsonl" | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["outcome"]=="succeeded", s; print(" ".join("%s=%.1f" % (x["name"], x["ms"]/1000) for x in s["steps"]))')
    extra=" $rss $steps"
    ;;
esac
t1=$(now)
wait "$watcher" || true
printf '%.1f %s%s\n' "$(awk "BEGIN{print $t1 - $t0}")" "$(cat "$dir.downtime")" "$extra"
rm -f "$dir.downtime" "$dir.jsonl"
