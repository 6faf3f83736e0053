"""The embedded local backend through real loopback HTTP and the real openai SDK."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx2
import openai
import pytest
from openai import OpenAI

from core.local import BASELINE_MODEL, BackendConfig, LocalBackend

TASK1 = "investment_activity_classification"
CONCRETE = "In 2023 we invested EUR 12 million in a nature fund restoring wetlands."
GENERIC = "We support the TNFD framework and recognise that biodiversity loss costs the economy."


def request_line(custom_id: str, text: str, *, model: str = "gpt-4o-mini", task: str = TASK1, url: str = "/v1/chat/completions") -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": url,
        "body": {
            "model": model,
            "max_completion_tokens": 300,
            "messages": [
                {"role": "system", "content": "Classify the paragraph."},
                {"role": "user", "content": text},
            ],
            "response_format": {"type": "json_schema", "json_schema": {"name": task, "strict": True, "schema": {"type": "object"}}},
        },
    }


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines), encoding="utf-8")
    return path


def make_input(tmp_path: Path, n: int, name: str = "input.jsonl") -> tuple[Path, list[str]]:
    ids = [f"row-{i:03d}" for i in range(n)]
    lines = [request_line(cid, CONCRETE if i % 2 == 0 else GENERIC) for i, cid in enumerate(ids)]
    return write_jsonl(tmp_path / name, lines), ids


def submit(client: OpenAI, path: Path, **metadata: str):
    with open(path, "rb") as fh:
        uploaded = client.files.create(file=fh, purpose="batch")
    return client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata=metadata or None,
    )


def poll(fn: Callable[[], Any], predicate: Callable[[Any], bool], timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    value = fn()
    while not predicate(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s; last value: {value!r}")
        time.sleep(interval)
        value = fn()
    return value


def read_lines(client: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(ln) for ln in client.files.content(file_id).content.decode("utf-8").splitlines() if ln.strip()]


@pytest.fixture
def backend_factory(tmp_path: Path) -> Iterator[Callable[..., LocalBackend]]:
    started: list[LocalBackend] = []

    def make(**overrides: Any) -> LocalBackend:
        overrides.setdefault("state_dir", tmp_path / "state")
        backend = LocalBackend(BackendConfig(**overrides))
        backend.start()
        started.append(backend)
        return backend

    yield make
    for backend in started:
        backend.stop()


def client_for(backend: LocalBackend) -> OpenAI:
    return OpenAI(api_key=backend.api_key, base_url=backend.base_url, max_retries=0, timeout=10)


# ---------------------------------------------------------------------------------------------
def test_sdk_round_trip_and_pagination(tmp_path: Path, backend_factory) -> None:
    backend = backend_factory(concurrency=4)
    client = client_for(backend)
    path, ids = make_input(tmp_path, 25)

    batch = submit(client, path, job="round-trip")
    assert batch.object == "batch" and batch.id.startswith("batch_")
    assert batch.status in ("validating", "in_progress", "finalizing", "completed")
    assert batch.metadata == {"job": "round-trip"}

    done = poll(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")
    assert done.model == "gpt-4o-mini"
    assert done.request_counts.total == 25
    assert done.request_counts.completed + done.request_counts.failed == 25
    assert done.request_counts.failed == 0 and done.error_file_id is None
    assert done.in_progress_at and done.finalizing_at and done.completed_at and done.expires_at
    assert done.usage is not None and done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens > 0

    meta = client.files.retrieve(done.output_file_id)
    assert meta.purpose == "batch_output" and meta.status == "processed"
    lines = read_lines(client, done.output_file_id)
    assert sorted(line["custom_id"] for line in lines) == ids
    for line in lines:
        assert line["id"].startswith("batch_req_") and line["error"] is None
        assert line["response"]["status_code"] == 200 and line["response"]["request_id"].startswith("req_")
        body = line["response"]["body"]
        assert body["object"] == "chat.completion" and body["model"] == BASELINE_MODEL
        content = json.loads(body["choices"][0]["message"]["content"])
        assert content["Score"] == (1 if int(line["custom_id"][-3:]) % 2 == 0 else 0)

    # Uploaded files come back byte for byte.
    uploaded = client.files.retrieve(done.input_file_id)
    assert uploaded.bytes == path.stat().st_size and uploaded.filename == "input.jsonl"
    assert client.files.content(done.input_file_id).content == path.read_bytes()

    # List: newest first, cursor pagination through the SDK's auto-pagination.
    second = submit(client, path)
    third = submit(client, path)
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == [third.id, second.id] and page.has_more
    assert [b.id for b in client.batches.list(limit=2)] == [third.id, second.id, batch.id]
    assert backend.wait_until_idle(20)


@pytest.mark.parametrize(
    "lines, code, line_no",
    [
        ([request_line("a", CONCRETE), "{not json", request_line("c", GENERIC)], "invalid_json_line", 2),
        ([request_line("a", CONCRETE), request_line("b", GENERIC), request_line("a", GENERIC)], "duplicate_custom_id", 3),
        ([request_line("a", CONCRETE), request_line("b", GENERIC, model="gpt-4.1")], "mismatched_model", 2),
        ([request_line("a", CONCRETE, url="/v1/embeddings")], "invalid_url", 1),
    ],
    ids=["bad-json", "duplicate-custom-id", "mixed-models", "wrong-url"],
)
def test_validation_failure(tmp_path: Path, backend_factory, lines: list[Any], code: str, line_no: int) -> None:
    client = client_for(backend_factory())
    batch = submit(client, write_jsonl(tmp_path / "bad.jsonl", lines))
    failed = poll(lambda: client.batches.retrieve(batch.id), lambda b: b.status not in ("validating",))
    assert failed.status == "failed" and failed.failed_at
    assert failed.output_file_id is None and failed.error_file_id is None
    assert failed.errors is not None and failed.errors.object == "list"
    error = failed.errors.data[0]
    assert error.code == code and error.line == line_no and error.message


def test_too_many_requests_fails_validation(tmp_path: Path, backend_factory) -> None:
    client = client_for(backend_factory(max_requests_per_file=2))
    path, _ = make_input(tmp_path, 3)
    batch = submit(client, path)
    failed = poll(lambda: client.batches.retrieve(batch.id), lambda b: b.status != "validating")
    assert failed.status == "failed" and failed.errors.data[0].code == "too_many_requests"


def test_http_errors(tmp_path: Path, backend_factory) -> None:
    backend = backend_factory(max_file_bytes=2_000)
    client = client_for(backend)
    path, _ = make_input(tmp_path, 1)
    with open(path, "rb") as fh:
        uploaded = client.files.create(file=fh, purpose="batch")

    with pytest.raises(openai.BadRequestError, match="chat/completions"):
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_missing")
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve("file-missing")
    big, _ = make_input(tmp_path, 20, "big.jsonl")
    with open(big, "rb") as fh, pytest.raises(openai.BadRequestError, match="too large"):
        client.files.create(file=fh, purpose="batch")
    with pytest.raises(openai.BadRequestError):
        client.batches.list(limit=0)

    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    poll(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")
    with pytest.raises(openai.BadRequestError, match="cancel"):
        client.batches.cancel(batch.id)
    assert client.files.delete(uploaded.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.content(uploaded.id)

    root = backend.base_url.removesuffix("/v1")
    auth = {"Authorization": f"Bearer {backend.api_key}"}
    with httpx2.Client(trust_env=False, timeout=5, headers=auth) as http:
        health = http.get(root + "/health")
        assert health.status_code == 200 and health.json()["ok"] is True
        missing = http.get(backend.base_url + "/nothing-here")
        assert missing.status_code == 404 and set(missing.json()["error"]) == {"message", "type", "param", "code"}
        wrong_method = http.delete(backend.base_url + "/batches")
        assert wrong_method.status_code == 405 and "error" in wrong_method.json()
        bad_json = http.post(backend.base_url + "/batches", content=b"{oops", headers={"Content-Type": "application/json"})
        assert bad_json.status_code == 400


def _check_partial(client: OpenAI, batch, ids: list[str], code: str) -> tuple[int, int]:
    ok = read_lines(client, batch.output_file_id)
    errors = read_lines(client, batch.error_file_id)
    seen = [line["custom_id"] for line in ok + errors]
    assert sorted(seen) == ids, "every custom_id exactly once across output and error files"
    assert all(line["response"]["status_code"] == 200 for line in ok)
    unrun = [line for line in errors if line["response"] is None]
    assert unrun, "some requests never ran"
    assert all(line["error"]["code"] == code and line["error"]["message"] for line in unrun)
    assert batch.request_counts.completed == len(ok)
    return len(ok), len(unrun)


def test_cancel_mid_batch_keeps_finished_answers(tmp_path: Path, backend_factory) -> None:
    backend = backend_factory(baseline_delay_seconds=0.05, concurrency=2)
    client = client_for(backend)
    path, ids = make_input(tmp_path, 60)
    batch = submit(client, path)
    poll(lambda: client.batches.retrieve(batch.id), lambda b: b.request_counts.completed >= 4)

    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled") and cancelling.cancelling_at
    cancelled = poll(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "cancelled")
    assert cancelled.cancelled_at and cancelled.output_file_id
    finished, unrun = _check_partial(client, cancelled, ids, "batch_cancelled")
    assert finished >= 4 and unrun >= 1
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(batch.id)


def test_expiry_with_tiny_completion_window(tmp_path: Path, backend_factory) -> None:
    backend = backend_factory(baseline_delay_seconds=0.05, concurrency=1, completion_window_seconds=0.6)
    client = client_for(backend)
    path, ids = make_input(tmp_path, 60)
    batch = submit(client, path)
    expired = poll(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "expired")
    assert expired.expired_at
    _check_partial(client, expired, ids, "batch_expired")


def test_restart_resumes_without_answering_twice(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = BackendConfig(state_dir=state, baseline_delay_seconds=0.05, concurrency=2)
    path, ids = make_input(tmp_path, 40)
    first = LocalBackend(config)
    first.start()
    try:
        client = client_for(first)
        batch = submit(client, path)
        poll(lambda: client.batches.retrieve(batch.id), lambda b: b.request_counts.completed >= 6)
    finally:
        first.stop()
    log_path = state / "batches" / f"{batch.id}.results.jsonl"
    before = {json.loads(ln)["custom_id"]: json.loads(ln)["id"] for ln in log_path.read_text().splitlines() if ln.strip()}
    assert 6 <= len(before) < 40

    with LocalBackend(config) as second:
        client = client_for(second)
        resumed = client.batches.retrieve(batch.id)
        assert resumed.request_counts.completed >= len(before)
        done = poll(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")
        assert done.request_counts.completed == 40
        lines = read_lines(client, done.output_file_id)
    assert sorted(line["custom_id"] for line in lines) == ids
    # Answers from before the restart are kept, not re-run.
    by_id = {line["custom_id"]: line["id"] for line in lines}
    assert all(by_id[cid] == req_id for cid, req_id in before.items())
    logged = [json.loads(ln)["custom_id"] for ln in log_path.read_text().splitlines() if ln.strip()]
    assert sorted(logged) == ids, "each request answered exactly once across both runs"


# ---------------------------------------------------------------------------------------------
class FakeChatServer(ThreadingHTTPServer):
    """An OpenAI-compatible chat-completions server with scripted answers per paragraph."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FakeChatHandler)
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _FakeChatHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeChatServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.active += 1
            self.server.peak = max(self.server.peak, self.server.active)
            self.server.requests.append((dict(self.headers), body))
        try:
            time.sleep(0.05)
            status, answer = self._answer(body)
        finally:
            with self.server.lock:
                self.server.active -= 1
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.path != "/v1/chat/completions":
            return 404, {"error": {"message": "not found"}}
        text = body["messages"][-1]["content"]
        if "FAIL" in text:
            return 500, {"error": {"message": "model crashed", "type": "server_error", "param": None, "code": None}}
        message: dict[str, Any] = {"role": "assistant", "content": '{"Score": 1, "Explanation": "fake"}', "refusal": None}
        finish = "stop"
        if "REFUSE" in text:
            message = {"role": "assistant", "content": None, "refusal": "I cannot help with that."}
        if "LONG" in text:
            message["content"] = '{"Score": 1, "Expla'
            finish = "length"
        return 200, {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1,
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }


@pytest.fixture
def fake_chat() -> Iterator[FakeChatServer]:
    server = FakeChatServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_forwarding_to_chat_server(tmp_path: Path, backend_factory, fake_chat: FakeChatServer) -> None:
    secret = "test-secret-do-not-store"
    backend = backend_factory(chat_base_url=fake_chat.url, chat_api_key=secret, chat_model="fake-llm", concurrency=4)
    client = client_for(backend)
    texts = {f"p{i:02d}": CONCRETE for i in range(12)}
    texts.update({"fail-1": "FAIL please", "fail-2": "FAIL again", "refuse": "REFUSE this", "long": "LONG answer"})
    path = write_jsonl(tmp_path / "fwd.jsonl", [request_line(cid, text) for cid, text in texts.items()])
    batch = submit(client, path)
    done = poll(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")

    assert done.request_counts.total == 16 and done.request_counts.completed == 14 and done.request_counts.failed == 2
    assert done.usage is not None and done.usage.total_tokens == 14 * 15
    ok = {line["custom_id"]: line for line in read_lines(client, done.output_file_id)}
    errors = {line["custom_id"]: line for line in read_lines(client, done.error_file_id)}
    assert set(ok) | set(errors) == set(texts) and not set(ok) & set(errors)
    assert set(errors) == {"fail-1", "fail-2"}
    assert errors["fail-1"]["response"]["status_code"] == 500
    assert errors["fail-1"]["response"]["body"]["error"]["message"] == "model crashed"
    assert errors["fail-1"]["error"] is None
    refusal = ok["refuse"]["response"]["body"]["choices"][0]["message"]
    assert refusal["content"] is None and refusal["refusal"] == "I cannot help with that."
    assert ok["long"]["response"]["body"]["choices"][0]["finish_reason"] == "length"

    assert fake_chat.peak > 1, "requests are forwarded concurrently"
    assert len(fake_chat.requests) == 16
    for headers, body in fake_chat.requests:
        assert body["model"] == "fake-llm"
        assert body["max_tokens"] == 300 and body["max_completion_tokens"] == 300
        auth = {k.lower(): v for k, v in headers.items()}["authorization"]
        assert auth == f"Bearer {secret}"
    for file in (tmp_path / "state").rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), f"api key leaked into {file}"


def test_unreachable_chat_server_gives_error_lines(tmp_path: Path, backend_factory) -> None:
    dead = FakeChatServer()
    url = dead.url
    dead.server_close()  # nothing listens on this port any more
    backend = backend_factory(chat_base_url=url, concurrency=2)
    client = client_for(backend)
    path, ids = make_input(tmp_path, 3)
    batch = submit(client, path)
    done = poll(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")
    assert done.output_file_id is None and done.request_counts.failed == 3
    errors = read_lines(client, done.error_file_id)
    assert sorted(line["custom_id"] for line in errors) == ids
    assert all(line["response"]["status_code"] == 502 for line in errors)
    assert all("could not be reached" in line["response"]["body"]["error"]["message"] for line in errors)
