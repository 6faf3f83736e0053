"""Choosing what to evaluate on the Evaluate page: the jobs it offers (and the pair to compare
at first), the labels files in the data folder, what identifies a labels source for caching,
and the file's label columns (found by name, or as the page's pickers chose them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from core.errors import InputError
from core.evaluate.errors import LabelFileError
from core.evaluate.labels import Source, find_label_columns
from core.explore import collected_jobs
from core.inputs import excerpt, read_table
from core.models import Job
from core.tasks import TASKS, TaskSpec

LABELS_FOLDER = "labels"  # <data folder>/labels: where the page looks for labels files
LABEL_SUFFIXES = (".csv", ".xlsx", ".tsv", ".txt")


def evaluable_jobs(jobs: Iterable[Job]) -> list[Job]:
    """Jobs whose results were collected, newest first (a retry is part of its original job)."""
    return collected_jobs(jobs)


def job_option_label(job: Job) -> str:
    """A job as the pickers list it."""
    task = TASKS.get(job.task)
    title = task.title if task else job.task
    return f"{job.id} · {title} · {excerpt(job.model, 32)} · {job.n_rows:,} rows"  # some model names are long


def compare_defaults(jobs: Sequence[Job], job_id: str | None) -> list[str]:
    """Jobs to offer for comparing at first (``jobs`` newest first): ``job_id`` and the newest
    other job of its task; else the two newest jobs of a task that has two; else none."""
    chosen = next((j for j in jobs if j.id == job_id), None)
    candidates = [chosen] if chosen else []
    candidates += [j for j in jobs if j is not chosen]
    for first in candidates:
        other = next((j for j in jobs if j.task == first.task and j.id != first.id), None)
        if other:
            return [first.id, other.id]
    return []


def label_files(data_dir: Path) -> list[Path]:
    """CSV/XLSX files a labels file may be picked from: those in ``<data_dir>/labels`` (and
    its subfolders) and directly in the data folder, sorted by path. Hidden files and Excel's
    lock files (``~$``) are skipped."""
    data_dir = Path(data_dir)
    found: list[Path] = []
    folder = data_dir / LABELS_FOLDER
    if folder.is_dir():
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += [Path(root) / f for f in files if _label_name(f)]
    if data_dir.is_dir():
        found += [p for p in data_dir.iterdir() if p.is_file() and _label_name(p.name)]
    return sorted(p for p in found if p.is_file())


def _label_name(name: str) -> bool:
    return not name.startswith((".", "~$")) and name.lower().endswith(LABEL_SUFFIXES)


def source_tag(source: Source) -> tuple[Any, ...]:
    """What identifies a labels source for caching: name, size and content (an upload), or
    path, size and modification time (a file)."""
    if isinstance(source, tuple):
        return ("upload", source[0], len(source[1]), hash(source[1]))
    try:
        info = Path(source).stat()
    except OSError:
        return ("path", str(source))
    return ("path", str(source), info.st_size, info.st_mtime_ns)


def label_file_columns(source: Source) -> list[str]:
    """The column names of a labels file, read as the evaluation reads it. Raises
    :class:`LabelFileError` when the file cannot be read."""
    try:
        return [str(c) for c in read_table(source).frame.columns]
    except InputError as exc:
        raise LabelFileError(exc.file_name, exc.problem) from None


def detected_label_columns(task: TaskSpec, columns: Sequence[str]) -> dict[str, str | None]:
    """For each answer column of ``task``, the file column found by name, or None."""
    found = find_label_columns(task, columns)
    return {answer: found.get(answer) for answer in task.score_columns}


def label_column_specs(chosen: Mapping[str, str | None]) -> list[str]:
    """``ANSWER=COLUMN`` for each answer column given a file column (what ``run_evaluation``
    takes as ``label_columns``)."""
    return [f"{answer}={column}" for answer, column in chosen.items() if column]
