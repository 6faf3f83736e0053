"""What ``python -m core registry`` shows: the registry file, its backups, the job folders
and temporary files as they are now. Reads only: restores nothing, takes no lock.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from core.errors import RegistryError
from core.registry.backups import list_backups
from core.registry.files import is_leftover, local_time, read_file
from core.registry.format import RegistryData, Unreadable, decode, deleted_ids, job_ids
from core.registry.recovery import list_snapshots


@dataclass(frozen=True)
class BackupState:
    """One backup of the registry, as :meth:`Registry.inspect` found it."""

    path: Path
    modified: str  # local time
    jobs: int | None  # None: it cannot be read
    not_in_registry: tuple[str, ...]  # its job ids the registry lacks (and did not delete)
    problem: str | None = None


@dataclass(frozen=True)
class RegistryState:
    """The registry's files as they are now (read without the lock): for ``python -m core registry``."""

    path: Path
    exists: bool
    size: int
    jobs: int | None  # None: missing or unreadable
    problem: str | None  # why the file cannot be read
    backups: tuple[BackupState, ...]
    snapshots_dir: Path
    job_folders: int  # folders with a job snapshot
    folders_not_in_registry: tuple[str, ...]
    temp_files: int  # temporary files now (a writer's, or a dead writer's until the next transaction)
    last_recovery: dict[str, Any] | None  # the last line of the recovery log


def inspect_registry(path: Path, *, snapshots_dir: Path, log_path: Path) -> RegistryState:
    """The registry file ``path``, its backups, the job folders in ``snapshots_dir``, the
    temporary files and the last entry of the recovery log ``log_path``, as they are now."""
    try:
        st: os.stat_result | None = os.stat(path)
    except OSError:
        st = None
    data: RegistryData | None = None
    problem: str | None = None
    if st is not None:
        try:
            _, raw = read_file(path)
            data = None if raw is None else decode(raw)
        except (RegistryError, Unreadable) as exc:
            problem = str(exc)
    have = job_ids(data) | deleted_ids(data)
    backups = []
    for backup, bst in list_backups(path):
        try:
            _, raw = read_file(backup)
            ids = job_ids(None if raw is None else decode(raw))
            backups.append(BackupState(backup, local_time(bst.st_mtime), len(ids), tuple(sorted(ids - have))))
        except (RegistryError, Unreadable) as exc:
            backups.append(BackupState(backup, local_time(bst.st_mtime), None, (), str(exc)))
    folders = [job_id for job_id, _, _ in list_snapshots(snapshots_dir)]
    try:
        with os.scandir(path.parent) as entries:
            temps = sum(1 for entry in entries if is_leftover(path.name, entry.name))
    except OSError:
        temps = 0
    return RegistryState(
        path=path, exists=st is not None, size=st.st_size if st is not None else 0,
        jobs=None if data is None else len(job_ids(data)), problem=problem, backups=tuple(backups),
        snapshots_dir=snapshots_dir, job_folders=len(folders),
        folders_not_in_registry=tuple(f for f in folders if f not in have) if problem is None else (),
        temp_files=temps, last_recovery=_last_logged(log_path),
    )


def _last_logged(log_path: Path) -> dict[str, Any] | None:
    """The last readable entry of the recovery log, or None."""
    try:
        lines = log_path.read_bytes().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict):
            return record
    return None
