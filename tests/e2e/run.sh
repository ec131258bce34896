#!/usr/bin/env bash
# Starts Xvfb and tauri-driver, runs the end-to-end suite on the real window, and stops
# everything it started, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
export KURA_APP="$target/debug/kura-desktop"
export KURA_CLI="$target/debug/kura"
export KURA_E2E_OUT="$PWD/target/e2e"
rm -rf "$KURA_E2E_OUT"
work="$(mktemp -d)"
export KURA_DB="$work/kura.sqlite3" KURA_USER=e2e
export DISPLAY=:97
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -f WebKitWebDriver 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$KURA_CLI" --db "$KURA_DB" demo --specimens 2000 >/dev/null 2>&1
Xvfb "$DISPLAY" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
sleep 1
tauri-driver --port 4444 >/tmp/kura-e2e-driver.log 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  curl -s http://127.0.0.1:4444/status >/dev/null 2>&1 && break
  sleep 0.2
done
python3 tests/e2e/e2e.py
