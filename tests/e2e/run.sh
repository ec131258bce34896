#!/usr/bin/env bash
# The end-to-end suite on the real window (debug build) against a 2,000-specimen demo database;
# display.sh starts and stops Xvfb and tauri-driver around it.
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
export KURA_APP="$target/debug/kura-desktop" KURA_CLI="$target/debug/kura" KURA_USER=e2e
export KURA_REGISTRY_BIN="$target/debug/kura-registry" KURA_SYNC_INTERVAL=2
export KURA_E2E_OUT="$PWD/target/e2e"
rm -rf "$KURA_E2E_OUT"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export KURA_DB="$work/kura.sqlite3"
# A Japanese system and a fresh webview profile (no language chosen yet): the window must start
# in Japanese. XDG_DATA_HOME keeps the profile (localStorage) inside $work.
export LANG=ja_JP.UTF-8 XDG_DATA_HOME="$work/data"
"$KURA_CLI" --db "$KURA_DB" demo --specimens 2000 >/dev/null 2>&1
tests/e2e/display.sh :97 4444 python3 tests/e2e/e2e.py
