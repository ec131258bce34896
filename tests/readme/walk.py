#!/usr/bin/env python3
"""The README, walked: every `kura` and `kura-registry` line of its ```sh blocks, in order, on a
fresh data directory, as a new user would type them. A line fails the walk when it exits non-zero
unless the README marks it `# refused: CODE` (then it must fail with that code). Lines marked
`(not run here` need what this machine lacks (a printer, PostgreSQL on db.example) and are
skipped; lines of other tools (cargo, createdb, the bench scripts) are not the walk's.

What the walk supplies, as a person would: the enrollment code the registry just printed (in
place of the README's example code), the address the registry listens on, and the secrets piped
to `--password-stdin` / `--sign-stdin` (every password in the walk is `pw-<user>-secret`). It runs at a
fixed wall clock in 2026 (libfaketime) so that the README's Kura IDs stay the IDs Kura issues.

Usage: tests/readme/walk.py [BIN_DIR]   (default: target/debug)
"""
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug"))
EXAMPLE_CODE = "7KQM-2XPA-9TRB-WC4D-H3NF"
# The sending bench's key fingerprint as the README shows it; the walk uses the one `kura key`
# printed, as the receiving site would be told it by telephone.
EXAMPLE_FINGERPRINT = "1f66 64c1 912b 3c78 224c ad1a e21b 0bbd"
WALL = "@2026-12-04 10:00:00"


def lines(readme):
    """(section, line) for every command line of the ```sh blocks, continuations joined."""
    section = ""
    in_block = False
    pending = ""
    for raw in readme.splitlines():
        if raw.startswith("#") and not in_block:
            section = raw.lstrip("# ").strip()
        if raw.startswith("```"):
            in_block = raw.strip() == "```sh" and not in_block
            continue
        if not in_block:
            continue
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line and not line.startswith("#"):
            yield section, line


def split_comment(line):
    """The command and its comment (a `#` after two spaces, outside quotes)."""
    m = re.search(r"\s{2,}#\s?(.*)$", line)
    if m and line[: m.start()].count('"') % 2 == 0:
        return line[: m.start()].strip(), m.group(1)
    return line.strip(), ""


def wait_port(port, proc, log):
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"the registry exited: {open(log).read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("the registry did not listen")


def main():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    scratch = tempfile.mkdtemp(prefix="kura-readme-")
    os.symlink(os.path.join(ROOT, "assets"), os.path.join(scratch, "assets"))
    env = {
        "PATH": BIN + os.pathsep + os.environ["PATH"],
        "HOME": scratch,
        "XDG_DATA_HOME": os.path.join(scratch, "data"),
        "LANG": "C.UTF-8",
        "TZ": "Asia/Tokyo",
        "FAKETIME": WALL,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "KURA_LOG": "warn",
    }
    faketime = subprocess.run(["sh", "-c", "ls /usr/lib/*/faketime/libfaketime.so.1 | head -1"],
                              capture_output=True, text=True).stdout.strip()
    if not faketime:
        sys.exit("libfaketime is missing (scripts/setup installs it)")
    env["LD_PRELOAD"] = faketime
    code = None
    fingerprint = None
    session = None
    server = None
    ran = skipped = 0
    try:
        for section, line in lines(readme):
            cmd, comment = split_comment(line)
            words = shlex.split(cmd, comments=False)
            if not words or words[0] not in ("kura", "kura-registry", "printf"):
                continue
            if "(not run here" in comment:
                skipped += 1
                continue
            if code:
                cmd = cmd.replace(EXAMPLE_CODE, code)
            if fingerprint:
                cmd = cmd.replace(EXAMPLE_FINGERPRINT, fingerprint)
            cmd = cmd.replace("https://registry.example:8470", "http://127.0.0.1:8470")
            stdin = None
            if "-stdin" in cmd:
                # `user add U … --password-stdin --sign-stdin --signer S`: U's first password,
                # then S's signing password (the signer is the one signed in unless named);
                # `login U --password-stdin`: U's; `user pin U --password-stdin`: a PIN.
                lines_in = []
                m = re.search(r"\b(?:user add|login|user pin)\s+(\S+)", cmd)
                if "--password-stdin" in cmd:
                    lines_in.append("482913" if "user pin" in cmd else f"pw-{m.group(1)}-secret")
                if "--sign-stdin" in cmd:
                    s = re.search(r"--signer\s+(\S+)", cmd)
                    lines_in.append(f"pw-{s.group(1) if s else session}-secret")
                stdin = "".join(f"{x}\n" for x in lines_in)
            background = cmd.endswith("&")
            if background:
                cmd = cmd[:-1].strip()
                log = os.path.join(scratch, "registry.log")
                try:
                    socket.create_connection(("127.0.0.1", 8470), timeout=0.2).close()
                    sys.exit("something already listens on 127.0.0.1:8470, the registry's port")
                except OSError:
                    pass
                server = subprocess.Popen(["bash", "-c", "exec " + cmd], cwd=scratch, env=env,
                                          stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                          start_new_session=True)
                wait_port(8470, server, log)
                print(f"ok   [{section}] {cmd} (in the background)")
                ran += 1
                continue
            r = subprocess.run(["bash", "-c", cmd], cwd=scratch, env=env, input=stdin,
                               capture_output=True, text=True, timeout=120)
            out = r.stdout + r.stderr
            refused = re.search(r"refused: (\w+)", comment)
            if refused:
                want = refused.group(1)
                if r.returncode == 0 or f"error[{want}]" not in out:
                    sys.exit(f"FAIL [{section}] {cmd}\n  expected refused: {want}, got exit "
                             f"{r.returncode}:\n{out}")
            elif r.returncode != 0:
                sys.exit(f"FAIL [{section}] {cmd}\n  exit {r.returncode}:\n{out}")
            if words[:2] == ["kura", "login"] or (words[:3] == ["kura", "user", "add"]
                                                   and session is None):
                session = words[2] if words[1] == "login" else words[3]
            if words[:2] == ["kura", "logout"]:
                session = None
            if words[:2] == ["kura", "key"]:
                m = re.search(r"\b([0-9a-f]{4}(?: [0-9a-f]{4}){7})\b", out)
                fingerprint = m.group(1) if m else sys.exit(f"no fingerprint in: {out}")
            if words[:2] == ["kura-registry", "enroll"]:
                m = re.search(r"\b([0-9A-Z]{4}(?:-[0-9A-Z]{4}){4})\b", out)
                code = m.group(1) if m else sys.exit(f"no code in: {out}")
            ran += 1
            print(f"ok   [{section}] {cmd}")
    finally:
        if server:
            os.killpg(server.pid, 15)
            server.wait()
    if ran < 40:
        sys.exit(f"only {ran} README lines ran: is the README's shape what the walk expects?")
    print(f"README walk: {ran} lines ran, {skipped} need what this machine lacks")


if __name__ == "__main__":
    main()
