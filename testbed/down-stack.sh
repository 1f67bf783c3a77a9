#!/usr/bin/env bash
# Removes a stack made by new-stack.sh: containers, volumes, networks, and DIR itself.
#   testbed/down-stack.sh DIR
set -euo pipefail
dir=${1:?usage: down-stack.sh DIR}
[ -f "$dir/compose.yaml" ] && docker compose --project-directory "$dir" down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
rm -rf "$dir"
