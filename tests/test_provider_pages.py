"""The new providers on the dashboard (Streamlit AppTest): Submit lists configured providers,
the sidebar says where each key came from, and never shows a key."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from conftest import open_page
from core.local import stop_running

SECRET = "anthropic-key-placeholder-never-shown"


@pytest.fixture(autouse=True)
def stop_daemon(isolated_data_dir: Path) -> Iterator[None]:
    yield
    stop_running(isolated_data_dir / "local_backend")


def shown_text(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "warning", "info", "error", "success")
             for e in getattr(at, kind)]
    parts += [e.value for kind in ("markdown", "caption", "warning") for e in getattr(at.sidebar, kind)]
    return "\n".join(str(p) for p in parts)


def test_submit_lists_configured_providers_and_the_sidebar_names_key_sources(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    at = open_page("pages/submit.py")
    box = at.selectbox(key="submit_provider")
    assert box.options == ["OpenAI", "Embedded local backend", "Anthropic"]  # Azure is not configured
    assert any("Anthropic: key configured (from environment)" in c.value for c in at.sidebar.caption)
    box.set_value("anthropic").run()
    assert at.text_input(key="submit_model_anthropic").value == "claude-haiku-5-5"
    assert not any("Anthropic key" in w.value for w in at.warning)
    assert SECRET not in shown_text(at)


def test_an_unconfigured_default_provider_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BDASSET_PROVIDER", "azure")
    at = open_page("pages/submit.py")
    assert at.selectbox(key="submit_provider").value == "azure"
    assert any("Azure OpenAI is not configured" in w.value for w in at.sidebar.warning)
    assert any("AZURE_OPENAI_ENDPOINT" in w.value for w in at.warning)
