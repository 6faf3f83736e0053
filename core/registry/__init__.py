"""The job registry: a TinyDB JSON file of jobs and their batches, safe for several processes.

The Streamlit app and the command line are separate processes that write the same registry
at the same time. Plain TinyDB cannot do that (its JSON storage corrupts the file, its caching
middleware loses a writer's work, its cached next document id collides across processes), so:

* every change happens inside :meth:`Registry.transaction`, which holds an inter-process lock
  (``filelock`` on ``<path>.lock``) for the whole read-modify-write;
* each transaction opens a fresh TinyDB instance over a storage that reads the file once and
  keeps every TinyDB write in memory; the file is written once at the end of the block,
  atomically (temp file in the same folder, fsync, ``os.replace``), and only if something
  changed and the block did not raise;
* documents are keyed by the job's own ``id``, so nothing depends on TinyDB's auto-increment;
* reads outside a transaction need no lock: writes are atomic replaces, so a reader sees the
  old file or the new one, never half of one;
* before each write the current (valid) file is hard-linked to ``<path>.bak``, and a ``.bak``
  holding jobs the new file lacks is first kept as ``<path>.bak.<UTC time>``;
* temporary files of a writer killed mid-write are deleted by the next transaction;
* a registry file that is missing or holds no jobs while backups or job snapshots say there
  are jobs gets those jobs back, with a :class:`RecoveryNote` saying so.

One module per job:

* :mod:`~core.registry.store`: :class:`Registry`, the object callers use (reads, transactions);
* :mod:`~core.registry.format`: the on-disk format (table names, parsing, checking);
* :mod:`~core.registry.files`: crash-safe file operations (atomic write, dead writers' files);
* :mod:`~core.registry.backups`: the ``.bak`` link and kept backups;
* :mod:`~core.registry.locking`: the thread and inter-process lock;
* :mod:`~core.registry.tinydb_store`: the TinyDB storage and table;
* :mod:`~core.registry.queries`: reading jobs by id, by batch id, all of them;
* :mod:`~core.registry.transaction`: :class:`RegistryTransaction`, changes inside a transaction;
* :mod:`~core.registry.recovery`: never forgetting a job (:class:`RecoveryNote`);
* :mod:`~core.registry.inspection`: the state shown by ``python -m core registry``.

Callers import from this package (``from core.registry import Registry``), not from the modules.
"""

from __future__ import annotations

from core.registry.format import DELETED_TABLE, LIMITS_TABLE, TABLE_NAME
from core.registry.inspection import BackupState, RegistryState
from core.registry.recovery import SNAPSHOT_GRACE_SECONDS, SNAPSHOT_NAME, RecoveryNote
from core.registry.store import Registry
from core.registry.transaction import RegistryTransaction

__all__ = [
    "BackupState",
    "RecoveryNote",
    "Registry",
    "RegistryState",
    "RegistryTransaction",
    "DELETED_TABLE",
    "LIMITS_TABLE",
    "SNAPSHOT_GRACE_SECONDS",
    "SNAPSHOT_NAME",
    "TABLE_NAME",
]
