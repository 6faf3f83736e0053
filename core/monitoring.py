"""What the Monitor view shows about jobs: table rows, progress, elapsed time and time left,
and errors in plain words. Pure functions over ``Job`` records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Sequence

import pandas as pd

from core.models import BatchRecord, Job
from core.pricing import format_cost
from core.tasks import TASKS

TERMINAL_TIMESTAMPS = ("completed_at", "failed_at", "expired_at", "cancelled_at")
DEFAULT_REFRESH_SECONDS = 5.0

_ERROR_CODES = {
    "token_limit_exceeded": (
        "the provider refused the batch because your account's queued-token limit for this model "
        "was exceeded. Wait for other batches to finish, or submit fewer rows at a time"
    ),
    "batch_expired": "the batch expired (24 h window) before this request was answered",
    "invalid_request": "the provider found a malformed request in the batch file",
    "duplicate_custom_id": "two requests in the batch file share a custom_id",
    "model_not_found": "the provider does not know the model; choose another model",
    "billing_hard_limit_reached": "the account's spending limit was reached; raise it on the provider's site",
    "insufficient_quota": "the account has no quota left; add credit on the provider's site",
}

_STATUS_TEXT = {
    "submitting": "being submitted",
    "submit_failed": "not (fully) submitted",
    "in_progress": "running",
    "cancelling": "being cancelled",
    "completed": "completed",
    "partially_completed": "partially completed",
    "failed": "failed",
    "expired": "expired",
    "cancelled": "cancelled",
}


def status_text(status: str) -> str:
    return _STATUS_TEXT.get(status, status.replace("_", " "))


def format_time(text: str | None) -> str:
    """An ISO timestamp as ``2026-11-30 14:13 UTC`` (``""`` when missing or unreadable)."""
    if not text:
        return ""
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return str(text)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def job_label(job: Job) -> str:
    """The job picker's label. It leaves out the status on purpose: a select box whose option
    label changes while it stays selected keeps showing the old label in the browser (a job
    would read "running" after it completed); the status is shown beside the picker."""
    return f"{job.id} · {TASKS[job.task].title if job.task in TASKS else job.task}"


def active_jobs(jobs: Iterable[Job]) -> list[Job]:
    """Jobs the provider is still working on (these need refreshing)."""
    return [j for j in jobs if j.is_active]


def needs_collecting(job: Job) -> bool:
    """Finished with something to fetch, but not collected yet."""
    return job.is_finished and job.collected_at is None and any(b.batch_id for b in job.batches)


def job_fraction(job: Job) -> float:
    """Share of the job's requests that got an answer or an error, 0..1 (1 for finished jobs)."""
    if job.is_finished:
        return 1.0
    done, failed, total = job.progress()
    return min(1.0, (done + failed) / total) if total else 0.0


def batch_fraction(batch: BatchRecord) -> float:
    if batch.is_terminal:
        return 1.0
    total = batch.total or batch.n_requests
    return min(1.0, (batch.completed + batch.failed) / total) if total else 0.0


JOB_TABLE_COLUMNS = ["job", "task", "status", "created", "rows", "failed", "progress", "model"]
_TASK_SHORT = {name: f"task {number}" for number, name in enumerate(TASKS, start=1)}


def job_table(jobs: Sequence[Job]) -> pd.DataFrame:
    """One row per job, newest first, for a sortable table that fits the page without a
    sideways scroll: what tells jobs apart and shows their state. The rest (provider, parent
    job, requests, batches) is in the selected job's section below the table.

    ``task`` is short ("task 1", "task 1 re-run" for a job re-running another's gaps);
    ``status`` adds "not collected" for a finished job whose results are still to fetch."""
    records = []
    for job in sorted(jobs, key=lambda j: j.created_at, reverse=True):
        _, failed, _ = job.progress()
        task = _TASK_SHORT.get(job.task, job.task)
        status = status_text(job.status)
        records.append({
            "job": job.id,
            "task": f"{task} re-run" if job.retry_of else task,
            "status": f"{status}, not collected" if needs_collecting(job) else status,
            "created": _parse_iso(job.created_at),
            "rows": job.n_rows,
            "failed": failed,
            "progress": round(100 * job_fraction(job), 1),
            "model": job.model,
        })
    return pd.DataFrame(records, columns=JOB_TABLE_COLUMNS)


def filter_jobs(jobs: Sequence[Job], *, tasks: Sequence[str] = (), statuses: Sequence[str] = ()) -> list[Job]:
    return [j for j in jobs if (not tasks or j.task in tasks) and (not statuses or j.status in statuses)]


def batch_table(job: Job) -> pd.DataFrame:
    """One row per batch of a job."""
    records = []
    for batch in job.batches:
        records.append({
            "batch": batch.key,
            "batch id": batch.batch_id or "(not sent)",
            "status": status_text(batch.status),
            "requests": batch.n_requests,
            "answered": batch.completed,
            "failed": batch.failed,
            "progress": round(100 * batch_fraction(batch), 1),
            "last checked": format_time(batch.last_checked_at),
        })
    return pd.DataFrame(records, columns=["batch", "batch id", "status", "requests", "answered", "failed",
                                          "progress", "last checked"])


@dataclass(frozen=True)
class Timing:
    elapsed_seconds: float | None
    left_seconds: float | None  # None: unknown (no progress yet) or finished

    def describe(self) -> str:
        parts = []
        if self.elapsed_seconds is not None:
            parts.append(f"elapsed {format_duration(self.elapsed_seconds)}")
        if self.left_seconds is not None:
            parts.append(f"about {format_duration(self.left_seconds)} left")
        return ", ".join(parts) or "no timing yet"


def timing(job: Job, now: datetime | None = None) -> Timing:
    """Elapsed time from the first batch's creation to now (or to the last batch's end), and a
    time-left estimate from the answer rate since processing started."""
    now_ts = (now or datetime.now(timezone.utc)).timestamp()
    created = [b.timestamps.get("created_at") for b in job.batches]
    created = [t for t in created if t]
    start = min(created) if created else _parse_iso(job.created_at).timestamp()
    if job.is_finished:
        ends = [b.timestamps.get(name) for b in job.batches for name in TERMINAL_TIMESTAMPS]
        ends = [t for t in ends if t]
        end = max(ends) if ends else None
        return Timing(elapsed_seconds=max(0.0, end - start) if end else None, left_seconds=None)
    elapsed = max(0.0, now_ts - start)
    done, failed, total = job.progress()
    answered = done + failed
    began = [b.timestamps.get("in_progress_at") for b in job.batches]
    began = [t for t in began if t]
    if not answered or not began or not job.is_active:
        return Timing(elapsed_seconds=elapsed, left_seconds=None)
    running = max(1.0, now_ts - min(began))
    rate = answered / running
    return Timing(elapsed_seconds=elapsed, left_seconds=max(0.0, (total - answered) / rate))


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days {hours % 24} h"


def plain_error(text: str) -> str:
    """A provider error line (``code: message``) in plain words, keeping the original detail."""
    code, _, detail = text.partition(":")
    explained = _ERROR_CODES.get(code.strip())
    if explained:
        return f"{explained[0].upper()}{explained[1:]} ({text.strip()})."
    return text.strip()


def job_errors(job: Job) -> list[str]:
    """Everything that went wrong with a job, one readable sentence each."""
    messages: list[str] = []
    for batch in job.batches:
        name = f"Batch {batch.key}"
        if batch.status == "submit_failed":
            messages.append(
                f"{name} was not submitted: {batch.last_error or 'unknown reason'}. "
                "Use “Send unsent batches” to try again; nothing is sent twice."
            )
            continue
        if batch.status == "queued":
            messages.append(
                f"{name} waits for room under the provider's queued-token limit"
                + (f" (tried {len(batch.attempts)} time(s) before)" if batch.attempts else "")
                + "; it is sent by itself on a later refresh."
            )
            continue
        if batch.status == "failed":
            why = "; ".join(plain_error(e) for e in batch.errors) or "the provider gave no reason."
            messages.append(f"{name} failed as a whole: {why}")
        elif batch.status == "expired":
            messages.append(
                f"{name} expired before every request was answered ({batch.completed:,} of {batch.n_requests:,} "
                "answered). The answered rows are kept; the rest are marked expired in the results."
            )
        elif batch.status == "cancelled" and batch.batch_id:
            messages.append(
                f"{name} was cancelled ({batch.completed:,} of {batch.n_requests:,} answered before). "
                "The answered rows are kept."
            )
        elif batch.errors:
            messages.extend(f"{name}: {plain_error(e)}" for e in batch.errors)
        if batch.failed and batch.status not in ("failed",):
            messages.append(f"{name}: {batch.failed:,} requests failed; their reasons are in the results (status column).")
        if batch.last_error and batch.status != "submit_failed":
            messages.append(
                f"{name}: the last status check did not get through ({batch.last_error}). "
                "The status shown is the last one known; it is checked again on the next refresh."
            )
    return messages


def _parse_iso(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return datetime.fromtimestamp(0, timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclass
class Cycle:
    """The outcome of one monitor refresh cycle."""

    jobs: list[Job]
    collected: list[str]
    problems: list[str]

    @property
    def any_active(self) -> bool:
        return any(j.is_active for j in self.jobs)


def refresh_cycle(service, *, collect: bool = True) -> Cycle:  # service: core.jobs.JobService
    """Ask the provider about every active batch (one registry write), then collect each job
    that has finished but was not collected yet. Problems come back as messages."""
    from core.errors import CoreError

    problems: list[str] = []
    jobs = service.list_jobs()
    live = [j.id for j in jobs if j.is_active or _may_lag(j)]
    if live:
        try:
            fresh = {j.id: j for j in service.refresh(live)}
            jobs = [fresh.get(j.id, j) for j in jobs]
        except CoreError as exc:
            problems.append(str(exc))
    collected: list[str] = []
    if collect:
        originals: list[str] = []
        for index, job in enumerate(jobs):
            if needs_collecting(job):
                try:
                    jobs[index] = service.collect(job.id).job
                    collected.append(job.id)
                except CoreError as exc:
                    problems.append(f"Collecting {job.id}: {exc}")
                    continue
                if job.retry_of and job.retry_of not in originals:
                    originals.append(job.retry_of)
        for original in originals:  # lay the retry's answers over its original's results
            try:
                updated = service.collect(original).job
            except CoreError as exc:
                problems.append(f"Collecting {original}: {exc}")
                continue
            jobs = [updated if j.id == original else j for j in jobs]
            if original not in collected:
                collected.append(original)
    return Cycle(jobs=jobs, collected=collected, problems=problems)


def rows_to_rerun(job: Job) -> int:
    """Collected rows of a finished job that did not succeed (what a retry would send)."""
    if not job.is_finished or not job.result_counts:
        return 0
    return sum(n for status, n in job.result_counts.items() if status != "succeeded")


def _may_lag(job: Job) -> bool:
    return any(b.status == "completed" and b.completed > 0 and not b.output_file_id for b in job.batches)


def cost_line(job: Job) -> str:
    """The estimate beside the actual tokens and cost (after collection), in one line."""
    estimate = job.estimate
    ceiling = estimate.get("cost_ceiling")
    text = f"estimate: {estimate.get('input_tokens', 0):,} input tokens"
    currency = estimate.get("currency", "USD")
    if ceiling == 0:
        text += ", free"
    elif ceiling is not None:
        text += f", cost at most {format_cost(ceiling, currency)}"
    if job.usage:
        text += f"; actual: {job.usage['prompt_tokens']:,} input + {job.usage['completion_tokens']:,} output tokens"
        if job.usage.get("cost") is not None:
            text += f", cost {format_cost(job.usage['cost'], currency)}"
    return text
