"""Spawn or reuse a detached local backend process serving one state directory.

state_dir/server.json (written by the served process, mode 0600) records its pid, port and
config fingerprint; state_dir/api_token (0600) holds the bearer token every request needs,
including the health check and shutdown (core.local.auth). `ensure_running` and the served
process's idle exit both run under state_dir/daemon.lock, so two callers never start two
servers and a server never exits between a caller's health check and its return.

The served process gets a scrubbed environment: no provider keys or other secrets of the
caller's (it needs none), only the chat key it is explicitly given.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import filelock
import httpx2

from core.errors import CoreError
from core.safefs import PRIVATE_FILE_MODE, open_private, private_dir

from .auth import read_token, state_token
from .config import BackendConfig

log = logging.getLogger(__name__)

API_KEY_ENV = "BDASSET_LOCAL_CHAT_API_KEY"
SERVER_JSON = "server.json"
DAEMON_LOCK = "daemon.lock"
SERVER_LOG = "server.log"
DEFAULT_IDLE_EXIT = 900.0
SERVICE_NAME = "biodiversityasset-local-backend"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Processes spawned by this process, so their exit can be observed (and reaped) reliably.
_children: dict[int, subprocess.Popen[bytes]] = {}

# Environment variables the served process must not inherit: provider keys (OPENAI_API_KEY,
# ANTHROPIC_API_KEY, AZURE_OPENAI_API_KEY, our BDASSET_LOCAL_CHAT_KEY, ...), tokens, passwords
# and secrets, and every OPENAI_* setting (the backend is not an OpenAI client).
_SECRET_ENV = re.compile(r"(_KEY|APIKEY|_TOKEN|_SECRET|_PASSWORD|_PASSWD|_CREDENTIALS?|^OPENAI_.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class LocalEndpoint:
    """What a client needs to reach a running local backend: its base URL and bearer token."""

    base_url: str
    api_key: str = field(repr=False)


def _lock(state_dir: Path) -> filelock.BaseFileLock:
    return filelock.FileLock(str(Path(state_dir) / DAEMON_LOCK), mode=PRIVATE_FILE_MODE)


def daemon_env(environ: Mapping[str, str], chat_api_key: str | None) -> dict[str, str]:
    """The served process's environment: ``environ`` without secrets, plus the chat key (the
    only secret it needs) under BDASSET_LOCAL_CHAT_API_KEY when one is given."""
    env = {name: value for name, value in environ.items() if not _SECRET_ENV.search(name)}
    if chat_api_key:
        env[API_KEY_ENV] = chat_api_key
    return env


def config_fingerprint(config: BackendConfig) -> str:
    """A stable hash of everything that changes how the backend answers (the key only hashed)."""
    key = config.chat_api_key
    payload = {
        "state_dir": str(Path(config.state_dir).resolve()),
        "chat_base_url": config.chat_base_url,
        "chat_api_key_sha256": hashlib.sha256(key.encode()).hexdigest() if key else None,
        "chat_model": config.chat_model,
        "concurrency": int(config.concurrency),
        "completion_window_seconds": float(config.completion_window_seconds),
        "baseline_delay_seconds": float(config.baseline_delay_seconds),
        "max_requests_per_file": int(config.max_requests_per_file),
        "max_file_bytes": int(config.max_file_bytes),
        "enqueued_token_limit": config.enqueued_token_limit,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def serve_argv(config: BackendConfig, *, idle_exit: float = DEFAULT_IDLE_EXIT) -> list[str]:
    """Command line of the served process. Never contains the chat api key."""
    argv = [
        sys.executable,
        "-m",
        "core.local",
        "serve",
        "--state-dir",
        str(Path(config.state_dir).resolve()),
        "--port",
        "0",
        "--concurrency",
        str(int(config.concurrency)),
        "--completion-window-seconds",
        repr(float(config.completion_window_seconds)),
        "--baseline-delay-seconds",
        repr(float(config.baseline_delay_seconds)),
        "--max-requests-per-file",
        str(int(config.max_requests_per_file)),
        "--max-file-bytes",
        str(int(config.max_file_bytes)),
        "--idle-exit",
        repr(float(idle_exit)),
    ]
    if config.chat_base_url:
        argv += ["--chat-base-url", config.chat_base_url]
    if config.chat_model:
        argv += ["--chat-model", config.chat_model]
    if config.enqueued_token_limit:
        argv += ["--enqueued-token-limit", str(int(config.enqueued_token_limit))]
    return argv


def read_server_info(state_dir: Path) -> dict[str, Any] | None:
    """The served process's record in state_dir/server.json, or None."""
    try:
        info = json.loads((Path(state_dir) / SERVER_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _base_url(info: dict[str, Any]) -> str:
    return f"http://127.0.0.1:{int(info['port'])}/v1"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _health(info: dict[str, Any], token: str, timeout: float = 2.0) -> dict[str, Any] | None:
    try:
        response = httpx2.get(
            f"http://127.0.0.1:{int(info['port'])}/health", headers=_auth(token), timeout=timeout, trust_env=False
        )
        data = response.json()
    except Exception:
        return None
    if response.status_code != 200 or not isinstance(data, dict) or data.get("service") != SERVICE_NAME:
        return None
    return data


def _pid_alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _children.pop(pid, None)
        return False
    if pid <= 0:
        return False
    if os.name == "nt":  # pragma: no cover - Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid)


def _terminate(pid: int, timeout: float) -> None:
    """Stop a process that did not honour the shutdown request."""
    child = _children.get(pid)
    try:
        if child is not None:
            child.terminate()
        elif os.name != "nt":
            os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    if _wait_exit(pid, timeout):
        return
    try:
        if child is not None:
            child.kill()
        elif os.name != "nt":
            os.kill(pid, signal.SIGKILL)
    except OSError:
        return
    _wait_exit(pid, 5.0)


def _shutdown(state_dir: Path, info: dict[str, Any], token: str, timeout: float) -> None:
    pid = int(info.get("pid") or 0)
    try:
        httpx2.post(
            f"http://127.0.0.1:{int(info['port'])}/_local/shutdown",
            headers=_auth(token),
            timeout=5.0,
            trust_env=False,
        )
    except Exception:
        pass
    if pid and not _wait_exit(pid, timeout):
        log.warning("local backend pid %s ignored the shutdown request; terminating it", pid)
        _terminate(pid, 5.0)
    _remove_server_json(state_dir, pid)


def _remove_server_json(state_dir: Path, pid: int) -> None:
    info = read_server_info(state_dir)
    if info is not None and int(info.get("pid") or 0) == pid:
        try:
            (Path(state_dir) / SERVER_JSON).unlink()
        except FileNotFoundError:
            pass


def _live_server(state_dir: Path, token: str | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    info = read_server_info(state_dir)
    if token is None or info is None or "port" not in info:
        return None
    health = _health(info, token)
    if health is None:
        return None
    if health.get("state_dir") != str(state_dir) or int(health.get("pid") or -1) != int(info.get("pid") or -2):
        return None
    return info, health


def _spawn(config: BackendConfig, state_dir: Path, idle_exit: float) -> subprocess.Popen[bytes]:
    env = daemon_env(os.environ, config.chat_api_key)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    kwargs: dict[str, Any] = {}
    if os.name == "nt":  # pragma: no cover - Windows
        kwargs["creationflags"] = 0x00000008 | 0x00000200 | 0x08000000  # DETACHED | NEW_GROUP | NO_WINDOW
    else:
        kwargs["start_new_session"] = True
    with open_private(state_dir / SERVER_LOG, "ab") as log_file:
        proc = subprocess.Popen(
            serve_argv(config, idle_exit=idle_exit),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=str(_PROJECT_ROOT),
            env=env,
            close_fds=True,
            **kwargs,
        )
    _children[proc.pid] = proc
    return proc


def _log_tail(state_dir: Path, lines: int = 15) -> str:
    try:
        text = (state_dir / SERVER_LOG).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def ensure_running(
    config: BackendConfig, *, timeout: float = 20.0, idle_exit: float = DEFAULT_IDLE_EXIT
) -> LocalEndpoint:
    """Return the base URL and bearer token of a live backend serving config.state_dir,
    spawning one if needed.

    A running server with another config fingerprint is stopped and replaced; its batches
    resume in the new one. The chat api key reaches the child through an environment
    variable only.
    """
    state_dir = private_dir(Path(config.state_dir).resolve())
    token = state_token(state_dir)  # the served process reads the same file
    fingerprint = config_fingerprint(config)
    deadline = time.monotonic() + timeout
    try:
        lock = _lock(state_dir)
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        raise CoreError(f"Timed out waiting for another process starting the local backend in {state_dir}.") from None
    try:
        live = _live_server(state_dir, token)
        if live is not None:
            info, health = live
            if health.get("fingerprint") == fingerprint:
                return LocalEndpoint(_base_url(info), token)
            log.info("local backend settings changed; restarting the server for %s", state_dir)
            _shutdown(state_dir, info, token, timeout=max(1.0, deadline - time.monotonic()))
        proc = _spawn(config, state_dir, idle_exit)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                _children.pop(proc.pid, None)
                raise CoreError(
                    f"The local backend exited at start (code {proc.returncode}). Log {state_dir / SERVER_LOG}:\n"
                    + _log_tail(state_dir)
                )
            info = read_server_info(state_dir)
            if info is not None and int(info.get("pid") or 0) == proc.pid:
                health = _health(info, token)
                if health is not None and health.get("fingerprint") == fingerprint:
                    return LocalEndpoint(_base_url(info), token)
            time.sleep(0.05)
        _terminate(proc.pid, 5.0)
        raise CoreError(
            f"The local backend did not answer within {timeout:.0f} s. Log {state_dir / SERVER_LOG}:\n" + _log_tail(state_dir)
        )
    finally:
        lock.release()


def stop_running(state_dir: Path, *, timeout: float = 20.0) -> bool:
    """Stop the backend serving state_dir. True when a running server was stopped."""
    state_dir = Path(state_dir).resolve()
    if not state_dir.is_dir():
        return False
    lock = _lock(state_dir)
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        raise CoreError(f"Timed out waiting for the lock of the local backend in {state_dir}.") from None
    token = read_token(state_dir)
    try:
        live = _live_server(state_dir, token)
        if live is None:
            info = read_server_info(state_dir)
            if info is not None and not _pid_alive(int(info.get("pid") or 0)):
                _remove_server_json(state_dir, int(info.get("pid") or 0))
            return False
        _shutdown(state_dir, live[0], str(token), timeout)
        return True
    finally:
        lock.release()


def server_status(state_dir: Path) -> dict[str, Any] | None:
    """Health answer of the backend serving state_dir, or None when none answers."""
    state_dir = Path(state_dir).resolve()
    live = _live_server(state_dir, read_token(state_dir))
    return live[1] if live else None
