"""``import-legacy``: each of the previous tool's metadata files made a job of this product
(provider ``openai``, marked as imported, one batch), with a report of what was brought in and
what was not. See :mod:`core.interop.legacy` for what the previous tool kept and how it is read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import orjson

from core.errors import TaskError
from core.inputs import excerpt
from core.interop.errors import InteropError, LegacyLayoutError, ResultFileError, RowsUnresolved
from core.interop.files import attach_results, result_custom_ids
from core.interop.legacy.layout import Layout, file_name, find_layout, find_results_file, inside, locate_input
from core.interop.legacy.metadata import LegacyMetadata, read_metadata
from core.interop.legacy.prompts import our_template, system_prompt, user_template
from core.interop.legacy.request_files import RequestFile, match_request_files, read_request_files
from core.interop.legacy.rows import BATCH_KEY
from core.interop.legacy.settle import REQUESTS_FOLDER, apply_rows, resolve_rows
from core.jobs.common import SNAPSHOT_FILE
from core.models import BatchRecord, Job, SourceRecord
from core.prompts import PromptSet
from core.safefs import atomic_write, contained, private_dir, safe_name
from core.tasks import INVESTMENT_ACTIVITY, get_task

if TYPE_CHECKING:
    from core.jobs.service import JobService

TOOL = "previous tool (sodascience/BiodiversityASSET scripts)"
CREATED_BY = "import-legacy"
PREVIOUS_MAX_TOKENS = 500  # the previous tool's --max-tokens default


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
            if not inside(folder, path):
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
               "path": str(found) if (found := locate_input(recorded, meta, layout)) else None}
              for recorded in meta.input_files]
    template, template_from = user_template(meta, layout)
    # the chunks of one run share prompt, model and max_tokens: any candidate tells them
    lines = candidates[0].lines if candidates else None
    system, system_from = system_prompt(meta, layout, lines)
    results = find_results_file(meta, layout)
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
    prompts = (PromptSet(system=system, user_template=our_template(template), system_path=system_from or "",
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
        rows = resolve_rows(job, reported, template)
    except RowsUnresolved as exc:
        rows = None
        entry.not_brought_in.append(f"rows: {exc}")
    if rows is not None:
        entry.brought_in.append(apply_rows(job, rows))
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
