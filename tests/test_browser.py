"""A real browser against `streamlit run app.py`: upload, submit (double click), watch the
progress reach 100 %, see a chart, download the CSV; and each page's deep link on a fresh
server. Drives Debian's /usr/bin/chromium through Playwright (never `playwright install`).

Screenshots go to $BDASSET_SCREENSHOT_DIR (default: the test's temp folder)."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from conftest import SAMPLES
from core.evaluate import latest_evaluation
from core.jobs import JobService
from core.local import stop_running
from core.settings import load_settings

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.browser,
    # In CI (.ci/run installs chromium) a missing browser is a failure, not a skip.
    pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"), reason="needs Debian's chromium at /usr/bin/chromium "
                       "(apt-get install chromium; .ci/run does this)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright python package")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run app.py` on 127.0.0.1 with the test's data folder."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_dir / f"streamlit_{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
             "--server.port", str(self.port), "--server.headless", "true",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=dict(os.environ), stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("streamlit did not answer within 30 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BDASSET_SCREENSHOT_DIR") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(isolated_data_dir: Path) -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
            stop_running(isolated_data_dir / "local_backend")


def new_page(browser, tmp_path: Path):
    context = browser.new_context(viewport={"width": 1400, "height": 2400}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


def wait_idle(page) -> None:
    """Wait for the app to be drawn (the sidebar's last line) and no script to be running."""
    page.locator('[data-testid="stSidebar"]').get_by_text("Active jobs").wait_for()
    # A running script shows "Running" or a "Stop" button; elements not drawn yet are skeletons.
    page.wait_for_function(
        "() => !/Running|Stop/.test((document.querySelector('[data-testid=\"stStatusWidget\"]') || {}).innerText || '')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"], [data-testid=\"stSkeletonElement\"]')",
        timeout=2 * TIMEOUT_MS,
    )


def test_upload_submit_monitor_explore_download(browser, tmp_path: Path, shots: Path) -> None:
    server = Server(tmp_path)
    try:
        page = new_page(browser, tmp_path)
        page.goto(server.url)  # the home page, whose first step leads to Submit
        page.get_by_role("heading", name="BiodiversityASSET batch dashboard").wait_for()
        page.locator('[data-testid="stMain"] [data-testid="stPageLink"]', has_text="Submit").first.click()
        page.get_by_role("heading", name="Submit a labelling job").wait_for()
        sample = sorted(SAMPLES.glob("*.csv"))[0]
        # by the widget's key: Submit also has an examples upload for the embedding labeler
        page.locator(".st-key-submit_upload input[type=file]").set_input_files(str(sample))
        page.get_by_text("Validation report").wait_for()
        page.locator('[data-testid="stMetricValue"]').first.wait_for()
        submit = page.get_by_role("button", name="Submit job")
        page.wait_for_function("b => !b.disabled", arg=submit.element_handle())
        wait_idle(page)
        page.screenshot(path=str(shots / "1_submit.png"), full_page=True)
        submit.dblclick()
        page.get_by_text("Submitted as job").wait_for()
        time.sleep(1.0)  # let a second click's rerun (if any) finish before counting jobs
        jobs = JobService(settings=load_settings()).list_jobs()
        assert len(jobs) == 1, [j.id for j in jobs]
        page.screenshot(path=str(shots / "2_submitted.png"), full_page=True)

        page.get_by_role("link", name=f"Monitor job {jobs[0].id}").click()
        page.get_by_role("heading", name="Monitor jobs").wait_for()
        page.locator('[role="progressbar"][aria-valuenow="100"]').first.wait_for(timeout=60_000)
        page.get_by_role("link", name="Explore the results").wait_for(timeout=60_000)
        wait_idle(page)
        page.screenshot(path=str(shots / "3_monitor.png"), full_page=True)

        page.get_by_role("link", name="Explore the results").click()
        page.get_by_role("heading", name="Explore results").wait_for()
        page.locator('[data-testid="stVegaLiteChart"] svg.marks').first.wait_for()
        wait_idle(page)
        page.screenshot(path=str(shots / "4_explore.png"), full_page=True)
        with page.expect_download() as info:
            page.get_by_role("button", name="Download CSV").click()
        downloaded = pd.read_csv(io.BytesIO(Path(info.value.path()).read_bytes()), encoding="utf-8-sig",
                                 keep_default_na=False)
        submitted = pd.read_csv(sample, keep_default_na=False)
        assert len(downloaded) == len(submitted)
        assert sorted(downloaded["paragraph_text"]) == sorted(submitted["paragraph_text"].str.strip())
        assert sorted(downloaded["pdf_file_name"]) == sorted(submitted["pdf_file_name"])
        assert set(downloaded["status"]) == {"succeeded"}
    finally:
        server.stop()


@pytest.mark.parametrize(("path", "title"), [("", "BiodiversityASSET batch dashboard"), ("submit", "Submit a labelling job"),
                                             ("monitor", "Monitor jobs"), ("explore", "Explore results"),
                                             ("evaluate", "Evaluate labels")])
def test_deep_link_on_a_fresh_server(browser, tmp_path: Path, shots: Path, path: str, title: str) -> None:
    server = Server(tmp_path)
    try:
        page = new_page(browser, tmp_path)
        page.goto(f"{server.url}/{path}")
        page.get_by_role("heading", name=title).wait_for()
        wait_idle(page)
        page.screenshot(path=str(shots / f"deep_{path or 'root'}.png"), full_page=True)
        assert page.locator('[data-testid="stSidebarNav"]').count() == 0  # no generated navigation
        assert page.get_by_text("Page not found").count() == 0
        links = [t.strip() for t in page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"]').all_inner_texts()]
        assert [t.split()[-1] for t in links] == ["Home", "Submit", "Monitor", "Explore", "Evaluate"], links
        assert page.get_by_text("Active jobs").count() == 1
    finally:
        server.stop()


def test_evaluate_upload_labels_see_kappa_and_confusion(browser, tmp_path: Path, shots: Path) -> None:
    """A collected job of the sample paragraphs; on Evaluate, upload the sample labels, press
    Evaluate, see Cohen's kappa and the confusion matrix with the counts core computed."""
    service = JobService(settings=load_settings())
    job = service.submit(service.prepare("investment_activity_classification", inputs=sorted(SAMPLES.glob("*.csv"))))
    service.wait([job.id], poll_interval=0.1, timeout=60)
    service.collect(job.id)
    labels = ROOT / "data" / "labels" / "sample_human_labels.csv"
    server = Server(tmp_path)
    try:
        page = new_page(browser, tmp_path)
        page.goto(f"{server.url}/evaluate")
        page.get_by_role("heading", name="Evaluate labels").wait_for()
        page.get_by_text("Upload a labels file").wait_for()
        page.locator(".st-key-evaluate_upload input[type=file]").set_input_files(str(labels))
        run = page.locator(".st-key-evaluate_run button")  # the widget's stable key names its container
        page.wait_for_function("b => !b.disabled", arg=run.element_handle())
        run.click()
        page.locator('[data-testid="stMetricLabel"]', has_text="Cohen's kappa").first.wait_for(timeout=60_000)
        matrix = page.locator('[data-testid="stTable"]', has_text="model 1").first
        matrix.wait_for()
        wait_idle(page)
        page.screenshot(path=str(shots / "5_evaluate.png"), full_page=True)
        saved = latest_evaluation(Path(service.get(job.id).job_dir))  # what the page computed and saved
        (tn, fp), (fn, tp) = saved["metrics"]["score"]["confusion"]
        cells = [int(t) for t in matrix.locator("td").all_inner_texts()]
        assert cells == [tn, fp, fn, tp], cells
        assert "human 1" in matrix.inner_text()
    finally:
        server.stop()
