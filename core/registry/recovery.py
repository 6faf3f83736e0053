"""Never forgetting a job: restoring jobs the registry file lost from its backups and the job
snapshots.

A registry file that is missing, or holds no jobs, is only empty when nothing says otherwise.
Its backups (``.bak`` and kept ones) and the job snapshots (``<snapshots_dir>/<job id>/job.json``,
written at submission just before the job is recorded in the registry) are evidence of jobs:
any read or transaction that finds such evidence restores those jobs under the lock (newest
backup first, then snapshots of jobs no backup has) and records a :class:`RecoveryNote` in
:attr:`Registry.recovery_notes` and in ``<path>.recovery.log``. Snapshots younger than
:data:`SNAPSHOT_GRACE_SECONDS` are left to the submission writing them. :meth:`Registry.recover`
does the same on demand, for any job the registry lacks, and can set an unreadable file aside.
Deleted jobs are remembered (table ``deleted_jobs``), so a deletion is never mistaken for a loss.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from core.errors import RegistryError
from core.registry.backups import list_backups
from core.registry.files import content_key, local_time, read_file
from core.registry.format import DELETED_TABLE, TABLE_NAME, RegistryData, Unreadable, decode, holds_jobs, job_ids
from core.registry.tinydb_store import DeferredJSONStorage
from core.safefs import is_safe_id, open_private

#: The job snapshot in each job folder (``<snapshots_dir>/<job id>/job.json``), written at
#: submission just before the job is recorded (core.jobs.common.SNAPSHOT_FILE names it too).
SNAPSHOT_NAME = "job.json"
#: A snapshot younger than this may belong to a submission in flight (written, not yet
#: recorded: it waits for the lock at most a lock timeout); automatic recovery leaves it alone.
SNAPSHOT_GRACE_SECONDS = 120.0


@dataclass(frozen=True)
class RecoveryNote:
    """What the registry did (or could not do) so that no job is forgotten. Shown by the
    command line and the dashboard through :attr:`message`."""

    registry: str  # the registry file
    reason: str  # "missing", "empty" (the file held no jobs) or "rebuild" (asked for)
    at: str  # local time, "YYYY-MM-DD HH:MM:SS"
    restored: tuple[str, ...] = ()  # job ids taken from backups
    rebuilt: tuple[str, ...] = ()  # job ids rebuilt from their folder's snapshot, as submitted
    sources: tuple[str, ...] = ()  # backup files the restored jobs came from
    problems: tuple[str, ...] = ()  # evidence that could not be read (left as it is)
    set_aside: str | None = None  # where an unreadable registry file was moved

    @property
    def message(self) -> str:
        """One paragraph for a researcher: what happened, what was restored, what to do."""
        why = {
            "missing": f"The job registry {self.registry} was missing",
            "empty": f"The job registry {self.registry} held no jobs",
            "rebuild": f"Rebuilding the job registry {self.registry}",
        }.get(self.reason, f"The job registry {self.registry}")
        parts = [why]
        if self.set_aside:
            parts.append(f"its unreadable file was moved to {self.set_aside}")
        if self.restored:
            parts.append(f"{_count(self.restored, 'job')} restored from {', '.join(self.sources)} ({_ids(self.restored)})")
        if self.rebuilt:
            parts.append(
                f"{_count(self.rebuilt, 'job')} rebuilt from {'its' if len(self.rebuilt) == 1 else 'their'} "
                f"job folder as submitted ({_ids(self.rebuilt)}); batch ids come back from the provider "
                "with: python -m core registry --rebuild"
            )
        if not (self.restored or self.rebuilt):
            parts.append("nothing could be restored")
        if self.problems:
            parts.append("could not read (left as it is): " + "; ".join(self.problems[:5])
                         + (f"; and {len(self.problems) - 5} more" if len(self.problems) > 5 else ""))
        return ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "") + "."

    def to_record(self) -> dict[str, Any]:
        """The note as one JSON object of the recovery log."""
        return {"at": self.at, "registry": self.registry, "reason": self.reason, "restored": list(self.restored),
                "rebuilt": list(self.rebuilt), "sources": list(self.sources), "problems": list(self.problems),
                "set_aside": self.set_aside}


def _count(ids: tuple[str, ...], noun: str) -> str:
    return f"{len(ids)} {noun}{'' if len(ids) == 1 else 's'}"


def _ids(ids: tuple[str, ...], shown: int = 5) -> str:
    more = f", and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


def list_snapshots(folder: Path) -> list[tuple[str, Path, float]]:
    """(job id, snapshot file, mtime) of every ``<folder>/<job id>/job.json``; folders whose
    name is not a plain id are not ours and are skipped."""
    found: list[tuple[str, Path, float]] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not is_safe_id(entry.name):
                    continue
                snapshot = Path(entry.path) / SNAPSHOT_NAME
                try:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                    st = os.stat(snapshot, follow_symlinks=False)
                except OSError:
                    continue
                found.append((entry.name, snapshot, st.st_mtime))
    except OSError:
        return []
    return sorted(found)


def _read_snapshot(job_id: str, path: Path) -> tuple[dict | None, str | None]:
    """(record, None) from a job snapshot, or (None, what is wrong with it)."""
    try:
        raw = path.read_bytes()
        record = orjson.loads(raw)
    except OSError as exc:
        return None, f"{path}: {exc.strerror or exc}"
    except orjson.JSONDecodeError:
        return None, f"{path}: not valid JSON"
    if not isinstance(record, dict) or record.get("id") != job_id:
        return None, f"{path}: not the snapshot of job {job_id}"
    return record, None


@dataclass(frozen=True)
class Evidence:
    """What says jobs exist besides the registry file: its backups and the job snapshots."""

    main: tuple[int, ...] | None  # content key of the registry file (None: missing)
    backups: tuple[tuple[Path, os.stat_result], ...]
    snapshots: tuple[tuple[str, Path, float], ...]

    @property
    def any(self) -> bool:
        """Whether there is any evidence at all."""
        return bool(self.backups or self.snapshots)

    @property
    def signature(self) -> tuple:
        """Changes whenever any of the evidence (or the registry file) does."""
        return (self.main, tuple((p.name, content_key(st)) for p, st in self.backups),
                tuple((job_id, mtime) for job_id, _, mtime in self.snapshots))


def gather_evidence(path: Path, snapshots_dir: Path, *, everything: bool) -> Evidence:
    """Backups of the registry file ``path`` and job snapshots in ``snapshots_dir``, as they
    are now. ``everything``: also snapshots younger than SNAPSHOT_GRACE_SECONDS (a submission
    may be about to record them itself)."""
    try:
        main: tuple[int, ...] | None = content_key(os.stat(path))
    except OSError:
        main = None
    snapshots = list_snapshots(snapshots_dir)
    if not everything:
        cutoff = time.time() - SNAPSHOT_GRACE_SECONDS
        snapshots = [s for s in snapshots if s[2] <= cutoff]
    return Evidence(main, tuple(list_backups(path)), tuple(snapshots))


def recover_into(storage: DeferredJSONStorage, current: RegistryData | None, *, path: Path, snapshots_dir: Path,
                 explicit: bool, set_aside: Path | None, settled: tuple | None
                 ) -> tuple[RecoveryNote | None, tuple | None]:
    """Put the jobs the evidence holds and the registry lacks into ``storage`` (lock held).
    Unless ``explicit``, only when the registry holds no jobs and the evidence is new (its
    signature is not ``settled``, the evidence last looked at without anything to restore).
    Returns (what was done, the signature of the evidence looked at automatically)."""
    if not explicit and holds_jobs(current):
        return None, None
    evidence = gather_evidence(path, snapshots_dir, everything=explicit)
    looked_at = None if explicit else evidence.signature
    if not explicit and (not evidence.any or looked_at == settled):
        return None, None
    merged, restored, rebuilt, sources, problems = _merge(current, evidence)
    if restored or rebuilt:
        storage.write(merged)
    if not (restored or rebuilt or problems or set_aside):
        return None, looked_at
    reason = "rebuild" if explicit else ("missing" if current is None else "empty")
    return RecoveryNote(
        registry=str(path), reason=reason, at=local_time(time.time()),
        restored=tuple(restored), rebuilt=tuple(rebuilt), sources=tuple(sources),
        problems=tuple(problems), set_aside=None if set_aside is None else str(set_aside),
    ), looked_at


def append_to_log(log_path: Path, note: RecoveryNote) -> None:
    """Append the note to the recovery log (best effort: the registry also keeps it in
    :attr:`Registry.recovery_notes`)."""
    try:
        with open_private(log_path, "ab") as log:
            log.write(orjson.dumps(note.to_record()) + b"\n")
    except OSError:
        pass


def _merge(current: RegistryData | None, evidence: Evidence
           ) -> tuple[RegistryData, list[str], list[str], list[str], list[str]]:
    """The registry data with every job the evidence holds and ``current`` lacks added.

    Backups are read oldest first so that, for each job, the newest backup mentioning it
    (as a job or as deleted) decides; ``current`` (the newest) decides over all of them. Job
    snapshots then add jobs no file mentions. Returns (data, restored ids, rebuilt ids,
    backup names the restored jobs came from, problems).
    """
    jobs: dict[str, dict] = {}
    deleted: dict[str, dict] = {}
    others: dict[str, dict[str, dict]] = {}
    origin: dict[str, str] = {}
    problems: list[str] = []
    for path, _st in evidence.backups:
        try:
            _, raw = read_file(path)
            data = None if raw is None else decode(raw)
        except (RegistryError, Unreadable) as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        for name, table in (data or {}).items():
            if name == TABLE_NAME:
                for job_id, record in table.items():
                    jobs[job_id] = record
                    origin[job_id] = path.name
                    deleted.pop(job_id, None)
            elif name == DELETED_TABLE:
                for job_id, mark in table.items():
                    deleted[job_id] = mark
                    jobs.pop(job_id, None)
            else:
                others.setdefault(name, {}).update(table)
    have = job_ids(current)
    deleted.update((current or {}).get(DELETED_TABLE) or {})
    restored = [job_id for job_id in jobs if job_id not in have and job_id not in deleted]
    rebuilt: list[str] = []
    added = {job_id: jobs[job_id] for job_id in restored}
    for job_id, path, _mtime in evidence.snapshots:
        if job_id in have or job_id in added or job_id in deleted:
            continue
        record, problem = _read_snapshot(job_id, path)
        if record is None:
            problems.append(problem or str(path))
            continue
        added[job_id] = record
        rebuilt.append(job_id)
    merged: RegistryData = {name: dict(table) for name, table in (current or {}).items()}
    for name, table in others.items():  # what the registry holds wins over older copies
        merged[name] = {**table, **merged.get(name, {})}
    merged[TABLE_NAME] = {**merged.get(TABLE_NAME, {}), **added}
    marks = {job_id: mark for job_id, mark in deleted.items() if job_id not in merged[TABLE_NAME]}
    if marks:
        merged[DELETED_TABLE] = marks
    used = {origin[job_id] for job_id in restored}
    sources = [path.name for path, _st in evidence.backups if path.name in used]
    return merged, sorted(restored), sorted(rebuilt), sources, problems
