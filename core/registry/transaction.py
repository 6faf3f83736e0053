"""What a caller can do inside ``with registry.transaction() as tx:``: read jobs (its own
changes included), store and delete jobs, remember provider limits.

Changes are kept in memory; when the block ends the registry puts them into its TinyDB tables
(:meth:`RegistryTransaction._commit_into`) and writes the file once. Deleted jobs are
remembered (table ``deleted_jobs``), so a deletion is never mistaken for a loss by recovery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone

import orjson

from core.errors import RegistryError
from core.registry.format import DELETED_TABLE, LIMITS_TABLE
from core.registry.queries import JobView, clone
from core.registry.tinydb_store import DeferredJSONStorage, JobDB, JobTable


class RegistryTransaction(JobView):
    """Reads and changes inside :meth:`Registry.transaction`.

    Changes are kept in memory and written by the registry, once, when the block ends.
    Every dict returned is a copy; store changes with :meth:`put_job`.
    """

    def __init__(self, table: JobTable, limits: JobTable | None = None) -> None:
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
            return clone(self._limit_puts[key])
        found = self._limits.get(doc_id=key) if self._limits is not None else None
        return None if found is None else clone(dict(found))

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

    # -- for the registry, once the block has ended ---------------------------------------------

    def _close(self) -> None:
        """End the transaction: any later use raises RegistryError."""
        self._open = False

    def _commit_into(self, db: JobDB, table: JobTable, storage: DeferredJSONStorage) -> None:
        """Put this transaction's changes (if any) into the TinyDB tables it read, still in
        memory: the registry then writes ``storage`` to disk."""
        if not self.changed:
            return
        table.apply(self._puts, self._deletes)
        if self._limit_puts:
            db.table(LIMITS_TABLE, cache_size=0).apply(self._limit_puts, set())
        _mark_deleted(storage, deleted=self._deletes, revived=self._puts.keys())


def _mark_deleted(storage: DeferredJSONStorage, *, deleted: Iterable[str], revived: Iterable[str]) -> None:
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
