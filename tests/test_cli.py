"""The command line: in-process for most commands, and once as a real subprocess that starts
the embedded backend by itself, as a newcomer's shell would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SAMPLES, run_cli as run, run_cli_json as run_json
from core.jobs import JobService
from core.local import stop_running

ROOT = Path(__file__).resolve().parent.parent
TASK1 = "investment_activity_classification"
TASK2 = "assetization_features_scoring"


def test_submit_wait_download_then_task2(service: JobService, tmp_path: Path) -> None:
    submitted = run_json(service, "submit", "--task", TASK1, "--input-dir", str(SAMPLES))
    job_id = submitted["job"]["job_id"]
    assert submitted["n_requests"] == 48 and submitted["estimate"]["input_tokens"] > 0
    waited = run_json(service, "status", "--batch-id", job_id, "--wait", "--poll-interval", "0.05")
    assert waited["jobs"][0]["status"] == "completed"
    out_dir = tmp_path / "results"
    downloaded = run_json(service, "download", "--batch-id", job_id, "--output-dir", str(out_dir))
    (job,) = downloaded["jobs"]
    assert sum(job["row_counts"].values()) == 48 and job["row_counts"]["succeeded"] == 48
    assert sorted(Path(p).name for p in job["output_files"]) == sorted(p.name for p in SAMPLES.glob("*.csv"))
    assert all(Path(p).parent == out_dir for p in job["output_files"])

    batch_id = waited["jobs"][0]["batches"][0]["batch_id"]
    second = run_json(service, "submit", "--task", TASK2, "--batch-id", batch_id)
    assert second["job"]["parent_job_id"] == job_id
    run_json(service, "status", "--job-id", second["job"]["job_id"], "--wait", "--poll-interval", "0.05")
    final = run_json(service, "download", "--batch-id", second["job"]["job_id"])
    assert Path(final["jobs"][0]["output_files"][0]).name == "assetization_features_scored.csv"


def test_status_accepts_several_ids_and_lists_jobs(service: JobService) -> None:
    ids = [run_json(service, "submit", "--task", TASK1, "--input-file", str(p))["job"]["job_id"]
           for p in sorted(SAMPLES.glob("*.csv"))]
    code, out, _ = run(service, "status", "--batch-id", *ids, "--wait", "--poll-interval", "0.05")
    assert code == 0 and all(i in out for i in ids) and "Finished" in out
    listed = run_json(service, "status", "--list-jobs")
    assert {j["job_id"] for j in listed["jobs"]} == set(ids)
    code, out, _ = run(service, "status", "--list-jobs")
    assert out.count("completed") == 2


def test_cancel_needs_confirmation_without_a_terminal(tmp_path: Path, settings) -> None:
    from conftest import make_backend, service_for

    with make_backend(tmp_path, baseline_delay_seconds=0.2) as backend:
        service = service_for(backend, settings)
        job_id = run_json(service, "submit", "--task", TASK1, "--input-dir", str(SAMPLES))["job"]["job_id"]
        code, _, err = run(service, "status", "--batch-id", job_id, "--cancel")
        assert code == 1 and "--yes" in err
        cancelled = run_json(service, "status", "--batch-id", job_id, "--cancel", "--yes")
        assert cancelled["jobs"][0]["status"] in ("cancelling", "cancelled")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty.csv: the file is empty"),
        (b"text,pdf_file_name\nhello,a.pdf\n", "empty.csv: there is no 'paragraph_text' column"),
        (b"\x00\x01\x02binary\x00", "empty.csv: this is not a text table"),
    ],
)
def test_bad_file_gives_one_line_and_exit_1(service: JobService, tmp_path: Path, content: bytes, expected: str) -> None:
    bad = tmp_path / "empty.csv"
    bad.write_bytes(content)
    code, out, err = run(service, "submit", "--task", TASK1, "--input-file", str(bad))
    assert code == 1
    assert err.startswith(f"error: {expected}") and err.count("\n") == 1
    assert "Traceback" not in err + out
    assert service.list_jobs() == []  # nothing recorded, nothing sent


def test_unknown_id_and_usage_errors(service: JobService) -> None:
    code, _, err = run(service, "download", "--batch-id", "batch_unknown")
    assert code == 1 and "batch_unknown" in err
    code, _, err = run(service, "submit", "--task", "no_such_task")
    assert code == 2 and "invalid choice" in err
    code, out, _ = run(service, "submit", "--task", TASK2, "--batch-id", "job_x", "--json")
    assert code == 1 and json.loads(out) == {"ok": False, "error": json.loads(out)["error"]} and "job_x" in out


def test_openai_without_key_is_refused_clearly(service: JobService, settings) -> None:
    code, _, err = run(None, "submit", "--task", TASK1, "--provider", "openai", "--dry-run")
    assert code == 0  # a dry run needs no key
    code, _, err = run(None, "submit", "--task", TASK1, "--provider", "openai")
    assert code == 1 and "No OpenAI API key is configured" in err


def test_dry_run_submits_nothing(service: JobService) -> None:
    result = run_json(service, "submit", "--task", TASK1, "--dry-run", "--max-requests-per-file", "20")
    assert result["dry_run"] is True and result["n_batches"] == 3
    assert service.list_jobs() == []


def test_real_subprocess_starts_the_embedded_backend(isolated_data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    env["BDASSET_DATA_DIR"] = str(isolated_data_dir)

    def cli(*argv: str) -> dict:
        done = subprocess.run([sys.executable, "-m", "core", *argv, "--json"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        return json.loads(done.stdout)

    try:
        job_id = cli("submit", "--task", TASK1)["job"]["job_id"]
        assert cli("status", "--batch-id", job_id, "--wait", "--poll-interval", "0.2")["jobs"][0]["status"] == "completed"
        (job,) = cli("download", "--batch-id", job_id)["jobs"]
        assert job["row_counts"]["succeeded"] == 48
        assert Path(job["output_dir"]).is_relative_to(isolated_data_dir)
    finally:
        stop_running(isolated_data_dir / "local_backend")


def test_submit_sheet_and_text_column(service: JobService, tmp_path: Path) -> None:
    """--sheet and --text-column read a workbook whose paragraphs are on another sheet under
    another name; without them the error names the file, its sheets and columns and the flags.
    The job records what was read."""
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "About"
    book.active.append(["notes"])
    data = book.create_sheet("Coded")
    data.append(["report", "Absatz"])
    data.append(["FfBF_A_R.pdf", "We invested EUR 5m in wetland restoration."])
    path = tmp_path / "coded.xlsx"
    book.save(path)

    code, out, err = run(service, "submit", "--task", TASK1, "--input-file", str(path), "--dry-run")
    assert code == 1 and "coded.xlsx" in err and "'Coded' ('report', 'Absatz')" in err
    assert "--sheet" in err and "--text-column" in err

    code, out, err = run(service, "submit", "--task", TASK1, "--input-file", str(path), "--sheet", "Coded",
                         "--text-column", "Absatz", "--dry-run")
    assert code == 0, err
    assert "note: sheet 'Coded' was read, as chosen" in out and "note: the paragraphs were read from the column 'Absatz'" in out
    assert "coded.xlsx: 1 rows read, 1 kept" in out
    done = run_json(service, "submit", "--task", TASK1, "--input-file", str(path), "--sheet", "2",
                    "--text-column", "absatz")
    (source,) = service.get(done["job"]["job_id"]).sources
    assert (source.sheet, source.text_column, source.rows_kept) == ("Coded", "Absatz", 1)

    code, _, err = run(service, "submit", "--task", TASK1, "--input-file", str(path), "--sheet", "Nope", "--dry-run")
    assert code == 1 and "no sheet 'Nope'" in err and "'About', 'Coded'" in err

    plain = tmp_path / "coded.csv"  # a CSV has no sheets: the hint names only the column flag
    plain.write_text("report,Absatz\nFfBF_A_R.pdf,We invested EUR 5m in wetland restoration.\n", encoding="utf-8")
    code, _, err = run(service, "submit", "--task", TASK1, "--input-file", str(plain), "--dry-run")
    assert code == 1 and "coded.csv: there is no 'paragraph_text' column. Columns found: 'report', 'Absatz'" in err
    assert "--text-column COLUMN" in err and "--sheet" not in err


def test_submit_task2_refuses_input_choices(service: JobService) -> None:
    code, _, err = run(service, "submit", "--task", TASK2, "--batch-id", "job_x", "--text-column", "Text")
    assert code == 1 and "--sheet or --text-column" in err
