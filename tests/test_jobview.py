"""The read-only job views the command line lists jobs with (core.jobview): they read what the
pydantic records read, derive the same status and progress, and hand every record they cannot
read as it is to full validation, so a damaged record is still reported, never listed as if it
were sound."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic_core import PydanticUndefined

from conftest import SAMPLES, finish, run_cli
from core.jobs import JobService
from core.jobview import BATCH_FIELDS, JOB_FIELDS, REQUIRED, SOURCE_FIELDS, JobView, read_view, read_views
from core.jobs.recovery import read_records
from core.models import BatchRecord, Job, SourceRecord
from core.monitoring import job_progress, timing
from core.registry import Registry

TASK1 = "investment_activity_classification"


def _model_default(field: Any) -> Any:
    if field.default_factory is not None:
        return field.default_factory()
    return None if field.default is PydanticUndefined else field.default


@pytest.mark.parametrize(("spec", "model"), [(JOB_FIELDS, Job), (BATCH_FIELDS, BatchRecord), (SOURCE_FIELDS, SourceRecord)])
def test_the_views_read_the_models_fields_with_their_defaults(spec: dict, model: type) -> None:
    fields = model.model_fields
    assert set(spec) <= set(fields)  # no field the records do not have
    # a record missing a required field is never read as a view: pydantic reports it
    assert {name for name, f in fields.items() if f.is_required()} <= set(spec)
    for name, (_types, default) in spec.items():
        if fields[name].is_required():
            assert default is REQUIRED, name
        else:
            assert default is not REQUIRED, name
            expected = _model_default(fields[name])
            assert (dict(default) if hasattr(default, "keys") else list(default) if isinstance(default, tuple)
                    else default) == expected, name


def _record(**batch_overrides: Any) -> dict:
    batches = [
        BatchRecord(key="b000", request_file="/x/r0.jsonl", n_requests=100, first_custom_id="s0-r2",
                    last_custom_id="s0-r101", status="completed", batch_id="batch_a", total=100, completed=90,
                    failed=4, errors=["line 3: invalid_request"], timestamps={"created_at": 1_000, "completed_at": 1_600}),
        BatchRecord(key="b001", request_file="/x/r1.jsonl", n_requests=50, first_custom_id="s0-r102",
                    last_custom_id="s0-r151", **{"status": "cancelled", "batch_id": "batch_b", "completed": 7,
                                                 "timestamps": {"created_at": 1_100, "cancelled_at": None},
                                                 **batch_overrides}),
    ]
    job = Job(id="job_20261201_120000_abcd", task=TASK1, provider="local", model="m", max_tokens=500,
              created_at="2026-12-01T12:00:00+00:00", name="Spring run", note="two\nlines", job_dir="/x/job",
              output_dir="/x/out", n_rows=160, n_requests=150,
              sources=[SourceRecord(index=0, name="a.csv", rows_read=170, rows_kept=160)],
              prompts={"system": "s", "user": "u {text}"}, estimate={"input_tokens": 9_000, "cost_ceiling": 0},
              batches=batches, result_counts=None, usage={"prompt_tokens": 1, "completion_tokens": 2, "cost": None})
    return job.to_record()


def test_a_view_shows_what_the_validated_job_shows() -> None:
    record = _record()
    view, job = read_view(record), Job.from_record(record)
    assert isinstance(view, JobView)
    for name in JOB_FIELDS:
        if name in ("sources", "batches"):
            continue
        value = getattr(view, name)
        assert (list(value) if isinstance(value, tuple) else value) == getattr(job, name), name
    for seen, real in zip(view.batches, job.batches, strict=True):
        for name in BATCH_FIELDS:
            value = getattr(seen, name)
            assert (list(value) if isinstance(value, tuple) else dict(value) if name == "timestamps" else value) \
                == getattr(real, name), name
        assert (seen.is_terminal, seen.is_active, seen.is_unsent) == (real.is_terminal, real.is_active, real.is_unsent)
    assert [s.name for s in view.sources] == [s.name for s in job.sources]
    assert (view.status, view.is_finished, view.is_active, view.progress()) == \
        (job.status, job.is_finished, job.is_active, job.progress()) == ("partially_completed", True, False, (97, 4, 150))
    assert job_progress(view) == job_progress(job) and timing(view) == timing(job)
    with pytest.raises(AttributeError):
        view.name = "changed"  # type: ignore[misc]  # read-only: a view is never written back


@pytest.mark.parametrize(
    ("change", "outcome"),
    [
        (lambda r: r.pop("n_rows"), "job"),  # an older record: pydantic fills n_rows from n_requests
        (lambda r: r["batches"][0].update(completed="90"), "job"),  # lax: pydantic reads "90" as 90
        (lambda r: r["batches"][0].update(completed=True), "job"),  # a bool is not a count to the view
        (lambda r: r["batches"][0].update(n_requests="many"), "damaged"),
        (lambda r: r["batches"][1].pop("key"), "damaged"),
        (lambda r: r.update(provider="elsewhere"), "damaged"),
        (lambda r: r.update(sources="a.csv"), "damaged"),
        (lambda r: r.update(result_counts={"succeeded": "lots"}), "damaged"),
        (lambda r: r["batches"][0].update(timestamps={"created_at": "yesterday"}), "damaged"),
    ],
)
def test_a_record_the_view_cannot_read_is_validated_in_full(change: Any, outcome: str) -> None:
    record = _record()
    change(record)
    assert read_view(record) is None
    shown, damaged = read_views([record, _record()])
    expected_jobs, expected_damage = read_records([record, _record()])  # exactly what full validation says
    assert damaged == expected_damage
    assert [type(j).__name__ for j in shown] == (["Job", "JobView"] if outcome == "job" else ["JobView"])
    assert [j.id for j in shown] == [j.id for j in expected_jobs]
    if outcome == "damaged":
        assert len(damaged) == 1 and "other jobs are fine" in str(damaged[0])


def test_listing_and_status_report_a_damaged_record_and_show_the_others(service: JobService) -> None:
    good = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))[:1]))
    finish(service, good.id)
    broken = copy.deepcopy(service.registry.get_job(good.id))
    broken["id"] = "job_20261201_120000_dead"
    broken["batches"][0]["completed"] = "all of them"
    with service.registry.transaction() as tx:
        tx.put_job(broken)
    code, out, err = run_cli(service, "status", "--list-jobs")
    assert code == 0 and good.id in out and "job_20261201_120000_dead" not in out
    assert "warning: job job_20261201_120000_dead: record damaged (batches.0.completed" in err
    code, out, err = run_cli(service, "status", "--batch-id", "job_20261201_120000_dead")
    assert code == 1 and "is damaged (batches.0.completed" in err and "Traceback" not in err
    code, out, err = run_cli(service, "status", "--batch-id", good.id)
    assert code == 0 and out.startswith(f"{good.id}  completed") and "24 of 24 requests answered (100%)" in out


def test_show_refreshes_a_running_job_and_reads_a_finished_one(service: JobService) -> None:
    job = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))[:1]))
    finish(service, job.id)
    batch_id = service.get(job.id).batches[0].batch_id
    (shown,) = service.show([job.id, batch_id, job.id])  # each job once, by either id
    assert isinstance(shown, JobView) and shown.id == job.id and shown.is_finished
    running = Registry(service.registry.path).get_job(job.id)
    running["id"], running["batches"][0]["status"] = "job_20261201_120000_beef", "in_progress"
    with service.registry.transaction() as tx:
        tx.put_job(running)
    # a job with something under way is asked about: the copy shares the finished batch's id,
    # so the backend's answer moves it from "running" to completed, on a validated record
    (asked,) = service.show(["job_20261201_120000_beef"])
    assert isinstance(asked, Job) and asked.status == "completed" and asked.batches[0].last_checked_at
    assert Registry(service.registry.path).get_job(asked.id)["batches"][0]["status"] == "completed"
