"""Files in and out: a job's request files exported for a run elsewhere, that run's output
and error files imported back (checked to belong to the job, merged by custom_id, idempotent),
and vLLM's per-line errors read with their message."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from conftest import sample_files, service_for
from core.cli import main
from core.interop.errors import BatchBusy, ForeignResults, ResultFileError
from core.interop.files import import_results
from core.jobs import JobService
from core.local import LocalBackend
from core.results import classify_line
from core.settings import Settings
from core.tasks import INVESTMENT_ACTIVITY

TASK1 = "investment_activity_classification"


def run(service: JobService, *argv: str) -> tuple[int, dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, "--json"], out=out, err=err, service=service)
    return code, json.loads(out.getvalue() or "{}"), err.getvalue()


def run_elsewhere(backend: LocalBackend, request_file: Path, folder: Path) -> tuple[Path, Path | None]:
    """A loopback run of one exported request file, by a client that is not this product (the
    openai SDK): its output and error files, saved as such a user would save them."""
    client = openai.OpenAI(api_key=backend.api_key, base_url=backend.base_url, max_retries=0, timeout=20)
    with open(request_file, "rb") as handle:
        uploaded = client.files.create(file=handle, purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    deadline = time.monotonic() + 60
    while (batch := client.batches.retrieve(batch.id)).status != "completed":
        assert time.monotonic() < deadline, batch.status
        time.sleep(0.05)
    output = folder / "output.jsonl"
    output.write_bytes(client.files.content(batch.output_file_id).content)
    errors = None
    if batch.error_file_id:
        errors = folder / "errors.jsonl"
        errors.write_bytes(client.files.content(batch.error_file_id).content)
    return output, errors


def held_job(service: JobService, tmp_path: Path) -> dict[str, Any]:
    code, submitted, err = run(service, "submit", "--task", TASK1, "--input-file", str(sample_files()[0]), "--hold")
    assert code == 0, err
    assert submitted["held"] and submitted["job"]["status"] == "submit_failed"
    assert all(b["batch_id"] is None for b in submitted["job"]["batches"])
    return submitted["job"]


def test_exported_requests_run_elsewhere_and_imported_complete_the_job(tmp_path: Path, backend: LocalBackend,
                                                                       settings: Settings) -> None:
    service = service_for(backend, settings)
    job = held_job(service, tmp_path)
    code, exported, err = run(service, "export-requests", "--job", job["job_id"], "--dir", str(tmp_path / "out"),
                              "--model", "served-model")
    assert code == 0, err
    (file,) = exported["files"]
    path = Path(file["path"])
    assert path.name == f"{job['job_id']}-b000.jsonl" and (path.stat().st_mode & 0o777) == 0o600
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == file["n_requests"] == job["n_requests"]
    assert {line["body"]["model"] for line in lines} == {"served-model"}

    output, errors = run_elsewhere(backend, path, tmp_path)
    assert errors is None
    code, imported, err = run(service, "import-results", "--job", job["job_id"], str(output))
    assert code == 0, err
    (batch,) = imported["batches"]
    assert (batch["answered"], batch["failed"], batch["missing"], batch["added"]) == (24, 0, 0, 24)
    summary = imported["job"]
    assert summary["status"] == "completed" and summary["row_counts"]["succeeded"] == 24
    record = service.get(job["job_id"])
    assert record.batches[0].imported_results[0]["sha256"] == imported["files"][0]["sha256"]

    # the same file again: nothing new, the same results
    code, again, err = run(service, "import-results", "--job", job["job_id"], str(output))
    assert code == 0, err
    assert again["batches"][0]["added"] == again["batches"][0]["replaced"] == 0
    assert again["job"]["row_counts"] == summary["row_counts"]
    assert len(service.get(job["job_id"]).batches[0].imported_results) == 1
    # a job that was finished this way is not sent again
    code, _resumed, err = run(service, "submit", "--resume", job["job_id"])
    assert code == 1 and "no unsent batch" in err


def test_lines_must_belong_to_the_job_and_batches_must_be_free(tmp_path: Path, backend: LocalBackend,
                                                               settings: Settings) -> None:
    service = service_for(backend, settings)
    job = held_job(service, tmp_path)
    request = Path(service.get(job["job_id"]).batches[0].request_file)
    output, _errors = run_elsewhere(backend, request, tmp_path)
    foreign = tmp_path / "mixed.jsonl"
    first = output.read_text().splitlines()[0]
    stranger = json.loads(first) | {"custom_id": "s9-r2"}
    foreign.write_text(first + "\n" + json.dumps(stranger) + "\n")
    with pytest.raises(ForeignResults, match=r"mixed.jsonl, line 2: custom_id 's9-r2' is not one of the requests"):
        import_results(service, job["job_id"], [foreign])
    assert service.get(job["job_id"]).batches[0].status == "submit_failed", "nothing was taken"
    broken = tmp_path / "broken.jsonl"
    broken.write_text(first + "\n{not json\n")
    with pytest.raises(ResultFileError, match="broken.jsonl, line 2: not valid JSON"):
        import_results(service, job["job_id"], [broken])

    sent = service.resume_submission(job["job_id"])  # now the provider runs it
    assert sent.batches[0].batch_id
    if sent.batches[0].is_active:
        with pytest.raises(BatchBusy, match="running at the provider"):
            import_results(service, job["job_id"], [output])
    service.wait([job["job_id"]], poll_interval=0.05, timeout=60)
    with pytest.raises(BatchBusy, match="already has the provider's results"):
        import_results(service, job["job_id"], [output])


def test_partial_runs_merge_by_custom_id_and_a_failure_never_replaces_an_answer(tmp_path: Path, backend: LocalBackend,
                                                                               settings: Settings) -> None:
    service = service_for(backend, settings)
    job = held_job(service, tmp_path)
    output, _errors = run_elsewhere(backend, Path(service.get(job["job_id"]).batches[0].request_file), tmp_path)
    lines = output.read_text().splitlines()
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("\n".join(lines[:10]) + "\n")
    failed = [json.dumps({"id": "vllm-1", "custom_id": json.loads(line)["custom_id"],
                          "response": {"status_code": 400, "request_id": "vllm-batch-1", "body": None},
                          "error": "The model `served-model` does not exist."}) for line in lines[5:15]]
    second.write_text("\n".join(failed) + "\n")
    outcome = import_results(service, job["job_id"], [first, second])
    (batch,) = outcome.batches
    assert (batch.answered, batch.failed, batch.missing) == (10, 5, 9)
    frame = service.collect(job["job_id"]).frame
    counts = frame["status"].value_counts().to_dict()
    assert counts == {"succeeded": 10, "failed": 5, "missing": 9}
    reasons = set(frame.loc[frame["status"] == "failed", "status_reason"])
    assert reasons == {"HTTP 400: The model `served-model` does not exist."}
    # the rest comes later; lines answered before stay answered
    rest = tmp_path / "rest.jsonl"
    rest.write_text("\n".join(lines[10:]) + "\n")
    outcome = import_results(service, job["job_id"], [rest])
    assert (outcome.batches[0].answered, outcome.batches[0].failed, outcome.batches[0].missing) == (24, 0, 0)
    assert set(service.collect(job["job_id"]).frame["status"]) == {"succeeded"}


@pytest.mark.parametrize("error, expected", [
    ("Request must not be sent in stream mode", "HTTP 400: Request must not be sent in stream mode"),
    ({"error": {"message": "The model `x` does not exist.", "type": "NotFoundError", "param": None, "code": 404}},
     "HTTP 400: 404: The model `x` does not exist."),
    ({"object": "error", "message": "bad schema", "type": "BadRequestError", "code": 400}, "HTTP 400: 400: bad schema"),
])
def test_a_vllm_error_line_is_read_with_its_message(error: object, expected: str) -> None:
    line = {"id": "vllm-1", "custom_id": "s0-r2", "error": error,
            "response": {"status_code": 400, "request_id": "vllm-batch-1", "body": None}}
    result = classify_line(line, task=INVESTMENT_ACTIVITY, batch_id=None)
    assert (result.status, result.reason) == ("failed", expected)
