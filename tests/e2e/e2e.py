#!/usr/bin/env python3
"""End to end on the real Kura window: the release of kura-desktop under Xvfb, driven through
tauri-driver + WebKitWebDriver (W3C WebDriver over plain HTTP), scans typed the way a USB
scanner types them (xdotool), and the store checked through the `kura` CLI afterwards.

Run by tests/e2e/run.sh (which starts and stops Xvfb and tauri-driver).
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

DRIVER = "http://127.0.0.1:4444"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
APP = os.environ["KURA_APP"]
KURA = os.environ["KURA_CLI"]
DB = os.environ["KURA_DB"]
OUT = os.environ.get("KURA_E2E_OUT", "target/e2e")
results = []


def http(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(DRIVER + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"{}").get("value")


def kura(*args):
    out = subprocess.run([KURA, "--db", DB, "--json", *args], capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout)


def scan(code):
    """Types like a keyboard-wedge scanner: fast keys, then Enter."""
    subprocess.run(["timeout", "10", "xdotool", "search", "--sync", "--name", "Kura", "windowfocus", "--sync"], check=False)
    subprocess.run(["xdotool", "type", "--delay", "5", code], check=True)
    subprocess.run(["xdotool", "key", "Return"], check=True)


def check(name, cond, detail=""):
    results.append((name, bool(cond)))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else f": {detail}"), flush=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    session = http("POST", "/session", {"capabilities": {"alwaysMatch": {"tauri:options": {"application": APP}}}})["sessionId"]
    s = f"/session/{session}"

    def find(css):
        return http("POST", f"{s}/element", {"using": "css selector", "value": css})[ELEMENT]

    def text(css):
        return http("GET", f"{s}/element/{find(css)}/text")

    def wait_text(css, pred, timeout=5.0):
        end = time.time() + timeout
        last = None
        while time.time() < end:
            try:
                last = text(css)
                if pred(last):
                    return last
            except Exception as e:  # noqa: BLE001 - element not there yet
                last = str(e)
            time.sleep(0.05)
        return last

    def screenshot(name):
        # The X server's own picture of the screen (WebKitWebDriver's screenshot endpoint
        # crashed the driver now and then under Xvfb).
        time.sleep(0.5)  # let WebKit paint what the DOM already says
        subprocess.run(["import", "-window", "root", os.path.join(OUT, f"{name}.png")], check=False, timeout=20)

    try:
        # Launch to an interactive scan bar.
        t0 = time.time()
        find("input")
        check("the scan bar is there", True)
        print(f"scan bar after {time.time() - t0:.2f} s of session start")
        screenshot("01-start")

        # A specimen scan shows its location path, as the store has it.
        want = kura("show", "DEMO240000014B")
        scan("DEMO240000014B")
        got = wait_text("#feedback", lambda t: t and "DEMO240000014B" in t and "›" in t)
        check("a scanned specimen shows its location path", got and want["path"] in got, f"{got!r} vs {want['path']!r}")
        screenshot("02-specimen")

        # A wrong check character says what was expected.
        scan("DEMO240000014X")
        got = wait_text("#feedback", lambda t: t and "DEMO240000014X" in t)
        check("a wrong check character is refused and the expected one named", got and "B" in got and "DEMO240000014X" in got, got)
        screenshot("03-wrong-check")

        # Switching to English at run time.
        http("POST", f"{s}/element/{find('header button')}/click", {})
        placeholder = http("GET", f"{s}/element/{find('input')}/attribute/placeholder")
        check("the window switches to English", placeholder == "Scan a specimen, box or position", placeholder)
        scan("DEMO240000014X")
        got = wait_text("#feedback", lambda t: t and t.startswith("Wrong check character"))
        check("errors follow the language", got and got.startswith("Wrong check character"), got)
        screenshot("04-english")
        # The store is unchanged by lookups and refusals.
        check("verify passes afterwards", kura("verify")["ok"] is True)
    finally:
        http("DELETE", s)
    failed = sum(1 for _, ok in results if not ok)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
