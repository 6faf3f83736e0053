"""The detached local backend process: spawn, reuse, replace, crash-resume, stop, idle exit,
and what it must not expose (inherited secrets, readable files, a token-less door)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx2
import pytest
from openai import OpenAI

from core.local import BackendConfig, ensure_running, server_status, stop_running
from core.local.daemon import read_server_info

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals to simulate a crash")

TASK1 = "investment_activity_classification"


def make_input(path: Path, n: int) -> list[str]:
    ids = [f"row-{i:03d}" for i in range(n)]
    lines = []
    for cid in ids:
        lines.append(
            {
                "custom_id": cid,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": "We invested EUR 3 million in a nature fund."}],
                    "response_format": {"type": "json_schema", "json_schema": {"name": TASK1, "schema": {}}},
                },
            }
        )
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return ids


def poll(fn: Callable[[], Any], predicate: Callable[[Any], bool], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    value = fn()
    while not predicate(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s; last value: {value!r}")
        time.sleep(0.05)
        value = fn()
    return value


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    pids: set[int] = set()

    def remember() -> None:
        info = read_server_info(state)
        if info:
            pids.add(int(info["pid"]))

    state.mkdir()
    yield state
    remember()
    try:
        stop_running(state, timeout=10)
    finally:
        from core.local import daemon

        pids.update(daemon._children)
        for pid in pids:
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            child = daemon._children.pop(pid, None)
            if child is not None:
                child.wait(5)


def test_spawn_reuse_and_stop(state_dir: Path) -> None:
    secret = "sk-daemon-secret"
    config = BackendConfig(state_dir=state_dir, chat_api_key=secret)
    endpoint = ensure_running(config, timeout=20)
    url = endpoint.base_url
    info = read_server_info(state_dir)
    assert info is not None and url == f"http://127.0.0.1:{info['port']}/v1"
    pid = int(info["pid"])
    assert pid != os.getpid() and pid_alive(pid)

    assert ensure_running(config, timeout=20) == endpoint, "a second call reuses the running server"
    assert int(read_server_info(state_dir)["pid"]) == pid
    assert server_status(state_dir)["pid"] == pid

    # The key never reaches argv or state files.
    assert secret.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    for file in state_dir.rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file

    client = OpenAI(api_key=endpoint.api_key, base_url=url, max_retries=0, timeout=10)
    path = state_dir.parent / "in.jsonl"
    ids = make_input(path, 3)
    with open(path, "rb") as fh:
        file_id = client.files.create(file=fh, purpose="batch").id
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    done = poll(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")
    assert done.request_counts.completed == len(ids)

    assert stop_running(state_dir) is True
    poll(lambda: pid_alive(pid), lambda alive: not alive, timeout=10)
    assert read_server_info(state_dir) is None
    assert stop_running(state_dir) is False


def test_changed_config_replaces_server_and_crash_resumes(state_dir: Path) -> None:
    slow = BackendConfig(state_dir=state_dir, baseline_delay_seconds=0.05, concurrency=2)
    endpoint = ensure_running(slow, timeout=20)
    first_pid = int(read_server_info(state_dir)["pid"])
    client = OpenAI(api_key=endpoint.api_key, base_url=endpoint.base_url, max_retries=0, timeout=10)
    path = state_dir.parent / "in.jsonl"
    ids = make_input(path, 60)
    with open(path, "rb") as fh:
        file_id = client.files.create(file=fh, purpose="batch").id
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    poll(lambda: client.batches.retrieve(batch.id), lambda b: b.request_counts.completed >= 4)

    # Crash: kill -9 mid-batch, then ensure_running starts a fresh server that resumes.
    os.kill(first_pid, signal.SIGKILL)
    poll(lambda: pid_alive(first_pid), lambda alive: not alive, timeout=10)
    restarted = ensure_running(slow, timeout=20)
    second_pid = int(read_server_info(state_dir)["pid"])
    assert second_pid != first_pid
    assert restarted.api_key == endpoint.api_key, "the token is the state dir's: it survives a restart"
    client = OpenAI(api_key=restarted.api_key, base_url=restarted.base_url, max_retries=0, timeout=10)
    poll(lambda: client.batches.retrieve(batch.id), lambda b: b.request_counts.completed >= 10)

    # Another fingerprint (no delay): the running server is replaced and the batch resumes there.
    fast = BackendConfig(state_dir=state_dir, concurrency=2)
    replaced = ensure_running(fast, timeout=30)
    third_pid = int(read_server_info(state_dir)["pid"])
    assert third_pid != second_pid
    poll(lambda: pid_alive(second_pid), lambda alive: not alive, timeout=10)
    client = OpenAI(api_key=replaced.api_key, base_url=replaced.base_url, max_retries=0, timeout=10)
    done = poll(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")
    assert done.request_counts.completed == 60
    lines = [json.loads(ln) for ln in client.files.content(done.output_file_id).content.decode().splitlines()]
    assert sorted(line["custom_id"] for line in lines) == ids


def test_idle_exit(state_dir: Path) -> None:
    ensure_running(BackendConfig(state_dir=state_dir), timeout=20, idle_exit=1.0)
    pid = int(read_server_info(state_dir)["pid"])
    poll(lambda: pid_alive(pid), lambda alive: not alive, timeout=15)
    assert read_server_info(state_dir) is None


def test_spawned_server_gets_no_secrets_of_ours(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inherited_secrets = {
        "OPENAI_API_KEY": "openai-secret-must-not-leak",
        "ANTHROPIC_API_KEY": "anthropic-secret-must-not-leak",
        "AZURE_OPENAI_API_KEY": "azure-must-not-leak",
        "BDASSET_LOCAL_CHAT_KEY": "settings-chat-key-must-not-leak",
        "GITHUB_TOKEN": "github-token-must-not-leak",
        "OPENAI_BASE_URL": "https://example.invalid/v1",
    }
    for name, value in inherited_secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BDASSET_HARMLESS_SETTING", "kept")
    ensure_running(BackendConfig(state_dir=state_dir, chat_api_key="chat-key-it-needs"), timeout=20)
    pid = int(read_server_info(state_dir)["pid"])

    raw = Path(f"/proc/{pid}/environ").read_bytes()
    environ = dict(item.split("=", 1) for item in raw.decode("utf-8", "replace").split("\0") if "=" in item)
    assert set(inherited_secrets) & set(environ) == set()
    assert not [value for value in inherited_secrets.values() if value.encode() in raw]
    assert environ["BDASSET_LOCAL_CHAT_API_KEY"] == "chat-key-it-needs"
    assert environ["BDASSET_HARMLESS_SETTING"] == "kept"


def test_spawned_server_writes_private_files(state_dir: Path) -> None:
    old = os.umask(0o022)  # a common umask that leaves new files world-readable
    try:
        endpoint = ensure_running(BackendConfig(state_dir=state_dir), timeout=20)
    finally:
        os.umask(old)
    client = OpenAI(api_key=endpoint.api_key, base_url=endpoint.base_url, max_retries=0, timeout=10)
    path = state_dir.parent / "in.jsonl"
    make_input(path, 3)
    with open(path, "rb") as fh:
        file_id = client.files.create(file=fh, purpose="batch").id
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    done = poll(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")

    names = {p.relative_to(state_dir).as_posix() for p in state_dir.rglob("*")}
    expected = {"server.json", "server.log", "api_token", f"files/{file_id}.data", f"files/{done.output_file_id}.data",
                f"batches/{batch.id}.json", f"batches/{batch.id}.results.jsonl"}
    assert expected <= names
    for path in [state_dir, *state_dir.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


def test_token_command_and_curl_style_access(state_dir: Path) -> None:
    endpoint = ensure_running(BackendConfig(state_dir=state_dir), timeout=20)
    printed = subprocess.run(
        [sys.executable, "-m", "core.local", "token", "--state-dir", str(state_dir)],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()
    assert printed == endpoint.api_key
    status = subprocess.run(
        [sys.executable, "-m", "core.local", "status", "--state-dir", str(state_dir)],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert json.loads(status)["base_url"] == endpoint.base_url
    with httpx2.Client(trust_env=False, timeout=10) as http:
        refused = http.get(endpoint.base_url + "/batches")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
        listed = http.get(endpoint.base_url + "/batches", headers={"Authorization": f"Bearer {printed}"})
        assert listed.status_code == 200 and listed.json()["object"] == "list"
    # A client without the token cannot stop the server either.
    with httpx2.Client(trust_env=False, timeout=10) as http:
        assert http.post(endpoint.base_url.removesuffix("/v1") + "/_local/shutdown").status_code == 401
    assert server_status(state_dir) is not None


def test_make_client_reaches_the_daemon_with_its_token(settings) -> None:
    from core.client import BatchClient, make_client
    from core.errors import AuthenticationFailed

    try:
        client = make_client(settings, "local", max_retries=0)
        assert list(client.iter_batches()) == []  # the token was sent: a keyless client gets a 401
        stale = BatchClient(OpenAI(api_key="stale-token", base_url=client.base_url, max_retries=0), provider="local")
        with pytest.raises(AuthenticationFailed, match="local backend refused our token"):
            list(stale.iter_batches())
    finally:
        stop_running(settings.local_state_dir, timeout=10)
