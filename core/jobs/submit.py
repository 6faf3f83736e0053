"""Submitting a job, crash-safe: intent is recorded before any paid call.

The request files, the row file and the job's snapshot (``job.json``) are written, then the
job is recorded in the registry, and only then are batches uploaded and created; the registry
is written after each batch, so a crash at any point leaves a job that ``submit --resume``
(:func:`resume_submission`) or reconcile finishes without sending anything twice. Batches
that do not fit under the enqueued-token limit wait as ``queued`` for later refresh cycles
(:mod:`core.jobs.refresh`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from core.errors import NotReady, ProviderError, RegistryError, StorageError, SubmissionIncomplete
from core.jobs import manage
from core.jobs.common import APP_TAG, ROW_FILE, SNAPSHOT_FILE, attempt_ids, upload_name
from core.requests import iter_request_lines, write_request_files
from core.safefs import atomic_write, describe_os_error, private_dir

if TYPE_CHECKING:
    from core.client import BatchClient
    from core.jobs.service import JobService
    from core.models import BatchRecord, Job
    from core.planning import Preparation

HELD_NOTE = ("held: recorded without sending (submit --hold); export its requests with: python -m core "
             "export-requests --job {job} --dir DIR, or send them with: python -m core submit --resume {job}")


def submit(service: JobService, prep: Preparation, *, created_by: str = "cli", send: bool = True) -> Job:
    """Write the request files, record the job, then send as many batches as the
    enqueued-token limit allows (the rest are sent by later refresh cycles).

    With ``send=False`` the job is recorded and nothing is sent: its batches wait as
    ``submit_failed`` (held), for ``submit --resume`` or a run elsewhere
    (:mod:`core.interop.files`)."""
    client = service.client(prep.provider) if send else None  # fails early (no key) before anything is recorded
    job_id = service._new_job_id()
    job_dir = service.settings.jobs_dir / job_id
    try:
        job = record_intent(service, prep, job_id=job_id, job_dir=job_dir, created_by=created_by)
    except (OSError, RegistryError) as exc:
        # nothing was sent yet: leave no half-written job folder behind (a full disk)
        shutil.rmtree(job_dir, ignore_errors=True)
        if isinstance(exc, OSError):
            raise StorageError(describe_os_error(f"Could not write job {job_id} in {job_dir}", exc)) from None
        raise
    if client is None:
        for batch in job.batches:
            batch.status, batch.last_error = "submit_failed", HELD_NOTE.format(job=job.id)
        service._save(job)
        return job
    return send_batches(service, job, client)


def record_intent(service: JobService, prep: Preparation, *, job_id: str, job_dir: Path, created_by: str) -> Job:
    """Write the request files, the row file and the job snapshot, then record the job."""
    from core.csvout import write_csv

    private_dir(job_dir)
    if prep.examples is not None:  # the exact set the labeler learns from, beside the request files
        from core.local.labeler.examples import job_examples_path

        atomic_write(job_examples_path(job_dir), prep.examples.canonical)
    requests = prep.requests
    custom_ids = requests["custom_id"].tolist()
    files = write_request_files(
        iter_request_lines(custom_ids, requests["paragraph_text"].tolist(), task=prep.task,
                           prompts=prep.prompts, model=prep.model, max_tokens=prep.max_tokens),
        job_dir,
        chunks=prep.chunks,
        custom_ids=custom_ids,
    )
    batch_of_request = {cid: f"b{n:03d}" for n, (s, e) in enumerate(prep.chunks) for cid in custom_ids[s:e]}
    rows = prep.rows.copy()
    rows["batch_key"] = rows["request_id"].map(batch_of_request)
    write_csv(rows, job_dir / ROW_FILE)  # quotes a lone carriage return, which to_csv leaves bare
    from core.models import BatchRecord, Job

    job = Job(
        id=job_id,
        task=prep.task.name,
        provider=prep.provider,
        model=prep.model,
        max_tokens=prep.max_tokens,
        created_at=service._now(),
        created_by=created_by,
        name=manage.clean_name(prep.name),
        note=manage.clean_note(prep.note),
        parent_job_id=prep.parent_job_id,
        retry_of=prep.retry_of,
        job_dir=str(job_dir),
        output_dir=str(service.settings.data_dir / prep.task.output_folder / job_id),
        n_rows=prep.n_rows,
        n_requests=prep.n_requests,
        dedupe=prep.dedupe,
        enqueued_token_limit=prep.enqueued_token_limit,
        sources=prep.sources,
        prompts=prep.prompts.to_record(),
        estimate={**prep.estimate.to_record(), "duplicates_saved": prep.duplicates_saved},
        batches=[
            BatchRecord(key=f"b{n:03d}", request_file=str(f.path), n_requests=f.n_requests,
                        first_custom_id=f.first_custom_id, last_custom_id=f.last_custom_id,
                        est_input_tokens=tokens)
            for n, (f, tokens) in enumerate(zip(files, prep.chunk_tokens))
        ],
    )
    # Intent first: from here on a crash never loses the job. The snapshot in the job
    # folder lets reconcile rebuild the record if the registry is ever lost.
    atomic_write(job_dir / SNAPSHOT_FILE, orjson.dumps(job.to_record(), option=orjson.OPT_INDENT_2))
    service._save(job)
    return job


def resume_submission(service: JobService, job_or_batch_id: str) -> Job:
    """Send the batches of a job that were never created (after a failure or a crash).
    Batches the provider already has (found by their metadata) are adopted, not resent."""
    job = service.get(job_or_batch_id)
    if not any(b.status in ("pending", "uploaded", "submit_failed") for b in job.batches):
        raise NotReady(f"Job {job.id} has no unsent batch.")
    client = service.client(job.provider)
    known = {info.metadata.get("batch_key"): info for info in client.iter_batches()
             if info.metadata.get("job_id") == job.id}
    for batch in job.batches:
        if batch.is_unsent and batch.key in known and known[batch.key].batch_id not in attempt_ids(batch):
            batch.apply(known[batch.key], checked_at=service._now())
        elif batch.status == "submit_failed":
            batch.status = "pending"
    service._save(job)
    return send_batches(service, job, client)


def free_tokens(service: JobService, provider: str, model: str, limit: int | None, exclude: str) -> float:
    """Tokens still free under the enqueued-token limit, counting other jobs' active batches."""
    if not limit:
        return float("inf")
    used = sum(b.est_input_tokens for j in service.list_jobs() if j.id != exclude and j.provider == provider
               and j.model == model for b in j.batches if b.is_active)
    return limit - used


def send_batches(service: JobService, job: Job, client: BatchClient) -> Job:
    """Send the job's unsent batches while they fit under the limit (the rest wait as
    ``queued``), recording the job after each; a refused one marks the rest ``submit_failed``."""
    room = free_tokens(service, job.provider, job.model, job.enqueued_token_limit, exclude=job.id)
    room -= sum(b.est_input_tokens for b in job.batches if b.is_active)
    for batch in job.batches:
        if batch.status not in ("pending", "uploaded", "queued"):
            continue
        if batch.est_input_tokens > room:
            batch.status = "queued"
            continue
        try:
            create_batch(service, job, batch, client)
        except ProviderError as exc:
            for rest in job.batches:
                if rest.status in ("pending", "uploaded"):
                    rest.status, rest.last_error = "submit_failed", str(exc)
            batch.status, batch.last_error = "submit_failed", str(exc)
            service._save(job)
            raise SubmissionIncomplete(
                job.id,
                f"Job {job.id} is recorded, but batch {batch.key} could not be submitted: {exc} "
                f"Send the rest later with: python -m core submit --resume {job.id}",
            ) from None
        room -= batch.est_input_tokens
        service._save(job)
    service._save(job)
    return job


def create_batch(service: JobService, job: Job, batch: BatchRecord, client: BatchClient) -> None:
    """Upload the batch's request file (unless uploaded before) and create the batch."""
    if batch.input_file_id is None:
        # named after the job and batch, so an upload whose batch was never created (a crash
        # in between) is recognisable as ours and removed by reconcile
        batch.input_file_id = client.upload(Path(batch.request_file), name=upload_name(job.id, batch.key))
        batch.status = "uploaded"
    upload_examples(service, job, client)
    info = client.create_batch(
        input_file_id=batch.input_file_id,
        metadata={"job_id": job.id, "batch_key": batch.key, "task": job.task, "app": APP_TAG},
    )
    batch.apply(info, checked_at=service._now())


def upload_examples(service: JobService, job: Job, client: BatchClient) -> None:
    """Give the local backend the example set a labeler job learns from (once per set and
    service). The backend finds it by the sha256 in the model name, never by a path."""
    from core.local.labeler import examples_sha256
    from core.local.labeler.examples import job_examples_path

    sha = examples_sha256(job.model)
    if sha is None or job.provider != "local" or (job.provider, sha) in service._examples_sent:
        return
    path = job_examples_path(job.job_dir)
    if not path.is_file():
        return
    client.upload(path, name=f"labeler-examples-{sha[:16]}.jsonl", purpose="user_data")
    service._examples_sent.add((job.provider, sha))


def reassign_batches(service: JobService, job: Job, owner: dict[str, str]) -> None:
    """After a batch was re-planned into pieces: record which piece sends each request in
    the job's row file, and its new batches in the job folder's snapshot."""
    from core.csvout import write_csv

    rows = service.rows(job)
    rows["batch_key"] = rows["request_id"].map(owner).fillna(rows["batch_key"])
    job_dir = Path(job.job_dir)
    write_csv(rows, job_dir / ROW_FILE)
    atomic_write(job_dir / SNAPSHOT_FILE, orjson.dumps(job.to_record(), option=orjson.OPT_INDENT_2))
