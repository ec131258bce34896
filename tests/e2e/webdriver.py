"""What the window's E2E suite and benchmark share: plain W3C WebDriver over HTTP (tauri-driver
in front of WebKitWebDriver), the `kura` CLI to look at the store, and xdotool to type scans the
way a USB scanner does."""
import http.client as http_client
import json
import os
import subprocess
import time
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
DRIVER = os.environ.get("KURA_DRIVER", "http://127.0.0.1:4444")


def http(method, path, body=None, timeout=300):
    data = json.dumps(body).encode() if body is not None else None
    for attempt in range(3):
        req = urllib.request.Request(DRIVER + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}").get("value")
        except (http_client.RemoteDisconnected, ConnectionResetError) as e:
            # tauri-driver forwards each request to WebKitWebDriver over a pooled keep-alive
            # connection; when WebKitWebDriver has just closed that connection, tauri-driver
            # fails to send ("client error (SendRequest)") and hangs up on us without a
            # response. The command never reached the browser, so sending it again is safe.
            if attempt == 2:
                raise
            print(f"driver dropped {method} {path} ({e!r}); sending it again", flush=True)
            time.sleep(0.2)


class Window:
    """One WebDriver session on the app: starting it launches the window."""

    def __init__(self, app, args=()):
        options = {"application": app, "args": list(args)}
        self.id = http("POST", "/session", {"capabilities": {"alwaysMatch": {"tauri:options": options}}})["sessionId"]
        self.s = f"/session/{self.id}"

    def close(self):
        http("DELETE", self.s)

    def find(self, css):
        return http("POST", f"{self.s}/element", {"using": "css selector", "value": css})[ELEMENT]

    def text(self, css):
        return http("GET", f"{self.s}/element/{self.find(css)}/text")

    def click(self, css):
        http("POST", f"{self.s}/element/{self.find(css)}/click", {})

    def type_into(self, css, value):
        el = self.find(css)
        http("POST", f"{self.s}/element/{el}/clear", {})
        http("POST", f"{self.s}/element/{el}/value", {"text": value})

    def type_into_file(self, css, path):
        """Picks a file in an <input type=file> (WebDriver sets it without the file dialog)."""
        http("POST", f"{self.s}/element/{self.find(css)}/value", {"text": path})

    def js(self, script, *args):
        return http("POST", f"{self.s}/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        """`script` calls its last argument with the result."""
        return http("POST", f"{self.s}/execute/async", {"script": script, "args": list(args)})


def wait_for(f, timeout=8.0):
    """Polls `f` until it returns something truthy (errors count as not yet); returns the last value."""
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = f()
            if last:
                return last
        except Exception:  # noqa: BLE001 - the element is not there yet
            last = None
        time.sleep(0.05)
    return last


def kura(*args):
    """The store as the `kura` CLI sees it (JSON). Any failure (an error, a failed verify) stops
    the suite with what the CLI said: a setup step that did not happen is never taken as done."""
    out = subprocess.run([os.environ["KURA_CLI"], "--db", os.environ["KURA_DB"], "--json", *args],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"kura {' '.join(args)} exited {out.returncode}: {out.stdout} {out.stderr}")
    return json.loads(out.stdout) if out.stdout.strip() else None


def focus_window():
    # BadMatch noise on stderr: Xvfb runs no window manager.
    subprocess.run(["timeout", "10", "xdotool", "search", "--sync", "--name", "Kura", "windowfocus", "--sync"],
                   check=False, stderr=subprocess.DEVNULL)


def scan(code, focus=True):
    """Types like a keyboard-wedge scanner: fast keys, then Enter at the same pace (`\r` is the
    Return key for xdotool; `\n` would be Linefeed)."""
    if focus:
        focus_window()
    subprocess.run(["xdotool", "type", "--delay", "5", code + "\r"], check=True)


def key(name):
    focus_window()
    subprocess.run(["xdotool", "key", name], check=True)
