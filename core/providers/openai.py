"""The adapter for providers reached through the ``openai`` SDK: OpenAI itself, the embedded
local backend, and (through :mod:`core.providers.azure`) Azure OpenAI. The only module besides
that one which talks to the ``openai`` SDK."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterator

import openai

from core.errors import AuthenticationFailed
from core.requests import ENDPOINT
from core.settings import ProviderName, Settings

if TYPE_CHECKING:  # core.local is imported lazily: only the local provider needs it
    from core.local import BackendConfig

from core.providers.base import BatchInfo, UploadedFile, _checked_id, _ID_SHAPE, sdk_errors


class BatchClient:
    """Files and Batches calls, with SDK errors turned into core errors."""

    #: the setting that holds the key, named when the provider rejects it
    key_setting = "OPENAI_API_KEY"
    #: the ``endpoint`` a batch is created for (Azure names it without ``/v1``)
    endpoint = ENDPOINT

    def __init__(self, sdk: openai.OpenAI, *, provider: ProviderName) -> None:
        self._sdk = sdk
        self.provider = provider

    @property
    def base_url(self) -> str:
        return str(self._sdk.base_url)

    def _translate(self, action: str) -> AbstractContextManager[None]:
        if self.provider == "local":
            where = "the embedded local backend"
            rejected = (f"{action}: the embedded local backend refused our token (was its api_token file "
                        "replaced while the app ran?); restart the app.")
        else:
            where = self.base_url
            rejected = (f"{action}: the provider rejected the API key. Check {self.key_setting} "
                        "(environment, .env or .streamlit/secrets.toml).")
        return sdk_errors(openai, openai.OpenAIError, action=action, who="the provider", where=where,
                          rejected_key=rejected)

    def upload(self, path: Path, *, name: str | None = None, purpose: str = "batch") -> str:
        """Upload a JSONL request file (under ``name`` at the provider); return its file id.
        ``purpose="user_data"`` uploads other files a batch needs (the labeler's examples)."""
        with self._translate(f"Uploading {path.name}"), path.open("rb") as handle:
            content = self._upload_content(handle) if purpose == "batch" else handle
            extra = self._upload_extra_body()
            created = self._sdk.files.create(file=(name or path.name, content), purpose=purpose,
                                             **({"extra_body": extra} if extra else {}))
            return _checked_id(created.id, "file")

    def _upload_content(self, handle: BinaryIO) -> BinaryIO | bytes:
        """The request file as this provider wants it (OpenAI: as written)."""
        return handle

    def _upload_extra_body(self) -> dict[str, object] | None:
        """Extra fields of the upload request (Azure: the file's expiry)."""
        return None

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
                endpoint=self.endpoint,
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


def make_openai_client(settings: Settings, provider: ProviderName | None = None, *,
                       max_retries: int = 2) -> BatchClient:
    """Build the client for OpenAI with the configured key, or for the embedded local backend
    (started on 127.0.0.1 if it is not running yet)."""
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
