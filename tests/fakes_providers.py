"""Loopback fakes of Anthropic's Message Batches API and of Azure OpenAI's Files + Batches API,
following each one's documented request and response shapes, for tests (127.0.0.1 only).

Both answer every request with the transparent rules baseline (core.local.baseline), so
results are deterministic, and both refuse what the real API refuses: a wrong key, a missing
version header or query, malformed custom_ids, requests without a model or max_tokens, input
lines for the wrong URL or deployment. Markers in a paragraph script a row's fate:

- ``SLOW``: the row never finishes on its own; it ends ``expired`` when the test expires the
  batch (``server.expire_slow = True``) or ``canceled`` when the batch is cancelled;
- ``ERRORED``: the request fails (Anthropic: an ``errored`` result; Azure: HTTP 400 line);
- ``MAXTOK``: the answer stops at ``max_tokens`` (truncated).

Anthropic answers carry a thinking block before the JSON text, as adaptive-thinking models do.

``fail_next`` holds HTTP statuses (401, 429, 500 ...) to answer the next calls with, in order.
A batch finishes after ``polls_to_finish`` retrievals, so progress is seen in between.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import secrets
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from core.local.baseline import score_assetization_features, score_investment_activity

ANTHROPIC_KEY = "test-anthropic-key-placeholder"
AZURE_KEY = "test-azure-key-placeholder"
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def baseline_answer(schema_name: str, text: str) -> dict[str, Any]:
    """The rules baseline's answer for a task (by its schema/tool name)."""
    if schema_name == "assetization_features_scoring":
        return score_assetization_features(text)
    return score_investment_activity(text)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat().replace("+00:00", "Z")


class _Fake(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, polls_to_finish: int = 2) -> None:
        self.polls_to_finish = polls_to_finish
        self.expire_slow = False
        self.fail_next: list[int] = []
        self.paths_seen: list[str] = []
        self.headers_seen: list[dict[str, str]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self):  # noqa: ANN204 - the subclass
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
        pass

    def _send(self, status: int, payload: Any = None, *, raw: bytes | None = None,
              content_type: str = "application/json") -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("retry-after", "0")
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))

    def _record(self) -> int | None:
        server: _Fake = self.server  # type: ignore[assignment]
        with server.lock:
            server.paths_seen.append(f"{self.command} {self.path}")
            server.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
            return server.fail_next.pop(0) if server.fail_next else None


# ------------------------------------------------------------------------------------------------
# Anthropic Message Batches
# ------------------------------------------------------------------------------------------------
class FakeAnthropicServer(_Fake):
    """``with FakeAnthropicServer() as server:``; point the SDK's ``base_url`` at ``server.base_url``."""

    def __init__(self, *, api_key: str = ANTHROPIC_KEY, polls_to_finish: int = 2) -> None:
        self.api_key = api_key
        self.batches: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        super().__init__(_AnthropicHandler, polls_to_finish=polls_to_finish)

    @property
    def base_url(self) -> str:
        return self.root_url

    # the batch object as the API documents it
    def batch_object(self, batch: dict[str, Any]) -> dict[str, Any]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if batch["processing_status"] == "ended":
            for result in batch["results"].values():
                counts[result["type"]] += 1
        else:
            counts["processing"] = len(batch["requests"])
        ended = batch["processing_status"] == "ended"
        return {
            "id": batch["id"], "type": "message_batch", "processing_status": batch["processing_status"],
            "request_counts": counts, "ended_at": _iso(batch["ended_at"]), "created_at": _iso(batch["created_at"]),
            "expires_at": _iso(batch["created_at"] + 86400), "archived_at": None,
            "cancel_initiated_at": _iso(batch["cancel_initiated_at"]),
            "results_url": f"{self.base_url}/v1/messages/batches/{batch['id']}/results" if ended else None,
        }

    def advance(self, batch: dict[str, Any]) -> None:
        """One retrieval: the batch ends after ``polls_to_finish`` of them, unless SLOW rows hold
        it (then it ends when expired or cancelled)."""
        if batch["processing_status"] == "ended":
            return
        batch["polls"] += 1
        slow = [r for r in batch["requests"] if "SLOW" in _user_text(r["params"])]
        cancelling = batch["processing_status"] == "canceling"
        if not cancelling and (batch["polls"] < self.polls_to_finish or (slow and not self.expire_slow)):
            return
        for request in batch["requests"]:
            text = _user_text(request["params"])
            if "SLOW" in text:
                batch["results"][request["custom_id"]] = {"type": "canceled" if cancelling else "expired"}
            elif "ERRORED" in text:
                batch["results"][request["custom_id"]] = {"type": "errored", "error": {
                    "type": "error", "error": {"type": "invalid_request_error",
                                               "message": "scripted: this request was refused"}}}
            else:
                batch["results"][request["custom_id"]] = {"type": "succeeded",
                                                          "message": _anthropic_message(request["params"])}
        batch["processing_status"] = "ended"
        batch["ended_at"] = time.time()


def _user_text(params: dict[str, Any]) -> str:
    content = params["messages"][-1]["content"]
    if isinstance(content, list):
        return " ".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return str(content)


def _anthropic_message(params: dict[str, Any]) -> dict[str, Any]:
    """A Message answering with JSON text (structured output), the way the API documents it."""
    text = _user_text(params)
    schema = ((params.get("output_config") or {}).get("format") or {}).get("schema") or {}
    task = "assetization_features_scoring" if "CashFlowScore" in schema.get("properties", {}) else ""
    answer_text, stop = json.dumps(baseline_answer(task, text)), "end_turn"
    if "MAXTOK" in text:
        answer_text, stop = answer_text[:10], "max_tokens"
    content = [{"type": "thinking", "thinking": "scripted reasoning", "signature": "sig"},
               {"type": "text", "text": answer_text}]
    return {"id": f"msg_{secrets.token_hex(8)}", "type": "message", "role": "assistant", "model": params["model"],
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 120, "output_tokens": 30, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0}}


def _anthropic_problem(request: Any, seen: set[str]) -> str | None:
    """Why the API would refuse one request of a create call, or None."""
    if not isinstance(request, dict) or set(request) != {"custom_id", "params"}:
        return "each request has exactly custom_id and params"
    custom_id, params = request["custom_id"], request["params"]
    if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
        return f"custom_id {str(custom_id)[:80]!r} does not match ^[a-zA-Z0-9_-]{{1,64}}$"
    if custom_id in seen:
        return f"custom_id {custom_id!r} is not unique in the batch"
    seen.add(custom_id)
    if not isinstance(params, dict) or not isinstance(params.get("model"), str):
        return "params.model: Field required"
    if not isinstance(params.get("max_tokens"), int) or params["max_tokens"] < 1:
        return "params.max_tokens: must be an integer of at least 1"
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages or any(
            not isinstance(m, dict) or m.get("role") not in ("user", "assistant") or "content" not in m for m in messages):
        return "params.messages: a list of user/assistant messages is required (the system prompt goes in params.system)"
    if "system" in params and not isinstance(params["system"], (str, list)):
        return "params.system: must be a string or a list of text blocks"
    tools = params.get("tools") or []
    names = set()
    for tool in tools:
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or \
                not isinstance(tool.get("input_schema"), dict) or tool["input_schema"].get("type") != "object":
            return "params.tools: each tool needs a name and an input_schema of type object"
        names.add(tool["name"])
    choice = params.get("tool_choice")
    if choice is not None and (choice.get("type") != "tool" or choice.get("name") not in names):
        return "params.tool_choice: names a tool that is not in params.tools"
    output = params.get("output_config")
    if output is not None:
        fmt = output.get("format") if isinstance(output, dict) else None
        if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or \
                not isinstance(fmt.get("schema"), dict) or fmt["schema"].get("type") != "object":
            return "params.output_config.format: a json_schema format with an object schema is required"
        if fmt["schema"].get("additionalProperties") is not False:
            return "params.output_config.format.schema: objects need additionalProperties: false"
    extra = set(params) - {"model", "max_tokens", "messages", "system", "tools", "tool_choice", "output_config",
                           "temperature", "metadata", "stop_sequences", "top_p", "top_k"}
    if extra:
        return f"params: unexpected fields {sorted(extra)}"
    return None


class _AnthropicHandler(_Handler):
    server: FakeAnthropicServer

    def _error(self, status: int, kind: str, message: str) -> None:
        self._send(status, {"type": "error", "error": {"type": kind, "message": message},
                            "request_id": f"req_{secrets.token_hex(6)}"})

    def _gate(self) -> bool:
        forced = self._record()
        if forced is not None:
            kinds = {401: "authentication_error", 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
            self._error(forced, kinds.get(forced, "api_error"), f"scripted HTTP {forced}")
            return False
        # the API takes the key as x-api-key (its reference's curl examples) or as a bearer
        # token (what the Python SDK 2.x sends)
        bearer = self.headers.get("authorization", "")
        key = self.headers.get("x-api-key") or (bearer[len("Bearer "):] if bearer.startswith("Bearer ") else None)
        if key != self.server.api_key:
            self._error(401, "authentication_error", "invalid x-api-key")
            return False
        if not self.headers.get("anthropic-version"):
            self._error(400, "invalid_request_error", "anthropic-version: header is required")
            return False
        return True

    def _batch(self, batch_id: str) -> dict[str, Any] | None:
        batch = self.server.batches.get(batch_id)
        if batch is None:
            self._error(404, "not_found_error", f"message batch {batch_id} not found")
        return batch

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        if not self._gate():
            return
        path = urlsplit(self.path).path
        if path == "/v1/messages/batches":
            try:
                payload = json.loads(body)
            except json.JSONDecodeError:
                return self._error(400, "invalid_request_error", "the body is not JSON")
            requests = payload.get("requests") if isinstance(payload, dict) else None
            if not isinstance(requests, list) or not 1 <= len(requests) <= 100_000:
                return self._error(400, "invalid_request_error", "requests: 1 to 100,000 requests are required")
            if len(body) > 256 * 1024 * 1024:
                return self._error(413, "request_too_large", "the batch is over 256 MB")
            seen: set[str] = set()
            for number, request in enumerate(requests):
                problem = _anthropic_problem(request, seen)
                if problem:
                    return self._error(400, "invalid_request_error", f"requests.{number}: {problem}")
            with self.server.lock:
                batch_id = f"msgbatch_{secrets.token_hex(12)}"
                batch = {"id": batch_id, "requests": requests, "processing_status": "in_progress",
                         "created_at": time.time(), "ended_at": None, "cancel_initiated_at": None, "polls": 0,
                         "results": {}}
                self.server.batches[batch_id] = batch
                self.server.order.append(batch_id)
            return self._send(200, self.server.batch_object(batch))
        match = re.fullmatch(r"/v1/messages/batches/([^/]+)/cancel", path)
        if match:
            with self.server.lock:
                batch = self._batch(match.group(1))
                if batch is None:
                    return
                if batch["processing_status"] == "in_progress":
                    batch["processing_status"] = "canceling"
                    batch["cancel_initiated_at"] = time.time()
                return self._send(200, self.server.batch_object(batch))
        self._error(404, "not_found_error", f"no route {path}")

    def do_GET(self) -> None:  # noqa: N802
        if not self._gate():
            return
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        if path == "/v1/messages/batches":
            limit = int(query.get("limit", ["20"])[0])
            if not 1 <= limit <= 1000:
                return self._error(400, "invalid_request_error", "limit: must be 1 to 1000")
            with self.server.lock:
                ids = list(reversed(self.server.order))  # newest first
                if "after_id" in query:
                    ids = ids[ids.index(query["after_id"][0]) + 1:] if query["after_id"][0] in ids else []
                page = ids[:limit]
                data = [self.server.batch_object(self.server.batches[i]) for i in page]
            return self._send(200, {"data": data, "has_more": len(ids) > limit,
                                    "first_id": page[0] if page else None, "last_id": page[-1] if page else None})
        match = re.fullmatch(r"/v1/messages/batches/([^/]+)(/results)?", path)
        if match:
            with self.server.lock:
                batch = self._batch(match.group(1))
                if batch is None:
                    return
                if not match.group(2):
                    self.server.advance(batch)
                    return self._send(200, self.server.batch_object(batch))
                if batch["processing_status"] != "ended":
                    return self._error(404, "not_found_error", "results are available once the batch has ended")
                lines = [json.dumps({"custom_id": cid, "result": result}) for cid, result in batch["results"].items()]
            return self._send(200, raw=("\n".join(reversed(lines)) + "\n").encode(),  # order is not guaranteed
                              content_type="application/binary")
        self._error(404, "not_found_error", f"no route {path}")


# ------------------------------------------------------------------------------------------------
# Azure OpenAI (Files + Batches under /openai, api-version query, api-key header)
# ------------------------------------------------------------------------------------------------
class FakeAzureServer(_Fake):
    """``with FakeAzureServer(deployments={"my-batch-deployment"}) as server:``; give the Azure
    client ``azure_endpoint=server.endpoint``."""

    def __init__(self, *, deployments: set[str] | frozenset[str] = frozenset({"gpt-4.1-mini-batch"}),
                 api_key: str = AZURE_KEY, polls_to_finish: int = 2) -> None:
        self.api_key = api_key
        self.deployments = set(deployments)
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.api_versions: set[str] = set()
        super().__init__(_AzureHandler, polls_to_finish=polls_to_finish)

    @property
    def endpoint(self) -> str:
        return self.root_url

    def add_file(self, content: bytes, *, filename: str, purpose: str, expires_after: dict | None) -> dict[str, Any]:
        file_id = f"file-{secrets.token_hex(16)}"
        now = int(time.time())
        item = {"id": file_id, "object": "file", "bytes": len(content), "created_at": now, "filename": filename,
                "purpose": purpose, "status": "processed", "status_details": None,
                "expires_at": now + int(expires_after["seconds"]) if expires_after else None}
        self.files[file_id] = {"object": item, "content": content}
        return item

    def batch_object(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in batch.items() if not key.startswith("_")}

    def advance(self, batch: dict[str, Any]) -> None:
        """One retrieval: validating → in_progress → completed (or expired/cancelled with SLOW
        rows in the error file)."""
        if batch["status"] in ("completed", "failed", "expired", "cancelled"):
            return
        batch["_polls"] += 1
        now = int(time.time())
        if batch["status"] == "validating":
            batch["status"], batch["in_progress_at"] = "in_progress", now
            return
        lines = batch["_lines"]
        slow = [line for line in lines if "SLOW" in line["body"]["messages"][-1]["content"]]
        cancelling = batch["status"] == "cancelling"
        if not cancelling and (batch["_polls"] < self.polls_to_finish or (slow and not self.expire_slow)):
            batch["request_counts"]["completed"] = len(lines) - len(slow) if slow else len(lines) // 2
            return
        outputs, errors = [], []
        for line in lines:
            text = line["body"]["messages"][-1]["content"]
            if "SLOW" in text:
                code = "batch_cancelled" if cancelling else "batch_expired"
                errors.append({"id": f"batch_req_{secrets.token_hex(6)}", "custom_id": line["custom_id"],
                               "response": None, "error": {"code": code, "message": f"{code.replace('_', ' ')}"}})
            elif "ERRORED" in text:
                errors.append({"id": f"batch_req_{secrets.token_hex(6)}", "custom_id": line["custom_id"],
                               "response": {"status_code": 400, "request_id": secrets.token_hex(6), "body": {
                                   "error": {"code": "content_filter", "message": "scripted: refused"}}},
                               "error": None})
            else:
                outputs.append(_azure_output(line))
        if outputs:
            batch["output_file_id"] = self.add_file("".join(json.dumps(o) + "\n" for o in outputs).encode(),
                                                    filename="output.jsonl", purpose="batch_output",
                                                    expires_after=None)["id"]
        if errors:
            batch["error_file_id"] = self.add_file("".join(json.dumps(e) + "\n" for e in errors).encode(),
                                                   filename="errors.jsonl", purpose="batch_output",
                                                   expires_after=None)["id"]
        batch["request_counts"] = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}
        if cancelling:
            batch["status"], batch["cancelled_at"] = "cancelled", now
        elif slow:
            batch["status"], batch["expired_at"] = "expired", now
        else:
            batch["status"], batch["finalizing_at"], batch["completed_at"] = "completed", now, now


def _azure_output(line: dict[str, Any]) -> dict[str, Any]:
    body = line["body"]
    text = body["messages"][-1]["content"]
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("name", "")
    content, finish = json.dumps(baseline_answer(schema, text)), "stop"
    if "MAXTOK" in text:
        content, finish = content[:12], "length"
    return {"id": f"batch_req_{secrets.token_hex(6)}", "custom_id": line["custom_id"], "response": {
        "status_code": 200, "request_id": secrets.token_hex(6), "body": {
            "id": f"chatcmpl-{secrets.token_hex(6)}", "object": "chat.completion", "created": int(time.time()),
            "model": "gpt-4.1-mini-2025-04-14",  # Azure answers with the model behind the deployment
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": 110, "completion_tokens": 25, "total_tokens": 135}}}, "error": None}


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    return {part.get_param("name", header="content-disposition"):
            (part.get_filename(), part.get_payload(decode=True)) for part in message.iter_parts()}


class _AzureHandler(_Handler):
    server: FakeAzureServer

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, {"error": {"code": code, "message": message, "param": None, "type": "invalid_request_error"}})

    def _gate(self) -> tuple[str, dict[str, list[str]]] | None:
        forced = self._record()
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if forced is not None:
            self._error(forced, str(forced), f"scripted HTTP {forced}")
            return None
        if self.headers.get("api-key") != self.server.api_key:
            self._error(401, "401", "Access denied due to invalid subscription key or wrong API endpoint.")
            return None
        if not url.path.startswith("/openai/"):
            self._error(404, "404", "Resource not found")
            return None
        if "api-version" not in query:
            self._error(404, "404", "Resource not found (api-version query parameter missing)")
            return None
        self.server.api_versions.add(query["api-version"][0])
        return url.path[len("/openai"):], query

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        gated = self._gate()
        if gated is None:
            return
        path, _query = gated
        if path == "/files":
            fields = _multipart(self.headers.get("Content-Type", ""), body)
            purpose = (fields.get("purpose") or (None, b""))[1].decode()
            seconds = (fields.get("expires_after[seconds]") or (None, b""))[1].decode()
            anchor = (fields.get("expires_after[anchor]") or (None, b""))[1].decode()
            if "file" not in fields or purpose not in ("batch", "user_data"):
                return self._error(400, "invalidPayload", "file and purpose are required")
            expires = None
            if seconds or anchor:
                if anchor != "created_at" or not seconds.isdigit() or not 1_209_600 <= int(seconds) <= 2_592_000:
                    return self._error(400, "invalidPayload", "expires_after: anchor created_at, 1209600-2592000 s")
                expires = {"seconds": int(seconds), "anchor": anchor}
            filename, content = fields["file"]
            if len(content) > 200 * 1024 * 1024:
                return self._error(400, "invalidPayload", "the file is over 200 MB")
            with self.server.lock:
                item = self.server.add_file(content, filename=filename or "upload.jsonl", purpose=purpose,
                                            expires_after=expires)
            return self._send(200, item)
        if path == "/batches":
            payload = json.loads(body or b"{}")
            if payload.get("endpoint") != "/chat/completions":
                return self._error(400, "invalidPayload",
                                   f"endpoint {payload.get('endpoint')!r}: global batch takes /chat/completions")
            if payload.get("completion_window") != "24h":
                return self._error(400, "invalidPayload", "completion_window must be 24h")
            stored = self.server.files.get(payload.get("input_file_id", ""))
            if stored is None:
                return self._error(404, "fileNotFound", "input file not found")
            now = int(time.time())
            batch_id = f"batch_{secrets.token_hex(8)}-{secrets.token_hex(2)}"
            batch: dict[str, Any] = {
                "id": batch_id, "object": "batch", "endpoint": "/chat/completions", "errors": None,
                "input_file_id": payload["input_file_id"], "completion_window": "24h", "status": "validating",
                "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
                "expires_at": now + 86400, "finalizing_at": None, "completed_at": None, "failed_at": None,
                "expired_at": None, "cancelling_at": None, "cancelled_at": None,
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
                "metadata": payload.get("metadata") or {}, "_polls": 0, "_lines": [],
            }
            problems = []
            for number, raw in enumerate(stored["content"].splitlines(), start=1):
                line = json.loads(raw)
                if line.get("url") != "/chat/completions" or line.get("method") != "POST":
                    problems.append({"code": "invalid_url", "line": number,
                                     "message": f"url {line.get('url')!r}: the input lines use /chat/completions"})
                elif line["body"].get("model") not in self.server.deployments:
                    problems.append({"code": "model_not_found", "line": number, "message":
                                     f"The model '{line['body'].get('model')}' is not a global batch deployment."})
                batch["_lines"].append(line)
            batch["request_counts"]["total"] = len(batch["_lines"])
            if problems:
                batch.update(status="failed", failed_at=now, errors={"object": "list", "data": problems[:5]})
            with self.server.lock:
                self.server.batches[batch_id] = batch
                self.server.order.append(batch_id)
            return self._send(200, self.server.batch_object(batch))
        match = re.fullmatch(r"/batches/([^/]+)/cancel", path)
        if match and match.group(1) in self.server.batches:
            with self.server.lock:
                batch = self.server.batches[match.group(1)]
                if batch["status"] in ("validating", "in_progress"):
                    batch["status"], batch["cancelling_at"] = "cancelling", int(time.time())
                return self._send(200, self.server.batch_object(batch))
        self._error(404, "404", "Resource not found")

    def do_GET(self) -> None:  # noqa: N802
        gated = self._gate()
        if gated is None:
            return
        path, query = gated
        if path == "/batches":
            limit = int(query.get("limit", ["20"])[0])
            with self.server.lock:
                ids = list(reversed(self.server.order))
                if "after" in query:
                    ids = ids[ids.index(query["after"][0]) + 1:] if query["after"][0] in ids else []
                page = ids[:limit]
                data = [self.server.batch_object(self.server.batches[i]) for i in page]
            return self._send(200, {"object": "list", "data": data, "first_id": page[0] if page else None,
                                    "last_id": page[-1] if page else None, "has_more": len(ids) > limit})
        if path == "/files":
            with self.server.lock:
                data = [f["object"] for f in self.server.files.values()
                        if f["object"]["purpose"] == query.get("purpose", ["batch"])[0]]
            return self._send(200, {"object": "list", "data": data, "has_more": False})
        match = re.fullmatch(r"/files/([^/]+)/content", path)
        if match and match.group(1) in self.server.files:
            return self._send(200, raw=self.server.files[match.group(1)]["content"],
                              content_type="application/octet-stream")
        match = re.fullmatch(r"/batches/([^/]+)", path)
        if match and match.group(1) in self.server.batches:
            with self.server.lock:
                batch = self.server.batches[match.group(1)]
                self.server.advance(batch)
                return self._send(200, self.server.batch_object(batch))
        self._error(404, "404", "Resource not found")

    def do_DELETE(self) -> None:  # noqa: N802
        gated = self._gate()
        if gated is None:
            return
        match = re.fullmatch(r"/files/([^/]+)", gated[0])
        if match and self.server.files.pop(match.group(1), None) is not None:
            return self._send(200, {"id": match.group(1), "object": "file", "deleted": True})
        self._error(404, "404", "Resource not found")
