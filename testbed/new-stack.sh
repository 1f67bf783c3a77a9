#!/usr/bin/env bash
# Creates a fresh copy of the fixture stack in DIR at VERSION and starts it (healthy on return).
#   testbed/new-stack.sh DIR VERSION [PORT]
# The project name is DIR's base name, so give every copy its own. HOIST_FIXTURE_UPLOAD_MB sets
# the size of the user uploads in the data dir (default 100, like a real deployment);
# HOIST_FIXTURE_COMPOSE a compose file to use instead of the fixture's (a variant of it).
# Prints nothing on stdout but the port the api is published on.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: new-stack.sh DIR VERSION [PORT]}
version=${2:?usage: new-stack.sh DIR VERSION [PORT]}
port=${3:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
mb=${HOIST_FIXTURE_UPLOAD_MB:-100}

mkdir -p "$dir"
cp "${HOIST_FIXTURE_COMPOSE:-$here/stack/compose.yaml}" "$dir/compose.yaml"
sed -e "s/@VERSION@/$version/" -e "s/@PORT@/$port/" \
    -e "s/@DBPASS@/db-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')/" \
    -e "s/@SECRET@/sk-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')/" \
    "$here/stack/env.template" >"$dir/.env"
chmod 600 "$dir/.env"

# User uploads: random, so they do not compress, as photos and PDFs do not.
data=$dir/specivo-data
mkdir -p "$data/uploads" "$data/meta"
echo 1 >"$data/meta/format"
files=$(( (mb + 4) / 5 ))
index="["
for i in $(seq 1 "$files"); do
  head -c $((mb * 1048576 / files)) /dev/urandom >"$data/uploads/upload-$i.bin"
  index="$index{\"name\": \"upload-$i.bin\"}"
  [ "$i" -lt "$files" ] && index="$index, "
done
echo "$index]" >"$data/uploads/index.json"

docker compose --project-directory "$dir" up -d --wait --quiet-pull >"$dir/.up.log" 2>&1 \
  || { cat "$dir/.up.log" >&2; exit 1; }
rm -f "$dir/.up.log"
echo "$port"
