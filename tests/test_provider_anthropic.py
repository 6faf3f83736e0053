"""Anthropic Message Batches end to end: the real ``anthropic`` SDK over real HTTP against a
loopback fake that follows the documented shapes (tests/fakes_providers.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from conftest import finish, sample_files
from core.errors import AuthenticationFailed, ProviderError, SubmissionIncomplete, TransientProviderError
from core.jobs import JobService
from core.providers import make_client
from core.providers.anthropic import _translated_line, openai_result_line, tag_custom_id, untag_custom_id
from core.registry import Registry
from core.results import read_results
from core.settings import Settings, load_settings
from fakes_providers import ANTHROPIC_KEY, FakeAnthropicServer

TASK1 = "investment_activity_classification"
TASK2 = "assetization_features_scoring"
MODEL = "claude-haiku-5-5"


@pytest.fixture
def fake() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as server:
        yield server


def anthropic_settings(tmp_path: Path, fake: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch, *,
                       key: str = ANTHROPIC_KEY) -> Settings:
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
    root = tmp_path / "project"
    root.mkdir(exist_ok=True)
    return load_settings(root=root, provider="anthropic")


def anthropic_service(settings: Settings) -> JobService:
    """The service with the real factory (lazy SDK import), without SDK retries so that
    scripted failures surface at once."""
    return JobService(settings=settings, registry=Registry(settings.registry_path),
                      client_factory=lambda provider: make_client(settings, provider, max_retries=0))


def csv_upload(texts: list[str], name: str = "paras.csv") -> tuple[str, bytes]:
    lines = ["pdf_file_name,paragraph_text"] + [f"FfBF_Acme_2024.pdf,\"{t}\"" for t in texts]
    return name, ("\n".join(lines) + "\n").encode()


def test_task1_and_task2_run_end_to_end(tmp_path: Path, fake: FakeAnthropicServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    settings = anthropic_settings(tmp_path, fake, monkeypatch)
    service = anthropic_service(settings)
    prep = service.prepare(TASK1, inputs=sample_files())
    assert prep.provider == "anthropic" and prep.model == MODEL
    assert prep.estimate.cost_ceiling and prep.estimate.cost_ceiling > 0  # priced from the table
    job = service.submit(prep)
    assert job.provider == "anthropic" and job.batches[0].status == "in_progress"
    # progress: the batch is still processing at the first check
    first = service.refresh([job.id])[0]
    assert first.batches[0].status == "in_progress" and first.batches[0].total == job.n_requests
    finish(service, job.id)
    collected = service.collect(job.id)
    assert collected.job.status == "completed"
    assert collected.counts["succeeded"] == job.n_rows == sum(collected.counts.values())
    # results merge by our own custom_ids: the job prefix sent to Anthropic is gone again
    assert set(collected.frame["custom_id"]) == set(service.rows(job)["custom_id"])
    assert (collected.frame["provider"] == "anthropic").all() and (collected.frame["model"] == MODEL).all()
    # cost from the reported usage (120 input, 30 output tokens per request) at the batch price
    usage = collected.job.usage
    assert usage["prompt_tokens"] == 120 * job.n_requests and usage["completion_tokens"] == 30 * job.n_requests
    assert usage["cost"] == pytest.approx((120 * 0.05 + 30 * 0.25) * job.n_requests / 1e6)
    written = read_results(collected.output_files)
    assert set(written["provider"]) == {"anthropic"}

    # what reached Anthropic: the documented request shape, our job in every custom_id
    sent = next(iter(fake.batches.values()))["requests"]
    params = sent[0]["params"]
    assert params["model"] == MODEL and params["max_tokens"] == job.max_tokens
    assert params["system"] and params["messages"][0]["role"] == "user" and len(params["messages"]) == 1
    assert params["output_config"]["format"]["schema"]["required"] == ["Score", "Explanation"]
    assert all(r["custom_id"].startswith(f"{job.id}--b000--s") for r in sent)
    assert all(h.get("anthropic-version") and ANTHROPIC_KEY in (h.get("x-api-key"), h.get("authorization", "")[7:])
               for h in fake.headers_seen)

    # task 2 from the task-1 job, on the same provider
    child = service.submit(service.prepare(TASK2, parent=job.id))
    finish(service, child.id)
    second = service.collect(child.id)
    assert second.job.status == "completed" and second.counts["succeeded"] == child.n_rows > 0
    assert second.frame["cash_flow_score"].notna().all()


def test_expiry_keeps_finished_answers_and_names_every_row(tmp_path: Path, fake: FakeAnthropicServer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    service = anthropic_service(anthropic_settings(tmp_path, fake, monkeypatch))
    texts = ["We invested EUR 5 million in a biodiversity fund.", "Nature matters. SLOW",
             "We allocated USD 2 million to restoration. MAXTOK", "Scripted ERRORED row", "Another SLOW one"]
    job = service.submit(service.prepare(TASK1, inputs=[csv_upload(texts)]))
    for _ in range(4):  # SLOW rows hold the batch open
        assert service.refresh([job.id])[0].batches[0].status == "in_progress"
    fake.expire_slow = True  # 24 hours pass
    finish(service, job.id)
    collected = service.collect(job.id)
    assert collected.job.batches[0].status == "expired"
    by_text = dict(zip(collected.frame["paragraph_text"], collected.frame["status"]))
    assert by_text == {texts[0]: "succeeded", texts[1]: "expired", texts[2]: "truncated", texts[3]: "failed",
                       texts[4]: "expired"}
    reasons = dict(zip(collected.frame["paragraph_text"], collected.frame["status_reason"]))
    assert "scripted: this request was refused" in reasons[texts[3]]
    assert sum(collected.counts.values()) == len(texts)


def test_cancel_keeps_finished_answers(tmp_path: Path, fake: FakeAnthropicServer,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    service = anthropic_service(anthropic_settings(tmp_path, fake, monkeypatch))
    texts = ["We invested EUR 5 million in a biodiversity fund.", "Slow paragraph SLOW", "General remarks."]
    job = service.submit(service.prepare(TASK1, inputs=[csv_upload(texts)]))
    cancelled = service.cancel(job.id)
    assert cancelled.batches[0].status == "cancelling"
    assert any(p.endswith("/cancel") for p in fake.paths_seen)
    finish(service, job.id)
    collected = service.collect(job.id)
    assert collected.job.status == "cancelled"
    statuses = dict(zip(collected.frame["paragraph_text"], collected.frame["status"]))
    assert statuses == {texts[0]: "succeeded", texts[1]: "cancelled", texts[2]: "succeeded"}


def test_errors_are_named(tmp_path: Path, fake: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # no key: refused before anything is recorded
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    bare = load_settings(root=tmp_path, environ={"BDASSET_DATA_DIR": str(tmp_path / "d")}, provider="anthropic")
    with pytest.raises(AuthenticationFailed, match="No Anthropic API key"):
        make_client(bare, "anthropic")
    # a rejected key: the job is recorded, the message names the setting, never the key
    wrong = anthropic_service(anthropic_settings(tmp_path, fake, monkeypatch, key="wrong-anthropic-key-placeholder"))
    with pytest.raises(SubmissionIncomplete, match="ANTHROPIC_API_KEY") as caught:
        wrong.submit(wrong.prepare(TASK1, inputs=[csv_upload(["One paragraph."])]))
    assert "wrong-anthropic-key-placeholder" not in str(caught.value)
    service = anthropic_service(anthropic_settings(tmp_path, fake, monkeypatch))
    job = service.submit(service.prepare(TASK1, inputs=[csv_upload(["One paragraph."])]))
    # 429 and 500 while checking: the known status stays, the problem is recorded
    # (the service tries a transient failure twice, so each is scripted twice)
    for status, words in ((429, "rate limited by Anthropic"), (500, "temporary problem (HTTP 500)")):
        fake.fail_next.extend([status, status])
        checked = service.refresh([job.id])[0]
        assert checked.batches[0].status == "in_progress"
        assert words in (checked.batches[0].last_error or "")
    client = make_client(service.settings, "anthropic", max_retries=0)
    fake.fail_next.append(429)
    with pytest.raises(TransientProviderError, match="rate limited by Anthropic"):
        client.retrieve(job.batches[0].batch_id)
    # ids never reach a URL unless they are plain
    seen = len(fake.paths_seen)
    with pytest.raises(ProviderError, match="not a plain id"):
        client.retrieve("../../v1/other")
    with pytest.raises(ProviderError, match="not a plain id"):
        client.download("msgbatch_x/../y:succeeded")
    assert len(fake.paths_seen) == seen
    # an unknown batch
    with pytest.raises(ProviderError, match="not found at Anthropic"):
        client.retrieve("msgbatch_unknown")


def test_custom_ids_and_result_lines_translate_both_ways() -> None:
    tagged = tag_custom_id("s1-r42", job_id="job_20261202_001200_ab12", batch_key="b003")
    assert tagged == "job_20261202_001200_ab12--b003--s1-r42"
    assert untag_custom_id(tagged) == ("s1-r42", "job_20261202_001200_ab12", "b003")
    assert untag_custom_id("s1-r42") == ("s1-r42", None, None)
    with pytest.raises(ProviderError, match="1-64 letters"):
        tag_custom_id("s1-r42", job_id="job_" + "x" * 60, batch_key="b000")
    refused = openai_result_line({"custom_id": tagged, "result": {"type": "succeeded", "message": {
        "id": "msg_1", "model": MODEL, "content": [], "stop_reason": "refusal",
        "usage": {"input_tokens": 5, "output_tokens": 0}}}})
    assert refused["custom_id"] == "s1-r42"
    assert refused["response"]["body"]["choices"][0]["message"]["refusal"]
    expired = openai_result_line({"custom_id": tagged, "result": {"type": "expired"}})
    assert expired["error"]["code"] == "batch_expired" and expired["response"] is None


def test_reconcile_finds_our_batches_without_metadata(tmp_path: Path, fake: FakeAnthropicServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    settings = anthropic_settings(tmp_path, fake, monkeypatch)
    service = anthropic_service(settings)
    job = service.submit(service.prepare(TASK1, inputs=[csv_upload(["We invested EUR 1 million."])]))
    finish(service, job.id)
    # someone else's batch in the same workspace is left alone
    other = make_client(settings, "anthropic", max_retries=0)
    foreign = other._sdk.messages.batches.create(requests=[{"custom_id": "theirs-1", "params": {
        "model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}}])
    # the registry is lost: the local index of created batches finds the job again
    settings.registry_path.unlink()
    Path(str(settings.registry_path) + ".bak").unlink(missing_ok=True)
    report = service.reconcile()
    assert report.restored_jobs == [job.id] and report.orphans == []
    assert service.collect(job.id).counts["succeeded"] == 1
    # the index is lost too: an ended batch is recognised by the job id in its custom_ids
    (settings.data_dir / "providers" / "anthropic" / "batches.json").unlink()
    settings.registry_path.unlink()
    Path(str(settings.registry_path) + ".bak").unlink(missing_ok=True)
    for _ in range(3):
        other.retrieve(foreign.id)  # let the foreign batch end: its results are read once, then remembered
    report = service.reconcile()
    assert report.restored_jobs == [job.id]
    listed = {info.batch_id: info.metadata for info in other.iter_batches()}
    assert listed[job.batches[0].batch_id]["job_id"] == job.id and listed[foreign.id] == {}
    results_reads = [p for p in fake.paths_seen if p.endswith(f"{foreign.id}/results")]
    assert len(results_reads) == 1


def test_list_follows_pages(tmp_path: Path, fake: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = anthropic_settings(tmp_path, fake, monkeypatch)
    client = make_client(settings, "anthropic", max_retries=0)
    created = [client._sdk.messages.batches.create(requests=[{"custom_id": f"r{n}", "params": {
        "model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}}]).id for n in range(5)]
    listed = [info.batch_id for info in client.iter_batches(page_size=2)]
    assert listed == list(reversed(created))
    assert sum("after_id=" in p for p in fake.paths_seen) == 2


def test_the_fake_refuses_what_the_api_refuses(tmp_path: Path, fake: FakeAnthropicServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(anthropic_settings(tmp_path, fake, monkeypatch), "anthropic", max_retries=0)
    good = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    for requests, problem in (
        ([{"custom_id": "has space", "params": good}], "does not match"),
        ([{"custom_id": "a", "params": good}, {"custom_id": "a", "params": good}], "not unique"),
        ([{"custom_id": "a", "params": {**good, "max_tokens": 0}}], "max_tokens"),
        ([{"custom_id": "a", "params": {**good, "messages": [{"role": "system", "content": "x"}]}}], "params.system"),
    ):
        with pytest.raises(ProviderError, match=problem):
            with client._translate("Creating the batch"):
                client._sdk.messages.batches.create(requests=requests)
    assert json.dumps(fake.batches) == "{}"


@pytest.mark.parametrize("result", [
    {"custom_id": "s0-r1", "result": ["not", "an", "object"]},
    {"custom_id": "s0-r1", "result": {"type": "succeeded", "message": {"usage": {"input_tokens": "many"}}}},
    {"custom_id": "s0-r1", "result": {"type": "succeeded", "message": "text"}},
    {"custom_id": "s0-r1", "result": {"type": "something new"}},
])
def test_a_result_of_another_shape_fails_its_row_and_names_why(result: dict) -> None:
    from core.results import classify_line
    from core.tasks import get_task

    line = _translated_line(result)
    row = classify_line(line, task=get_task(TASK1), batch_id="msgbatch_x")
    assert row.custom_id == "s0-r1" and row.status == "failed" and row.reason


def test_staged_files_and_index_are_private(tmp_path: Path, fake: FakeAnthropicServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    settings = anthropic_settings(tmp_path, fake, monkeypatch)
    service = anthropic_service(settings)
    service.submit(service.prepare(TASK1, inputs=[csv_upload(["One paragraph."])]))
    staging = settings.data_dir / "providers" / "anthropic"
    files = [p for p in staging.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"files.json", "batches.json"}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files), [(p.name, oct(p.stat().st_mode)) for p in files]
    assert all(p.stat().st_mode & 0o777 == 0o700 for p in [staging, *staging.rglob("*")] if p.is_dir())
