"""Crash-safe file operations of the registry: reading a version, writing atomically, and
cleaning up after a writer killed mid-write.

* Every write is atomic: temp file in the same folder, fsync, ``os.replace`` (then the folder
  is fsynced), so a reader without the lock sees the old file or the new one, never half of one.
* A temporary file of ours in the folder (``.<name>.*.tmp``, ``<name>.bak.tmp``) is the remains
  of a writer killed mid-write: writers only create them under the lock, so each transaction,
  holding the lock, deletes them (:func:`remove_leftovers`).
* Windows refuses to replace or open a file another process has open at that instant; such
  clashes last milliseconds and are retried (:func:`retry_sharing`).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from typing import Any, TypeVar
from datetime import datetime, timezone
from pathlib import Path

from core.errors import RegistryError

# Windows refuses to replace or open a file another process has open at that instant.
# Such clashes last milliseconds; retry for this long before giving up.
_SHARING_RETRY_SECONDS = 2.0

_T = TypeVar("_T")


def retry_sharing(action: Callable[..., _T], *args: Any) -> _T:
    """Run ``action(*args)``, retrying briefly on PermissionError (Windows sharing clashes)."""
    deadline = time.monotonic() + _SHARING_RETRY_SECONDS
    while True:
        try:
            return action(*args)
        except PermissionError:
            if os.name != "nt" or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def content_key(st: os.stat_result) -> tuple[int, ...]:
    """Identity of one version's contents that survives hard-linking it to ``.bak`` (a new
    link changes the ctime, not these)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def file_key(st: os.stat_result) -> tuple[int, ...]:
    """Identity of one version of the file (every write is a new inode via os.replace)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_file(path: Path) -> tuple[tuple[int, ...] | None, bytes | None]:
    """(version key, contents) of the file, or (None, None) when it does not exist."""
    try:
        f = retry_sharing(open, path, "rb")
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise RegistryError(f"The job registry at {path} cannot be opened: {exc}") from None
    with f:
        key = file_key(os.fstat(f.fileno()))
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


def atomic_write(path: Path, payload: bytes, *, backup: Callable[[], bool] | None) -> bool:
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
        retry_sharing(os.replace, tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    _fsync_dir(folder)
    return backed_up


def is_leftover(registry_name: str, name: str) -> bool:
    """Whether ``name`` is one of our registry writer's temporary files."""
    return (name.startswith(f".{registry_name}.") and name.endswith(".tmp")) or name == f"{registry_name}.bak.tmp"


def remove_leftovers(path: Path) -> int:
    """Delete temporary files of writers killed mid-write beside the registry file ``path``;
    return how many. Call with the lock held: writers only create them while holding it, so
    none of them is being written."""
    name = path.name
    try:
        with os.scandir(path.parent) as entries:
            dead = [entry.path for entry in entries if is_leftover(name, entry.name)]
    except OSError:
        return 0
    removed = 0
    for leftover in dead:
        try:
            os.unlink(leftover)  # a symlink named like ours: the link goes, not its target
        except OSError:
            continue
        removed += 1
    return removed


def local_time(seconds: float) -> str:
    """``seconds`` since the epoch as local time, "YYYY-MM-DD HH:MM:SS"."""
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def free_name(base: Path) -> Path:
    """``<base>.<UTC time>``, with ``-2``, ``-3``... if taken (called under the lock)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    candidate = Path(f"{base}.{stamp}")
    n = 2
    while os.path.lexists(candidate):
        candidate = Path(f"{base}.{stamp}-{n}")
        n += 1
    return candidate
