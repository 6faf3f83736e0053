"""Recovering from a lost or damaged registry.

* A damaged job record (one that no longer validates as a :class:`~core.models.Job`) is
  reported for that job alone: :func:`read_records` keeps the healthy jobs and lists the
  damaged ones, so listing, refreshing, reconciling and collecting other jobs go on.
* :func:`rebuild_registry` is ``python -m core registry --rebuild``: the registry takes back
  every job its backups or the job folders' snapshots hold (see :meth:`Registry.recover`),
  then :func:`~core.jobs.reconcile.reconcile` gives jobs rebuilt from a snapshot (recorded as
  submitted: no batch ids) their batches back from the provider's metadata (job id and
  batch key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from core.errors import RegistryError
from core.registry import RecoveryNote

# pydantic (core.models) loads at the first record validated: a refresh with nothing under way,
# or a job list read through core.jobview, validates none.
if TYPE_CHECKING:
    from core.models import Job
    from core.jobs.reconcile import ReconcileReport
    from core.jobs.service import JobService

__all__ = ["DamagedRecord", "JobRecordDamaged", "RebuildReport", "job_from_record", "read_records",
           "rebuild_registry"]


@dataclass(frozen=True)
class DamagedRecord:
    """A job record in the registry that cannot be read as a job; only this job is affected."""

    job_id: str
    field: str  # where the first problem is, e.g. "batches.0.n_requests"
    problem: str  # what is wrong there

    def __str__(self) -> str:
        return f"job {self.job_id}: record damaged ({self.field}: {self.problem}); other jobs are fine"


class JobRecordDamaged(RegistryError):
    """The registry record of the job asked for is damaged (the other jobs are not)."""

    def __init__(self, damage: DamagedRecord) -> None:
        self.damage = damage
        super().__init__(
            f"The registry record of job {damage.job_id} is damaged ({damage.field}: {damage.problem}). "
            "Other jobs are not affected. An earlier copy may be in the registry's .bak file; "
            "see: python -m core registry"
        )


def _damage(record: Mapping[str, Any]) -> DamagedRecord:
    from pydantic import ValidationError

    from core.models import Job

    job_id = str(record.get("id") or "?")
    try:
        Job.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        return DamagedRecord(job_id, where, first["msg"])
    except (TypeError, ValueError) as exc:
        return DamagedRecord(job_id, "record", str(exc))
    return DamagedRecord(job_id, "record", "cannot be read")


def job_from_record(record: Mapping[str, Any]) -> Job:
    """The job of a registry record; :class:`JobRecordDamaged` if the record is damaged."""
    from core.models import Job

    try:
        return Job.from_record(dict(record))
    except (RegistryError, TypeError, ValueError):
        raise JobRecordDamaged(_damage(record)) from None


def read_records(records: Iterable[Mapping[str, Any]]) -> tuple[list[Job], list[DamagedRecord]]:
    """(jobs, damaged records) of registry records, in the records' order."""
    jobs: list[Job] = []
    damaged: list[DamagedRecord] = []
    for record in records:
        try:
            jobs.append(job_from_record(record))
        except JobRecordDamaged as exc:
            damaged.append(exc.damage)
    return jobs, damaged


@dataclass
class RebuildReport:
    """What ``python -m core registry --rebuild`` did."""

    recovery: RecoveryNote | None  # what the registry took back (None: it lacked nothing)
    reconcile: ReconcileReport  # what the provider's batch list added or flagged
    # "job/batch key" of batches still without a provider id: never sent, or no longer
    # listed by the provider (``submit --resume JOB`` sends them, adopting any it still has)
    unsent: list[str] = field(default_factory=list)
    damaged: list[DamagedRecord] = field(default_factory=list)


def rebuild_registry(service: JobService) -> RebuildReport:
    """Take back every job the registry's backups or the job folders hold (an unreadable
    registry file is set aside first, never deleted), then reconcile with the provider so that
    jobs rebuilt from a snapshot get their batches back."""
    note = service.registry.recover(set_aside_unreadable=True)
    report = service.reconcile()
    jobs, damaged = read_records(service.registry.list_jobs())
    unsent = [f"{job.id}/{batch.key}" for job in jobs for batch in job.batches
              if batch.batch_id is None and batch.status in ("pending", "uploaded")]
    return RebuildReport(recovery=note, reconcile=report, unsent=unsent, damaged=damaged)
