"""What crashes leave behind is cleaned up: our own stale temp files, job folders written
before the job was recorded, request files uploaded without a batch. Nothing else."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openai

from conftest import finish, sample_files, service_for
from core.jobs import JobService
from core.jobs.common import upload_name

TASK1 = "investment_activity_classification"


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


def test_stale_temp_files_and_unrecorded_job_folders_go_fresh_ones_and_others_stay(service: JobService) -> None:
    job = service.submit(service.prepare(TASK1, inputs=sample_files()))
    finish(service, job.id)
    job_dir = Path(job.job_dir)
    stale = [job_dir / ".rows.csv.123.tmp", job_dir / "raw" / "batch_x_output.jsonl.part"]
    fresh = job_dir / ".job.json.456.tmp"
    mine_but_not_temp = job_dir / "notes.tmp.txt"
    for path in (*stale, fresh, mine_but_not_temp):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000)
    for path in stale:
        age(path, 7200)
    # a crash after the request files but before job.json and the registry record
    orphan = service.settings.jobs_dir / "job_20260101_000000_abcd"
    orphan.mkdir()
    (orphan / "requests_000.jsonl").write_text("{}\n")
    age(orphan / "requests_000.jsonl", 7200)
    age(orphan, 7200)
    # a folder that looks like a job but holds something we did not write is left alone
    foreign = service.settings.jobs_dir / "job_20260101_000000_beef"
    foreign.mkdir()
    (foreign / "thesis.docx").write_text("keep me")
    age(foreign / "thesis.docx", 7200)
    age(foreign, 7200)

    report = service.tidy()

    assert report.temp_files == 2 and not any(p.exists() for p in stale)
    assert fresh.exists() and mine_but_not_temp.exists()
    assert report.unrecorded_job_folders == [orphan.name] and not orphan.exists()
    assert (foreign / "thesis.docx").exists() and job_dir.exists()
    assert service.collect(job.id).counts["succeeded"] == 48  # the real job is untouched


def test_reconcile_removes_our_uploads_that_never_became_a_batch(backend, settings) -> None:
    now = [datetime.now(timezone.utc)]
    service = service_for(backend, settings, clock=lambda: now[0])
    job = service.submit(service.prepare(TASK1, inputs=sample_files()))
    finish(service, job.id)
    client = service.client("local")
    request_file = Path(job.batches[0].request_file)
    # the process died between upload and create, then resume uploaded the file again
    lost = client.upload(request_file, name=upload_name(job.id, job.batches[0].key))
    foreign = client.upload(request_file, name="someone_elses_requests.jsonl")
    unknown_job = client.upload(request_file, name=upload_name("job_20200101_000000_dead", "b000"))

    assert service.reconcile().removed_files == []  # too young: a submission may be under way
    now[0] += timedelta(hours=2)
    report = service.reconcile()

    assert report.removed_files == [f"{lost} ({upload_name(job.id, 'b000')})"]
    sdk = openai.OpenAI(api_key=backend.api_key, base_url=backend.base_url, max_retries=0)
    remaining = {f.id for f in sdk.files.list(purpose="batch")}
    assert lost not in remaining
    assert {foreign, unknown_job, job.batches[0].input_file_id} <= remaining
