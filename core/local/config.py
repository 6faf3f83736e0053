"""What one local backend is set up to do: :class:`BackendConfig`.

Kept apart from the engine so that starting or inspecting the detached server (``daemon``,
``__main__``) reads a configuration without loading the batch machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BackendConfig:
    state_dir: Path
    chat_base_url: str | None = None  # OpenAI-compatible chat server; None -> baseline scorer
    chat_api_key: str | None = None  # never logged, never written to state files
    chat_model: str | None = None  # if set, replaces body["model"] when forwarding
    concurrency: int = 8  # parallel requests
    completion_window_seconds: float = 86_400.0
    baseline_delay_seconds: float = 0.0
    max_requests_per_file: int = 50_000
    max_file_bytes: int = 200 * 1024 * 1024
    # Like the provider's per-model queue limit: a batch whose input tokens, added to those of
    # the active batches of the same model, exceed it fails with token_limit_exceeded.
    enqueued_token_limit: int | None = None

    def __repr__(self) -> str:  # keep the key out of logs and tracebacks
        key = "***" if self.chat_api_key else None
        return (
            f"BackendConfig(state_dir={str(self.state_dir)!r}, chat_base_url={self.chat_base_url!r}, "
            f"chat_api_key={key!r}, chat_model={self.chat_model!r}, concurrency={self.concurrency}, "
            f"completion_window_seconds={self.completion_window_seconds}, "
            f"baseline_delay_seconds={self.baseline_delay_seconds}, "
            f"max_requests_per_file={self.max_requests_per_file}, max_file_bytes={self.max_file_bytes}, "
            f"enqueued_token_limit={self.enqueued_token_limit})"
        )

    __str__ = __repr__
