#!/usr/bin/env bash
# Makes hoist's release files from a clean clone, into dist/ (or --out DIR):
#   hoist-VERSION-ARCH-linux      one static binary (musl, no shared library needed) that runs on
#                                 any x86_64 or aarch64 Linux, whatever its libc
#   hoist_VERSION-1_DEBARCH.deb   the same binary, the man page, the bash/zsh/fish completions and
#                                 the license, where Debian puts them
#   SHA256SUMS
#   scripts/package.sh [--arch x86_64|aarch64|all] [--out DIR]     (all by default)
# Static musl because it needs nothing of the server: no glibc version to match, Alpine included.
# Built with cargo-zigbuild, zig being the C compiler and linker for the C that some crates build
# (SQLite, aws-lc), for both architectures from one x86_64 machine. It installs what it needs:
# the Rust targets (rustup), cargo-zigbuild and ziglang (PyPI), cargo-deb (crates.io).
set -euo pipefail
cd "$(dirname "$0")/.."

arches="x86_64 aarch64"
out=dist
while [ $# -gt 0 ]; do
  case $1 in
    --arch) [ "$2" = all ] && arches="x86_64 aarch64" || arches=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: scripts/package.sh [--arch x86_64|aarch64|all] [--out DIR]" >&2; exit 2 ;;
  esac
done
say() { printf 'package: %s\n' "$*" >&2; }

# --- tools ------------------------------------------------------------------------------------
for arch in $arches; do
  case $arch in x86_64 | aarch64) ;; *) say "unknown architecture $arch"; exit 2 ;; esac
  for try in 1 2 3; do
    rustup target list --installed | grep -qx "$arch-unknown-linux-musl" && break
    [ "$try" = 3 ] && { say "could not add the Rust target $arch-unknown-linux-musl (rustup, above)"; exit 1; }
    rustup target add "$arch-unknown-linux-musl" || sleep 5
  done
done
# pip's scripts directory on the PATH: under pyenv, a script that `python3 -m pip` installs has
# no shim until `pyenv rehash`.
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
if ! command -v cargo-zigbuild >/dev/null || ! python3 -m ziglang version >/dev/null 2>&1; then
  say "installing cargo-zigbuild and ziglang from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check 'cargo-zigbuild==0.24.1' 'ziglang==0.17.1'
fi
if ! cargo deb --version >/dev/null 2>&1; then
  say "installing cargo-deb"
  cargo install --quiet --locked cargo-deb --version '^3'
fi

version=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')
# Named in `hoist --version` (build.rs), from git; a tarball without .git may set it.
HOIST_COMMIT=${HOIST_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
export HOIST_COMMIT
# Stripped of symbols too (the release profile keeps them for local backtraces).
export CARGO_PROFILE_RELEASE_STRIP=symbols

mkdir -p "$out"
gen=target/package
rm -rf "$gen"
mkdir -p "$gen/completions"

for arch in $arches; do
  triple=$arch-unknown-linux-musl
  say "building $triple (release; several minutes)"
  cargo zigbuild --quiet --release --locked --target "$triple"
  bin=target/$triple/release/hoist
  cp "$bin" "$out/hoist-$version-$arch-linux"

  # The man page and completions come from the binary itself; the x86_64 one runs here.
  if [ ! -s "$gen/hoist.1.gz" ] && [ "$arch" = "$(uname -m)" ]; then
    "$bin" man | gzip -9n >"$gen/hoist.1.gz"
    "$bin" completions bash >"$gen/completions/hoist"
    "$bin" completions zsh >"$gen/completions/_hoist"
    "$bin" completions fish >"$gen/completions/hoist.fish"
  fi
  if [ ! -s "$gen/hoist.1.gz" ]; then
    say "the man page and completions come from an $(uname -m) build: add --arch $(uname -m)"
    exit 1
  fi
  say "making the .deb for $triple"
  deb=$(cargo deb --no-build --no-strip --target "$triple" --output "$out" 2>/dev/null | tail -1)
  [ -s "$deb" ] || { say "cargo deb made no package"; exit 1; }
done

(cd "$out" && sha256sum hoist-"$version"-*-linux hoist_"$version"-*.deb >SHA256SUMS)
say "done:"
(cd "$out" && ls -l hoist-"$version"-*-linux hoist_"$version"-*.deb SHA256SUMS) >&2
