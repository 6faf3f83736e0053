"""Issue 12, items 4 and 5: jobs with a name and a note (submit, edit, every list and picker),
archiving (hidden everywhere, undoable) and deleting (asks, removes the registry entry and local
files, never anything at the provider). Through the command line and the service, on the real
local backend over HTTP."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from conftest import SAMPLES, finish, make_backend, service_for, run_cli as run, run_cli_json as run_json
from core.cli import Cli, build_parser
from core.errors import CoreError
from core.jobs import JobService
from core.monitoring import job_label, job_table, refresh_cycle

TASK1 = "investment_activity_classification"
TASK2 = "assetization_features_scoring"


def submitted(service: JobService, *extra: str, files: list[Path] | None = None) -> str:
    inputs = [a for p in (files or sorted(SAMPLES.glob("*.csv"))) for a in ("--input-file", str(p))]
    return run_json(service, "submit", "--task", TASK1, *inputs, *extra)["job"]["job_id"]


# ----- item 4: names and notes ------------------------------------------------------------------

def test_a_named_job_shows_its_name_files_and_rows_everywhere(service: JobService) -> None:
    job_id = submitted(service, "--name", "Spring reports\x1b[31m run", "--note", "first try\nwith the 2024 files")
    job = service.get(job_id)
    assert job.name == "Spring reports[31m run" and job.note == "first try\nwith the 2024 files"  # no escape survives
    label = job_label(job)
    assert label.startswith("Spring reports[31m run · " + job_id) and "investor_reports_2024_part1.csv" in label
    assert "48 rows" in label
    assert job_table([job]).loc[0, "job"] == f"Spring reports[31m run · {job_id}"  # the Monitor table
    finish(service, job_id)

    code, out, _ = run(service, "status", "--list-jobs")
    header, line = out.splitlines()[:2]
    assert header.split()[:3] == ["JOB", "CREATED", "(UTC)"] and "NAME · INPUT FILES" in header
    assert line.startswith(job_id) and job.created_at[:10] in line and "task 1" in line and "completed" in line
    assert "48" in line and "100%" in line and "Spring reports[31m run · investor_reports_2024_part1.csv" in line

    edited = run_json(service, "job", "--job", job_id, "--name", "Renamed", "--note", "")
    assert edited["job"]["name"] == "Renamed" and edited["job"]["note"] is None
    assert service.get(job_id).name == "Renamed"
    listed = run_json(service, "status", "--list-jobs")["jobs"][0]
    assert listed["name"] == "Renamed" and listed["input_files"] == [p.name for p in sorted(SAMPLES.glob("*.csv"))]
    code, out, _ = run(service, "job", "--job", job_id)
    assert code == 0 and "Renamed" in out and "48 rows" in out and "48 of 48 requests answered (100%)" in out


def test_a_bad_name_fails_before_anything_is_sent(service: JobService) -> None:
    code, _, err = run(service, "submit", "--task", TASK1, "--input-dir", str(SAMPLES), "--name", "x" * 500)
    assert code == 1 and "at most 120 characters" in err
    assert service.list_jobs(archived=None) == []
    code, _, err = run(service, "job", "--job", "job_nope", "--name", "x")
    assert code == 1 and "No job or batch 'job_nope'" in err


# ----- item 5: archive --------------------------------------------------------------------------

def test_archive_hides_a_job_everywhere_and_unarchive_brings_it_back(service: JobService) -> None:
    kept, hidden = (submitted(service, files=[p]) for p in sorted(SAMPLES.glob("*.csv")))
    finish(service, kept, hidden)
    code, out, err = run(service, "job", "--job", hidden, "--archive")
    assert code == 0, err
    assert f"--job {hidden} --unarchive" in out
    assert [j.id for j in service.list_jobs()] == [kept]
    assert [j.id for j in service.scan_jobs()[0]] == [kept]  # the sidebar's count
    assert [j.id for j in service.completed_parent_jobs()] == [kept]  # task 2's picker
    assert [j.id for j in refresh_cycle(service).jobs] == [kept]  # the Monitor page
    assert {j.id for j in service.list_jobs(archived=None)} == {kept, hidden}
    code, out, _ = run(service, "status", "--list-jobs")
    assert hidden not in out and "1 archived job not shown" in out
    code, out, _ = run(service, "status", "--list-jobs", "--archived")
    assert hidden in out and kept not in out
    code, out, _ = run(service, "status", "--batch-id", hidden)  # still reachable by its id
    assert code == 0 and hidden in out

    run_json(service, "job", "--job", hidden, "--unarchive")
    assert {j.id for j in service.list_jobs()} == {kept, hidden}


def test_a_running_job_is_neither_archived_nor_deleted(tmp_path: Path, settings) -> None:
    with make_backend(tmp_path, baseline_delay_seconds=0.3) as backend:
        service = service_for(backend, settings)
        job_id = submitted(service)
        code, _, err = run(service, "job", "--job", job_id, "--archive")
        assert code == 1 and "still running" in err
        code, _, err = run(service, "delete", "--job", job_id, "--yes")
        assert code == 1 and "still running" in err and "--cancel" in err
        assert service.get(job_id).archived_at is None
        run_json(service, "status", "--batch-id", job_id, "--cancel", "--yes")


# ----- item 5: delete ---------------------------------------------------------------------------

def test_delete_asks_then_removes_local_files_and_nothing_at_the_provider(service: JobService,
                                                                           tmp_path: Path) -> None:
    job_id = submitted(service, "--name", "to delete")
    finish(service, job_id)
    run_json(service, "download", "--batch-id", job_id)
    elsewhere = submitted(service)
    finish(service, elsewhere)
    outside = tmp_path / "my_results"
    run_json(service, "download", "--batch-id", elsewhere, "--output-dir", str(outside))
    job = service.get(job_id)
    job_dir, output_dir = Path(job.job_dir), Path(job.output_dir)
    batch_id = job.batches[0].batch_id
    output_file = job.batches[0].output_file_id
    assert job_dir.is_dir() and output_dir.is_dir()

    # without a terminal and without --yes: nothing happens
    code, out, err = run(service, "delete", "--job", job_id)
    assert code == 1 and "--yes" in err and service.get(job_id)
    assert f"Removes: {job_dir}" in out and f"Removes: {output_dir}" in out
    assert "Nothing at the provider (local) is deleted" in out and batch_id in out
    # asked, and the answer is no
    questions: list[str] = []
    cli = Cli(service, out=io.StringIO(), err=io.StringIO(), ask=lambda q: questions.append(q) or False)
    with pytest.raises(CoreError, match="Not deleted"):
        cli.delete(build_parser().parse_args(["delete", "--job", job_id]))
    assert questions and job_id in questions[0] and service.get(job_id)

    deleted = run_json(service, "delete", "--job", job_id, "--yes")
    assert deleted["deleted"] == [job_id] and set(deleted["removed"]) == {str(job_dir), str(output_dir)}
    assert not job_dir.exists() and not output_dir.exists()
    assert job_id not in {j.id for j in service.list_jobs(archived=None)}
    assert job_id in service.registry.deleted_job_ids()
    # the provider still has the batch and its paid answers
    client = service.client("local")
    assert client.retrieve(batch_id).status == "completed" and client.download(output_file)
    # neither reconcile nor the registry's recovery brings it back or calls it an orphan
    report = service.reconcile()
    assert job_id not in " ".join(report.orphans + report.restored_jobs + report.adopted)
    note = service.registry.recover()
    assert note is None or job_id not in note.message
    assert job_id not in {j.id for j in service.list_jobs(archived=None)}

    # results written outside the data folder are the user's: kept, and said so
    plan = service.plan_deletion(elsewhere)
    assert plan.keep == (outside,) and outside not in plan.remove
    assert any(line == f"Keeps (outside the data folder): {outside}" for line in plan.lines())
    run_json(service, "delete", "--job", elsewhere, "--yes")
    assert outside.is_dir() and any(outside.glob("*.csv"))


def test_delete_refuses_a_parent_of_task2_jobs_until_they_are_deleted(service: JobService) -> None:
    parent = submitted(service)
    finish(service, parent)
    child = run_json(service, "submit", "--task", TASK2, "--batch-id", parent)["job"]["job_id"]
    finish(service, child)
    code, _, err = run(service, "delete", "--job", parent, "--yes")
    assert code == 1 and child in err and "archive" in err
    service.collect(child)
    run_json(service, "delete", "--job", child, "--yes")
    run_json(service, "delete", "--job", parent, "--yes")
    assert service.list_jobs(archived=None) == []


def test_a_job_waiting_in_our_own_queue_is_not_archived(service: JobService) -> None:
    """A queued batch is sent by a later refresh: archived, the job would run out of sight."""
    from core.errors import NotReady
    from core.models import BatchRecord, Job

    job = Job(id="job_20261201_000000_abcd", task=TASK1, provider="local", model="m", max_tokens=10,
              created_at="2026-12-01T00:00:00+00:00", job_dir="/nonexistent/j", output_dir="/nonexistent/o",
              n_rows=5, n_requests=5, sources=[], prompts={}, estimate={},
              batches=[BatchRecord(key="b000", request_file="f", n_requests=5, first_custom_id="a",
                                   last_custom_id="b", status="queued")])
    service._save(job)
    with pytest.raises(NotReady, match="still running"):
        service.archive(job.id)
    assert service.get(job.id).archived_at is None
