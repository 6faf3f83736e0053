"""What Streamlit itself needs on this machine (not a test; pytest does not collect it): the
floor under the Explore page's figures in ``bench_explore_browser.py``.

Run from the repository root:  .venv/bin/python tests/bench/bench_streamlit_floor.py [--runs R]

Writes a bare two-page Streamlit app into a temporary folder: "Home" (a title) and "Table" (a
title, one Vega-Lite bar chart of 12 bars and a 500-row ``st.dataframe``, the smallest page that
shows "a first chart and a table"). Serves it on 127.0.0.1 and drives Debian's /usr/bin/chromium
through Playwright as the Explore bench does. Prints, per run, the seconds from opening /table
in a new tab until its chart and table are drawn, and from clicking "Table" in Home's sidebar in
an open tab until they are drawn.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_explore_browser import CHROMIUM, CHROMIUM_ARGS, IDLE, serve, stop_server  # noqa: E402

APP = '''
import streamlit as st

def home():
    st.title("Floor home")

def table():
    import numpy as np
    import pandas as pd
    st.title("Floor table")
    bars = pd.DataFrame({"group": [f"Investor{i:02d}" for i in range(12)], "share": np.linspace(0.1, 0.9, 12)})
    st.vega_lite_chart(bars, {"mark": "bar", "encoding": {"y": {"field": "group", "type": "nominal", "sort": "-x"},
                                                          "x": {"field": "share", "type": "quantitative"}}})
    rows = pd.DataFrame({"paragraph_text": [f"Paragraph {i} about wetlands and their value." * 4 for i in range(500)],
                         "score": np.arange(500) % 2, "explanation": "generated"})
    st.dataframe(rows, hide_index=True, key="floor_table")

st.navigation([st.Page(home, title="Home", default=True), st.Page(table, title="Table", url_path="table")]).run()
'''
CHART = '[data-testid="stVegaLiteChart"] :is(svg.marks, canvas.marks)'
TABLE = '[data-testid="stDataFrame"] canvas'


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "floor.py"
        app.write_text(APP, encoding="utf-8")
        proc, url = serve(app, cwd=Path(tmp), log=Path(tmp) / "streamlit.log")
        try:
            opens, navigations = [], []
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for run in range(args.runs + 1):  # the first open warms the server's imports; not counted
                    page = browser.new_page(viewport={"width": 1440, "height": 1000})
                    page.set_default_timeout(120_000)
                    started = time.perf_counter()
                    page.goto(f"{url}/table")
                    page.locator(CHART).first.wait_for()
                    page.locator(TABLE).first.wait_for()
                    opened = time.perf_counter() - started
                    page.close()

                    page = browser.new_page(viewport={"width": 1440, "height": 1000})
                    page.set_default_timeout(120_000)
                    page.goto(url)
                    page.get_by_role("heading", name="Floor home").wait_for()
                    page.wait_for_function(IDLE)
                    link = page.locator('[data-testid="stSidebarNav"] a', has_text="Table").first
                    started = time.perf_counter()
                    link.click()
                    page.locator(CHART).first.wait_for()
                    page.locator(TABLE).first.wait_for()
                    navigated = time.perf_counter() - started
                    page.close()
                    label = "warm-up" if run == 0 else f"run {run}"
                    print(f"{label}: new tab to chart and table {opened:.2f} s; in-tab navigation {navigated:.2f} s")
                    if run:
                        opens.append(opened)
                        navigations.append(navigated)
                browser.close()
        finally:
            stop_server(proc)
    print(f"median of {args.runs}: new tab {statistics.median(opens):.2f} s "
          f"({min(opens):.2f}-{max(opens):.2f}); in-tab navigation {statistics.median(navigations):.2f} s "
          f"({min(navigations):.2f}-{max(navigations):.2f})")


if __name__ == "__main__":
    main()
