#!/usr/bin/env bash
# hoist's benchmark: every figure of the README's Benchmark section, measured side by side in one
# run on the test bed, printed as one table.
#   bench/run.sh [--short|--full]      (needs the test bed: testbed/up.sh; run as root)
# --short (the default): 100 MB of uploads, one round, the wizard for 15 s. About 4 minutes.
# --full: 100 MB, 300 MB and 1 GB, three rounds each (the median: a fixture container now and
#   then takes its whole stop timeout, for hoist and for Compose alike), the memory of an
#   upgrade with a 1 GB backup and a 600 MB pull, the wizard for a minute. About 20 minutes.
# Each upgrade is 0.1.9 -> 0.1.10 of a fresh fixture stack with the new image not yet pulled, by
# hoist (`upgrade --yes`, release build) and by the Specivo runbook's commands (bench/upgrade.sh),
# on two stack shapes: the fixture as Specivo ships it (worker and beat without a healthcheck, so
# hoist watches them for its 5 s window) and the same with healthchecks on every service.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:---short}
case $mode in
  --short) sizes="100"; rounds=${BENCH_ROUNDS:-1} ;;
  --full) sizes="100 300 1000"; rounds=${BENCH_ROUNDS:-3} ;;
  *) echo "usage: bench/run.sh [--short|--full]" >&2; exit 2 ;;
esac
work=$(mktemp -d /tmp/hoist-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cargo build --release --quiet --locked
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), Docker $(docker version -f '{{.Server.Version}}')"

# The second shape: the fixture with a healthcheck on worker and beat too (their process alive,
# as `celery inspect ping` would say).
shaped=$work/compose-healthchecks.yaml
python3 - testbed/stack/compose.yaml "$shaped" <<'EOF'
import sys
text = open(sys.argv[1]).read()
check = ('    healthcheck:\n      test: ["CMD", "python3", "-c", "import os; os.kill(1, 0)"]\n'
         '      interval: 2s\n      timeout: 3s\n      retries: 5\n')
for cmd in ('    command: ["worker"]\n', '    command: ["beat"]\n'):
    assert cmd in text
    text = text.replace(cmd, cmd + check)
open(sys.argv[2], "w").write(text)
EOF

rows=$work/rows
: >"$rows"
median() { sort -n | awk '{ v[n++] = $1 } END { if (!n) print "-"; else if (n % 2) printf "%.1f", v[int(n / 2)]; else printf "%.1f", (v[n / 2 - 1] + v[n / 2]) / 2 }'; }

for shape in fixture healthchecks; do
  compose=testbed/stack/compose.yaml
  [ "$shape" = healthchecks ] && compose=$shaped
  for mb in $sizes; do
    : >"$work/manual" ; : >"$work/hoist"
    for r in $(seq 1 "$rounds"); do
      for who in manual hoist; do
        say "$shape, $mb MB, round $r: $who"
        line=$(bench/upgrade.sh "$who" "$compose" "$mb" "$work/stacks")
        say "  $line"
        echo "$line" >>"$work/$who"
      done
    done
    m=$(awk '{print $1}' "$work/manual" | median); h=$(awk '{print $1}' "$work/hoist" | median)
    md=$(awk '$2 != "-" {print $2}' "$work/manual" | median); hd=$(awk '$2 != "-" {print $2}' "$work/hoist" | median)
    rss=$(awk '{print $3}' "$work/hoist" | sort -n | tail -1)
    steps=$(tail -1 "$work/hoist" | cut -d' ' -f4-)
    echo "$shape|$mb|$m|$h|$(awk "BEGIN{printf \"%.2f\", $h / $m}")|$md|$hd|$(awk "BEGIN{ if ($md > 0) printf \"%+.0f %%\", ($hd - $md) * 100 / $md; else print \"-\" }")|$(awk "BEGIN{printf \"%.1f\", $rss / 1024}")|$steps" >>"$rows"
  done
done

big=""
if [ "$mode" = --full ]; then
  say "memory: an upgrade with a 1 GB backup and a 600 MB pull"
  repo=$(bench/big_image.sh)
  sed "s#127.0.0.1:5000/specivo/specivo#$repo#" testbed/stack/compose.yaml >"$work/compose-big.yaml"
  line=$(bench/upgrade.sh hoist "$work/compose-big.yaml" 1000 "$work/stacks" "$repo")
  say "  $line"
  big=$(awk '{printf "%.1f", $3 / 1024}' <<<"$line")
  docker rmi -f "$repo:0.1.9" "$repo:0.1.10" >/dev/null 2>&1 || true
fi

say "the wizard"
if [ "$mode" = --short ]; then wizard=$(bench/wizard.sh --short 2>"$work/wizard.log"); else wizard=$(bench/wizard.sh 2>"$work/wizard.log"); fi
wizard=$(tail -2 <<<"$wizard")

echo
echo "hoist benchmark, $(date -u +%Y-%m-%d), $machine ($mode, median of $rounds round(s))"
echo
echo "Upgrade 0.1.9 -> 0.1.10, the new image (60 MB) pulled, hoist against the runbook by hand:"
printf '%-13s %8s %9s %8s %6s %14s %13s %6s %9s  %s\n' shape uploads runbook hoist ratio "downtime, up -d" "downtime, hoist" diff "hoist RSS" "hoist's steps (s; backup and pull overlap)"
while IFS='|' read -r shape mb m h ratio md hd diff rss steps; do
  printf '%-13s %5s MB %7s s %6s s %6s %12s ms %13s ms %6s %6s MB  %s\n' "$shape" "$mb" "$m" "$h" "$ratio" "$md" "$hd" "$diff" "$rss" "$steps"
done <"$rows"
echo
[ -n "$big" ] && echo "peak RSS of hoist upgrading with a 1 GB backup and a 600 MB pull: $big MB (goal 30 MB)"
echo "$wizard"
