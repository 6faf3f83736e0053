"""Monitoring jobs: one refresh cycle (ask the provider about every active batch, requeue
batches refused for the enqueued-token limit, send queued batches that now fit, record it
all in one registry write) and waiting, cycle after cycle, until jobs are finished.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from core.errors import CoreError
from core.jobs import recovery
from core.jobs.common import is_live, output_may_lag
from core.jobs.submit import create_batch

if TYPE_CHECKING:
    from core.jobs.service import JobService
    from core.models import BatchRecord, Job


def refresh(service: JobService, job_ids: Iterable[str] | None = None) -> list[Job]:
    """One monitoring cycle: ask the provider about every active batch (of the given jobs,
    or of all), requeue batches refused for the enqueued-token limit, send queued batches
    that now fit, and record it all in one registry write. A failed check keeps the known
    status and records the problem in ``last_error``.

    Returns the given jobs, or, without ids, the jobs that had something to check."""
    wanted = None if job_ids is None else list(dict.fromkeys(service.get(j).id for j in job_ids))
    # Only jobs with something under way are parsed: with 10,000 finished jobs stored,
    # a cycle must not rebuild them all.
    live = recovery.read_records(service.registry.list_jobs(where=is_live))[0]  # damaged: left out
    jobs = [j for j in live if wanted is None or j.id in wanted]
    now = service._now()
    changed: set[str] = set()
    refused: list[tuple[Job, BatchRecord]] = []
    for job in jobs:
        for batch in job.batches:
            if not batch.batch_id or not (batch.is_active or output_may_lag(batch)):
                continue
            try:
                info = service._call(job.provider, lambda c, b=batch: c.retrieve(b.batch_id))
            except CoreError as exc:
                batch.last_error = str(exc)
            else:
                batch.apply(info, checked_at=now)
                if batch.failed_on_token_limit:
                    refused.append((job, batch))
            changed.add(job.id)
    learned: dict[str, int] = {}
    if refused:
        from core.jobs import token_limits  # tokens and request files: not needed to list jobs
    for job, batch in refused:
        # a refusal while other batches of ours for the model are queued is explained by them
        busy = any(b.is_active for j in live if j.provider == job.provider and j.model == job.model
                   for b in j.batches if b is not batch)
        token_limits.handle_refusal(service, job, batch, queue_busy=busy, learned=learned)
    changed |= send_queued(service, jobs, live)
    if changed or learned:
        with service.registry.transaction() as tx:
            for job in jobs:
                stored = tx.get_job(job.id) if job.id in changed else None
                if stored is None:  # unchanged, or deleted meanwhile
                    continue
                # only the batches (and a limit learned for them): fields written meanwhile
                # (collection results) stay
                stored["batches"] = [b.model_dump(mode="json") for b in job.batches]
                stored["enqueued_token_limit"] = job.enqueued_token_limit
                tx.put_job(stored)
            for key, limit in learned.items():
                tx.put_provider_limit(key, {"enqueued_token_limit": limit, "learned_at": now,
                                            "source": "stated in the provider's refusal"})
    if wanted is None:
        return jobs
    by_id = {j.id: j for j in jobs}
    return [by_id.get(job_id) or service.get(job_id) for job_id in wanted]



def send_queued(service: JobService, jobs: list[Job], all_jobs: list[Job]) -> set[str]:
    """Send queued batches, oldest job first, while they fit under their model's limit."""
    changed: set[str] = set()
    queued = [j for j in sorted(jobs, key=lambda j: j.created_at) if any(b.status == "queued" for b in j.batches)]
    if queued:
        from core.jobs import token_limits  # tokens and request files: not needed to list jobs
    for job in queued:
        used = sum(b.est_input_tokens for j in all_jobs if j.provider == job.provider and j.model == job.model
                   for b in j.batches if b.is_active)
        room = (job.enqueued_token_limit or float("inf")) - used
        for batch in job.batches:
            if batch.status != "queued" or batch.est_input_tokens > room:
                continue
            if not token_limits.is_due(batch, service._clock()):
                continue
            if batch.attempts and used:
                # The provider refused it for its queue limit, which may be lower than ours
                # (or shared with other work): resend only once our queue for the model is empty.
                continue
            try:
                create_batch(service, job, batch, service.client(job.provider))
            except CoreError as exc:
                batch.last_error = str(exc)
                changed.add(job.id)
                break
            room -= batch.est_input_tokens
            used += batch.est_input_tokens
            changed.add(job.id)
    return changed



def wait(
    service: JobService,
    job_ids: Sequence[str],
    *,
    poll_interval: float = 10.0,
    timeout: float | None = None,
    on_update: Callable[[list[Job]], None] | None = None,
) -> list[Job]:
    """Refresh until every given job is finished (or ``timeout`` seconds pass)."""
    ids = [service.get(j).id for j in job_ids]
    started = time.monotonic()
    while True:
        jobs = service.refresh(ids)
        if on_update:
            on_update(jobs)
        if all(j.is_finished or j.status == "submit_failed" for j in jobs):
            return jobs
        if timeout is not None and time.monotonic() - started >= timeout:
            return jobs
        service._sleep(poll_interval)
