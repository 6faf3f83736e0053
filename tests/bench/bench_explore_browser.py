"""Benchmark of the Explore page in a real headless Chromium with 100,000 result rows (not a
test; pytest does not collect it).

Run from the repository root:  .venv/bin/python tests/bench/bench_explore_browser.py [--rows N] [--runs R]
                               [--shots DIR]

Writes N (default 100,000) task-1 result rows and a collected job into a temporary data folder
(as bench_explore.py does), starts ``streamlit run app.py`` on 127.0.0.1 with that folder, and
drives Debian's /usr/bin/chromium through Playwright (never ``playwright install``). Prints, per
run, the seconds from opening /explore in a new tab until the first chart and the table are
drawn (the first run after the server starts reads the result files; later ones find them
cached), until the page is idle, from picking an investor in the filter until the new count and
table are drawn, and, within one tab, from clicking Explore in the sidebar of the Home page
until Explore's first chart and table are drawn (Home shows the bench's job in a chart and a
table, as it shows anyone's newest jobs, so Streamlit's chart and table code is loaded then). With --shots, screenshots at 1440 and 390 px,
light and dark, go to DIR. With --profile, one more warm open runs under Chromium's sampling
profiler and the page's main-thread CPU time is printed per script file (where the browser's
seconds go: React, Streamlit's element styling, Vega, the table grid ...).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_explore import build  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHART = '[data-testid="stVegaLiteChart"] :is(svg.marks, canvas.marks)'  # Vega draws small charts as SVG
TABLE = '.st-key-explore_table canvas'  # the paragraphs table (keyed), not the investor editor
IDLE = ("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """``streamlit run app.py`` on 127.0.0.1 with ``data_dir`` as the data folder."""
    return serve(ROOT / "app.py", cwd=ROOT, log=log, env={"BDASSET_DATA_DIR": str(data_dir)})


def serve(script: Path, *, cwd: Path, log: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """``streamlit run script`` on a free port of 127.0.0.1, once it answers its health check:
    the process and its URL."""
    port = free_port()
    args = [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", "127.0.0.1",
            "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(args, cwd=cwd, env=dict(os.environ, **(env or {})), stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as answer:
                if answer.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"streamlit did not start; see {log}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def open_explore(browser, url: str, width: int = 1440, scheme: str = "light") -> tuple[object, float, float, float]:
    """Open /explore in a new tab (of a browser asking for the ``scheme`` colour theme): the
    page, and seconds until its title (the app shell, the same for every page), its first chart
    and table, and idle."""
    page = browser.new_page(viewport={"width": width, "height": 1000}, color_scheme=scheme)
    page.set_default_timeout(120_000)
    started = time.perf_counter()
    page.goto(f"{url}/explore")
    page.get_by_role("heading", name="Explore results").wait_for()
    title = time.perf_counter() - started
    page.locator(CHART).first.wait_for()
    page.locator(TABLE).first.wait_for()
    drawn = time.perf_counter() - started
    page.wait_for_function(IDLE)
    return page, title, drawn, time.perf_counter() - started


def navigate_to_explore(browser, url: str, width: int = 1440) -> float:
    """Open Home in a new tab and wait until it is idle, then click Explore in the sidebar: the
    seconds until Explore's first chart and table are drawn (the app is already loaded)."""
    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(url)
    page.get_by_role("heading", name="BiodiversityASSET batch dashboard").wait_for()
    page.wait_for_function(IDLE)
    link = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"]', has_text="Explore").first
    started = time.perf_counter()
    link.click()
    page.get_by_role("heading", name="Explore results").wait_for()
    page.locator(CHART).first.wait_for()
    page.locator(TABLE).first.wait_for()
    elapsed = time.perf_counter() - started
    page.close()
    return elapsed


def profile_open(browser, url: str, trace: Path, top: int = 12) -> None:
    """Open /explore in a new tab under the sampling profiler until its chart and table are
    drawn; print the sampled CPU time per script file (and the profiler's own categories:
    "(program)" is the browser's native work such as parsing and style, "(idle)" waiting)."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(120_000)
    browser.start_tracing(page=page, path=str(trace), categories=["disabled-by-default-v8.cpu_profiler"])
    started = time.perf_counter()
    page.goto(f"{url}/explore")
    page.locator(CHART).first.wait_for()
    page.locator(TABLE).first.wait_for()
    drawn = time.perf_counter() - started
    browser.stop_tracing()
    page.close()
    events = json.loads(trace.read_text())
    events = events["traceEvents"] if isinstance(events, dict) else events
    frames, per_file = {}, collections.Counter()
    for event in events:
        if event.get("name") != "ProfileChunk":
            continue
        data = event["args"]["data"]
        profile = data.get("cpuProfile", {})
        for node in profile.get("nodes", []):
            frames[(event["id"], node["id"])] = node["callFrame"]
        for sample, delta in zip(profile.get("samples", []), data.get("timeDeltas", [])):
            frame = frames.get((event["id"], sample), {})
            per_file[frame.get("url", "").rsplit("/", 1)[-1] or frame.get("functionName", "?")] += delta / 1e6
    busy = sum(v for k, v in per_file.items() if k != "(idle)")
    print(f"profiled warm open: chart+table {drawn:.2f} s; sampled main-thread CPU {busy:.2f} s, by script file:")
    for name, seconds in per_file.most_common(top):
        print(f"  {seconds:5.2f} s  {name}")


def change_filter(page, rows: int) -> float:
    matched = page.get_by_text(f"of {rows:,} rows match").first
    before = matched.inner_text()
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Investor").locator("input")
    box.click()
    box.fill("Investor3")  # the option list is virtual: narrow it so the option is drawn
    started = time.perf_counter()
    page.get_by_role("option", name="Investor3", exact=True).click()
    page.wait_for_function("(before) => { const m = [...document.querySelectorAll('p')].find("
                           "p => p.innerText.includes('rows match')); return m && m.innerText !== before; }",
                           arg=before)
    page.wait_for_function(IDLE)
    elapsed = time.perf_counter() - started
    page.keyboard.press("Escape")
    return elapsed


def shots(browser, url: str, folder: Path, theme: str) -> None:
    """Full-page screenshots at 1440 and 390 px; the app draws the theme the browser asks for."""
    for width in (1440, 390):
        page, _, _, _ = open_explore(browser, url, width, scheme=theme)
        page.set_viewport_size({"width": width, "height": 2600 if width > 500 else 4200})
        page.wait_for_timeout(800)
        page.screenshot(path=str(folder / f"explore_{theme}_{width}.png"), full_page=True)
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shots", type=Path, default=None)
    parser.add_argument("--profile", action="store_true", help="profile one more warm open in the browser")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        build(data_dir, args.rows)
        print(f"{args.rows:,} result rows in a temporary data folder")
        proc, url = start_server(data_dir, Path(tmp) / "streamlit.log")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    first, idle, refilter, after_title, navigate = [], [], [], [], []
                    for run in range(args.runs):
                        page, title, drawn, done = open_explore(browser, url)
                        first.append(drawn)
                        after_title.append(drawn - title)
                        idle.append(done)
                        refilter.append(change_filter(page, args.rows))
                        label = "cold (reads the files)" if run == 0 else "warm (cached frame)"
                        print(f"run {run + 1} {label:24s} title {title:5.2f} s · chart+table {drawn:5.2f} s "
                              f"({drawn - title:4.2f} s after the title) · idle {done:5.2f} s · "
                              f"filter change {refilter[-1]:5.2f} s")
                        page.close()
                        navigate.append(navigate_to_explore(browser, url))
                        print(f"      in-tab navigation Home -> Explore until chart+table {navigate[-1]:5.2f} s")
                    if len(first) > 1:
                        print(f"warm median: chart+table {statistics.median(first[1:]):.2f} s "
                              f"({statistics.median(after_title[1:]):.2f} s after the title), idle "
                              f"{statistics.median(idle[1:]):.2f} s; filter change median "
                              f"{statistics.median(refilter):.2f} s; in-tab navigation median "
                              f"{statistics.median(navigate):.2f} s")
                    if args.profile:
                        profile_open(browser, url, Path(tmp) / "trace.json")
                    if args.shots:
                        args.shots.mkdir(parents=True, exist_ok=True)
                        for theme in ("light", "dark"):
                            shots(browser, url, args.shots, theme)
                        print(f"screenshots in {args.shots}")
                finally:
                    browser.close()
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
