"""Several providers at once: a retry on another provider with per-row provenance, Evaluate's
compare across providers, and the new keys read from every source and never leaked."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from conftest import finish, run_cli_json
from core.evaluate.compare import run_comparison
from core.explore import load_results
from core.jobs import JobService
from core.providers import make_client
from core.registry import Registry
from core.results import read_results
from core.settings import Settings, load_settings
from fakes_providers import ANTHROPIC_KEY, AZURE_KEY, FakeAnthropicServer, FakeAzureServer

TASK1 = "investment_activity_classification"
DEPLOYMENT = "gpt-4.1-mini-batch"
TEXTS = ["We invested EUR 5 million in a biodiversity fund.", "Nature matters to us. SLOW",
         "We allocated USD 2 million to wetland restoration. ERRORED", "Biodiversity loss is a risk."]


@pytest.fixture
def fakes() -> Iterator[tuple[FakeAnthropicServer, FakeAzureServer]]:
    with FakeAnthropicServer() as anthropic_fake, FakeAzureServer(deployments={DEPLOYMENT}) as azure_fake:
        yield anthropic_fake, azure_fake


def both_settings(tmp_path: Path, fakes: tuple[FakeAnthropicServer, FakeAzureServer],
                  monkeypatch: pytest.MonkeyPatch) -> Settings:
    anthropic_fake, azure_fake = fakes
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_fake.base_url)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", azure_fake.endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", DEPLOYMENT)
    root = tmp_path / "project"
    root.mkdir(exist_ok=True)
    return load_settings(root=root, provider="anthropic")


def mixed_service(settings: Settings) -> JobService:
    return JobService(settings=settings, registry=Registry(settings.registry_path),
                      client_factory=lambda provider: make_client(settings, provider, max_retries=0))


def csv_upload(texts: list[str]) -> tuple[str, bytes]:
    lines = ["pdf_file_name,paragraph_text"] + [f"FfBF_Acme_2024.pdf,\"{t}\"" for t in texts]
    return "paras.csv", ("\n".join(lines) + "\n").encode()


def test_a_retry_on_another_provider_shows_who_answered_each_row(
        tmp_path: Path, fakes: tuple[FakeAnthropicServer, FakeAzureServer], monkeypatch: pytest.MonkeyPatch) -> None:
    anthropic_fake, azure_fake = fakes
    settings = both_settings(tmp_path, fakes, monkeypatch)
    service = mixed_service(settings)
    job = service.submit(service.prepare(TASK1, inputs=[csv_upload(TEXTS)]))
    anthropic_fake.expire_slow = True
    finish(service, job.id)
    first = service.collect(job.id)
    assert first.counts["succeeded"] == 2 and first.counts["expired"] == 1 and first.counts["failed"] == 1

    # the gaps re-run on Azure, through the command line's retry --provider
    azure_fake.expire_slow = True
    made = run_cli_json(service, "retry", "--job", job.id, "--provider", "azure")
    retry = service.get(made["job"]["job_id"])
    assert retry.provider == "azure" and retry.model == DEPLOYMENT and retry.retry_of == job.id
    assert retry.n_rows == 2
    finish(service, retry.id)
    merged = service.collect(job.id)
    rows = merged.frame.set_index("paragraph_text")
    # the Azure retry answered the expired row; its refusal replaced the earlier failure
    assert rows.loc[TEXTS[0], ["provider", "answered_by"]].tolist() == ["anthropic", job.id]
    assert rows.loc[TEXTS[3], ["provider", "answered_by"]].tolist() == ["anthropic", job.id]
    assert rows.loc[TEXTS[1], "status"] == "expired"  # SLOW expires on Azure too
    assert rows.loc[TEXTS[1], ["provider", "answered_by"]].tolist() == ["azure", retry.id]
    assert rows.loc[TEXTS[2], ["provider", "answered_by"]].tolist() == ["azure", retry.id]
    assert rows.loc[TEXTS[0], "model"] == "claude-haiku-5-5"
    assert rows.loc[TEXTS[2], "model"] == ""  # an error line names no model
    # the files and Explore carry the provenance too
    written = read_results(merged.output_files).set_index("paragraph_text")
    assert written.loc[TEXTS[2], "provider"] == "azure" and written.loc[TEXTS[0], "provider"] == "anthropic"
    explored = load_results([service.get(job.id)])
    assert set(explored["provider"]) == {"anthropic", "azure"}


def test_compare_works_across_providers(tmp_path: Path, fakes: tuple[FakeAnthropicServer, FakeAzureServer],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = both_settings(tmp_path, fakes, monkeypatch)
    service = mixed_service(settings)
    texts = [t for t in TEXTS if "SLOW" not in t and "ERRORED" not in t] + ["We bought a green bond of EUR 10 million."]
    on_anthropic = service.submit(service.prepare(TASK1, inputs=[csv_upload(texts)]))
    on_azure = service.submit(service.prepare(TASK1, inputs=[csv_upload(texts)], provider="azure"))
    finish(service, on_anthropic.id, on_azure.id)
    comparison = run_comparison(service, [on_anthropic.id, on_azure.id], n_resamples=200)
    sides = {side.job_id: side for side in comparison.jobs}
    assert sides[on_anthropic.id].model == "claude-haiku-5-5" and sides[on_azure.id].model == DEPLOYMENT
    assert all(side.answered == len(texts) for side in comparison.jobs)
    assert comparison.shared == len(texts) and comparison.disagreements().empty  # the same rules answered both


def test_new_keys_come_from_every_source_and_never_show(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / ".streamlit").mkdir(parents=True)
    (root / ".env").write_text("AZURE_OPENAI_API_KEY=azure-secret-from-dotenv\n"
                               "AZURE_OPENAI_ENDPOINT=https://example-resource.openai.azure.com\n")
    (root / ".streamlit" / "secrets.toml").write_text('ANTHROPIC_API_KEY = "anthropic-secret-from-toml"\n'
                                                       'OPENAI_API_VERSION = "2025-04-01-preview"\n')
    settings = load_settings(root=root, environ={"AZURE_OPENAI_DEPLOYMENT": "my-batch"})
    assert settings.provider == "local"  # neither new provider is chosen by itself
    assert settings.configured_providers == ("local", "azure", "anthropic")
    assert settings.azure_key_source == ".env" and settings.anthropic_key_source == "secrets.toml"
    assert settings.azure_api_version == "2025-04-01-preview" and settings.model_for("azure") == "my-batch"
    status = settings.key_status()
    assert status["azure"] == "key configured (from .env)" and status["openai"] == "no key"
    shown = repr(settings) + str(status)
    assert "azure-secret" not in shown and "anthropic-secret" not in shown
    environment_wins = load_settings(root=root, environ={"ANTHROPIC_API_KEY": "from-env"}, provider="anthropic")
    assert environment_wins.anthropic_key_source == "environment" and environment_wins.provider == "anthropic"
    half = load_settings(root=tmp_path, environ={"AZURE_OPENAI_API_KEY": "k"})
    assert half.key_status()["azure"] == "key configured, AZURE_OPENAI_ENDPOINT missing"


def test_keys_never_reach_registry_results_or_staged_files(
        tmp_path: Path, fakes: tuple[FakeAnthropicServer, FakeAzureServer], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = both_settings(tmp_path, fakes, monkeypatch)
    service = mixed_service(settings)
    first = service.submit(service.prepare(TASK1, inputs=[csv_upload(TEXTS[:1])]))
    second = service.submit(service.prepare(TASK1, inputs=[csv_upload(TEXTS[:1])], provider="azure"))
    finish(service, first.id, second.id)
    service.collect(first.id)
    service.collect(second.id)
    service.reconcile()
    written = [p for p in settings.data_dir.rglob("*") if p.is_file()]
    assert any("providers" in p.parts for p in written)  # the Anthropic staging folder is searched too
    leaks = [p for p in written if ANTHROPIC_KEY.encode() in p.read_bytes() or AZURE_KEY.encode() in p.read_bytes()]
    assert leaks == []


def test_the_planner_keeps_each_provider_within_its_limits(settings: Settings) -> None:
    from core.inputs import read_inputs
    from core.planning import plan, rows_from_tables
    from core.pricing import load_price_table
    from core.prompts import load_prompts
    from core.providers import file_limits
    from core.tasks import get_task

    assert (file_limits("openai").max_requests, file_limits("azure").max_requests,
            file_limits("anthropic").max_requests) == (50_000, 100_000, 100_000)
    assert file_limits("anthropic").max_bytes < 256 * 1024 * 1024 and file_limits("azure").max_bytes == 200 * 1024 ** 2
    rows, sources = rows_from_tables(read_inputs([csv_upload(TEXTS)]))
    common = dict(task=get_task(TASK1), model="claude-haiku-5-5", max_tokens=100, prompts=load_prompts(TASK1),
                  rows=rows, sources=sources, prices=load_price_table(settings.data_dir))
    # a smaller limit given by the user is kept; a larger one is cut to the provider's
    assert plan(provider="anthropic", max_requests_per_file=2, **common).chunks == [(0, 2), (2, 4)]
    assert plan(provider="anthropic", max_requests_per_file=10 ** 9, **common).chunks == [(0, 4)]
    # bytes too: each request line here is about 2,400 bytes, so 3,000 bytes hold one
    assert len(plan(provider="azure", max_bytes_per_file=3_000, **common).chunks) == 4
