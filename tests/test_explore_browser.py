"""Explore in a real browser (Debian's /usr/bin/chromium through Playwright): the downloads
are named by job, task, filter and date, and hold one row per paragraph when task 1 and task
2 are loaded together; selecting a row opens its detail; the charts are drawn, long report
names shortened on their axis; the investor names are edited in a dialog."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from conftest import SAMPLES
from core.jobs import JobService
from core.settings import load_settings
from test_browser import CHROMIUM, Server, browser, new_page, wait_idle  # noqa: F401  (browser: a fixture)

CHART_TEXT = '[data-testid="stVegaLiteChart"] svg.marks text'  # Vega draws small charts as SVG
CHARTS_DRAWN = """() => {
  const charts = [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')];
  return charts.length > 0 && charts.every(c => c.querySelector('svg.marks, canvas.marks'));
}"""


def wait_charts(page) -> None:
    """Wait until every chart is drawn: a chart takes its height when drawn, moving what is below."""
    page.wait_for_function(CHARTS_DRAWN)
    wait_idle(page)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                       reason="needs Debian's chromium at /usr/bin/chromium"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright python package")
TASK1 = "investment_activity_classification"
TASK2 = "assetization_features_scoring"


def test_downloads_are_named_and_hold_one_row_per_paragraph(browser, tmp_path: Path) -> None:  # noqa: F811
    service = JobService(settings=load_settings())
    job1 = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))))
    service.wait([job1.id], poll_interval=0.1, timeout=60)
    service.collect(job1.id)
    service.edit_job(job1.id, name="Pilot NL")
    job2 = service.submit(service.prepare(TASK2, parent=job1.id))
    service.wait([job2.id], poll_interval=0.1, timeout=60)
    service.collect(job2.id)
    server = Server(tmp_path)
    try:
        page = new_page(browser, tmp_path)
        page.set_default_timeout(90_000)  # a shared CI machine can be slow; nothing here waits on purpose
        page.goto(f"{server.url}/explore")
        page.get_by_role("heading", name="Explore results").wait_for()
        wait_idle(page)
        # add the task-1 job to the task-2 job loaded by default
        page.get_by_role("combobox", name="Jobs to load").focus()  # the loaded job's chip lies over the input
        page.keyboard.type("Pilot")
        page.get_by_text("Pilot NL · Investment activity (task 1)").wait_for()
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        page.get_by_text(f"of {job1.n_rows:,} paragraphs match").wait_for()
        wait_idle(page)
        today = dt.date.today().isoformat()
        with page.expect_download() as info:
            page.get_by_role("button", name="Download CSV").click()
        name = info.value.suggested_filename
        assert name == f"bdasset_Pilot-NL+{job2.id}_task1-task2_all_{today}.csv" or name == (
            f"bdasset_{job2.id}+Pilot-NL_task1-task2_all_{today}.csv"), name
        rows = pd.read_csv(io.BytesIO(Path(info.value.path()).read_bytes()), encoding="utf-8-sig", dtype=str,
                           keep_default_na=False)
        assert len(rows) == job1.n_rows and rows["custom_id"].is_unique
        assert list(rows.columns).index("score") < list(rows.columns).index("cash_flow_score")

        # selecting a row (the grid's first column) opens its detail with the full paragraph
        wait_charts(page)  # the charts above the table are in place: the click lands on the row meant
        detail = page.locator(".st-key-explore_detail_box")
        assert detail.get_by_text("Select a row in the table").count() == 1
        grid = page.locator(".st-key-explore_table .stDataFrameGlideDataEditor").first  # takes the pointer
        grid.scroll_into_view_if_needed()
        grid.click(position={"x": 18, "y": 36 + 44})  # below the 35-px header, in the first row
        detail.get_by_text("Paragraph", exact=True).wait_for()
        wait_idle(page)
        first = rows.loc[0, "paragraph_text"]
        # the paragraph is drawn just after its heading: poll for it (expect retries until its timeout)
        sync_api.expect(detail).to_contain_text(first.split()[0])

        # a filter changes the name; the Excel file is named the same way
        page.get_by_placeholder("e.g. mangrove, green bond").fill("biodiversity")
        page.keyboard.press("Enter")
        page.get_by_text("paragraphs match").filter(has_not_text=f"**{job1.n_rows:,}**").first.wait_for()
        wait_idle(page)
        with page.expect_download() as info:
            page.get_by_role("button", name="Download Excel").click()
        assert info.value.suggested_filename.endswith(f"_task1-task2_filtered_{today}.xlsx")
    finally:
        server.stop()


def test_charts_are_drawn_and_investor_names_edited_in_a_dialog(browser, tmp_path: Path,  # noqa: F811
                                                                isolated_data_dir: Path) -> None:
    service = JobService(settings=load_settings())
    job = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))))
    service.wait([job.id], poll_interval=0.1, timeout=60)
    service.collect(job.id)
    reports = set(pd.concat(pd.read_csv(f, keep_default_na=False) for f in SAMPLES.glob("*.csv"))["pdf_file_name"])
    server = Server(tmp_path)
    try:
        page = new_page(browser, tmp_path)
        page.set_default_timeout(90_000)
        page.goto(f"{server.url}/explore")
        page.get_by_role("heading", name="Explore results").wait_for()
        wait_charts(page)
        drawn = page.locator(CHART_TEXT).all_text_contents()
        assert "Score distribution" in drawn and any(" · n=" in t for t in drawn)  # every share with its n
        # grouped by report: each bar's label is its report's name, without ".pdf", cut with an ellipsis
        page.locator(".st-key-explore_group_by").get_by_text("report", exact=True).click()
        page.locator(CHART_TEXT, has_text="Share scored 1 by report").wait_for()
        wait_charts(page)
        drawn = page.locator(CHART_TEXT).all_text_contents()
        long_names = [r for r in reports if len(r.removesuffix(".pdf")) > 18]
        assert long_names and not any(r in drawn or r.removesuffix(".pdf") in drawn for r in long_names)
        shortened = [t for t in drawn if t.endswith("…")]
        assert shortened and all(len(t) <= 18 for t in shortened)
        assert all(any(r.startswith(t[:-1]) for r in long_names) for t in shortened)

        # the investor names: no editor on the page until the button opens its dialog
        assert page.locator(".st-key-explore_investor_editor").count() == 0
        page.get_by_role("button", name="Investor names").click()
        dialog = page.get_by_role("dialog")
        dialog.locator(".st-key-explore_investor_editor").wait_for()
        assert dialog.get_by_text("Take the investor from").count() == 1
        dialog.get_by_role("button", name="Save investor names").click()
        page.get_by_text("Investor names saved.").wait_for()
        dialog.wait_for(state="detached")
        wait_idle(page)
        saved = isolated_data_dir / "investors.json"
        assert json.loads(saved.read_text())["column"] is None and saved.stat().st_mode & 0o777 == 0o600
        assert page.locator(".st-key-explore_investor_editor").count() == 0
    finally:
        server.stop()
