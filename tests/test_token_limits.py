"""A provider's enqueued-token limit that nobody configured: learned from the refusal, the
refused batch re-planned under it, sent in turn; never an endless resubmission."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import openai
import pandas as pd

from conftest import finish, make_backend, sample_files, service_for
from core.jobs import JobService
from core.jobs import token_limits
from core.jobs.token_limits import MAX_UNEXPLAINED_REFUSALS, handle_refusal, stated_limit
from core.registry import Registry

TASK1 = "investment_activity_classification"


def provider_batches(backend) -> list:
    sdk = openai.OpenAI(api_key=backend.api_key, base_url=backend.base_url, max_retries=0)
    return list(sdk.batches.list(limit=100))


def test_the_limit_in_openais_message_is_read() -> None:
    message = ("token_limit_exceeded: Enqueued token limit reached for gpt-4.1-mini in organization org-x. "
               "Limit: 12,848 enqueued tokens. Please try submitting a smaller batch.")
    assert stated_limit([message]) == 12_848
    assert stated_limit(["token_limit_exceeded: Enqueued token limit reached. Limit: 90000 enqueued tokens."]) == 90_000
    assert stated_limit(["token_limit_exceeded: no number here"]) is None
    assert stated_limit(["invalid_request: Limit: 5 tokens"]) is None  # not a queue refusal


def test_an_unconfigured_limit_is_learned_and_the_job_completes(tmp_path: Path, settings) -> None:
    with make_backend(tmp_path) as probe_backend:
        total = service_for(probe_backend, settings).prepare(TASK1, inputs=sample_files()).estimate.input_tokens
    limit = total // 3  # the provider's real limit; the product was told none
    with make_backend(tmp_path, baseline_delay_seconds=0.01, enqueued_token_limit=limit) as backend:
        service = service_for(backend, settings)
        prep = service.prepare(TASK1, inputs=sample_files())
        assert len(prep.chunks) == 1  # nothing known yet: one batch of 48
        job = service.submit(prep)
        finish(service, job.id, timeout=60)  # on the old code: resubmitted forever
        final = service.get(job.id)
        assert final.status == "completed"
        assert len(final.batches) >= 3 and all(b.est_input_tokens <= limit * 0.9 for b in final.batches)
        created = provider_batches(backend)
        assert len(created) == len(final.batches) + 1  # the refused one, then each piece once
        outcome = service.collect(job.id)
        assert outcome.counts["succeeded"] == 48 and sum(outcome.counts.values()) == 48
        assert outcome.frame["custom_id"].is_unique
        # every request went out in exactly one piece, and the row file says which
        rows = service.rows(final)
        assert set(rows["batch_key"]) == {b.key for b in final.batches}
        # remembered: the next job of the model is planned under the limit from the start
        assert service.learned_limit("local", prep.model) == limit
        again = service.prepare(TASK1, inputs=sample_files())
        assert len(again.chunks) >= 3 and max(again.chunk_tokens) <= limit * 0.9
        second = service.submit(again)
        finish(service, second.id, timeout=60)
        assert all(not b.attempts for b in service.get(second.id).batches)  # never refused


def test_a_request_larger_than_the_limit_fails_with_a_message(tmp_path: Path, settings) -> None:
    texts = [f"The fund invested EUR {i} million in wetland restoration projects." for i in range(6)]
    big_text = " ".join(["biodiversity"] * 3000)  # one paragraph far larger than the provider's limit
    texts.insert(3, big_text)
    path = tmp_path / "big.csv"
    pd.DataFrame({"pdf_file_name": "FfBF_Inv_Report.pdf", "paragraph_text": texts}).to_csv(path, index=False)
    with make_backend(tmp_path) as probe_backend:
        probe = service_for(probe_backend, settings).prepare(TASK1, inputs=[path], dedupe=False)
    small = sorted(probe.chunk_tokens)[0] // len(texts)
    with make_backend(tmp_path, baseline_delay_seconds=0.01, enqueued_token_limit=small * 4) as backend:
        service = service_for(backend, settings)
        job = service.submit(service.prepare(TASK1, inputs=[path], dedupe=False))
        finish(service, job.id, timeout=60)
        outcome = service.collect(job.id)
    big = outcome.frame[outcome.frame["paragraph_text"] == big_text].iloc[0]
    assert big["status"] == "failed"
    assert "can never be sent as a batch" in big["status_reason"]
    assert outcome.counts["succeeded"] == 6 and outcome.counts["failed"] == 1


def _job_with_request_file(service: JobService, tmp_path: Path, n_requests: int):
    with make_backend(tmp_path) as backend:  # only to write a real job folder and registry record
        real = service_for(backend, service.settings)
        csv = tmp_path / "few.csv"
        pd.DataFrame({"paragraph_text": [f"Paragraph {i} on green bonds." for i in range(n_requests)]}).to_csv(csv, index=False)
        prep = real.prepare(TASK1, inputs=[csv])
        job = real.submit(prep)
        finish(real, job.id)
    return real.get(job.id)


def test_refusals_our_queue_does_not_explain_back_off_halve_and_stop(tmp_path: Path, settings) -> None:
    now = [datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)]
    service = JobService(settings=settings, registry=Registry(settings.registry_path), clock=lambda: now[0])
    job = _job_with_request_file(service, tmp_path, n_requests=2)
    batch = job.batches[0]
    batch.status, batch.errors = "failed", ["token_limit_exceeded: Enqueued token limit reached."]  # no number stated

    first = handle_refusal(service, job, batch, queue_busy=False, learned={})
    assert first.outcome == "backing_off" and batch.status == "queued"
    assert datetime.fromisoformat(batch.not_before) == now[0] + timedelta(seconds=token_limits.BACKOFF_FIRST_SECONDS)
    assert not token_limits.is_due(batch, now[0])

    batch.status, batch.errors = "failed", ["token_limit_exceeded: again"]
    second = handle_refusal(service, job, batch, queue_busy=False, learned={})
    assert second.outcome == "split" and [b.n_requests for b in job.batches] == [1, 1]

    piece = job.batches[0]
    outcomes = []
    for _ in range(MAX_UNEXPLAINED_REFUSALS + 1):
        if piece.status != "queued":
            break
        piece.status, piece.errors = "failed", ["token_limit_exceeded: again"]
        outcomes.append(handle_refusal(service, job, piece, queue_busy=False, learned={}).outcome)
    assert outcomes[-1] == "given_up" and len(outcomes) < MAX_UNEXPLAINED_REFUSALS + 1
    assert piece.status == "failed" and "refused this batch" in piece.last_error
    # the waits grew: 1, 2, 4 ... minutes, never more than the cap
    assert "backing_off" in outcomes


def test_a_refusal_explained_by_our_own_queue_just_waits(tmp_path: Path, settings) -> None:
    service = JobService(settings=settings, registry=Registry(settings.registry_path))
    job = _job_with_request_file(service, tmp_path, n_requests=2)
    batch = job.batches[0]
    batch.status, batch.errors = "failed", ["token_limit_exceeded: Limit: 1,000,000 enqueued tokens."]
    learned: dict[str, int] = {}
    assert handle_refusal(service, job, batch, queue_busy=True, learned=learned).outcome == "waiting"
    assert batch.status == "queued" and batch.not_before is None
    assert learned == {f"local:{job.model}": 1_000_000}


def test_the_estimate_counts_what_the_provider_counts(tmp_path: Path, settings) -> None:
    with make_backend(tmp_path) as probe_backend:
        prep = service_for(probe_backend, settings).prepare(TASK1, inputs=sample_files())
    estimated = prep.chunk_tokens[0]
    with make_backend(tmp_path, enqueued_token_limit=estimated - 1) as backend:
        service = service_for(backend, settings)
        job = service.submit(service.prepare(TASK1, inputs=sample_files()))
        refused = service.client("local").retrieve(job.batches[0].batch_id)
        for _ in range(200):
            if refused.status == "failed":
                break
            refused = service.client("local").retrieve(job.batches[0].batch_id)
    assert refused.status == "failed"
    assert f"this batch: {estimated:,}" in refused.errors[0]  # the provider's own count, stated
