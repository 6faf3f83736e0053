"""Issue 12, items 2 and 11: progress in four parts that add up (answered, failed, cancelled or
expired, not yet run), the same in core.monitoring (what the Monitor page draws) and on the
command line; one vocabulary for words and numbers."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from conftest import SAMPLES, make_backend, service_for
from core.cli import main
from core.jobs import JobService
from core.models import BatchRecord, Job
from core.monitoring import batch_table, job_fraction, job_progress, job_table
from core.vocabulary import count, format_duration, number, percent, plural, status_text, task_short, task_title

TASK1 = "investment_activity_classification"


def run(service: JobService, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err, service=service)
    return code, out.getvalue(), err.getvalue()


def make_job(*batches: BatchRecord, n: int) -> Job:
    return Job(id="job_1", task=TASK1, provider="local", model="m", max_tokens=10,
               created_at="2026-11-25T10:00:00+00:00", job_dir="/tmp/x", output_dir="/tmp/y", n_rows=n,
               n_requests=n, sources=[], prompts={}, estimate={}, batches=list(batches))


def batch(key: str, n: int, **kw: object) -> BatchRecord:
    base = dict(key=key, request_file="f", n_requests=n, first_custom_id="a", last_custom_id="b", batch_id="batch_" + key)
    return BatchRecord(**{**base, **kw})


# ----- item 11: one vocabulary --------------------------------------------------------------------

def test_words_and_numbers_read_the_same_everywhere() -> None:
    assert count(1, "repeated paragraph") == "1 repeated paragraph"
    assert count(1_234, "repeated paragraph") == "1,234 repeated paragraphs"
    assert count(1, "batch") == "1 batch" and count(3, "batch") == "3 batches" and plural("row", 0) == "rows"
    assert number(20_000) == "20,000" and count(20_000, "request") == "20,000 requests"
    # a share never overstates: rounded down, 100% only when complete, <1% for a few of many
    assert percent(6_835, 20_000) == "34%" and percent(19_999, 20_000) == "99%"
    assert percent(20_000, 20_000) == "100%" and percent(1, 1_000) == "<1%" and percent(0, 0) == "0%"
    assert percent(1_599, 20_000) == "7%"  # the issue saw 8% on one side and 7% on the other
    # the provider's in_progress reads "running" for jobs and batches alike
    assert status_text("in_progress") == "running" and status_text("validating") == "being validated"
    assert status_text("partially_completed") == "partially completed"
    assert task_title(TASK1) == "Investment activity (task 1)" and task_short(TASK1, retry=True) == "task 1 re-run"
    assert format_duration(3725) == "1 h 02 min"


# ----- item 2: four parts that add up -----------------------------------------------------------

def test_a_cancelled_job_of_20000_rows_never_reads_100_percent() -> None:
    """The case the issue saw: 6,835 of 20,000 answered, then cancelled."""
    job = make_job(batch("b000", 20_000, status="cancelled", total=20_000, completed=6_835), n=20_000)
    progress = job_progress(job)
    assert progress.parts() == [("answered", 6_835), ("failed", 0), ("cancelled_or_expired", 13_165), ("not_run", 0)]
    assert sum(n for _, n in progress.parts()) == progress.total == 20_000
    assert progress.percent() == "34%" and job_fraction(job) == pytest.approx(0.34175)
    assert progress.describe() == "6,835 of 20,000 requests answered (34%), 13,165 cancelled or expired"
    table = job_table([job])
    assert table.loc[0, "progress"] == 34.2 and table.loc[0, "status"] == "cancelled, not collected"
    assert batch_table(job).loc[0, "progress"] == 34.2


def test_parts_of_running_failed_queued_and_expired_batches() -> None:
    job = make_job(
        batch("b000", 100, status="in_progress", total=100, completed=40, failed=5),  # 55 not yet run
        batch("b001", 50, status="failed", errors=["token_limit_exceeded: x"]),  # failed as a whole
        batch("b002", 30, status="expired", total=30, completed=10, failed=2),  # 18 expired
        batch("b003", 20, status="queued", batch_id=None),  # not yet run
        n=200,
    )
    progress = job_progress(job)
    assert dict(progress.parts()) == {"answered": 50, "failed": 57, "cancelled_or_expired": 18, "not_run": 75}
    assert progress.total == 200 and progress.unit == "request"
    assert job_table([job]).loc[0, "not answered"] == "57 failed, 18 cancelled or expired, 75 not yet run"


def test_collected_jobs_count_rows_by_their_status() -> None:
    job = make_job(batch("b000", 10, status="cancelled", total=10, completed=6, output_file_id="f"), n=12)
    job.collected_at = "2026-11-25T11:00:00+00:00"
    job.result_counts = {"succeeded": 6, "failed": 1, "truncated": 1, "cancelled": 3, "expired": 1, "missing": 0}
    progress = job_progress(job)
    assert progress.unit == "row" and progress.total == 12  # rows, not requests (2 repeated paragraphs)
    assert dict(progress.parts()) == {"answered": 6, "failed": 2, "cancelled_or_expired": 4, "not_run": 0}


def _wait_for_answers(service: JobService, job_id: str, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (job,) = service.refresh([job_id])
        if job.progress()[0] >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError(f"{job_id}: fewer than {at_least} answers after {timeout} s")


def test_a_really_cancelled_job_adds_up_in_core_and_on_the_command_line(tmp_path: Path, settings) -> None:
    """A job cancelled mid-way on the local backend (slow baseline): its parts add up to its
    requests before collecting and to its rows after, the CLI prints the same parts, and
    nothing reads 100%."""
    with make_backend(tmp_path, baseline_delay_seconds=0.3) as backend:
        service = service_for(backend, settings)
        job = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv")), dedupe=False))
        _wait_for_answers(service, job.id, at_least=2)
        code, _, err = run(service, "status", "--batch-id", job.id, "--cancel", "--yes")
        assert code == 0, err
        jobs = service.wait([job.id], poll_interval=0.05, timeout=60)
        assert jobs[0].status == "cancelled", jobs[0].status

        job = service.get(job.id)
        progress = job_progress(job)
        assert progress.unit == "request" and progress.total == job.n_requests == job.n_rows == 48
        assert sum(n for _, n in progress.parts()) == 48
        assert 0 < progress.answered < 48 and progress.cancelled_or_expired > 0 and progress.not_run == 0
        assert progress.percent() != "100%" and job_fraction(job) < 1

        # the command line says the same, in words and in --json
        code, out, _ = run(service, "status", "--batch-id", job.id)
        assert code == 0 and progress.describe() in out and "cancelled or expired" in out and "100%" not in out
        code, out, _ = run(service, "status", "--batch-id", job.id, "--json")
        record = json.loads(out)["jobs"][0]["progress"]
        assert record == {"unit": "request", **progress.to_record()} and record["total"] == 48
        code, out, _ = run(service, "status", "--list-jobs")
        assert progress.percent() in out.splitlines()[1] and "cancelled" in out.splitlines()[1]

        # collected: every row has its status, and the parts (now in rows) still add up
        code, _, err = run(service, "download", "--batch-id", job.id)
        assert code == 0, err
        collected = job_progress(service.get(job.id))
        assert collected.unit == "row" and collected.total == 48
        assert sum(n for _, n in collected.parts()) == 48
        assert collected.answered == progress.answered and collected.cancelled_or_expired == 48 - progress.answered
        code, out, _ = run(service, "status", "--batch-id", job.id)
        assert collected.describe() in out and "rows answered" in out
