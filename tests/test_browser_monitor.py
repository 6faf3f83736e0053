"""Monitor in a real browser (issue 12, items 1, 2, 5, 14): a job started from inside the
auto-refreshing view is followed to completion without a reload; a cancelled job's bar and
counts; the cancel confirmation; light and dark, 1440 and 390 px.

Drives Debian's /usr/bin/chromium through Playwright, against `streamlit run app.py` on
127.0.0.1 with the embedded local backend (rules labeler). Screenshots go to
$BDASSET_SCREENSHOT_DIR (default: the test's temp folder)."""

from __future__ import annotations

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
