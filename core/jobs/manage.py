"""Keeping the job list readable: names and notes, archiving, deleting.

* A job's ``name`` and ``note`` are the researcher's own words; they can be set at submission
  and edited at any time (one line of at most :data:`MAX_NAME_CHARS` for a name).
* Archiving hides a job (and its re-runs) from every job list and picker; unarchiving brings
  it back. Nothing is removed. A job the provider is still working on is not archived: its
  progress and costs must stay in view.
* Deleting removes the registry records and the local files of a job and its re-runs, after
  the user saw :meth:`DeletionPlan.lines`. It never touches anything at the provider: the
  batches and their files (the output files hold answers that were paid for) stay there, and
  the plan says so. The registry remembers the deletion (table ``deleted_jobs``), so recovery
  does not bring the job back and reconciling does not report its batches as orphans.

The service (:class:`core.jobs.JobService`) reaches these functions through thin methods.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import CoreError, JobNotFound, NotReady
from core.jobstate import ACTIVE_STATUSES
from core.pricing import format_cost
from core.vocabulary import count, status_text

if TYPE_CHECKING:
    from core.models import Job
    from core.jobs.service import JobService

__all__ = ["DeletionPlan", "DeletionReport", "MAX_NAME_CHARS", "MAX_NOTE_CHARS", "archive", "clean_name",
           "clean_note", "delete", "edit", "plan_deletion", "unarchive"]

MAX_NAME_CHARS = 120
MAX_NOTE_CHARS = 4_000


# ----- names and notes ------------------------------------------------------------------------

def clean_name(value: str | None) -> str | None:
    """A job name as stored: one line, control characters removed, trimmed; ``None`` for an
    empty one. Raises CoreError when it is longer than :data:`MAX_NAME_CHARS`."""
    if value is None:
        return None
    text = " ".join(_printable(value).split())
    if len(text) > MAX_NAME_CHARS:
        raise CoreError(f"A job name has at most {MAX_NAME_CHARS} characters (this one has {len(text):,}); "
                        "put the rest in the note.")
    return text or None


def clean_note(value: str | None) -> str | None:
    """A job note as stored: line breaks kept, other control characters removed, trimmed;
    ``None`` for an empty one. Raises CoreError when longer than :data:`MAX_NOTE_CHARS`."""
    if value is None:
        return None
    text = "\n".join(line.rstrip() for line in _printable(value, keep="\n").replace("\r\n", "\n").split("\n")).strip()
    if len(text) > MAX_NOTE_CHARS:
        raise CoreError(f"A job note has at most {MAX_NOTE_CHARS:,} characters (this one has {len(text):,}).")
    return text or None


def _printable(text: str, keep: str = "") -> str:
    # names and notes are echoed on terminals: no escape sequence or control character survives
    return "".join(c for c in str(text) if c.isprintable() or c in keep or c == " ")


def edit(service: JobService, job_or_batch_id: str, *, name: str | None = None, note: str | None = None) -> Job:
    """Set a job's name and/or note (``None``: leave as it is; ``""``: remove it)."""
    job = service.get(job_or_batch_id)
    if name is None and note is None:
        raise CoreError("Nothing to change: give a name or a note (an empty one removes it).")
    if name is not None:
        job.name = clean_name(name)
    if note is not None:
        job.note = clean_note(note)
    service._update(job, "name", "note")
    return job


# ----- archiving --------------------------------------------------------------------------------

def archive(service: JobService, job_or_batch_id: str) -> list[Job]:
    """Hide a job and its re-runs from every job list. Refused while the provider works on it."""
    family = _family(service, service.get(job_or_batch_id))
    # queued batches count too: a refresh would send them, and the job would run out of sight
    running = [j.id for j in family if j.is_active]
    if running:
        raise NotReady(f"Job {running[0]} is still running; wait for it or cancel it "
                       f"(python -m core status --batch-id {running[0]} --cancel) before archiving.")
    now = service._now()
    for job in family:
        if job.archived_at is None:
            job.archived_at = now
            service._update(job, "archived_at")
    return family


def unarchive(service: JobService, job_or_batch_id: str) -> list[Job]:
    """Show an archived job (and its re-runs) in the job lists again."""
    family = _family(service, service.get(job_or_batch_id))
    for job in family:
        if job.archived_at is not None:
            job.archived_at = None
            service._update(job, "archived_at")
    return family


def _family(service: JobService, job: Job) -> list[Job]:
    """An original job and its re-runs (shown and hidden with it); a re-run alone is itself."""
    return [job] if job.retry_of else [job, *service.retries_of(job)]


def _at_work(job: Job) -> bool:
    """The provider is working on one of the job's batches."""
    return any(b.is_active for b in job.batches)


# ----- deleting ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeletionPlan:
    """What deleting a job would remove, keep and leave at the provider. Show :meth:`lines`
    and ask before calling :func:`delete`."""

    jobs: tuple[Job, ...]  # the job first, then its re-runs
    remove: tuple[Path, ...]  # job folders, and output folders of the data folder's layout
    keep: tuple[Path, ...]  # output folders elsewhere: left as they are
    at_provider: tuple[str, ...]  # "job/batch: provider id (status)" for every batch the provider has

    @property
    def job_ids(self) -> list[str]:
        return [j.id for j in self.jobs]

    def lines(self) -> list[str]:
        """The plan in words, for the confirmation."""
        job = self.jobs[0]
        label = f"{job.id}" + (f" ({job.name})" if job.name else "")
        out = [f"Delete job {label}, {status_text(job.status)}, {count(job.n_rows, 'row')}"
               + (f", with its {count(len(self.jobs) - 1, 're-run')}: {', '.join(self.job_ids[1:])}"
                  if len(self.jobs) > 1 else "") + "."]
        answered = sum((j.result_counts or {}).get("succeeded", 0) for j in self.jobs if not j.retry_of)
        costs = [j.usage.get("cost") for j in self.jobs if j.usage]
        if answered:
            paid = sum(c for c in costs if c) if any(costs) else None
            out.append(f"Its collected answers ({count(answered, 'row')} answered"
                       + (f", cost {format_cost(paid, job.estimate.get('currency', 'USD'))}" if paid else "")
                       + ") are removed from this computer.")
        out += [f"Removes: {path}" for path in self.remove]
        out += [f"Keeps (outside the data folder): {path}" for path in self.keep]
        if self.at_provider:
            out.append(f"Nothing at the provider ({job.provider}) is deleted: its "
                       f"{count(len(self.at_provider), 'batch')} and their files stay there (output files hold "
                       "the answers that were paid for): " + "; ".join(self.at_provider) + ".")
        else:
            out.append("No batch of it reached the provider; nothing there to keep.")
        return out


def plan_deletion(service: JobService, job_or_batch_id: str) -> DeletionPlan:
    """What deleting the job would do. Refused (CoreError) for a re-run alone (its answers are
    part of its original's results), for a job the provider still works on, and for a task-1
    job that task-2 jobs were started from."""
    job = service.get(job_or_batch_id)
    if job.retry_of:
        raise CoreError(f"Job {job.id} re-runs the gaps of {job.retry_of}, and its answers are part of that job's "
                        f"results: delete {job.retry_of} (its re-runs go with it), or archive {job.id}.")
    family = [job, *service.retries_of(job)]
    running = [j.id for j in family if _at_work(j)]
    if running:
        raise NotReady(f"Job {running[0]} is still running: cancel it first (python -m core status --batch-id "
                       f"{running[0]} --cancel; answered requests are kept and billed) or wait for it.")
    children = [j.id for j in service.list_jobs(archived=None) if j.parent_job_id == job.id]
    if children:
        raise CoreError(f"Task-2 job(s) {', '.join(children)} were started from {job.id}; delete them first, "
                        f"or archive {job.id} instead.")
    data_dir = service.settings.data_dir
    remove: list[Path] = []
    keep: list[Path] = []
    for member in family:
        for folder, is_output in ((Path(member.job_dir), False), (Path(member.output_dir), True)):
            if _ours_to_remove(folder, member.id, data_dir):
                if folder.exists() and folder not in remove:
                    remove.append(folder)
            elif is_output and folder.exists() and folder not in keep:
                keep.append(folder)
    at_provider = tuple(f"{j.id}/{b.key}: {b.batch_id} ({status_text(b.status)})"
                        for j in family for b in j.batches if b.batch_id)
    return DeletionPlan(jobs=tuple(family), remove=tuple(remove), keep=tuple(keep), at_provider=at_provider)


def _ours_to_remove(folder: Path, job_id: str, data_dir: Path) -> bool:
    """A folder of the data folder's own layout for this job: named after the job, inside the
    data folder, not a link. A folder the user chose elsewhere (``--output-dir``) is theirs."""
    if folder.name != job_id or folder.is_symlink():
        return False
    try:
        folder.resolve().relative_to(data_dir.resolve())
    except ValueError:
        return False
    return True


@dataclass
class DeletionReport:
    """What :func:`delete` did."""

    deleted: list[str]
    removed: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # folders that could not be removed


def delete(service: JobService, plan: DeletionPlan) -> DeletionReport:
    """Delete the planned jobs: their registry records first (in one transaction, remembered as
    deleted), then their folders. A folder that cannot be removed is reported, not retried: the
    registry no longer lists the job, and recovery does not bring it back."""
    with service.registry.transaction() as tx:
        for job in plan.jobs:
            record = tx.get_job(job.id)
            if record is None:
                raise JobNotFound(f"Job {job.id} is no longer in the registry (deleted meanwhile?).")
            batches = record.get("batches") or []
            if any(isinstance(b, dict) and b.get("batch_id") and b.get("status") in ACTIVE_STATUSES for b in batches):
                raise NotReady(f"Job {job.id} was sent again meanwhile and is running; nothing was deleted.")
        for job in plan.jobs:
            tx.delete_job(job.id)
    report = DeletionReport(deleted=plan.job_ids)
    for folder in plan.remove:
        try:
            if folder.is_symlink():  # never follow a link swapped in since the plan
                raise OSError("it became a link")
            shutil.rmtree(folder)
        except FileNotFoundError:
            continue
        except OSError as exc:
            report.problems.append(f"could not remove {folder}: {exc.strerror or exc}")
            continue
        report.removed.append(folder)
    return report

