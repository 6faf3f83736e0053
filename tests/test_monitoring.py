"""core.monitoring: job table, progress, timing, plain-words errors and the refresh cycle."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from conftest import SAMPLES
from core.jobs import JobService
from core.models import BatchRecord, Job
from core.pricing import format_cost
from core.monitoring import (
    batch_table,
    filter_jobs,
    format_duration,
    format_time,
    job_errors,
    job_fraction,
    job_label,
    JOB_TABLE_COLUMNS,
    job_table,
    jobs_count_line,
    list_state,
    needs_collecting,
    plain_error,
    refresh_cycle,
    timing,
)

TASK1 = "investment_activity_classification"
T0 = 1_800_000_000


def make_job(*batches: BatchRecord, n: int = 100) -> Job:  # noqa: D103
    return Job(id="job_1", task=TASK1, provider="local", model="m", max_tokens=10, created_at="2026-11-25T10:00:00+00:00",
               job_dir="/tmp/x", output_dir="/tmp/y", n_rows=n, n_requests=n, sources=[], prompts={}, estimate={},
               batches=list(batches))


def batch(key: str = "b000", **kw) -> BatchRecord:
    base = dict(key=key, request_file="f", n_requests=50, first_custom_id="a", last_custom_id="b", batch_id="batch_" + key)
    return BatchRecord(**{**base, **kw})


def test_progress_and_time_left() -> None:
    job = make_job(
        batch("b000", status="in_progress", total=50, completed=20, failed=5,
              timestamps={"created_at": T0, "in_progress_at": T0 + 10}),
        batch("b001", status="validating", timestamps={"created_at": T0 + 5}),
    )
    assert job_fraction(job) == 0.2  # the answered share: 20 of 100 (5 failed are not progress)
    now = datetime.fromtimestamp(T0 + 110, timezone.utc)
    t = timing(job, now)
    assert t.elapsed_seconds == 110
    assert t.left_seconds == 300  # 25 answered in 100 s; 75 left
    assert "elapsed 1 min 50 s" in t.describe() and "5 min 00 s left" in t.describe()
    table = job_table([job])
    assert table.loc[0, "progress"] == 20.0 and table.loc[0, "status"] == "running"
    assert list(batch_table(job)["progress"]) == [40.0, 0.0]


def test_no_estimate_without_progress_and_finished_elapsed() -> None:
    job = make_job(batch(status="validating", timestamps={"created_at": T0}))
    assert timing(job, datetime.fromtimestamp(T0 + 30, timezone.utc)).left_seconds is None
    done = make_job(batch(status="completed", completed=50, total=50, output_file_id="f",
                          timestamps={"created_at": T0, "completed_at": T0 + 3725}), n=50)
    t = timing(done)
    assert t.elapsed_seconds == 3725 and t.left_seconds is None and job_fraction(done) == 1.0
    assert format_duration(3725) == "1 h 02 min" and format_duration(200_000) == "2 days 7 h"
    assert needs_collecting(done)


def test_errors_in_plain_words() -> None:
    job = make_job(
        batch("b000", status="failed", errors=["token_limit_exceeded: Enqueued token limit reached"]),
        batch("b001", status="expired", completed=10, total=50),
        batch("b002", status="in_progress", last_error="Connection refused"),
    )
    messages = job_errors(job)
    assert any("queued-token limit" in m and "b000" in m for m in messages)
    assert any("expired" in m and "10 of 50" in m for m in messages)
    assert any("did not get through" in m and "Connection refused" in m for m in messages)
    assert plain_error("weird: thing") == "weird: thing"
    unsent = make_job(batch(status="submit_failed", batch_id=None, last_error="no key"))
    assert "Send unsent batches" in job_errors(unsent)[0]
    assert filter_jobs([job, unsent], statuses=["submit_failed"]) == [unsent]
    assert filter_jobs([job], tasks=["assetization_features_scoring"]) == []


def test_refresh_cycle_collects_finished_jobs(service: JobService) -> None:
    assert refresh_cycle(service).jobs == []
    job = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))[:1]))
    collected: list[str] = []
    for _ in range(200):
        cycle = refresh_cycle(service)
        collected += cycle.collected
        if not cycle.any_active and collected:
            break
        import time
        time.sleep(0.05)
    assert collected == [job.id]
    assert service.get(job.id).collected_at is not None
    assert refresh_cycle(service).collected == []  # collected once only


def test_queued_batches_and_rows_to_rerun() -> None:
    from core.monitoring import rows_to_rerun

    queued = make_job(batch(status="queued", batch_id=None, attempts=[{"batch_id": "b", "errors": [], "reason": "x"}]))
    assert queued.is_active and "queued-token limit" in job_errors(queued)[0]
    done = make_job(batch(status="completed", completed=50, total=50, output_file_id="f"), n=50)
    assert rows_to_rerun(done) == 0
    done.result_counts = {"succeeded": 45, "failed": 3, "truncated": 2, "missing": 0}
    assert rows_to_rerun(done) == 5


def test_tables_and_labels_read_as_words() -> None:
    """Statuses in words (as in the rest of the page), times without ISO clutter, and a job
    label that does not change with the job's status (the browser would keep the stale one)."""
    running = make_job(batch(status="in_progress", last_checked_at="2026-11-25T10:01:02+00:00"))
    done = make_job(batch(status="completed", completed=50, total=50, output_file_id="f"))
    assert job_table([running]).loc[0, "status"] == "running"
    details = batch_table(running)
    assert details.loc[0, "status"] == "running" and details.loc[0, "last checked"] == "2026-11-25 10:01 UTC"
    assert batch_table(make_job(batch(status="submit_failed", batch_id=None))).loc[0, "status"] == "not (fully) submitted"
    assert format_time("2026-11-25T11:01:02+01:00") == "2026-11-25 10:01 UTC"
    assert format_time(None) == "" and format_time("") == ""
    assert running.status != done.status and job_label(running) == job_label(done) == (
        "job_1 · Investment activity (task 1) · no input files · 100 rows")


def test_job_table_tells_jobs_apart_and_shows_the_four_parts() -> None:
    """Name and id, input files, rows and task tell jobs apart; status and the four progress
    parts show their state (model, provider, parent job, requests and batches are in the job's
    own section)."""
    running = make_job(batch(status="in_progress", total=50, completed=20, failed=5))
    uncollected = make_job(batch(status="completed", completed=50, total=50, output_file_id="f"), n=50)
    uncollected.id = "job_2"
    collected = make_job(batch(status="completed", completed=50, total=50, output_file_id="f"))
    collected.id, collected.collected_at, collected.retry_of = "job_3", "2026-11-25T11:00:00+00:00", "job_2"
    collected.created_at = "2026-11-25T11:00:00+00:00"
    collected.archived_at = "2026-11-26T11:00:00+00:00"
    table = job_table([running, uncollected, collected]).set_index("job")
    assert list(job_table([running]).columns) == JOB_TABLE_COLUMNS
    assert table.loc["job_1", "status"] == "running" and table.loc["job_1", "progress"] == 20.0  # of 100 requests
    assert table.loc["job_1", "not answered"] == "5 failed, 75 not yet run"
    assert table.loc["job_2", "not answered"] == "none"
    assert table.loc["job_2", "status"] == "completed, not collected"
    assert table.loc["job_3", "status"] == "completed, archived"
    assert table.loc["job_1", "task"] == "task 1" and table.loc["job_3", "task"] == "task 1 re-run"
    assert table.loc["job_1", "input files"] == "no input files" and table.loc["job_1", "rows"] == 100
    assert next(iter(table.index)) == "job_3"  # newest first


def test_list_state_changes_when_a_job_starts_finishes_is_added_or_archived() -> None:
    """What makes the Monitor draw the whole app again (its timer and the sidebar's counts)."""
    idle = make_job(batch(status="completed", completed=50, total=50, output_file_id="f"))
    before = list_state([idle])
    assert list_state([idle]) == before  # progress alone changes nothing
    started = make_job(batch(status="in_progress", total=50, completed=1))
    started.id = "job_2"
    assert list_state([idle, started]) != before  # a re-run was added and runs
    idle.archived_at = "2026-11-26T11:00:00+00:00"
    assert list_state([idle]) != before


def test_jobs_count_line_counts_what_monitor_lists() -> None:
    running = make_job(batch(status="in_progress", total=50, completed=1))
    done = make_job(batch(status="completed", completed=50, total=50))
    archived = make_job(batch(status="completed", completed=50, total=50))
    archived.archived_at = "2026-11-26T11:00:00+00:00"
    assert jobs_count_line([running, done]) == "Active jobs: 1 of 2"
    assert jobs_count_line([running, done, archived], archived=1, emphasis="**") == (
        "Active jobs: **1** of 2 (1 archived, not counted)")


@pytest.mark.parametrize("amount, text", [
    (None, "unknown"), (0.0, "free"), (0.01234, "0.0123 USD"), (1234.5, "1,234.50 USD"),
])
def test_costs_read_as_people_say_them(amount: float | None, text: str) -> None:
    assert format_cost(amount) == text
