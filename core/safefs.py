"""Private, contained file writes: every file the product writes goes through here.

Paragraphs and answers are research data under agreements, so folders are created 0700 and
files 0600 (a stricter umask narrows them further; nothing here widens them). Names that come
from outside (an uploaded file's name, an id a provider returns) never pick a path: they are
checked against a strict pattern or turned into a safe name, and every write is checked to
stay inside the folder it belongs to.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import BinaryIO, Iterable

from core.errors import CoreError

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

#: Suffixes of our own temporary files (atomic writes); a leftover one is a crash's remains.
TEMP_SUFFIXES = (".tmp", ".part")
#: A temporary file older than this is no longer being written by anyone.
STALE_TEMP_SECONDS = 3600.0

# Provider and job ids we accept as parts of file names: OpenAI's look like batch_abc123,
# file-abc123; ours like job_20261201_120000_ab12. Anything else is hashed.
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
# Bytes, not characters: most file systems limit a name to 255 bytes.
MAX_NAME_BYTES = 120


class UnsafePath(CoreError):
    """A name or path would leave the folder it belongs to."""


def describe_os_error(what: str, exc: OSError) -> str:
    """A one-line message for a failed write that says what to do (a full disk above all)."""
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return f"{what}: the disk is full. Free some space and run the same command again; nothing was lost."
    if exc.errno == errno.ENAMETOOLONG:
        return f"{what}: a file name is too long for this file system."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{what}: permission denied ({exc.strerror})."
    return f"{what}: {exc.strerror or exc}."


def is_safe_id(value: object) -> bool:
    """Whether ``value`` is an id that can be used as (part of) a file name as it is."""
    return isinstance(value, str) and bool(_ID_PATTERN.match(value))


def id_for_path(value: str) -> str:
    """``value`` if it is a safe id, else a stable hash of it (so it still names one file)."""
    if is_safe_id(value):
        return value
    return "h" + hashlib.sha256(str(value).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def safe_name(text: str, *, suffix: str = "", max_bytes: int = MAX_NAME_BYTES) -> str:
    """A file name made from untrusted ``text``: one path component, no control or separator
    characters, not hidden, at most ``max_bytes`` UTF-8 bytes including ``suffix``. Long names
    are cut and given a short hash of the whole, so two long names stay distinct."""
    cleaned = unicodedata.normalize("NFC", str(text))
    cleaned = "".join(
        "_" if (ch in '/\\:*?"<>|' or unicodedata.category(ch)[0] == "C") else ch for ch in cleaned
    )
    cleaned = re.sub(r"\s+", " ", cleaned).strip(" .")
    if not cleaned or cleaned in (".", ".."):
        cleaned = "file"
    budget = max_bytes - len(suffix.encode("utf-8"))
    encoded = cleaned.encode("utf-8")
    if len(encoded) > budget:
        digest = hashlib.sha256(encoded).hexdigest()[:10]
        head = encoded[: budget - len(digest) - 1].decode("utf-8", "ignore").rstrip(" .")
        cleaned = f"{head}_{digest}"
    return cleaned + suffix


def contained(folder: Path, name: str) -> Path:
    """``folder / name``, refusing a ``name`` that is not one plain component or that would
    resolve outside ``folder`` (through ``..``, an absolute path or a symlink)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise UnsafePath(f"Refusing to write {name!r}: not a plain file name.")
    path = Path(folder) / name
    check_within(Path(folder), path)
    return path


def check_within(folder: Path, path: Path) -> None:
    """Raise UnsafePath unless ``path`` resolves inside ``folder``."""
    base = Path(folder).resolve()
    target = Path(path).resolve()
    if target != base and base not in target.parents:
        raise UnsafePath(f"Refusing to write {path}: it is outside {folder}.")


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents with mode 0700; return it. An existing folder
    is left as it is (the user may have shared it on purpose)."""
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            pass
    if not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a folder")
    return path


def restrict_dir(path: Path) -> None:
    """Make an existing folder we own private (0700) if others can enter it. Used on the data
    folder at start: with it closed, nothing below it is reachable by other accounts."""
    try:
        st = os.stat(path)
    except OSError:
        return
    if os.name != "nt" and st.st_uid == os.getuid() and st.st_mode & 0o077:
        try:
            os.chmod(path, st.st_mode & ~0o077 & 0o7777)
        except OSError:
            pass


def open_private(path: Path, mode: str = "wb", *, buffering: int = -1) -> BinaryIO:
    """Open ``path`` for binary writing or appending, creating it 0600 if it is new."""
    flags = {"wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
             "xb": os.O_WRONLY | os.O_CREAT | os.O_EXCL}[mode]
    flags |= getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    return os.fdopen(fd, mode.replace("x", "w"), buffering=buffering)


def atomic_write(path: Path, data: bytes | Iterable[bytes], *, fsync: bool = True) -> None:
    """Write ``path`` whole or not at all (0600 temp file in the same folder, then
    ``os.replace``). A failure (a full disk) leaves the old file, and no temp file, behind."""
    path = Path(path)
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:80]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, (bytes, bytearray, memoryview)):
                handle.write(data)
            else:
                for part in data:
                    handle.write(part)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def temp_path_for(path: Path) -> Path:
    """A fresh temp-file name beside ``path`` that :func:`remove_stale_temps` recognises."""
    return path.with_name(f".{path.name[:80]}.{os.getpid()}.{time.monotonic_ns()}.tmp")


def remove_stale_temps(folder: Path, *, older_than: float = STALE_TEMP_SECONDS, recursive: bool = True) -> int:
    """Delete our own leftover temp files (hidden ``.name.*.tmp`` / ``*.part``) older than
    ``older_than`` seconds under ``folder``; return how many. Never follows symlinks."""
    removed = 0
    now = time.time()
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    walker = os.walk(folder, followlinks=False) if recursive else [(str(folder), [], os.listdir(folder))]
    for root, _dirs, files in walker:
        for name in files:
            if not (name.startswith(".") and name.endswith(".tmp")) and not name.endswith(".part"):
                continue
            path = Path(root) / name
            try:
                st = path.lstat()
                if not path.is_symlink() and now - st.st_mtime >= older_than:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
    return removed
