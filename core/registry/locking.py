"""The registry's lock: one writer at a time, across threads and processes.

Every change happens inside :meth:`Registry.transaction`, which holds an inter-process lock
(``filelock`` on ``<path>.lock``) for the whole read-modify-write. ``filelock`` locks per
thread, so an in-process lock per registry file first serialises the transactions of several
threads and of several Registry objects on one file. A transaction on a file already in a
transaction in the same thread is refused: nesting would lose the outer transaction's view of
the inner one's changes. Reads take no lock.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import RegistryError
from core.safefs import PRIVATE_FILE_MODE, private_dir

# One in-process lock per registry file: serialises transactions of several threads (the
# file lock alone is per-thread in filelock) and of several Registry objects on one file.
_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()
_ACTIVE = threading.local()  # .paths: registry files with an open transaction in this thread


def _process_lock(key: str) -> threading.Lock:
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.Lock())


def open_in_this_thread(path: Path) -> bool:
    """Whether this thread holds a transaction on the registry file ``path`` right now."""
    return os.path.abspath(path) in (getattr(_ACTIVE, "paths", None) or ())


def _timeout_error(path: Path, lock_timeout: float) -> RegistryError:
    return RegistryError(
        f"The job registry at {path} is locked by another process for more than "
        f"{lock_timeout:g} s. Wait until the other dashboard or command finishes, "
        f"then try again."
    )


@contextmanager
def hold_lock(path: Path, *, lock_timeout: float) -> Iterator[None]:
    """Hold this thread's and every process's lock on the registry file ``path`` (refusing
    nesting), creating its folder if needed. RegistryError when the lock is not obtained
    within ``lock_timeout`` seconds (negative: wait for ever)."""
    key = os.path.abspath(path)
    active: set[str] = getattr(_ACTIVE, "paths", None) or set()
    _ACTIVE.paths = active
    if key in active:
        raise RegistryError(
            f"A transaction on the job registry at {path} is already open in this "
            "thread; nested transactions are not supported."
        )
    try:
        private_dir(path.parent)
    except OSError as exc:
        raise RegistryError(f"Cannot create the folder of the job registry at {path}: {exc}") from None

    thread_lock = _process_lock(key)
    started = time.monotonic()
    if not thread_lock.acquire(timeout=lock_timeout if lock_timeout >= 0 else -1):
        raise _timeout_error(path, lock_timeout)
    active.add(key)
    try:
        remaining = lock_timeout
        if remaining >= 0:
            remaining = max(0.0, remaining - (time.monotonic() - started))
        from filelock import FileLock, Timeout  # here: reading needs no lock, and filelock takes a while to import

        file_lock = FileLock(Path(str(path) + ".lock"), timeout=remaining, mode=PRIVATE_FILE_MODE)
        try:
            file_lock.acquire()
        except Timeout:
            raise _timeout_error(path, lock_timeout) from None
        except OSError as exc:
            raise RegistryError(f"Cannot lock the job registry at {path}: {exc}") from None
        try:
            yield
        finally:
            file_lock.release()
    finally:
        active.discard(key)
        thread_lock.release()
