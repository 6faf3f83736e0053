"""The TinyDB pieces of the registry: a storage that reads once and writes once, and a table
keyed by the jobs' own ids.

Plain TinyDB cannot serve several processes (its JSON storage corrupts the file, its caching
middleware loses a writer's work, its cached next document id collides across processes), so
each transaction opens a fresh TinyDB instance over :class:`DeferredJSONStorage`, a storage
that reads the file once and keeps every TinyDB write in memory; the registry writes the file
once at the end of the block (see :mod:`core.registry.files`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import orjson
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from core.registry.files import read_file
from core.registry.format import TABLE_NAME, RegistryData, parse


class DeferredJSONStorage(Storage):
    """TinyDB storage that reads the JSON file once and defers every write.

    TinyDB calls ``read``/``write`` for every operation; this storage serves reads from the
    data parsed once and only records writes. The registry then writes :meth:`serialise`'s
    bytes to disk, once, atomically. Also used read-only over an already parsed snapshot
    (``data=...``).
    """

    def __init__(self, path: Path, data: RegistryData | None = None, *, loaded: bool = False,
                 key: tuple[int, ...] | None = None) -> None:
        self.path = path
        self._data = data
        self._loaded = loaded
        self.dirty = False
        #: Version key of the file the data was read from (None: missing, or not known).
        self.key = key

    def read(self) -> RegistryData | None:
        if not self._loaded:
            self.key, raw = read_file(self.path)
            self._data = None if raw is None else parse(self.path, raw)
            self._loaded = True
        return self._data

    def write(self, data: RegistryData) -> None:
        self._data = data
        self._loaded = True
        self.dirty = True

    def serialise(self) -> bytes:
        """The data as the file's bytes (orjson, no indent)."""
        return orjson.dumps(self._data or {})


class JobTable(Table):
    """TinyDB table whose document ids are the jobs' own string ids."""

    document_id_class = str

    def apply(self, puts: Mapping[str, dict], deletes: set[str]) -> None:
        """Upsert and delete many documents by id in one table update (one storage write)."""

        def updater(table: dict) -> None:
            for job_id in deletes:
                table.pop(job_id, None)
            table.update(puts)

        self._update_table(updater)


class JobDB(TinyDB):
    """TinyDB whose tables are :class:`JobTable` s, ``jobs`` by default."""

    table_class = JobTable
    default_table_name = TABLE_NAME


def open_db(storage: DeferredJSONStorage) -> tuple[JobDB, JobTable]:
    """A TinyDB over ``storage`` and its jobs table (no query cache: every read is current)."""
    db = JobDB(storage=lambda: storage)
    return db, db.table(TABLE_NAME, cache_size=0)
