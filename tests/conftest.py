"""Shared fixtures: every test gets its own data folder, registry and local backend."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Iterator

import openai
import pytest

from core.client import BatchClient
from core.jobs import JobService
from core.local import BackendConfig, LocalBackend
from core.registry import Registry
from core.settings import Settings, load_settings

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "processed" / "biodiversity_related_paragraphs"
APP = str(Path(__file__).resolve().parent.parent / "app.py")
HOME_PAGE = "pages/home.py"

SETTING_NAMES = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "BDASSET_PROVIDER", "BDASSET_MODEL", "BDASSET_LOCAL_CHAT_URL",
    "BDASSET_LOCAL_CHAT_KEY", "BDASSET_LOCAL_CHAT_MODEL", "BDASSET_LOCAL_CONCURRENCY", "BDASSET_LOCAL_WINDOW_SECONDS",
    "BDASSET_LOCAL_ENQUEUED_TOKEN_LIMIT", "BDASSET_COLUMN_NAMES", "BDASSET_MAX_INPUT_BYTES", "BDASSET_MAX_INPUT_ROWS",
    "BDASSET_MAX_INPUT_CELLS", "BDASSET_MAX_PARAGRAPH_CHARS", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY",
    "OPENAI_API_VERSION", "AZURE_OPENAI_DEPLOYMENT", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "BDASSET_ANTHROPIC_MODEL",
)


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the data folder at a temp dir holding a copy of the sample inputs, and forget any
    configured key or provider."""
    data_dir = tmp_path / "data"
    shutil.copytree(SAMPLES, data_dir / "processed" / "biodiversity_related_paragraphs")
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BDASSET_DATA_DIR", str(data_dir))
    # New local jobs default to the embedding labeler (seconds per paragraph on this machine's
    # two cores); tests that do not choose a model get the instant rules baseline. The labeler's
    # own tests (tests/test_labeler*.py) remove this.
    monkeypatch.setenv("BDASSET_LOCAL_LABELER", "rules")
    return data_dir


@pytest.fixture
def settings(isolated_data_dir: Path, tmp_path: Path) -> Settings:
    root = tmp_path / "project"  # no .env, no secrets.toml
    root.mkdir()
    return load_settings(root=root)


def make_backend(tmp_path: Path, *, api_key: str | None = None, **config: object) -> LocalBackend:
    """An in-process backend on tmp_path/backend (not started); ``api_key`` fixes its token."""
    return LocalBackend(BackendConfig(state_dir=tmp_path / "backend", **config), api_key=api_key)  # type: ignore[arg-type]


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LocalBackend]:
    with make_backend(tmp_path) as running:
        yield running


def service_for(backend: LocalBackend | str, settings: Settings, *, api_key: str | None = None,
                **kwargs: object) -> JobService:
    """A JobService whose 'local' provider is the given in-process backend (or base URL, with
    ``api_key`` as its token), over real HTTP with the backend's bearer token."""
    if isinstance(backend, str):
        base_url, token = backend, api_key or "no-token-given"
    else:
        base_url, token = backend.base_url, api_key or backend.api_key

    def factory(provider: str) -> BatchClient:
        sdk = openai.OpenAI(api_key=token, base_url=base_url, max_retries=0)
        return BatchClient(sdk, provider="local")

    return JobService(settings=settings, registry=Registry(settings.registry_path), client_factory=factory, **kwargs)


@pytest.fixture
def service(backend: LocalBackend, settings: Settings) -> JobService:
    return service_for(backend, settings)


def sample_files() -> list[Path]:
    """The shipped sample input CSVs (48 paragraphs in two files)."""
    return sorted(SAMPLES.glob("*.csv"))


def finish(service: JobService, *job_ids: str, timeout: float = 90) -> None:
    """Poll until the jobs are finished; fail the test if they are not by the timeout."""
    jobs = service.wait(list(job_ids), poll_interval=0.05, timeout=timeout)
    assert all(j.is_finished for j in jobs), [j.status for j in jobs]


def run_cli(service: JobService | None, *argv: str) -> tuple[int, str, str]:
    """Run the command line in-process: (exit code, stdout, stderr)."""
    from core.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err, service=service)
    return code, out.getvalue(), err.getvalue()


def run_cli_json(service: JobService, *argv: str) -> dict:
    """Run a command with --json; it must succeed. The parsed object."""
    code, out, err = run_cli(service, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def open_page(page: str = "pages/submit.py"):
    """The dashboard in Streamlit's AppTest: the app at "/" (the home page), then ``page``;
    fails on any exception the pages raised."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page != HOME_PAGE:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def vega_charts(at) -> dict[str, tuple[dict, "pd.DataFrame"]]:
    """The Vega-Lite charts an AppTest run drew, by title: each one's spec and its data (AppTest
    gives a chart no key; Streamlit moves the spec's data into the element as Arrow)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    charts = {}
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        charts[spec["title"]] = (spec, convert_arrow_bytes_to_pandas_df(chart.proto.data.data))
    return charts
