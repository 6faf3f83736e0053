"""The embedded local backend: an OpenAI-compatible Files + Batches API on 127.0.0.1.

Use `LocalBackend` in-process (tests, one-off runs) or `ensure_running` to get the base URL
and bearer token (`LocalEndpoint`) of a detached server process that keeps running batches
while the app is closed. Every request needs the state dir's token (see `auth`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_names

if TYPE_CHECKING:
    from .auth import read_token, state_token
    from .baseline import BASELINE_MODEL
    from .daemon import LocalEndpoint, config_fingerprint, ensure_running, server_status, stop_running
    from .api import ApiError
    from .config import BackendConfig
    from .engine import Engine
    from .server import LocalBackend

# Each name loads its module at first use (PEP 562): importing a light submodule such as
# core.local.labeler must not start the HTTP client and server stack (the command line lists
# jobs without it).
_HOMES = {
    "read_token": "auth", "state_token": "auth", "BASELINE_MODEL": "baseline",
    "LocalEndpoint": "daemon", "config_fingerprint": "daemon", "ensure_running": "daemon",
    "server_status": "daemon", "stop_running": "daemon",
    "ApiError": "api", "BackendConfig": "config", "Engine": "engine", "LocalBackend": "server",
}

__getattr__, __dir__ = lazy_names(__name__, {name: f".{module}" for name, module in _HOMES.items()})


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
