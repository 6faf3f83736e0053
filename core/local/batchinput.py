"""Reading a batch's input file: every line checked as OpenAI checks it (one JSON object per
line, unique ``custom_id``, ``POST`` to the batch endpoint, one model), and the input tokens
the batch adds to its model's queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .batchstate import BatchState
from .store import Store


@dataclass(frozen=True)
class BatchRequest:
    custom_id: str
    body: dict[str, Any]
    line: int


class ValidationFailed(Exception):
    """The input file breaks a rule; ``entry`` is the Batch object's error for it."""

    def __init__(self, code: str, message: str, *, line: int | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.entry = {"code": code, "message": message, "param": param, "line": line}


def parse_input(store: Store, batch: BatchState, *, max_requests: int) -> list[BatchRequest]:
    """The requests of the batch's input file, or :class:`ValidationFailed` for the first
    line that breaks a rule."""
    file_id = batch.obj["input_file_id"]
    try:
        raw = store.read_file(file_id)
    except FileNotFoundError:
        raise ValidationFailed("file_not_found", f"The input file {file_id} no longer exists.", param="input_file_id") from None
    endpoint = batch.obj["endpoint"]
    requests: list[BatchRequest] = []
    seen: set[str] = set()
    model: str | None = None
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise ValidationFailed("invalid_json_line", f"Line {number} is not valid JSON.", line=number) from None
        if not isinstance(item, dict):
            raise ValidationFailed("invalid_json_line", f"Line {number} is not a JSON object.", line=number)
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            raise ValidationFailed("missing_required_parameter", f"Line {number}: 'custom_id' must be a non-empty string.", line=number, param="custom_id")
        if custom_id in seen:
            raise ValidationFailed("duplicate_custom_id", f"Line {number}: the custom_id '{custom_id}' is used more than once; custom_ids must be unique within a batch.", line=number, param="custom_id")
        seen.add(custom_id)
        if item.get("method") != "POST":
            raise ValidationFailed("invalid_method", f"Line {number}: 'method' must be 'POST'.", line=number, param="method")
        if item.get("url") != endpoint:
            raise ValidationFailed("invalid_url", f"Line {number}: 'url' is {item.get('url')!r} but the batch endpoint is '{endpoint}'.", line=number, param="url")
        body = item.get("body")
        if not isinstance(body, dict):
            raise ValidationFailed("missing_required_parameter", f"Line {number}: 'body' must be a JSON object.", line=number, param="body")
        line_model = body.get("model")
        if not isinstance(line_model, str) or not line_model:
            raise ValidationFailed("missing_required_parameter", f"Line {number}: 'body.model' is missing.", line=number, param="body.model")
        if model is None:
            model = line_model
        elif line_model != model:
            raise ValidationFailed("mismatched_model", f"Line {number}: model '{line_model}' differs from '{model}' used earlier; a batch file must use one model.", line=number, param="body.model")
        requests.append(BatchRequest(custom_id, body, number))
        if len(requests) > max_requests:
            raise ValidationFailed("too_many_requests", f"The input file has more than {max_requests} requests.", line=number)
    if not requests:
        raise ValidationFailed("empty_file", "The input file contains no requests.")
    return requests


def enqueued_tokens(requests: list[BatchRequest]) -> int:
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
