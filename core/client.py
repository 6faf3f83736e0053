"""The only module that talks to the ``openai`` SDK. Providers differ by construction only."""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import openai

from core.errors import AuthenticationFailed, ProviderError, TransientProviderError
from core.requests import ENDPOINT
from core.settings import ProviderName, Settings

if TYPE_CHECKING:  # core.local is imported lazily: only the local provider needs it
    from core.local import BackendConfig

# the statuses live with the job records (core.models), which must load without the SDK
from core.models import ACTIVE_STATUSES, TERMINAL_STATUSES, BatchStatus  # noqa: E402  (re-exported)


class BatchNotFoundAtProvider(ProviderError):
    """The provider does not know this batch or file id."""


# Ids a provider returns end up in URLs and (hashed when odd) in file names: accept only
# plain ones (OpenAI: batch_..., file-...; Azure: batch_<uuid>; Anthropic: msgbatch_...).
_ID_SHAPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}$")


def _checked_id(value: object, kind: str) -> str:
    if not isinstance(value, str) or not _ID_SHAPE.match(value) or ".." in value:
        raise ProviderError(f"The provider returned a {kind} id that is not a plain id: {str(value)[:80]!r}.")
    return value


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
        counts = batch.request_counts
        errors: list[str] = []
        if batch.errors and batch.errors.data:
            for err in batch.errors.data:
                where = f" (line {err.line})" if getattr(err, "line", None) else ""
                errors.append(f"{err.code or 'error'}: {err.message or ''}{where}".strip())
        usage = batch.usage.model_dump() if getattr(batch, "usage", None) is not None else None
        return cls(
            batch_id=_checked_id(batch.id, "batch"),
            status=batch.status,
            input_file_id=batch.input_file_id,
            output_file_id=None if batch.output_file_id is None else _checked_id(batch.output_file_id, "file"),
            error_file_id=None if batch.error_file_id is None else _checked_id(batch.error_file_id, "file"),
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


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return exc.message


class BatchClient:
    """Files and Batches calls, with SDK errors turned into core errors."""

    def __init__(self, sdk: openai.OpenAI, *, provider: ProviderName) -> None:
        self._sdk = sdk
        self.provider = provider

    @property
    def base_url(self) -> str:
        return str(self._sdk.base_url)

    @contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        where = "the embedded local backend" if self.provider == "local" else self.base_url
        try:
            yield
        except openai.AuthenticationError:
            if self.provider == "local":
                raise AuthenticationFailed(
                    f"{action}: the embedded local backend refused our token (was its api_token file "
                    "replaced while the app ran?); restart the app."
                ) from None
            raise AuthenticationFailed(
                f"{action}: the provider rejected the API key. Check OPENAI_API_KEY "
                "(environment, .env or .streamlit/secrets.toml)."
            ) from None
        except openai.NotFoundError as exc:
            raise BatchNotFoundAtProvider(f"{action}: not found at the provider ({_message(exc)}).") from None
        except openai.RateLimitError as exc:
            raise TransientProviderError(f"{action}: rate limited by the provider; try again later ({_message(exc)}).") from None
        except openai.APITimeoutError:
            raise TransientProviderError(f"{action}: {where} did not answer in time; try again later.") from None
        except openai.APIConnectionError:
            raise TransientProviderError(f"{action}: could not reach {where}; check the network and try again.") from None
        except openai.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code in (408, 409):
                raise TransientProviderError(
                    f"{action}: the provider had a temporary problem (HTTP {exc.status_code}); try again later."
                ) from None
            raise ProviderError(f"{action}: the provider refused (HTTP {exc.status_code}): {_message(exc)}") from None
        except openai.OpenAIError as exc:
            raise ProviderError(f"{action}: {exc}") from None

    def upload(self, path: Path, *, name: str | None = None, purpose: str = "batch") -> str:
        """Upload a JSONL request file (under ``name`` at the provider); return its file id.
        ``purpose="user_data"`` uploads other files a batch needs (the labeler's examples)."""
        with self._translate(f"Uploading {path.name}"), path.open("rb") as handle:
            return _checked_id(self._sdk.files.create(file=(name or path.name, handle), purpose=purpose).id, "file")

    def iter_files(self, *, purpose: str = "batch") -> Iterator[UploadedFile]:
        """Files stored at the provider for this purpose (the SDK follows the cursor)."""
        with self._translate("Listing files"):
            for item in self._sdk.files.list(purpose=purpose):
                if isinstance(item.id, str) and _ID_SHAPE.match(item.id):
                    yield UploadedFile(file_id=item.id, filename=str(item.filename or ""),
                                       created_at=int(item.created_at or 0), purpose=str(item.purpose or ""))

    def delete_file(self, file_id: str) -> None:
        """Delete one stored file at the provider."""
        with self._translate(f"Deleting file {file_id}"):
            self._sdk.files.delete(_checked_id(file_id, "file"))

    def create_batch(self, *, input_file_id: str, metadata: dict[str, str]) -> BatchInfo:
        with self._translate("Creating the batch"):
            batch = self._sdk.batches.create(
                input_file_id=input_file_id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata=metadata,
            )
        return BatchInfo.from_sdk(batch)

    def retrieve(self, batch_id: str) -> BatchInfo:
        with self._translate(f"Checking batch {batch_id}"):
            return BatchInfo.from_sdk(self._sdk.batches.retrieve(batch_id))

    def cancel(self, batch_id: str) -> BatchInfo:
        with self._translate(f"Cancelling batch {batch_id}"):
            return BatchInfo.from_sdk(self._sdk.batches.cancel(batch_id))

    def iter_batches(self, *, page_size: int = 100) -> Iterator[BatchInfo]:
        """Every batch the provider knows, newest first (the SDK follows the cursor)."""
        with self._translate("Listing batches"):
            for batch in self._sdk.batches.list(limit=min(max(page_size, 1), 100)):
                yield BatchInfo.from_sdk(batch)

    def download(self, file_id: str) -> bytes:
        with self._translate(f"Downloading file {file_id}"):
            return self._sdk.files.content(file_id).content


def make_client(settings: Settings, provider: ProviderName | None = None, *, max_retries: int = 2) -> BatchClient:
    """Build the client for a provider: OpenAI with the configured key, or the embedded
    local backend (started on 127.0.0.1 if it is not running yet)."""
    chosen = provider or settings.provider
    if chosen == "openai":
        if not settings.openai_api_key:
            raise AuthenticationFailed(
                "No OpenAI API key is configured. Set OPENAI_API_KEY in the environment, in .env or in "
                ".streamlit/secrets.toml, or use the embedded local backend (--provider local)."
            )
        sdk = openai.OpenAI(
            api_key=settings.openai_api_key, base_url=settings.openai_base_url or None, max_retries=max_retries
        )
        return BatchClient(sdk, provider="openai")
    from core.local.daemon import ensure_running

    # The backend's bearer token is the SDK's api_key: the SDK sends it as Authorization.
    endpoint = ensure_running(local_backend_config(settings))
    sdk = openai.OpenAI(api_key=endpoint.api_key, base_url=endpoint.base_url, max_retries=max_retries)
    return BatchClient(sdk, provider="local")


def local_backend_config(settings: Settings) -> "BackendConfig":
    """The embedded local backend's configuration from the settings."""
    from core.local import BackendConfig

    return BackendConfig(
        state_dir=settings.local_state_dir,
        chat_base_url=settings.local_chat_url,
        chat_api_key=settings.local_chat_key,
        chat_model=settings.local_chat_model,
        concurrency=settings.local_concurrency,
        completion_window_seconds=settings.local_window_seconds,
        enqueued_token_limit=settings.local_enqueued_token_limit,
    )
