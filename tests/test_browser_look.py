"""Every page in a real Chromium, light and dark, at 1440 and 390 px: the theme the browser asks
for is the one drawn (green in both), the settings menu offers the theme switch, no button
label is cut off, and no request leaves 127.0.0.1 (icons and favicon are shipped, not fetched
from a font service). Screenshots go to $BDASSET_SCREENSHOT_DIR (default: the test's temp
folder) to be looked at."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import SAMPLES
from core.jobs import JobService
from core.settings import load_settings
import test_browser
from test_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, Server, shots, sync_api  # noqa: F401 (shots: a fixture)

pytestmark = test_browser.pytestmark

PAGES = [("", "BiodiversityASSET batch dashboard"), ("submit", "Submit a labelling job"),
         ("monitor", "Monitor jobs"), ("explore", "Explore results"), ("evaluate", "Evaluate labels")]
WIDTHS = (1440, 390)
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}

# Elements whose text is cut off: their content is wider than their box while they hide
# (clip or ellipsize) what overflows. Checked inside buttons and page links only.
CUT_OFF_LABELS = """() => {
  const cut = [];
  for (const el of document.querySelectorAll('button, [data-testid="stPageLink"] a')) {
    const box = el.getBoundingClientRect();
    if (!el.offsetParent || box.width === 0 || box.right <= 0) continue;  // not shown (a folded sidebar)
    for (const part of [el, ...el.querySelectorAll('*')]) {
      const style = getComputedStyle(part);
      // text for screen readers only (a 1 px clipped box) and icon ligatures are not labels
      if (part.clientWidth <= 1 || style.fontFamily.includes('Material')) continue;
      const hides = ['hidden', 'clip'].includes(style.overflowX) || style.textOverflow === 'ellipsis';
      if (hides && part.scrollWidth > part.clientWidth + 1 && part.innerText.trim()) {
        cut.push(el.innerText.trim().slice(0, 60));
        break;
      }
    }
  }
  return cut;
}"""


SETTLED = """() => {
  const status = document.querySelector('[data-testid="stStatusWidget"]');
  return document.querySelector('[data-testid="stMain"] h1')
    && !document.querySelector('[data-testid="stSkeleton"], [data-testid="stSkeletonElement"]')
    && !(status && /Running|Stop/.test(status.innerText));  // a running script offers "Stop"
}"""


def settle(page, title: str) -> None:
    """Wait until the page's title is drawn, no element is a placeholder any more and no script
    runs; twice, a moment apart, since a page can start a second run (a refresh, a chart)."""
    page.get_by_role("heading", name=title).wait_for()
    for _ in range(2):
        page.wait_for_function(SETTLED, timeout=2 * TIMEOUT_MS)  # Explore's first run is slow (issue #12)
        page.wait_for_timeout(400)


def background(page) -> tuple[int, int, int]:
    """The main area's background colour as RGB."""
    value = page.evaluate("() => getComputedStyle(document.querySelector('[data-testid=\"stApp\"]')).backgroundColor")
    return tuple(int(v) for v in value[value.index("(") + 1: value.index(")")].split(",")[:3])


@pytest.fixture
def populated(isolated_data_dir: Path) -> str:
    """A collected task-1 job, so Monitor, Explore and Evaluate show their full pages."""
    service = JobService(settings=load_settings())
    job = service.submit(service.prepare("investment_activity_classification", inputs=sorted(SAMPLES.glob("*.csv"))))
    service.wait([job.id], poll_interval=0.1, timeout=60)
    service.collect(job.id)
    return job.id


def test_every_page_light_and_dark_at_two_widths_stays_on_loopback(populated: str, tmp_path: Path,
                                                                   shots: Path) -> None:
    server = Server(tmp_path)
    requests: list[str] = []
    try:
        with sync_api.sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                for scheme in ("light", "dark"):
                    for width in WIDTHS:
                        context = chromium.new_context(viewport={"width": width, "height": 2400},
                                                       color_scheme=scheme)
                        context.on("request", lambda request: requests.append(request.url))
                        page = context.new_page()
                        page.set_default_timeout(TIMEOUT_MS)
                        for path, title in PAGES:
                            page.goto(f"{server.url}/{path}")
                            settle(page, title)
                            page.screenshot(path=str(shots / f"{path or 'home'}_{scheme}_{width}.png"), full_page=True)
                            red, green, blue = background(page)
                            if scheme == "dark":
                                assert max(red, green, blue) < 60, (path, scheme, (red, green, blue))
                            else:
                                assert min(red, green, blue) > 200, (path, scheme, (red, green, blue))
                            assert page.evaluate(CUT_OFF_LABELS) == [], (path, scheme, width)
                        context.close()
                # the menu offers the theme switch: a light browser switched to dark draws dark
                context = chromium.new_context(viewport={"width": 1440, "height": 900}, color_scheme="light")
                context.on("request", lambda request: requests.append(request.url))
                page = context.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(server.url)
                settle(page, PAGES[0][1])
                assert min(background(page)) > 200
                # the tab icon is the shipped file, served by this server (a material icon would be
                # fetched from fonts.gstatic.com)
                icon = page.evaluate("() => document.querySelector(\"link[rel='shortcut icon']\").href")
                assert urlsplit(icon).hostname in LOOPBACK and "gstatic" not in icon, icon
                page.get_by_test_id("stMainMenu").click()
                page.get_by_test_id("stMainMenuItem-theme-Dark").click()
                page.wait_for_function("() => getComputedStyle(document.querySelector('[data-testid=\"stApp\"]'))"
                                       ".backgroundColor !== 'rgb(255, 255, 255)'")
                assert max(background(page)) < 60
                page.screenshot(path=str(shots / "switched_to_dark.png"))
                context.close()
            finally:
                chromium.close()
    finally:
        server.stop()
    hosts = {urlsplit(url).hostname for url in requests if urlsplit(url).scheme in ("http", "https", "ws", "wss")}
    assert requests and hosts <= LOOPBACK, sorted(hosts - LOOPBACK)


def test_submit_pickers_and_estimate_fit_at_both_widths(isolated_data_dir: Path, tmp_path: Path, shots: Path) -> None:
    """A workbook with its paragraphs on sheet 2 under another name: in the browser the
    pickers open, choosing the sheet and column brings the estimate, and at 390 and 1440 px
    (dark) no label is cut off."""
    import openpyxl

    from core.submission import choice_key

    book = openpyxl.Workbook()
    book.active.title = "About"
    book.active.append(["notes"])
    data = book.create_sheet("Coded")
    data.append(["report", "Text"])
    data.append(["FfBF_A_R.pdf", "We invested EUR 5m in wetland restoration."])
    path = tmp_path / "coded.xlsx"
    book.save(path)
    server = Server(tmp_path)
    try:
        with sync_api.sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                context = chromium.new_context(viewport={"width": 1440, "height": 2400}, color_scheme="dark")
                page = context.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(f"{server.url}/submit")
                settle(page, "Submit a labelling job")
                page.locator(".st-key-submit_upload input[type=file]").set_input_files(str(path))
                page.get_by_text("no sheet of the workbook has a 'paragraph_text' column").wait_for()
                for key, option in ((choice_key("sheet", path.name), "Coded"), (choice_key("text_column", path.name), "Text")):
                    page.locator(f".st-key-{key}").get_by_role("combobox").click()
                    page.get_by_role("option", name=option, exact=True).click()
                    settle(page, "Submit a labelling job")
                page.locator('[data-testid="stMetricValue"]').first.wait_for()
                settle(page, "Submit a labelling job")
                assert page.locator('[data-testid="stMetricValue"]').first.inner_text() == "1"
                for width in (1440, 390):
                    page.set_viewport_size({"width": width, "height": 2400})
                    page.wait_for_timeout(500)
                    page.screenshot(path=str(shots / f"submit_picked_dark_{width}.png"), full_page=True)
                    assert page.evaluate(CUT_OFF_LABELS) == [], width
                context.close()
            finally:
                chromium.close()
    finally:
        server.stop()
