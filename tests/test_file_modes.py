"""Research data on disk is private to the user: every folder the product creates is 0700,
every file 0600, whatever the umask allows more of."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from conftest import SAMPLES, finish, sample_files
from core.jobs import JobService

TASK1 = "investment_activity_classification"


def loose(paths) -> list[str]:
    return [f"{oct(stat.S_IMODE(p.lstat().st_mode))} {p}" for p in paths
            if not p.is_symlink() and stat.S_IMODE(p.lstat().st_mode) & 0o077]


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # the usual default: without care, files would be 0644 in 0755 folders
    try:
        yield
    finally:
        os.umask(old)


def test_everything_a_job_writes_is_private(service: JobService, open_umask, tmp_path: Path) -> None:
    job = service.submit(service.prepare(TASK1, inputs=sample_files()))
    finish(service, job.id)
    outcome = service.collect(job.id)
    service.tidy()
    data_dir = service.settings.data_dir
    shipped = data_dir / SAMPLES.relative_to(SAMPLES.parents[1])
    existed = {shipped.parent}  # the input folder's parent comes with the project, as in a checkout
    written = [p for p in data_dir.rglob("*") if shipped not in (p, *p.parents) and p not in existed]
    assert Path(job.job_dir) in written and outcome.output_files[0] in written
    assert {p.name for p in written} >= {"registry.json", "job.json", "rows.csv", "batch_results.jsonl"}
    assert loose(written) == []
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700  # closed at start, though it existed


def test_an_output_folder_of_the_users_choice_is_created_private(service: JobService, open_umask,
                                                                 tmp_path: Path) -> None:
    job = service.submit(service.prepare(TASK1, inputs=sample_files()))
    finish(service, job.id)
    target = tmp_path / "new" / "results"
    outcome = service.collect(job.id, output_dir=target)
    assert loose([tmp_path / "new", target, *outcome.output_files]) == []
