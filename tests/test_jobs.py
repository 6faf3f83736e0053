"""The job service end to end: real openai SDK, real loopback HTTP, real registry files."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import finish, make_backend, sample_files, service_for
from core.errors import JobNotFound, NotReady, PromptError, SubmissionIncomplete, TaskError
from core.jobs import JobService
from core.prompts import load_prompts
from core.results import ROW_STATUSES, TASK2_FILE
from fakes import FakeChatServer

TASK1 = "investment_activity_classification"
TASK2 = "assetization_features_scoring"


def sample_row_count() -> int:
    return sum(len(pd.read_csv(p, keep_default_na=False)) for p in sample_files())


def test_task1_then_task2_on_the_sample(service: JobService, isolated_data_dir: Path) -> None:
    prep = service.prepare(TASK1, inputs=sample_files())
    assert prep.estimate.n_requests == sample_row_count() == len(prep.rows)
    assert prep.estimate.input_tokens > 0 and prep.estimate.cost_ceiling == 0.0  # baseline is free
    job = service.submit(prep)
    finish(service, job.id)
    collected = service.collect(job.id)
    assert collected.job.status == "completed"
    assert collected.counts["succeeded"] == sample_row_count()
    assert sum(collected.counts.values()) == len(collected.frame)
    # one CSV per source CSV, in the previous tool's folder, with the documented columns
    out_dir = isolated_data_dir / "processed" / TASK1 / job.id
    assert sorted(p.name for p in collected.output_files) == sorted(p.name for p in sample_files())
    assert all(p.parent == out_dir for p in collected.output_files)
    assert (out_dir / "batch_results.jsonl").stat().st_size > 0
    for path, source in zip(sorted(collected.output_files), sample_files()):
        written = pd.read_csv(path, keep_default_na=False)
        original = pd.read_csv(source, keep_default_na=False)
        assert list(written.columns[:5]) == ["pdf_file_name", "csv_file_name", "paragraph_text", "score", "explanation"]
        assert written["paragraph_text"].tolist() == original["paragraph_text"].str.strip().tolist()
        assert set(written["score"]) <= {0, 1} and written["model"].eq("local-baseline-rules-v1").all()
    # the embedded backend reports usage with the estimate's own token formula: they agree
    assert collected.job.usage["prompt_tokens"] == prep.estimate.input_tokens
    assert collected.job.usage["completion_tokens"] > 0
    scored_one = int((collected.frame["score"] == 1).sum())
    assert 0 < scored_one < len(collected.frame)

    prep2 = service.prepare(TASK2, parent=job.batches[0].batch_id)  # a batch id works as well as a job id
    assert prep2.parent_job_id == job.id and prep2.n_requests == scored_one
    job2 = service.submit(prep2)
    finish(service, job2.id)
    collected2 = service.collect(job2.id)
    assert [p.name for p in collected2.output_files] == [TASK2_FILE]
    table = pd.read_csv(collected2.output_files[0], keep_default_na=False)
    assert len(table) == scored_one
    assert {"intrinsic_value_score", "cash_flow_score", "ownership_control_score", "explanation"} <= set(table.columns)
    # task 2 rows keep task 1's custom_ids, so they can be joined back by id
    assert set(table["custom_id"]) == set(collected.frame.loc[collected.frame["score"] == 1, "custom_id"])


def test_job_records_prompts_and_hashes(service: JobService) -> None:
    job = service.submit(service.prepare(TASK1, inputs=sample_files()))
    stored = service.get(job.id)
    prompts = load_prompts(TASK1)
    assert stored.prompts["system"] == prompts.system
    assert stored.prompts["system_sha256"] == prompts.system_sha256
    assert stored.prompts["user_sha256"] == prompts.user_sha256


def test_recollecting_is_idempotent(service: JobService) -> None:
    job = service.submit(service.prepare(TASK1, inputs=sample_files()))
    finish(service, job.id)
    first = service.collect(job.id)
    contents = [p.read_bytes() for p in first.output_files]
    second = service.collect(job.id)
    assert [p.read_bytes() for p in second.output_files] == contents
    assert second.counts == first.counts


def test_split_into_several_batches(service: JobService) -> None:
    prep = service.prepare(TASK1, inputs=sample_files(), max_requests_per_file=10)
    n = sample_row_count()
    assert len(prep.chunks) == -(-n // 10)
    job = service.submit(prep)
    assert len({b.batch_id for b in job.batches}) == len(prep.chunks)
    finish(service, job.id)
    counts = service.collect(job.id).counts
    assert counts["succeeded"] == n


def test_every_row_status(tmp_path: Path, settings) -> None:
    markers = ["SCORE1", "plain", "REFUSE", "TRUNCATE", "BADJSON", "SCHEMA", "FAIL500", "plain again"]
    csv = tmp_path / "statuses.csv"
    pd.DataFrame({"paragraph_text": [f"Paragraph {m}" for m in markers],
                  "pdf_file_name": "FfBF_Test_Report_2024.pdf"}).to_csv(csv, index=False)
    with FakeChatServer() as chat, make_backend(tmp_path, chat_base_url=chat.base_url, concurrency=4) as backend:
        service = service_for(backend, settings)
        job = service.submit(service.prepare(TASK1, inputs=[csv], model="fake-chat-model"))
        finish(service, job.id)
        collected = service.collect(job.id)
    by_text = dict(zip(collected.frame["paragraph_text"], collected.frame["status"]))
    assert by_text == {
        "Paragraph SCORE1": "succeeded", "Paragraph plain": "succeeded", "Paragraph REFUSE": "refused",
        "Paragraph TRUNCATE": "truncated", "Paragraph BADJSON": "invalid_json", "Paragraph SCHEMA": "schema_violation",
        "Paragraph FAIL500": "failed", "Paragraph plain again": "succeeded",
    }
    reasons = dict(zip(collected.frame["paragraph_text"], collected.frame["status_reason"]))
    assert "HTTP 500" in reasons["Paragraph FAIL500"] and "Score" in reasons["Paragraph SCHEMA"]
    scores = dict(zip(collected.frame["paragraph_text"], collected.frame["score"]))
    assert scores["Paragraph SCORE1"] == 1 and scores["Paragraph plain"] == 0 and pd.isna(scores["Paragraph REFUSE"])
    assert sum(collected.counts.values()) == len(markers)

    # A row that no file mentions is 'missing', never silently dropped.
    output_raw = next(p for p in collected.raw_files if p.name.endswith("_output.jsonl"))
    lines = output_raw.read_bytes().splitlines(keepends=True)
    gone = collected.frame.loc[collected.frame["paragraph_text"] == "Paragraph SCORE1", "custom_id"].item()
    output_raw.write_bytes(b"".join(line for line in lines if f'"{gone}"'.encode() not in line))
    again = service.collect(job.id)
    assert again.counts["missing"] == 1
    assert again.frame.loc[again.frame["paragraph_text"] == "Paragraph SCORE1", "status"].item() == "missing"


def test_cancel_keeps_finished_answers(tmp_path: Path, settings) -> None:
    with make_backend(tmp_path, baseline_delay_seconds=0.05) as backend:
        service = service_for(backend, settings)
        job = service.submit(service.prepare(TASK1, inputs=sample_files()))
        deadline = time.monotonic() + 30
        while service.refresh([job.id])[0].progress()[0] < 3:
            assert time.monotonic() < deadline, "no progress"
        service.cancel(job.id)
        finish(service, job.id)
        collected = service.collect(job.id)
    assert collected.job.status == "cancelled"
    counts = collected.counts
    assert counts["succeeded"] >= 3 and counts["cancelled"] >= 1
    assert counts["succeeded"] + counts["cancelled"] == sample_row_count() == sum(counts.values())


def test_transient_error_keeps_known_status(tmp_path: Path, settings) -> None:
    with make_backend(tmp_path, baseline_delay_seconds=0.2) as backend:
        service = service_for(backend, settings)
        job = service.submit(service.prepare(TASK1, inputs=sample_files()))
        known = service.get(job.id).batches[0].status
        url = backend.base_url
    # the backend is gone: checking fails, the recorded status must not change
    refreshed = service_for(url, settings).refresh([job.id])[0]
    assert refreshed.batches[0].status == known
    assert "could not reach" in (refreshed.batches[0].last_error or "")
    assert service.get(job.id).batches[0].status == known


def test_failed_submission_is_recorded_and_resumable(tmp_path: Path, settings) -> None:
    backend = make_backend(tmp_path)
    backend.start()
    url = backend.base_url
    backend.stop()  # a port that no longer answers
    dead = service_for(url, settings)
    with pytest.raises(SubmissionIncomplete, match="submit --resume") as raised:
        dead.submit(dead.prepare(TASK1, inputs=sample_files()))
    (job,) = dead.list_jobs()
    assert raised.value.job_id == job.id
    assert job.status == "submit_failed" and job.batches[0].batch_id is None
    with make_backend(tmp_path) as live:
        service = service_for(live, settings)
        resumed = service.resume_submission(job.id)
        assert resumed.batches[0].batch_id
        finish(service, job.id)
        assert service.collect(job.id).counts["succeeded"] == sample_row_count()


def test_chained_task_refusals(service: JobService) -> None:
    with pytest.raises(JobNotFound, match="job_nope"):
        service.prepare(TASK2, parent="job_nope")
    job = service.submit(service.prepare(TASK1, inputs=sample_files()))
    # just submitted: not finished yet
    with pytest.raises(NotReady, match="not finished"):
        service.prepare(TASK2, parent=job.id)
    finish(service, job.id)
    job2 = service.submit(service.prepare(TASK2, parent=job.id))
    finish(service, job2.id)
    with pytest.raises(TaskError, match="needs a task-1 \\(investment_activity_classification\\) job"):
        service.prepare(TASK2, parent=job2.id)
    with pytest.raises(TaskError, match="not on input files"):
        service.prepare(TASK2, parent=job.id, inputs=sample_files())


def test_collect_refuses_unfinished_job(tmp_path: Path, settings) -> None:
    with make_backend(tmp_path, baseline_delay_seconds=0.2) as backend:
        service = service_for(backend, settings)
        job = service.submit(service.prepare(TASK1, inputs=sample_files()))
        with pytest.raises(NotReady, match="not finished"):
            service.collect(job.id)
        service.cancel(job.id)


def test_custom_prompt_without_placeholder(tmp_path: Path) -> None:
    user = tmp_path / "user.txt"
    user.write_text("Classify this paragraph please.")
    with pytest.raises(PromptError, match=r"no \{text\} placeholder"):
        load_prompts(TASK1, user_path=user)


def test_custom_prompts_are_used(service: JobService, tmp_path: Path) -> None:
    system, user = tmp_path / "system.txt", tmp_path / "user.txt"
    system.write_text("Custom system prompt.")
    user.write_text("Text: {text} -- end")
    prompts = load_prompts(TASK1, system_path=system, user_path=user)
    job = service.submit(service.prepare(TASK1, inputs=sample_files()[:1], prompts=prompts))
    first_line = Path(job.batches[0].request_file).read_text().splitlines()[0]
    assert "Custom system prompt." in first_line and "Text: " in first_line and "-- end" in first_line
    assert service.get(job.id).prompts["user_path"] == str(user)


def test_statuses_cover_the_documented_set() -> None:
    assert ROW_STATUSES == ("succeeded", "failed", "expired", "cancelled", "refused", "truncated",
                            "invalid_json", "schema_violation", "missing")


def test_a_paragraph_with_a_lone_carriage_return_keeps_its_row(service: JobService) -> None:
    """Old Mac line ends survive in quoted cells; pandas' to_csv would write them bare and
    every reader would split that paragraph into two rows, shifting ids against texts."""
    texts = ["We invested EUR 20 million\rin wetland restoration via our nature fund.",
             "We support the TNFD framework.", 'A "quoted", two-line\nparagraph on mangrove bonds.']
    data = ("pdf_file_name,paragraph_text\n" + "".join(
        f'FfBF_Allianz_Report_2025.pdf,"{t.replace(chr(34), chr(34) * 2)}"\n' for t in texts)).encode()
    job = service.submit(service.prepare(TASK1, inputs=[("FfBF_Allianz_paragraphs.csv", data)]))
    finish(service, job.id)
    collected = service.collect(job.id)
    assert collected.counts["succeeded"] == 3 and sum(collected.counts.values()) == 3
    (path,) = collected.output_files
    written = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert written["paragraph_text"].tolist() == texts
    assert written["custom_id"].tolist() == ["s0-r2", "s0-r3", "s0-r4"]
