"""Batch state machine, persistence and processing of the local backend.

Lifecycle (OpenAI vocabulary): validating -> in_progress -> finalizing -> completed;
validating -> failed; (validating|in_progress|finalizing) -> cancelling -> cancelled;
in_progress -> expired when the completion window passes first.

Every finished request is appended to the batch's results log before it is counted, so a
stop or a crash followed by a new Engine on the same state_dir resumes where it left off:
answered requests are not answered again and the final files hold each custom_id once.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

from core.errors import CoreError

from .responders import Answer, BaselineResponder, Responder, error_body, make_responder
from .store import ResultsLog, Store, UnknownId

log = logging.getLogger(__name__)

SUPPORTED_ENDPOINT = "/v1/chat/completions"
SUPPORTED_WINDOWS = ("24h",)
ACTIVE_STATUSES = frozenset({"validating", "in_progress", "finalizing", "cancelling"})
CANCELLABLE_STATUSES = frozenset({"validating", "in_progress", "finalizing"})
FILE_PURPOSES = frozenset({"batch", "user_data", "assistants", "fine-tune", "vision", "evals"})
# OpenAI's file expiry policy (``expires_after`` on files.create, ``output_expires_after`` on
# batches.create): ``{"anchor": "created_at", "seconds": N}`` with N from one hour to 30 days;
# files with purpose=batch expire after 30 days unless told otherwise, others never.
EXPIRY_ANCHOR = "created_at"
MIN_EXPIRY_SECONDS = 3_600
MAX_EXPIRY_SECONDS = 2_592_000
BATCH_FILE_EXPIRY_SECONDS = MAX_EXPIRY_SECONDS
LIST_ORDERS = ("asc", "desc")


@dataclass(frozen=True)
class BackendConfig:
    state_dir: Path
    chat_base_url: str | None = None  # OpenAI-compatible chat server; None -> baseline scorer
    chat_api_key: str | None = None  # never logged, never written to state files
    chat_model: str | None = None  # if set, replaces body["model"] when forwarding
    concurrency: int = 8  # parallel requests
    completion_window_seconds: float = 86_400.0
    baseline_delay_seconds: float = 0.0
    max_requests_per_file: int = 50_000
    max_file_bytes: int = 200 * 1024 * 1024
    # Like the provider's per-model queue limit: a batch whose input tokens, added to those of
    # the active batches of the same model, exceed it fails with token_limit_exceeded.
    enqueued_token_limit: int | None = None

    def __repr__(self) -> str:  # keep the key out of logs and tracebacks
        key = "***" if self.chat_api_key else None
        return (
            f"BackendConfig(state_dir={str(self.state_dir)!r}, chat_base_url={self.chat_base_url!r}, "
            f"chat_api_key={key!r}, chat_model={self.chat_model!r}, concurrency={self.concurrency}, "
            f"completion_window_seconds={self.completion_window_seconds}, "
            f"baseline_delay_seconds={self.baseline_delay_seconds}, "
            f"max_requests_per_file={self.max_requests_per_file}, max_file_bytes={self.max_file_bytes}, "
            f"enqueued_token_limit={self.enqueued_token_limit})"
        )

    __str__ = __repr__


class ApiError(CoreError):
    """An HTTP-level error in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type_

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class _Request:
    custom_id: str
    body: dict[str, Any]
    line: int


class _ValidationFailed(Exception):
    def __init__(self, code: str, message: str, *, line: int | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.entry = {"code": code, "message": message, "param": param, "line": line}


@dataclass
class _Batch:
    obj: dict[str, Any]
    seq: int
    deadline: float
    done: dict[str, bool] = field(default_factory=dict)  # custom_id -> answered with 2xx
    completed: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    enqueued_tokens: int = 0  # counted only when an enqueued-token limit is configured
    output_expiry_seconds: int | None = None  # output_expires_after: the result files' lifetime

    @property
    def id(self) -> str:
        return self.obj["id"]

    @property
    def status(self) -> str:
        return self.obj["status"]

    def count(self, ok: bool, body: Any) -> None:
        if ok:
            self.completed += 1
        else:
            self.failed += 1
        usage = body.get("usage") if isinstance(body, dict) else None
        if isinstance(usage, dict):
            self.input_tokens += _int(usage.get("prompt_tokens"))
            self.output_tokens += _int(usage.get("completion_tokens"))
            self.total_tokens += _int(usage.get("total_tokens")) or (
                _int(usage.get("prompt_tokens")) + _int(usage.get("completion_tokens"))
            )

    def snapshot(self) -> dict[str, Any]:
        out = dict(self.obj)
        if out.get("request_counts") is not None:
            out["request_counts"] = {
                "total": out["request_counts"]["total"],
                "completed": self.completed,
                "failed": self.failed,
            }
        if out["status"] not in ("validating", "failed"):
            out["usage"] = {
                "input_tokens": self.input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": self.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.total_tokens,
            }
        return out

    def doc(self) -> dict[str, Any]:
        return {"batch": self.snapshot(), "seq": self.seq, "deadline": self.deadline,
                "output_expiry_seconds": self.output_expiry_seconds}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _now() -> int:
    return int(time.time())


def _derived_file_id(batch_id: str, kind: str) -> str:
    return "file-" + hashlib.sha256(f"{batch_id}:{kind}".encode()).hexdigest()[:24]


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
        self._batches: dict[str, _Batch] = {}
        self._seq = 0
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._runners: dict[str, threading.Thread] = {}
        self._started = False

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
            for doc in self.store.iter_batch_docs():
                try:
                    batch = _Batch(obj=doc["batch"], seq=int(doc["seq"]), deadline=float(doc["deadline"]))
                except (KeyError, TypeError, ValueError):
                    continue
                expiry = doc.get("output_expiry_seconds")
                batch.output_expiry_seconds = expiry if _is_expiry(expiry) else None
                for custom_id, record in self.store.read_results(batch.id).items():
                    ok = 200 <= _int(record.get("status_code")) < 300
                    batch.done[custom_id] = ok
                    batch.count(ok, record.get("body"))
                self._batches[batch.id] = batch
                self._seq = max(self._seq, batch.seq)
            for batch in self._batches.values():
                if batch.status in ACTIVE_STATUSES:
                    self._spawn_runner(batch)
        for meta in list(self.store.iter_file_metas()):
            self._expired(meta)  # files whose time ran out while the backend was stopped go now

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

    # ---- files ---------------------------------------------------------------------------
    def create_file(self, filename: str, purpose: str, data: bytes, *, expires_after: Any = None) -> dict[str, Any]:
        """Store an uploaded file. ``expires_after`` is OpenAI's expiry policy (see
        :func:`parse_expiry`); without one, a purpose=batch file expires after 30 days."""
        if purpose not in FILE_PURPOSES:
            raise ApiError(400, f"'{purpose}' is not one of {sorted(FILE_PURPOSES)} - 'purpose'", param="purpose")
        seconds = parse_expiry(expires_after, "expires_after")
        if seconds is None and purpose == "batch":
            seconds = BATCH_FILE_EXPIRY_SECONDS
        if len(data) > self.config.max_file_bytes:
            raise ApiError(
                400,
                f"File is too large: {len(data)} bytes, the limit is {self.config.max_file_bytes} bytes.",
                param="file",
                code="file_too_large",
            )
        created = _now()
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

    def get_file(self, file_id: str) -> dict[str, Any]:
        meta = self.store.load_file_meta(file_id)
        if meta is None or self._expired(meta):
            raise ApiError(404, f"No such File object: {file_id}", param="id", code="file_not_found")
        return meta

    def _expired(self, meta: dict[str, Any]) -> bool:
        """Whether a file's expiry time has passed; such a file is gone for clients, and its
        data is removed unless an unfinished batch still reads it as its input."""
        expires_at = meta.get("expires_at")
        if not isinstance(expires_at, (int, float)) or isinstance(expires_at, bool) or expires_at > time.time():
            return False
        with self._lock:
            in_use = any(b.obj["input_file_id"] == meta.get("id") and b.status in ACTIVE_STATUSES
                         for b in self._batches.values())
            if not in_use:
                try:
                    self.store.delete_file(meta["id"])
                except (KeyError, UnknownId):
                    pass
        return True

    def delete_file(self, file_id: str) -> dict[str, Any]:
        self.get_file(file_id)
        with self._lock:
            if any(b.obj["input_file_id"] == file_id and b.status in ACTIVE_STATUSES for b in self._batches.values()):
                raise ApiError(400, f"File {file_id} is the input of an unfinished batch.", param="file_id")
            self.store.delete_file(file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    def file_content_path(self, file_id: str) -> Path:
        self.get_file(file_id)
        return self.store.file_data_path(file_id)

    def list_files(self, *, limit: int = 10000, after: str | None = None, purpose: str | None = None,
                   order: str | None = None) -> dict[str, Any]:
        """Files by ``created_at``, newest first unless ``order`` is ``asc``; expired ones are
        left out (and removed)."""
        descending = _descending(order)
        metas = [m for m in self.store.iter_file_metas() if not self._expired(m)]
        metas.sort(key=lambda m: (_int(m.get("created_at")), str(m.get("id", ""))), reverse=descending)
        if purpose:
            metas = [m for m in metas if m.get("purpose") == purpose]
        return _page(metas, limit=limit, after=after, max_limit=10000)

    # ---- batches -------------------------------------------------------------------------
    def create_batch(self, params: Any) -> dict[str, Any]:
        if not isinstance(params, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        input_file_id = params.get("input_file_id")
        endpoint = params.get("endpoint")
        window = params.get("completion_window")
        metadata = params.get("metadata")
        for name, value in (("input_file_id", input_file_id), ("endpoint", endpoint), ("completion_window", window)):
            if not isinstance(value, str) or not value:
                raise ApiError(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
        if endpoint != SUPPORTED_ENDPOINT:
            raise ApiError(
                400,
                f"Invalid value: '{endpoint}'. The local backend supports only '{SUPPORTED_ENDPOINT}'.",
                param="endpoint",
                code="invalid_value",
            )
        if window not in SUPPORTED_WINDOWS:
            raise ApiError(400, f"Invalid value: '{window}'. Supported values are: '24h'.", param="completion_window", code="invalid_value")
        if metadata is not None:
            _check_metadata(metadata)
        output_expiry = parse_expiry(params.get("output_expires_after"), "output_expires_after")
        meta = self.store.load_file_meta(input_file_id)
        if meta is None or self._expired(meta):
            raise ApiError(404, f"No such File object: {input_file_id}", param="input_file_id", code="file_not_found")
        if meta.get("purpose") != "batch":
            raise ApiError(400, f"File {input_file_id} has purpose '{meta.get('purpose')}', expected 'batch'.", param="input_file_id")
        created = time.time()
        obj = {
            "id": "batch_" + secrets.token_hex(16),
            "object": "batch",
            "endpoint": endpoint,
            "errors": None,
            "input_file_id": input_file_id,
            "completion_window": window,
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(created),
            "in_progress_at": None,
            "expires_at": int(created + self.config.completion_window_seconds),
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": metadata,
            "model": None,
            "usage": None,
        }
        with self._lock:
            if not self._started:
                raise ApiError(503, "The local backend is shutting down.", type_="server_error")
            self._seq += 1
            batch = _Batch(obj=obj, seq=self._seq, deadline=created + self.config.completion_window_seconds,
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
            self._set_status(batch, "cancelling", cancelling_at=_now())
            return batch.snapshot()

    def list_batches(self, *, limit: int = 20, after: str | None = None, order: str | None = None) -> dict[str, Any]:
        """Batches newest first, or oldest first with ``order="asc"``."""
        descending = _descending(order)
        with self._lock:
            ordered = sorted(self._batches.values(), key=lambda b: b.seq, reverse=descending)
            objs = [b.snapshot() for b in ordered]
        return _page(objs, limit=limit, after=after, max_limit=100)

    def _get(self, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id", code="batch_not_found")
        return batch

    def _set_status(self, batch: _Batch, status: str, **fields: Any) -> None:
        with self._lock:
            batch.obj["status"] = status
            batch.obj.update(fields)
            self.store.save_batch(batch.doc())
            self._changed.notify_all()

    # ---- processing ----------------------------------------------------------------------
    def _spawn_runner(self, batch: _Batch) -> None:
        thread = threading.Thread(target=self._run, args=(batch,), name=f"local-{batch.id}", daemon=True)
        self._runners[batch.id] = thread
        thread.start()

    def _run(self, batch: _Batch) -> None:
        try:
            self._run_inner(batch)
        except Exception as exc:  # a bug must not leave a batch active forever
            if self._stop.is_set():
                return
            log.exception("local batch %s crashed", batch.id)
            self._set_status(
                batch,
                "failed",
                failed_at=_now(),
                errors={"object": "list", "data": [{"code": "internal_error", "message": f"The local backend failed: {type(exc).__name__}: {exc}", "param": None, "line": None}]},
            )
        finally:
            with self._lock:
                if self._runners.get(batch.id) is threading.current_thread():
                    del self._runners[batch.id]
                self._changed.notify_all()

    def _run_inner(self, batch: _Batch) -> None:
        try:
            requests = self._parse_input(batch)
        except _ValidationFailed as failure:
            self._set_status(batch, "failed", failed_at=_now(), errors={"object": "list", "data": [failure.entry]})
            return
        if self.config.enqueued_token_limit and batch.status == "validating":
            batch.enqueued_tokens = _enqueued_tokens(requests)
            with self._lock:
                model = requests[0].body["model"]
                queued = sum(
                    other.enqueued_tokens
                    for other in self._batches.values()
                    if other is not batch and other.status in ACTIVE_STATUSES and other.obj.get("model") == model
                )
                if queued + batch.enqueued_tokens > self.config.enqueued_token_limit:
                    batch.obj["model"] = model
                    message = (
                        f"Enqueued token limit reached for {model}. Limit: {self.config.enqueued_token_limit:,} "
                        f"enqueued tokens; already enqueued: {queued:,}; this batch: {batch.enqueued_tokens:,}. "
                        "Try again once some in-progress batches have completed."
                    )
                    entry = {"code": "token_limit_exceeded", "message": message, "line": None, "param": None}
                    self._set_status(batch, "failed", failed_at=_now(), errors={"object": "list", "data": [entry]})
                    return
        with self._lock:
            if batch.status == "validating":
                batch.obj["model"] = requests[0].body["model"]
                batch.obj["request_counts"] = {"total": len(requests), "completed": 0, "failed": 0}
                self._set_status(batch, "in_progress", in_progress_at=_now())
            elif batch.status == "cancelling" and batch.obj.get("model") is None:
                batch.obj["model"] = requests[0].body["model"]
                batch.obj["request_counts"] = {"total": len(requests), "completed": 0, "failed": 0}
                self.store.save_batch(batch.doc())
        if batch.status == "in_progress":
            if not self._process(batch, requests):
                return  # stopping: leave the batch resumable
        with self._lock:
            status = batch.status
            if status == "in_progress":
                if len(batch.done) < len(requests):  # left the loop early: the window passed
                    self._finish(batch, requests, "expired")
                    return
                self._set_status(batch, "finalizing", finalizing_at=_now())
                status = "finalizing"
        if status == "finalizing":
            self._finish(batch, requests, "completed")
        elif status == "cancelling":
            self._finish(batch, requests, "cancelled")

    def _parse_input(self, batch: _Batch) -> list[_Request]:
        file_id = batch.obj["input_file_id"]
        try:
            raw = self.store.read_file(file_id)
        except FileNotFoundError:
            raise _ValidationFailed("file_not_found", f"The input file {file_id} no longer exists.", param="input_file_id") from None
        endpoint = batch.obj["endpoint"]
        requests: list[_Request] = []
        seen: set[str] = set()
        model: str | None = None
        for number, line in enumerate(raw.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise _ValidationFailed("invalid_json_line", f"Line {number} is not valid JSON.", line=number) from None
            if not isinstance(item, dict):
                raise _ValidationFailed("invalid_json_line", f"Line {number} is not a JSON object.", line=number)
            custom_id = item.get("custom_id")
            if not isinstance(custom_id, str) or not custom_id:
                raise _ValidationFailed("missing_required_parameter", f"Line {number}: 'custom_id' must be a non-empty string.", line=number, param="custom_id")
            if custom_id in seen:
                raise _ValidationFailed("duplicate_custom_id", f"Line {number}: the custom_id '{custom_id}' is used more than once; custom_ids must be unique within a batch.", line=number, param="custom_id")
            seen.add(custom_id)
            if item.get("method") != "POST":
                raise _ValidationFailed("invalid_method", f"Line {number}: 'method' must be 'POST'.", line=number, param="method")
            if item.get("url") != endpoint:
                raise _ValidationFailed("invalid_url", f"Line {number}: 'url' is {item.get('url')!r} but the batch endpoint is '{endpoint}'.", line=number, param="url")
            body = item.get("body")
            if not isinstance(body, dict):
                raise _ValidationFailed("missing_required_parameter", f"Line {number}: 'body' must be a JSON object.", line=number, param="body")
            line_model = body.get("model")
            if not isinstance(line_model, str) or not line_model:
                raise _ValidationFailed("missing_required_parameter", f"Line {number}: 'body.model' is missing.", line=number, param="body.model")
            if model is None:
                model = line_model
            elif line_model != model:
                raise _ValidationFailed("mismatched_model", f"Line {number}: model '{line_model}' differs from '{model}' used earlier; a batch file must use one model.", line=number, param="body.model")
            requests.append(_Request(custom_id, body, number))
            if len(requests) > self.config.max_requests_per_file:
                raise _ValidationFailed("too_many_requests", f"The input file has more than {self.config.max_requests_per_file} requests.", line=number)
        if not requests:
            raise _ValidationFailed("empty_file", "The input file contains no requests.")
        return requests

    def _process(self, batch: _Batch, requests: list[_Request]) -> bool:
        """Answer the unanswered requests. Returns False when interrupted by stop()."""
        pending = iter([r for r in requests if r.custom_id not in batch.done])
        inflight: dict[Future[Answer], _Request] = {}
        limit = max(1, self.config.concurrency)
        results = ResultsLog(self.store.results_path(batch.id))
        stop_deadline: float | None = None
        try:
            while True:
                halt = self._stop.is_set() or batch.status != "in_progress" or time.time() >= batch.deadline
                while not halt and len(inflight) < limit:
                    request = next(pending, None)
                    if request is None:
                        break
                    assert self._pool is not None and self._responder is not None
                    try:
                        inflight[self._pool.submit(self._responder, request.body)] = request
                    except RuntimeError:  # pool shut down
                        return False
                if not inflight:
                    break
                if self._stop.is_set():
                    stop_deadline = stop_deadline or time.monotonic() + self.stop_grace_seconds
                    if time.monotonic() > stop_deadline:
                        return False
                done, _ = wait(list(inflight), timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    request = inflight.pop(future)
                    answer = _safe_result(future)
                    self._record(batch, results, request, answer)
            return not self._stop.is_set()
        finally:
            results.close()

    def _record(self, batch: _Batch, results: ResultsLog, request: _Request, answer: Answer) -> None:
        record = {
            "id": "batch_req_" + secrets.token_hex(16),
            "custom_id": request.custom_id,
            "status_code": answer.status_code,
            "request_id": "req_" + secrets.token_hex(16),
            "body": answer.body,
        }
        with self._lock:
            if request.custom_id in batch.done:
                return
            results.append(record)
            batch.done[request.custom_id] = answer.ok
            batch.count(answer.ok, answer.body)
            self._changed.notify_all()

    def _finish(self, batch: _Batch, requests: list[_Request], final: str) -> None:
        records = self.store.read_results(batch.id)
        unrun_code = {"cancelled": "batch_cancelled", "expired": "batch_expired"}.get(final)
        output: list[bytes] = []
        errors: list[bytes] = []
        for request in requests:
            record = records.get(request.custom_id)
            if record is None:
                if unrun_code is None:  # pragma: no cover - completed means every request ran
                    unrun_code = "batch_incomplete"
                reason = {
                    "batch_cancelled": "This request was not run because the batch was cancelled.",
                    "batch_expired": "This request could not be executed before the completion window expired.",
                }.get(unrun_code, "This request was not run.")
                line = {
                    "id": "batch_req_" + hashlib.sha256(f"{batch.id}:{request.custom_id}".encode()).hexdigest()[:32],
                    "custom_id": request.custom_id,
                    "response": None,
                    "error": {"code": unrun_code, "message": reason},
                }
                errors.append(orjson.dumps(line))
                continue
            line = {
                "id": record["id"],
                "custom_id": request.custom_id,
                "response": {
                    "status_code": record["status_code"],
                    "request_id": record["request_id"],
                    "body": record["body"],
                },
                "error": None,
            }
            (output if 200 <= _int(record["status_code"]) < 300 else errors).append(orjson.dumps(line))
        output_id = self._write_result_file(batch.id, "output", output, batch.output_expiry_seconds)
        error_id = self._write_result_file(batch.id, "error", errors, batch.output_expiry_seconds)
        with self._lock:
            if final == "completed" and batch.status == "cancelling":
                final = "cancelled"  # cancel arrived while finalizing
            stamp = {"completed": "completed_at", "cancelled": "cancelled_at", "expired": "expired_at"}[final]
            self._set_status(batch, final, output_file_id=output_id, error_file_id=error_id, **{stamp: _now()})

    def _write_result_file(self, batch_id: str, kind: str, lines: list[bytes], expiry_seconds: int | None = None) -> str | None:
        if not lines:
            return None
        data = b"\n".join(lines) + b"\n"
        file_id = _derived_file_id(batch_id, kind)
        created = _now()
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": created,
            "filename": f"{batch_id}_{kind}.jsonl",
            "purpose": "batch_output",
            "status": "processed",
            "status_details": None,
            # output_expires_after is anchored at the file's own creation, not the batch's
            "expires_at": None if expiry_seconds is None else created + expiry_seconds,
        }
        self.store.save_file(meta, data)
        return file_id


def _enqueued_tokens(requests: list[_Request]) -> int:
    """Input tokens of a batch as the provider counts them for its queue limit: the same
    formula as the job estimate (messages, their formatting and the structured-output
    schema), so a job planned under a limit is never refused by our own count."""
    from core.tokens import chat_prompt_tokens

    total = 0
    for request in requests:
        body = request.body
        contents = [m.get("content") for m in body.get("messages") or [] if isinstance(m, dict)]
        total += chat_prompt_tokens([c if isinstance(c, str) else "" for c in contents],
                                    schema_json=_schema_json(body), model=body["model"])
    return total


def _schema_json(body: dict[str, Any]) -> str:
    fmt = body.get("response_format")
    schema = fmt.get("json_schema", {}).get("schema") if isinstance(fmt, dict) else None
    return orjson.dumps(schema).decode() if isinstance(schema, dict) else ""


def _safe_result(future: Future[Answer]) -> Answer:
    try:
        answer = future.result()
    except Exception as exc:
        log.exception("responder failed")
        return Answer(500, error_body(f"The local responder failed: {type(exc).__name__}: {exc}", code="responder_error"))
    if not isinstance(answer, Answer):
        return Answer(500, error_body("The local responder returned no answer.", code="responder_error"))
    return answer


def _check_metadata(metadata: Any) -> None:
    if not isinstance(metadata, dict):
        raise ApiError(400, "'metadata' must be an object of string keys and string values.", param="metadata")
    if len(metadata) > 16:
        raise ApiError(400, "'metadata' can have at most 16 keys.", param="metadata")
    for key, value in metadata.items():
        if not isinstance(key, str) or len(key) > 64:
            raise ApiError(400, "Metadata keys must be strings of at most 64 characters.", param="metadata")
        if not isinstance(value, str) or len(value) > 512:
            raise ApiError(400, f"Metadata value of '{key}' must be a string of at most 512 characters.", param="metadata")


def _is_expiry(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)
            and MIN_EXPIRY_SECONDS <= value <= MAX_EXPIRY_SECONDS)


def parse_expiry(value: Any, param: str) -> int | None:
    """The lifetime in seconds that an OpenAI expiry policy (``{"anchor": "created_at",
    "seconds": N}``, N from 3600 to 2592000) asks for; None when no policy is given. A
    malformed policy is a 400 naming the parameter, as OpenAI answers."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ApiError(400, f"Invalid type for '{param}': expected an object with 'anchor' and 'seconds'.",
                       param=param, code="invalid_type")
    anchor = value.get("anchor")
    if anchor != EXPIRY_ANCHOR:
        raise ApiError(400, f"Invalid value for '{param}.anchor': {str(anchor)[:40]!r}. Supported values are: "
                       f"'{EXPIRY_ANCHOR}'.", param=f"{param}.anchor", code="invalid_value")
    seconds = value.get("seconds")
    if isinstance(seconds, str) and seconds.strip().isdigit():  # a multipart form field is text
        seconds = int(seconds.strip())
    if not _is_expiry(seconds):
        raise ApiError(400, f"Invalid value for '{param}.seconds': must be an integer between "
                       f"{MIN_EXPIRY_SECONDS} (1 hour) and {MAX_EXPIRY_SECONDS} (30 days).",
                       param=f"{param}.seconds", code="invalid_value")
    return seconds


def _descending(order: str | None) -> bool:
    """``order`` of a list request: ``desc`` (the default, newest first) or ``asc``."""
    if order in (None, ""):
        return True
    if order not in LIST_ORDERS:
        raise ApiError(400, f"Invalid value for 'order': {str(order)[:40]!r}. Supported values are: 'asc' and 'desc'.",
                       param="order", code="invalid_value")
    return order == "desc"


def _page(objs: list[dict[str, Any]], *, limit: int, after: str | None, max_limit: int) -> dict[str, Any]:
    if not 1 <= limit <= max_limit:
        raise ApiError(400, f"Invalid 'limit': must be between 1 and {max_limit}.", param="limit", code="invalid_value")
    if after:
        ids = [o["id"] for o in objs]
        if after not in ids:
            raise ApiError(400, f"Invalid 'after': no object with id '{after}'.", param="after", code="invalid_value")
        objs = objs[ids.index(after) + 1 :]
    data = objs[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(objs) > limit,
    }


ResponderFactory = Callable[[BackendConfig], Responder]
