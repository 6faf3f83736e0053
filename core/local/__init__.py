"""The embedded local backend: an OpenAI-compatible Files + Batches API on 127.0.0.1.

Use `LocalBackend` in-process (tests, one-off runs) or `ensure_running` to get the base URL
and bearer token (`LocalEndpoint`) of a detached server process that keeps running batches
while the app is closed. Every request needs the state dir's token (see `auth`).
"""

from __future__ import annotations

from .auth import read_token, state_token
from .baseline import BASELINE_MODEL
from .daemon import LocalEndpoint, config_fingerprint, ensure_running, server_status, stop_running
from .engine import ApiError, BackendConfig, Engine
from .server import LocalBackend

__all__ = [
    "BASELINE_MODEL",
    "ApiError",
    "BackendConfig",
    "Engine",
    "LocalBackend",
    "LocalEndpoint",
    "config_fingerprint",
    "ensure_running",
    "read_token",
    "server_status",
    "state_token",
    "stop_running",
]
