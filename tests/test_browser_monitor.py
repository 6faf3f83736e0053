"""Monitor in a real browser (issue 12, items 1, 2, 5, 14): a job started from inside the
auto-refreshing view is followed to completion without a reload; a cancelled job's bar and
counts; the cancel confirmation; light and dark, 1440 and 390 px.

Drives Debian's /usr/bin/chromium through Playwright, against `streamlit run app.py` on
127.0.0.1 with the embedded local backend (rules labeler). Screenshots go to
$BDASSET_SCREENSHOT_DIR (default: the test's temp folder)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import SAMPLES
from core.jobs import JobService
from fakes import FakeChatServer
from core.settings import load_settings
from test_browser import TIMEOUT_MS, Server, browser, new_page, shots, wait_idle  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser
TASK1 = "investment_activity_classification"


def job_with_a_gap(service: JobService) -> str:
    """A collected task-1 job of one sample file whose first answer went missing: Monitor
    offers to re-run that row."""
    job = service.submit(service.prepare(TASK1, inputs=[sorted(SAMPLES.glob("*.csv"))[0]]))
    service.wait([job.id], poll_interval=0.1, timeout=60)
    service.collect(job.id)
    raw = next(Path(service.get(job.id).job_dir, "raw").glob("*_output.jsonl"))
    raw.write_bytes(b"".join(raw.read_bytes().splitlines(keepends=True)[1:]))
    service.collect(job.id)
    return job.id


def wait_for(condition, *, timeout: float, what: str):
    """Poll ``condition`` until it returns something truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture
def chat(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeChatServer]:
    """The local backend forwards to a scripted chat server whose latency a test sets."""
    with FakeChatServer() as server:
        monkeypatch.setenv("BDASSET_LOCAL_CHAT_URL", server.base_url)
        yield server


def test_a_rerun_started_inside_the_monitor_is_followed_to_completion_without_a_reload(
        browser, chat: FakeChatServer, tmp_path: Path, shots: Path) -> None:
    service = JobService(settings=load_settings())
    original = job_with_a_gap(service)
    server = Server(tmp_path)
    try:
        page = new_page(browser, tmp_path)
        page.goto(f"{server.url}/monitor")
        page.get_by_role("heading", name="Monitor jobs").wait_for()
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text("Active jobs: 0 of 1").wait_for()
        wait_idle(page)
        # the marker is lost if the page is reloaded: following the job must not need a reload
        page.evaluate("() => { window.__not_reloaded = true; }")
        chat.latency = 4.0  # the re-run is still running when the click's own rerun has ended
        page.get_by_role("button", name="Re-run the 1 row that did not succeed").click()
        retry = wait_for(lambda: [j for j in service.list_jobs() if j.retry_of == original], timeout=30,
                         what="the re-run job is recorded")[0]
        page.get_by_text(f"{retry.id}: running").wait_for()
        # the page follows the new job by itself: it completes, is collected, and the sidebar agrees
        page.get_by_text(f"{retry.id}: completed").wait_for(timeout=60_000)
        page.get_by_text("Results collected").first.wait_for(timeout=60_000)
        sidebar.get_by_text("Active jobs: 0 of 2").wait_for(timeout=60_000)
        assert page.evaluate("() => window.__not_reloaded === true")
        assert service.get(retry.id).collected_at is not None
        wait_idle(page)
        page.screenshot(path=str(shots / "monitor_rerun_followed.png"), full_page=True)
    finally:
        server.stop()


DARK = {"BASE": "dark", "BACKGROUND_COLOR": "#0e1117", "SECONDARY_BACKGROUND_COLOR": "#262730",
        "TEXT_COLOR": "#fafafa"}
CUT_OFF_LABELS = """() => [...document.querySelectorAll('[data-testid="stMain"] button, [data-testid="stMain"] a')]
    .filter(e => e.offsetParent !== null && e.innerText.trim())
    .filter(e => [e, ...e.querySelectorAll('*')].some(x => x.scrollWidth > x.clientWidth + 1
                                                       && getComputedStyle(x).overflow !== 'visible'))
    .map(e => e.innerText.trim())"""


def settle(page) -> None:
    """Wait until no script run is under way (a run leaves the previous run's elements on the page
    until it ends)."""
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
                           " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')")
    page.locator('[data-stale="true"]').first.wait_for(state="detached")


def click_until_shown(page, button, shown, *, tries: int = 3) -> None:
    """Click ``button`` until ``shown`` is visible. While a job runs, Monitor re-runs itself every
    few seconds, and Streamlit drops a click that lands while such a run is replacing the
    element clicked (seen under load in CI); a person clicks again, and so does the test."""
    for attempt in range(tries):
        settle(page)
        button.click()
        try:
            shown.wait_for(timeout=TIMEOUT_MS // tries)
            return
        except Exception:
            if attempt == tries - 1:
                raise


def cancelled_job_record(service: JobService, data_dir: Path) -> str:
    """A job of 20,000 rows cancelled after 6,835 answers (the issue's case), as the registry holds it."""
    from core.models import BatchRecord, Job

    job = Job(id="job_20261125_000000_abcd", task=TASK1, provider="local", model="m", max_tokens=10,
              created_at="2026-11-25T00:00:00+00:00", job_dir=str(data_dir / "jobs" / "x"),
              output_dir=str(data_dir / "out"), n_rows=20_000, n_requests=20_000, sources=[], prompts={},
              estimate={}, name="Cancelled half-way", collected_at="2026-11-25T02:00:00+00:00",
              result_counts={"succeeded": 6_835, "cancelled": 13_165},
              batches=[BatchRecord(key="b000", request_file="f", n_requests=20_000, first_custom_id="a",
                                   last_custom_id="b", batch_id="batch_x", status="cancelled", total=20_000,
                                   completed=6_835)])
    with service.registry.transaction() as tx:
        tx.put_job(job.to_record())
    return job.id


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_monitor_layout_running_cancelled_and_confirmations(browser, chat: FakeChatServer, isolated_data_dir: Path,
                                                            tmp_path: Path, shots: Path, dark: bool,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Screenshots at 1440 and 390 px: a running job, a cancelled one, the cancel and delete
    confirmations; no button label is cut off, the cancelled job's bar is not full. Dark: the
    browser prefers dark, and the server is told so too (Streamlit reads STREAMLIT_THEME_*), so
    the check does not depend on which themes .streamlit/config.toml offers."""
    if dark:
        for option, value in DARK.items():
            monkeypatch.setenv(f"STREAMLIT_THEME_{option}", value)
    service = JobService(settings=load_settings())
    cancelled = cancelled_job_record(service, isolated_data_dir)
    chat.latency = 60.0  # the job below stays running while the screenshots are taken
    running = service.submit(service.prepare(TASK1, inputs=[sorted(SAMPLES.glob("*.csv"))[0]]))
    service.edit_job(running.id, name="Spring run")
    theme = "dark" if dark else "light"
    server = Server(tmp_path)
    try:
        for width in (1440, 390):
            context = browser.new_context(viewport={"width": width, "height": 1800 if width > 400 else 3200},
                                          color_scheme="dark" if dark else "light")
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{server.url}/monitor")
            page.get_by_role("heading", name="Monitor jobs").wait_for()
            page.get_by_text(f"{running.id}: running").wait_for()
            settle(page)
            click_until_shown(page, page.locator(".st-key-monitor_cancel button").first,
                              page.locator(".st-key-monitor_cancel_yes button"))
            yes = page.locator(".st-key-monitor_cancel_yes button").bounding_box()
            no = page.locator(".st-key-monitor_cancel_no button").bounding_box()
            assert abs(yes["y"] - no["y"]) < 2 and yes["x"] > no["x"]  # side by side, "No" first
            colour = page.locator(".st-key-monitor_cancel_yes button").evaluate("e => getComputedStyle(e).backgroundColor")
            assert colour == "rgb(198, 40, 40)", colour  # red, not the theme's green primary
            assert page.evaluate(CUT_OFF_LABELS) == []
            page.screenshot(path=str(shots / f"monitor_running_confirm_{theme}_{width}.png"), full_page=True)
            page.locator(".st-key-monitor_cancel_no button").first.click()

            settle(page)
            page.locator(".st-key-monitor_job").first.click()
            page.get_by_role("option", name=re.compile(cancelled)).click()
            page.get_by_text(f"{cancelled}: cancelled").wait_for()
            settle(page)
            bar = page.locator('[role="progressbar"]').first
            assert bar.get_attribute("aria-valuenow") == "34"
            page.get_by_text("Name, note, archive or delete").first.click()
            settle(page)
            click_until_shown(page, page.get_by_role("button", name="Delete…"), page.get_by_text("Delete this job?"))
            settle(page)
            assert page.evaluate(CUT_OFF_LABELS) == []
            page.screenshot(path=str(shots / f"monitor_cancelled_delete_{theme}_{width}.png"), full_page=True)
            context.close()
    finally:
        server.stop()
