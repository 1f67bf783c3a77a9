#!/usr/bin/env bash
# Pushes to the test bed's registry a copy of the fixture's releases 0.1.9 and 0.1.10 whose
# 0.1.10 weighs about 600 MB to pull (a 540 MB incompressible layer on top), for the memory
# figure of an upgrade with a large pull. Prints the repository. Kept once pushed.
set -euo pipefail
repo=127.0.0.1:5000/bench/specivo-big
if curl -sf "http://127.0.0.1:5000/v2/bench/specivo-big/manifests/0.1.10" \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' >/dev/null; then
  echo "$repo"; exit 0
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
docker pull -q 127.0.0.1:5000/specivo/specivo:0.1.9 >/dev/null
docker pull -q 127.0.0.1:5000/specivo/specivo:0.1.10 >/dev/null
docker tag 127.0.0.1:5000/specivo/specivo:0.1.9 "$repo:0.1.9"
printf 'FROM 127.0.0.1:5000/specivo/specivo:0.1.10\nRUN head -c 566231040 /dev/urandom > /app/assets/extra-model.bin\n' >"$ctx/Dockerfile"
docker build -q -t "$repo:0.1.10" "$ctx" >/dev/null
docker push -q "$repo:0.1.9" >/dev/null
docker push -q "$repo:0.1.10" >/dev/null
echo "$repo"
