"""What every provider adapter offers the job engine, in one vocabulary (OpenAI Batch API words:
files, batches, request counts, output and error files), and the plain types it answers in.

Adapters translate their provider's shapes at this boundary, so jobs, the registry, results
and pages never learn which provider answered. This module imports no SDK."""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol, runtime_checkable

from core.errors import AuthenticationFailed, ProviderError, TransientProviderError

# the statuses live with the job records (core.models), which must load without any SDK
from core.models import ACTIVE_STATUSES, TERMINAL_STATUSES, BatchStatus  # noqa: F401  (re-exported)


class BatchNotFoundAtProvider(ProviderError):
    """The provider does not know this batch or file id."""


# Ids a provider returns end up in URLs and (hashed when odd) in file names: accept only
# plain ones (OpenAI: batch_..., file-...; Azure: batch_<uuid>; Anthropic: msgbatch_...).
_ID_SHAPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}$")


def is_plain_id(value: object) -> bool:
    """Whether a provider's id may go into a URL (see :func:`checked_id`)."""
    return isinstance(value, str) and bool(_ID_SHAPE.match(value)) and ".." not in value


def checked_id(value: object, kind: str) -> str:
    """A provider's id, accepted only when it is a plain id (never a path or a URL part)."""
    if not is_plain_id(value):
        raise ProviderError(f"The provider returned a {kind} id that is not a plain id: {str(value)[:80]!r}.")
    return value  # type: ignore[return-value]


_checked_id = checked_id  # the name the openai adapter has always used


@dataclass(frozen=True)
class FileLimits:
    """What one batch may hold at a provider: requests and bytes of our request file."""

    max_requests: int
    max_bytes: int
    source: str  # where the figures come from, for the README and error messages


@dataclass(frozen=True)
class UploadedFile:
    """A file stored at the provider."""

    file_id: str
    filename: str
    created_at: int
    purpose: str


@dataclass(frozen=True)
class BatchInfo:
    """What the provider currently says about one batch, in plain types."""

    batch_id: str
    status: BatchStatus
    input_file_id: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    created_at: int | None = None
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    expires_at: int | None = None
    errors: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    usage: dict[str, Any] | None = None

    @classmethod
    def from_sdk(cls, batch: Any) -> "BatchInfo":
        """From an ``openai`` SDK batch object (OpenAI, Azure OpenAI, the local backend)."""
        counts = batch.request_counts
        errors: list[str] = []
        if batch.errors and batch.errors.data:
            for err in batch.errors.data:
                where = f" (line {err.line})" if getattr(err, "line", None) else ""
                errors.append(f"{err.code or 'error'}: {err.message or ''}{where}".strip())
        usage = batch.usage.model_dump() if getattr(batch, "usage", None) is not None else None
        return cls(
            batch_id=checked_id(batch.id, "batch"),
            status=batch.status,
            input_file_id=batch.input_file_id,
            output_file_id=None if batch.output_file_id is None else checked_id(batch.output_file_id, "file"),
            error_file_id=None if batch.error_file_id is None else checked_id(batch.error_file_id, "file"),
            total=counts.total if counts else 0,
            completed=counts.completed if counts else 0,
            failed=counts.failed if counts else 0,
            created_at=batch.created_at,
            in_progress_at=batch.in_progress_at,
            finalizing_at=batch.finalizing_at,
            completed_at=batch.completed_at,
            failed_at=batch.failed_at,
            expired_at=batch.expired_at,
            cancelling_at=batch.cancelling_at,
            cancelled_at=batch.cancelled_at,
            expires_at=batch.expires_at,
            errors=tuple(errors),
            metadata=dict(batch.metadata or {}),
            model=getattr(batch, "model", None),
            usage=usage,
        )

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@runtime_checkable
class ProviderClient(Protocol):
    """The calls the job engine makes, whatever the provider. Every method raises core errors
    (:mod:`core.errors`), never an SDK's own."""

    provider: str

    def upload(self, path: Path, *, name: str | None = None, purpose: str = "batch") -> str:
        """Store a JSONL request file (OpenAI batch lines) for a batch; return its file id."""
        ...

    def iter_files(self, *, purpose: str = "batch") -> Iterator[UploadedFile]:
        """Files stored for this purpose."""
        ...

    def delete_file(self, file_id: str) -> None:
        """Delete one stored file."""
        ...

    def create_batch(self, *, input_file_id: str, metadata: dict[str, str]) -> BatchInfo:
        """Start a batch over a stored file; ``metadata`` holds our job id and batch key."""
        ...

    def retrieve(self, batch_id: str) -> BatchInfo:
        """The batch as the provider sees it now."""
        ...

    def cancel(self, batch_id: str) -> BatchInfo:
        """Ask the provider to stop the batch; finished answers stay downloadable."""
        ...

    def iter_batches(self, *, page_size: int = 100) -> Iterator[BatchInfo]:
        """Every batch the provider lists, with our metadata where it can be recovered."""
        ...

    def download(self, file_id: str) -> bytes:
        """An output or error file as OpenAI batch output lines."""
        ...


def error_message(exc: Any) -> str:
    """The provider's own words from an SDK error: ``error.message`` of its JSON body, else
    the SDK's message."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", exc))


@contextmanager
def sdk_errors(sdk: Any, base_error: type[Exception], *, action: str, who: str, where: str,
               rejected_key: str) -> Iterator[None]:
    """Turn an SDK's errors into core errors. The ``openai`` and ``anthropic`` SDKs share the
    class names used here; ``base_error`` is the SDK's root error, ``who`` names the provider
    in messages, ``where`` the address it was reached at, ``rejected_key`` is the whole message
    for a rejected key."""
    try:
        yield
    except sdk.AuthenticationError:
        raise AuthenticationFailed(rejected_key) from None
    except sdk.NotFoundError as exc:
        raise BatchNotFoundAtProvider(f"{action}: not found at {who} ({error_message(exc)}).") from None
    except sdk.RateLimitError as exc:
        raise TransientProviderError(f"{action}: rate limited by {who}; try again later ({error_message(exc)}).") from None
    except sdk.APITimeoutError:
        raise TransientProviderError(f"{action}: {where} did not answer in time; try again later.") from None
    except sdk.APIConnectionError:
        raise TransientProviderError(f"{action}: could not reach {where}; check the network and try again.") from None
    except sdk.APIStatusError as exc:
        if exc.status_code >= 500 or exc.status_code in (408, 409):
            raise TransientProviderError(
                f"{action}: {who} had a temporary problem (HTTP {exc.status_code}); try again later."
            ) from None
        raise ProviderError(f"{action}: {who} refused (HTTP {exc.status_code}): {error_message(exc)}") from None
    except base_error as exc:
        raise ProviderError(f"{action}: {exc}") from None
