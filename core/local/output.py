"""A finished batch's output and error files, built from its results log.

Each request of the input appears once: answered ones with their response (2xx in the
output file, others in the error file), unrun ones (cancelled, expired) in the error file
with the reason. The files' ids derive from the batch id, so writing them again after a
crash replaces them rather than adding copies.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from .batchinput import BatchRequest
from .batchstate import as_int, derived_file_id, now_seconds
from .store import Store


def result_lines(batch_id: str, requests: list[BatchRequest], records: dict[str, dict[str, Any]],
                 final: str) -> tuple[list[bytes], list[bytes]]:
    """(output lines, error lines) of a batch ending as ``final``, in input order."""
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
                "id": "batch_req_" + hashlib.sha256(f"{batch_id}:{request.custom_id}".encode()).hexdigest()[:32],
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
        (output if 200 <= as_int(record["status_code"]) < 300 else errors).append(orjson.dumps(line))
    return output, errors


def write_result_file(store: Store, batch_id: str, kind: str, lines: list[bytes],
                      expiry_seconds: int | None = None) -> str | None:
    """Save the batch's ``kind`` ("output" or "error") file; its id, or None when empty."""
    if not lines:
        return None
    data = b"\n".join(lines) + b"\n"
    file_id = derived_file_id(batch_id, kind)
    created = now_seconds()
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
    store.save_file(meta, data)
    return file_id
