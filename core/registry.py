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
  old file or the new one, never half of one. A missing file is an empty registry;
* before each write the current (valid) file is hard-linked to ``<path>.bak``: a copy of the
  previous good version at the cost of one directory entry, not one more file write. Where
  the file system has no hard links the backup is skipped (it would double the write time).

File format: TinyDB's own, ``{"jobs": {"<job id>": {...job...}, ...}}`` (orjson, no indent).
"""

from __future__ import annotations

import gc
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock, Timeout
from tinydb import Query, TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from core.errors import RegistryError

__all__ = ["Registry", "RegistryTransaction", "TABLE_NAME"]

#: Name of the TinyDB table (top-level key of the JSON file) that holds the jobs.
TABLE_NAME = "jobs"
#: What the registry learned about providers, keyed "<provider>:<model>" (e.g. enqueued-token limits).
LIMITS_TABLE = "provider_limits"

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
        f"The job registry at {path} cannot be read: {problem}. It was left untouched.{keep}"
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


def _parse(path: Path, raw: bytes) -> _Data:
    """Parse and check the registry file contents; raise RegistryError if unusable."""
    if not raw.strip():
        raise _corrupt(path, "the file is empty")
    try:
        data = _loads_without_gc(raw)
    except orjson.JSONDecodeError as exc:
        raise _corrupt(path, f"it is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _corrupt(path, "it does not hold a JSON object")
    for name, table in data.items():
        if not isinstance(table, dict) or not set(map(type, table.values())) <= {dict}:
            raise _corrupt(path, f"its table {name!r} is not a mapping of id to job")
    return data


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


def _atomic_write(path: Path, payload: bytes, *, keep_backup: bool) -> bool:
    """Write ``payload`` to ``path`` atomically; return whether a .bak link was made."""
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
        if keep_backup and path.exists():
            backed_up = _link_backup(path)
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

    def __init__(self, path: Path, data: _Data | None = None, *, loaded: bool = False) -> None:
        self.path = path
        self._data = data
        self._loaded = loaded
        self.dirty = False

    def read(self) -> _Data | None:
        if not self._loaded:
            _, raw = _read_file(self.path)
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
        """Remove the job; return whether it existed."""
        self._check_open()
        existed = self._raw(job_id) is not None
        self._puts.pop(job_id, None)
        if isinstance(job_id, str) and self._table.get(doc_id=job_id) is not None:
            self._deletes.add(job_id)
        return existed


class Registry:
    """The job registry file. Safe for several processes and threads.

    Change jobs only inside ``with registry.transaction() as tx:``; keep the block short (no
    network calls in it): other processes wait for it. Reads outside a transaction take no
    lock and see the last complete write.
    """

    def __init__(self, path: Path, *, lock_timeout: float = 30.0, cache_reads: bool = True) -> None:
        """``path``: the JSON file (created at the first write; its folder too).
        ``lock_timeout``: seconds to wait for another process's transaction before
        RegistryError. ``cache_reads``: keep the last parsed file for reads outside
        transactions, re-read whenever the file changes (checked with one stat per read)."""
        self._path = Path(path)
        self._lock_path = Path(str(self._path) + ".lock")
        self._lock_timeout = float(lock_timeout)
        self._cache_reads = cache_reads
        self._cache: tuple[tuple[int, ...], _Data | None] | None = None
        self._backups = True
        #: Whether the last write of this object linked the previous file to ``<path>.bak``
        #: (False where the file system has no hard links: the backup is then skipped).
        self.last_write_backed_up: bool | None = None

    @property
    def path(self) -> Path:
        """The registry file."""
        return self._path

    @property
    def lock_timeout(self) -> float:
        return self._lock_timeout

    # -- reads outside transactions ----------------------------------------------------------

    def _snapshot(self) -> _Data | None:
        """The parsed file (shared; never hand out without copying), None if missing."""
        cache = self._cache
        if cache is not None:
            try:
                st = os.stat(self._path)
            except FileNotFoundError:
                return None
            except OSError:
                st = None
            if st is not None and _file_key(st) == cache[0]:
                return cache[1]
        key, raw = _read_file(self._path)
        if raw is None:
            return None
        data = _parse(self._path, raw)
        if self._cache_reads:
            self._cache = (key, data)
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
        if the block raised.

        Raises RegistryError when the lock is not obtained within ``lock_timeout``, when the
        file is corrupt (it is then left untouched), when the write fails, or when a
        transaction on the same file is already open in this thread (nesting would lose the
        outer transaction's view of the inner one's changes).
        """
        key = os.path.abspath(self._path)
        active: set[str] = getattr(_ACTIVE, "paths", None) or set()
        _ACTIVE.paths = active
        if key in active:
            raise RegistryError(
                f"A transaction on the job registry at {self._path} is already open in this "
                "thread; nested transactions are not supported."
            )
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
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
            file_lock = FileLock(self._lock_path, timeout=remaining)
            try:
                file_lock.acquire()
            except Timeout:
                raise self._timeout_error() from None
            except OSError as exc:
                raise RegistryError(f"Cannot lock the job registry at {self._path}: {exc}") from None
            try:
                storage = self._locked_storage()
                db, table = _open_db(storage)
                storage.read()  # parse now: a corrupt file fails before the block runs
                tx = RegistryTransaction(table, db.table(LIMITS_TABLE, cache_size=0))
                try:
                    yield tx
                finally:
                    tx._open = False
                if tx.changed:
                    table.apply(tx._puts, tx._deletes)
                    if tx._limit_puts:
                        db.table(LIMITS_TABLE, cache_size=0).apply(tx._limit_puts, set())
                    self._write(storage)
                db.close()
            finally:
                file_lock.release()
        finally:
            active.discard(key)
            thread_lock.release()

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
                return _DeferredJSONStorage(self._path, data, loaded=True)
        return _DeferredJSONStorage(self._path)

    def _write(self, storage: _DeferredJSONStorage) -> None:
        """Write the storage's data to the file, once, atomically (lock held by caller)."""
        payload = storage.serialise()
        try:
            backed_up = _atomic_write(self._path, payload, keep_backup=self._backups)
        except OSError as exc:
            raise RegistryError(
                f"Could not write the job registry at {self._path}: {exc}. "
                "The file was left as it was before this change."
            ) from None
        self.last_write_backed_up = backed_up
        storage.dirty = False
        if self._cache_reads:
            try:
                self._cache = (_file_key(os.stat(self._path)), storage.read())
            except OSError:
                self._cache = None

