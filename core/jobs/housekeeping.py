"""Tidying up after crashes, at the start of the app or a command: our own leftovers only.

A kill -9 in the middle of an atomic write leaves its temp file (``.<name>.*.tmp`` or
``*.part``); one in the middle of a submission's first writes leaves a job folder with
request files but no ``job.json`` snapshot and no registry record. Nothing refers to either,
so once they are old enough that no live process can still be writing them, they go. The
data folder itself is made private (0700) if others could enter it.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field

from core.jobs.common import SNAPSHOT_FILE
from core.registry import Registry
from core.safefs import STALE_TEMP_SECONDS, remove_stale_temps, restrict_dir
from core.settings import Settings

_JOB_FOLDER = re.compile(r"^job_\d{8}_\d{6}_[0-9a-f]{4}$")
# What a submission writes before its snapshot: request files and the row file.
_UNRECORDED_FILES = re.compile(r"^(requests_\d{3}(-\d+)*\.jsonl|rows\.csv|\..*\.tmp)$")


@dataclass
class TidyReport:
    """What tidying removed."""

    temp_files: int = 0
    unrecorded_job_folders: list[str] = field(default_factory=list)


def tidy(settings: Settings, registry: Registry, *, older_than: float = STALE_TEMP_SECONDS) -> TidyReport:
    """Remove stale temp files under the data folder and job folders a crash left before the
    job was recorded; make the data folder private."""
    report = TidyReport()
    data_dir = settings.data_dir
    restrict_dir(data_dir)
    for folder in (settings.jobs_dir, data_dir / "processed", settings.local_state_dir):
        report.temp_files += remove_stale_temps(folder, older_than=older_than)
    report.temp_files += remove_stale_temps(data_dir, older_than=older_than, recursive=False)
    jobs_dir = settings.jobs_dir
    if not jobs_dir.is_dir():
        return report
    now = time.time()
    for folder in jobs_dir.iterdir():
        if not _JOB_FOLDER.match(folder.name) or folder.is_symlink() or not folder.is_dir():
            continue
        if (folder / SNAPSHOT_FILE).exists() or registry.get_job(folder.name) is not None:
            continue
        try:
            entries = list(folder.iterdir())
            newest = max([folder.stat().st_mtime, *(p.lstat().st_mtime for p in entries)])
        except OSError:
            continue
        if now - newest < older_than or not all(_UNRECORDED_FILES.match(p.name) for p in entries):
            continue  # a submission may be writing it, or it holds something not ours
        shutil.rmtree(folder, ignore_errors=True)
        report.unrecorded_job_folders.append(folder.name)
    return report
