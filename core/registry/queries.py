"""Reading jobs: by job id, by provider batch id, or all of them newest first.

Every dict handed out is a copy (callers may change it freely); reads outside a transaction
need no lock, since writes are atomic replaces.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from tinydb import Query
from tinydb.queries import QueryInstance

from core.registry.format import loads_without_gc
from core.registry.tinydb_store import JobTable


def clone(value: Any) -> Any:
    """Deep copy of JSON data (orjson round trip: faster than copy.deepcopy)."""
    return loads_without_gc(orjson.dumps(value))


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


def _batch_query(batch_id: str) -> QueryInstance:
    """TinyDB query: the job has a batch whose provider id is ``batch_id``."""
    return Query().batches.any(Query().batch_id == batch_id)


class JobView:
    """Reads over one TinyDB table plus not-yet-written changes (none outside transactions)."""

    def __init__(self, table: JobTable) -> None:
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
        return None if job is None else clone(job)

    def find_job_by_batch_id(self, batch_id: str) -> dict | None:
        """A copy of the job that has a batch with this provider batch id, or None."""
        job = self._raw_by_batch_id(batch_id)
        return None if job is None else clone(job)

    def find_job(self, job_or_batch_id: str) -> dict | None:
        """A copy of the job with this job id, or of the job holding this batch id, or None."""
        job = self._raw(job_or_batch_id)
        if job is None:
            job = self._raw_by_batch_id(job_or_batch_id)
        return None if job is None else clone(job)

    def list_jobs(self, where: Callable[[dict], bool] | None = None) -> list[dict]:
        """Copies of all jobs (or of those ``where`` accepts, tested before copying), newest
        first (by ``created_at`` ISO string, then id)."""
        jobs = self._raw_all()
        if where is not None:
            jobs = [job for job in jobs if where(job)]
        return clone(_newest_first(jobs))
