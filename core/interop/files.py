"""A job's request files out, and result files made elsewhere back in.

``export_requests`` writes a job's batch request files (optionally with another model name
in every line, as ``vllm run-batch`` needs one it serves) for a run somewhere else: vLLM's
offline batch runner, OpenAI's web page, another machine. ``import_results`` brings that
run's output (and error) files back: every line must carry the custom_id of one of the job's
requests, lines are merged by custom_id with what was imported before (a failure never
replaces an answer, so importing the same files twice changes nothing), and each batch they
cover becomes ``completed`` with them as its output and error files, so collecting gives every
row its status as usual.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import orjson

from core.inputs import excerpt
from core.interop.errors import BatchBusy, ExportError, ForeignResults, ResultFileError
from core.jobs.collect import RAW_FOLDER, raw_path, resolve_output_dir
from core.jobs.common import upload_name
from core.models import BatchRecord, Job
from core.requests import MAX_BYTES_PER_FILE
from core.safefs import atomic_write, contained, private_dir

if TYPE_CHECKING:
    from core.jobs.service import JobService

#: Provider-style file ids given to imported output and error files: collect finds the files in
#: the job's raw folder under the names it would download them to, and never asks a provider.
IMPORTED_FILE_PREFIX = "imported-"
#: The largest result file read (the Batch API's own limit for one file).
MAX_RESULT_FILE_BYTES = MAX_BYTES_PER_FILE
_MAX_MODEL_CHARS = 256


# ----- export -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportedFile:
    """One request file written by :func:`export_requests`."""

    batch_key: str
    path: Path
    n_requests: int


def export_requests(service: JobService, job_or_batch_id: str, folder: Path | str, *,
                    model: str | None = None) -> list[ExportedFile]:
    """Write the job's request files into ``folder`` as ``<job>-<batch>.jsonl`` (0600), with
    ``model`` in every line when given. Raises ExportError when a request file is missing."""
    job = service.get(job_or_batch_id)
    if model is not None:
        _check_model(model)
    target = resolve_output_dir(folder)
    written: list[ExportedFile] = []
    for batch in job.batches:
        source = Path(batch.request_file) if batch.request_file else None
        if source is None or not source.is_file():
            where = f" ({source})" if source else ""
            raise ExportError(f"Job {job.id}: batch {batch.key} has no request file{where}, so its requests "
                              "cannot be exported.")
        data = source.read_bytes()
        lines = [line for line in data.splitlines() if line.strip()]
        if model is not None:
            data = b"".join(_with_model(line, model, source, number) + b"\n"
                            for number, line in enumerate(lines, start=1))
        path = contained(target, upload_name(job.id, batch.key))
        atomic_write(path, data)
        written.append(ExportedFile(batch.key, path, len(lines)))
    return written


def _check_model(model: str) -> None:
    if not model.strip() or len(model) > _MAX_MODEL_CHARS or any(ord(ch) < 32 or ord(ch) == 127 for ch in model):
        raise ExportError(f"The model name {excerpt(model, 60)!r} cannot be used: give the name the other "
                          f"server serves (1 to {_MAX_MODEL_CHARS} printable characters).")


def _with_model(line: bytes, model: str, source: Path, number: int) -> bytes:
    try:
        request = orjson.loads(line)
        request["body"]["model"] = model
    except (orjson.JSONDecodeError, TypeError, KeyError):
        raise ExportError(f"{source.name}, line {number}: not a batch request line, so its model cannot be "
                          "changed.") from None
    return orjson.dumps(request)


# ----- import -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResultSource:
    """The bytes of one result file and how to name it in messages and records."""

    label: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class BatchImport:
    """What importing did to one batch."""

    batch_key: str
    answered: int  # lines now in the batch's output file
    failed: int  # lines now in its error file
    added: int  # custom_ids that had no imported line before
    replaced: int  # imported lines replaced by a newer one for the same custom_id
    missing: int  # requests of the batch that still have no line


@dataclass(frozen=True)
class ResultsImport:
    """What :func:`import_results` brought into a job."""

    job: Job
    files: list[dict[str, object]] = field(default_factory=list)  # label, sha256, lines
    batches: list[BatchImport] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(b.added or b.replaced for b in self.batches)


def read_result_source(path: Path) -> ResultSource:
    """A result file from disk: a regular file of at most :data:`MAX_RESULT_FILE_BYTES`."""
    label = excerpt(str(path))
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ResultFileError(f"{label}: cannot be read ({exc.strerror or exc}).") from None
    if not stat.S_ISREG(info.st_mode):
        raise ResultFileError(f"{label}: not a regular file.")
    if info.st_size > MAX_RESULT_FILE_BYTES:
        raise ResultFileError(f"{label}: {info.st_size:,} bytes, more than a batch result file can hold "
                              f"({MAX_RESULT_FILE_BYTES:,}).")
    try:
        return ResultSource(label, Path(path).read_bytes())
    except OSError as exc:
        raise ResultFileError(f"{label}: cannot be read ({exc.strerror or exc}).") from None


def result_custom_ids(sources: Iterable[ResultSource]) -> set[str]:
    """Every custom_id the files report (checked like :func:`import_results` checks them)."""
    return {cid for source in sources for _number, cid, _line, _raw in _parse(source)}


def import_results(service: JobService, job_or_batch_id: str, paths: Sequence[Path]) -> ResultsImport:
    """Bring output and error files made elsewhere into a job (see the module docstring).
    Nothing is written unless every line of every file belongs to the job."""
    if not paths:
        raise ResultFileError("No result file given.")
    return attach_results(service, service.get(job_or_batch_id), [read_result_source(Path(p)) for p in paths])


def attach_results(service: JobService, job: Job, sources: Sequence[ResultSource]) -> ResultsImport:
    """Merge result lines into the job's batches and record them (the shared step of
    :func:`import_results` and the previous tool's import)."""
    parsed = [(source, list(_parse(source))) for source in sources]
    if job.imported is not None:
        # a previous-tool job may learn here which request file it sent (see core.interop.legacy.settle)
        from core.interop.legacy.settle import settle_rows

        job = settle_rows(service, job, reported={cid for _s, lines in parsed for _n, cid, _l, _r in lines})
    rows = service.rows(job)
    requests = rows[rows["custom_id"] == rows["request_id"]]
    batch_of = dict(zip(requests["custom_id"].tolist(), requests["batch_key"].tolist()))
    incoming: dict[str, dict[str, tuple[bool, bytes]]] = {}  # batch key -> custom_id -> (answer?, raw)
    taken: dict[tuple[str, str], int] = {}  # (file sha256, batch key) -> lines
    for source, lines in parsed:
        for number, cid, line, raw in lines:
            key = batch_of.get(cid)
            if key is None:
                raise ForeignResults(f"{source.label}, line {number}: custom_id {excerpt(cid, 80)!r} is not one of "
                                     f"the requests of job {job.id}; nothing was imported.")
            _merge(incoming.setdefault(key, {}), cid, _is_answer(line), raw)
            taken[(source.sha256, key)] = taken.get((source.sha256, key), 0) + 1
    for key in incoming:
        _check_open(job, job.batch(key))
    now = service._now()
    raw_dir = private_dir(Path(job.job_dir) / RAW_FOLDER)
    order = {cid: n for n, cid in enumerate(requests["custom_id"].tolist())}
    outcomes: list[BatchImport] = []
    for key, lines in incoming.items():
        batch = job.batch(key)
        known = _imported_lines(raw_dir, batch)
        added = sum(1 for cid in lines if cid not in known)
        replaced = 0
        for cid, (answer, raw) in lines.items():
            before = known.get(cid)
            _merge(known, cid, answer, raw)
            replaced += before is not None and known[cid] != before
        answers = sorted((cid for cid, (ok, _raw) in known.items() if ok), key=order.__getitem__)
        failures = sorted((cid for cid, (ok, _raw) in known.items() if not ok), key=order.__getitem__)
        batch.output_file_id = _write_kind(raw_dir, batch, "output", [known[cid][1] for cid in answers])
        batch.error_file_id = _write_kind(raw_dir, batch, "errors", [known[cid][1] for cid in failures])
        batch.status = "completed"
        batch.total, batch.completed, batch.failed = batch.n_requests, len(answers), len(failures)
        batch.errors, batch.last_error, batch.not_before = [], None, None
        batch.timestamps = {"completed_at": int(service._clock().timestamp())}
        batch.last_checked_at = now
        seen = {entry.get("sha256") for entry in batch.imported_results}
        for source, _lines in parsed:
            if source.sha256 not in seen and (source.sha256, key) in taken:
                batch.imported_results.append({"file": source.label, "sha256": source.sha256,
                                               "lines": taken[(source.sha256, key)], "imported_at": now})
                seen.add(source.sha256)
        in_batch = int((requests["batch_key"] == key).sum())
        outcomes.append(BatchImport(key, len(answers), len(failures), added, replaced, in_batch - len(known)))
    service._update(job, "batches")
    files = [{"file": source.label, "sha256": source.sha256, "lines": len(lines)} for source, lines in parsed]
    return ResultsImport(job=service.get(job.id), files=files, batches=sorted(outcomes, key=lambda b: b.batch_key))


def _parse(source: ResultSource) -> Iterable[tuple[int, str, dict, bytes]]:
    """(line number, custom_id, line, raw bytes) of every non-blank line; a line that is not
    a JSON object with a string custom_id is a ResultFileError naming it."""
    for number, raw in enumerate(source.data.splitlines(), start=1):
        raw = raw.strip()
        if not raw:
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ResultFileError(f"{source.label}, line {number}: not valid JSON; nothing was imported.") from None
        cid = line.get("custom_id") if isinstance(line, dict) else None
        if not isinstance(cid, str) or not cid:
            raise ResultFileError(f"{source.label}, line {number}: no custom_id; nothing was imported.")
        yield number, cid, line, raw


def _is_answer(line: dict) -> bool:
    """A line that belongs in an output file: an HTTP 2xx response and no error (the others go
    to the error file, as the Batch API sorts them)."""
    response = line.get("response")
    code = response.get("status_code") if isinstance(response, dict) else None
    return not line.get("error") and isinstance(code, int) and 200 <= code < 300


def _merge(lines: dict[str, tuple[bool, bytes]], cid: str, answer: bool, raw: bytes) -> None:
    """Keep the newer line for a custom_id, except that a failure never replaces an answer."""
    before = lines.get(cid)
    if before is None or answer or not before[0]:
        lines[cid] = (answer, raw)


def _check_open(job: Job, batch: BatchRecord) -> None:
    """Results may come in for a batch that no provider is running or has answered."""
    if batch.is_active:
        raise BatchBusy(f"Batch {batch.key} of job {job.id} is running at the provider ({batch.batch_id}, "
                        f"{batch.status}); wait for it to finish, or cancel it, before importing results for it.")
    from_provider = [fid for fid in (batch.output_file_id, batch.error_file_id)
                     if fid and not fid.startswith(IMPORTED_FILE_PREFIX)]
    if from_provider:
        raise BatchBusy(f"Batch {batch.key} of job {job.id} already has the provider's results "
                        f"({batch.batch_id}); collect them with: python -m core download --batch-id {job.id}")


def _imported_lines(raw_dir: Path, batch: BatchRecord) -> dict[str, tuple[bool, bytes]]:
    """The lines imported for this batch before (its raw files, when they came from here)."""
    known: dict[str, tuple[bool, bytes]] = {}
    for kind, file_id in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
        if not (file_id and file_id.startswith(IMPORTED_FILE_PREFIX)):
            continue
        path = raw_path(raw_dir, batch, kind)
        if not path.is_file():
            continue
        for _number, cid, line, raw in _parse(ResultSource(str(path), path.read_bytes())):
            _merge(known, cid, _is_answer(line), raw)
    return known


def _write_kind(raw_dir: Path, batch: BatchRecord, kind: str, lines: list[bytes]) -> str | None:
    """Write one of the batch's raw files and return its file id (None, and no file, when it
    has no line)."""
    path = raw_path(raw_dir, batch, kind)
    if not lines:
        path.unlink(missing_ok=True)
        return None
    data = b"\n".join(lines) + b"\n"
    atomic_write(path, data)
    return IMPORTED_FILE_PREFIX + hashlib.sha256(data).hexdigest()[:24]
