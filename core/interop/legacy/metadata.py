"""The previous tool's metadata files (``results/batch_jobs/<batch_id>.json``), read and
checked: a file that is not a plain JSON object of a known task, or whose batch id is not a
plain id or not the one its name says, is refused with the reason; other fields that do not
fit are left out (read as not recorded).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from core.inputs import excerpt
from core.interop.errors import LegacyLayoutError
from core.interop.legacy.layout import file_name
from core.safefs import is_safe_id
from core.tasks import TASKS

_METADATA_LIMIT = 1024 * 1024


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
