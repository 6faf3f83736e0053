"""The embedded local backend: an OpenAI-compatible Files + Batches API on 127.0.0.1.

Use `LocalBackend` in-process (tests, one-off runs) or `ensure_running` to get the base URL
of a detached server process that keeps running batches while the app is closed.
"""

from __future__ import annotations

from .baseline import BASELINE_MODEL
from .daemon import config_fingerprint, ensure_running, server_status, stop_running
from .engine import ApiError, BackendConfig, Engine
from .server import LocalBackend

__all__ = [
    "BASELINE_MODEL",
    "ApiError",
    "BackendConfig",
    "Engine",
    "LocalBackend",
    "config_fingerprint",
    "ensure_running",
    "server_status",
    "stop_running",
]
