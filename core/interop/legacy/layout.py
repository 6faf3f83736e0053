"""Where the previous tool's files are: which given folder is which (a checkout, its
``results/`` or ``data/`` folder), and finding a batch's recorded input file and its downloaded
``batch_results.jsonl`` in them.

A recorded path is untrusted: it is reduced to its file name (or, when it is a plain relative
path, looked up under a root) and never leaves the folder it is looked up in.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from core.inputs import excerpt
from core.interop.errors import LegacyLayoutError
from core.interop.files import ResultSource
from core.requests import MAX_BYTES_PER_FILE
from core.safefs import UnsafePath, check_within, contained
from core.tasks import INVESTMENT_ACTIVITY, TASKS

if TYPE_CHECKING:
    from core.interop.legacy.metadata import LegacyMetadata

RESULTS_FILE = "batch_results.jsonl"
_SEPARATORS = re.compile(r"[\\/]+")


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


def file_name(recorded: str) -> str:
    """The file name of a recorded path, whichever separator the recording machine used."""
    return _SEPARATORS.split(recorded.strip())[-1]


def inside(folder: Path, path: Path) -> bool:
    """Whether ``path`` (links followed) stays in ``folder``."""
    try:
        check_within(folder, path)
    except UnsafePath:
        return False
    return True


def locate_input(recorded: str, meta: LegacyMetadata, layout: Layout) -> Path | None:
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


def find_results_file(meta: LegacyMetadata, layout: Layout) -> ResultSource | None:
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
