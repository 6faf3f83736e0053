"""Backups of the registry file: the ``.bak`` hard link made before each write, and kept
``.bak.<UTC time>`` copies.

Before each write the current (valid) file is hard-linked to ``<path>.bak``: a copy of the
previous good version at the cost of one directory entry, not one more file write. Where the
file system has no hard links the backup is skipped (it would double the write time). A
``.bak`` holding jobs the file being replaced lacks is never overwritten: it is first kept as
``<path>.bak.<UTC time>``; an empty file is never linked over a backup (the registry checks
that before calling :func:`link_backup`).
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from core.errors import RegistryError
from core.registry.files import content_key, free_name, read_file, retry_sharing
from core.registry.format import RegistryData, Unreadable, decode, job_ids

# Kept backups are named <name>.bak.<UTC time>[-n]; nothing else with that prefix is one.
_KEPT_SUFFIX = re.compile(r"^\d{8}T\d{6}Z(?:-\d+)?$")
# Job-id sets remembered per file version (for the backup check): the last few suffice.
_IDS_REMEMBERED = 8


def list_backups(path: Path) -> list[tuple[Path, os.stat_result]]:
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


def link_backup(path: Path) -> bool:
    """Make ``<path>.bak`` another name for the current file (no data copied)."""
    bak = Path(str(path) + ".bak")
    link_tmp = Path(str(path) + ".bak.tmp")
    try:
        try:
            link_tmp.unlink()
        except FileNotFoundError:
            pass
        os.link(path, link_tmp)
        retry_sharing(os.replace, link_tmp, bak)
        # After a kill between linking and replacing, .bak already names this very file; a
        # rename between two names of one file does nothing (POSIX), leaving .bak.tmp behind.
        link_tmp.unlink(missing_ok=True)
        return True
    except OSError:
        return False


class JobIdMemo:
    """Job ids per file version (content key) seen by one registry object: the backup check
    then needs no re-parse of a ``.bak`` that object wrote or read when it was the current
    file. Safe for several threads (reads of several threads remember ids too)."""

    def __init__(self) -> None:
        self._ids_seen: dict[tuple[int, ...], frozenset[str]] = {}
        self._guard = threading.Lock()

    def knows(self, key: tuple[int, ...]) -> bool:
        """Whether the ids of the file version with this (full) version key are remembered."""
        return key[:4] in self._ids_seen

    def remember(self, key: tuple[int, ...] | None, data: RegistryData | None) -> None:
        """Remember the job ids of ``data``, read from the file version with version ``key``."""
        if key is None:
            return
        ids = job_ids(data)
        with self._guard:
            self._ids_seen[key[:4]] = ids  # key[:4] is the content key
            while len(self._ids_seen) > _IDS_REMEMBERED:
                self._ids_seen.pop(next(iter(self._ids_seen)))

    def ids_in(self, path: Path, st: os.stat_result) -> frozenset[str] | None:
        """Job ids in a registry file (a backup), or None if it cannot be read."""
        known = self._ids_seen.get(content_key(st))
        if known is not None:
            return known
        try:
            _, raw = read_file(path)
            ids = job_ids(None if raw is None else decode(raw))
        except (RegistryError, Unreadable):
            return None
        with self._guard:
            self._ids_seen[content_key(st)] = ids
        return ids


def keep_backup_if_needed(bak: Path, covered: frozenset[str], memo: JobIdMemo) -> bool:
    """Before ``bak`` (``<path>.bak``) is replaced: keep it as ``.bak.<UTC time>`` if it
    holds jobs that ``covered`` (the ids of the file about to become the backup, and the
    deleted ones) lacks, or if it cannot be read. Returns whether ``bak`` may now be replaced.
    Call with the lock held."""
    try:
        st = os.stat(bak, follow_symlinks=False)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    ids = memo.ids_in(bak, st)
    if ids is not None and ids <= covered:
        return True
    kept = free_name(bak)
    try:
        os.link(bak, kept)
    except OSError:
        try:  # no hard links here: move it instead (a new .bak is linked after)
            os.rename(bak, kept)
        except OSError:
            return False  # cannot keep it: then leave it where it is
    return True
