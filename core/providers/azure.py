"""Azure OpenAI Global Batch through the ``openai`` SDK's Azure client.

Azure speaks the OpenAI Files and Batches API under ``<endpoint>/openai/...?api-version=...``
with an ``api-key`` header; what differs is translated here (Azure's batch how-to,
learn.microsoft.com/azure/ai-foundry/openai/how-to/batch):

- the model of every request is the Global Batch *deployment* name (our job's model);
- input lines and the batch name the endpoint ``/chat/completions`` (no ``/v1``);
- an uploaded batch file gets an expiry (``expires_after``, 14 days), which raises the limit of
  batch files per resource from 500 to 10,000 and cleans them up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO, Iterator

from core.errors import AuthenticationFailed
from core.providers.openai import BatchClient

if TYPE_CHECKING:
    from core.settings import Settings

AZURE_ENDPOINT = "/chat/completions"
#: 14 days, the shortest expiry Azure accepts (1,209,600 to 2,592,000 seconds).
FILE_EXPIRY_SECONDS = 1_209_600
_OPENAI_URL = b'"url":"/v1/chat/completions"'
_AZURE_URL = b'"url":"/chat/completions"'


def azure_lines(handle: BinaryIO) -> Iterator[bytes]:
    """Our request lines with Azure's URL. Only the line's own ``url`` field is rewritten: inside
    a JSON string (a paragraph) the quotes would be escaped, so the bytes cannot occur there."""
    for line in handle:
        yield line.replace(_OPENAI_URL, _AZURE_URL, 1)


class AzureBatchClient(BatchClient):
    """The openai adapter with Azure's endpoint, file expiry and key setting."""

    key_setting = "AZURE_OPENAI_API_KEY"
    endpoint = AZURE_ENDPOINT

    def _upload_content(self, handle: BinaryIO) -> bytes:
        return b"".join(azure_lines(handle))

    def _upload_extra_body(self) -> dict[str, object]:
        return {"expires_after": {"seconds": FILE_EXPIRY_SECONDS, "anchor": "created_at"}}


def make_azure_client(settings: Settings, *, max_retries: int = 2) -> AzureBatchClient:
    """The Azure OpenAI client from the settings (endpoint, key, API version)."""
    if not settings.azure_api_key or not settings.azure_endpoint:
        missing = " and ".join(name for name, value in (("AZURE_OPENAI_ENDPOINT", settings.azure_endpoint),
                                                         ("AZURE_OPENAI_API_KEY", settings.azure_api_key))
                               if not value)
        raise AuthenticationFailed(
            f"Azure OpenAI is not configured: set {missing} in the environment, in .env or in "
            ".streamlit/secrets.toml (and AZURE_OPENAI_DEPLOYMENT, your Global Batch deployment), "
            "or choose another provider."
        )
    import openai

    sdk = openai.AzureOpenAI(api_key=settings.azure_api_key, azure_endpoint=settings.azure_endpoint,
                             api_version=settings.azure_api_version, max_retries=max_retries)
    return AzureBatchClient(sdk, provider="azure")
