"""Where the job engine's provider clients come from: kept as the historic import path.
The adapters live in :mod:`core.providers` (openai/local, azure, anthropic)."""

from __future__ import annotations

from core.providers import file_limits, make_client  # noqa: F401
from core.providers.base import (  # noqa: F401
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    BatchInfo,
    BatchNotFoundAtProvider,
    BatchStatus,
    ProviderClient,
    UploadedFile,
    _checked_id,
)
from core.providers.openai import BatchClient, local_backend_config  # noqa: F401
