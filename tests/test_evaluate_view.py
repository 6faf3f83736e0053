"""What the Evaluate page shows (core/evaluate/view/), on the hand-worked annotated set of
test_evaluate: a fresh evaluation and its saved record give the same tables; the disagreement
browser, the per-group figures, the downloads (formula cells neutralised), the labels-file
pickers, Explore's note, and model vs model."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pandas as pd
import pytest

from core.evaluate import compare_frames, evaluate, read_labels, save_evaluation
from core.evaluate.view import agreement_note as explore_note
from core.evaluate.view import comparison as comparing
from core.evaluate.view import disagreements as browser
from core.evaluate.view import formatting
from core.evaluate.view import pickers
from core.evaluate.view import tables
from core.evaluate.view.evaluation_view import EvaluationView, saved_key, saved_view
from core.models import Job
from core.tasks import get_task
from test_evaluate import ALPHA, TASK1, job_results, labels_csv, para

TASK2 = get_task("assetization_features_scoring")


@pytest.fixture(scope="module")
def evaluation():
    labels = read_labels(("labels.csv", labels_csv()), task=TASK1)
    return evaluate(job_results(), labels, job_id="job_hand", task=TASK1, n_resamples=100, min_group=5)


def saved(evaluation) -> EvaluationView:
    """The view of the evaluation as read back from its saved JSON."""
    return EvaluationView.from_record(orjson.loads(orjson.dumps(evaluation.to_record())))


def job_in(folder: Path, job_id: str = "job_hand") -> Job:
    return Job(id=job_id, task=TASK1.name, provider="local", model="m", max_tokens=10, created_at="2026-12-01T00:00:00+00:00",
               job_dir=str(folder), output_dir=str(folder / "out"), n_rows=15, n_requests=15, sources=[], prompts={},
               estimate={}, batches=[], collected_at="2026-12-01T00:01:00+00:00")


def test_fresh_and_saved_evaluations_show_the_same(evaluation) -> None:
    fresh, stored = EvaluationView.from_evaluation(evaluation), saved(evaluation)
    assert not fresh.from_saved_file and stored.from_saved_file
    for build in (tables.figures_table, tables.figures_frame, lambda view: browser.disagreement_rows(view),
                  lambda view: tables.group_table(view, "investor", "score", "cohen_kappa")):
        pd.testing.assert_frame_equal(build(fresh), build(stored), check_dtype=False)
    assert tables.headline(fresh) == tables.headline(stored) and tables.counts_line(fresh) == tables.counts_line(stored)
    assert [name for name, _, _ in tables.left_out(fresh)] == [name for name, _, _ in tables.left_out(stored)] == [
        "ties", "conflicts", "conflict_answers", "not_succeeded", "unmatched_labels", "unmatched_rows",
        "label_problems"]


def test_figures_confusion_and_counts(evaluation) -> None:
    view = saved(evaluation)
    # (human, model): M1-M4 (0,0), M5 (0,1), M6 (1,0), M7 (1,1), M8 (1,1); kappa 7/15 (test_evaluate)
    assert tables.confusion_table(view, "score").values.tolist() == [[4, 1], [1, 2]]
    assert tables.confusion_caption(view, "score") == ("2 true positives, 4 true negatives, 1 false positive (model 1, "
                                                  "human 0), 1 false negative (model 0, human 1)")
    row = tables.figures_table(view).iloc[0]
    kappa = evaluation.columns["score"].metrics.cohen_kappa_ci
    assert row["n"] == "8" and row["accuracy"] == "0.75" and row["majority baseline"] == "0.62"
    assert row["Cohen's kappa [95% CI]"] == f"0.47 [{kappa.low:.2f}, {kappa.high:.2f}]"
    assert row["human prevalence"] == "38%" and row["human-human alpha"].startswith("0.43")  # 3/7
    labels = dict(tables.headline(view))
    assert labels["Paragraphs compared"] == "8" and labels[f"Cohen's kappa [{kappa.low:.2f}, {kappa.high:.2f}]"] == "0.47"
    line = tables.counts_line(view)
    assert line.startswith("**8** paragraphs compared") and "1 with tied human labels" in line
    assert "1 without a successful answer (1 failed)" in line and "1 cells of the labels file" in line


def test_disagreement_browser(evaluation) -> None:
    view = saved(evaluation)
    assert browser.disagreement_counts(view) == {"false_positive": 1, "false_negative": 1}
    assert browser.disagreement_line(view, None, None) == "1 false positive and 1 false negative; showing 2."
    rows = browser.disagreement_rows(view, kind="false_positive")
    # M5: A 0, B 0 -> human 0 with both votes shown; the model said 1
    assert rows[["kind", "human", "model", "paragraph", "model's explanation"]].values.tolist() == [
        ["false positive", "0 (2 × 0, 0 × 1)", "1", para("M5"), "because r05"]]
    detail = browser.disagreement_detail(view, None, "false_negative", 0)
    assert (detail["paragraph"], detail["human"], detail["model"], detail["custom_ids"]) == (
        para("M6"), "1 (0 × 0, 2 × 1)", "0", "r06")
    assert browser.disagreement_detail(view, None, None, 99)["paragraph"] == para("M6")  # a stale selection stays in range


def test_groups_and_what_they_leave_out(evaluation) -> None:
    view = saved(evaluation)
    groups = tables.group_table(view, "investor", "score", "recall")
    # Alpha (5 paragraphs, no human positive): recall undefined, still a bar with its n
    assert groups.values.tolist() == [["Alpha", 5, None, "n = 5 · undefined"]]
    assert tables.group_note(view, "investor", "score") == (
        "1 investors with fewer than 5 compared paragraphs (3 paragraphs in all) are left out; lower the smallest "
        "group size under *Options* and evaluate again to see them.")
    labels = read_labels(("labels.csv", labels_csv()), task=TASK1)
    none_big = EvaluationView.from_evaluation(evaluate(job_results(), labels, job_id="j", task=TASK1,
                                                         n_resamples=100, min_group=50))
    assert tables.group_table(none_big, "report", "score", "f1").empty
    assert tables.group_note(none_big, "report", "score").startswith("No report has at least 50 compared paragraphs")


def test_downloads_neutralise_formulas() -> None:
    rows = [("A", "=HYPERLINK(\"http://x\")", ALPHA, "1"), ("A", para("M1"), ALPHA, "0")]
    results = pd.DataFrame({"custom_id": ["r1", "r2"], "paragraph_text": [rows[0][1], para("M1")],
                            "pdf_file_name": ALPHA, "status": "succeeded", "score": pd.array([0, 0], dtype="Int64"),
                            "explanation": ["+cmd", "fine"]})
    labels = read_labels(("=labels.csv", labels_csv(rows)), task=TASK1)
    view = EvaluationView.from_evaluation(evaluate(results, labels, job_id="j", task=TASK1, n_resamples=100))
    figures = pd.read_csv(io.BytesIO(tables.figures_csv(view)), encoding="utf-8-sig")
    assert figures.loc[0, "labels_file"] == "'=labels.csv" and figures.loc[0, "tn"] == 1
    disagreements = pd.read_csv(io.BytesIO(browser.disagreements_csv(view, None, "false_negative")), encoding="utf-8-sig")
    assert disagreements.loc[0, "paragraph_text"].startswith("'=HYPERLINK") and disagreements.loc[0, "explanation"] == "'+cmd"


def test_names_from_files_cannot_become_markdown() -> None:
    assert formatting.md_text("![x](http://e/a.png) *b* `c` a_b.csv") == r"\!\[x\]\(http\://e/a.png\) \*b\* \`c\` a\_b.csv"
    record = {"metrics": {"score": {"n": 8, "cohen_kappa": 0.5, "cohen_kappa_ci": [0.1, 0.9]}},
              "evaluated_at": "2026-12-01T10:00:00+00:00", "labels": {"file_name": "[a](http://e).csv"}}
    assert explore_note.note_from_record(record) == (
        "Agreement with human labels: Cohen's kappa 0.50 (95% CI 0.10 to 0.90), "
        r"n = 8 paragraphs (evaluated 2026-12-01 10:00 UTC against \[a\]\(http\://e\).csv).")


def test_explore_note_follows_the_latest_saved_evaluation(evaluation, tmp_path: Path) -> None:
    job = job_in(tmp_path)
    assert explore_note.agreement_note(job) is None and saved_view(job) is None and saved_key(job) == ()
    save_evaluation(evaluation, job_dir=tmp_path)
    note = explore_note.agreement_note(job)
    assert note is not None and note.startswith("Agreement with human labels: Cohen's kappa 0.47 (95% CI ")
    assert "n = 8 paragraphs" in note and "labels.csv" in note
    assert saved_view(job).job_id == "job_hand" and len(saved_key(job)) == 1


def test_task2_note_and_headline_name_each_answer() -> None:
    metrics = {c: {"n": 18, "cohen_kappa": k, "cohen_kappa_ci": [None, None]}
               for c, k in zip(TASK2.score_columns, (0.67, None, 0.44))}
    note = explore_note.note_from_record({"metrics": metrics, "labels": {"file_name": "l.csv"}, "evaluated_at": None})
    assert "intrinsic value 0.67, cash flow –, ownership / control 0.44, n = 18" in note
    view = EvaluationView.from_record({"metrics": metrics, "matched": 18})
    assert [label for label, _ in tables.headline(view)] == [
        "Paragraphs compared", "Cohen's kappa · Intrinsic value", "Cohen's kappa · Cash flow",
        "Cohen's kappa · Ownership / control"]


def test_labels_file_pickers(tmp_path: Path) -> None:
    (tmp_path / "labels" / "round2").mkdir(parents=True)
    for name in ("labels/a.csv", "labels/round2/b.xlsx", "labels/.hidden.csv", "labels/~$b.xlsx", "labels/notes.md",
                 "top.csv"):
        (tmp_path / name).write_text("paragraph_text,Score\nx,1\n")
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "deep.csv").write_text("x")  # only the labels folder is searched deeply
    assert [p.relative_to(tmp_path).as_posix() for p in pickers.label_files(tmp_path)] == [
        "labels/a.csv", "labels/round2/b.xlsx", "top.csv"]
    columns = pickers.label_file_columns(tmp_path / "labels" / "a.csv")
    assert columns == ["paragraph_text", "Score"]
    assert pickers.detected_label_columns(TASK1, columns) == {"score": "Score"}
    assert pickers.detected_label_columns(TASK2, ["IntrinsicValueScore", "cash flow score"]) == {
        "intrinsic_value_score": "IntrinsicValueScore", "cash_flow_score": "cash flow score",
        "ownership_control_score": None}
    assert pickers.label_column_specs({"score": "Score", "other": None}) == ["score=Score"]
    assert pickers.source_tag(("a.csv", b"x")) != pickers.source_tag(("a.csv", b"y"))


def test_compare_defaults_offer_a_pair_of_one_task(tmp_path: Path) -> None:
    a, b = job_in(tmp_path, "job_a"), job_in(tmp_path, "job_b")
    c = job_in(tmp_path, "job_c").model_copy(update={"task": TASK2.name})
    assert pickers.compare_defaults([c, b, a], "job_a") == ["job_a", "job_b"]
    assert pickers.compare_defaults([c, b, a], "job_c") == ["job_b", "job_a"]  # no other task-2 job: a task-1 pair
    assert pickers.compare_defaults([c, a], "job_c") == []


def test_model_vs_model_tables() -> None:
    first = job_results()
    second = first.copy()
    second.loc[second["custom_id"] == "r01", "score"] = 1  # M1 now 1
    comparison = compare_frames({"j1": first, "j2": second}, task=TASK1, models={"j1": "m-1", "j2": "m-2"},
                                n_resamples=100)
    assert comparing.comparison_jobs(comparison)[["job", "model", "answered"]].values.tolist() == [
        ["j1", "m-1", "10"], ["j2", "m-2", "10"]]
    overall = comparing.comparison_overall(comparison).iloc[0]
    assert overall["paragraphs"] == "10" and overall["disagreements"] == "1"
    pairs = comparing.comparison_pairs(comparison)
    assert pairs[["job A", "job B", "n", "Cohen's kappa", "same answer"]].values.tolist() == [["j1", "j2", "10", "0.80", "90%"]]
    rows = comparing.comparison_disagreement_rows(comparison)
    assert rows[["paragraph", "j1", "j2", "j1 explanation"]].values.tolist() == [[para("M1"), "0", "1", "because r01"]]
    written = pd.read_csv(io.BytesIO(comparing.comparison_csv(comparison)), encoding="utf-8-sig")
    assert written["paragraph_text"].tolist() == [para("M1")] and written["j2:score"].tolist() == [1]
