"""The Files API of the local backend: upload, look up, list and delete files, and let them
expire as OpenAI's expiry policy says.

A file that is the input of an unfinished batch is never removed (deleting it is refused,
expiry hides it from clients but keeps its data until the batch is done); the engine says
which files those are, under its lock.
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .api import BATCH_FILE_EXPIRY_SECONDS, FILE_PURPOSES, ApiError, descending, page, parse_expiry
from .batchstate import as_int, now_seconds
from .store import Store, UnknownId


class Files:
    """The files of one state directory. ``in_use(file_id)`` is asked under ``lock``."""

    def __init__(self, store: Store, *, max_file_bytes: int, lock: threading.RLock,
                 in_use: Callable[[str], bool]) -> None:
        self.store = store
        self._max_file_bytes = max_file_bytes
        self._lock = lock
        self._in_use = in_use

    def create(self, filename: str, purpose: str, data: bytes, *, expires_after: Any = None) -> dict[str, Any]:
        """Store an uploaded file. ``expires_after`` is OpenAI's expiry policy (see
        :func:`core.local.api.parse_expiry`); without one, a purpose=batch file expires after 30 days."""
        if purpose not in FILE_PURPOSES:
            raise ApiError(400, f"'{purpose}' is not one of {sorted(FILE_PURPOSES)} - 'purpose'", param="purpose")
        seconds = parse_expiry(expires_after, "expires_after")
        if seconds is None and purpose == "batch":
            seconds = BATCH_FILE_EXPIRY_SECONDS
        if len(data) > self._max_file_bytes:
            raise ApiError(
                400,
                f"File is too large: {len(data)} bytes, the limit is {self._max_file_bytes} bytes.",
                param="file",
                code="file_too_large",
            )
        created = now_seconds()
        meta = {
            "id": "file-" + secrets.token_hex(12),
            "object": "file",
            "bytes": len(data),
            "created_at": created,
            "filename": filename or "upload",
            "purpose": purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None if seconds is None else created + seconds,
        }
        self.store.save_file(meta, data)
        return meta

    def get(self, file_id: str) -> dict[str, Any]:
        """A file's FileObject, or a 404 for an unknown or expired file."""
        meta = self.store.load_file_meta(file_id)
        if meta is None or self.expired(meta):
            raise ApiError(404, f"No such File object: {file_id}", param="id", code="file_not_found")
        return meta

    def expired(self, meta: dict[str, Any]) -> bool:
        """Whether a file's expiry time has passed; such a file is gone for clients, and its
        data is removed unless an unfinished batch still reads it as its input."""
        expires_at = meta.get("expires_at")
        if not isinstance(expires_at, (int, float)) or isinstance(expires_at, bool) or expires_at > time.time():
            return False
        with self._lock:
            if not self._in_use(meta.get("id")):
                try:
                    self.store.delete_file(meta["id"])
                except (KeyError, UnknownId):
                    pass
        return True

    def delete(self, file_id: str) -> dict[str, Any]:
        """Remove a file, unless an unfinished batch reads it (a 400)."""
        self.get(file_id)
        with self._lock:
            if self._in_use(file_id):
                raise ApiError(400, f"File {file_id} is the input of an unfinished batch.", param="file_id")
            self.store.delete_file(file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    def content_path(self, file_id: str) -> Path:
        """Where a (live) file's content is."""
        self.get(file_id)
        return self.store.file_data_path(file_id)

    def list_page(self, *, limit: int = 10000, after: str | None = None, purpose: str | None = None,
             order: str | None = None) -> dict[str, Any]:
        """Files by ``created_at``, newest first unless ``order`` is ``asc``; expired ones are
        left out (and removed)."""
        newest_first = descending(order)
        metas = [m for m in self.store.iter_file_metas() if not self.expired(m)]
        metas.sort(key=lambda m: (as_int(m.get("created_at")), str(m.get("id", ""))), reverse=newest_first)
        if purpose:
            metas = [m for m in metas if m.get("purpose") == purpose]
        return page(metas, limit=limit, after=after, max_limit=10000)
