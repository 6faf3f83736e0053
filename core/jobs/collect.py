"""Collecting a finished job: download its output and error files once, give every row one
status, lay the answers of its retries over its own, write the result CSVs."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pandas as pd

from core.errors import CoreError, NotReady, StorageError
from core.jobs.common import output_may_lag, usage_with_cost
from core.models import BatchRecord, Job
from core.results import (
    MalformedResultFile,
    ResultTable,
    fallback_results,
    merge_results,
    output_column_names,
    overlay_retry,
    status_counts,
    write_results,
)
from core.safefs import atomic_write, contained, describe_os_error, id_for_path, private_dir
from core.tasks import get_task

if TYPE_CHECKING:
    from core.jobs.service import JobService

RAW_FOLDER = "raw"
RAW_RESULTS_FILE = "batch_results.jsonl"


@dataclass(frozen=True)
class Collection:
    """What collecting a job produced."""

    job: Job
    frame: pd.DataFrame
    counts: dict[str, int]
    output_files: list[Path]
    raw_files: list[Path]


def collect(service: JobService, job_or_batch_id: str, *, output_dir: Path | str | None = None,
            column_names: str | None = None) -> Collection:
    """Download output and error files, give every row one status, write the result CSVs
    (with ``column_names`` ``legacy``, task 2's answers under the previous tool's names;
    default: the ``column_names`` setting).

    For an original job, the answers of its finished retries are laid over its own: each
    row shows the newest successful answer and the job that produced it. Idempotent: raw
    files already downloaded are reused and outputs are rewritten whole."""
    job = service.get(job_or_batch_id)
    out_dir = resolve_output_dir(output_dir) if output_dir else Path(job.output_dir)
    frame, raw_files, usage = _own_results(service, job)
    if job.retry_of is None:
        for retry in service.retries_of(job):
            if retry.is_finished:
                retry_frame = collect_alone(service, retry)
                frame = overlay_retry(frame, retry_frame, retry_job_id=retry.id)
    task = get_task(job.task)
    with _writing(out_dir):
        private_dir(out_dir)
        names = output_column_names(task, column_names or service.settings.column_names)
        output_files = write_results(frame, task=task, output_dir=out_dir, column_names=names)
        outputs = [p for p in raw_files if p.name.endswith("_output.jsonl")]
        atomic_write(out_dir / RAW_RESULTS_FILE, (p.read_bytes() for p in outputs))
    counts = status_counts(frame)
    job.collected_at = service._now()
    job.result_counts = counts
    job.output_files = [str(p) for p in output_files]
    job.output_dir = str(out_dir)
    job.usage = usage
    service._update(job, "collected_at", "result_counts", "output_files", "output_dir", "usage", "batches")
    return Collection(job=job, frame=frame, counts=counts, output_files=output_files, raw_files=raw_files)


def resolve_output_dir(value: Path | str) -> Path:
    """An output folder a user named: ``~`` expanded, made absolute (so the registry and
    Explore find it from anywhere), and checked to be a folder we can create and write in.
    Raises a CoreError that says what is wrong instead of failing half-way through writing."""
    text = str(value)
    if not text.strip():
        raise CoreError("The output folder is empty; give a folder name.")
    path = Path(os.path.expanduser(text)).absolute()
    for part in path.parts:
        if len(os.fsencode(part)) > 255:
            raise CoreError(f"The output folder name is too long ({len(os.fsencode(part))} bytes; "
                            f"at most 255 per folder name): {_short(part)}")
    if path.exists() and not path.is_dir():
        raise CoreError(f"The output folder {_short(str(path))} exists and is not a folder.")
    if str(path).startswith(("/proc/", "/sys/", "/dev/")) or str(path) in ("/proc", "/sys", "/dev"):
        raise CoreError(f"The output folder {_short(str(path))} is inside a system folder; choose a folder of yours.")
    try:
        private_dir(path)
    except OSError as exc:
        raise CoreError(f"Cannot create the output folder {_short(str(path))}: {exc.strerror or exc}.") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CoreError(f"Cannot write in the output folder {_short(str(path))}: permission denied.")
    return path


@contextmanager
def _writing(folder: Path) -> Iterator[None]:
    """Turn an OSError while writing results into a StorageError naming the folder."""
    try:
        yield
    except OSError as exc:
        raise StorageError(describe_os_error(f"Could not write the results in {folder}", exc)) from None


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def collect_alone(service: JobService, job: Job) -> pd.DataFrame:
    """A retry job's own results (written to its own folder), without overlays."""
    frame, _raw_files, usage = _own_results(service, job)
    with _writing(Path(job.output_dir)):
        task = get_task(job.task)
        output_files = write_results(frame, task=task, output_dir=private_dir(Path(job.output_dir)),
                                     column_names=output_column_names(task, service.settings.column_names))
    job.collected_at, job.result_counts, job.usage = service._now(), status_counts(frame), usage
    job.output_files = [str(p) for p in output_files]
    service._update(job, "collected_at", "result_counts", "output_files", "usage", "batches")
    return frame



def raw_path(raw_dir: Path, batch: BatchRecord, kind: str) -> Path:
    """Where a batch's downloaded (or imported) ``output`` or ``errors`` file is kept."""
    # the batch id comes from the provider: it names a file only once checked (or hashed)
    return contained(raw_dir, f"{id_for_path(batch.batch_id or batch.key)}_{kind}.jsonl")


def _own_results(service: JobService, job: Job) -> tuple[pd.DataFrame, list[Path], dict]:
    """This job's rows with their statuses, from its own batches' files."""
    if not job.is_finished:
        pending = ", ".join(f"{b.key} {b.status}" for b in job.batches if not b.is_terminal)
        raise NotReady(f"Job {job.id} is not finished yet ({pending}). Check again later or use --wait.")
    task = get_task(job.task)
    raw_dir = Path(job.job_dir) / RAW_FOLDER
    with _writing(raw_dir):
        private_dir(raw_dir)
    table = ResultTable(task)
    raw_files: list[Path] = []
    for batch in job.batches:
        if batch.batch_id and output_may_lag(batch):
            batch.apply(service._call(job.provider, lambda c, b=batch: c.retrieve(b.batch_id)), checked_at=service._now())
            if output_may_lag(batch):
                raise NotReady(f"Batch {batch.batch_id} is completed but its output file is not published "
                               "yet; try again in a minute.")
        for kind, file_id in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
            if not file_id:
                continue
            path = raw_path(raw_dir, batch, kind)
            if not path.exists():
                data = service._call(job.provider, lambda c, f=file_id: c.download(f))
                with _writing(raw_dir):
                    atomic_write(path, data)
            raw_files.append(path)
            try:
                table.parse(path.read_bytes(), batch_id=batch.batch_id, file_label=str(path))
            except MalformedResultFile as exc:
                raise CoreError(f"Job {job.id}: the {kind} file of batch {batch.batch_id} is damaged: {exc}") from None
    rows = service.rows(job)
    requests = rows[rows["custom_id"] == rows["request_id"]]
    positions = table.best_positions()
    for result in fallback_results(requests, positions, job.batches):  # ids no file reported
        positions[result.custom_id] = table.add(result)
    frame = merge_results(rows, table, key="request_id", positions=positions)
    frame["answered_by"] = job.id
    frame["provider"] = job.provider  # a retry on another provider overlays its own
    # tokens per request, not per fanned-out row
    tokens = table.usage(positions[c] for c in requests["custom_id"].tolist() if c in positions)
    named = frame.loc[frame["model"] != "", "model"]
    answered_by = str(named.mode().iloc[0]) if len(named) else None
    usage = usage_with_cost(*tokens, job.model, service.settings.data_dir, answered_by=answered_by)
    return frame, raw_files, usage
