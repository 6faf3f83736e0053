"""Settings and secrets: where the key comes from, and that it is never written anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SAMPLES, make_backend
from core.client import make_client
from core.errors import AuthenticationFailed, CoreError
from core.jobs import JobService
from core.settings import BASELINE_MODEL, load_settings

SENTINEL = "test-key-NEVER-WRITE-THIS-0123456789abcdef"  # not key-shaped on purpose


def project(tmp_path: Path, *, env_file: str = "", secrets: str = "") -> Path:
    root = tmp_path / "project"
    (root / ".streamlit").mkdir(parents=True, exist_ok=True)
    if env_file:
        (root / ".env").write_text(env_file)
    if secrets:
        (root / ".streamlit" / "secrets.toml").write_text(secrets)
    return root


def test_default_is_local_without_a_key(tmp_path: Path) -> None:
    settings = load_settings(root=project(tmp_path), environ={})
    assert settings.provider == "local" and not settings.has_openai_key
    assert settings.model_for("local").startswith("local-e5-small+examples-")  # the embedding labeler
    pinned = load_settings(root=project(tmp_path), environ={"BDASSET_LOCAL_LABELER": "rules"})
    assert pinned.model_for("local") == BASELINE_MODEL


@pytest.mark.parametrize(
    ("environ", "env_file", "secrets", "source"),
    [
        ({"OPENAI_API_KEY": SENTINEL}, "", "", "environment"),
        ({}, f"OPENAI_API_KEY={SENTINEL}\n", "", ".env"),
        ({}, "", f'OPENAI_API_KEY = "{SENTINEL}"\n', "secrets.toml"),
    ],
)
def test_key_sources(tmp_path: Path, environ: dict, env_file: str, secrets: str, source: str) -> None:
    settings = load_settings(root=project(tmp_path, env_file=env_file, secrets=secrets), environ=environ)
    assert settings.provider == "openai" and settings.key_source == source
    assert SENTINEL not in repr(settings)


def test_environment_wins_over_files(tmp_path: Path) -> None:
    root = project(tmp_path, env_file="BDASSET_PROVIDER=openai\n", secrets='BDASSET_MODEL = "gpt-4o-mini"\n')
    settings = load_settings(root=root, environ={"BDASSET_PROVIDER": "local"})
    assert settings.provider == "local" and settings.default_model == "gpt-4o-mini"


def test_bad_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(CoreError, match="Unknown provider 'bedrock'"):
        load_settings(root=project(tmp_path), environ={"BDASSET_PROVIDER": "bedrock"})
    with pytest.raises(CoreError, match="secrets.toml is not valid TOML"):
        load_settings(root=project(tmp_path, secrets="OPENAI_API_KEY = \n"), environ={})


def test_openai_without_key_is_refused(tmp_path: Path) -> None:
    settings = load_settings(root=project(tmp_path), environ={}, provider="openai")
    with pytest.raises(AuthenticationFailed, match="No OpenAI API key"):
        make_client(settings, "openai")


def test_key_never_reaches_registry_results_or_logs(tmp_path: Path, isolated_data_dir: Path,
                                                    request: pytest.FixtureRequest) -> None:
    # The openai provider, pointed at the loopback backend as a stand-in for api.openai.com
    # (the backend takes the key as its bearer token, held in memory only).
    backend = make_backend(tmp_path, api_key=SENTINEL)
    backend.start()
    request.addfinalizer(backend.stop)
    environ = {"OPENAI_API_KEY": SENTINEL, "OPENAI_BASE_URL": backend.base_url,
               "BDASSET_DATA_DIR": str(isolated_data_dir)}
    settings = load_settings(root=project(tmp_path), environ=environ)
    service = JobService(settings=settings)
    job = service.submit(service.prepare("investment_activity_classification", inputs=sorted(SAMPLES.glob("*.csv")),
                                         model="gpt-4.1-mini"))
    assert job.provider == "openai"
    service.wait([job.id], poll_interval=0.05, timeout=60)
    service.collect(job.id)
    written = [p for folder in (isolated_data_dir, tmp_path / "backend") for p in folder.rglob("*") if p.is_file()]
    assert len(written) > 5
    leaks = [p for p in written if SENTINEL.encode() in p.read_bytes()]
    assert leaks == []
