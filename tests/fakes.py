"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

It answers by looking for a marker word in the user message, so a test decides per row what
the "model" does: a valid answer, a refusal, a truncated answer, invalid JSON, an answer that
breaks the schema, or an HTTP error.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def answer_for(text: str, schema_name: str) -> tuple[int, dict[str, Any]]:
    """(status code, body) for one chat request, chosen by markers in the paragraph."""
    if "FAIL500" in text:
        return 500, {"error": {"message": "scripted server error", "type": "server_error", "code": None}}
    content: str | None
    refusal = None
    finish = "stop"
    if "REFUSE" in text:
        content, refusal = None, "I can't help with that."
    elif "TRUNCATE" in text:
        content, finish = '{"Score": 1, "Explan', "length"
    elif "BADJSON" in text:
        content = "Score: 1 because it invests"
    elif "SCHEMA" in text:
        content = json.dumps({"Score": 2, "Explanation": "out of range"})
    elif schema_name == "assetization_features_scoring":
        content = json.dumps(
            {"Explanation": "fake", "IntrinsicValueScore": 1, "CashFlowScore": 0, "OwnershipControlScore": 1}
        )
    else:
        content = json.dumps({"Score": 1 if "SCORE1" in text else 0, "Explanation": "fake answer"})
    return 200, {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fake-chat-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


def schema_name_of(response_format: Any) -> str:
    """The task's schema name from a ``json_schema`` response format, or, for the
    ``json_object`` + ``schema`` form (which carries no name), from the schema's fields."""
    if not isinstance(response_format, dict):
        return ""
    if response_format.get("type") == "json_object":
        fields = (response_format.get("schema") or {}).get("properties") or {}
        return "assetization_features_scoring" if "IntrinsicValueScore" in fields else "investment_activity_classification"
    return (response_format.get("json_schema") or {}).get("name", "")


def rejection_of_json_schema() -> dict[str, Any]:
    """What a FastAPI server whose response_format type is ``Literal["text", "json_object"]``
    (llama-cpp-python's) answers, with HTTP 422, to ``{"type": "json_schema", ...}``."""
    return {"detail": [{"type": "literal_error", "loc": ["body", "response_format", "type"],
                        "msg": "Input should be 'text' or 'json_object'", "input": "json_schema",
                        "ctx": {"expected": "'text' or 'json_object'"}}]}


class FakeChatServer(ThreadingHTTPServer):
    """Start with ``with FakeChatServer() as server:``; ``server.base_url`` ends in ``/v1``.

    With ``json_schema_support=False`` it behaves like llama-cpp-python's server: a
    ``json_schema`` response format is refused with HTTP 422, ``json_object`` with a
    ``schema`` is answered.
    """

    daemon_threads = True
    # socketserver's default listen backlog of 5 resets connections when a client opens
    # dozens at once (a forwarding backend with concurrency 32 does).
    request_queue_size = 256

    def __init__(self, *, latency: float = 0.0, json_schema_support: bool = True) -> None:
        self.latency = latency
        self.json_schema_support = json_schema_support
        self.requests: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> "FakeChatServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: FakeChatServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body then
    # waits for the client's delayed ACK (about 40 ms) on every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        with self.server._lock:
            self.server.requests.append(body)
            self.server.headers_seen.append(dict(self.headers))
        if self.server.latency:
            time.sleep(self.server.latency)
        text = body["messages"][-1]["content"]
        response_format = body.get("response_format")
        if not self.server.json_schema_support and (response_format or {}).get("type") == "json_schema":
            status, payload = 422, rejection_of_json_schema()
        else:
            status, payload = answer_for(text, schema_name_of(response_format))
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class HostileBatchServer(ThreadingHTTPServer):
    """An OpenAI-shaped Files + Batches server on 127.0.0.1 that answers with the ids a test
    chooses (``batch_id``, ``output_file_id``), e.g. ones holding ``../``: a broken or hostile
    provider. Batches are reported completed at once; file content is ``output``."""

    daemon_threads = True

    def __init__(self, *, batch_id: str = "batch_ok", output_file_id: str | None = "file-out",
                 output: bytes = b"") -> None:
        self.batch_id = batch_id
        self.output_file_id = output_file_id
        self.output = output
        self.paths_seen: list[str] = []
        super().__init__(("127.0.0.1", 0), _HostileHandler)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def batch(self, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        now = int(time.time())
        return {
            "id": self.batch_id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": None,
            "input_file_id": "file-in", "completion_window": "24h", "status": "completed",
            "output_file_id": self.output_file_id, "error_file_id": None, "created_at": now,
            "in_progress_at": now, "expires_at": now + 86400, "finalizing_at": now, "completed_at": now,
            "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 1, "completed": 1, "failed": 0}, "metadata": metadata or {},
        }

    def __enter__(self) -> "HostileBatchServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _HostileHandler(BaseHTTPRequestHandler):
    server: HostileBatchServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
        pass

    def _reply(self, payload: Any, *, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))

    def do_POST(self) -> None:  # noqa: N802
        self.server.paths_seen.append(self.path)
        body = self._body()
        if self.path.endswith("/files"):
            self._reply({"id": "file-in", "object": "file", "bytes": len(body), "created_at": int(time.time()),
                         "filename": "requests.jsonl", "purpose": "batch", "status": "processed"})
        else:
            metadata = json.loads(body or b"{}").get("metadata") if self.path.endswith("/batches") else None
            self._reply(self.server.batch(metadata))

    def do_GET(self) -> None:  # noqa: N802
        self.server.paths_seen.append(self.path)
        if "/content" in self.path:
            self._reply(None, raw=self.server.output)
        elif self.path.split("?")[0].endswith("/batches") or self.path.split("?")[0].endswith("/files"):
            self._reply({"object": "list", "data": [], "has_more": False, "first_id": None, "last_id": None})
        else:
            self._reply(self.server.batch())
