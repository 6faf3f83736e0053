"""Anthropic Message Batches behind the job engine's vocabulary (:mod:`core.providers.base`).

The only module that talks to the ``anthropic`` SDK. Everything Anthropic-shaped stays here:

- ``upload`` stages our OpenAI-shaped request file locally (Anthropic stores no files): a
  private copy under ``<data>/providers/anthropic/files/``, named by its content hash.
- ``create_batch`` turns each line into ``{custom_id, params}``: the system prompt, the user
  message, ``max_tokens`` and structured output (``output_config.format``, a JSON schema: the
  task's, which the API holds the answer to). Our job id and batch key go in front of every
  custom_id (``<job id>--<batch key>--s0-r12``), since Message Batches carry no metadata.
- ``retrieve``/``cancel`` map ``processing_status`` and ``request_counts`` to our statuses.
- ``download`` translates result lines back into OpenAI batch output lines (``succeeded``: the
  answer's text (JSON; a tool call's input if a tool answered), thinking left out, a
  ``max_tokens`` stop as ``length``, a ``refusal`` stop as a refusal; ``errored``,
  ``canceled``, ``expired``: error lines), with the custom_id prefix taken off again, so
  collecting needs no provider branch.
- ``iter_batches`` recovers our metadata from a local index written when a batch is created,
  or, for an ended batch the index misses, from the custom_ids in its results.
"""

from __future__ import annotations

import hashlib
import re
import time
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import orjson
from filelock import FileLock

from core.errors import AuthenticationFailed, ProviderError
from core.providers.base import (BatchInfo, BatchNotFoundAtProvider, UploadedFile, checked_id, is_plain_id,
                                 sdk_errors)
from core.safefs import PRIVATE_FILE_MODE, atomic_write, private_dir

if TYPE_CHECKING:
    import anthropic

    from core.settings import Settings

#: What Anthropic accepts as a request's custom_id.
CUSTOM_ID_SHAPE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
#: A custom_id carrying our job id and batch key in front of the row's own id.
TAGGED_ID = re.compile(r"^([A-Za-z0-9_]+)--([A-Za-z0-9_]+)--([A-Za-z0-9_-]+)$")
TAG_SEPARATOR = "--"
#: Anthropic's limit on one create request (the whole JSON body).
MAX_BATCH_BYTES = 256 * 1024 * 1024
MAX_BATCH_REQUESTS = 100_000
#: How stop reasons read in OpenAI's words (what core.results knows).
_FINISH = {"max_tokens": "length", "model_context_window_exceeded": "length", "refusal": "content_filter"}
_SUCCEEDED, _UNSUCCESSFUL = "succeeded", "unsuccessful"


def tag_custom_id(custom_id: str, *, job_id: str | None, batch_key: str | None) -> str:
    """The custom_id sent to Anthropic: ours, prefixed with the job id and batch key so that a
    batch can be traced back to its job without metadata. Raises when it cannot be sent."""
    tagged = custom_id
    if job_id and batch_key and TAG_SEPARATOR not in job_id and TAG_SEPARATOR not in batch_key:
        tagged = f"{job_id}{TAG_SEPARATOR}{batch_key}{TAG_SEPARATOR}{custom_id}"
    if not CUSTOM_ID_SHAPE.match(tagged):
        raise ProviderError(f"Request {custom_id[:80]!r} cannot be sent to Anthropic: a custom_id there is 1-64 "
                            f"letters, digits, '_' or '-' ({tagged[:80]!r} is not).")
    return tagged


def untag_custom_id(custom_id: str) -> tuple[str, str | None, str | None]:
    """(our custom_id, job id, batch key) of a custom_id Anthropic reports."""
    match = TAGGED_ID.match(custom_id)
    if match is None:
        return custom_id, None, None
    return match.group(3), match.group(1), match.group(2)


def message_batch_request(line: dict[str, Any], *, job_id: str | None, batch_key: str | None) -> dict[str, Any]:
    """One OpenAI chat-completions batch line as a Message Batches request."""
    body = line["body"]
    system = [m["content"] for m in body["messages"] if m.get("role") == "system"]
    messages = [{"role": m["role"], "content": m["content"]} for m in body["messages"] if m.get("role") != "system"]
    params: dict[str, Any] = {
        "model": body["model"],
        "max_tokens": int(body.get("max_completion_tokens") or body.get("max_tokens") or 1024),
        "messages": messages,
    }
    if system:
        params["system"] = "\n\n".join(system)
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        # structured outputs: the API holds the answer to the task's schema. (A forced tool call
        # would do the same on older models, but newer ones think adaptively, and thinking
        # does not combine with a forced tool choice.)
        params["output_config"] = {"format": {"type": "json_schema",
                                              "schema": response_format["json_schema"]["schema"]}}
    return {"custom_id": tag_custom_id(str(line["custom_id"]), job_id=job_id, batch_key=batch_key),
            "params": params}


def openai_result_line(result: dict[str, Any]) -> dict[str, Any]:
    """One Message Batches result line as an OpenAI batch output (or error) line."""
    custom_id, _job, _key = untag_custom_id(str(result.get("custom_id")))
    outcome = result.get("result") or {}
    kind = outcome.get("type")
    if kind == "succeeded":
        message = outcome.get("message") or {}
        blocks = message.get("content") or []
        tool_inputs = [b.get("input") for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"]
        texts = [b.get("text") or "" for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
        stop = message.get("stop_reason")
        content = orjson.dumps(tool_inputs[0]).decode() if tool_inputs else ("".join(texts) or None)
        usage = message.get("usage") or {}
        prompt = sum(int(usage.get(k) or 0) for k in
                     ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
        completion = int(usage.get("output_tokens") or 0)
        refusal = "the model declined to answer (stop reason: refusal)" if stop == "refusal" else None
        return {
            "id": f"anthropic-{message.get('id') or custom_id}",
            "custom_id": custom_id,
            "response": {
                "status_code": 200,
                "request_id": message.get("id"),
                "body": {
                    "id": message.get("id"),
                    "object": "chat.completion",
                    "model": message.get("model"),
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": None if refusal else content, "refusal": refusal},
                        "finish_reason": _FINISH.get(stop or "", "stop"),
                    }],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                              "total_tokens": prompt + completion},
                },
            },
            "error": None,
        }
    if kind in ("canceled", "expired"):
        code = "batch_cancelled" if kind == "canceled" else "batch_expired"
        text = ("the batch was cancelled before this request ran" if kind == "canceled"
                else "the batch expired (24 hours) before this request ran")
        return {"id": f"anthropic-{custom_id}", "custom_id": custom_id, "response": None,
                "error": {"code": code, "message": text}}
    error = (outcome.get("error") or {}) if kind == "errored" else {}
    inner = error.get("error") if isinstance(error.get("error"), dict) else error
    return {"id": f"anthropic-{custom_id}", "custom_id": custom_id, "response": None,
            "error": {"code": str(inner.get("type") or kind or "error"),
                      "message": str(inner.get("message") or f"the provider reported the result as {kind!r}")}}


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


class AnthropicBatchClient:
    """Message Batches with Anthropic's shapes and errors translated to ours."""

    key_setting = "ANTHROPIC_API_KEY"

    def __init__(self, sdk: anthropic.Anthropic, *, staging_dir: Path) -> None:
        self._sdk = sdk
        self.provider = "anthropic"
        self._dir = Path(staging_dir)

    @property
    def base_url(self) -> str:
        return str(self._sdk.base_url)

    # ----- the local index: staged files and what we created ---------------------------------
    def _index_path(self, name: str) -> Path:
        return self._dir / f"{name}.json"

    def _read_index(self, name: str) -> dict[str, Any]:
        try:
            data = orjson.loads(self._index_path(name).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    @contextmanager
    def _index(self, name: str) -> Iterator[dict[str, Any]]:
        """Read, change and write one index file under an inter-process lock."""
        private_dir(self._dir)
        with FileLock(str(self._index_path(name)) + ".lock", mode=PRIVATE_FILE_MODE):
            data = self._read_index(name)
            yield data
            atomic_write(self._index_path(name), orjson.dumps(data))

    def _staged(self, file_id: str) -> Path:
        checked_id(file_id, "file")
        return self._dir / "files" / f"{file_id}.jsonl"

    # ----- error translation -------------------------------------------------------------------
    def _translate(self, action: str) -> AbstractContextManager[None]:
        import anthropic

        return sdk_errors(anthropic, anthropic.AnthropicError, action=action, who="Anthropic", where=self.base_url,
                          rejected_key=f"{action}: Anthropic rejected the API key. Check {self.key_setting} "
                                       "(environment, .env or .streamlit/secrets.toml).")

    # ----- files: staged here -------------------------------------------------------------------
    def upload(self, path: Path, *, name: str | None = None, purpose: str = "batch") -> str:
        """Stage a request file locally (no network: Message Batches take the requests inline)."""
        if purpose != "batch":
            raise ProviderError(f"Anthropic keeps no {purpose} files; only the embedded local backend uses them.")
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        file_id = f"staged-{digest.hexdigest()[:40]}"
        target = self._staged(file_id)
        private_dir(target.parent)
        if not target.exists():
            with path.open("rb") as handle:
                atomic_write(target, iter(lambda: handle.read(1 << 20), b""))
        with self._index("files") as files:
            files[file_id] = {"filename": name or path.name, "created_at": int(time.time())}
        return file_id

    def iter_files(self, *, purpose: str = "batch") -> Iterator[UploadedFile]:
        """Staged request files (the only files this provider has)."""
        if purpose != "batch":
            return
        for file_id, entry in sorted(self._read_index("files").items()):
            if is_plain_id(file_id) and isinstance(entry, dict):
                yield UploadedFile(file_id=file_id, filename=str(entry.get("filename") or ""),
                                   created_at=int(entry.get("created_at") or 0), purpose="batch")

    def delete_file(self, file_id: str) -> None:
        """Remove a staged request file."""
        self._staged(file_id).unlink(missing_ok=True)
        with self._index("files") as files:
            files.pop(file_id, None)

    # ----- batches ------------------------------------------------------------------------------
    def create_batch(self, *, input_file_id: str, metadata: dict[str, str]) -> BatchInfo:
        """Translate the staged lines and create the Message Batch."""
        path = self._staged(input_file_id)
        if not path.is_file():
            raise BatchNotFoundAtProvider(f"Creating the batch: staged request file {input_file_id} is missing; "
                                          "it is staged again when the batch is resent.")
        job_id, batch_key = metadata.get("job_id"), metadata.get("batch_key")
        requests: list[dict[str, Any]] = []
        size = 0
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    request = message_batch_request(orjson.loads(raw), job_id=job_id, batch_key=batch_key)
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
                    raise ProviderError(f"Creating the batch: line {number} of {path.name} is not a chat-completions "
                                        f"request ({type(exc).__name__}: {exc}).") from None
                size += len(orjson.dumps(request)) + 1
                requests.append(request)
        if len(requests) > MAX_BATCH_REQUESTS or size > MAX_BATCH_BYTES:
            raise ProviderError(f"Creating the batch: {len(requests):,} requests of {size:,} bytes are over Anthropic's "
                                f"limit of {MAX_BATCH_REQUESTS:,} requests or {MAX_BATCH_BYTES:,} bytes per batch.")
        with self._translate("Creating the batch"):
            batch = self._sdk.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        batch_id = checked_id(batch.id, "batch")
        models = sorted({r["params"]["model"] for r in requests})
        with self._index("batches") as batches:
            batches[batch_id] = {"metadata": dict(metadata), "input_file_id": input_file_id,
                                 "model": models[0] if models else None}
        return self._info(batch)

    def _info(self, batch: Any, known: dict[str, Any] | None = None) -> BatchInfo:
        """Our view of a Message Batch: statuses, counts, times, and the two 'files' to download."""
        batch_id = checked_id(batch.id, "batch")
        if known is None:
            known = self._read_index("batches").get(batch_id) or {}
        counts = batch.request_counts
        unsuccessful = counts.errored + counts.canceled + counts.expired
        ended = batch.processing_status == "ended"
        if batch.processing_status == "in_progress":
            status = "in_progress"
        elif batch.processing_status == "canceling":
            status = "cancelling"
        elif batch.cancel_initiated_at is not None:
            status = "cancelled"
        elif counts.expired:
            status = "expired"
        else:
            status = "completed"
        ended_at = _epoch(batch.ended_at)
        return BatchInfo(
            batch_id=batch_id,
            status=status,  # type: ignore[arg-type]
            input_file_id=str(known.get("input_file_id") or ""),
            output_file_id=f"{batch_id}:{_SUCCEEDED}" if ended and counts.succeeded else None,
            error_file_id=f"{batch_id}:{_UNSUCCESSFUL}" if ended and unsuccessful else None,
            total=counts.processing + counts.succeeded + unsuccessful,
            completed=counts.succeeded,
            failed=unsuccessful,
            created_at=_epoch(batch.created_at),
            in_progress_at=_epoch(batch.created_at),
            completed_at=ended_at if status == "completed" else None,
            expired_at=ended_at if status == "expired" else None,
            cancelling_at=_epoch(batch.cancel_initiated_at),
            cancelled_at=ended_at if status == "cancelled" else None,
            expires_at=_epoch(batch.expires_at),
            metadata=dict(known.get("metadata") or {}),
            model=known.get("model"),
        )

    def retrieve(self, batch_id: str) -> BatchInfo:
        with self._translate(f"Checking batch {batch_id}"):
            batch = self._sdk.messages.batches.retrieve(checked_id(batch_id, "batch"))
        return self._info(batch)

    def cancel(self, batch_id: str) -> BatchInfo:
        with self._translate(f"Cancelling batch {batch_id}"):
            batch = self._sdk.messages.batches.cancel(checked_id(batch_id, "batch"))
        return self._info(batch)

    def iter_batches(self, *, page_size: int = 100) -> Iterator[BatchInfo]:
        """Every Message Batch of the workspace (the SDK follows ``after_id``), with our metadata
        from the local index, or from the custom_ids of an ended batch's results."""
        known = self._read_index("batches")
        with self._translate("Listing batches"):
            listed = list(self._sdk.messages.batches.list(limit=min(max(page_size, 1), 1000)))
        for batch in listed:
            if not is_plain_id(batch.id):
                continue
            entry = known.get(batch.id)
            if entry is None and batch.processing_status == "ended":
                entry = self._learn_from_results(batch.id)
            yield self._info(batch, entry or {})

    def _learn_from_results(self, batch_id: str) -> dict[str, Any]:
        """Our job id and batch key from the first result of a batch the index misses (a lost
        data folder, a crash right after creating); remembered, also when it is not ours."""
        from core.jobs.common import APP_TAG

        entry: dict[str, Any] = {"metadata": {}}
        try:
            first = next(iter(self._result_lines(batch_id)), None)
        except ProviderError:
            return entry  # results unavailable (archived): nothing to learn now, try again later
        if first is not None:
            _cid, job_id, batch_key = untag_custom_id(str(first.get("custom_id")))
            if job_id and batch_key:
                entry["metadata"] = {"job_id": job_id, "batch_key": batch_key, "app": APP_TAG}
                message = ((first.get("result") or {}).get("message") or {})
                entry["model"] = message.get("model")
        with self._index("batches") as batches:
            batches[batch_id] = entry
        return entry

    def _result_lines(self, batch_id: str) -> Iterator[dict[str, Any]]:
        """The results of an ended batch, as dicts. Fetched from the documented path under the
        configured base URL, never from the ``results_url`` the provider states: a URL from
        outside never receives our key."""
        import httpx2

        path = f"/v1/messages/batches/{checked_id(batch_id, 'batch')}/results"
        with self._translate(f"Downloading the results of batch {batch_id}"):
            response = self._sdk.get(path, cast_to=httpx2.Response,
                                     options={"headers": {"Accept": "application/binary"}})
            data = response.content
        for number, raw in enumerate(data.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise ProviderError(f"The results of batch {batch_id} are damaged at line {number}.") from None
            if isinstance(line, dict):
                yield line

    def download(self, file_id: str) -> bytes:
        """A batch's succeeded results (``<batch>:succeeded``) or its other results
        (``<batch>:unsuccessful``), as OpenAI batch output lines."""
        batch_id, _, kind = checked_id(file_id, "file").rpartition(":")
        if kind not in (_SUCCEEDED, _UNSUCCESSFUL) or not batch_id:
            raise BatchNotFoundAtProvider(f"Downloading file {file_id}: Anthropic has no such results file.")
        wanted_success = kind == _SUCCEEDED
        lines = [orjson.dumps(translated) for translated in map(_translated_line, self._result_lines(batch_id))
                 if (translated["error"] is None) is wanted_success]
        return b"".join(line + b"\n" for line in lines)


def _translated_line(result: dict[str, Any]) -> dict[str, Any]:
    """:func:`openai_result_line`, or for a line of a shape the API does not produce an error
    line naming it (its row ends ``failed`` with the reason; collecting goes on)."""
    try:
        return openai_result_line(result)
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        custom_id = result.get("custom_id")
        return {"id": "anthropic-unreadable", "custom_id": untag_custom_id(str(custom_id))[0], "response": None,
                "error": {"code": "unreadable_result",
                          "message": f"the provider's result has an unexpected shape ({type(exc).__name__})"}}


def staging_dir(settings: Settings) -> Path:
    """Where request files for Anthropic are staged, and the index of batches created there."""
    return settings.data_dir / "providers" / "anthropic"


def make_anthropic_client(settings: Settings, *, max_retries: int = 2) -> AnthropicBatchClient:
    """The Anthropic client with the configured key (the SDK is imported now)."""
    if not settings.anthropic_api_key:
        raise AuthenticationFailed(
            "No Anthropic API key is configured. Set ANTHROPIC_API_KEY in the environment, in .env or in "
            ".streamlit/secrets.toml, or choose another provider."
        )
    import anthropic

    sdk = anthropic.Anthropic(api_key=settings.anthropic_api_key, base_url=settings.anthropic_base_url or None,
                              max_retries=max_retries)
    return AnthropicBatchClient(sdk, staging_dir=staging_dir(settings))


__all__ = ["AnthropicBatchClient", "make_anthropic_client", "message_batch_request", "openai_result_line",
           "tag_custom_id", "untag_custom_id"]
