#!/usr/bin/env python3
"""Measures the desktop window on a large database (run by tests/e2e/bench.sh; not a test):

- launch to an interactive scan bar (in-process: from main() to the page's ready call; and
  from the WebDriver session request, which includes starting WebKit);
- memory: total PSS of the app and its WebKit processes at idle;
- scan-to-feedback: from the Enter key event's own timeStamp (when the key reached the page) to a
  task posted from the requestAnimationFrame callback of the frame that shows the result (a rAF
  callback runs before that frame is painted; the task it posts runs after), over N check-in
  scans and N find scans of stored specimens drawn at random across the whole database;
- a 10,000-row search result scrolled top to bottom, one step per frame: frame gaps.

Prints a table and writes JSON to $KURA_BENCH_OUT.
"""
import json
import os
import statistics
import subprocess
import sys
import time

from webdriver import Window, focus_window, kura as kura_cli, scan

APP = os.environ["KURA_APP"]
DB = os.environ["KURA_DB"]
N = int(os.environ.get("KURA_BENCH_SCANS", "200"))
OUT = os.environ.get("KURA_BENCH_OUT", "target/bench/desktop.json")


def kura(*args):
    return kura_cli(*args)


def sql(q):
    return subprocess.run(["sqlite3", DB, q], capture_output=True, text=True, check=True).stdout.split()


def drop_page_cache():
    """Empties the OS page cache (root only), so that the database is read from disk."""
    subprocess.run(["sync"], check=False)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def xdo(*args):
    subprocess.run(["xdotool", *args], check=True, stderr=subprocess.DEVNULL)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def pss_tree(root):
    """PSS (kB) of `root` and all its descendants, from /proc/*/smaps_rollup."""
    kids = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(pid))
            except OSError:
                pass
    total, names, todo = 0, [], [root]
    while todo:
        p = todo.pop()
        todo.extend(kids.get(p, []))
        try:
            fields = {}
            for line in open(f"/proc/{p}/smaps_rollup"):
                k, _, v = line.partition(":")
                if k in ("Pss", "Pss_File"):
                    fields[k] = int(v.split()[0])
            total += fields["Pss"]
            # Pss_File: mapped files, mostly the database (SQLite mmap) — page cache the kernel
            # can drop, unlike the rest.
            names.append((open(f"/proc/{p}/comm").read().strip(), fields["Pss"], fields.get("Pss_File", 0)))
        except (OSError, KeyError):
            pass
    return total, names


def main():
    stats = kura("stats")
    print(f"database: {DB} ({stats['specimens']:,} specimens, {stats['containers']:,} containers)")
    # What the check-in scans put away: N new tubes and enough empty boxes.
    boxes = []
    stamp = time.strftime("%H%M%S")
    kura("storage", "add", f"BENCH-{stamp}", "--type", "freezer", "--parent", "DEMO-B1-FRZ", "--temperature=-80")
    kura("storage", "add", f"BENCH-{stamp}-R", "--type", "rack-4x4", "--parent", f"BENCH-{stamp}")
    for i in range((N + 80) // 81):
        code = f"BENCH-{stamp}-R-B{i}"
        kura("storage", "add", code, "--type", "box-9x9", "--parent", f"BENCH-{stamp}-R")
        boxes.append(code)
    tubes = kura("register", "--type", "PL1", "--container", "SCI", "--storage", "D", "--study", "bench", "--donor", "BENCH",
                 "--quantity", "100", "--unit", "mL", "--aliquots", str(N), "--aliquot-quantity", "0.5")["aliquots"]
    # Find scans: stored specimens at random across the whole database (not its oldest rows).
    import random
    rnd = random.Random(7)
    top = int(sql("SELECT max(id) FROM specimens")[0])
    ids = ",".join(str(rnd.randint(1, top)) for _ in range(N * 4))
    sample = sql(f"SELECT code FROM specimens WHERE id IN ({ids}) AND container IS NOT NULL AND status = 'available'")
    rnd.shuffle(sample)
    sample = sample[:N]
    cold = drop_page_cache()

    t0 = time.time()
    w = Window(APP)
    js = w.js

    try:
        launch_in = None
        while time.time() - t0 < 60:
            launch_in = js("return document.body.dataset.ready === '1' && document.activeElement.id === 'scan' ? window.__kura.launchMs : null")
            if launch_in:
                break
            time.sleep(0.01)
        launch_wall = (time.time() - t0) * 1000
        app_pid = int(subprocess.run(["pgrep", "-n", "-f", APP], capture_output=True, text=True).stdout.split()[0])
        time.sleep(5)
        pss_idle, procs = pss_tree(app_pid)
        focus_window()

        # Check-in: box, then its tubes; box after box.
        xdo("key", "F1")
        time.sleep(0.3)
        js("window.__kura.scans.length = 0; window.__kura.waits.length = 0")

        def paced(code):
            # A person scans the next tube after seeing the last answer: each scan waits for the
            # previous one's feedback to be painted (then a short reach), so a sample is one
            # scan's latency, not a queue's.
            n = js("return window.__kura.scans.length")
            scan(code, focus=False)
            for _ in range(3000):
                if js("return window.__kura.scans.length") > n:
                    break
                time.sleep(0.005)
            time.sleep(0.1)

        done = 0
        for b in boxes:
            paced(b)
            for code in tubes[done:done + 81]:
                paced(code)
            done += len(tubes[done:done + 81])
        checkin = js("return window.__kura.scans.slice()")
        checkin_waits = js("return window.__kura.waits.slice()")
        placed = sum(1 for c in tubes if kura("show", c)["container"])
        # Find: random stored specimens, each shown with its box grid.
        xdo("key", "F5")
        time.sleep(0.3)
        js("window.__kura.scans.length = 0; window.__kura.waits.length = 0")
        for code in sample:
            paced(code)
        finds = js("return window.__kura.scans.slice()")
        find_waits = js("return window.__kura.waits.slice()")
        # 10,000 rows, scrolled.
        js("document.querySelector('#find-text').value = 'DEMO'; document.querySelector('#find-text').dispatchEvent(new Event('input'))")
        js("document.querySelector('#find-go').click()")
        rows = None
        for _ in range(600):
            rows = js("return document.querySelector('[data-testid=find-count]')?.textContent")
            if rows:
                break
            time.sleep(0.05)
        # Scrolled as soon as the results are there, then once more.
        scroll = w.js_async("window.__kuraScrollBench(300).then(arguments[0])")
        again = w.js_async("window.__kuraScrollBench(300).then(arguments[0])")
        pss_after, procs_after = pss_tree(app_pid)
    finally:
        w.close()

    gaps = scroll["gaps"][1:]
    frame = statistics.median(gaps)
    gaps2 = again["gaps"][1:]
    slow = [(i + 1, round(g)) for i, g in enumerate(gaps) if g > 25.0]
    slow2 = [(i + 1, round(g)) for i, g in enumerate(gaps2) if g > 25.0]
    result = {
        "specimens": stats["specimens"],
        "launch_ms_in_process": launch_in,
        "launch_ms_from_session_request": launch_wall,
        "pss_idle_mb": pss_idle / 1024,
        "pss_after_mb": pss_after / 1024,
        "processes": procs,
        "processes_after": procs_after,
        "checkin_scans": len(checkin),
        "checkin_placed": placed,
        "checkin_ms": {"p50": pct(checkin, 50), "p95": pct(checkin, 95), "max": max(checkin)},
        "checkin_wait_before_handler_ms": {"p50": pct(checkin_waits, 50), "p95": pct(checkin_waits, 95)},
        "find_wait_before_handler_ms": {"p50": pct(find_waits, 50), "p95": pct(find_waits, 95)},
        "find_scans": len(finds),
        "page_cache_dropped": cold,
        "method": "Enter keydown event.timeStamp -> task posted from the rAF callback of the result frame",
        "find_ms": {"p50": pct(finds, 50), "p95": pct(finds, 95), "max": max(finds)},
        "scroll": {"rows": scroll["rows"], "frames": len(gaps), "median_frame_ms": frame, "p95_frame_ms": pct(gaps, 95),
                   "max_frame_ms": max(gaps), "frames_over_25ms": len(slow), "slow_frames": slow,
                   "again": {"median_frame_ms": statistics.median(gaps2), "max_frame_ms": max(gaps2), "slow_frames": slow2}},
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    json.dump(result, open(OUT, "w"), indent=2)
    fs = subprocess.run(["df", "--output=fstype", DB], capture_output=True, text=True).stdout.split()[-1]
    print(f"database on {fs} ({'page cache dropped before launch' if cold else 'page cache NOT dropped (not root)'})")
    print(f"launch to interactive scan bar: {launch_in:.0f} ms in-process, {launch_wall:.0f} ms from the session request")
    print(f"PSS at idle: {pss_idle / 1024:.0f} MB ({', '.join(f'{n} {kb // 1024} MB (files {f // 1024})' for n, kb, f in procs)}); after the run {pss_after / 1024:.0f} MB ({', '.join(f'{n} {kb // 1024} MB (files {f // 1024})' for n, kb, f in procs_after)})")
    print("scan-to-feedback = the Enter key event's timeStamp → a task posted from the rAF callback of the frame showing the result (after its paint)")
    print(f"scan-to-feedback, check-in ({len(checkin)} scans, {placed} tubes stored): p50 {pct(checkin, 50):.1f} ms, p95 {pct(checkin, 95):.1f} ms, max {max(checkin):.1f} ms (of which before the handler ran: p50 {pct(checkin_waits, 50):.1f} ms, p95 {pct(checkin_waits, 95):.1f} ms)")
    print(f"scan-to-feedback, find ({len(finds)} scans of stored specimens at random across {top:,} rows): p50 {pct(finds, 50):.1f} ms, p95 {pct(finds, 95):.1f} ms, max {max(finds):.1f} ms (of which before the handler ran: p50 {pct(find_waits, 50):.1f} ms, p95 {pct(find_waits, 95):.1f} ms)")
    print(f"scroll of {scroll['rows']:,} rows: {len(gaps)} frames, median {frame:.1f} ms, p95 {pct(gaps, 95):.1f} ms, max {max(gaps):.1f} ms, {len(slow)} over 25 ms {slow}; scrolled again: median {statistics.median(gaps2):.1f} ms, max {max(gaps2):.1f} ms, {len(slow2)} over 25 ms {slow2}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
