"""core.explore: loading collected jobs, investor names, filters, chart aggregates, exports."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path

import pandas as pd
import pytest

from conftest import SAMPLES
from core.errors import CoreError
from core.explore import (
    FILE_ORDER,
    NO_SCORE,
    Filters,
    ResultsView,
    apply_filters,
    collected_jobs,
    combination_counts,
    dimension_shares,
    download_name,
    filter_options,
    investor_from_report,
    load_results,
    markdown_literal,
    page_count,
    paragraph_frame,
    present_score_columns,
    row_detail,
    score_distribution,
    score_meanings,
    scores_by,
    scores_by_note,
    short_meaning,
    shown_filters,
    sorted_rows,
    table_rows,
    to_csv_bytes,
    to_xlsx_bytes,
    wilson_interval,
)
from core.investors import (
    InvestorMap,
    InvestorMapError,
    apply_investors,
    load_investor_map,
    mapping_table,
    save_investor_map,
    updated_map,
)
from core.jobs import JobService
from core.tasks import TASKS

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
    assert options["tasks"] == [TASK1, TASK2]  # task order, not alphabetical


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
    assert set(by.columns) == {"group", "dimension", "rows", "scored", "ones", "share", "low", "high"}
    assert (by["low"] <= by["share"]).all() and (by["share"] <= by["high"]).all()
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
    assert set(by["group"]) == {"Big", "Mid", "Small"}  # the groups with most rows; Tiny left out
    # within a dimension the highest share first, ties with more scored rows first
    assert list(by.loc[by["dimension"] == "Score (task 1)", "group"]) == ["Mid", "Small"]
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
    assert len(table_rows(frame, page=1, page_size=5)) == 5 and "paragraph_text" in table_rows(frame).columns


def test_table_rows_read_without_none(both_tasks) -> None:
    """Two tasks in one table: a score cell is 0/1, "no score" for a row of its task without
    one, and empty for a row of the other task; never None/<NA>. The scores come before the
    paragraph so they are on screen without scrolling sideways."""
    frame, _ = both_tasks
    frame = frame.copy()
    failed = frame.index[frame["task"] == TASK1][0]
    frame.loc[failed, "score"] = pd.NA
    frame.loc[failed, "status"] = "failed"
    shown = table_rows(frame.loc[[failed, *frame.index[frame.index != failed]]])
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
    assert len(shown) == 2_000 and len(table_rows(frame)) == n
    assert time.perf_counter() - started < 5


# ----- one row per paragraph, every row, row detail ---------------------------------------------

def test_task1_and_task2_give_one_row_per_paragraph(both_tasks) -> None:
    """Loading task 1 and its task-2 job gives one row per paragraph with both tasks' scores,
    joined on the task-1 job and custom_id, not stacked rows."""
    frame, jobs = both_tasks
    wide = paragraph_frame(frame, jobs)
    task1 = frame[frame["task"] == TASK1]
    assert len(wide) == len(task1) and wide["custom_id"].is_unique
    assert "task" not in wide.columns
    job1 = next(j for j in jobs if j.task == TASK1)
    job2 = next(j for j in jobs if j.task == TASK2)
    assert set(wide["job_id"]) == {job1.id}
    reached = wide["task2_job_id"] == job2.id
    # task 2 answered exactly the paragraphs task 1 scored 1, and its scores sit on those rows
    assert set(wide.loc[reached, "custom_id"]) == set(task1.loc[task1["score"] == 1, "custom_id"])
    assert wide.loc[reached, "cash_flow_score"].notna().all() and wide.loc[~reached, "cash_flow_score"].isna().all()
    t2 = frame[frame["task"] == TASK2].set_index("custom_id")
    for _, row in wide[reached].iterrows():
        assert row["intrinsic_value_score"] == t2.loc[row["custom_id"], "intrinsic_value_score"]
        assert row["task2_explanation"] == t2.loc[row["custom_id"], "explanation"]
        assert row["paragraph_text"] == t2.loc[row["custom_id"], "paragraph_text"]
    # the fixed, documented column order: paragraph, task 1, task 2, input columns
    columns = list(wide.columns)
    assert columns[:8] == ["job_id", "task2_job_id", "investor", "pdf_file_name", "csv_file_name",
                           "paragraph_text", "custom_id", "row"]
    assert (columns.index("score") < columns.index("explanation") < columns.index("intrinsic_value_score")
            < columns.index("ownership_control_score") < columns.index("task2_explanation")
            < columns.index("task2_status"))
    assert columns[-1] == "page"  # the input files' own columns come last
    # what the page's charts count is unchanged: each dimension over the rows its task answered
    assert score_distribution(wide).equals(score_distribution(frame))
    assert combination_counts(wide).equals(combination_counts(frame))
    pd.testing.assert_frame_equal(dimension_shares(wide), dimension_shares(frame))
    assert filter_options(wide)["tasks"] == [TASK1, TASK2]
    # the mixed download keeps that order
    back = pd.read_csv(io.BytesIO(to_csv_bytes(wide)), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(back.columns) == columns and len(back) == len(wide)


def test_paragraph_frame_keeps_unjoinable_task2_rows_and_the_newest_answer(both_tasks, service: JobService) -> None:
    frame, jobs = both_tasks
    job1 = next(j for j in jobs if j.task == TASK1)
    only2 = frame[frame["task"] == TASK2]
    job2 = next(j for j in jobs if j.task == TASK2)
    # task 2 alone: nothing to join, the frame is as loaded
    assert paragraph_frame(only2, [job2]) is only2
    # task 2 with another task-1 job than its parent: its rows stay, with empty task-1 columns
    other = frame[frame["task"] == TASK1].assign(job_id="job_other")
    wide = paragraph_frame(pd.concat([other, only2], ignore_index=True), [job2])
    assert len(wide) == len(other) + len(only2)
    alone = wide[wide["task2_job_id"] == job2.id]
    assert (alone["job_id"] == "").all() and alone["score"].isna().all() and (alone["status"] == "").all()
    # a second task-2 job over the same parent: the newer one's answer is kept, once per paragraph
    newer = job2.model_copy(update={"id": "job_newer", "created_at": "2999-01-01T00:00:00+00:00"})
    again = only2.assign(job_id="job_newer", cash_flow_score=pd.array([1] * len(only2), dtype="Int64"))
    wide = paragraph_frame(pd.concat([frame, again], ignore_index=True), [job1, job2, newer])
    assert len(wide) == (frame["task"] == TASK1).sum()
    assert set(wide.loc[wide["task2_job_id"] != "", "task2_job_id"]) == {"job_newer"}


def test_filters_on_one_row_per_paragraph(both_tasks) -> None:
    frame, jobs = both_tasks
    wide = paragraph_frame(frame, jobs)
    job2 = next(j for j in jobs if j.task == TASK2)
    ones = apply_filters(wide, Filters(scores={"cash_flow_score": [1]}))
    assert len(ones) and (ones["cash_flow_score"] == 1).all()  # paragraphs without task 2 are not kept
    assert len(apply_filters(wide, Filters(tasks=[TASK2]))) == (frame["task"] == TASK2).sum()
    assert len(apply_filters(wide, Filters(jobs=[job2.id]))) == (frame["task"] == TASK2).sum()
    word = frame.loc[frame["task"] == TASK2, "explanation"].iloc[0].split()[0]
    assert len(apply_filters(wide, Filters(text=word))) >= 1  # the task-2 explanation is searched too


def test_a_results_view_derives_each_value_once_and_never_changes_the_loaded_rows(both_tasks) -> None:
    frame, jobs = both_tasks
    wide = paragraph_frame(frame, jobs)
    before = pd.util.hash_pandas_object(wide, index=True).sum(), list(wide.columns), wide.dtypes.tolist()
    view = ResultsView(wide, jobs)
    assert view.options == filter_options(wide)
    everything = view.matching(Filters())
    assert everything.rows is wide and not everything.filtered  # no filter: the rows themselves, no copy
    # equal filters (lists or tuples, scores in any order) select the same object: computed once
    pick = Filters(investors=["NordicPension"], scores={"score": [1], "cash_flow_score": [0, 1]})
    again = Filters(investors=("NordicPension",), scores={"cash_flow_score": (0, 1), "score": (1,)})
    assert pick == again and hash(pick) == hash(again)
    nordic = view.matching(pick)
    assert view.matching(again) is nordic and nordic.filtered
    pd.testing.assert_frame_equal(nordic.rows, apply_filters(wide, pick))
    pd.testing.assert_frame_equal(nordic.distribution, score_distribution(nordic.rows))
    assert nordic.present == present_score_columns(nordic.rows) and nordic.excel_problem is None
    pd.testing.assert_frame_equal(everything.combinations, combination_counts(wide))
    pd.testing.assert_frame_equal(everything.dimension_shares, dimension_shares(wide))
    groups, note = everything.by_group("investor", ("score",))
    pd.testing.assert_frame_equal(groups, scores_by(wide, "investor", columns=["score"]))
    assert note == scores_by_note(wide, "investor") and everything.by_group("investor", ("score",))[0] is groups
    page = everything.page("pdf_file_name", True, 2, 7)
    ordered = sorted_rows(wide, sort_by="pdf_file_name", descending=True)
    pd.testing.assert_frame_equal(page, table_rows(ordered, page=2, page_size=7))
    assert everything.page("pdf_file_name", True, 2, 7) is page
    # nothing above changed the rows every session shares
    assert (pd.util.hash_pandas_object(wide, index=True).sum(), list(wide.columns), wide.dtypes.tolist()) == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        pick.text = "changed"  # type: ignore[misc]


def test_every_row_is_reachable_and_sorting_sorts_all(both_tasks) -> None:
    frame, jobs = both_tasks
    wide = paragraph_frame(frame, jobs)
    ordered = sorted_rows(wide, sort_by="pdf_file_name", descending=True)
    assert list(ordered["pdf_file_name"]) == sorted(wide["pdf_file_name"], reverse=True)
    pages = page_count(len(ordered), page_size=7)
    seen = pd.concat([table_rows(ordered, page=p, page_size=7) for p in range(1, pages + 1)])
    assert list(seen.index) == list(ordered.index)  # every row once, in order; the index leads back
    by_score = sorted_rows(wide, sort_by="cash_flow_score", descending=True)
    assert by_score["cash_flow_score"].iloc[0] == 1 and by_score["cash_flow_score"].isna().iloc[-1]  # no score last
    assert sorted_rows(wide, sort_by=FILE_ORDER) is wide


def test_row_detail_has_the_full_paragraph_both_answers_and_every_input_column(both_tasks) -> None:
    frame, jobs = both_tasks
    wide = paragraph_frame(frame, jobs)
    index = wide.index[wide["task2_job_id"] != ""][0]
    detail = dict(row_detail(wide, index))
    row = wide.loc[index]
    assert detail["Paragraph"] == row["paragraph_text"]
    assert detail["Investment activity (task 1): Score (task 1)"] == "1"
    assert detail["Investment activity (task 1): explanation"] == row["explanation"]
    assert detail["Assetization features (task 2): Cash flow"] == str(row["cash_flow_score"])
    assert detail["Assetization features (task 2): explanation"] == row["task2_explanation"]
    assert detail["Report"] == row["pdf_file_name"] and detail["Source file"] == row["csv_file_name"]
    assert detail["page"] == row["page"]  # every input column
    zero = wide.index[wide["task2_job_id"] == ""][0]
    assert dict(row_detail(wide, zero))["Assetization features (task 2)"] == "not run on this paragraph"


# ----- shares with n and intervals ---------------------------------------------------------------

def test_shares_carry_n_and_a_wilson_interval_and_are_sorted() -> None:
    from scipy.stats import binomtest

    investors = ["A"] * 10 + ["B"] * 4 + ["C"] * 1
    scores = [1] * 3 + [0] * 7 + [1, 1, 1, 0] + [1]
    frame = pd.DataFrame({"task": TASK1, "investor": investors, "pdf_file_name": "",
                          "score": pd.array(scores, dtype="Int64")})
    by = scores_by(frame, "investor")
    assert list(by["group"]) == ["C", "B", "A"]  # highest share first
    a = by.set_index("group").loc["A"]
    assert (a["scored"], a["ones"], a["share"]) == (10, 3, 0.3)
    expected = binomtest(3, 10).proportion_ci(confidence_level=0.95, method="wilson")
    assert (a["low"], a["high"]) == pytest.approx((expected.low, expected.high))
    c = by.set_index("group").loc["C"]
    assert c["share"] == 1.0 and c["low"] < 0.3  # 100 % of one row is not 100 % of a thousand
    assert wilson_interval(0, 0) == (0.0, 1.0)
    one_dim = scores_by(frame, "investor", columns=["score"])
    assert set(one_dim["dimension"]) == {"Score (task 1)"}


# ----- investor names ---------------------------------------------------------------------------

def test_investor_names_saved_private_and_applied(tmp_path: Path) -> None:
    frame = pd.DataFrame({"pdf_file_name": ["PRI_Solvent_Insurance_2024.pdf", "FfBF_Nordic_A.pdf", "report.pdf"],
                          "owner": ["Solvent Insurance plc", "Nordic Pension", ""]})
    assert load_investor_map(tmp_path) == InvestorMap()
    table = mapping_table(frame, InvestorMap())
    assert list(table["found"]) == ["", "Nordic", "Solvent"] and list(table["reports"]) == [1, 1, 1]
    edited = table.assign(investor=["(no investor)", "Nordic", "Solvent Insurance"])
    mapping = updated_map(InvestorMap(names={"Kept": "Kept Ltd"}), edited, column=None)
    assert mapping.names == {"": "(no investor)", "Solvent": "Solvent Insurance", "Kept": "Kept Ltd"}
    path = save_investor_map(tmp_path, mapping)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = load_investor_map(tmp_path)
    assert loaded == mapping
    applied = apply_investors(frame, loaded)
    assert list(applied["investor"]) == ["Solvent Insurance", "Nordic", "(no investor)"]
    from_column = apply_investors(frame, InvestorMap(column="owner", names={"Nordic Pension": "Nordic"}))
    assert list(from_column["investor"]) == ["Solvent Insurance plc", "Nordic", ""]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"column": 3}', b'{"names": {"a": 1}}'])
def test_a_broken_investor_file_is_a_message_naming_it(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "investors.json").write_bytes(content)
    with pytest.raises(InvestorMapError, match="investors.json"):
        load_investor_map(tmp_path)


def test_loading_uses_the_saved_investor_names(both_tasks, service: JobService) -> None:
    frame, jobs = both_tasks
    save_investor_map(service.settings.data_dir, InvestorMap(names={"NordicPension": "Nordic Pension Fund"}))
    again = load_results(jobs, investors=load_investor_map(service.settings.data_dir))
    assert "Nordic Pension Fund" in set(again["investor"]) and "NordicPension" not in set(again["investor"])
    assert (again["investor"] == frame["investor"].replace("NordicPension", "Nordic Pension Fund")).all()


# ----- what the scores mean, download names ---------------------------------------------------

def test_score_meanings_come_from_the_prompts_criteria() -> None:
    from core.prompts import load_prompts

    for task in (TASK1, TASK2):
        system = load_prompts(task).system
        meanings = score_meanings(task)
        assert list(meanings) == list(TASKS[task].score_columns)
        for text in meanings.values():
            assert text and text in system  # quoted from the prompt, one source of truth
    assert score_meanings(TASK1)["score"].startswith("Give Score 1 when")
    assert "Give Score 0 when" in score_meanings(TASK1)["score"]
    assert score_meanings(TASK2)["cash_flow_score"].startswith("CashFlowScore:")
    custom = score_meanings(TASK2, "Label the paragraph.\n\nCashFlowScore: money comes back.")
    assert custom["cash_flow_score"] == "CashFlowScore: money comes back."
    assert "does not describe it" in custom["intrinsic_value_score"]
    assert short_meaning("CashFlowScore: biodiversity is tied to income. Signs: rents.") == (
        "CashFlowScore: biodiversity is tied to income.")
    assert short_meaning(score_meanings(TASK1)["score"]) == (
        "Give Score 1 when the paragraph reports something the investor itself has actually done or put in "
        "place / Give Score 0 when the paragraph stays generic")


def test_download_names_say_job_task_filter_and_date(both_tasks) -> None:
    frame, jobs = both_tasks
    job1 = next(j for j in jobs if j.task == TASK1)
    day = dt.date(2026, 12, 2)
    t1 = frame[frame["task"] == TASK1]
    assert download_name([job1], t1, filtered=True, suffix=".csv", today=day) == (
        f"bdasset_{job1.id}_task1_filtered_2026-12-02.csv")
    named = job1.model_copy(update={"name": "Pilot run: NL/ä ../x"})
    wide = paragraph_frame(frame, jobs)
    name = download_name([named, *[j for j in jobs if j.task == TASK2]], wide, filtered=False, suffix=".xlsx",
                         today=day)
    assert name.startswith("bdasset_Pilot-run-NL-x+") and name.endswith("_task1-task2_all_2026-12-02.xlsx")
    assert "/" not in name and ".." not in name and len(name.encode()) <= 120


def test_markdown_literal_shows_untrusted_text_as_text() -> None:
    text = "![x](http://example.com/a.png) <b>bold</b> *star* :red[x]\nsecond line"
    shown = markdown_literal(text)
    assert "![" not in shown and "<b>" not in shown and "](" not in shown and ":red[" not in shown
    assert shown.count("\n") == 1


def test_excel_download_holds_every_text_exactly_and_refuses_to_cut() -> None:
    """Texts come back exactly from the workbook (formula-like, link-like, number-like, a
    carriage return, a text that looks like Excel's own escape); a text longer than an Excel
    cell holds is refused with a message naming row and column, never cut."""
    import openpyxl

    texts = ["\r=1", "=HYPERLINK(\"http://x\")", "http://example.com", "1e5", "#N/A", "a\r\nb", "_x000D_",
             "_x0041_", "x\ny", "+1", "\u00e9t\u00e9 \u2014 \u6e7f\u5730"]
    frame = pd.DataFrame({"paragraph_text": texts, "page": pd.array([1, None] * 5 + [0], dtype="Int64")})
    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx_bytes(frame)))["results"]
    rows = list(sheet.iter_rows(values_only=False))
    assert [c.value for c in rows[0]] == ["paragraph_text", "page"]
    assert [r[0].value for r in rows[1:]] == texts and {r[0].data_type for r in rows[1:]} == {"s"}
    assert [r[1].value for r in rows[1:]] == [1, None] * 5 + [0]

    too_long = pd.DataFrame({"paragraph_text": ["short", "x" * 40_000], "explanation": ["", ""]})
    with pytest.raises(CoreError, match="Row 2, column 'paragraph_text'.*32,767.*download CSV"):
        to_xlsx_bytes(too_long)
