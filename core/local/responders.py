"""Responders answer one chat-completions request body of a batch line.

A responder is a callable ``(body) -> Answer``; it never raises for a bad request or an
unreachable server, it turns those into an error answer (status code + OpenAI-style error
body) so the batch line records what happened.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2
import orjson

from . import baseline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class Responder(Protocol):
    def __call__(self, body: dict[str, Any]) -> Answer: ...

    def close(self) -> None: ...


def error_body(message: str, *, type_: str = "server_error", code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class BaselineResponder:
    """The built-in rule-based scorer (see baseline.py); optional per-request delay for tests."""

    def __init__(self, delay_seconds: float = 0.0) -> None:
        self._delay = max(0.0, float(delay_seconds))
        self._closed = threading.Event()

    def __call__(self, body: dict[str, Any]) -> Answer:
        if self._delay:
            # Interruptible sleep so that stopping the backend is quick.
            self._closed.wait(self._delay)
        result = baseline.answer(body, created=int(time.time()))
        return Answer(result.status_code, result.body)

    def close(self) -> None:
        self._closed.set()


class ForwardingResponder:
    """Forwards each request body to an OpenAI-compatible chat-completions server."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        concurrency: int = 8,
        timeout_seconds: float = 600.0,
    ) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        n = max(1, int(concurrency))
        self._client = httpx2.Client(
            headers=headers,
            timeout=httpx2.Timeout(timeout_seconds, connect=10.0),
            limits=httpx2.Limits(max_connections=n, max_keepalive_connections=n),
            follow_redirects=False,
            trust_env=False,
        )

    def prepare(self, body: dict[str, Any]) -> dict[str, Any]:
        out = dict(body)
        if self._model:
            out["model"] = self._model
        if "max_completion_tokens" in out and "max_tokens" not in out:
            # Ollama and llama.cpp read max_tokens only.
            out["max_tokens"] = out["max_completion_tokens"]
        out.pop("stream", None)
        return out

    def __call__(self, body: dict[str, Any]) -> Answer:
        payload = orjson.dumps(self.prepare(body))
        try:
            response = self._client.post(self._url, content=payload)
        except httpx2.TimeoutException as exc:
            return Answer(504, error_body(f"The chat server at {self._url} timed out: {type(exc).__name__}.", code="chat_server_timeout"))
        except httpx2.HTTPError as exc:
            return Answer(502, error_body(f"The chat server at {self._url} could not be reached: {type(exc).__name__}: {exc}", code="chat_server_unreachable"))
        except Exception as exc:  # never crash the batch on one request
            log.exception("forwarding failed")
            return Answer(502, error_body(f"Forwarding to the chat server failed: {type(exc).__name__}: {exc}", code="chat_server_error"))
        try:
            parsed = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            snippet = response.content[:200].decode("utf-8", "replace")
            status = response.status_code if response.status_code >= 400 else 502
            return Answer(status, error_body(f"The chat server answered HTTP {response.status_code} without a JSON object: {snippet!r}", code="chat_server_bad_response"))
        return Answer(response.status_code, parsed)

    def close(self) -> None:
        self._client.close()


def make_responder(config: Any) -> Responder:
    """Build the responder a BackendConfig asks for."""
    if config.chat_base_url:
        return ForwardingResponder(
            config.chat_base_url,
            api_key=config.chat_api_key,
            model=config.chat_model,
            concurrency=config.concurrency,
        )
    return BaselineResponder(config.baseline_delay_seconds)
