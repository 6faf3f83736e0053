"""A provider never chooses where we write: ids it returns are checked before they name a
URL or a file, and every write stays inside its folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import openai
import pytest

from conftest import sample_files
from core.client import BatchClient
from core.errors import SubmissionIncomplete
from core.jobs import JobService
from core.registry import Registry
from core.safefs import UnsafePath, contained, id_for_path, safe_name
from fakes import HostileBatchServer

TASK1 = "investment_activity_classification"


def hostile_service(server: HostileBatchServer, settings) -> JobService:
    def factory(provider: str) -> BatchClient:
        return BatchClient(openai.OpenAI(api_key="hostile-provider-test", base_url=server.base_url, max_retries=0),
                           provider="local")

    return JobService(settings=settings, registry=Registry(settings.registry_path), client_factory=factory)


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("batch_id", ["../../../../escape", "batch/../../x", "..", "batch_\n1"])
def test_a_batch_id_that_is_a_path_is_refused_at_submit(tmp_path: Path, settings, batch_id: str) -> None:
    with HostileBatchServer(batch_id=batch_id) as server:
        service = hostile_service(server, settings)
        with pytest.raises(SubmissionIncomplete, match="not a plain id"):
            service.submit(service.prepare(TASK1, inputs=sample_files()))
    job = service.list_jobs()[0]
    assert job.status == "submit_failed" and all(b.batch_id is None for b in job.batches)
    assert not any("escape" in p.name for p in files_under(tmp_path))


def test_an_output_file_id_that_is_a_path_never_reaches_a_url_or_a_file(tmp_path: Path, settings) -> None:
    with HostileBatchServer(output_file_id="../../../../etc/passwd") as server:
        service = hostile_service(server, settings)
        with pytest.raises(SubmissionIncomplete, match="not a plain id"):
            service.submit(service.prepare(TASK1, inputs=sample_files()))
        assert not any("passwd" in p or "/content" in p for p in server.paths_seen)


def test_an_odd_but_plain_batch_id_names_a_hashed_raw_file_inside_the_job(tmp_path: Path, settings) -> None:
    odd = "batch:v1.2"  # plain enough for a URL, not for a file name
    line = {"id": "r1", "custom_id": "s0-r2", "error": None,
            "response": {"status_code": 200, "request_id": "q", "body": {"choices": [{"message": {
                "content": json.dumps({"Score": 1, "Explanation": "ok"})}, "finish_reason": "stop"}]}}}
    with HostileBatchServer(batch_id=odd, output=(json.dumps(line) + "\n").encode()) as server:
        service = hostile_service(server, settings)
        job = service.submit(service.prepare(TASK1, inputs=sample_files()[:1]))
        outcome = service.collect(job.id)
    raw_dir = Path(job.job_dir) / "raw"
    assert [p.name for p in outcome.raw_files] == [f"{id_for_path(odd)}_output.jsonl"]
    assert all(p.parent == raw_dir for p in outcome.raw_files)
    assert outcome.frame.set_index("custom_id").loc["s0-r2", "status"] == "succeeded"


def test_contained_refuses_every_way_out(tmp_path: Path) -> None:
    folder = tmp_path / "jobs"
    folder.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", folder / "link")
    for name in ("../x", "..", "/etc/passwd", "a/b", "a\\b", "x\x00y", "", "link"):
        with pytest.raises(UnsafePath):
            contained(folder, name) if name != "link" else contained(folder, name) and None
    assert contained(folder, "batch_1_output.jsonl") == folder / "batch_1_output.jsonl"


def test_safe_name_keeps_names_short_distinct_and_plain() -> None:
    long_a, long_b = "a" * 300 + "1.csv", "a" * 300 + "2.csv"
    assert len(safe_name(long_a, suffix=".csv").encode()) <= 120
    assert safe_name(long_a, suffix=".csv") != safe_name(long_b, suffix=".csv")
    assert safe_name("../../etc/passwd") == "_.._etc_passwd"
    assert safe_name("\x1b[31mred") == "_[31mred"
    assert safe_name("..") == "file" and safe_name("") == "file"
    assert len(safe_name("é" * 200).encode()) <= 120  # bytes, not characters
