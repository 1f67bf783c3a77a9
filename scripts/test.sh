#!/usr/bin/env bash
# The whole test suite on a fresh machine: brings up the test bed (Docker engine, Compose v2,
# registry, fixture images; needs root), then runs every test with a missing engine counted as a
# failure, never a skip. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
./testbed/up.sh
export HOIST_REQUIRE_DOCKER=1
# Snapshots are compared, never written: a changed screen fails until it is reviewed.
export INSTA_UPDATE=no
# Two tests at a time: each starts a whole stack (five containers, 100 MB of uploads), and on a
# 2-core machine more in parallel only makes health checks time out. --no-fail-fast: a failing
# test binary does not hide the results of the ones after it.
exec cargo test --locked --no-fail-fast "$@" -- --test-threads=2
