"""What the Monitor view and the command line show about jobs: progress in four parts, table
rows, job labels, elapsed time and time left, and errors in plain words. Pure functions over
``Job`` records; words and numbers come from :mod:`core.vocabulary`.

pandas is imported only by the two table functions, and the job records' module (pydantic)
only for type checking: the command line starts without either."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from core.pricing import format_cost
from core.vocabulary import (
    PART_WORDS,
    ARCHIVED,
    PROGRESS_PARTS,
    REQUEST,
    ROW,
    count,
    format_duration,
    format_time,
    number,
    percent,
    share,
    shorten,
    status_text,
    task_short,
    task_title,
)

if TYPE_CHECKING:
    import pandas as pd

    from core.models import BatchRecord, Job

__all__ = [  # status_text, format_time and format_duration live in core.vocabulary; kept here for the pages
    "Cycle", "DEFAULT_REFRESH_SECONDS", "JOB_TABLE_COLUMNS", "Progress", "Timing", "active_jobs", "batch_fraction",
    "batch_progress", "batch_table", "cost_line", "filter_jobs", "format_duration", "format_time", "job_errors",
    "job_fraction", "job_label", "job_progress", "job_table", "jobs_count_line", "list_state", "needs_collecting",
    "plain_error", "refresh_cycle", "rows_to_rerun", "status_text", "timing",
]

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

# Row statuses (core.results.ROW_STATUSES) -> the progress part they count in. A row answered
# but unusable (refused, truncated, not the schema) or never reported is a failure.
_ROW_PART = {
    "succeeded": "answered",
    "cancelled": "cancelled_or_expired",
    "expired": "cancelled_or_expired",
}
NAME_CHARS_IN_LABEL = 40  # a long name is cut in pickers and tables (the full name is in the job's section)
FILES_IN_LABEL = 2  # input file names shown in a picker label; the rest as "+N more"


@dataclass(frozen=True)
class Progress:
    """A job's (or batch's) items in four parts that add up to ``total``: answered, failed,
    cancelled or expired, and not yet run. ``unit`` says what is counted: ``row`` once the job
    is collected (every row has its status), ``request`` before (the provider counts requests;
    with repeated paragraphs answered once a request stands for several rows).

    The shares are computed here once; the Monitor page's bar, table and counts and the
    command line all read them from this object."""

    unit: str
    total: int
    answered: int
    failed: int
    cancelled_or_expired: int
    not_run: int

    def parts(self) -> list[tuple[str, int]]:
        """``(part, count)`` in the fixed order of :data:`core.vocabulary.PROGRESS_PARTS`."""
        return [(name, getattr(self, name)) for name in PROGRESS_PARTS]

    def share(self, part: str = "answered") -> float:
        """The part's share of the total, 0..1."""
        return share(getattr(self, part), self.total)

    def percent(self, part: str = "answered") -> str:
        """The part's share as people read it (never ``100%`` while anything is missing)."""
        return percent(getattr(self, part), self.total)

    @property
    def fraction(self) -> float:
        """What a single progress bar shows: the answered share (a cancelled job of 20,000
        rows with 6,835 answered is at 0.34, not at 1)."""
        return self.share("answered")

    @property
    def settled(self) -> int:
        """Items whose fate is known (everything but ``not_run``)."""
        return self.total - self.not_run

    def describe(self) -> str:
        """``6,835 of 20,000 rows answered (34%), 13,165 cancelled or expired``: the answered
        part always, the others when not zero."""
        text = f"{number(self.answered)} of {count(self.total, self.unit)} answered ({self.percent()})"
        others = self.describe_unanswered()
        return text if others == "none" else f"{text}, {others}"

    def describe_unanswered(self) -> str:
        """The parts other than ``answered`` that are not zero (``5 failed, 75 not yet run``),
        or ``none`` when everything was answered."""
        return ", ".join(f"{number(n)} {PART_WORDS[name]}" for name, n in self.parts()[1:] if n) or "none"

    def to_record(self) -> dict[str, int | str]:
        """The parts as plain data (``--json``)."""
        return {"unit": self.unit, "total": self.total, **dict(self.parts())}


def job_progress(job: Job) -> Progress:
    """The job's progress in four parts that add up: from its collected row statuses once it
    is collected (in rows), else from its batches' request counts (in requests).

    Before collection, a batch's requests the provider has not reported count by the batch's
    fate: still running or not sent yet -> not yet run; cancelled or expired -> cancelled or
    expired; failed as a whole (or completed without mentioning them) -> failed, as collecting
    will then mark them."""
    if job.collected_at and job.result_counts and job.is_finished:
        parts = dict.fromkeys(PROGRESS_PARTS, 0)
        for status, n in job.result_counts.items():
            parts[_ROW_PART.get(status, "failed")] += int(n)
        return Progress(unit=ROW, total=sum(parts.values()), **parts)
    parts = dict.fromkeys(PROGRESS_PARTS, 0)
    for batch in job.batches:
        for name, n in batch_progress(batch).parts():
            parts[name] += n
    # the batches hold every request; a record whose batches do not (never seen) keeps its total
    parts["not_run"] += max(0, job.n_requests - sum(parts.values()))
    return Progress(unit=REQUEST, total=sum(parts.values()), **parts)


def batch_progress(batch: BatchRecord) -> Progress:
    """One batch's requests in the four parts (see :func:`job_progress`)."""
    total = batch.n_requests
    answered = min(batch.completed, total)
    failed = min(batch.failed, total - answered)
    rest = total - answered - failed
    parts = {"answered": answered, "failed": failed, "cancelled_or_expired": 0, "not_run": 0}
    if batch.status in ("cancelled", "expired"):
        parts["cancelled_or_expired"] = rest
    elif batch.status in ("failed", "completed"):
        parts["failed"] += rest
    else:
        parts["not_run"] = rest
    return Progress(unit=REQUEST, total=total, **parts)


def input_files(job: Job, shown: int = FILES_IN_LABEL) -> str:
    """The job's input file names, ``a.csv, b.csv +3 more`` (for task 2: its parent's files)."""
    names = [Path(s.name).name for s in job.sources]
    if not names:
        return "no input files"
    text = ", ".join(shorten(n, 40) for n in names[:shown])
    return text + (f" +{len(names) - shown} more" if len(names) > shown else "")


def job_label(job: Job) -> str:
    """The label of a job in every picker: its name (when it has one), id, task, input files
    and row count. It leaves out the status on purpose: a select box whose option label
    changes while it stays selected keeps showing the old label in the browser (a job would
    read "running" after it completed); the status is shown beside the picker."""
    parts = [shorten(job.name, NAME_CHARS_IN_LABEL)] if job.name else []
    parts += [job.id, task_title(job.task), input_files(job), count(job.n_rows, ROW)]
    return " · ".join(parts)


def active_jobs(jobs: Iterable[Job]) -> list[Job]:
    """Jobs the provider is still working on (these need refreshing)."""
    return [j for j in jobs if j.is_active]


def needs_collecting(job: Job) -> bool:
    """Finished with something to fetch, but not collected yet."""
    return job.is_finished and job.collected_at is None and any(b.batch_id for b in job.batches)


def job_fraction(job: Job) -> float:
    """The job's answered share, 0..1 (see :func:`job_progress`): a finished job is at 1 only
    when everything was answered."""
    return job_progress(job).fraction


def batch_fraction(batch: BatchRecord) -> float:
    """The batch's answered share, 0..1."""
    return batch_progress(batch).fraction


#: The jobs table: what tells jobs apart (name and id, input files, rows, task) and their state:
#: ``progress`` is the answered share in percent and ``not answered`` the other three parts of
#: :func:`job_progress` in words, so a cancelled job reads 34% with "13,165 cancelled or expired"
#: beside it, never a full bar. Eight columns fit the page at 1440 px; the model, provider,
#: parent job, requests and batches are in the selected job's section below the table.
JOB_TABLE_COLUMNS = ["job", "input files", "rows", "task", "status", "progress", "not answered", "created"]


def job_table(jobs: Sequence[Job]) -> pd.DataFrame:
    """One row per job, newest first (columns: :data:`JOB_TABLE_COLUMNS`).

    ``job`` is the job's name and id (``Spring run · job_...``) when it has a name; ``task`` is
    short ("task 1", "task 1 re-run" for a job re-running another's gaps); ``status`` adds "not
    collected" for a finished job whose results are still to fetch and "archived" for an
    archived one."""
    import pandas as pd

    records = []
    for job in sorted(jobs, key=lambda j: j.created_at, reverse=True):
        progress = job_progress(job)
        status = status_text(job.status)
        if needs_collecting(job):
            status = f"{status}, not collected"
        if job.archived_at:
            status = f"{status}, {ARCHIVED}"
        records.append({
            "job": f"{shorten(job.name, NAME_CHARS_IN_LABEL)} · {job.id}" if job.name else job.id,
            "input files": input_files(job),
            "rows": job.n_rows,
            "task": task_short(job.task, retry=bool(job.retry_of)),
            "status": status,
            "progress": round(100 * progress.fraction, 1),
            "not answered": progress.describe_unanswered(),
            "created": _parse_iso(job.created_at),
        })
    return pd.DataFrame(records, columns=JOB_TABLE_COLUMNS)


def list_state(jobs: Iterable[Job]) -> frozenset[tuple[str, bool, bool]]:
    """What the job counts (the sidebar's "Active jobs: N of M") and the page's refresh timer
    depend on: each job's id, whether it is active and whether it is archived.

    A view that refreshes itself on a timer fixed when the page was drawn compares this before
    and after its refresh; when it changed (a job started, finished, was added, archived or
    deleted) the whole page is drawn again, so the timer starts or stops and the counts agree."""
    return frozenset((j.id, j.is_active, bool(j.archived_at)) for j in jobs)


def jobs_count_line(jobs: Sequence[Job], *, archived: int = 0, emphasis: str = "") -> str:
    """``Active jobs: 1 of 12`` over the jobs that are not archived, and how many archived jobs
    are left out of the count (``Active jobs: 1 of 12 (3 archived, not counted)``). The active
    count is wrapped in ``emphasis`` (``**`` for Markdown)."""
    shown = [j for j in jobs if not j.archived_at]
    text = f"Active jobs: {emphasis}{number(len(active_jobs(shown)))}{emphasis} of {number(len(shown))}"
    return text + (f" ({number(archived)} {ARCHIVED}, not counted)" if archived else "")


def filter_jobs(jobs: Sequence[Job], *, tasks: Sequence[str] = (), statuses: Sequence[str] = ()) -> list[Job]:
    """The jobs of any of ``tasks`` with any of ``statuses`` (an empty choice keeps all)."""
    return [j for j in jobs if (not tasks or j.task in tasks) and (not statuses or j.status in statuses)]


def batch_table(job: Job) -> pd.DataFrame:
    """One row per batch of a job."""
    import pandas as pd

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


def refresh_cycle(service, *, collect: bool = True, archived: bool | None = False) -> Cycle:
    """Ask the provider about every active batch (one registry write), then collect each job
    that has finished but was not collected yet. Problems come back as messages.

    ``service`` is a :class:`core.jobs.JobService`; ``archived`` chooses the jobs listed as
    :meth:`~core.jobs.JobService.list_jobs` does (``None``: archived ones too)."""
    from core.errors import CoreError

    problems: list[str] = []
    jobs = service.list_jobs(archived=archived)
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
