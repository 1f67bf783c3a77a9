#!/usr/bin/env bash
# The whole test suite on a fresh machine: brings up the test bed (Docker engine, Compose v2,
# registry, fixture images; needs root), then runs every test with a missing engine counted as a
# failure, never a skip.
#
# With no arguments, the test binaries run one after another (HOIST_TEST_LANES=2 runs two side
# by side, the slowest first), each within HOIST_TEST_TIMEOUT seconds (default 1500): a test that
# hangs fails with its output instead of holding the run until CI's limit. Each binary's output
# is printed whole when it ends, then the binaries that must have the engine to themselves run
# alone, and a table of every binary's time ends the run. One lane by default: two on a 2-core
# machine (four stacks at once) put the load at 14 and made the PTY hangup tests time out.
# With arguments, they go to one plain `cargo test` (e.g. `scripts/test.sh --test rooms`).
set -euo pipefail
cd "$(dirname "$0")/.."
stamp() { date -u +%H:%M:%S; }
started=$(date +%s)
echo "test.sh: $(stamp) bringing up the test bed"
./testbed/up.sh
echo "test.sh: $(stamp) test bed up after $(($(date +%s) - started)) s"
export HOIST_REQUIRE_DOCKER=1
# Snapshots are compared, never written: a changed screen fails until it is reviewed.
export INSTA_UPDATE=no
export CARGO_TERM_COLOR=never
# Two tests at a time within a binary: each starts a whole stack (five containers, 100 MB of
# uploads), and on a 2-core machine more only makes health checks time out.
threads=(--test-threads=2)
if [ $# -gt 0 ]; then
    exec cargo test --locked --no-fail-fast "$@" -- "${threads[@]}"
fi

# Binaries that restart the Docker engine (every container stops): nothing else may run then.
alone=" tests/engine_restart.rs "
# Started first, so that the long ones do not end up running last in a lane of their own.
slow_first="tests/rollback.rs tests/hangup.rs tests/resume.rs tests/faults.rs tests/upgrade_control.rs
    tests/wizard_pty.rs tests/rollback_killed.rs tests/command_database.rs tests/rooms.rs
    tests/upgrade.rs tests/synctv.rs tests/versions.rs tests/real_world.rs tests/secrets.rs"
slow_first=$(echo $slow_first) # one line, single spaces: matched as " name " below
lanes=${HOIST_TEST_LANES:-1}
limit=${HOIST_TEST_TIMEOUT:-1500}

echo "test.sh: $(stamp) building the tests"
built=$(cargo test --locked --no-run --message-format=json-render-diagnostics)
# "src/lib.rs /abs/target/debug/deps/hoist-<hash>" per test binary.
mapfile -t binaries < <(printf '%s\n' "$built" | grep '"executable":"' |
    grep '"profile":{[^}]*"test":true' |
    sed -E 's/.*"src_path":"([^"]*)".*"executable":"([^"]*)".*/\1 \2/' | sed "s#^$PWD/##")
[ ${#binaries[@]} -gt 0 ] || { echo "test.sh: no test binaries were built" >&2; exit 1; }
declare -A exe
for b in "${binaries[@]}"; do exe[${b%% *}]=${b#* }; done
order=()
for name in $slow_first; do [ -n "${exe[$name]:-}" ] && order+=("$name"); done
for name in $(printf '%s\n' "${!exe[@]}" | sort); do
    case " $slow_first $alone " in *" $name "*) ;; *) order+=("$name") ;; esac
done

# The release files (two release builds from nothing, minutes each): made here, outside any
# test binary's time limit; tests/package.rs runs the script again, which then only checks.
echo "test.sh: $(stamp) making the release files (scripts/package.sh)"
package_started=$(date +%s)
./scripts/package.sh --out target/package-test || echo "test.sh: scripts/package.sh failed; tests/package.rs runs it again and says why"
echo "test.sh: $(stamp) release files made in $(($(date +%s) - package_started)) s"

logs=$(mktemp -d /tmp/hoist-test-logs.XXXXXX)
results=()
failed=0
# Runs one binary into its log and records "name status seconds" in $logs/<n>.result.
run_one() {
    local name=$1 key=$2 t0 status=0
    t0=$(date +%s)
    timeout --kill-after=30 "$limit" "${exe[$name]}" "${threads[@]}" >"$logs/$key.log" 2>&1 || status=$?
    echo "$name $status $(($(date +%s) - t0))" >"$logs/$key.result"
}
# Prints a finished binary's output and verdict, and counts it.
report() {
    local key=$1 name status secs
    read -r name status secs <"$logs/$key.result"
    echo
    echo "==== $name ($(stamp), ${secs} s) ===="
    cat "$logs/$key.log"
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        echo "test.sh: $name did not end within $limit s and was killed: a test hangs"
    fi
    [ "$status" -eq 0 ] || failed=$((failed + 1))
    results+=("$(printf '%-36s %6s s  %s' "$name" "$secs" "$([ "$status" -eq 0 ] && echo ok || echo "FAILED ($status)")")")
    rm -f "$logs/$key.result"
}
echo "test.sh: $(stamp) running ${#order[@]} test binaries, $lanes at a time, then$alone"
declare -A running=()
n=0
for name in "${order[@]}"; do
    while [ ${#running[@]} -ge "$lanes" ]; do
        wait -n || true
        for key in "${!running[@]}"; do
            if [ -f "$logs/$key.result" ]; then report "$key"; unset "running[$key]"; fi
        done
    done
    n=$((n + 1))
    run_one "$name" "$n" &
    running[$n]=$!
done
wait || true
for key in "${!running[@]}"; do report "$key"; done
echo "test.sh: $(stamp) running alone:$alone"
for name in $alone; do
    [ -n "${exe[$name]:-}" ] || continue
    n=$((n + 1))
    run_one "$name" "$n"
    report "$n"
done

echo
echo "==== test binaries, $(($(date +%s) - started)) s in all (bed and build included) ===="
printf '%s\n' "${results[@]}"
rm -rf "$logs"
if [ "$failed" -gt 0 ]; then
    echo "test.sh: $failed test binaries failed"
    exit 1
fi
echo "test.sh: all ${#results[@]} test binaries passed"
