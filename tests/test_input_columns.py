"""Issue 12, item 3: every input column (page, paragraph_id, anything) reaches the row file, the
result files, Explore and its downloads, after the product's own columns and never replacing
one (a clashing input column is kept as input_<name>, and the input report says so)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from conftest import finish
from core.columns import input_column_names, input_columns
from core.explore import load_results, to_csv_bytes
from core.inputs import read_input
from core.jobs import JobService
from core.jobs.common import ROW_FILE
from core.results import read_results, result_columns
from core.tasks import ASSETIZATION_FEATURES, INVESTMENT_ACTIVITY

HEADER = "paragraph_id,paragraph_text,pdf_file_name,page,score,Status,sector\n"
ROWS = [
    ("p1", "We invested EUR 40 million in a wetland restoration fund managed by our team.", "FfBF_A_2024.pdf", "4",
     "hand: 1", "done", "pension"),
    ("p2", "Biodiversity matters for the economy in general terms.", "FfBF_A_2024.pdf", "7", "hand: 0", "", "pension"),
    ("p3", "We voted against directors at three companies over deforestation.", "FfBF_B_2024.pdf", "12", "",
     "todo", "insurer, life"),
]


def write_input(folder: Path) -> Path:
    path = folder / "coded_paragraphs.csv"
    lines = [HEADER] + [",".join(f'"{v}"' for v in row) + "\n" for row in ROWS]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_names_of_the_products_own_columns_are_kept_aside() -> None:
    assert input_column_names(["page", "score", "Page", "ROW", "input_score"]) == (
        ["page", "input_score", "Page (2)", "input_ROW", "input_score (2)"],
        [("score", "input_score"), ("Page", "Page (2)"), ("ROW", "input_ROW"), ("input_score", "input_score (2)")],
    )
    assert input_columns(["custom_id", "score", "page", "investor", "input_score", "job_id"]) == ["page", "input_score"]


def test_read_input_keeps_every_column_and_says_what_it_renamed(tmp_path: Path) -> None:
    table = read_input(write_input(tmp_path))
    assert list(table.frame.columns) == ["row", "paragraph_text", "pdf_file_name", "paragraph_id", "page",
                                         "input_score", "input_Status", "sector"]
    assert table.input_columns == ["paragraph_id", "page", "input_score", "input_Status", "sector"]
    assert table.frame["page"].tolist() == ["4", "7", "12"] and table.frame["sector"].tolist()[2] == "insurer, life"
    assert any("'score' as 'input_score'" in w and "'Status' as 'input_Status'" in w for w in table.report.warnings)


def test_input_columns_reach_rows_results_task2_explore_and_downloads(service: JobService, tmp_path: Path) -> None:
    prep = service.prepare(INVESTMENT_ACTIVITY.name, inputs=[write_input(tmp_path)])
    assert any("input_score" in w for w in prep.sources[0].warnings)  # the submit report says so
    job = service.submit(prep)
    rows = pd.read_csv(Path(job.job_dir) / ROW_FILE, dtype=str, keep_default_na=False)
    assert list(rows.columns)[:6] == ["custom_id", "source_index", "csv_file_name", "row", "pdf_file_name",
                                      "paragraph_text"]
    assert {"paragraph_id", "page", "input_score", "input_Status", "sector"} <= set(rows.columns)
    finish(service, job.id)
    collection = service.collect(job.id)

    (path,) = collection.output_files
    written = read_results([path])
    own = result_columns(INVESTMENT_ACTIVITY)
    assert list(written.columns) == own + ["paragraph_id", "page", "input_score", "input_Status", "sector"]
    by_id = written.set_index("paragraph_id")
    assert by_id.loc["p3", "page"] == "12" and by_id.loc["p3", "sector"] == "insurer, life"
    assert by_id.loc["p1", "input_score"] == "hand: 1" and by_id.loc["p1", "score"] == "1"  # ours untouched
    assert by_id.loc["p1", "input_Status"] == "done" and by_id.loc["p1", "status"] == "succeeded"
    # the text columns still match their rows (merged by custom_id, never by position)
    assert by_id.loc["p2", "paragraph_text"] == ROWS[1][1]

    frame = load_results([service.get(job.id)])
    extra = ["paragraph_id", "page", "input_score", "input_Status", "sector"]
    assert list(frame.columns)[-len(extra):] == extra  # after every column of ours
    download = pd.read_csv(io.BytesIO(to_csv_bytes(frame)), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(download.columns)[-len(extra):] == extra and download["page"].tolist() == frame["page"].tolist()

    # task 2 reads its rows from task 1's results (the baseline scores p1 with 1): the columns come along
    assert by_id.loc["p1", "score"] == "1"
    child = service.submit(service.prepare(ASSETIZATION_FEATURES.name, parent=job.id))
    finish(service, child.id)
    (path2,) = service.collect(child.id).output_files
    second = read_results([path2])
    assert list(second.columns) == result_columns(ASSETIZATION_FEATURES) + extra
    assert second.set_index("paragraph_id").loc["p1", "page"] == "4"
    both = load_results([service.get(child.id), service.get(job.id)])
    assert list(both.columns)[-len(extra):] == extra and "intrinsic_value_score" in both.columns
