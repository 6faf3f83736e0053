"""The job registry: a TinyDB JSON file of jobs and their batches, safe for several processes.

The Streamlit app and the command line are separate processes that write the same registry
at the same time. Plain TinyDB cannot do that (its JSON storage corrupts the file, its caching
middleware loses a writer's work, its cached next document id collides across processes), so:

* every change happens inside :meth:`Registry.transaction`, which holds an inter-process lock
  (``filelock`` on ``<path>.lock``) for the whole read-modify-write;
* each transaction opens a fresh TinyDB instance over :class:`_DeferredJSONStorage`, a storage
  that reads the file once and keeps every TinyDB write in memory; the file is written once at
  the end of the block, atomically (temp file in the same folder, fsync, ``os.replace``), and
  only if something changed and the block did not raise;
* documents are keyed by the job's own ``id`` (TinyDB document ids are those strings), so
  nothing depends on TinyDB's auto-increment;
* reads outside a transaction need no lock: writes are atomic replaces, so a reader sees the
  old file or the new one, never half of one;
* before each write the current (valid) file is hard-linked to ``<path>.bak``: a copy of the
  previous good version at the cost of one directory entry, not one more file write. Where
  the file system has no hard links the backup is skipped (it would double the write time).
  A ``.bak`` holding jobs the file being replaced lacks is never overwritten: it is first kept
  as ``<path>.bak.<UTC time>``; an empty file is never linked over a backup;
* a temporary file of ours in the folder (``.<name>.*.tmp``, ``<name>.bak.tmp``) is the remains
  of a writer killed mid-write: writers only create them under the lock, so each transaction,
  holding the lock, deletes them.

Never forgetting a job. A registry file that is missing, or holds no jobs, is only empty when
nothing says otherwise. Its backups (``.bak`` and kept ones) and the job snapshots
(``<snapshots_dir>/<job id>/job.json``, written at submission just before the job is recorded
here) are evidence of jobs: any read or transaction that finds such evidence restores those
jobs under the lock (newest backup first, then snapshots of jobs no backup has) and records a
:class:`RecoveryNote` in :attr:`Registry.recovery_notes` and in ``<path>.recovery.log``.
Snapshots younger than :data:`SNAPSHOT_GRACE_SECONDS` are left to the submission writing them.
:meth:`Registry.recover` does the same on demand, for any job the registry lacks, and can set
an unreadable file aside. Deleted jobs are remembered (table ``deleted_jobs``), so a deletion
is never mistaken for a loss.

File format: TinyDB's own, ``{"jobs": {"<job id>": {...job...}, ...}, "provider_limits": {...},
"deleted_jobs": {"<job id>": {"deleted_at": ...}}}`` (orjson, no indent).
"""

from __future__ import annotations

import gc
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from tinydb import Query, TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from core.errors import RegistryError
from core.safefs import PRIVATE_FILE_MODE, private_dir
from core.safefs import is_safe_id, open_private

__all__ = [
    "BackupState",
    "RecoveryNote",
    "Registry",
    "RegistryState",
    "RegistryTransaction",
    "DELETED_TABLE",
    "SNAPSHOT_GRACE_SECONDS",
    "SNAPSHOT_NAME",
    "TABLE_NAME",
]

#: Name of the TinyDB table (top-level key of the JSON file) that holds the jobs.
TABLE_NAME = "jobs"
#: What the registry learned about providers, keyed "<provider>:<model>" (e.g. enqueued-token limits).
LIMITS_TABLE = "provider_limits"
#: Ids of jobs deleted on purpose (``{"<id>": {"deleted_at": ...}}``): recovery and the backup
#: check tell a deletion from a loss by it.
DELETED_TABLE = "deleted_jobs"
#: The job snapshot in each job folder (``<snapshots_dir>/<job id>/job.json``), written at
#: submission just before the job is recorded (core.jobs.common.SNAPSHOT_FILE names it too).
SNAPSHOT_NAME = "job.json"
#: A snapshot younger than this may belong to a submission in flight (written, not yet
#: recorded: it waits for the lock at most a lock timeout); automatic recovery leaves it alone.
SNAPSHOT_GRACE_SECONDS = 120.0
# Kept backups are named <name>.bak.<UTC time>[-n]; nothing else with that prefix is one.
_KEPT_SUFFIX = re.compile(r"^\d{8}T\d{6}Z(?:-\d+)?$")
# Job-id sets remembered per file version (for the backup check): the last few suffice.
_IDS_REMEMBERED = 8

# Windows refuses to replace or open a file another process has open at that instant.
# Such clashes last milliseconds; retry for this long before giving up.
_SHARING_RETRY_SECONDS = 2.0

_Data = dict[str, dict[str, Any]]


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _clone(value: Any) -> Any:
    """Deep copy of JSON data (orjson round trip: faster than copy.deepcopy)."""
    return _loads_without_gc(orjson.dumps(value))


def _retry_sharing(action, *args):
    """Run ``action(*args)``, retrying briefly on PermissionError (Windows sharing clashes)."""
    deadline = time.monotonic() + _SHARING_RETRY_SECONDS
    while True:
        try:
            return action(*args)
        except PermissionError:
            if os.name != "nt" or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sort_key(job: Mapping[str, Any]) -> tuple[str, str]:
    created = job.get("created_at")
    return (created if isinstance(created, str) else "", str(job.get("id", "")))


def _newest_first(jobs: list[dict]) -> list[dict]:
    return sorted(jobs, key=_sort_key, reverse=True)


def _has_batch(job: Mapping[str, Any], batch_id: str) -> bool:
    batches = job.get("batches")
    if not isinstance(batches, list):
        return False
    return any(isinstance(b, dict) and b.get("batch_id") == batch_id for b in batches)


def _batch_query(batch_id: str):
    """TinyDB query: the job has a batch whose provider id is ``batch_id``."""
    return Query().batches.any(Query().batch_id == batch_id)


def _corrupt(path: Path, problem: str) -> RegistryError:
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


def _loads_without_gc(raw: bytes) -> Any:
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


class _Unreadable(ValueError):
    """Registry contents that cannot be used; the message says why."""


def _decode(raw: bytes) -> _Data:
    """Parse and check registry file contents; raise _Unreadable if unusable."""
    if not raw.strip():
        raise _Unreadable("the file is empty")
    try:
        data = _loads_without_gc(raw)
    except orjson.JSONDecodeError as exc:
        raise _Unreadable(f"it is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _Unreadable("it does not hold a JSON object")
    for name, table in data.items():
        if not isinstance(table, dict) or not set(map(type, table.values())) <= {dict}:
            raise _Unreadable(f"its table {name!r} is not a mapping of id to job")
    return data


def _parse(path: Path, raw: bytes) -> _Data:
    """Parse and check the registry file contents; raise RegistryError if unusable."""
    try:
        return _decode(raw)
    except _Unreadable as exc:
        raise _corrupt(path, str(exc)) from None


def _job_ids(data: Mapping[str, Any] | None) -> frozenset[str]:
    """Ids of the jobs in parsed registry data (none for a missing file)."""
    return frozenset((data or {}).get(TABLE_NAME) or ())


def _holds_jobs(data: Mapping[str, Any] | None) -> bool:
    """Whether parsed registry data holds at least one job (cheap: no id set is built)."""
    return bool((data or {}).get(TABLE_NAME))


def _deleted_ids(data: Mapping[str, Any] | None) -> frozenset[str]:
    """Ids of the jobs deleted on purpose, as recorded in parsed registry data."""
    return frozenset((data or {}).get(DELETED_TABLE) or ())


def _content_key(st: os.stat_result) -> tuple[int, ...]:
    """Identity of one version's contents that survives hard-linking it to ``.bak`` (a new
    link changes the ctime, not these)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _local_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def _free_name(base: Path) -> Path:
    """``<base>.<UTC time>``, with ``-2``, ``-3``... if taken (called under the lock)."""
    stamp = _utc_stamp()
    candidate = Path(f"{base}.{stamp}")
    n = 2
    while os.path.lexists(candidate):
        candidate = Path(f"{base}.{stamp}-{n}")
        n += 1
    return candidate


def _is_leftover(registry_name: str, name: str) -> bool:
    """Whether ``name`` is one of our registry writer's temporary files."""
    return (name.startswith(f".{registry_name}.") and name.endswith(".tmp")) or name == f"{registry_name}.bak.tmp"


def _list_backups(path: Path) -> list[tuple[Path, os.stat_result]]:
    """The registry's backups, ``<name>.bak`` and kept ``<name>.bak.<UTC time>``, oldest first."""
    prefix = path.name + ".bak"
    found: list[tuple[Path, os.stat_result]] = []
    try:
        with os.scandir(path.parent) as entries:
            for entry in entries:
                name = entry.name
                if name != prefix and not (
                    name.startswith(prefix + ".") and _KEPT_SUFFIX.match(name[len(prefix) + 1:])
                ):
                    continue
                try:
                    if entry.is_file(follow_symlinks=False):
                        found.append((Path(entry.path), entry.stat(follow_symlinks=False)))
                except OSError:
                    continue
    except OSError:
        return []
    return sorted(found, key=lambda item: (item[1].st_mtime_ns, item[0].name))


def _list_snapshots(folder: Path) -> list[tuple[str, Path, float]]:
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


def _file_key(st: os.stat_result) -> tuple[int, ...]:
    """Identity of one version of the file (every write is a new inode via os.replace)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _read_file(path: Path) -> tuple[tuple[int, ...] | None, bytes | None]:
    """(version key, contents) of the file, or (None, None) when it does not exist."""
    try:
        f = _retry_sharing(open, path, "rb")
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise RegistryError(f"The job registry at {path} cannot be opened: {exc}") from None
    with f:
        key = _file_key(os.fstat(f.fileno()))
        return key, f.read()


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, payload: bytes, *, backup: Callable[[], bool] | None) -> bool:
    """Write ``payload`` to ``path`` atomically; return whether a .bak link was made.
    ``backup`` (called once the new contents are safely on disk, before the replace, only
    if the file exists) links the current file to ``.bak`` and says whether it did."""
    folder = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    backed_up = False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        try:  # keep the permissions of the file we replace (mkstemp creates 0600)
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        except FileNotFoundError:
            pass
        if backup is not None and path.exists():
            backed_up = backup()
        _retry_sharing(os.replace, tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    _fsync_dir(folder)
    return backed_up


def _link_backup(path: Path) -> bool:
    """Make ``<path>.bak`` another name for the current file (no data copied)."""
    bak = Path(str(path) + ".bak")
    link_tmp = Path(str(path) + ".bak.tmp")
    try:
        try:
            link_tmp.unlink()
        except FileNotFoundError:
            pass
        os.link(path, link_tmp)
        _retry_sharing(os.replace, link_tmp, bak)
        # After a kill between linking and replacing, .bak already names this very file; a
        # rename between two names of one file does nothing (POSIX), leaving .bak.tmp behind.
        link_tmp.unlink(missing_ok=True)
        return True
    except OSError:
        return False


# One in-process lock per registry file: serialises transactions of several threads (the
# file lock alone is per-thread in filelock) and of several Registry objects on one file.
_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()
_ACTIVE = threading.local()  # .paths: registry files with an open transaction in this thread


def _process_lock(key: str) -> threading.Lock:
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.Lock())


# --------------------------------------------------------------------------------------------
# TinyDB pieces
# --------------------------------------------------------------------------------------------


class _DeferredJSONStorage(Storage):
    """TinyDB storage that reads the JSON file once and defers every write.

    TinyDB calls ``read``/``write`` for every operation; this storage serves reads from the
    data parsed once and only records writes. :meth:`flush` writes the final state to disk,
    once, atomically. Also used read-only over an already parsed snapshot (``data=...``).
    """

    def __init__(self, path: Path, data: _Data | None = None, *, loaded: bool = False,
                 key: tuple[int, ...] | None = None) -> None:
        self.path = path
        self._data = data
        self._loaded = loaded
        self.dirty = False
        #: Version key of the file the data was read from (None: missing, or not known).
        self.key = key

    def read(self) -> _Data | None:
        if not self._loaded:
            self.key, raw = _read_file(self.path)
            self._data = None if raw is None else _parse(self.path, raw)
            self._loaded = True
        return self._data

    def write(self, data: _Data) -> None:
        self._data = data
        self._loaded = True
        self.dirty = True

    def serialise(self) -> bytes:
        return orjson.dumps(self._data or {})


class _JobTable(Table):
    """TinyDB table whose document ids are the jobs' own string ids."""

    document_id_class = str

    def apply(self, puts: Mapping[str, dict], deletes: set[str]) -> None:
        """Upsert and delete many documents by id in one table update (one storage write)."""

        def updater(table: dict) -> None:
            for job_id in deletes:
                table.pop(job_id, None)
            table.update(puts)

        self._update_table(updater)


class _JobDB(TinyDB):
    table_class = _JobTable
    default_table_name = TABLE_NAME


def _open_db(storage: _DeferredJSONStorage) -> tuple[_JobDB, _JobTable]:
    db = _JobDB(storage=lambda: storage)
    return db, db.table(TABLE_NAME, cache_size=0)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


class _JobView:
    """Reads over one TinyDB table plus not-yet-written changes (none outside transactions)."""

    def __init__(self, table: _JobTable) -> None:
        self._table = table
        self._puts: dict[str, dict] = {}
        self._deletes: set[str] = set()

    def _raw(self, job_id: str) -> dict | None:
        """The current job dict, NOT copied (internal use only)."""
        if not isinstance(job_id, str):
            return None
        if job_id in self._puts:
            return self._puts[job_id]
        if job_id in self._deletes:
            return None
        return self._table.get(doc_id=job_id)

    def _raw_by_batch_id(self, batch_id: str) -> dict | None:
        if not isinstance(batch_id, str) or not batch_id:
            return None
        for job in self._puts.values():
            if _has_batch(job, batch_id):
                return job
        if self._puts or self._deletes:
            hidden = self._puts.keys() | self._deletes
            for doc in self._table.search(_batch_query(batch_id)):
                if doc.doc_id not in hidden:
                    return doc
            return None
        return self._table.get(_batch_query(batch_id))

    def _raw_all(self) -> list[dict]:
        if not self._puts and not self._deletes:
            return list(self._table._read_table().values())
        hidden = self._puts.keys() | self._deletes
        jobs = [d for k, d in self._table._read_table().items() if k not in hidden]
        jobs.extend(self._puts.values())
        return jobs

    def get_job(self, job_id: str) -> dict | None:
        """A copy of the job with this id, or None."""
        job = self._raw(job_id)
        return None if job is None else _clone(job)

    def find_job_by_batch_id(self, batch_id: str) -> dict | None:
        """A copy of the job that has a batch with this provider batch id, or None."""
        job = self._raw_by_batch_id(batch_id)
        return None if job is None else _clone(job)

    def find_job(self, job_or_batch_id: str) -> dict | None:
        """A copy of the job with this job id, or of the job holding this batch id, or None."""
        job = self._raw(job_or_batch_id)
        if job is None:
            job = self._raw_by_batch_id(job_or_batch_id)
        return None if job is None else _clone(job)

    def list_jobs(self, where: Callable[[dict], bool] | None = None) -> list[dict]:
        """Copies of all jobs (or of those ``where`` accepts, tested before copying), newest
        first (by ``created_at`` ISO string, then id)."""
        jobs = self._raw_all()
        if where is not None:
            jobs = [job for job in jobs if where(job)]
        return _clone(_newest_first(jobs))


class RegistryTransaction(_JobView):
    """Reads and changes inside :meth:`Registry.transaction`.

    Changes are kept in memory and written by the registry, once, when the block ends.
    Every dict returned is a copy; store changes with :meth:`put_job`.
    """

    def __init__(self, table: _JobTable, limits: _JobTable | None = None) -> None:
        super().__init__(table)
        self._open = True
        self._limits = limits
        self._limit_puts: dict[str, dict] = {}

    def _check_open(self) -> None:
        if not self._open:
            raise RegistryError("This registry transaction has ended; start a new one.")

    @property
    def changed(self) -> bool:
        """Whether the transaction holds changes that will be written."""
        return bool(self._puts or self._deletes or self._limit_puts)

    def get_job(self, job_id: str) -> dict | None:
        """A copy of the job with this id (including this transaction's changes), or None."""
        self._check_open()
        return super().get_job(job_id)

    def find_job(self, job_or_batch_id: str) -> dict | None:
        """A copy of the job with this job id or batch id, or None."""
        self._check_open()
        return super().find_job(job_or_batch_id)

    def find_job_by_batch_id(self, batch_id: str) -> dict | None:
        """A copy of the job that has a batch with this provider batch id, or None."""
        self._check_open()
        return super().find_job_by_batch_id(batch_id)

    def list_jobs(self, where: Callable[[dict], bool] | None = None) -> list[dict]:
        """Copies of all jobs (including this transaction's changes), newest first."""
        self._check_open()
        return super().list_jobs(where)

    def put_job(self, job: dict) -> None:
        """Insert or replace the job keyed by ``job["id"]``.

        The job must be a dict with a non-empty string ``id`` and, if present, a list of dicts
        under ``batches``, and must be JSON-serialisable (RegistryError otherwise). A copy is
        stored, so later changes to ``job`` do not reach the registry. Storing a job equal to
        the stored one is not a change.
        """
        self._check_open()
        if not isinstance(job, Mapping):
            raise RegistryError(f"A job must be a dict, not {type(job).__name__}.")
        job_id = job.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise RegistryError(f"A job needs a non-empty string 'id'; got {job_id!r}.")
        batches = job.get("batches")
        if batches is not None and not (
            isinstance(batches, list) and all(isinstance(b, dict) for b in batches)
        ):
            raise RegistryError(f"Job {job_id}: 'batches' must be a list of dicts.")
        try:
            stored = orjson.loads(orjson.dumps(job))
        except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
            raise RegistryError(f"Job {job_id} cannot be stored as JSON: {exc}") from None
        original = self._table.get(doc_id=job_id)
        self._deletes.discard(job_id)
        if original is not None and original == stored:
            self._puts.pop(job_id, None)  # back to what the file holds: no change
        else:
            self._puts[job_id] = stored

    def get_provider_limit(self, key: str) -> dict | None:
        """A copy of what was learned about ``key`` ("<provider>:<model>"), or None."""
        self._check_open()
        if key in self._limit_puts:
            return _clone(self._limit_puts[key])
        found = self._limits.get(doc_id=key) if self._limits is not None else None
        return None if found is None else _clone(dict(found))

    def put_provider_limit(self, key: str, record: dict) -> None:
        """Remember what was learned about ``key`` ("<provider>:<model>")."""
        self._check_open()
        if not isinstance(key, str) or not key or not isinstance(record, Mapping):
            raise RegistryError("A provider limit needs a string key and a dict.")
        self._limit_puts[key] = orjson.loads(orjson.dumps(dict(record)))

    def delete_job(self, job_id: str) -> bool:
        """Remove the job; return whether it existed. The deletion is remembered (table
        ``deleted_jobs``), so recovery never brings the job back from a backup."""
        self._check_open()
        existed = self._raw(job_id) is not None
        self._puts.pop(job_id, None)
        if isinstance(job_id, str) and self._table.get(doc_id=job_id) is not None:
            self._deletes.add(job_id)
        return existed


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
        return {"at": self.at, "registry": self.registry, "reason": self.reason, "restored": list(self.restored),
                "rebuilt": list(self.rebuilt), "sources": list(self.sources), "problems": list(self.problems),
                "set_aside": self.set_aside}


def _count(ids: tuple[str, ...], noun: str) -> str:
    return f"{len(ids)} {noun}{'' if len(ids) == 1 else 's'}"


def _ids(ids: tuple[str, ...], shown: int = 5) -> str:
    more = f", and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


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


@dataclass(frozen=True)
class _Evidence:
    """What says jobs exist besides the registry file: its backups and the job snapshots."""

    main: tuple[int, ...] | None  # content key of the registry file (None: missing)
    backups: tuple[tuple[Path, os.stat_result], ...]
    snapshots: tuple[tuple[str, Path, float], ...]

    @property
    def any(self) -> bool:
        return bool(self.backups or self.snapshots)

    @property
    def signature(self) -> tuple:
        """Changes whenever any of the evidence (or the registry file) does."""
        return (self.main, tuple((p.name, _content_key(st)) for p, st in self.backups),
                tuple((job_id, mtime) for job_id, _, mtime in self.snapshots))


class Registry:
    """The job registry file. Safe for several processes and threads.

    Change jobs only inside ``with registry.transaction() as tx:``; keep the block short (no
    network calls in it): other processes wait for it. Reads outside a transaction take no
    lock and see the last complete write (except to restore lost jobs, see the module notes).
    """

    def __init__(self, path: Path, *, lock_timeout: float = 30.0, cache_reads: bool = True,
                 snapshots_dir: Path | None = None) -> None:
        """``path``: the JSON file (created at the first write; its folder too).
        ``lock_timeout``: seconds to wait for another process's transaction before
        RegistryError. ``cache_reads``: keep the last parsed file for reads outside
        transactions, re-read whenever the file changes (checked with one stat per read).
        ``snapshots_dir``: the folder of job folders with their ``job.json`` snapshots
        (default: ``jobs`` beside the file, the data folder's layout)."""
        self._path = Path(path)
        self._lock_path = Path(str(self._path) + ".lock")
        self._bak = Path(str(self._path) + ".bak")
        self._log_path = Path(str(self._path) + ".recovery.log")
        self._snapshots_dir = Path(snapshots_dir) if snapshots_dir is not None else self._path.parent / "jobs"
        self._lock_timeout = float(lock_timeout)
        self._cache_reads = cache_reads
        self._cache: tuple[tuple[int, ...], _Data | None] | None = None
        self._backups = True
        # job ids per file version (content key) seen by this object: the backup check then
        # needs no re-parse of a .bak this object wrote or read when it was the current file
        self._ids_seen: dict[tuple[int, ...], frozenset[str]] = {}
        self._ids_guard = threading.Lock()  # reads of several threads remember ids too
        # evidence already looked at without anything to restore: not looked at again
        self._settled: tuple | None = None
        #: Whether the last write of this object linked the previous file to ``<path>.bak``
        #: (False where the file system has no hard links: the backup is then skipped).
        self.last_write_backed_up: bool | None = None
        #: What recovery did in this object's lifetime, oldest first: show them to the user.
        self.recovery_notes: list[RecoveryNote] = []
        #: Temporary files of killed writers this object's transactions deleted.
        self.leftovers_removed = 0

    @property
    def path(self) -> Path:
        """The registry file."""
        return self._path

    @property
    def lock_timeout(self) -> float:
        return self._lock_timeout

    @property
    def snapshots_dir(self) -> Path:
        """The folder of job folders whose ``job.json`` snapshots recovery rebuilds jobs from."""
        return self._snapshots_dir

    # -- reads outside transactions ----------------------------------------------------------

    def _read_current(self) -> _Data | None:
        """The parsed file (shared; never hand out without copying), None if missing."""
        cache = self._cache
        if cache is not None:
            try:
                st: os.stat_result | None = os.stat(self._path)
            except OSError:
                st = None
            if st is not None and _file_key(st) == cache[0]:
                return cache[1]
        key, raw = _read_file(self._path)
        if raw is None:
            return None
        data = _parse(self._path, raw)
        self._remember_ids(key, data)
        if self._cache_reads:
            self._cache = (key, data)
        return data

    def _snapshot(self) -> _Data | None:
        """The parsed file, after restoring lost jobs if it is missing or holds none while
        backups or job snapshots say there are jobs (see the module notes)."""
        data = self._read_current()
        if not _holds_jobs(data) and self._recovery_may_help():
            self._recover(explicit=False)
            data = self._read_current()
        return data

    def get_provider_limit(self, key: str) -> dict | None:
        """A copy of what was learned about ``key`` ("<provider>:<model>"), or None. No lock."""
        data = self._snapshot() or {}
        found = data.get(LIMITS_TABLE, {}).get(key)
        return None if found is None else _clone(found)

    def _view(self) -> _JobView:
        storage = _DeferredJSONStorage(self._path, self._snapshot(), loaded=True)
        return _JobView(_open_db(storage)[1])

    def get_job(self, job_id: str) -> dict | None:
        """A copy of the job with this id, or None. Takes no lock."""
        return self._view().get_job(job_id)

    def list_jobs(self, where: Callable[[dict], bool] | None = None) -> list[dict]:
        """Copies of all jobs (or of those ``where`` accepts), newest first by ``created_at``
        (ISO string), then by id."""
        return self._view().list_jobs(where)

    def find_job_by_batch_id(self, batch_id: str) -> dict | None:
        """A copy of the job that has a batch with this provider batch id, or None."""
        return self._view().find_job_by_batch_id(batch_id)

    def find_job(self, job_or_batch_id: str) -> dict | None:
        """A copy of the job with this job id, or of the job holding this batch id, or None."""
        return self._view().find_job(job_or_batch_id)

    def deleted_job_ids(self) -> frozenset[str]:
        """Ids of the jobs deleted on purpose (table ``deleted_jobs``). Takes no lock."""
        return _deleted_ids(self._snapshot())

    # -- transactions -------------------------------------------------------------------------

    def _timeout_error(self) -> RegistryError:
        return RegistryError(
            f"The job registry at {self._path} is locked by another process for more than "
            f"{self._lock_timeout:g} s. Wait until the other dashboard or command finishes, "
            f"then try again."
        )

    @contextmanager
    def transaction(self) -> Iterator[RegistryTransaction]:
        """Hold the inter-process lock (filelock, path + '.lock'), read the file once, let the
        caller read/modify jobs, then write the file ONCE atomically (temp file in the same
        folder + fsync + os.replace) if anything changed; write nothing if nothing changed or
        if the block raised. Lost jobs are restored first (see the module notes).

        Raises RegistryError when the lock is not obtained within ``lock_timeout``, when the
        file is corrupt (it is then left untouched), when the write fails, or when a
        transaction on the same file is already open in this thread (nesting would lose the
        outer transaction's view of the inner one's changes).
        """
        with self._session(explicit=False) as (tx, _):
            yield tx

    def recover(self, *, set_aside_unreadable: bool = False) -> RecoveryNote | None:
        """Add every job the registry lacks that a backup (``.bak``, kept ``.bak.<time>``)
        or a job snapshot holds, under the lock, whatever the file holds already (jobs it
        has, and jobs deleted on purpose, are left as they are). With
        ``set_aside_unreadable``, a registry file that cannot be read is first moved to
        ``<path>.damaged.<UTC time>`` (never deleted). Returns what was done (also kept in
        :attr:`recovery_notes`), or None when nothing was missing."""
        return self._recover(explicit=True, set_aside_unreadable=set_aside_unreadable)

    def _recover(self, *, explicit: bool, set_aside_unreadable: bool = False) -> RecoveryNote | None:
        with self._session(explicit=explicit, set_aside_unreadable=set_aside_unreadable) as (_, notes):
            pass
        return notes[0] if notes else None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold this thread's and every process's lock on the file (refusing nesting)."""
        key = os.path.abspath(self._path)
        active: set[str] = getattr(_ACTIVE, "paths", None) or set()
        _ACTIVE.paths = active
        if key in active:
            raise RegistryError(
                f"A transaction on the job registry at {self._path} is already open in this "
                "thread; nested transactions are not supported."
            )
        try:
            private_dir(self._path.parent)
        except OSError as exc:
            raise RegistryError(f"Cannot create the folder of the job registry at {self._path}: {exc}") from None

        thread_lock = _process_lock(key)
        started = time.monotonic()
        if not thread_lock.acquire(timeout=self._lock_timeout if self._lock_timeout >= 0 else -1):
            raise self._timeout_error()
        active.add(key)
        try:
            remaining = self._lock_timeout
            if remaining >= 0:
                remaining = max(0.0, remaining - (time.monotonic() - started))
            from filelock import FileLock, Timeout  # here: reading needs no lock, and filelock takes a while to import

            file_lock = FileLock(self._lock_path, timeout=remaining, mode=PRIVATE_FILE_MODE)
            try:
                file_lock.acquire()
            except Timeout:
                raise self._timeout_error() from None
            except OSError as exc:
                raise RegistryError(f"Cannot lock the job registry at {self._path}: {exc}") from None
            try:
                yield
            finally:
                file_lock.release()
        finally:
            active.discard(key)
            thread_lock.release()

    @contextmanager
    def _session(self, *, explicit: bool, set_aside_unreadable: bool = False
                 ) -> Iterator[tuple[RegistryTransaction, list[RecoveryNote]]]:
        """One transaction under the lock: clean up, recover lost jobs, let the block change
        jobs, write once. ``explicit``: recovery asked for (see :meth:`recover`)."""
        with self._locked():
            self._remove_leftovers()
            storage = self._locked_storage()
            set_aside: Path | None = None
            try:
                replaced = storage.read()  # parse now: a corrupt file fails before the block runs
            except RegistryError:
                if not set_aside_unreadable:
                    raise
                set_aside = self._set_aside()
                storage = _DeferredJSONStorage(self._path)
                replaced = storage.read()
            if storage.key is not None and storage.key[:4] not in self._ids_seen:
                self._remember_ids(storage.key, replaced)
            db, table = _open_db(storage)
            note, looked_at = self._recover_locked(storage, replaced, explicit=explicit, set_aside=set_aside)
            notes = [note] if note is not None else []
            tx = RegistryTransaction(table, db.table(LIMITS_TABLE, cache_size=0))
            try:
                yield tx, notes
            finally:
                tx._open = False
            if tx.changed:
                table.apply(tx._puts, tx._deletes)
                if tx._limit_puts:
                    db.table(LIMITS_TABLE, cache_size=0).apply(tx._limit_puts, set())
                _mark_deleted(storage, deleted=tx._deletes, revived=tx._puts.keys())
            if tx.changed or storage.dirty:
                self._write(storage, replaced)
            db.close()
            if looked_at is not None:  # only once it is on disk: a failed block looks again
                self._settled = looked_at
            for item in notes:
                self._record(item)

    def _locked_storage(self) -> _DeferredJSONStorage:
        """Storage for a transaction (lock held): the cached parse when the file has not
        changed since (one stat instead of re-parsing megabytes), else a fresh read."""
        cache = self._cache
        if cache is not None:
            try:
                unchanged = _file_key(os.stat(self._path)) == cache[0]
            except OSError:
                unchanged = False
            if unchanged:
                # copy the top level only: a transaction replaces whole jobs, never edits one
                # in place, so the cached jobs stay as they were if the block fails
                data = {name: dict(table) for name, table in cache[1].items()}
                return _DeferredJSONStorage(self._path, data, loaded=True, key=cache[0])
        return _DeferredJSONStorage(self._path)

    def _write(self, storage: _DeferredJSONStorage, replaced: _Data | None) -> None:
        """Write the storage's data to the file, once, atomically (lock held by caller).
        ``replaced``: what the file held when the lock was taken."""
        payload = storage.serialise()
        replaced_jobs = _job_ids(replaced)
        covered = replaced_jobs | _deleted_ids(replaced)

        def backup() -> bool:
            # an empty file is no backup worth having, and linking one over a .bak is how
            # jobs used to be lost
            if not self._backups or not replaced_jobs or not self._keep_backup_if_needed(covered):
                return False
            return _link_backup(self._path)

        try:
            backed_up = _atomic_write(self._path, payload, backup=backup)
        except OSError as exc:
            raise RegistryError(
                f"Could not write the job registry at {self._path}: {exc}. "
                "The file was left as it was before this change."
            ) from None
        self.last_write_backed_up = backed_up
        storage.dirty = False
        try:
            key = _file_key(os.stat(self._path))
        except OSError:
            self._cache = None
            return
        self._remember_ids(key, storage.read())
        if self._cache_reads:
            self._cache = (key, storage.read())

    # -- backups, leftovers and recovery (lock held unless said otherwise) --------------------

    def _remember_ids(self, key: tuple[int, ...] | None, data: _Data | None) -> None:
        if key is None:
            return
        ids = _job_ids(data)
        with self._ids_guard:
            self._ids_seen[key[:4]] = ids  # key[:4] is the content key
            while len(self._ids_seen) > _IDS_REMEMBERED:
                self._ids_seen.pop(next(iter(self._ids_seen)))

    def _ids_in(self, path: Path, st: os.stat_result) -> frozenset[str] | None:
        """Job ids in a registry file (a backup), or None if it cannot be read."""
        known = self._ids_seen.get(_content_key(st))
        if known is not None:
            return known
        try:
            _, raw = _read_file(path)
            ids = _job_ids(None if raw is None else _decode(raw))
        except (RegistryError, _Unreadable):
            return None
        with self._ids_guard:
            self._ids_seen[_content_key(st)] = ids
        return ids

    def _keep_backup_if_needed(self, covered: frozenset[str]) -> bool:
        """Before ``.bak`` is replaced: keep it as ``.bak.<UTC time>`` if it holds jobs that
        ``covered`` (the ids of the file about to become the backup, and the deleted ones)
        lacks, or if it cannot be read. Returns whether ``.bak`` may now be replaced."""
        try:
            st = os.stat(self._bak, follow_symlinks=False)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        ids = self._ids_in(self._bak, st)
        if ids is not None and ids <= covered:
            return True
        kept = _free_name(self._bak)
        try:
            os.link(self._bak, kept)
        except OSError:
            try:  # no hard links here: move it instead (a new .bak is linked after)
                os.rename(self._bak, kept)
            except OSError:
                return False  # cannot keep it: then leave it where it is
        return True

    def _remove_leftovers(self) -> None:
        """Delete temporary files of writers killed mid-write. Writers only create them while
        holding the lock, which we hold: none of them is being written."""
        name = self._path.name
        try:
            with os.scandir(self._path.parent) as entries:
                dead = [entry.path for entry in entries if _is_leftover(name, entry.name)]
        except OSError:
            return
        for path in dead:
            try:
                os.unlink(path)  # a symlink named like ours: the link goes, not its target
            except OSError:
                continue
            self.leftovers_removed += 1

    def _set_aside(self) -> Path:
        """Move the unreadable registry file to ``<path>.damaged.<UTC time>``."""
        target = _free_name(Path(str(self._path) + ".damaged"))
        try:
            os.rename(self._path, target)
        except OSError as exc:
            raise RegistryError(f"Could not move the unreadable job registry {self._path} aside: {exc}") from None
        self._cache = None
        return target

    def _evidence(self, *, everything: bool) -> _Evidence:
        """Backups and job snapshots, as they are now. ``everything``: also snapshots younger
        than SNAPSHOT_GRACE_SECONDS (a submission may be about to record them itself)."""
        try:
            main: tuple[int, ...] | None = _content_key(os.stat(self._path))
        except OSError:
            main = None
        snapshots = _list_snapshots(self._snapshots_dir)
        if not everything:
            cutoff = time.time() - SNAPSHOT_GRACE_SECONDS
            snapshots = [s for s in snapshots if s[2] <= cutoff]
        return _Evidence(main, tuple(_list_backups(self._path)), tuple(snapshots))

    def _recovery_may_help(self) -> bool:
        """For reads (no lock): is there evidence of jobs not looked at yet?"""
        if os.path.abspath(self._path) in (getattr(_ACTIVE, "paths", None) or ()):
            return False  # this thread's transaction already recovered what it could
        evidence = self._evidence(everything=False)
        return evidence.any and evidence.signature != self._settled

    def _recover_locked(self, storage: _DeferredJSONStorage, current: _Data | None, *, explicit: bool,
                        set_aside: Path | None) -> tuple[RecoveryNote | None, tuple | None]:
        """Put the jobs the evidence holds and the registry lacks into ``storage``. Unless
        ``explicit``, only when the registry holds no jobs and the evidence is new. Returns
        (what was done, the signature of the evidence looked at automatically)."""
        if not explicit and _holds_jobs(current):
            return None, None
        evidence = self._evidence(everything=explicit)
        looked_at = None if explicit else evidence.signature
        if not explicit and (not evidence.any or looked_at == self._settled):
            return None, None
        merged, restored, rebuilt, sources, problems = _merge(current, evidence)
        if restored or rebuilt:
            storage.write(merged)
        if not (restored or rebuilt or problems or set_aside):
            return None, looked_at
        reason = "rebuild" if explicit else ("missing" if current is None else "empty")
        return RecoveryNote(
            registry=str(self._path), reason=reason, at=_local_time(time.time()),
            restored=tuple(restored), rebuilt=tuple(rebuilt), sources=tuple(sources),
            problems=tuple(problems), set_aside=None if set_aside is None else str(set_aside),
        ), looked_at

    def _record(self, note: RecoveryNote) -> None:
        """Keep the note for this process and append it to the recovery log (best effort:
        the note is also in :attr:`recovery_notes`)."""
        self.recovery_notes.append(note)
        try:
            with open_private(self._log_path, "ab") as log:
                log.write(orjson.dumps(note.to_record()) + b"\n")
        except OSError:
            pass

    # -- inspection ---------------------------------------------------------------------------

    def inspect(self) -> RegistryState:
        """The registry's file, backups, job folders and temporary files as they are now.
        Reads only: restores nothing, takes no lock."""
        try:
            st: os.stat_result | None = os.stat(self._path)
        except OSError:
            st = None
        data: _Data | None = None
        problem: str | None = None
        if st is not None:
            try:
                _, raw = _read_file(self._path)
                data = None if raw is None else _decode(raw)
            except (RegistryError, _Unreadable) as exc:
                problem = str(exc)
        have = _job_ids(data) | _deleted_ids(data)
        backups = []
        for path, bst in _list_backups(self._path):
            try:
                _, raw = _read_file(path)
                ids = _job_ids(None if raw is None else _decode(raw))
                backups.append(BackupState(path, _local_time(bst.st_mtime), len(ids), tuple(sorted(ids - have))))
            except (RegistryError, _Unreadable) as exc:
                backups.append(BackupState(path, _local_time(bst.st_mtime), None, (), str(exc)))
        folders = [job_id for job_id, _, _ in _list_snapshots(self._snapshots_dir)]
        try:
            with os.scandir(self._path.parent) as entries:
                temps = sum(1 for entry in entries if _is_leftover(self._path.name, entry.name))
        except OSError:
            temps = 0
        return RegistryState(
            path=self._path, exists=st is not None, size=st.st_size if st is not None else 0,
            jobs=None if data is None else len(_job_ids(data)), problem=problem, backups=tuple(backups),
            snapshots_dir=self._snapshots_dir, job_folders=len(folders),
            folders_not_in_registry=tuple(f for f in folders if f not in have) if problem is None else (),
            temp_files=temps, last_recovery=self._last_logged(),
        )

    def _last_logged(self) -> dict[str, Any] | None:
        try:
            lines = self._log_path.read_bytes().splitlines()
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


def _mark_deleted(storage: _DeferredJSONStorage, *, deleted: Iterable[str], revived: Iterable[str]) -> None:
    """Record deliberate deletions (and forget those of jobs stored again) in DELETED_TABLE."""
    data = storage.read() or {}
    marks = dict(data.get(DELETED_TABLE) or {})
    for job_id in revived:
        marks.pop(job_id, None)
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for job_id in deleted:
        marks[job_id] = {"deleted_at": when}
    if marks:
        data[DELETED_TABLE] = marks
    else:
        data.pop(DELETED_TABLE, None)
    storage.write(data)


def _merge(current: _Data | None, evidence: _Evidence
           ) -> tuple[_Data, list[str], list[str], list[str], list[str]]:
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
            _, raw = _read_file(path)
            data = None if raw is None else _decode(raw)
        except (RegistryError, _Unreadable) as exc:
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
    have = _job_ids(current)
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
    merged: _Data = {name: dict(table) for name, table in (current or {}).items()}
    for name, table in others.items():  # what the registry holds wins over older copies
        merged[name] = {**table, **merged.get(name, {})}
    merged[TABLE_NAME] = {**merged.get(TABLE_NAME, {}), **added}
    marks = {job_id: mark for job_id, mark in deleted.items() if job_id not in merged[TABLE_NAME]}
    if marks:
        merged[DELETED_TABLE] = marks
    used = {origin[job_id] for job_id in restored}
    sources = [path.name for path, _st in evidence.backups if path.name in used]
    return merged, sorted(restored), sorted(rebuilt), sources, problems
