#!/usr/bin/env bash
# Measures the release build of the desktop window on a large demo database (default 1,000,000
# specimens, made once and kept in target/bench/). Not part of the test command: run it by hand.
#   tests/e2e/bench.sh [SPECIMENS]
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-1000000}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
(cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
cargo build --release -q -p kura-desktop -p kura-cli -p kura-registry
export KURA_APP="$target/release/kura-desktop" KURA_CLI="$target/release/kura" KURA_USER=bench
export KURA_REGISTRY_BIN="$target/release/kura-registry" KURA_SYNC_INTERVAL=3600
mkdir -p target/bench
base="target/bench/kura-$n.sqlite3"
if [[ ! -f "$base" ]]; then
  echo "creating a $n-specimen demo database (once) …" >&2
  "$KURA_CLI" --db "$base.tmp" demo --specimens "$n" >/dev/null
  mv "$base.tmp" "$base"
fi
# The working copy on the repository's disk (not a temp dir that may be RAM).
work="$(mktemp -d "$PWD/target/bench/run.XXXXXX")"
trap 'rm -rf "$work"' EXIT
export KURA_DB="$work/kura.sqlite3" KURA_BENCH_OUT="$PWD/target/bench/desktop.json"
cp "$base" "$KURA_DB"
tests/e2e/display.sh :96 4454 python3 tests/e2e/bench.py
