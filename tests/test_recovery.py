"""Recovery, cost and scale over real loopback HTTP: partial results, retries, deduplication,
enqueued-token limits, reconcile."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conftest import finish, make_backend, sample_files, service_for
from core.errors import NotReady
from core.jobs import JobService
from fakes import FakeChatServer

TASK1 = "investment_activity_classification"
TASK2 = "assetization_features_scoring"


def write_csv(path: Path, texts: list[str]) -> Path:
    pd.DataFrame({"pdf_file_name": [f"FfBF_Inv{i % 3}_Report_2024.pdf" for i in range(len(texts))],
                  "paragraph_text": texts}).to_csv(path, index=False)
    return path


def test_expired_batch_keeps_answers_and_retry_completes_the_job(tmp_path: Path, settings) -> None:
    with make_backend(tmp_path, baseline_delay_seconds=0.4, completion_window_seconds=1.0) as slow:
        service = service_for(slow, settings)
        job = service.submit(service.prepare(TASK1, inputs=sample_files()))
        finish(service, job.id)
        first = service.collect(job.id)
    assert first.job.status == "expired"
    kept = first.frame.loc[first.frame["status"] == "succeeded", ["custom_id", "score", "explanation"]]
    assert len(kept) >= 1 and first.counts["expired"] >= 1
    with pytest.raises(NotReady, match="no answer"):
        service.prepare(TASK2, parent=job.id)  # gaps must be filled first

    with make_backend(tmp_path) as healthy:  # same backend state, normal window
        service = service_for(healthy, settings)
        retry = service.retry(job.id, max_tokens=500)
        assert retry is not None and retry.retry_of == job.id and retry.max_tokens == 500
        assert retry.n_rows == first.counts["expired"]
        finish(service, retry.id)
        merged = service.collect(job.id)
        assert merged.counts["succeeded"] == 48 and sum(merged.counts.values()) == 48
        # answers paid for in the expired batch are still there, unchanged, credited to the original
        before = merged.frame.set_index("custom_id").loc[kept["custom_id"]]
        assert (before["answered_by"] == job.id).all()
        assert before["explanation"].tolist() == kept["explanation"].tolist()
        refilled = merged.frame[merged.frame["answered_by"] == retry.id]
        assert len(refilled) == first.counts["expired"]
        # nothing left: says so, submits nothing
        assert service.retry(job.id) is None
        assert len(service.list_jobs()) == 2
        # the retried job now feeds task 2
        assert service.prepare(TASK2, parent=job.id).n_rows == int((merged.frame["score"] == 1).sum())


def test_completed_batch_without_output_file(tmp_path: Path, settings) -> None:
    csv = write_csv(tmp_path / "all_fail.csv", [f"FAIL500 paragraph {i}" for i in range(5)])
    with FakeChatServer() as chat, make_backend(tmp_path, chat_base_url=chat.base_url) as backend:
        service = service_for(backend, settings)
        job = service.submit(service.prepare(TASK1, inputs=[csv], model="fake-chat-model"))
        finish(service, job.id)
        stored = service.get(job.id).batches[0]
        assert stored.status == "completed" and stored.output_file_id is None and stored.error_file_id
        collected = service.collect(job.id)
    assert collected.counts["failed"] == 5 and collected.counts["succeeded"] == 0
    assert collected.frame["status_reason"].str.contains("HTTP 500").all()


def test_output_file_id_that_appears_late(service: JobService) -> None:
    job = service.submit(service.prepare(TASK1, inputs=sample_files()[:1]))
    finish(service, job.id)
    with service.registry.transaction() as tx:  # as OpenAI reports right after 'completed'
        record = tx.get_job(job.id)
        record["batches"][0]["output_file_id"] = None
        tx.put_job(record)
    collected = service.collect(job.id)  # asks again instead of failing or losing rows
    assert collected.counts["succeeded"] == 24
    assert service.get(job.id).batches[0].output_file_id


def test_deduplicated_job_matches_a_plain_run(service: JobService, tmp_path: Path) -> None:
    base = pd.read_csv(sample_files()[0], keep_default_na=False)["paragraph_text"].tolist()[:10]
    texts = base + [t.replace(" ", "  ") for t in base[:4]] + [base[0] + "\n"]  # whitespace variants
    csv = write_csv(tmp_path / "dupes.csv", texts)
    deduped = service.prepare(TASK1, inputs=[csv])
    plain = service.prepare(TASK1, inputs=[csv], dedupe=False)
    assert deduped.n_rows == plain.n_rows == 15
    assert deduped.n_requests == 10 and plain.n_requests == 15 and deduped.duplicates_saved == 5
    assert deduped.estimate.input_tokens < plain.estimate.input_tokens
    assert "5 repeated paragraphs answered once" in deduped.summary()
    jobs = [service.submit(deduped), service.submit(plain)]
    finish(service, *(j.id for j in jobs))
    frames = [service.collect(j.id).frame.set_index("custom_id").sort_index() for j in jobs]
    assert len(frames[0]) == len(frames[1]) == 15
    for column in ("status", "score", "explanation", "paragraph_text"):
        assert frames[0][column].tolist() == frames[1][column].tolist()
    assert service.get(jobs[0].id).usage["prompt_tokens"] < service.get(jobs[1].id).usage["prompt_tokens"]


def test_token_limit_splits_and_completes_without_failures(tmp_path: Path, settings) -> None:
    with make_backend(tmp_path, baseline_delay_seconds=0.01) as probe_backend:
        probe = service_for(probe_backend, settings).prepare(TASK1, inputs=sample_files())
    limit = probe.estimate.input_tokens // 3
    with make_backend(tmp_path, baseline_delay_seconds=0.01, enqueued_token_limit=int(limit * 1.1)) as backend:
        service = service_for(backend, settings)
        prep = service.prepare(TASK1, inputs=sample_files(), enqueued_token_limit=limit)
        assert len(prep.chunks) >= 3 and max(prep.chunk_tokens) <= limit
        job = service.submit(prep)
        assert [b.status for b in job.batches].count("queued") >= 1  # sent in turn, not all at once
        finish(service, job.id)
        final = service.get(job.id)
        assert final.status == "completed"
        assert all(not b.attempts and b.status == "completed" for b in final.batches)
        assert service.collect(job.id).counts["succeeded"] == 48


def test_batch_refused_for_token_limit_is_resent_later(tmp_path: Path, settings) -> None:
    with make_backend(tmp_path) as probe_backend:
        probe = service_for(probe_backend, settings).prepare(TASK1, inputs=sample_files(), max_requests_per_file=24)
    biggest = max(probe.chunk_tokens)
    # the provider's real limit fits one batch at a time; the product was told no limit
    with make_backend(tmp_path, baseline_delay_seconds=0.05, enqueued_token_limit=int(biggest * 1.5)) as backend:
        service = service_for(backend, settings)
        job = service.submit(service.prepare(TASK1, inputs=sample_files(), max_requests_per_file=24))
        finish(service, job.id)
        final = service.get(job.id)
    assert final.status == "completed"
    retried = [b for b in final.batches if b.attempts]
    assert retried and all("token_limit_exceeded" in a["errors"][0] for b in retried for a in b.attempts)
    assert service.collect(job.id).counts["succeeded"] == 48


def test_reconcile_rebuilds_a_lost_registry(service: JobService, settings) -> None:
    job = service.submit(service.prepare(TASK1, inputs=sample_files()))
    finish(service, job.id)
    settings.registry_path.unlink()  # the registry is lost, its backup too; the provider and the job folder remain
    Path(str(settings.registry_path) + ".bak").unlink()
    assert service.list_jobs() == []
    report = service.reconcile()
    assert report.restored_jobs == [job.id] and report.orphans == []
    rebuilt = service.get(job.id)
    assert rebuilt.status == "completed" and rebuilt.batches[0].batch_id == job.batches[0].batch_id
    assert service.collect(job.id).counts["succeeded"] == 48


def test_reconcile_adopts_a_batch_lost_between_create_and_record(service: JobService) -> None:
    job = service.submit(service.prepare(TASK1, inputs=sample_files(), max_requests_per_file=30))
    lost = job.batches[1].batch_id
    with service.registry.transaction() as tx:  # as if the process died right after create
        record = tx.get_job(job.id)
        record["batches"][1].update(batch_id=None, status="pending")
        record["batches"][0]["batch_id"] = "batch_the_provider_never_heard_of"
        tx.put_job(record)
    report = service.reconcile()
    assert report.adopted == [f"{job.id}/b001: {lost}"]
    assert report.unknown_at_provider == [f"{job.id}/b000: batch_the_provider_never_heard_of"]
    assert service.get(job.id).batches[1].batch_id == lost
