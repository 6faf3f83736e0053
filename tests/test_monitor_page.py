"""The Monitor page through Streamlit's AppTest (issue 12, items 1, 2, 4, 5, 14): a job started
from inside the auto-refreshing view starts the refresh timer and is followed to completion; a
cancelled job's bar and counts add up to its rows; name, note, archive (undoable) and delete
(asked first, says what stays at the provider); the destructive confirmations.

Jobs run on the embedded backend daemon of the test's data folder (stopped at teardown)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Iterator

import pytest
from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext
from streamlit.testing.v1 import AppTest

from conftest import SAMPLES, open_page
from core.jobs import JobService
from core.local import stop_running
from core.models import BatchRecord, Job
from core.monitoring import JOB_TABLE_COLUMNS
from core.registry import Registry
from core.settings import load_settings
from fakes import FakeChatServer

TASK1 = "investment_activity_classification"


@pytest.fixture(autouse=True)
def stop_daemon(isolated_data_dir: Path) -> Iterator[None]:
    yield
    stop_running(isolated_data_dir / "local_backend")


def open_monitor() -> AppTest:
    return open_page("pages/monitor.py")


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def markdown(at: AppTest) -> str:
    return "\n".join(texts(at.markdown))


def bars(at: AppTest) -> list[int]:
    """The answered percent (aria-valuenow) of the page's four-part bars, the job's first."""
    return [int(n) for n in re.findall(r'aria-valuenow="(\d+)"', markdown(at))]


def jobs_frame(at: AppTest):
    return next(d.value for d in at.dataframe if "not answered" in d.value.columns)


def collected_job(service: JobService, *, files: int = 1) -> Job:
    job = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))[:files]))
    service.wait([job.id], poll_interval=0.1, timeout=60)
    service.collect(job.id)
    return service.get(job.id)


@pytest.fixture
def timers(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The refresh timers (``run_every`` of a fragment) the app registers, in order."""
    seen: list[float] = []
    enqueue = ScriptRunContext.enqueue

    def recording(self, msg) -> None:
        if msg.HasField("auto_rerun"):
            seen.append(msg.auto_rerun.interval)
        enqueue(self, msg)

    monkeypatch.setattr(ScriptRunContext, "enqueue", recording)
    return seen


# ----- item 1: work started inside the auto-refreshing view is followed -----------------------

def test_a_rerun_started_from_the_monitor_starts_the_refresh_timer_and_is_followed(
        monkeypatch: pytest.MonkeyPatch, timers: list[float]) -> None:
    with FakeChatServer() as chat:  # the local backend forwards to it; its latency keeps the re-run running
        monkeypatch.setenv("BDASSET_LOCAL_CHAT_URL", chat.base_url)
        service = JobService(settings=load_settings())
        original = collected_job(service)
        raw = next(Path(original.job_dir, "raw").glob("*_output.jsonl"))
        raw.write_bytes(b"".join(raw.read_bytes().splitlines(keepends=True)[1:]))  # one answer went missing
        service.collect(original.id)

        at = open_monitor()
        assert timers == []  # nothing active: the page does not refresh itself
        chat.latency = 3.0
        at.button(key="monitor_retry").click().run()
        assert not at.exception and not at.error, texts(at.error)
        (retry,) = [j for j in service.list_jobs() if j.retry_of == original.id]
        assert at.selectbox(key="monitor_job").value == retry.id
        assert timers and timers[-1] == 5.0  # the click started the timer
        assert any(f"{retry.id}: running" in m or f"{retry.id}: being" in m for m in texts(at.markdown))

        deadline = time.monotonic() + 60  # each run stands for one tick of the timer
        while not service.get(retry.id).collected_at:
            assert time.monotonic() < deadline, "the re-run was not followed to its end"
            time.sleep(0.2)
            at.run()
        at.run()
        assert any(f"{retry.id}: completed" in m for m in texts(at.markdown))
        assert bars(at)[0] == 100 and not at.error, texts(at.error)
        timers.clear()
        at.run()
        assert timers == []  # everything finished: the timer stopped


def test_the_view_holds_still_while_a_confirmation_is_open(monkeypatch: pytest.MonkeyPatch,
                                                          timers: list[float]) -> None:
    """A refresh re-run that replaces the buttons as they are clicked makes Streamlit drop the
    click, so no timer runs while "Yes, cancel the job" is offered; answering starts it again."""
    with FakeChatServer(latency=30.0) as chat:  # the job stays running for the whole test
        monkeypatch.setenv("BDASSET_LOCAL_CHAT_URL", chat.base_url)
        service = JobService(settings=load_settings())
        job = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))[:1]))
        at = open_monitor()
        assert timers == [5.0] and service.get(job.id).is_active
        timers.clear()
        at.button(key="monitor_cancel").click().run()
        assert at.button(key="monitor_cancel_yes") and "stops refreshing itself" in " ".join(texts(at.caption))
        assert timers == []  # paused while the question is open
        at.button(key="monitor_cancel_no").click().run()
        assert timers == [5.0] and service.get(job.id).is_active  # "No" resumes the refresh, the job runs on
        assert "monitor_cancel_yes" not in [b.key for b in at.button]
        timers.clear()
        at.button(key="monitor_cancel").click().run()
        at.button(key="monitor_cancel_yes").click().run()
        assert not at.exception and timers == [5.0]  # answered: refreshing again, following the cancel
        assert any("Cancel requested" in s.value for s in at.success)


# ----- item 2: a cancelled job adds up --------------------------------------------------------

def test_a_cancelled_job_bar_and_counts_add_up_to_its_rows(isolated_data_dir: Path) -> None:
    job = Job(id="job_20261125_000000_abcd", task=TASK1, provider="local", model="m", max_tokens=10,
              created_at="2026-11-25T00:00:00+00:00", job_dir=str(isolated_data_dir / "jobs" / "x"),
              output_dir=str(isolated_data_dir / "out"), n_rows=20_000, n_requests=20_000, sources=[], prompts={},
              estimate={}, batches=[BatchRecord(key="b000", request_file="f", n_requests=20_000, first_custom_id="a",
                                                last_custom_id="b", batch_id="batch_x", status="cancelled",
                                                total=20_000, completed=6_835, output_file_id="f")])
    with Registry(load_settings().registry_path).transaction() as tx:
        tx.put_job(job.to_record())
    at = open_monitor()
    assert bars(at) == [34, 34]  # the job and its one batch: 34% answered, never a full bar
    text = markdown(at)
    assert "Job: 6,835 of 20,000 requests answered (34%), 13,165 cancelled or expired" in text
    legend = re.findall(r"</span>([\d,]+) (answered|failed|cancelled or expired|not yet run)</span>", text)
    job_parts = {part: int(n.replace(",", "")) for n, part in legend[:4]}
    assert job_parts == {"answered": 6_835, "failed": 0, "cancelled or expired": 13_165, "not yet run": 0}
    assert sum(job_parts.values()) == job.n_rows
    row = jobs_frame(at).iloc[0]
    assert list(jobs_frame(at).columns) == JOB_TABLE_COLUMNS
    assert row["progress"] == 34.2 and row["not answered"] == "13,165 cancelled or expired" and row["rows"] == 20_000
    # the segments' widths add up to the whole bar
    widths = [float(w) for w in re.findall(r"width:([\d.]+)%;background", text.split("b000")[0])]
    assert sum(widths) == pytest.approx(100.0) and widths[0] == pytest.approx(34.175)


# ----- items 4 and 5: name, note, archive, delete ---------------------------------------------

def test_name_note_archive_undo_and_show_archived() -> None:
    service = JobService(settings=load_settings())
    job = collected_job(service)
    at = open_monitor()
    row = jobs_frame(at).iloc[0]
    assert row["job"] == job.id and row["input files"] == sorted(SAMPLES.glob("*.csv"))[0].name
    assert row["rows"] == job.n_rows > 0

    at.text_input(key=f"monitor_name_{job.id}").input("Spring *reports*")
    at.text_area(key=f"monitor_note_{job.id}").input("first try\nwith the 2024 files")
    at.button(key="monitor_edit_save").click().run()
    saved = service.get(job.id)
    assert saved.name == "Spring *reports*" and saved.note == "first try\nwith the 2024 files"
    assert jobs_frame(at).iloc[0]["job"] == f"Spring *reports* · {job.id}"
    assert any(r"Spring \*reports\*" in m for m in texts(at.markdown))  # shown as written, not in italics

    at.button(key="monitor_archive").click().run()
    assert service.get(job.id).archived_at and service.list_jobs() == []
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert "Active jobs: **0** of 0 (1 archived, not counted)" in sidebar  # hidden from the counts too
    assert any("Archived" in s and "nothing was removed" in s for s in texts(at.success))
    assert jobs_frame(at).empty
    at.button(key="monitor_undo").click().run()  # undoable at once
    assert service.get(job.id).archived_at is None and jobs_frame(at).iloc[0]["rows"] == job.n_rows

    at.button(key="monitor_archive").click().run()
    at.toggle(key="monitor_show_archived").set_value(True).run()  # archived jobs on request
    assert jobs_frame(at).iloc[0]["status"] == "completed, archived"
    at.button(key="monitor_unarchive").click().run()
    assert service.get(job.id).archived_at is None
    assert not at.exception and not at.error, texts(at.error)


def test_delete_asks_first_and_says_what_stays_at_the_provider() -> None:
    service = JobService(settings=load_settings())
    job = collected_job(service)
    at = open_monitor()
    assert at.button(key="monitor_delete").proto.type != "primary"
    at.button(key="monitor_delete").click().run()
    question = " ".join(texts(at.warning))
    assert "Delete this job?" in question and "cannot be undone" in question
    assert "Nothing at the provider (local) is deleted" in question and "Removes:" in question
    at.button(key="monitor_delete_no").click().run()
    assert service.get(job.id) and Path(job.job_dir).is_dir()
    assert not any("Delete this job?" in w for w in texts(at.warning))

    at.button(key="monitor_delete").click().run()
    at.button(key="monitor_delete_yes").click().run()
    assert service.list_jobs(archived=None) == [] and not Path(job.job_dir).exists()
    assert any("nothing at the provider was deleted" in s for s in texts(at.success))
    assert not at.exception and not at.error, texts(at.error)


def test_cancel_confirmation_is_side_by_side_and_not_the_primary_button(isolated_data_dir: Path) -> None:
    job = Job(id="job_20261125_000000_abcd", task=TASK1, provider="local", model="m", max_tokens=10,
              created_at="2026-11-25T00:00:00+00:00", job_dir=str(isolated_data_dir / "jobs" / "x"),
              output_dir=str(isolated_data_dir / "out"), n_rows=5, n_requests=5, sources=[], prompts={}, estimate={},
              batches=[BatchRecord(key="b000", request_file="f", n_requests=5, first_custom_id="a", last_custom_id="b")])
    with Registry(load_settings().registry_path).transaction() as tx:
        tx.put_job(job.to_record())
    at = open_monitor()
    at.button(key="monitor_cancel").click().run()
    yes, no = at.button(key="monitor_cancel_yes"), at.button(key="monitor_cancel_no")
    assert yes.proto.type == no.proto.type == "secondary"  # red by the page's scoped style, never the green primary
    assert ".st-key-monitor_cancel_yes button" in " ".join(str(h.proto) for h in at.get("html"))
    no.click().run()
    assert JobService(settings=load_settings()).get(job.id).status == "submitting"
