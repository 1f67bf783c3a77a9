#!/usr/bin/env bash
# hoist's main job on this machine, with no app of your own: brings up the test bed, prepares the
# bundled Specivo demo stack at 0.1.9 in ./demo/specivo (needs root), and opens the wizard on it,
# so you can watch a whole upgrade (and, choosing 0.1.13, a failure and its rollback).
#   scripts/demo.sh          the wizard (in a terminal); outside one, `status` and `check`
#   scripts/demo.sh --reset  start again from a fresh stack at 0.1.9
set -euo pipefail
cd "$(dirname "$0")/.."
./testbed/up.sh
cargo build --quiet --locked
dir=$PWD/demo/specivo
running=$(docker compose --project-directory "$dir" ps --status running -q 2>/dev/null | wc -l || true)
if [ "${1:-}" = --reset ] || [ "$running" -lt 5 ]; then
  ./testbed/down-stack.sh "$dir"
  rm -rf "$dir" "$dir-backups" "$PWD/demo/state"
  ./testbed/new-stack.sh "$dir" 0.1.9 >/dev/null
fi
hoist=(./target/debug/hoist -C "$dir" --state-dir "$PWD/demo/state")
if [ -t 0 ] && [ -t 1 ]; then
  exec "${hoist[@]}"
fi
echo "(not in a terminal: showing status and check; run scripts/demo.sh in a terminal for the wizard)"
"${hoist[@]}" status
echo
"${hoist[@]}" check || true
