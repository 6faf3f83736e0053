"""Task 2's input from a task-1 job: which task-1 jobs can feed task 2 (completed, or every
gap filled by re-runs), and the paragraphs they scored 1, with their input columns and
sources, once the job and its re-runs are finished and collected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import NotReady, TaskError
from core.tasks import INVESTMENT_ACTIVITY

if TYPE_CHECKING:  # pandas and pydantic load only when a parent's rows are read
    import pandas as pd

    from core.jobs.service import JobService
    from core.models import Job, SourceRecord


def can_feed_task2(job: Job) -> bool:
    """A task-1 job whose batches completed, or whose gaps were all filled by retries."""
    if job.status == "completed":
        return True
    counts = job.result_counts or {}
    return job.is_finished and counts.get("succeeded", 0) == job.n_rows and job.collected_at is not None


def completed_parent_jobs(service: JobService) -> list[Job]:
    """Task-1 jobs that task 2 can start from."""
    return [j for j in service.list_jobs() if j.task == INVESTMENT_ACTIVITY.name and j.retry_of is None
            and service.can_feed_task2(j)]


def rows_from_parent(service: JobService, parent: Job) -> tuple[pd.DataFrame, list[SourceRecord], str]:
    """(rows, sources, note) for task 2: the paragraphs a finished task-1 job (with its
    re-runs) scored 1. Raises NotReady while it or a re-run is unfinished or gaps remain."""
    from core.planning import row_columns

    task2 = "assetization_features_scoring"
    if parent.task != INVESTMENT_ACTIVITY.name:
        raise TaskError(
            f"Job {parent.id} is a {parent.task} job; {task2} needs a task-1 ({INVESTMENT_ACTIVITY.name}) job."
        )
    if parent.retry_of:
        parent = service.get(parent.retry_of)
    pending = [j for j in (parent, *service.retries_of(parent)) if not j.is_finished]
    if pending:
        done, failed, total = pending[0].progress()
        raise NotReady(
            f"Job {pending[0].id} is not finished yet ({pending[0].status}, {done + failed:,} of {total:,} "
            f"requests done). Wait for it first: python -m core status --batch-id {pending[0].id} --wait"
        )
    results = service.collect(parent.id).frame
    parent = service.get(parent.id)
    if not service.can_feed_task2(parent):
        gaps = int((results["status"] != "succeeded").sum())
        raise NotReady(
            f"Job {parent.id} ended as '{parent.status}' and {gaps:,} of its rows have no answer. "
            f"Re-run them first (python -m core retry --job {parent.id}), then start task 2 from it."
        )
    selected = results[(results["status"] == "succeeded") & (results["score"] == 1)]
    if selected.empty:
        raise TaskError(f"Job {parent.id} has no paragraph with score 1, so there is nothing for task 2.")
    rows = selected[row_columns(selected)].reset_index(drop=True)  # the input columns come along
    from core.models import SourceRecord

    sources = [
        SourceRecord(index=s.index, name=s.name, path=s.path, sha256=s.sha256, rows_read=s.rows_kept,
                     rows_kept=int((rows["source_index"] == s.index).sum()))
        for s in parent.sources
    ]
    note = (f"{len(rows):,} paragraphs with score 1 taken from job {parent.id}; "
            f"{len(results) - len(rows):,} others left out.")
    return rows, sources, note
