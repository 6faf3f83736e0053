"""Who may talk to the in-process local backend, over real loopback HTTP (issue 9, items 2, 3
and 12): the bearer token, the Host check, ids that must never pick a path, and clients that
hang up on a keep-alive connection."""

from __future__ import annotations

import json
import os
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import openai
import pytest
from openai import OpenAI

from core.local import BackendConfig, LocalBackend
from core.local.store import Store, UnknownId

PROJECT = Path(__file__).resolve().parents[1]
TASK1 = "investment_activity_classification"


def poll(fn: Callable[[], Any], predicate: Callable[[Any], bool], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    value = fn()
    while not predicate(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s; last value: {value!r}")
        time.sleep(0.02)
        value = fn()
    return value


def write_input(path: Path, n: int) -> Path:
    lines = [
        {
            "custom_id": f"row-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "We invested EUR 3 million in a nature fund."}],
                "response_format": {"type": "json_schema", "json_schema": {"name": TASK1, "schema": {}}},
            },
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def raw_request(port: int, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send one hand-written HTTP/1.1 request (as curl or a browser would) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before the headers: {data!r}"
            data += chunk
        header_block, rest = data.split(b"\r\n\r\n", 1)
        status_line, *header_lines = header_block.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in header_lines)}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the body"
            rest += chunk
    return int(status_line.split()[1]), headers, rest[:length]


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LocalBackend]:
    with LocalBackend(BackendConfig(state_dir=tmp_path / "state", baseline_delay_seconds=0.05, concurrency=1)) as running:
        yield running


def client(backend: LocalBackend, api_key: str) -> OpenAI:
    return OpenAI(api_key=api_key, base_url=backend.base_url, max_retries=0, timeout=10)


# ---------------------------------------------------------------------------------------------
def test_sdk_needs_the_state_dirs_token(tmp_path: Path, backend: LocalBackend) -> None:
    owner = client(backend, backend.api_key)
    uploaded = owner.files.create(file=write_input(tmp_path / "in.jsonl", 40).open("rb"), purpose="batch")
    batch = owner.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")

    # A stranger (another local process) with no key or a guessed one reads, cancels and deletes nothing.
    for stranger_key in ("local", backend.api_key + "x", backend.api_key[:-1]):
        stranger = OpenAI(api_key=stranger_key, base_url=backend.base_url, max_retries=0, timeout=10)
        attempts: list[Callable[[], Any]] = [
            lambda: stranger.files.list(),
            lambda: stranger.files.content(uploaded.id),
            lambda: stranger.batches.list(),
            lambda: stranger.batches.cancel(batch.id),
            lambda: stranger.files.delete(uploaded.id),
        ]
        for attempt in attempts:
            with pytest.raises(openai.AuthenticationError) as refused:
                attempt()
            assert refused.value.status_code == 401
            assert refused.value.code == "invalid_api_key" and refused.value.type == "invalid_request_error"
            assert "token" in refused.value.body["message"]

    # The owner's batch was neither cancelled nor robbed of its input.
    assert owner.batches.retrieve(batch.id).status in ("validating", "in_progress", "finalizing", "completed")
    assert owner.files.content(uploaded.id).content.count(b"\n") == 40

    # /health and unknown routes are closed too: curl without the header learns nothing.
    port = backend.port
    for path in ("/health", "/v1/batches", "/nothing-here", "/_local/shutdown"):
        status, headers, body = raw_request(port, f"GET {path} HTTP/1.1\nHost: 127.0.0.1:{port}\n")
        assert status == 401, path
        assert json.loads(body)["error"]["code"] == "invalid_api_key"
        assert headers["www-authenticate"].lower().startswith("bearer")
    status, _, body = raw_request(
        port, f"GET /health HTTP/1.1\nHost: 127.0.0.1:{port}\nAuthorization: Bearer {backend.api_key}\n"
    )
    assert status == 200 and json.loads(body)["ok"] is True
    assert not backend.shutdown_requested.is_set()


def test_token_is_per_state_dir_private_and_survives_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = LocalBackend(BackendConfig(state_dir=state))
    with first:
        token = first.api_key
        uploaded = client(first, token).files.create(file=write_input(tmp_path / "in.jsonl", 2).open("rb"), purpose="batch")
    assert len(token) >= 40  # token_urlsafe(32)
    token_file = state / "api_token"
    assert token_file.read_text().strip() == token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    # A restarted server (new port) takes the same token: a client that was given it keeps working.
    with LocalBackend(BackendConfig(state_dir=state)) as second:
        assert second.api_key == token
        assert client(second, token).files.retrieve(uploaded.id).id == uploaded.id

    # Another state dir has another token.
    with LocalBackend(BackendConfig(state_dir=tmp_path / "other")) as other:
        assert other.api_key != token
        with pytest.raises(openai.AuthenticationError):
            client(other, token).files.list()

    # Clients we do not write get it from the command line.
    printed = subprocess.run(
        [sys.executable, "-m", "core.local", "token", "--state-dir", str(state)],
        cwd=PROJECT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert printed.strip() == token


def test_token_file_is_made_once_under_concurrent_starts(tmp_path: Path) -> None:
    from core.local import state_token

    state = tmp_path / "state"
    barrier = threading.Barrier(8)
    tokens: list[str] = []

    def start() -> None:
        barrier.wait()
        tokens.append(state_token(state))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(tokens) == 8 and len(set(tokens)) == 1
    assert [p.name for p in state.iterdir()] == ["api_token"], "no temp file is left behind"


@pytest.mark.parametrize(
    "host, allowed",
    [
        ("127.0.0.1:{port}", True),
        ("localhost:{port}", True),
        ("LOCALHOST:{port}", True),
        ("[::1]:{port}", True),
        ("127.0.0.1", True),
        ("localhost", True),
        ("evil.example:{port}", False),
        ("evil.example", False),
        ("127.0.0.1.evil.example:{port}", False),
        ("127.0.0.1:{other}", False),
        (None, False),
    ],
)
def test_host_header_must_name_loopback(backend: LocalBackend, host: str | None, allowed: bool) -> None:
    # A DNS-rebinding page sends its own host name; the token alone would not stop a browser
    # that had it, so the Host check is independent of it (here the right token is sent).
    port = backend.port
    head = f"GET /v1/batches HTTP/1.1\nAuthorization: Bearer {backend.api_key}\n"
    if host is not None:
        head += f"Host: {host.format(port=port, other=port + 1)}\n"
    status, headers, body = raw_request(port, head)
    if allowed:
        assert status == 200 and json.loads(body)["object"] == "list"
    else:
        assert status == 421 and json.loads(body)["error"]["code"] == "invalid_host"
        assert headers.get("connection") == "close"


def test_two_host_headers_are_refused(backend: LocalBackend) -> None:
    port = backend.port
    status, _, body = raw_request(
        port,
        f"GET /v1/batches HTTP/1.1\nHost: 127.0.0.1:{port}\nHost: evil.example\nAuthorization: Bearer {backend.api_key}\n",
    )
    assert status == 421 and json.loads(body)["error"]["code"] == "invalid_host"


def test_refused_upload_is_answered_not_reset(backend: LocalBackend) -> None:
    # A client that sends a body with a wrong token still reads a 401 (not a broken connection).
    port = backend.port
    body = b'{"input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "24h"}'
    status, headers, answer = raw_request(
        port,
        f"POST /v1/batches HTTP/1.1\nHost: localhost:{port}\nAuthorization: Bearer wrong\n"
        f"Content-Type: application/json\nContent-Length: {len(body)}\n",
        body,
    )
    assert status == 401 and json.loads(answer)["error"]["code"] == "invalid_api_key"
    assert headers.get("connection") == "close"


def test_ids_never_pick_a_path(tmp_path: Path, backend: LocalBackend) -> None:
    state = backend.state_dir
    decoys = [state / "victim.json", state / "victim.data", state / "victim.results.jsonl", tmp_path / "outside.json"]
    for decoy in decoys:
        decoy.write_text("{}")
    store = Store(state)
    for bad in ("../victim", "../../outside", "..", "", "a/b", "file-\x00", "x" * 300):
        with pytest.raises(UnknownId):
            store.delete_file(bad)
        with pytest.raises(UnknownId):
            store.file_data_path(bad)
        with pytest.raises(UnknownId):
            store.results_path(bad)
        with pytest.raises(UnknownId):
            store.save_batch({"batch": {"id": bad}})
        assert store.load_file_meta(bad) is None
    assert all(decoy.exists() for decoy in decoys)
    assert not list(tmp_path.glob("*.json.*.tmp")) and not list(state.glob(".*.tmp"))

    # Over HTTP, with the token: such ids are objects that do not exist.
    owner = client(backend, backend.api_key)
    for bad in ("../victim", "..%2Fvictim", "%2E%2E%2F%2E%2E%2Foutside"):
        with pytest.raises(openai.NotFoundError):
            owner.files.delete(bad)
        with pytest.raises(openai.NotFoundError):
            owner.files.content(bad)
        with pytest.raises(openai.NotFoundError):
            owner.batches.cancel(bad)
    assert all(decoy.exists() for decoy in decoys)


def _unread_bytes(server_port: int, client_port: int) -> int | None:
    """Bytes the server side of a loopback connection has received but not yet read (Linux
    /proc/net/tcp), or None while that socket is not listed."""
    wanted = (f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}")
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (fields[1], fields[2]) == wanted:
            return int(fields[4].split(":")[1], 16)
    return None


def _handler_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "process_request_thread" in t.name}


@pytest.mark.parametrize(
    "sent",
    [
        "complete",
        pytest.param("partial", marks=pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc/net/tcp")),
    ],
)
def test_keepalive_client_that_resets_leaves_no_traceback(
    backend: LocalBackend, sent: str, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="core.local")
    port = backend.port
    before = _handler_threads()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    request = (
        f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {backend.api_key}\r\n"
        "Connection: keep-alive\r\n"
    )
    if sent == "complete":
        sock.sendall(request.encode() + b"\r\n")
        answer = b""
        while not answer.endswith(b"}"):  # the JSON health answer, whole
            chunk = sock.recv(65536)
            assert chunk
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
    else:
        sock.sendall(request.encode())  # headers never finished
        # Reset only once the server has read what was sent and waits for the rest.
        client_port = sock.getsockname()[1]
        poll(lambda: _unread_bytes(port, client_port), lambda unread: unread == 0, timeout=10)
    server_side = poll(lambda: _handler_threads() - before, bool, timeout=10)
    # Close with a reset (SO_LINGER 0), as a killed client or a pooled connection dropped does.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    poll(lambda: [t for t in server_side if t.is_alive()], lambda alive: not alive, timeout=10)

    err = capfd.readouterr().err
    assert "Traceback" not in err and "ConnectionResetError" not in err, err
    # The reset did reach the server (noted at debug level), and nothing louder was logged.
    assert any("went away" in r.getMessage() for r in caplog.records), caplog.text
    assert [r for r in caplog.records if r.levelno >= 30 or r.exc_info] == []
    # The server keeps serving.
    status, _, _ = raw_request(port, f"GET /health HTTP/1.1\nHost: localhost\nAuthorization: Bearer {backend.api_key}\n")
    assert status == 200


def test_backend_binds_loopback_only(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="loopback"):
        LocalBackend(BackendConfig(state_dir=tmp_path / "state"), host="0.0.0.0")


def test_state_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a common umask that would leave files world-readable
    try:
        with LocalBackend(BackendConfig(state_dir=tmp_path / "state")) as backend:
            owner = client(backend, backend.api_key)
            uploaded = owner.files.create(file=write_input(tmp_path / "in.jsonl", 3).open("rb"), purpose="batch")
            batch = owner.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
            poll(lambda: owner.batches.retrieve(batch.id).status, lambda s: s == "completed")
    finally:
        os.umask(old)
    state = tmp_path / "state"
    names = {p.relative_to(state).as_posix() for p in state.rglob("*")}
    assert {"api_token", "files", "batches", f"batches/{batch.id}.results.jsonl", f"batches/{batch.id}.json"} <= names
    for path in [state, *state.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"
