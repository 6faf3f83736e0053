"""The Explore page through Streamlit's AppTest: one row per paragraph for task 1 + task 2,
every row reachable (pages, sorting over all rows), the row detail, n on the share chart, what
the scores mean, and investor names saved and applied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import SAMPLES, open_page, vega_charts
from core.explore import markdown_literal, wilson_interval
from core.investors import InvestorMap, save_investor_map
from core.jobs import JobService
from core.local import stop_running
from core.models import BatchRecord, Job
from core.registry import Registry
from core.results import result_columns
from core.settings import load_settings
from core.tasks import INVESTMENT_ACTIVITY

TASK1 = "investment_activity_classification"
TASK2 = "assetization_features_scoring"


@pytest.fixture(autouse=True)
def stop_daemon(isolated_data_dir: Path) -> Iterator[None]:
    yield
    stop_running(isolated_data_dir / "local_backend")


def explore() -> AppTest:
    return open_page("pages/explore.py")


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def table(at: AppTest) -> pd.DataFrame:
    """The paragraphs table (dataframes carry no key in AppTest: it is the one with paragraphs)."""
    return next(d.value for d in at.dataframe if "paragraph_text" in d.value.columns)


def both_tasks() -> tuple[Job, Job]:
    service = JobService(settings=load_settings())
    job1 = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))))
    service.wait([job1.id], poll_interval=0.1, timeout=60)
    service.collect(job1.id)
    job2 = service.submit(service.prepare(TASK2, parent=job1.id))
    service.wait([job2.id], poll_interval=0.1, timeout=60)
    service.collect(job2.id)
    return service.get(job1.id), service.get(job2.id)


def test_task1_and_task2_read_as_one_row_per_paragraph_with_a_detail() -> None:
    job1, job2 = both_tasks()
    at = explore()
    at.multiselect(key="explore_jobs").set_value([job1.id, job2.id]).run()
    assert not at.exception, [e.value for e in at.exception]
    n = job1.n_rows
    assert f"**{n:,}** of {n:,} paragraphs match." in texts(at.markdown)
    rows = table(at)
    assert len(rows) == n and rows["custom_id"].is_unique  # not stacked: one row per paragraph
    assert {"score", "intrinsic_value_score", "cash_flow_score", "ownership_control_score"} <= set(rows.columns)
    columns = list(rows.columns)
    assert columns.index("paragraph_text") <= 5  # the paragraph comes early, right after the scores
    both = rows[rows["cash_flow_score"] != ""]
    assert len(both) and set(both["score"]) == {"1"}  # task 2 read the paragraphs task 1 scored 1

    # the bar chart says what it shows; the scores' meaning is quoted from the prompts
    captions = texts(at.caption)
    assert any("95% (Wilson) interval, n the scored paragraphs" in c for c in captions)
    assert any(t.startswith("Give Score 1 when") for t in texts(at.text))
    assert any(t.startswith("CashFlowScore:") for t in texts(at.text))
    at.selectbox(key="explore_chart_dimension").set_value("score").run()  # task 2 was loaded first: its dimension
    charts = vega_charts(at)
    assert set(charts) == {"Score distribution", "Share scored 1 by investor: Score (task 1)",
                           "Task 2: paragraphs per combination",
                           "Task 2: share scored 1 per dimension"}
    assert_shares(charts["Share scored 1 by investor: Score (task 1)"][1], rows, "score")
    shares = charts["Task 2: share scored 1 per dimension"][1]  # one denominator: the paragraphs task 2 scored
    assert list(shares["label"]) == ["Intrinsic value", "Cash flow", "Ownership / control"]
    assert set(shares["scored"]) == {len(both)}
    combos = charts["Task 2: paragraphs per combination"][1]
    assert len(combos) == 8 and combos["rows"].sum() == len(both)
    dist = charts["Score distribution"][1]
    assert dist.loc[dist["dimension"] == "Score (task 1)", "rows"].sum() == n
    at.selectbox(key="explore_chart_dimension").set_value("cash_flow_score").run()
    assert not at.exception and any(c.startswith("Cash flow: CashFlowScore:") for c in texts(at.caption))
    assert_shares(vega_charts(at)["Share scored 1 by investor: Cash flow"][1], table(at), "cash_flow_score")

    # the row detail: the full paragraph, both tasks' answers, source, every input column
    index = both.index[0]
    at.session_state["explore_detail"] = ((job1.id, job2.id), index)  # what selecting the row sets
    at.run()
    paragraph = table(at).loc[index, "paragraph_text"]
    assert markdown_literal(paragraph) in texts(at.markdown)
    detail = next(d.value for d in at.dataframe if list(d.value.columns) == ["field", "value"])
    fields = dict(zip(detail["field"], detail["value"]))
    assert fields["Investment activity (task 1): Score (task 1)"] == "1"
    assert fields["Assetization features (task 2): Cash flow"] == rows.loc[index, "cash_flow_score"]
    assert fields["Assetization features (task 2): explanation"] == rows.loc[index, "task2_explanation"]
    assert fields["Source file"] == rows.loc[index, "csv_file_name"] and "page" in fields


def assert_shares(drawn: pd.DataFrame, rows: pd.DataFrame, column: str) -> None:
    """The by-investor share chart's data say, for every investor of the table, how many rows
    have a ``column`` score (n), how many of them 1, the share, its Wilson interval, its label;
    highest share first."""
    scored = rows[rows[column] != ""]
    expected = scored.groupby("investor")[column].agg(n="size", ones=lambda s: int((s == "1").sum()))
    assert sorted(drawn["label"]) == sorted(expected.index)
    for _, bar in drawn.iterrows():
        n, ones = expected.loc[bar["label"], "n"], expected.loc[bar["label"], "ones"]
        assert (bar["scored"], bar["ones"]) == (n, ones) and bar["x"] == pytest.approx(ones / n)
        assert (bar["low"], bar["high"]) == pytest.approx(wilson_interval(ones, n))
        assert bar["text"] == f"{ones / n:.0%} · n={n:,}"
    assert list(drawn["x"]) == sorted(drawn["x"], reverse=True)


def write_job(data_dir: Path, rows: int) -> Job:
    """A collected task-1 job of ``rows`` generated result rows (12 investors), in the registry."""
    job_id = "job_20261202_000000_many"
    out = data_dir / INVESTMENT_ACTIVITY.output_folder / job_id
    out.mkdir(parents=True)
    frame = pd.DataFrame({
        "pdf_file_name": [f"FfBF_Investor{i % 12:02d}_Report.pdf" for i in range(rows)],
        "csv_file_name": "paragraphs.csv",
        "paragraph_text": [f"Paragraph {i:05d} about wetlands." for i in range(rows)],
        "score": [i % 3 == 0 for i in range(rows)], "explanation": "generated",
        "status": "succeeded", "status_reason": "",
        "custom_id": [f"s0-r{i + 2}" for i in range(rows)], "row": [i + 2 for i in range(rows)],
        "owner": [f"Owner {i % 4}" for i in range(rows)],  # an input column naming the investor
    })
    frame["score"] = frame["score"].astype(int)
    path = out / "paragraphs.csv"
    frame.reindex(columns=[*result_columns(INVESTMENT_ACTIVITY), "owner"], fill_value="").to_csv(path, index=False)
    job = Job(id=job_id, task=TASK1, provider="local", model="local-baseline-rules-v1", max_tokens=1000,
              created_at="2026-12-02T00:00:00+00:00", job_dir=str(data_dir / "jobs" / job_id), output_dir=str(out),
              n_rows=rows, n_requests=rows, sources=[], prompts={}, estimate={},
              batches=[BatchRecord(key="b000", request_file="x", n_requests=rows, first_custom_id="s0-r2",
                                   last_custom_id="x", status="completed", batch_id="batch_x", total=rows,
                                   completed=rows)],
              collected_at="2026-12-02T00:10:00+00:00", output_files=[str(path)])
    with Registry(data_dir / "registry.json").transaction() as tx:
        tx.put_job(job.to_record())
    return job


def test_every_row_is_reachable_and_sorting_sorts_all_of_them(isolated_data_dir: Path) -> None:
    write_job(isolated_data_dir, 1_234)
    at = explore()
    assert "**1,234** of 1,234 rows match." in texts(at.markdown)
    assert len(table(at)) == 500 and any(c.startswith("Rows 1–500 of 1,234") for c in texts(at.caption))
    at.number_input(key="explore_page").set_value(3).run()
    last = table(at)
    assert len(last) == 234 and last["paragraph_text"].iloc[-1] == "Paragraph 01233 about wetlands."
    # sorting sorts every row, not the page shown
    at.number_input(key="explore_page").set_value(1).run()
    at.selectbox(key="explore_sort").set_value("investor").run()
    at.toggle(key="explore_sort_desc").set_value(True).run()
    first = table(at)
    assert set(first["investor"].iloc[:100]) == {"Investor11"}
    assert any("sorted by investor on all of them" in c for c in texts(at.caption))


def test_investor_names_are_saved_and_used(isolated_data_dir: Path) -> None:
    write_job(isolated_data_dir, 60)
    at = explore()
    assert "Investor03" in at.multiselect(key="explore_f_investor").options
    # a correction saved in the data folder (as the page's editor saves it) renames everywhere
    save_investor_map(isolated_data_dir, InvestorMap(names={"Investor03": "Investor Three Ltd"}))
    at = explore()
    options = at.multiselect(key="explore_f_investor").options
    assert "Investor Three Ltd" in options and "Investor03" not in options
    at.multiselect(key="explore_f_investor").set_value(["Investor Three Ltd"]).run()
    assert set(table(at)["investor"]) == {"Investor Three Ltd"} and len(table(at)) == 5
    # taking the investor from an input column, saved from the page: 0600 JSON in the data folder
    at.multiselect(key="explore_f_investor").set_value([]).run()
    # the editor is drawn only in its dialog, opened by a button (not on every run of the page)
    assert "explore_investor_source" not in {s.key for s in at.selectbox}
    at.button(key="explore_investor_open").click().run()
    at.selectbox(key="explore_investor_source").set_value("owner").run()
    assert at.session_state["explore_investor_editor"] is not None  # the dialog stays open while choosing
    at.button(key="explore_investor_save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "explore_investor_source" not in {s.key for s in at.selectbox}  # saved: the dialog closed
    saved = isolated_data_dir / "investors.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    record = json.loads(saved.read_text())
    assert record["column"] == "owner" and record["names"] == {"Investor03": "Investor Three Ltd"}  # others kept
    assert at.multiselect(key="explore_f_investor").options == ["Owner 0", "Owner 1", "Owner 2", "Owner 3"]
    assert set(table(at)["investor"]) == {"Owner 0", "Owner 1", "Owner 2", "Owner 3"}


def test_rows_that_do_not_fit_excel_say_why_instead_of_failing_the_download(isolated_data_dir: Path) -> None:
    """A model explanation longer than an Excel cell holds: the Excel button is disabled and
    says which row and column, the CSV stays offered (a deferred download that fails would
    show only Streamlit's "Failed to generate file")."""
    job = write_job(isolated_data_dir, 3)
    path = Path(job.output_files[0])
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[1, "explanation"] = "long " * 8_000  # 40,000 characters
    frame.to_csv(path, index=False)
    at = explore()
    buttons = {b.proto.label: b.proto for b in at.get("download_button")}
    excel, csv = buttons["Download Excel"], buttons["Download CSV"]
    assert excel.disabled and not csv.disabled
    assert "Row 2, column 'explanation'" in excel.help and "download CSV instead" in excel.help
