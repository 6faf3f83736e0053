"""HTTP layer: an OpenAI-compatible subset of the Files and Batches API on loopback.

Every request must name the loopback server in its Host header and carry the state dir's
bearer token (see core.local.auth); anything else is refused before it is routed.
"""

from __future__ import annotations

import email.parser
import email.policy
import logging
import os
import re
import secrets
import shutil
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import filelock
import orjson

from core.errors import CoreError
from core.safefs import PRIVATE_FILE_MODE, private_dir

from .auth import bearer_matches, host_allowed, state_token
from .daemon import SERVICE_NAME, config_fingerprint
from .api import ApiError
from .config import BackendConfig
from .engine import Engine
from .responders import Responder
from .store import UnknownId

log = logging.getLogger(__name__)

_MULTIPART_OVERHEAD = 1024 * 1024
# A refused request's body is read (so the client sees the answer, not a reset) up to this size;
# a larger one is not worth reading for a stranger: the connection is closed instead.
_REFUSED_BODY_DRAIN = 1024 * 1024
# Addresses the server may bind: loopback only, whatever the caller asks for.
_LOOPBACK_BIND = ("127.0.0.1", "localhost")
# A client that goes away mid-connection (keep-alive closed with a reset, upload aborted) is
# routine, not an error worth a traceback in the log.
_CLIENT_GONE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, TimeoutError)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    backend: "LocalBackend"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a failed connection instead of printing socketserver's traceback to stderr."""
        exc = sys.exc_info()[1]
        if isinstance(exc, _CLIENT_GONE):
            log.debug("client %s went away: %r", client_address, exc)
            return
        log.exception("error while serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "BiodiversityASSET-local/1"
    server: _Server

    # -- plumbing ------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s - %s", self.address_string(), format % args)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = orjson.dumps(obj)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_" + secrets.token_hex(12))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_error(self, err: ApiError) -> None:
        self._send_json(err.status, err.body())

    def _read_body(self, limit: int) -> bytes:
        """Read the request body; drain (without keeping) bodies larger than `limit`."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(400, "Invalid Content-Length header.") from None
        if length > limit:
            self._drain(length)
            raise ApiError(400, f"Request body too large: {length} bytes.", code="file_too_large")
        return self.rfile.read(length) if length else b""

    def _drain(self, length: int) -> None:
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        too_large = False
        while True:
            size_line = self.rfile.readline(65537)
            try:
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                raise ApiError(400, "Malformed chunked request body.") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                break
            chunk = self.rfile.read(size)
            self.rfile.readline(3)
            total += len(chunk)
            if total > limit:
                too_large = True
                parts.clear()
            elif not too_large:
                parts.append(chunk)
        if too_large:
            raise ApiError(400, f"Request body too large: more than {limit} bytes.", code="file_too_large")
        return b"".join(parts)

    def _json_body(self) -> Any:
        raw = self._read_body(16 * 1024 * 1024)
        try:
            return orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            raise ApiError(400, "We could not parse the JSON body of your request.") from None

    # -- dispatch ------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    _ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
        (re.compile(r"^/health$"), {"GET": "health"}),
        (re.compile(r"^/v1/files$"), {"GET": "list_files", "POST": "create_file"}),
        (re.compile(r"^/v1/files/(?P<id>[^/]+)$"), {"GET": "get_file", "DELETE": "delete_file"}),
        (re.compile(r"^/v1/files/(?P<id>[^/]+)/content$"), {"GET": "file_content"}),
        (re.compile(r"^/v1/batches$"), {"GET": "list_batches", "POST": "create_batch"}),
        (re.compile(r"^/v1/batches/(?P<id>[^/]+)$"), {"GET": "get_batch"}),
        (re.compile(r"^/v1/batches/(?P<id>[^/]+)/cancel$"), {"POST": "cancel_batch"}),
        (re.compile(r"^/_local/shutdown$"), {"POST": "shutdown"}),
    ]

    def _refuse(self, err: ApiError, headers: dict[str, str] | None = None) -> None:
        """Answer a request that is not let in, and close its connection (its body, if any,
        is read only when small, so a stranger cannot make us read megabytes)."""
        self.close_connection = True
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if 0 < length <= _REFUSED_BODY_DRAIN and "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
            self._drain(length)
        self._send_json(err.status, err.body(), {"Connection": "close", **(headers or {})})

    def _admitted(self) -> bool:
        """Check the Host header (DNS rebinding) and the bearer token; answer and return
        False when the request is refused."""
        backend = self.server.backend
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1 or not host_allowed(hosts[0], int(self.server.server_address[1])):
            self._refuse(
                ApiError(421, "This server answers only requests addressed to 127.0.0.1 or localhost.",
                         code="invalid_host")
            )
            return False
        if not bearer_matches(self.headers.get("Authorization"), backend.api_key):
            self._refuse(
                ApiError(401, "Incorrect API key provided. The local backend wants the token printed by "
                         "'python -m core.local token --state-dir <state dir>'.", code="invalid_api_key"),
                {"WWW-Authenticate": 'Bearer realm="local-backend"'},
            )
            return False
        return True

    def _dispatch(self, method: str) -> None:
        backend = self.server.backend
        try:
            if not self._admitted():
                return
        except _CLIENT_GONE:
            self.close_connection = True
            return
        backend._touch()  # after the checks: a stranger knocking does not keep the server alive
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            for pattern, methods in self._ROUTES:
                match = pattern.match(path)
                if match is None:
                    continue
                action = methods.get(method)
                if action is None:
                    self._discard_body()
                    raise ApiError(405, f"Method {method} is not allowed on {path}.", code="method_not_allowed")
                getattr(self, "_h_" + action)(query=query, **match.groupdict())
                return
            self._discard_body()
            raise ApiError(404, f"Unknown request URL: {method} {path}.", code="unknown_url")
        except ApiError as err:
            self._send_error(err)
        except UnknownId:  # an id that cannot name a stored object never reaches a path
            self._send_error(ApiError(404, "No such object.", code="not_found"))
        except _CLIENT_GONE:
            self.close_connection = True
        except Exception as exc:  # pragma: no cover - keeps the server alive on bugs
            log.exception("request failed")
            self._send_error(ApiError(500, f"Internal error in the local backend: {type(exc).__name__}", type_="server_error"))
        finally:
            backend._touch()

    def _discard_body(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length:
            self._drain(length)

    # -- handlers ------------------------------------------------------------------------
    def _h_health(self, query: dict[str, str]) -> None:
        backend = self.server.backend
        self._send_json(
            200,
            {
                "ok": True,
                "service": SERVICE_NAME,
                "pid": os.getpid(),
                "state_dir": str(backend.state_dir),
                "fingerprint": backend.fingerprint,
                "active_batches": backend.engine.active_count(),
            },
        )

    def _h_create_file(self, query: dict[str, str]) -> None:
        engine = self.server.backend.engine
        ctype = self.headers.get("Content-Type") or ""
        if not ctype.lower().startswith("multipart/form-data"):
            self._discard_body()
            raise ApiError(400, "Uploads must be multipart/form-data with fields 'file' and 'purpose'.")
        body = self._read_body(engine.config.max_file_bytes + _MULTIPART_OVERHEAD)
        fields, files = parse_multipart(ctype, body)
        del body
        if "file" not in files:
            raise ApiError(400, "Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
        purpose = fields.get("purpose")
        if not purpose:
            raise ApiError(400, "Missing required parameter: 'purpose'.", param="purpose", code="missing_required_parameter")
        filename, data = files["file"]
        self._send_json(200, engine.create_file(filename, purpose, data, expires_after=_expires_after(fields)))

    def _h_list_files(self, query: dict[str, str]) -> None:
        limit = _int_param(query, "limit", 10000)
        page = self.server.backend.engine.list_files(limit=limit, after=query.get("after"), purpose=query.get("purpose"),
                                                     order=query.get("order"))
        self._send_json(200, page)

    def _h_get_file(self, query: dict[str, str], id: str) -> None:  # noqa: A002
        self._send_json(200, self.server.backend.engine.get_file(id))

    def _h_delete_file(self, query: dict[str, str], id: str) -> None:  # noqa: A002
        self._send_json(200, self.server.backend.engine.delete_file(id))

    def _h_file_content(self, query: dict[str, str], id: str) -> None:  # noqa: A002
        path = self.server.backend.engine.file_content_path(id)
        size = path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with open(path, "rb") as fh:
            shutil.copyfileobj(fh, self.wfile, 1 << 20)

    def _h_create_batch(self, query: dict[str, str]) -> None:
        self._send_json(200, self.server.backend.engine.create_batch(self._json_body()))

    def _h_get_batch(self, query: dict[str, str], id: str) -> None:  # noqa: A002
        self._send_json(200, self.server.backend.engine.get_batch(id))

    def _h_cancel_batch(self, query: dict[str, str], id: str) -> None:  # noqa: A002
        self._discard_body()
        self._send_json(200, self.server.backend.engine.cancel_batch(id))

    def _h_list_batches(self, query: dict[str, str]) -> None:
        limit = _int_param(query, "limit", 20)
        self._send_json(200, self.server.backend.engine.list_batches(limit=limit, after=query.get("after"),
                                                                     order=query.get("order")))

    def _h_shutdown(self, query: dict[str, str]) -> None:
        # Admitted means the caller holds the state dir's token, like every other route.
        self._discard_body()
        self._send_json(200, {"ok": True, "stopping": True})
        self.server.backend.shutdown_requested.set()


def _int_param(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid '{name}': expected an integer.", param=name, code="invalid_value") from None


def _expires_after(fields: dict[str, str]) -> Any:
    """The ``expires_after`` policy of an upload form: the openai SDKs send it as the fields
    ``expires_after[anchor]`` and ``expires_after[seconds]``; a JSON object in one field
    ``expires_after`` is read too. None when the form has neither."""
    parts = {key[len("expires_after["):-1]: value for key, value in fields.items()
             if key.startswith("expires_after[") and key.endswith("]")}
    if parts:
        return parts
    raw = fields.get("expires_after")
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "Invalid 'expires_after': expected an object with 'anchor' and 'seconds'.",
                       param="expires_after", code="invalid_value") from None


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """Split a multipart/form-data body into text fields and file fields (name -> (filename, bytes))."""
    header = b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise ApiError(400, "Malformed multipart/form-data body.")
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            files[str(name)] = (str(filename), payload)
        else:
            charset = part.get_content_charset() or "utf-8"
            fields[str(name)] = payload.decode(charset, "replace")
    return fields, files


class LocalBackend:
    """The embedded backend: engine + HTTP server on loopback. A context manager.

    Clients authenticate with ``api_key`` as their bearer token (the openai SDK's api_key). By
    default it is the state dir's token (``state_dir/api_token``, made on first use, kept
    across restarts); an explicit ``api_key`` is used instead and kept in memory only.
    """

    def __init__(
        self,
        config: BackendConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        responder: Responder | None = None,
        api_key: str | None = None,
    ) -> None:
        if host not in _LOOPBACK_BIND:
            raise CoreError(f"The local backend serves loopback only (127.0.0.1), not {host!r}.")
        self.config = config
        self.state_dir = Path(config.state_dir).resolve()
        self.host = host
        self._port = port
        self._responder = responder
        self._api_key = api_key
        self.shutdown_requested = threading.Event()
        self.engine: Engine | None = None  # type: ignore[assignment]
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock: filelock.BaseFileLock | None = None
        self._last_activity = time.monotonic()
        self.fingerprint = config_fingerprint(config)

    @property
    def api_key(self) -> str:
        """The bearer token clients must send (made in the state dir on first use)."""
        if self._api_key is None:
            self._api_key = state_token(self.state_dir)
        return self._api_key

    def _touch(self) -> None:
        self._last_activity = time.monotonic()

    def idle_seconds(self) -> float:
        """Seconds since the last HTTP request, or 0 while a batch is active."""
        if self.engine is not None and self.engine.active_count():
            self._touch()  # idle time counts from the end of the last batch too
            return 0.0
        return time.monotonic() - self._last_activity

    def start(self) -> None:
        """Open the state dir (resuming its unfinished batches) and serve it on loopback."""
        if self._server is not None:
            return
        private_dir(self.state_dir)
        _ = self.api_key  # made before the first request can arrive, so no request waits on it
        lock = filelock.FileLock(str(self.state_dir / "backend.lock"), mode=PRIVATE_FILE_MODE)
        try:
            lock.acquire(timeout=10)
        except filelock.Timeout:
            raise CoreError(
                f"Another local backend is already serving {self.state_dir}; stop it first "
                "(python -m core.local stop --state-dir ...)."
            ) from None
        try:
            self.engine = Engine(self.config, self._responder)
            self.engine.start()
            server = _Server((self.host, self._port), _Handler)
        except BaseException:
            if self.engine is not None:
                self.engine.stop()
            lock.release()
            raise
        server.backend = self
        self._lock = lock
        self._server = server
        self._touch()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="local-backend-http", daemon=True)
        self._thread.start()
        log.info("local backend serving %s on %s", self.state_dir, self.base_url)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self.engine is not None:
            self.engine.stop()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise CoreError("The local backend is not running.")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def wait_until_idle(self, timeout: float) -> bool:
        if self.engine is None:
            return True
        return self.engine.wait_until_idle(timeout)

    def __enter__(self) -> "LocalBackend":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
