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


class FakeChatServer(ThreadingHTTPServer):
    """Start with ``with FakeChatServer() as server:``; ``server.base_url`` ends in ``/v1``."""

    daemon_threads = True
    # socketserver's default listen backlog of 5 resets connections when a client opens
    # dozens at once (a forwarding backend with concurrency 32 does).
    request_queue_size = 256

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
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
        schema = body.get("response_format", {}).get("json_schema", {}).get("name", "")
        status, payload = answer_for(text, schema)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
