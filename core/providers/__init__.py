"""Batch providers behind one vocabulary (:mod:`core.providers.base`).

- ``openai`` and ``local``: the ``openai`` SDK (:mod:`core.providers.openai`)
- ``azure``: Azure OpenAI Global Batch through the ``openai`` SDK's Azure client
  (:mod:`core.providers.azure`)
- ``anthropic``: Anthropic Message Batches through the ``anthropic`` SDK
  (:mod:`core.providers.anthropic`), translated to and from OpenAI batch lines

SDKs are imported only when a provider is used, so the command line starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.providers.base import FileLimits
from core.requests import MAX_BYTES_PER_FILE, MAX_REQUESTS_PER_FILE
from core.settings import ProviderName, Settings

if TYPE_CHECKING:
    from core.providers.base import ProviderClient

_MB = 1024 * 1024

#: Requests and bytes per batch, per provider, as each documents them.
FILE_LIMITS: dict[str, FileLimits] = {
    "openai": FileLimits(MAX_REQUESTS_PER_FILE, MAX_BYTES_PER_FILE,
                         "OpenAI Batch API: 50,000 requests and 200 MB per input file"),
    "local": FileLimits(MAX_REQUESTS_PER_FILE, MAX_BYTES_PER_FILE, "the embedded backend follows OpenAI's limits"),
    "azure": FileLimits(100_000, 200 * _MB,
                        "Azure OpenAI global batch: 100,000 requests and 200 MB per input file"),
    # Anthropic counts the whole create request (256 MB): our OpenAI-shaped lines are planned to
    # 230 MB so that the translated request (the schema sent as a tool instead of a
    # response_format, about the same size) stays under it; the adapter checks the real size.
    "anthropic": FileLimits(100_000, 230 * _MB,
                            "Anthropic Message Batches: 100,000 requests or 256 MB per batch"),
}


def file_limits(provider: str) -> FileLimits:
    """How many requests and bytes one batch file may hold at this provider."""
    return FILE_LIMITS.get(provider, FILE_LIMITS["openai"])


def make_client(settings: Settings, provider: ProviderName | None = None, *, max_retries: int = 2) -> ProviderClient:
    """The client for a provider, built from the settings (its SDK imported now)."""
    chosen = provider or settings.provider
    if chosen == "azure":
        from core.providers.azure import make_azure_client

        return make_azure_client(settings, max_retries=max_retries)
    if chosen == "anthropic":
        from core.providers.anthropic import make_anthropic_client

        return make_anthropic_client(settings, max_retries=max_retries)
    from core.providers.openai import make_openai_client

    return make_openai_client(settings, chosen, max_retries=max_retries)
