"""The registry file's on-disk format: table names, parsing and checking, job-id sets.

File format: TinyDB's own, ``{"jobs": {"<job id>": {...job...}, ...}, "provider_limits": {...},
"deleted_jobs": {"<job id>": {"deleted_at": ...}}}`` (orjson, no indent). Documents are keyed
by the job's own ``id`` (TinyDB document ids are those strings), so nothing depends on
TinyDB's auto-increment.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from core.errors import RegistryError

#: Name of the TinyDB table (top-level key of the JSON file) that holds the jobs.
TABLE_NAME = "jobs"
#: What the registry learned about providers, keyed "<provider>:<model>" (e.g. enqueued-token limits).
LIMITS_TABLE = "provider_limits"
#: Ids of jobs deleted on purpose (``{"<id>": {"deleted_at": ...}}``): recovery and the backup
#: check tell a deletion from a loss by it.
DELETED_TABLE = "deleted_jobs"

#: Parsed registry data: table name -> document id -> document.
RegistryData = dict[str, dict[str, Any]]


def loads_without_gc(raw: bytes) -> Any:
    """orjson.loads with the cyclic garbage collector paused.

    Parsing a 10,000-job file allocates ~1 million containers, which triggers many useless
    collections (JSON data has no cycles): pausing them halves the parse time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return orjson.loads(raw)
    finally:
        if was_enabled:
            gc.enable()


class Unreadable(ValueError):
    """Registry contents that cannot be used; the message says why."""


def decode(raw: bytes) -> RegistryData:
    """Parse and check registry file contents; raise Unreadable if unusable."""
    if not raw.strip():
        raise Unreadable("the file is empty")
    try:
        data = loads_without_gc(raw)
    except orjson.JSONDecodeError as exc:
        raise Unreadable(f"it is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise Unreadable("it does not hold a JSON object")
    for name, table in data.items():
        if not isinstance(table, dict) or not set(map(type, table.values())) <= {dict}:
            raise Unreadable(f"its table {name!r} is not a mapping of id to job")
    return data


def corrupt(path: Path, problem: str) -> RegistryError:
    """The error for a registry file that cannot be read: what is wrong, where the last good
    copy is, how to rebuild."""
    bak = Path(str(path) + ".bak")
    if bak.is_file():
        when = datetime.fromtimestamp(bak.stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
        keep = (
            f" The previous good copy (written {when}) is kept at {bak}: copy it over "
            f"{path.name} to restore it."
        )
    else:
        keep = " No backup copy exists."
    return RegistryError(
        f"The job registry at {path} cannot be read: {problem}. It was left untouched.{keep} "
        "Or set it aside and rebuild it from its backups, the job folders and the provider "
        "with: python -m core registry --rebuild"
    )


def parse(path: Path, raw: bytes) -> RegistryData:
    """Parse and check the registry file contents; raise RegistryError if unusable."""
    try:
        return decode(raw)
    except Unreadable as exc:
        raise corrupt(path, str(exc)) from None


def job_ids(data: Mapping[str, Any] | None) -> frozenset[str]:
    """Ids of the jobs in parsed registry data (none for a missing file)."""
    return frozenset((data or {}).get(TABLE_NAME) or ())


def holds_jobs(data: Mapping[str, Any] | None) -> bool:
    """Whether parsed registry data holds at least one job (cheap: no id set is built)."""
    return bool((data or {}).get(TABLE_NAME))


def deleted_ids(data: Mapping[str, Any] | None) -> frozenset[str]:
    """Ids of the jobs deleted on purpose, as recorded in parsed registry data."""
    return frozenset((data or {}).get(DELETED_TABLE) or ())
