#!/usr/bin/env bash
# hoist's main job on this machine, with no app of your own: brings up the test bed, starts the
# bundled Specivo demo stack at 0.1.9 in ./demo/specivo (kept between runs; needs root), then
# shows what hoist sees: `hoist status` and `hoist check`.
set -euo pipefail
cd "$(dirname "$0")/.."
./testbed/up.sh
cargo build --quiet --locked
dir=$PWD/demo/specivo
if ! docker compose --project-directory "$dir" ps --status running -q 2>/dev/null | grep -q .; then
  ./testbed/down-stack.sh "$dir"
  ./testbed/new-stack.sh "$dir" 0.1.9 >/dev/null
fi
./target/debug/hoist -C "$dir" status
echo
./target/debug/hoist -C "$dir" check || true
