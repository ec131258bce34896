#!/usr/bin/env bash
# Runs a command with the window's test bench around it: an Xvfb display and tauri-driver
# (which starts WebKitWebDriver), both stopped when the command ends, whatever happens.
#   tests/e2e/display.sh DISPLAY DRIVER_PORT COMMAND...
# The command sees DISPLAY and KURA_DRIVER (the driver's URL).
set -euo pipefail
export DISPLAY="$1" KURA_DRIVER="http://127.0.0.1:$2"
port="$2" native=$(($2 + 1))
shift 2
log="${KURA_DRIVER_LOG:-$(mktemp)}"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -f "WebKitWebDriver --port=$native" 2>/dev/null || true
  # A window whose session was never closed (the command crashed) goes too.
  if [[ -n "${KURA_APP:-}" ]]; then pkill -f "$KURA_APP" 2>/dev/null || true; fi
  [[ -n "${KURA_DRIVER_LOG:-}" ]] || rm -f "$log"
}
trap cleanup EXIT
Xvfb "$DISPLAY" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
sleep 1
PATH="$HOME/.cargo/bin:$PATH" tauri-driver --port "$port" --native-port "$native" >"$log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  curl -s "$KURA_DRIVER/status" >/dev/null 2>&1 && break
  sleep 0.2
done
"$@" || { rc=$?; echo "tauri-driver log (last lines):" >&2; tail -20 "$log" >&2; exit $rc; }
