"""The previous tool's request files (``results/batch_jobs/<task>_processing/*_input.jsonl``):
read and checked against their names, then matched to the batches that may have sent them (the
metadata does not name the file).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Sequence

from core.inputs import excerpt
from core.interop.errors import LegacyLayoutError
from core.interop.legacy.layout import Layout, inside
from core.interop.legacy.metadata import LegacyMetadata
from core.interop.legacy.rows import RequestLines, parse_request_file
from core.requests import MAX_BYTES_PER_FILE
from core.tasks import TASKS

_MATCH_WINDOW = timedelta(days=1)  # a request file is written moments before its submission
_TASKS = "|".join(re.escape(name) for name in TASKS)
_CHUNKED_FILE = re.compile(rf"^(?P<task>{_TASKS})_(?P<stamp>\d{{8}}_\d{{6}})_(?P<stem>.+)_chunk(?P<chunk>\d+)_input\.jsonl$")
_COMBINED_FILE = re.compile(rf"^(?P<task>{_TASKS})_(?P<stamp>\d{{8}}_\d{{6}})_input\.jsonl$")


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
                if match is None or match["task"] != task or not inside(processing, path):
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
