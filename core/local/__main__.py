"""Command line of the local backend.

    python -m core.local serve --state-dir D [--port 0] [--chat-base-url URL] [--chat-model M]
                               [--concurrency N] [--idle-exit SECONDS] ...
    python -m core.local stop --state-dir D
    python -m core.local status --state-dir D
    python -m core.local token --state-dir D     # the bearer token clients must send

The chat api key is read from the environment variable BDASSET_LOCAL_CHAT_API_KEY only.
Other clients (the openai SDK, curl) use the printed token as their API key:
``curl -H "Authorization: Bearer $(python -m core.local token --state-dir D)" http://127.0.0.1:PORT/v1/batches``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import filelock

from core.errors import CoreError
from core.safefs import PRIVATE_FILE_MODE, atomic_write, private_dir

from .auth import state_token
from .daemon import API_KEY_ENV, DAEMON_LOCK, DEFAULT_IDLE_EXIT, SERVER_JSON, read_server_info, server_status, stop_running
from .config import BackendConfig
from .server import LocalBackend


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.local", description="Embedded OpenAI-compatible batch backend.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the backend in the foreground")
    serve.add_argument("--state-dir", required=True, type=Path)
    serve.add_argument("--host", default="127.0.0.1", choices=("127.0.0.1", "localhost"), help="loopback only")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--chat-base-url", default=None)
    serve.add_argument("--chat-model", default=None)
    serve.add_argument("--concurrency", type=int, default=8)
    serve.add_argument("--completion-window-seconds", type=float, default=86_400.0)
    serve.add_argument("--baseline-delay-seconds", type=float, default=0.0)
    serve.add_argument("--max-requests-per-file", type=int, default=50_000)
    serve.add_argument("--max-file-bytes", type=int, default=200 * 1024 * 1024)
    serve.add_argument("--enqueued-token-limit", type=int, default=None)
    serve.add_argument("--idle-exit", type=float, default=DEFAULT_IDLE_EXIT, help="exit after this many idle seconds (0: never)")
    for name, text in (("stop", None), ("status", None), ("token", "print the bearer token clients must send")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--state-dir", required=True, type=Path)
    return parser


def _serve(args: argparse.Namespace) -> int:
    state_dir = private_dir(args.state_dir.resolve())
    config = BackendConfig(
        state_dir=state_dir,
        chat_base_url=args.chat_base_url or None,
        chat_api_key=os.environ.get(API_KEY_ENV) or None,
        chat_model=args.chat_model or None,
        concurrency=args.concurrency,
        completion_window_seconds=args.completion_window_seconds,
        baseline_delay_seconds=args.baseline_delay_seconds,
        max_requests_per_file=args.max_requests_per_file,
        max_file_bytes=args.max_file_bytes,
        enqueued_token_limit=args.enqueued_token_limit,
    )
    backend = LocalBackend(config, host=args.host, port=args.port)  # the state dir's token

    def _on_signal(signum: int, frame: object) -> None:
        backend.shutdown_requested.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        backend.start()
    except CoreError as exc:
        logging.error("%s", exc)
        return 3
    pid = os.getpid()
    info = {
        "pid": pid,
        "host": args.host,
        "port": backend.port,
        "base_url": backend.base_url,
        "state_dir": str(state_dir),
        "fingerprint": backend.fingerprint,
        "started_at": int(time.time()),
    }
    atomic_write(state_dir / SERVER_JSON, json.dumps(info, indent=2).encode())
    logging.info("serving %s at %s (pid %s, config %s)", state_dir, backend.base_url, pid, config)
    try:
        while not backend.shutdown_requested.wait(1.0):
            if args.idle_exit > 0 and backend.idle_seconds() >= args.idle_exit:
                if _idle_exit(backend, state_dir, args.idle_exit, pid):
                    logging.info("idle for %.0f s; exiting", args.idle_exit)
                    return 0
        logging.info("shutdown requested; stopping")
    finally:
        backend.stop()
        _remove_own_server_json(state_dir, pid)
    return 0


def _idle_exit(backend: LocalBackend, state_dir: Path, idle_exit: float, pid: int) -> bool:
    """Exit under the daemon lock so no caller is handed the URL of a server about to exit."""
    lock = filelock.FileLock(str(state_dir / DAEMON_LOCK), mode=PRIVATE_FILE_MODE)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return False
    try:
        if backend.idle_seconds() < idle_exit:
            return False
        backend.stop()
        _remove_own_server_json(state_dir, pid)
        return True
    finally:
        lock.release()


def _remove_own_server_json(state_dir: Path, pid: int) -> None:
    info = read_server_info(state_dir)
    if info is not None and info.get("pid") == pid:
        try:
            (state_dir / SERVER_JSON).unlink()
        except FileNotFoundError:
            pass


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per forwarded request is noise
    if args.command == "serve":
        return _serve(args)
    if args.command == "token":
        print(state_token(args.state_dir.resolve()))
        return 0
    if args.command == "stop":
        stopped = stop_running(args.state_dir)
        print("stopped" if stopped else "no local backend was running")
        return 0
    status = server_status(args.state_dir)
    if status:
        # The base URL is what a client (curl, the SDK) needs besides the token.
        status = {"base_url": (read_server_info(args.state_dir.resolve()) or {}).get("base_url"), **status}
    print(json.dumps(status, indent=2) if status else "no local backend is running")
    return 0 if status else 1


if __name__ == "__main__":
    sys.exit(main())
