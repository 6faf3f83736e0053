"""The previous tool's jobs, brought into the registry and collected this product's way.

The previous tool (three scripts of ``sodascience/BiodiversityASSET``) kept, per batch:

- ``results/batch_jobs/<batch_id>.json``: batch_id, task, model, max_tokens, input_files,
  total_paragraphs, job_name, submitted_at, status, system/user prompt files (when custom),
  prerequisite_batch_id (task 2), and later output_file_id, error_file_id;
- ``results/batch_jobs/<task>_processing/<task>_<job name>_input.jsonl``: the request lines it
  uploaded (custom_ids ``<job name>_<row index>``, schema name ``structured_response``,
  ``max_tokens``);
- ``data/processed/<task>/<batch_id>/batch_results.jsonl``: the output file once downloaded,
  next to its result CSVs (merged by position: not used here).

:func:`import_legacy` makes each metadata file a job of provider ``openai`` marked as
imported, with one batch (its batch id). Which request file a batch sent is worked out from
the job name, the source CSV, the count and the times (the metadata does not name it); when
several fit, the custom_ids of the batch's answers decide, at import if the previous tool
downloaded them, else at download (:func:`settle_rows`). Rows come from that request file,
else from the recorded input CSV cut the way the previous tool cut it, and are refused with a
message when neither fits the recorded count and the answers' custom_ids.

Every path and id in the metadata is untrusted: an id names a file only when it is a plain id,
and a recorded input path is reduced to its file name and looked up in the known folders of the
given layout (or under its root, when it is a plain relative path).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import orjson
import pandas as pd

from core.csvout import write_csv
from core.errors import TaskError
from core.inputs import excerpt, read_table
from core.interop.errors import InteropError, LegacyLayoutError, ResultFileError, RowsUnresolved
from core.interop.files import IMPORTED_FILE_PREFIX, ResultSource, attach_results, result_custom_ids
from core.interop.legacy_rows import (
    BATCH_KEY,
    DEFAULT_USER_TEMPLATE,
    PLACEHOLDER,
    PreviousInput,
    RequestLines,
    Rows,
    answers_prefix,
    parse_request_file,
    prefix_shape,
    previous_input,
    rows_from_input,
    rows_from_request_file,
)
from core.jobs.collect import RAW_FOLDER, raw_path
from core.jobs.common import ROW_FILE, SNAPSHOT_FILE, output_may_lag
from core.models import BatchRecord, Job, SourceRecord
from core.prompts import PromptSet
from core.requests import MAX_BYTES_PER_FILE, make_custom_id
from core.safefs import UnsafePath, atomic_write, check_within, contained, is_safe_id, private_dir, safe_name
from core.tasks import INVESTMENT_ACTIVITY, TASKS, get_task

if TYPE_CHECKING:
    from core.jobs.service import JobService

TOOL = "previous tool (sodascience/BiodiversityASSET scripts)"
CREATED_BY = "import-legacy"
PREVIOUS_MAX_TOKENS = 500  # the previous tool's --max-tokens default
RESULTS_FILE = "batch_results.jsonl"
REQUESTS_FOLDER = "legacy_requests"  # copies of the request files that fit, in the job folder
_METADATA_LIMIT = 1024 * 1024
_PROMPT_LIMIT = 1024 * 1024
_MATCH_WINDOW = timedelta(days=1)  # a request file is written moments before its submission
_TASKS = "|".join(re.escape(name) for name in TASKS)
_CHUNKED_FILE = re.compile(rf"^(?P<task>{_TASKS})_(?P<stamp>\d{{8}}_\d{{6}})_(?P<stem>.+)_chunk(?P<chunk>\d+)_input\.jsonl$")
_COMBINED_FILE = re.compile(rf"^(?P<task>{_TASKS})_(?P<stamp>\d{{8}}_\d{{6}})_input\.jsonl$")
_SEPARATORS = re.compile(r"[\\/]+")


# ----- the layout on disk -------------------------------------------------------------------
@dataclass
class Layout:
    """Where the previous tool's files are: metadata folders (``results/batch_jobs``),
    ``data/processed`` folders, prompt folders, and roots that relative paths start from."""

    metadata_dirs: list[Path] = field(default_factory=list)
    processed_dirs: list[Path] = field(default_factory=list)
    prompt_dirs: list[Path] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)

    def add(self, bucket: list[Path], path: Path) -> None:
        if path.is_dir() and path not in bucket:
            bucket.append(path)


def find_layout(paths: Iterable[Path | str]) -> Layout:
    """Classify each path: a checkout of the previous tool, its ``results/`` (or
    ``results/batch_jobs/``) folder, or its ``data/`` (or ``data/processed/``) folder. Raises
    LegacyLayoutError for a path that is none of these, or when no metadata folder is given."""
    layout = Layout()
    for given in paths:
        path = Path(os.path.expanduser(str(given))).absolute()
        if not path.is_dir():
            raise LegacyLayoutError(f"{excerpt(str(path))}: not a folder.")
        if (path / "results" / "batch_jobs").is_dir():  # a checkout
            layout.add(layout.metadata_dirs, path / "results" / "batch_jobs")
            layout.add(layout.processed_dirs, path / "data" / "processed")
            layout.add(layout.prompt_dirs, path / "prompts")
            layout.add(layout.roots, path)
        elif (path / "batch_jobs").is_dir():  # results/
            layout.add(layout.metadata_dirs, path / "batch_jobs")
            for root in (path.parent,):  # the checkout it probably sits in
                layout.add(layout.processed_dirs, root / "data" / "processed")
                layout.add(layout.prompt_dirs, root / "prompts")
                layout.add(layout.roots, root)
        elif path.name == "batch_jobs" and any(path.glob("*.json")):
            layout.add(layout.metadata_dirs, path)
            root = path.parent.parent
            layout.add(layout.processed_dirs, root / "data" / "processed")
            layout.add(layout.prompt_dirs, root / "prompts")
            layout.add(layout.roots, root)
        elif (path / "processed").is_dir():  # data/
            layout.add(layout.processed_dirs, path / "processed")
            layout.add(layout.roots, path.parent)
        elif any((path / name).is_dir() for name in (*TASKS, "biodiversity_related_paragraphs")):  # data/processed/
            layout.add(layout.processed_dirs, path)
            layout.add(layout.roots, path.parent.parent)
        else:
            raise LegacyLayoutError(
                f"{excerpt(str(path))} is not a checkout of the previous tool, nor its results/ or data/processed/ "
                "folder (no results/batch_jobs/, batch_jobs/ or processed/ inside)."
            )
    if not layout.metadata_dirs:
        raise LegacyLayoutError("No results/batch_jobs/ folder among the given paths: give the previous tool's "
                                "checkout or its results/ folder (and its data/processed/ folder if it lives elsewhere).")
    return layout


# ----- metadata files -----------------------------------------------------------------------
@dataclass
class LegacyMetadata:
    """The checked content of one ``results/batch_jobs/<batch_id>.json``."""

    path: Path
    batch_id: str
    task: str
    model: str | None
    max_tokens: int | None
    input_files: list[str]
    total: int | None
    submitted_at: datetime | None
    submitted_text: str | None
    status: str | None
    job_name: str | None
    prerequisite: str | None
    system_prompt_file: str | None
    user_prompt_file: str | None

    @property
    def input_names(self) -> list[str]:
        return [file_name(p) for p in self.input_files]

    @property
    def group(self) -> tuple[str, tuple[str, ...]]:
        """Batches of one submission run share this: task and source CSV(s)."""
        return self.task, tuple(Path(name).stem for name in self.input_names)


def file_name(recorded: str) -> str:
    """The file name of a recorded path, whichever separator the recording machine used."""
    return _SEPARATORS.split(recorded.strip())[-1]


def _text(value: Any, limit: int = 4096) -> str | None:
    return value if isinstance(value, str) and value.strip() and len(value) <= limit else None


def _positive(value: Any, limit: int) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= limit else None


def _timestamp(value: Any) -> datetime | None:
    """A recorded time as naive local time (how the previous tool wrote its stamps)."""
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return stamp.astimezone().replace(tzinfo=None) if stamp.tzinfo else stamp


def read_metadata(path: Path) -> LegacyMetadata:
    """Read and check one metadata file; LegacyLayoutError says why it cannot be imported."""
    label = path.name
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _METADATA_LIMIT:
            raise LegacyLayoutError(f"{label}: not a regular file of at most {_METADATA_LIMIT:,} bytes.")
        record = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise LegacyLayoutError(f"{label}: cannot be read ({exc.strerror or exc}).") from None
    except orjson.JSONDecodeError:
        raise LegacyLayoutError(f"{label}: not valid JSON.") from None
    if not isinstance(record, dict):
        raise LegacyLayoutError(f"{label}: not a JSON object.")
    batch_id = record.get("batch_id")
    if not is_safe_id(batch_id):
        raise LegacyLayoutError(f"{label}: batch_id {excerpt(batch_id, 80)!r} is not a plain batch id.")
    if batch_id != path.stem:
        raise LegacyLayoutError(f"{label}: records batch_id {batch_id}, not the one its name says.")
    task = record.get("task")
    if task not in TASKS:
        raise LegacyLayoutError(f"{label}: task {excerpt(task, 80)!r} is not one of {', '.join(TASKS)}.")
    files = record.get("input_files")
    inputs = [f for f in files if _text(f)] if isinstance(files, list) else []
    prerequisite = record.get("prerequisite_batch_id")
    return LegacyMetadata(
        path=path, batch_id=batch_id, task=task,
        model=_text(record.get("model"), 200),
        max_tokens=_positive(record.get("max_tokens"), 1_000_000),
        input_files=inputs,
        total=_positive(record.get("total_paragraphs"), 10_000_000),
        submitted_at=_timestamp(record.get("submitted_at")),
        submitted_text=_text(record.get("submitted_at"), 64),
        status=_text(record.get("status"), 64),
        job_name=_text(record.get("job_name"), 300),
        prerequisite=prerequisite if is_safe_id(prerequisite) else None,
        system_prompt_file=_text(record.get("system_prompt_file")),
        user_prompt_file=_text(record.get("user_prompt_file")),
    )


# ----- request files ------------------------------------------------------------------------
@dataclass
class RequestFile:
    """One of the previous tool's request files, with what its name says."""

    lines: RequestLines
    task: str
    stamp: datetime
    stem: str | None  # the source CSV's stem (chunked layout); None for the combined layout
    chunk: int | None

    @property
    def path(self) -> Path:
        return self.lines.path


def read_request_files(layout: Layout) -> tuple[list[RequestFile], list[str]]:
    """Every request file under ``<task>_processing/`` of the metadata folders, and the
    problems of those that cannot be used."""
    found: list[RequestFile] = []
    problems: list[str] = []
    for folder in layout.metadata_dirs:
        for task in TASKS:
            processing = folder / f"{task}_processing"
            if not processing.is_dir():
                continue
            for path in sorted(processing.glob("*.jsonl")):
                match = _CHUNKED_FILE.match(path.name) or _COMBINED_FILE.match(path.name)
                if match is None or match["task"] != task or not _inside(processing, path):
                    continue
                try:
                    info = os.stat(path)
                    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES_PER_FILE:
                        raise LegacyLayoutError(f"{path.name}: not a regular file of at most {MAX_BYTES_PER_FILE:,} bytes.")
                    lines = parse_request_file(path, path.read_bytes())
                except OSError as exc:
                    problems.append(f"{path.name}: cannot be read ({exc.strerror or exc})")
                    continue
                except LegacyLayoutError as exc:
                    problems.append(str(exc))
                    continue
                groups = match.groupdict()
                expected = "_".join(p for p in (groups["stamp"], groups.get("stem")) if p)
                expected += f"_chunk{groups['chunk']}" if groups.get("chunk") else ""
                if lines.prefix != expected:
                    problems.append(f"{path.name}: its custom_ids carry the job name {excerpt(lines.prefix, 80)!r}, "
                                    "not the one in its file name")
                    continue
                found.append(RequestFile(lines, task, datetime.strptime(groups["stamp"], "%Y%m%d_%H%M%S"),
                                         groups.get("stem"), int(groups["chunk"]) if groups.get("chunk") else None))
    return found, problems


def match_request_files(metas: Sequence[LegacyMetadata], files: Sequence[RequestFile]) -> dict[str, list[RequestFile]]:
    """For each batch id, the request files it may have sent: same task and source CSV, as
    many requests as recorded, written before the batch was submitted and after the run's
    previous batch was. A file that is the only one left for some batch is taken out of the
    others' lists, repeatedly (the next chunk's file is usually written within the second in
    which the previous batch was submitted, so times alone cannot tell them apart)."""
    previous: dict[str, datetime | None] = {}
    runs: dict[tuple[str, tuple[str, ...]], list[LegacyMetadata]] = {}
    for meta in metas:
        runs.setdefault(meta.group, []).append(meta)
    for group in runs.values():
        group.sort(key=lambda m: (m.submitted_at is None, m.submitted_at or datetime.min))
        for before, meta in zip([None, *group[:-1]], group):
            previous[meta.batch_id] = before.submitted_at if before is not None else None
    options: dict[str, list[RequestFile]] = {}
    for meta in metas:
        stems = {Path(name).stem for name in meta.input_names}
        fits = []
        for file in files:
            if file.task != meta.task or (meta.total is not None and file.lines.count != meta.total):
                continue
            if file.stem is not None and (len(meta.input_names) != 1 or file.stem not in stems):
                continue
            if meta.submitted_at is not None:
                sent = meta.submitted_at
                earliest = previous[meta.batch_id]
                floor = (earliest.replace(microsecond=0) if earliest is not None else sent - _MATCH_WINDOW)
                if not (floor <= file.stamp <= sent and sent - file.stamp <= _MATCH_WINDOW):
                    continue
            fits.append(file)
        options[meta.batch_id] = fits
    settled: set[Path] = set()
    changed = True
    while changed:
        changed = False
        for batch_id, fits in options.items():
            if len(fits) == 1 and fits[0].path not in settled:
                settled.add(fits[0].path)
                for other, others in options.items():
                    if other != batch_id and any(f.path == fits[0].path for f in others):
                        options[other] = [f for f in others if f.path != fits[0].path]
                changed = True
    return options


# ----- import -------------------------------------------------------------------------------
@dataclass
class ImportedJob:
    """What became of one metadata file."""

    metadata_file: str
    batch_id: str | None
    task: str | None
    job_id: str | None = None
    already: bool = False  # the batch was in the registry before
    brought_in: list[str] = field(default_factory=list)
    not_brought_in: list[str] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class LegacyImport:
    """The outcome of :func:`import_legacy`: one entry per metadata file, and problems with
    files that belong to no entry (request files that cannot be read)."""

    jobs: list[ImportedJob] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def imported(self) -> list[ImportedJob]:
        return [j for j in self.jobs if j.job_id and not j.already]

    def to_record(self) -> dict[str, Any]:
        return {"jobs": [j.to_record() for j in self.jobs], "problems": list(self.problems)}


def import_legacy(service: JobService, paths: Sequence[Path | str]) -> LegacyImport:
    """Bring every job of the previous tool found under ``paths`` into the registry (see the
    module docstring). A batch already in the registry is left as it is; one metadata file
    that cannot be imported is reported and the others go on."""
    layout = find_layout(paths)
    report = LegacyImport()
    metas: list[LegacyMetadata] = []
    for folder in layout.metadata_dirs:
        for path in sorted(folder.glob("*.json")):
            if not _inside(folder, path):
                report.problems.append(f"{path.name}: a link to outside {folder}; not read")
                continue
            try:
                metas.append(read_metadata(path))
            except LegacyLayoutError as exc:
                report.jobs.append(ImportedJob(path.name, None, None, not_brought_in=[str(exc)]))
    files, problems = read_request_files(layout)
    report.problems.extend(problems)
    options = match_request_files(metas, files)
    # task 1 first, so that a task-2 job finds the job of its prerequisite batch
    for meta in sorted(metas, key=lambda m: (m.task != INVESTMENT_ACTIVITY.name, m.submitted_at or datetime.min)):
        entry = ImportedJob(meta.path.name, meta.batch_id, meta.task)
        report.jobs.append(entry)
        known = service.registry.find_job(meta.batch_id)
        if known is not None:
            entry.job_id, entry.already = known.get("id"), True
            entry.brought_in.append(f"already in the registry as job {known.get('id')}; left as it is")
            continue
        try:
            _import_one(service, layout, meta, options.get(meta.batch_id, []), entry)
        except (InteropError, TaskError) as exc:
            entry.not_brought_in.append(str(exc))
        except OSError as exc:
            entry.not_brought_in.append(f"could not be written: {exc.strerror or exc}")
    return report


def _inside(folder: Path, path: Path) -> bool:
    """Whether ``path`` (links followed) stays in ``folder``."""
    try:
        check_within(folder, path)
    except UnsafePath:
        return False
    return True


def _job_id(service: JobService, meta: LegacyMetadata) -> str:
    """``job_<submitted time>_<4 hex of the batch id>``: our id shape, in submission order."""
    stamp = (meta.submitted_at or service._clock().replace(tzinfo=None)).strftime("%Y%m%d_%H%M%S")
    digest = hashlib.sha256(meta.batch_id.encode()).hexdigest()
    for start in range(0, len(digest) - 4, 4):
        candidate = f"job_{stamp}_{digest[start:start + 4]}"
        if service.registry.get_job(candidate) is None and not (service.settings.jobs_dir / candidate).exists():
            return candidate
    raise InteropError(f"{meta.path.name}: no free job id for batch {meta.batch_id}.")


def _import_one(service: JobService, layout: Layout, meta: LegacyMetadata, candidates: list[RequestFile],
                entry: ImportedJob) -> None:
    task = get_task(meta.task)
    job_id = _job_id(service, meta)
    job_dir = service.settings.jobs_dir / job_id
    private_dir(job_dir)
    copies = _copy_candidates(job_dir, candidates)
    inputs = [{"recorded": excerpt(recorded, 300), "name": file_name(recorded),
               "path": str(found) if (found := _locate_input(recorded, meta, layout)) else None}
              for recorded in meta.input_files]
    template, template_from = _user_template(meta, layout)
    # the chunks of one run share prompt, model and max_tokens: any candidate tells them
    lines = candidates[0].lines if candidates else None
    system, system_from = _system_prompt(meta, layout, lines)
    results = _results_file(meta, layout)
    parent = None
    if meta.prerequisite and (record := service.registry.find_job(meta.prerequisite)) is not None:
        parent = record.get("id")
    info: dict[str, Any] = {
        "tool": TOOL,
        "metadata_file": str(meta.path),
        "batch_id": meta.batch_id,
        "job_name": meta.job_name,
        "submitted_at": meta.submitted_text,
        "status_recorded": meta.status,
        "total_paragraphs": meta.total,
        "prerequisite_batch_id": meta.prerequisite,
        "inputs": inputs,
        "candidates": copies,
        "user_template": template,
        "rows": "deferred",
        "rows_from": None,
        "notes": [],
        "imported_at": service._now(),
    }
    model = meta.model or (lines.model if lines else None)
    max_tokens = meta.max_tokens or (lines.max_tokens if lines else None)
    created = (meta.submitted_at.astimezone() if meta.submitted_at else service._clock()).isoformat(timespec="seconds")
    prompts = (PromptSet(system=system, user_template=_our_template(template), system_path=system_from or "",
                         user_path=template_from or "").to_record() if system and template else {})
    total = meta.total or (lines.count if lines else 0)
    job = Job(
        id=job_id, task=task.name, provider="openai", model=model or "unknown", max_tokens=max_tokens or PREVIOUS_MAX_TOKENS,
        created_at=created, created_by=CREATED_BY, parent_job_id=parent, job_dir=str(job_dir),
        output_dir=str(service.settings.data_dir / task.output_folder / job_id), n_rows=total, n_requests=total,
        dedupe=False, sources=_sources(inputs), prompts=prompts, estimate={},
        batches=[BatchRecord(key=BATCH_KEY, request_file="", n_requests=total, first_custom_id="", last_custom_id="",
                             status="in_progress", batch_id=meta.batch_id, model=model)],
        imported=info,
    )
    entry.job_id = job_id
    entry.brought_in.append(
        f"batch {meta.batch_id} as job {job_id}: {task.name}, model {model or 'unknown'}, "
        f"{total:,} paragraphs, submitted {meta.submitted_text or 'at an unknown time'}"
    )
    if not meta.model:
        entry.not_brought_in.append("the model (not recorded): shown as 'unknown'")
    if not meta.max_tokens:
        entry.not_brought_in.append(f"max_tokens (not recorded): {job.max_tokens} assumed")
    for item in inputs:
        if item["path"] is None:
            entry.not_brought_in.append(f"input file {excerpt(item['recorded'], 120)}: not found in the given folders")
    entry.brought_in.append(f"prompts: system prompt from {system_from}, user template from {template_from}"
                            if prompts else "prompts: none")
    if not prompts:
        entry.not_brought_in.append("the prompt texts (neither a request file nor the prompt files were found)")
    if parent:
        entry.brought_in.append(f"parent: job {parent} (batch {meta.prerequisite})")
    elif meta.prerequisite:
        entry.not_brought_in.append(f"the parent job: its batch {meta.prerequisite} is not in the registry")
    if not candidates:
        entry.not_brought_in.append("the request file (none fits this batch): rows will be rebuilt from the input "
                                    "file once the answers' custom_ids are known")
    try:
        reported = result_custom_ids([results]) if results is not None else set()
    except ResultFileError as exc:
        entry.not_brought_in.append(f"the previous tool's downloaded results: {exc}")
        results, reported = None, set()
    try:
        rows = _resolve(job, reported, template)
    except RowsUnresolved as exc:
        rows = None
        entry.not_brought_in.append(f"rows: {exc}")
    if rows is not None:
        entry.brought_in.append(_apply_rows(job, rows))
    elif len(candidates) > 1:
        entry.brought_in.append(f"rows: decided at download by the answers' custom_ids ({len(candidates)} request "
                                f"files fit: {', '.join(c.path.name for c in candidates)})")
    if results is not None and rows is not None:
        # its answers are here: the batch is finished, and nobody needs to be asked about it
        job.batches[0].status = "completed"
    atomic_write(job_dir / SNAPSHOT_FILE, orjson.dumps(job.to_record(), option=orjson.OPT_INDENT_2))
    service._save(job)
    if results is not None and rows is not None:
        attached = attach_results(service, job, [results])
        job = attached.job
        done = attached.batches[0] if attached.batches else None
        if done is not None:
            entry.brought_in.append(f"results: {done.answered:,} answers and {done.failed:,} errors from "
                                    f"{results.label}")
            entry.not_brought_in.append("the error file (the previous tool never downloaded it): rows without an "
                                        "answer show as missing")
    elif results is None:
        entry.brought_in.append("results: from the provider at download (the previous tool's batch_results.jsonl "
                                "was not found)")
    job.imported = {**(job.imported or {}), "brought_in": entry.brought_in, "not_brought_in": entry.not_brought_in}
    service._update(job, "imported")


def _copy_candidates(job_dir: Path, candidates: list[RequestFile]) -> list[dict[str, Any]]:
    """Copy the request files that fit into the job folder (the job keeps what it sent)."""
    folder = private_dir(job_dir / REQUESTS_FOLDER)
    copies = []
    for file in candidates:
        name = safe_name(file.path.stem, suffix=".jsonl")
        atomic_write(contained(folder, name), file.lines.data)
        copies.append({"file": name, "source": str(file.path), "sha256": file.lines.sha256, "count": file.lines.count})
    return copies


def _sources(inputs: list[dict[str, Any]]) -> list[SourceRecord]:
    return [SourceRecord(index=n, name=item["name"], path=item["path"], rows_read=0, rows_kept=0)
            for n, item in enumerate(inputs)]


def _locate_input(recorded: str, meta: LegacyMetadata, layout: Layout) -> Path | None:
    """The recorded input file in the given layout: by its plain relative path under a root,
    else by its file name in the previous tool's default input folder for the task."""
    parts = [p for p in _SEPARATORS.split(recorded.strip()) if p]
    name = parts[-1] if parts else ""
    folders: list[tuple[Path, Path]] = []  # (folder, the root it must stay in)
    relative = not recorded.strip().startswith(("/", "\\")) and not re.match(r"^[A-Za-z]:", recorded.strip())
    if relative and parts and all(p not in (".", "..") for p in parts):
        folders.extend((root.joinpath(*parts[:-1]), root) for root in layout.roots)
    for processed in layout.processed_dirs:
        if meta.task == INVESTMENT_ACTIVITY.name:
            folders.append((processed / "biodiversity_related_paragraphs", processed))
        elif meta.prerequisite:  # its task-1 result folder, named after the task-1 batch id
            folders.append((processed / INVESTMENT_ACTIVITY.name / meta.prerequisite, processed))
    for folder, root in folders:
        try:
            path = contained(folder, name)
            check_within(root, path)
        except UnsafePath:
            continue
        if path.is_file():
            return path
    return None


def _read_prompt(name: str | None, layout: Layout) -> tuple[str, str] | None:
    """(text, path) of a prompt file found by its file name in the prompt folders."""
    if not name:
        return None
    plain = file_name(name)
    for folder in layout.prompt_dirs:
        try:
            path = contained(folder, plain)
            check_within(folder, path)  # a link out of the folder is not followed
        except UnsafePath:
            continue
        try:
            if path.is_file() and path.stat().st_size <= _PROMPT_LIMIT:
                text = path.read_text(encoding="utf-8").strip()  # the previous tool stripped them too
                if text:
                    return text, str(path)
        except (OSError, UnicodeDecodeError):
            continue
    return None


def _user_template(meta: LegacyMetadata, layout: Layout) -> tuple[str | None, str | None]:
    found = _read_prompt(meta.user_prompt_file or "user_prompt_template.txt", layout)
    if found is not None and PLACEHOLDER in found[0]:
        return found
    if meta.user_prompt_file:  # a custom template that is gone: its shape is unknown
        return None, None
    return DEFAULT_USER_TEMPLATE, "the previous tool's default user template"


def _system_prompt(meta: LegacyMetadata, layout: Layout, lines: RequestLines | None) -> tuple[str | None, str | None]:
    if lines is not None and lines.system:
        return lines.system, f"request file {lines.path.name} (as sent)"
    found = _read_prompt(meta.system_prompt_file or f"{meta.task}_system_prompt.txt", layout)
    return found if found is not None else (None, None)


def _our_template(template: str | None) -> str:
    """The previous tool's ``str.format`` template as our ``{text}`` template (braces doubled
    for format are single in what it sent)."""
    if not template:
        return ""
    before, after = template.split(PLACEHOLDER, 1)
    return before.replace("{{", "{").replace("}}", "}") + PLACEHOLDER + after.replace("{{", "{").replace("}}", "}")


def _results_file(meta: LegacyMetadata, layout: Layout) -> ResultSource | None:
    """The output file the previous tool downloaded into ``data/processed/<task>/<batch_id>/``."""
    for processed in layout.processed_dirs:
        try:
            path = contained(contained(processed / meta.task, meta.batch_id), RESULTS_FILE)
            check_within(processed, path)
        except UnsafePath:
            continue
        if path.is_file() and path.stat().st_size <= MAX_BYTES_PER_FILE:
            return ResultSource(excerpt(str(path)), path.read_bytes())
    return None


# ----- rows ---------------------------------------------------------------------------------
def _candidates(job: Job) -> list[RequestLines]:
    folder = Path(job.job_dir) / REQUESTS_FOLDER
    found = []
    for copy in (job.imported or {}).get("candidates") or []:
        path = contained(folder, str(copy.get("file")))
        if path.is_file():
            found.append(parse_request_file(path, path.read_bytes()))
    return found


def _input_table(job: Job, layout: str) -> PreviousInput:
    """The previous tool's rows from the input file(s) found at import."""
    inputs = (job.imported or {}).get("inputs") or []
    wanted = inputs[:1] if layout == "chunked" else inputs
    missing = [item["name"] for item in wanted if not item.get("path")]
    if not wanted or missing:
        raise RowsUnresolved(f"the input file {', '.join(missing) or '(none recorded)'} was not found")
    try:
        return previous_input([(item["name"], Path(item["path"])) for item in wanted], task=job.task,
                              combined=layout == "combined")
    except LegacyLayoutError as exc:
        raise RowsUnresolved(str(exc)) from None


def _resolve(job: Job, reported: set[str], template: str | None) -> Rows | None:
    """The job's rows, from the request file whose custom_ids hold every reported one (or the
    only one that fits), else from the input file cut under the answers' job name. None when
    there is no answer yet to choose between several request files."""
    total = (job.imported or {}).get("total_paragraphs")
    names = [item["name"] for item in (job.imported or {}).get("inputs") or []]
    candidates = _candidates(job)
    chosen = None
    if reported:
        chosen = next((c for c in candidates if reported <= set(c.ids)), None)
    elif len(candidates) == 1:
        chosen = candidates[0]
    if chosen is not None:
        shape = prefix_shape(chosen.prefix)
        try:
            table = _input_table(job, shape[0]) if shape else None
        except RowsUnresolved:
            table = None
        return rows_from_request_file(chosen, csv_names=names, template=template, table=table)
    if not reported:
        if candidates:
            return None
        raise RowsUnresolved("no request file fits and there is no answer yet to tell which rows were sent")
    prefix = answers_prefix(reported)
    if prefix is None:
        raise RowsUnresolved("the answers carry custom_ids of several job names, or not the previous tool's "
                             "<job name>_<row index>")
    shape = prefix_shape(prefix)
    if shape is None or (shape[0] == "chunked" and [Path(n).stem for n in names[:1]] != [shape[1]]):
        raise RowsUnresolved(f"the answers' job name {excerpt(prefix, 80)!r} does not name the recorded input file")
    rows = rows_from_input(_input_table(job, shape[0]), prefix=prefix, total=total)
    strangers = reported - set(rows.frame["custom_id"])
    if strangers:
        raise RowsUnresolved(f"{len(strangers):,} answers (e.g. {excerpt(min(strangers), 80)!r}) name rows the "
                             "input file does not have")
    return rows


def _apply_rows(job: Job, rows: Rows) -> str:
    """Write the row file and record where the rows came from (in ``job``, not yet saved);
    returns that, for the report."""
    frame = rows.frame
    job_dir = Path(job.job_dir)
    write_csv(frame, job_dir / ROW_FILE)
    info = dict(job.imported or {})
    info.update(rows="settled", rows_from=rows.source, notes=list(rows.notes))
    job.imported = info
    job.n_rows = job.n_requests = len(frame)
    batch = job.batch(BATCH_KEY)
    batch.n_requests = len(frame)
    batch.first_custom_id, batch.last_custom_id = str(frame["custom_id"].iloc[0]), str(frame["custom_id"].iloc[-1])
    batch.request_file = str(rows.request_file) if rows.request_file is not None else ""
    counts = frame.groupby("source_index").size()
    # only the rows sent are known (not how many the file had): both counts are those
    job.sources = [s.model_copy(update={"rows_read": int(counts.get(s.index, 0)), "rows_kept": int(counts.get(s.index, 0))})
                   for s in job.sources]
    return f"rows: {len(frame):,} from the {rows.source}" + (f"; {'; '.join(rows.notes)}" if rows.notes else "")


def _reported_ids(service: JobService, job: Job) -> set[str]:
    """The custom_ids the job's output and error files carry, downloading them (to where
    collecting looks for them) when they are not here yet."""
    raw_dir = private_dir(Path(job.job_dir) / RAW_FOLDER)
    sources = []
    for batch in job.batches:
        if output_may_lag(batch):
            continue  # collecting says so
        for kind, file_id in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
            if not file_id:
                continue
            path = raw_path(raw_dir, batch, kind)
            if not path.exists():
                if file_id.startswith(IMPORTED_FILE_PREFIX):
                    continue
                data = service._call(job.provider, lambda c, f=file_id: c.download(f))
                atomic_write(path, data)
            sources.append(ResultSource(str(path), path.read_bytes()))
    return result_custom_ids(sources)


def settle_rows(service: JobService, job: Job, *, reported: set[str] | None = None) -> Job:
    """Make sure an imported job's rows are the ones its answers were for: the row file holds
    every custom_id the answers carry (``reported``; default: those of its output and error
    files, downloaded if needed), else it is rebuilt from the request file or the input file
    they point to. Raises RowsUnresolved with what did not fit; never matches by position."""
    info = job.imported
    if info is None:
        return job
    if reported is None:
        if not job.is_finished:
            return job  # collecting says it is not ready
        reported = _reported_ids(service, job)
    if info.get("rows") == "settled":
        requests = set(service.rows(job)["request_id"])
        if reported <= requests:
            return job
    try:
        rows = _resolve(job, reported, info.get("user_template"))
    except RowsUnresolved as exc:
        raise RowsUnresolved(f"Job {job.id} (the previous tool's batch {info.get('batch_id')}): {exc}; nothing was "
                             "matched by position.") from None
    if rows is None:
        names = ", ".join(str(c.get("file")) for c in info.get("candidates") or [])
        raise RowsUnresolved(f"Job {job.id} (the previous tool's batch {info.get('batch_id')}): several request files "
                             f"fit ({names}) and no answer tells which one was sent.")
    done = _apply_rows(job, rows)
    job.imported = {**(job.imported or {}), "brought_in": [*(job.imported or {}).get("brought_in", []), done]}
    atomic_write(Path(job.job_dir) / SNAPSHOT_FILE, orjson.dumps(job.to_record(), option=orjson.OPT_INDENT_2))
    service._update(job, "imported", "batches", "n_rows", "n_requests", "sources")
    return service.get(job.id)


# ----- a previous-tool task-1 result folder as the parent of task 2 -------------------------
def rows_from_results(folder: Path | str) -> tuple[pd.DataFrame, list[SourceRecord], str]:
    """Task-2 rows from a previous-tool task-1 result folder (CSVs with ``paragraph_text`` and
    ``score``): the paragraphs scored 1, each with a custom_id of its file and row."""
    path = Path(os.path.expanduser(str(folder))).absolute()
    if not path.is_dir():
        raise TaskError(f"{excerpt(str(path))}: not a folder of the previous tool's task-1 results.")
    files = [p for p in sorted(path.glob("*.csv")) if p.is_file()]
    if not files:
        raise TaskError(f"{excerpt(str(path))}: holds no CSV file.")
    frames = []
    sources = []
    for index, file in enumerate(files):
        table = read_table(file)
        frame = table.frame
        if {"custom_id", "status"} <= set(frame.columns):
            raise TaskError(f"{file.name} is a result file of this product, not of the previous tool: start task 2 "
                            "from its job with --batch-id JOB.")
        missing = [c for c in ("paragraph_text", "score") if c not in frame.columns]
        if missing:
            raise TaskError(f"{file.name}: has no {' and no '.join(missing)} column, so it is not a task-1 result file.")
        scored = frame["score"].str.strip().isin({"1", "1.0"}) & (frame["paragraph_text"].str.strip() != "")
        selected = frame[scored]
        rows = [table.rows[i] for i in scored.to_numpy().nonzero()[0]]
        named = selected["csv_file_name"] if "csv_file_name" in selected.columns else pd.Series("", index=selected.index)
        frames.append(pd.DataFrame({
            "custom_id": [make_custom_id(index, row) for row in rows],
            "source_index": index,
            # the previous tool wrote the source CSV's name into each row; else this file's
            "csv_file_name": [name or file.name for name in named.tolist()],
            "row": rows,
            "pdf_file_name": selected["pdf_file_name"].tolist() if "pdf_file_name" in selected.columns else "",
            "paragraph_text": selected["paragraph_text"].tolist(),
        }))
        sources.append(SourceRecord(index=index, name=file.name, path=str(file), sha256=_sha256(file),
                                    rows_read=len(frame), rows_kept=len(selected), encoding=table.encoding,
                                    separator=table.separator, warnings=list(table.warnings)))
    rows = pd.concat(frames, ignore_index=True)
    if rows.empty:
        raise TaskError(f"No paragraph in {excerpt(str(path))} has score 1, so there is nothing for task 2.")
    total = sum(s.rows_read for s in sources)
    note = (f"{len(rows):,} paragraphs with score 1 taken from the previous tool's results in {excerpt(str(path))}; "
            f"{total - len(rows):,} others left out.")
    return rows, sources, note


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None

