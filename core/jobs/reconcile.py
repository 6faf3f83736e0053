"""Reconciling the registry with the provider's batch list: adopt our batches the registry
misses, rebuild lost jobs from their folders, flag batches the provider no longer lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import orjson

from core.errors import CoreError, RegistryError
from core.jobs.common import APP_TAG, SNAPSHOT_FILE, attempt_ids, parse_upload_name
from core.models import Job
from core.safefs import is_safe_id
from core.settings import ProviderName

if TYPE_CHECKING:
    from core.jobs.service import JobService


@dataclass
class ReconcileReport:
    """What ``reconcile`` found by comparing the provider's batch list with the registry."""

    adopted: list[str] = field(default_factory=list)  # "job/key: batch_id" now recorded
    restored_jobs: list[str] = field(default_factory=list)  # rebuilt from their job folder
    unknown_at_provider: list[str] = field(default_factory=list)  # recorded, but the provider lists it no more
    orphans: list[str] = field(default_factory=list)  # ours at the provider, no local files to rebuild from
    problems: list[str] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)  # our uploads no batch was ever made from

    @property
    def anything(self) -> bool:
        return any((self.adopted, self.restored_jobs, self.unknown_at_provider, self.orphans, self.problems,
                    self.removed_files))


def reconcile(service: JobService, providers: Sequence[ProviderName] | None = None) -> ReconcileReport:
    """Compare the provider's batch list with the registry: adopt our batches the registry
    misses (a crash between create and record, or a lost registry: the job is rebuilt from
    its folder), and flag recorded batches the provider no longer lists."""
    report = ReconcileReport()
    healthy, damaged = service.scan_jobs(archived=None)  # archived jobs are ours too
    jobs = {j.id: j for j in healthy}
    # batches of a job deleted on purpose stay at the provider (deleting never touches what was
    # paid for there): they are neither adopted nor reported as orphans
    deleted = service.registry.deleted_job_ids()
    # a damaged record is left as it is (rebuilding it from its folder would overwrite it)
    damaged_ids = {d.job_id for d in damaged}
    chosen = providers or sorted({j.provider for j in jobs.values()} | {service.settings.provider})
    touched: dict[str, Job] = {}
    for provider in chosen:
        try:
            listed = list(service._call(provider, lambda c: list(c.iter_batches())))
        except CoreError as exc:
            report.problems.append(f"{provider}: {exc}")
            continue
        seen = {info.batch_id for info in listed}
        for info in sorted(listed, key=lambda i: i.created_at or 0):
            job_id, key = info.metadata.get("job_id"), info.metadata.get("batch_key")
            if info.metadata.get("app") != APP_TAG or not job_id or not key:
                continue
            if job_id in deleted and job_id not in jobs:
                continue
            if job_id in damaged_ids:
                report.problems.append(f"{info.batch_id} (job {job_id}): not matched, the job's registry record "
                                       "is damaged; other jobs are fine")
                continue
            job = touched.get(job_id) or jobs.get(job_id)
            if job is None:
                job = restore_job(service.settings.jobs_dir, job_id)
                if job is None:
                    report.orphans.append(f"{info.batch_id} (job {job_id}, {info.status}): no job folder to rebuild from")
                    continue
                report.restored_jobs.append(job_id)
                jobs[job_id] = job
            batch = next((b for b in job.batches if b.key == key), None)
            if batch is None or info.batch_id in attempt_ids(batch):
                continue
            if batch.batch_id != info.batch_id:
                if batch.batch_id is None or job_id in report.restored_jobs:
                    report.adopted.append(f"{job_id}/{key}: {info.batch_id}")
                    batch.apply(info, checked_at=service._now())
                    touched[job_id] = job
                continue
            batch.apply(info, checked_at=service._now())
            touched[job_id] = job
        for job in jobs.values():
            if job.provider != provider:
                continue
            for batch in job.batches:
                if batch.batch_id and batch.batch_id not in seen:
                    batch.last_error = "the provider no longer lists this batch"
                    report.unknown_at_provider.append(f"{job.id}/{batch.key}: {batch.batch_id}")
                    touched[job.id] = job
    if touched:
        service._save(*touched.values())
    for provider in chosen:
        remove_unused_uploads(service, provider, jobs, report)
    return report


#: An upload younger than this may belong to a submission under way in another process.
STALE_UPLOAD_SECONDS = 3600


def remove_unused_uploads(service: JobService, provider: ProviderName, jobs: dict[str, Job],
                          report: ReconcileReport) -> None:
    """Delete request files we uploaded that no batch was ever created from (the process died
    between upload and create, and the file was uploaded again). Only files named as ours
    (``<job id>-<batch key>.jsonl``), of jobs in the registry, not used by any of that job's
    batches, and older than an hour are touched."""
    in_use = {b.input_file_id for j in jobs.values() for b in j.batches if b.input_file_id}
    in_use |= {a.get("input_file_id") for j in jobs.values() for b in j.batches for a in b.attempts}
    now = service._clock().timestamp()
    try:
        files = list(service._call(provider, lambda c: list(c.iter_files(purpose="batch"))))
    except CoreError as exc:
        report.problems.append(f"{provider}: listing uploaded files: {exc}")
        return
    for item in files:
        owner = parse_upload_name(item.filename)
        if owner is None or owner[0] not in jobs or jobs[owner[0]].provider != provider:
            continue
        if item.file_id in in_use or now - item.created_at < STALE_UPLOAD_SECONDS:
            continue
        try:
            service._call(provider, lambda c, f=item.file_id: c.delete_file(f))
        except CoreError as exc:
            report.problems.append(f"{provider}: removing unused upload {item.file_id}: {exc}")
            continue
        report.removed_files.append(f"{item.file_id} ({item.filename})")


def restore_job(jobs_dir: Path, job_id: str) -> Job | None:
    """The job as its folder's snapshot recorded it at submission, or None. ``job_id`` may
    come from a provider's metadata: it names a folder only if it is a plain id."""
    if not is_safe_id(job_id):
        return None
    snapshot = Path(jobs_dir) / job_id / SNAPSHOT_FILE
    if not snapshot.is_file():
        return None
    try:
        return Job.from_record(orjson.loads(snapshot.read_bytes()))
    except (OSError, orjson.JSONDecodeError, RegistryError):
        return None
