"""The local backend's engine: the files and batches of one state directory, behind the calls
the HTTP server makes (files.create/retrieve/list/delete/content, batches.create/retrieve/
cancel/list), and the start and stop of the threads that run the batches.

Its parts live beside it: :mod:`~core.local.api` (OpenAI's rules for what a client sends),
:mod:`~core.local.files` (the Files API), :mod:`~core.local.batchstate` (a batch in memory),
:mod:`~core.local.batchinput` (reading an input file), :mod:`~core.local.worker` (running a
batch), :mod:`~core.local.output` (its result files), :mod:`~core.local.resume` (taking a
state directory up again after a stop or crash) and :mod:`~core.local.store` (the disk).

A stop or a crash followed by a new Engine on the same state_dir resumes where it left off:
answered requests are not answered again and the final files hold each custom_id once.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from . import worker
from .api import (
    BATCH_FILE_EXPIRY_SECONDS,
    EXPIRY_ANCHOR,
    FILE_PURPOSES,
    LIST_ORDERS,
    MAX_EXPIRY_SECONDS,
    MIN_EXPIRY_SECONDS,
    SUPPORTED_ENDPOINT,
    SUPPORTED_WINDOWS,
    ApiError,
    check_batch_params,
    descending,
    page,
    parse_expiry,
)
from .batchstate import ACTIVE_STATUSES, CANCELLABLE_STATUSES, BatchState, new_batch_object, now_seconds
from .config import BackendConfig
from .files import Files
from .responders import BaselineResponder, Responder, make_responder
from .resume import restore_batches
from .store import Store

# the names this module always offered, wherever they live now
__all__ = ["ACTIVE_STATUSES", "BATCH_FILE_EXPIRY_SECONDS", "CANCELLABLE_STATUSES", "EXPIRY_ANCHOR", "FILE_PURPOSES",
           "LIST_ORDERS", "MAX_EXPIRY_SECONDS", "MIN_EXPIRY_SECONDS", "SUPPORTED_ENDPOINT", "SUPPORTED_WINDOWS",
           "ApiError", "BackendConfig", "Engine", "ResponderFactory", "parse_expiry"]

log = logging.getLogger(__name__)


class Engine:
    """Files and batches of one state directory. Thread-safe."""

    stop_grace_seconds = 10.0

    def __init__(self, config: BackendConfig, responder: Responder | None = None) -> None:
        self.config = config
        self.store = Store(Path(config.state_dir))
        self._responder = responder
        self._own_responder = responder is None
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._batches: dict[str, BatchState] = {}
        self._seq = 0
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._runners: dict[str, threading.Thread] = {}
        self._started = False
        self.files = Files(self.store, max_file_bytes=config.max_file_bytes, lock=self._lock,
                           in_use=self._is_unfinished_input)

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            self._stop.clear()
            if self._responder is None:
                self._responder = make_responder(self.config)
            self._pool = ThreadPoolExecutor(max_workers=max(1, self.config.concurrency), thread_name_prefix="local-batch-req")
            for batch in restore_batches(self.store):
                self._batches[batch.id] = batch
                self._seq = max(self._seq, batch.seq)
            for batch in self._batches.values():
                if batch.status in ACTIVE_STATUSES:
                    self._spawn_runner(batch)
        for meta in list(self.store.iter_file_metas()):
            self.files.expired(meta)  # files whose time ran out while the backend was stopped go now

    def stop(self) -> None:
        """Stop processing; in-flight requests get a grace period, state stays resumable."""
        with self._lock:
            if not self._started:
                return
            self._started = False
            self._stop.set()
            runners = list(self._runners.values())
            responder = self._responder
            self._changed.notify_all()
        if isinstance(responder, BaselineResponder):
            responder.close()  # interrupts baseline delays
        elif callable(getattr(responder, "interrupt", None)):
            responder.interrupt()  # a routing responder: its baseline's delays, not its forwarder
        for thread in runners:
            thread.join(self.stop_grace_seconds + 5)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._own_responder and responder is not None:
            try:
                responder.close()
            except Exception:  # pragma: no cover
                log.exception("closing responder failed")
            self._responder = None
        with self._lock:
            self._runners.clear()

    def active_count(self) -> int:
        with self._lock:
            return sum(1 for b in self._batches.values() if b.status in ACTIVE_STATUSES)

    def wait_until_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.active_count():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.5))
            return True

    # ---- files (core.local.files) --------------------------------------------------------
    def create_file(self, filename: str, purpose: str, data: bytes, *, expires_after: Any = None) -> dict[str, Any]:
        """Store an uploaded file. ``expires_after`` is OpenAI's expiry policy (see
        :func:`parse_expiry`); without one, a purpose=batch file expires after 30 days."""
        return self.files.create(filename, purpose, data, expires_after=expires_after)

    def get_file(self, file_id: str) -> dict[str, Any]:
        return self.files.get(file_id)

    def delete_file(self, file_id: str) -> dict[str, Any]:
        return self.files.delete(file_id)

    def file_content_path(self, file_id: str) -> Path:
        return self.files.content_path(file_id)

    def list_files(self, *, limit: int = 10000, after: str | None = None, purpose: str | None = None,
                   order: str | None = None) -> dict[str, Any]:
        """Files by ``created_at``, newest first unless ``order`` is ``asc``; expired ones are
        left out (and removed)."""
        return self.files.list_page(limit=limit, after=after, purpose=purpose, order=order)

    def _is_unfinished_input(self, file_id: str | None) -> bool:
        """Whether an unfinished batch reads this file as its input (asked under the lock)."""
        return any(b.obj["input_file_id"] == file_id and b.status in ACTIVE_STATUSES for b in self._batches.values())

    # ---- batches -------------------------------------------------------------------------
    def create_batch(self, params: Any) -> dict[str, Any]:
        input_file_id, endpoint, window, metadata, output_expiry = check_batch_params(params)
        meta = self.store.load_file_meta(input_file_id)
        if meta is None or self.files.expired(meta):
            raise ApiError(404, f"No such File object: {input_file_id}", param="input_file_id", code="file_not_found")
        if meta.get("purpose") != "batch":
            raise ApiError(400, f"File {input_file_id} has purpose '{meta.get('purpose')}', expected 'batch'.", param="input_file_id")
        created = time.time()
        obj = new_batch_object(input_file_id=input_file_id, endpoint=endpoint, window=window, metadata=metadata,
                               created=created, window_seconds=self.config.completion_window_seconds)
        with self._lock:
            if not self._started:
                raise ApiError(503, "The local backend is shutting down.", type_="server_error")
            self._seq += 1
            batch = BatchState(obj=obj, seq=self._seq, deadline=created + self.config.completion_window_seconds,
                               output_expiry_seconds=output_expiry)
            self.store.save_batch(batch.doc())
            self._batches[batch.id] = batch
            self._spawn_runner(batch)
            return batch.snapshot()

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            return self._get(batch_id).snapshot()

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self._get(batch_id)
            if batch.status not in CANCELLABLE_STATUSES:
                raise ApiError(
                    400,
                    f"Cannot cancel a batch with status '{batch.status}'.",
                    code="batch_not_cancellable",
                )
            self._set_status(batch, "cancelling", cancelling_at=now_seconds())
            return batch.snapshot()

    def list_batches(self, *, limit: int = 20, after: str | None = None, order: str | None = None) -> dict[str, Any]:
        """Batches newest first, or oldest first with ``order="asc"``."""
        newest_first = descending(order)
        with self._lock:
            ordered = sorted(self._batches.values(), key=lambda b: b.seq, reverse=newest_first)
            objs = [b.snapshot() for b in ordered]
        return page(objs, limit=limit, after=after, max_limit=100)

    def _get(self, batch_id: str) -> BatchState:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id", code="batch_not_found")
        return batch

    def _set_status(self, batch: BatchState, status: str, **fields: Any) -> None:
        with self._lock:
            batch.obj["status"] = status
            batch.obj.update(fields)
            self.store.save_batch(batch.doc())
            self._changed.notify_all()

    # ---- processing (core.local.worker) ----------------------------------------------------
    def _spawn_runner(self, batch: BatchState) -> None:
        thread = threading.Thread(target=worker.run, args=(self, batch), name=f"local-{batch.id}", daemon=True)
        self._runners[batch.id] = thread
        thread.start()


ResponderFactory = Callable[[BackendConfig], Responder]
