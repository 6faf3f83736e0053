"""Azure OpenAI Global Batch end to end: the ``openai`` SDK's Azure client over real HTTP
against a loopback fake of Azure's URL shapes (tests/fakes_providers.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import orjson
import pytest

from conftest import finish, sample_files
from core.errors import AuthenticationFailed, ProviderError, SubmissionIncomplete
from core.jobs import JobService
from core.providers import make_client
from core.registry import Registry
from core.settings import Settings, load_settings
from fakes_providers import AZURE_KEY, FakeAzureServer

TASK1 = "investment_activity_classification"
TASK2 = "assetization_features_scoring"
DEPLOYMENT = "biodiv-batch"  # a deployment name the price table does not know


@pytest.fixture
def fake() -> Iterator[FakeAzureServer]:
    with FakeAzureServer(deployments={DEPLOYMENT}) as server:
        yield server


def azure_settings(tmp_path: Path, fake: FakeAzureServer, monkeypatch: pytest.MonkeyPatch, *,
                   key: str = AZURE_KEY) -> Settings:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", fake.endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", key)
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", DEPLOYMENT)
    monkeypatch.setenv("OPENAI_API_VERSION", "2025-04-01-preview")
    root = tmp_path / "project"
    root.mkdir(exist_ok=True)
    return load_settings(root=root, provider="azure")


def azure_service(settings: Settings) -> JobService:
    return JobService(settings=settings, registry=Registry(settings.registry_path),
                      client_factory=lambda provider: make_client(settings, provider, max_retries=0))


def csv_upload(texts: list[str], name: str = "paras.csv") -> tuple[str, bytes]:
    lines = ["pdf_file_name,paragraph_text"] + [f"FfBF_Acme_2024.pdf,\"{t}\"" for t in texts]
    return name, ("\n".join(lines) + "\n").encode()


def test_task1_and_task2_run_end_to_end(tmp_path: Path, fake: FakeAzureServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    settings = azure_settings(tmp_path, fake, monkeypatch)
    service = azure_service(settings)
    job = service.submit(service.prepare(TASK1, inputs=sample_files()))
    assert job.provider == "azure" and job.model == DEPLOYMENT
    # the request file keeps our shape; the deployment is the model of every line
    lines = [orjson.loads(raw) for raw in Path(job.batches[0].request_file).read_bytes().splitlines()]
    assert {line["body"]["model"] for line in lines} == {DEPLOYMENT}
    assert service.refresh([job.id])[0].batches[0].status == "in_progress"  # validating → in progress
    finish(service, job.id)
    collected = service.collect(job.id)
    assert collected.job.status == "completed" and collected.counts["succeeded"] == job.n_rows
    assert (collected.frame["provider"] == "azure").all()
    # the deployment has no price: the model the answers name (gpt-4.1-mini-2025-04-14) is priced
    usage = collected.job.usage
    assert usage["cost"] == pytest.approx((110 * 0.20 + 25 * 0.80) * job.n_requests / 1e6)
    # Azure's shapes: /openai paths with an api-version, the api-key header, an expiring upload
    assert fake.api_versions == {"2025-04-01-preview"}
    assert all(p.split()[1].startswith("/openai/") for p in fake.paths_seen)
    assert all(h.get("api-key") == AZURE_KEY for h in fake.headers_seen)
    uploads = [f["object"] for f in fake.files.values() if f["object"]["purpose"] == "batch"]
    assert uploads and all(item["expires_at"] == item["created_at"] + 1_209_600 for item in uploads)

    child = service.submit(service.prepare(TASK2, parent=job.id))
    finish(service, child.id)
    second = service.collect(child.id)
    assert second.job.status == "completed" and second.counts["succeeded"] == child.n_rows > 0


def test_a_model_that_is_no_deployment_fails_the_batch_with_the_reason(
        tmp_path: Path, fake: FakeAzureServer, monkeypatch: pytest.MonkeyPatch) -> None:
    service = azure_service(azure_settings(tmp_path, fake, monkeypatch))
    job = service.submit(service.prepare(TASK1, inputs=[csv_upload(["One paragraph."])], model="gpt-4.1-mini"))
    finish(service, job.id)
    collected = service.collect(job.id)
    assert collected.job.status == "failed"
    assert "model_not_found" in collected.frame["status_reason"].iloc[0]


def test_expiry_and_cancel_keep_finished_answers(tmp_path: Path, fake: FakeAzureServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    service = azure_service(azure_settings(tmp_path, fake, monkeypatch))
    texts = ["We invested EUR 5 million in a biodiversity fund.", "Held back SLOW", "Cut short MAXTOK",
             "Scripted ERRORED row"]
    job = service.submit(service.prepare(TASK1, inputs=[csv_upload(texts)]))
    for _ in range(3):
        assert service.refresh([job.id])[0].batches[0].status == "in_progress"
    fake.expire_slow = True
    finish(service, job.id)
    collected = service.collect(job.id)
    assert collected.job.batches[0].status == "expired"
    assert dict(zip(collected.frame["paragraph_text"], collected.frame["status"])) == {
        texts[0]: "succeeded", texts[1]: "expired", texts[2]: "truncated", texts[3]: "failed"}

    fake.expire_slow = False
    second = service.submit(service.prepare(TASK1, inputs=[csv_upload(texts[:2], name="two.csv")]))
    service.refresh([second.id])
    assert service.cancel(second.id).batches[0].status == "cancelling"
    finish(service, second.id)
    cancelled = service.collect(second.id)
    assert cancelled.job.status == "cancelled"
    assert dict(zip(cancelled.frame["paragraph_text"], cancelled.frame["status"])) == {
        texts[0]: "succeeded", texts[1]: "cancelled"}


def test_errors_are_named(tmp_path: Path, fake: FakeAzureServer, monkeypatch: pytest.MonkeyPatch) -> None:
    half = load_settings(root=tmp_path, environ={"AZURE_OPENAI_API_KEY": "k", "BDASSET_DATA_DIR": str(tmp_path)},
                         provider="azure")
    with pytest.raises(AuthenticationFailed, match="set AZURE_OPENAI_ENDPOINT in"):
        make_client(half, "azure")
    wrong = azure_service(azure_settings(tmp_path, fake, monkeypatch, key="wrong-azure-placeholder"))
    with pytest.raises(SubmissionIncomplete, match="AZURE_OPENAI_API_KEY") as caught:
        wrong.submit(wrong.prepare(TASK1, inputs=[csv_upload(["One paragraph."])]))
    assert "wrong-azure-placeholder" not in str(caught.value)
    service = azure_service(azure_settings(tmp_path, fake, monkeypatch))
    job = service.submit(service.prepare(TASK1, inputs=[csv_upload(["One paragraph."])]))
    for status, words in ((429, "rate limited"), (500, "temporary problem (HTTP 500)")):
        fake.fail_next.extend([status, status])  # the service tries a transient failure twice
        checked = service.refresh([job.id])[0]
        assert checked.batches[0].status in ("validating", "in_progress")
        assert words in (checked.batches[0].last_error or "")
    client = make_client(service.settings, "azure", max_retries=0)
    seen = len(fake.paths_seen)
    with pytest.raises(ProviderError, match="not a plain id"):
        client.delete_file("../batches")
    assert len(fake.paths_seen) == seen


def test_reconcile_adopts_and_rebuilds_from_metadata(tmp_path: Path, fake: FakeAzureServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    settings = azure_settings(tmp_path, fake, monkeypatch)
    service = azure_service(settings)
    job = service.submit(service.prepare(TASK1, inputs=[csv_upload(["A.", "B.", "C."])], max_requests_per_file=2))
    lost = job.batches[1].batch_id
    with service.registry.transaction() as tx:  # as if the process died right after create
        record = tx.get_job(job.id)
        record["batches"][1].update(batch_id=None, status="pending")
        tx.put_job(record)
    report = service.reconcile()
    assert report.adopted == [f"{job.id}/b001: {lost}"]
    finish(service, job.id)
    settings.registry_path.unlink()
    Path(str(settings.registry_path) + ".bak").unlink(missing_ok=True)
    report = service.reconcile()
    assert report.restored_jobs == [job.id]
    assert service.collect(job.id).counts["succeeded"] == 3
