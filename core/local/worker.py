"""The worker that takes one batch of the local backend through its life: check its input,
answer its requests on the engine's pool, then write its output and error files.

Every answer is appended to the batch's results log before it is counted, so a stop or a
crash followed by a new engine on the same state directory resumes where it left off (see
:mod:`core.local.resume`). These functions are the engine's own (they share its lock, stop
event, pool and responder); :meth:`core.local.engine.Engine._spawn_runner` runs :func:`run`
on a thread per batch.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING

from .batchinput import BatchRequest, ValidationFailed, enqueued_tokens, parse_input
from .batchstate import ACTIVE_STATUSES, BatchState, now_seconds
from .output import result_lines, write_result_file
from .responders import Answer, error_body
from .store import ResultsLog

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("core.local.engine")  # the logger these messages always had


def run(engine: Engine, batch: BatchState) -> None:
    """Take ``batch`` as far as it goes; a bug fails the batch rather than leave it active."""
    try:
        _run_inner(engine, batch)
    except Exception as exc:  # a bug must not leave a batch active forever
        if engine._stop.is_set():
            return
        log.exception("local batch %s crashed", batch.id)
        engine._set_status(
            batch,
            "failed",
            failed_at=now_seconds(),
            errors={"object": "list", "data": [{"code": "internal_error", "message": f"The local backend failed: {type(exc).__name__}: {exc}", "param": None, "line": None}]},
        )
    finally:
        with engine._lock:
            if engine._runners.get(batch.id) is threading.current_thread():
                del engine._runners[batch.id]
            engine._changed.notify_all()


def _run_inner(engine: Engine, batch: BatchState) -> None:
    config = engine.config
    try:
        requests = parse_input(engine.store, batch, max_requests=config.max_requests_per_file)
    except ValidationFailed as failure:
        engine._set_status(batch, "failed", failed_at=now_seconds(), errors={"object": "list", "data": [failure.entry]})
        return
    if config.enqueued_token_limit and batch.status == "validating":
        batch.enqueued_tokens = enqueued_tokens(requests)
        with engine._lock:
            model = requests[0].body["model"]
            queued = sum(
                other.enqueued_tokens
                for other in engine._batches.values()
                if other is not batch and other.status in ACTIVE_STATUSES and other.obj.get("model") == model
            )
            if queued + batch.enqueued_tokens > config.enqueued_token_limit:
                batch.obj["model"] = model
                message = (
                    f"Enqueued token limit reached for {model}. Limit: {config.enqueued_token_limit:,} "
                    f"enqueued tokens; already enqueued: {queued:,}; this batch: {batch.enqueued_tokens:,}. "
                    "Try again once some in-progress batches have completed."
                )
                entry = {"code": "token_limit_exceeded", "message": message, "line": None, "param": None}
                engine._set_status(batch, "failed", failed_at=now_seconds(), errors={"object": "list", "data": [entry]})
                return
    with engine._lock:
        if batch.status == "validating":
            batch.obj["model"] = requests[0].body["model"]
            batch.obj["request_counts"] = {"total": len(requests), "completed": 0, "failed": 0}
            engine._set_status(batch, "in_progress", in_progress_at=now_seconds())
        elif batch.status == "cancelling" and batch.obj.get("model") is None:
            batch.obj["model"] = requests[0].body["model"]
            batch.obj["request_counts"] = {"total": len(requests), "completed": 0, "failed": 0}
            engine.store.save_batch(batch.doc())
    if batch.status == "in_progress":
        if not _process(engine, batch, requests):
            return  # stopping: leave the batch resumable
    with engine._lock:
        status = batch.status
        if status == "in_progress":
            if len(batch.done) < len(requests):  # left the loop early: the window passed
                _finish(engine, batch, requests, "expired")
                return
            engine._set_status(batch, "finalizing", finalizing_at=now_seconds())
            status = "finalizing"
    if status == "finalizing":
        _finish(engine, batch, requests, "completed")
    elif status == "cancelling":
        _finish(engine, batch, requests, "cancelled")


def _process(engine: Engine, batch: BatchState, requests: list[BatchRequest]) -> bool:
    """Answer the unanswered requests. Returns False when interrupted by stop()."""
    pending = iter([r for r in requests if r.custom_id not in batch.done])
    inflight: dict[Future[Answer], BatchRequest] = {}
    limit = max(1, engine.config.concurrency)
    results = ResultsLog(engine.store.results_path(batch.id))
    stop_deadline: float | None = None
    try:
        while True:
            halt = engine._stop.is_set() or batch.status != "in_progress" or time.time() >= batch.deadline
            while not halt and len(inflight) < limit:
                request = next(pending, None)
                if request is None:
                    break
                assert engine._pool is not None and engine._responder is not None
                try:
                    inflight[engine._pool.submit(engine._responder, request.body)] = request
                except RuntimeError:  # pool shut down
                    return False
            if not inflight:
                break
            if engine._stop.is_set():
                stop_deadline = stop_deadline or time.monotonic() + engine.stop_grace_seconds
                if time.monotonic() > stop_deadline:
                    return False
            done, _ = wait(list(inflight), timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                request = inflight.pop(future)
                answer = _safe_result(future)
                _record(engine, batch, results, request, answer)
        return not engine._stop.is_set()
    finally:
        results.close()


def _record(engine: Engine, batch: BatchState, results: ResultsLog, request: BatchRequest, answer: Answer) -> None:
    record = {
        "id": "batch_req_" + secrets.token_hex(16),
        "custom_id": request.custom_id,
        "status_code": answer.status_code,
        "request_id": "req_" + secrets.token_hex(16),
        "body": answer.body,
    }
    with engine._lock:
        if request.custom_id in batch.done:
            return
        results.append(record)  # logged before it is counted: a crash never counts an unlogged answer
        batch.done[request.custom_id] = answer.ok
        batch.count(answer.ok, answer.body)
        engine._changed.notify_all()


def _finish(engine: Engine, batch: BatchState, requests: list[BatchRequest], final: str) -> None:
    output, errors = result_lines(batch.id, requests, engine.store.read_results(batch.id), final)
    output_id = write_result_file(engine.store, batch.id, "output", output, batch.output_expiry_seconds)
    error_id = write_result_file(engine.store, batch.id, "error", errors, batch.output_expiry_seconds)
    with engine._lock:
        if final == "completed" and batch.status == "cancelling":
            final = "cancelled"  # cancel arrived while finalizing
        stamp = {"completed": "completed_at", "cancelled": "cancelled_at", "expired": "expired_at"}[final]
        engine._set_status(batch, final, output_file_id=output_id, error_file_id=error_id, **{stamp: now_seconds()})


def _safe_result(future: Future[Answer]) -> Answer:
    try:
        answer = future.result()
    except Exception as exc:
        log.exception("responder failed")
        return Answer(500, error_body(f"The local responder failed: {type(exc).__name__}: {exc}", code="responder_error"))
    if not isinstance(answer, Answer):
        return Answer(500, error_body("The local responder returned no answer.", code="responder_error"))
    return answer
