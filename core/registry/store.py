"""The :class:`Registry`: the one object callers use to read and change jobs.

It ties the other modules of :mod:`core.registry` together:

* reads outside a transaction need no lock (writes are atomic replaces, so a reader sees the
  old file or the new one); the last parsed file is kept and re-used while one ``stat`` says
  the file has not changed;
* every change happens inside :meth:`Registry.transaction`: under the lock
  (:mod:`~core.registry.locking`) it deletes dead writers' temporary files, reads the file once
  into a :class:`~core.registry.tinydb_store.DeferredJSONStorage`, restores lost jobs
  (:mod:`~core.registry.recovery`), lets the block change jobs
  (:mod:`~core.registry.transaction`), then writes the file once, atomically
  (:mod:`~core.registry.files`), only if something changed and the block did not raise, after
  linking the previous version to ``.bak`` (:mod:`~core.registry.backups`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import RegistryError
from core.registry.backups import JobIdMemo, keep_backup_if_needed, link_backup
from core.registry.files import atomic_write, file_key, free_name, read_file, remove_leftovers
from core.registry.format import LIMITS_TABLE, RegistryData, deleted_ids, holds_jobs, job_ids, parse
from core.registry.inspection import RegistryState, inspect_registry
from core.registry.locking import hold_lock, open_in_this_thread
from core.registry.queries import JobView, clone
from core.registry.recovery import RecoveryNote, append_to_log, gather_evidence, recover_into
from core.registry.tinydb_store import DeferredJSONStorage, open_db
from core.registry.transaction import RegistryTransaction


class Registry:
    """The job registry file. Safe for several processes and threads.

    Change jobs only inside ``with registry.transaction() as tx:``; keep the block short (no
    network calls in it): other processes wait for it. Reads outside a transaction take no
    lock and see the last complete write (except to restore lost jobs, see
    :mod:`core.registry.recovery`).
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
        self._bak = Path(str(self._path) + ".bak")
        self._log_path = Path(str(self._path) + ".recovery.log")
        self._snapshots_dir = Path(snapshots_dir) if snapshots_dir is not None else self._path.parent / "jobs"
        self._lock_timeout = float(lock_timeout)
        self._cache_reads = cache_reads
        self._cache: tuple[tuple[int, ...], RegistryData | None] | None = None
        self._backups = True
        # job ids per file version seen by this object (see JobIdMemo)
        self._ids = JobIdMemo()
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
        """Seconds a transaction waits for another one's lock before RegistryError."""
        return self._lock_timeout

    @property
    def snapshots_dir(self) -> Path:
        """The folder of job folders whose ``job.json`` snapshots recovery rebuilds jobs from."""
        return self._snapshots_dir

    # -- reads outside transactions ----------------------------------------------------------

    def _read_current(self) -> RegistryData | None:
        """The parsed file (shared; never hand out without copying), None if missing."""
        cache = self._cache
        if cache is not None:
            try:
                st: os.stat_result | None = os.stat(self._path)
            except OSError:
                st = None
            if st is not None and file_key(st) == cache[0]:
                return cache[1]
        key, raw = read_file(self._path)
        if raw is None:
            return None
        data = parse(self._path, raw)
        self._ids.remember(key, data)
        if self._cache_reads:
            self._cache = (key, data)
        return data

    def _snapshot(self) -> RegistryData | None:
        """The parsed file, after restoring lost jobs if it is missing or holds none while
        backups or job snapshots say there are jobs (see :mod:`core.registry.recovery`)."""
        data = self._read_current()
        if not holds_jobs(data) and self._recovery_may_help():
            self._recover(explicit=False)
            data = self._read_current()
        return data

    def get_provider_limit(self, key: str) -> dict | None:
        """A copy of what was learned about ``key`` ("<provider>:<model>"), or None. No lock."""
        data = self._snapshot() or {}
        found = data.get(LIMITS_TABLE, {}).get(key)
        return None if found is None else clone(found)

    def _view(self) -> JobView:
        storage = DeferredJSONStorage(self._path, self._snapshot(), loaded=True)
        return JobView(open_db(storage)[1])

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
        return deleted_ids(self._snapshot())

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[RegistryTransaction]:
        """Hold the inter-process lock (filelock, path + '.lock'), read the file once, let the
        caller read/modify jobs, then write the file ONCE atomically (temp file in the same
        folder + fsync + os.replace) if anything changed; write nothing if nothing changed or
        if the block raised. Lost jobs are restored first (see :mod:`core.registry.recovery`).

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
    def _session(self, *, explicit: bool, set_aside_unreadable: bool = False
                 ) -> Iterator[tuple[RegistryTransaction, list[RecoveryNote]]]:
        """One transaction under the lock: clean up, recover lost jobs, let the block change
        jobs, write once. ``explicit``: recovery asked for (see :meth:`recover`)."""
        with hold_lock(self._path, lock_timeout=self._lock_timeout):
            self.leftovers_removed += remove_leftovers(self._path)
            storage = self._locked_storage()
            set_aside: Path | None = None
            try:
                replaced = storage.read()  # parse now: a corrupt file fails before the block runs
            except RegistryError:
                if not set_aside_unreadable:
                    raise
                set_aside = self._set_aside()
                storage = DeferredJSONStorage(self._path)
                replaced = storage.read()
            if storage.key is not None and not self._ids.knows(storage.key):
                self._ids.remember(storage.key, replaced)
            db, table = open_db(storage)
            note, looked_at = recover_into(
                storage, replaced, path=self._path, snapshots_dir=self._snapshots_dir,
                explicit=explicit, set_aside=set_aside, settled=self._settled,
            )
            notes = [note] if note is not None else []
            tx = RegistryTransaction(table, db.table(LIMITS_TABLE, cache_size=0))
            try:
                yield tx, notes
            finally:
                tx._close()
            tx._commit_into(db, table, storage)
            if tx.changed or storage.dirty:
                self._write(storage, replaced)
            db.close()
            if looked_at is not None:  # only once it is on disk: a failed block looks again
                self._settled = looked_at
            for item in notes:
                self._record(item)

    def _locked_storage(self) -> DeferredJSONStorage:
        """Storage for a transaction (lock held): the cached parse when the file has not
        changed since (one stat instead of re-parsing megabytes), else a fresh read."""
        cache = self._cache
        if cache is not None:
            try:
                unchanged = file_key(os.stat(self._path)) == cache[0]
            except OSError:
                unchanged = False
            if unchanged:
                # copy the top level only: a transaction replaces whole jobs, never edits one
                # in place, so the cached jobs stay as they were if the block fails
                data = {name: dict(table) for name, table in cache[1].items()}
                return DeferredJSONStorage(self._path, data, loaded=True, key=cache[0])
        return DeferredJSONStorage(self._path)

    def _write(self, storage: DeferredJSONStorage, replaced: RegistryData | None) -> None:
        """Write the storage's data to the file, once, atomically (lock held by caller).
        ``replaced``: what the file held when the lock was taken."""
        payload = storage.serialise()
        replaced_jobs = job_ids(replaced)
        covered = replaced_jobs | deleted_ids(replaced)

        def backup() -> bool:
            # an empty file is no backup worth having, and linking one over a .bak is how
            # jobs used to be lost
            if not self._backups or not replaced_jobs or not keep_backup_if_needed(self._bak, covered, self._ids):
                return False
            return link_backup(self._path)

        try:
            backed_up = atomic_write(self._path, payload, backup=backup)
        except OSError as exc:
            raise RegistryError(
                f"Could not write the job registry at {self._path}: {exc}. "
                "The file was left as it was before this change."
            ) from None
        self.last_write_backed_up = backed_up
        storage.dirty = False
        try:
            key = file_key(os.stat(self._path))
        except OSError:
            self._cache = None
            return
        self._ids.remember(key, storage.read())
        if self._cache_reads:
            self._cache = (key, storage.read())

    # -- recovery (lock held unless said otherwise) --------------------------------------------

    def _set_aside(self) -> Path:
        """Move the unreadable registry file to ``<path>.damaged.<UTC time>``."""
        target = free_name(Path(str(self._path) + ".damaged"))
        try:
            os.rename(self._path, target)
        except OSError as exc:
            raise RegistryError(f"Could not move the unreadable job registry {self._path} aside: {exc}") from None
        self._cache = None
        return target

    def _recovery_may_help(self) -> bool:
        """For reads (no lock): is there evidence of jobs not looked at yet?"""
        if open_in_this_thread(self._path):
            return False  # this thread's transaction already recovered what it could
        evidence = gather_evidence(self._path, self._snapshots_dir, everything=False)
        return evidence.any and evidence.signature != self._settled

    def _record(self, note: RecoveryNote) -> None:
        """Keep the note for this process and append it to the recovery log (best effort:
        the note is also in :attr:`recovery_notes`)."""
        self.recovery_notes.append(note)
        append_to_log(self._log_path, note)

    # -- inspection ---------------------------------------------------------------------------

    def inspect(self) -> RegistryState:
        """The registry's file, backups, job folders and temporary files as they are now.
        Reads only: restores nothing, takes no lock."""
        return inspect_registry(self._path, snapshots_dir=self._snapshots_dir, log_path=self._log_path)
