#!/usr/bin/env bash
# The whole test suite on a fresh machine: brings up the test bed (Docker engine, Compose v2,
# registry, fixture images; needs root), then runs every test with a missing engine counted as a
# failure, never a skip. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
./testbed/up.sh
export HOIST_REQUIRE_DOCKER=1
exec cargo test --locked "$@"
