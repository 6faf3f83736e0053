"""core.explore: loading collected jobs, investor names, filters, chart aggregates, exports."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from conftest import SAMPLES
from core.errors import CoreError
from core.explore import (
    NO_SCORE,
    TABLE_ROW_LIMIT,
    Filters,
    apply_filters,
    collected_jobs,
    combination_counts,
    dimension_shares,
    filter_options,
    investor_from_report,
    load_results,
    score_distribution,
    scores_by,
    scores_by_note,
    shown_filters,
    table_rows,
    to_csv_bytes,
    to_xlsx_bytes,
)
from core.jobs import JobService

TASK1 = "investment_activity_classification"
TASK2 = "assetization_features_scoring"


@pytest.mark.parametrize(
    ("name", "investor"),
    [
        ("FfBF_NordicPension_Annual_Report_2024.pdf", "NordicPension"),
        ("Nature100_MeridianFoundation_Impact_Report_2024.pdf", "MeridianFoundation"),
        ("UNPRI_Kestrel.pdf", "Kestrel"),
        ("report.pdf", ""),
        ("", ""),
    ],
)
def test_investor_from_report(name: str, investor: str) -> None:
    assert investor_from_report(name) == investor


@pytest.fixture
def both_tasks(service: JobService) -> tuple[pd.DataFrame, list]:
    prep = service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv")))
    job1 = service.submit(prep)
    service.wait([job1.id], poll_interval=0.05, timeout=60)
    service.collect(job1.id)
    job2 = service.submit(service.prepare(TASK2, parent=job1.id))
    service.wait([job2.id], poll_interval=0.05, timeout=60)
    service.collect(job2.id)
    jobs = collected_jobs(service.list_jobs())
    return load_results(jobs), jobs


def test_load_results_of_two_tasks(both_tasks) -> None:
    frame, jobs = both_tasks
    assert [j.task for j in jobs] == [TASK2, TASK1] or {j.task for j in jobs} == {TASK1, TASK2}
    n1 = sum(len(pd.read_csv(p, keep_default_na=False)) for p in SAMPLES.glob("*.csv"))
    assert (frame["task"] == TASK1).sum() == n1
    ones = int(((frame["task"] == TASK1) & (frame["score"] == 1)).sum())
    assert (frame["task"] == TASK2).sum() == ones > 0
    assert str(frame["score"].dtype) == "Int64"
    assert frame.loc[frame["task"] == TASK2, "score"].isna().all()
    assert set(frame["investor"]) >= {"NordicPension", "MeridianFoundation"}
    options = filter_options(frame)
    assert options["score_columns"] == ["score", "intrinsic_value_score", "cash_flow_score", "ownership_control_score"]
    assert options["tasks"] == sorted([TASK1, TASK2])


def test_filters(both_tasks) -> None:
    frame, _ = both_tasks
    assert len(apply_filters(frame, Filters())) == len(frame)
    nordic = apply_filters(frame, Filters(investors=["NordicPension"]))
    assert len(nordic) and set(nordic["investor"]) == {"NordicPension"}
    only1 = apply_filters(frame, Filters(tasks=[TASK1], scores={"score": [1]}))
    assert len(only1) and (only1["score"] == 1).all()
    # a task-1 score filter does not remove task-2 rows
    mixed = apply_filters(frame, Filters(scores={"score": [0]}))
    assert (mixed["task"] == TASK2).sum() == (frame["task"] == TASK2).sum()
    assert (mixed.loc[mixed["task"] == TASK1, "score"] == 0).all()
    text = apply_filters(frame, Filters(text="PEATLAND"))
    assert len(text) and text["paragraph_text"].str.lower().str.contains("peatland").all()
    none = apply_filters(frame, Filters(text="no paragraph says this 12345"))
    assert none.empty
    assert apply_filters(frame, Filters(scores={"score": [NO_SCORE]}, tasks=[TASK1])).empty
    assert len(apply_filters(frame, Filters(statuses=["succeeded"]))) == len(frame)


def test_aggregates(both_tasks) -> None:
    frame, _ = both_tasks
    dist = score_distribution(frame)
    t1 = dist[dist["dimension"] == "Score (task 1)"].set_index("score")["rows"]
    assert t1["0"] + t1["1"] == (frame["task"] == TASK1).sum()
    by = scores_by(frame, "investor")
    assert set(by.columns) == {"group", "dimension", "rows", "scored", "ones", "share"}
    assert by["share"].between(0, 1).all()
    combos = combination_counts(frame)
    assert len(combos) == 8 and combos["rows"].sum() == (frame["task"] == TASK2).sum()
    assert combos["share"].sum() == pytest.approx(1.0)
    shares = dimension_shares(frame)
    assert list(shares["dimension"]) == ["Intrinsic value", "Cash flow", "Ownership / control"]
    with pytest.raises(CoreError):
        scores_by(frame, "paragraph_text")


def test_task_and_job_filters_only_when_they_can_narrow(both_tasks) -> None:
    frame, jobs = both_tasks
    assert shown_filters(filter_options(frame)) == ["tasks", "jobs", "sources", "reports", "investors", "statuses"]
    one = frame[frame["job_id"] == jobs[0].id]
    assert shown_filters(filter_options(one)) == ["sources", "reports", "investors", "statuses"]


def test_scores_by_biggest_groups_first_with_a_note_when_some_are_left_out() -> None:
    rows = {"Small": 2, "Tiny": 1, "Big": 9, "Mid": 4}
    investors = [name for name, k in rows.items() for _ in range(k)]
    frame = pd.DataFrame({"task": TASK1, "investor": investors, "pdf_file_name": "",
                          "score": pd.array([1] * len(investors), dtype="Int64")})
    for c in ("intrinsic_value_score", "cash_flow_score", "ownership_control_score"):
        frame[c] = pd.array([pd.NA] * len(frame), dtype="Int64")
    frame.loc[frame["investor"] == "Big", "task"] = TASK2
    frame.loc[frame["investor"] == "Big", ["intrinsic_value_score", "cash_flow_score", "ownership_control_score"]] = 1
    by = scores_by(frame, "investor", top=3)
    assert list(dict.fromkeys(by["group"])) == ["Big", "Mid", "Small"]  # most rows first; Tiny left out
    big = by[by["group"] == "Big"]
    assert list(big["dimension"]) == ["Intrinsic value", "Cash flow", "Ownership / control"]  # task order
    assert scores_by_note(frame, "investor", top=3) == (
        "Showing the 3 of 4 investors with the most rows; filter to see the others.")
    assert scores_by_note(frame, "investor", top=4) is None


def test_exports_and_table(both_tasks) -> None:
    frame, _ = both_tasks
    rows = apply_filters(frame, Filters(tasks=[TASK1]))
    back = pd.read_csv(io.BytesIO(to_csv_bytes(rows)), encoding="utf-8-sig", keep_default_na=False)
    assert len(back) == len(rows) and list(back["custom_id"]) == list(rows["custom_id"])
    assert "intrinsic_value_score" not in back.columns  # columns of absent tasks are left out
    book = pd.read_excel(io.BytesIO(to_xlsx_bytes(rows)), sheet_name="results")
    assert len(book) == len(rows)
    assert len(table_rows(frame, limit=5)) == 5 and "paragraph_text" in table_rows(frame).columns


def test_table_rows_read_without_none(both_tasks) -> None:
    """Two tasks in one table: a score cell is 0/1, "no score" for a row of its task without
    one, and empty for a row of the other task; never None/<NA>. The scores come before the
    paragraph so they are on screen without scrolling sideways."""
    frame, _ = both_tasks
    frame = frame.copy()
    failed = frame.index[frame["task"] == TASK1][0]
    frame.loc[failed, "score"] = pd.NA
    frame.loc[failed, "status"] = "failed"
    shown = table_rows(frame.loc[[failed, *frame.index[frame.index != failed]]], limit=len(frame))
    assert not shown.isna().any().any()
    assert not {str(v) for v in shown.to_numpy().ravel()} & {"None", "nan", "<NA>", "NaN"}
    task1 = shown.index.isin(frame.index[frame["task"] == TASK1])
    assert shown.loc[failed, "score"] == NO_SCORE
    assert set(shown.loc[task1, "score"]) == {"0", "1", NO_SCORE}
    assert set(shown.loc[~task1, "score"]) == {""} and set(shown.loc[task1, "cash_flow_score"]) == {""}
    assert set(shown.loc[~task1, "cash_flow_score"]) <= {"0", "1"}
    columns = list(shown.columns)
    assert columns.index("score") < columns.index("ownership_control_score") < columns.index("paragraph_text")


def test_empty_and_missing(service: JobService) -> None:
    assert load_results([]).empty
    assert score_distribution(load_results([])).empty
    assert combination_counts(load_results([]))["rows"].sum() == 0
    job = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))[:1]))
    with pytest.raises(CoreError, match="no collected results"):
        load_results([job])
    service.wait([job.id], poll_interval=0.05, timeout=60)
    collected = service.collect(job.id).job
    Path(collected.output_files[0]).unlink()
    with pytest.raises(CoreError, match="missing"):
        load_results([collected])


def test_large_frame_filters_fast() -> None:
    import time

    n = 100_000
    frame = pd.DataFrame({
        "task": TASK1, "job_id": "job_x", "investor": [f"Inv{i % 50}" for i in range(n)],
        "pdf_file_name": [f"FfBF_Inv{i % 50}_R.pdf" for i in range(n)], "csv_file_name": "a.csv",
        "paragraph_text": [f"paragraph {i} about wetlands" for i in range(n)], "explanation": "x",
        "status": "succeeded", "status_reason": "", "custom_id": [f"s0-r{i}" for i in range(n)],
        "score": pd.array([i % 2 for i in range(n)], dtype="Int64"),
    })
    for c in ("intrinsic_value_score", "cash_flow_score", "ownership_control_score"):
        frame[c] = pd.array([pd.NA] * n, dtype="Int64")
    started = time.perf_counter()
    shown = apply_filters(frame, Filters(investors=["Inv1", "Inv2"], scores={"score": [1]}, text="WETLANDS"))
    score_distribution(shown), scores_by(shown), table_rows(shown)
    assert len(shown) == 2_000 and len(table_rows(frame)) == TABLE_ROW_LIMIT
    assert time.perf_counter() - started < 5
