"""Where a crash used to be, a clear one-line message: odd output folders, waiting on a job
that was never sent, input file names at the file system's limit, a full disk."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import finish, sample_files, service_for, run_cli as run
from core.errors import StorageError, SubmissionIncomplete
from core.jobs import JobService
from core.registry import Registry
from core.settings import load_settings

TASK1 = "investment_activity_classification"


@pytest.fixture
def finished_job(service: JobService) -> str:
    job = service.submit(service.prepare(TASK1, inputs=sample_files()))
    finish(service, job.id)
    return job.id


@pytest.mark.parametrize("target, message", [
    ("/dev/null", "exists and is not a folder"),
    ("/proc/x", "system folder"),
    ("FILE", "exists and is not a folder"),
    ("x" * 300, "too long"),
])
def test_download_to_a_bad_output_folder_says_why(service: JobService, finished_job: str, tmp_path: Path,
                                                 target: str, message: str) -> None:
    if target == "FILE":
        target = str(tmp_path / "a_file")
        Path(target).write_text("not a folder")
    code, out, err = run(service, "download", "--batch-id", finished_job, "--output-dir", target)
    assert code == 1 and message in out + err and "Traceback" not in err
    assert len((out + err).splitlines()) <= 3


def test_output_folder_tilde_expands_and_relative_is_stored_absolute(
        service: JobService, finished_job: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    code, _, err = run(service, "download", "--batch-id", finished_job, "--output-dir", "~/results")
    assert code == 0, err
    assert (tmp_path / "home" / "results").is_dir() and not Path("~").exists()
    monkeypatch.chdir(tmp_path)
    code, _, err = run(service, "download", "--batch-id", finished_job, "--output-dir", "rel/out")
    assert code == 0, err
    stored = service.get(finished_job).output_dir
    assert stored == str(tmp_path / "rel" / "out") and Path(stored).is_absolute()
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in service.get(finished_job).output_files)


def test_waiting_on_a_job_that_was_never_sent_says_how_to_send_it(settings) -> None:
    dead = service_for("http://127.0.0.1:9/v1", settings)  # nothing listens on the discard port
    with pytest.raises(SubmissionIncomplete) as failed:
        dead.submit(dead.prepare(TASK1, inputs=sample_files()))
    code, out, err = run(dead, "status", "--batch-id", failed.value.job_id, "--wait", "--poll-interval", "0")
    assert code == 1 and "Traceback" not in err
    assert f"submit --resume {failed.value.job_id}" in out


def test_an_input_file_name_at_the_file_system_limit_is_collected(service: JobService, tmp_path: Path) -> None:
    name = "r" * 251 + ".csv"  # 255 bytes: the most a name can have
    pd.read_csv(sample_files()[0]).to_csv(tmp_path / name, index=False)
    job = service.submit(service.prepare(TASK1, inputs=[tmp_path / name]))
    finish(service, job.id)
    outcome = service.collect(job.id)
    assert outcome.counts["succeeded"] == len(outcome.frame)
    assert all(len(Path(p).name.encode()) <= 255 and Path(p).is_file() for p in outcome.output_files)
    assert set(pd.read_csv(outcome.output_files[0])["csv_file_name"]) == {name}  # the real name is kept


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A real 64 KiB file system (tmpfs), so writes fail with ENOSPC as on a full disk."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_during_submit_leaves_no_half_written_job(tiny_disk: Path, backend, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BDASSET_DATA_DIR", str(tiny_disk / "data"))
    root = tmp_path / "project"
    root.mkdir()
    settings = load_settings(root=root)
    service = service_for(backend, settings)
    texts = [f"Paragraph {i}: the fund invested in wetland restoration. " * 40 for i in range(200)]
    source = tmp_path / "many.csv"
    pd.DataFrame({"paragraph_text": texts}).to_csv(source, index=False)
    prep = service.prepare(TASK1, inputs=[source])
    with pytest.raises(StorageError, match="disk is full"):
        service.submit(prep)
    jobs_dir = settings.jobs_dir
    assert not jobs_dir.exists() or list(jobs_dir.iterdir()) == []
    assert Registry(settings.registry_path).list_jobs() == []
    code, out, err = run(service, "submit", "--task", TASK1, "--input-file", str(source))
    assert code == 1 and "disk is full" in err and "Traceback" not in err
