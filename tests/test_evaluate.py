"""Evaluation against human labels on a small annotated set whose figures were worked out by
hand (see the comments), plus the reading, normalising and matching rules one by one."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import openpyxl
import orjson
import pandas as pd
import pytest

from core.evaluate import (
    EvaluationError,
    LabelColumnError,
    LabelFileError,
    NothingToCompare,
    compare_frames,
    evaluate,
    latest_evaluation,
    list_evaluations,
    normalise_text,
    parse_label,
    read_labels,
    save_evaluation,
)
from core.tasks import get_task

TASK1 = get_task("investment_activity_classification")
TASK2 = get_task("assetization_features_scoring")
ALPHA = "FfBF_Alpha_Annual_2024.pdf"  # investor Alpha
BETA = "UNPRI_Beta_Report.pdf"  # investor Beta

# M7 as the job holds it, and as a coder retyped it: curly quotes, an en dash, a no-break
# space, a Windows line break inside the cell and trailing blanks.
M7_JOB = 'The fund\'s "nature bond" raised EUR 50 million - see note 4.'
M7_HUMAN = "The fund\u2019s \u201cnature bond\u201d\r\nraised EUR 50\u00a0million \u2013 see note 4.  "


def para(name: str) -> str:
    return f"Paragraph {name} about biodiversity finance."


def job_results() -> pd.DataFrame:
    """A task-1 job's collected rows (the columns JobService.collect returns that matter here)."""
    rows = [  # custom_id, text, report, status, score
        ("r01", para("M1"), ALPHA, "succeeded", 0), ("r02", para("M2"), ALPHA, "succeeded", 0),
        ("r03", para("M3"), ALPHA, "succeeded", 0), ("r04", para("M4"), ALPHA, "succeeded", 0),
        ("r05", para("M5"), ALPHA, "succeeded", 1), ("r06", para("M6"), BETA, "succeeded", 0),
        ("r07", M7_JOB, BETA, "succeeded", 1),
        ("r08", para("M8"), BETA, "succeeded", 1), ("r09", para("M8"), BETA, "succeeded", 1),  # a dedupe copy
        ("r10", para("T1"), ALPHA, "succeeded", 1),
        # the same paragraph twice (once with other whitespace, so sent twice) answered differently
        ("r11", para("C1"), ALPHA, "succeeded", 1), ("r12", "Paragraph C1  about biodiversity\nfinance.", ALPHA,
                                                     "succeeded", 0),
        ("r13", para("F1"), ALPHA, "failed", None),
        ("r14", para("R1"), ALPHA, "succeeded", 0), ("r15", para("R2"), BETA, "truncated", None),
    ]
    frame = pd.DataFrame(rows, columns=["custom_id", "paragraph_text", "pdf_file_name", "status", "score"])
    frame["score"] = frame["score"].astype("Int64")
    frame["explanation"] = ["because " + c for c in frame["custom_id"]]
    return frame


# Long format, one row per (paragraph, annotator). File row = list position + 2 (header is row 1).
LABEL_ROWS = [  # Annotator, paragraph_text, pdf_file_name, Score
    ("A", para("M1"), ALPHA, "0"), ("B", para("M1"), ALPHA, "no"), ("C", para("M1"), ALPHA, "1"),  # rows 2-4
    ("A", para("M2"), ALPHA, "0.0"), ("B", para("M2"), ALPHA, ""),  # rows 5-6: a blank is "not labelled"
    ("A", para("M3"), ALPHA, "false"), ("B", para("M3"), ALPHA, "0"), ("C", para("M3"), ALPHA, "maybe"),  # 7-9
    ("A", para("M4"), ALPHA, "0"),  # row 10
    ("A", para("M5"), ALPHA, "0"), ("B", para("M5"), ALPHA, "0"),  # rows 11-12
    ("A", para("M6"), BETA, "1"), ("B", para("M6"), BETA, "yes"),  # rows 13-14
    ("A", M7_HUMAN, BETA, "TRUE"),  # row 15
    ("A", para("M8"), BETA, "1.0"), ("B", para("M8"), BETA, "1"),  # rows 16-17
    ("A", para("T1"), ALPHA, "1"), ("B", para("T1"), ALPHA, "0"),  # rows 18-19: a tie
    ("A", para("C1"), ALPHA, "1"),  # row 20: the job's answers conflict
    ("A", para("U1"), ALPHA, "0"),  # row 21: not in the job
    ("A", para("F1"), ALPHA, "1"),  # row 22: the job row failed
]


def labels_csv(rows: list[tuple[str, str, str, str]] = LABEL_ROWS, *, sep: str = ",",
               encoding: str = "utf-8") -> bytes:
    frame = pd.DataFrame(rows, columns=["Annotator", "paragraph_text", "pdf_file_name", "Score"])
    return frame.to_csv(index=False, sep=sep).encode(encoding)


def evaluated(**kwargs: object):
    labels = read_labels(("labels.csv", labels_csv()), task=TASK1)
    return evaluate(job_results(), labels, job_id="job_hand", task=TASK1, n_resamples=300, **kwargs)


def test_hand_worked_counts() -> None:
    ev = evaluated()
    # 12 labelled paragraphs = 8 compared + 1 tie (T1) + 1 conflict (C1) + 1 failed (F1) + 1 not in the job (U1)
    assert ev.match.labelled_units == 12
    assert (ev.matched, ev.ties_excluded, ev.conflicts_excluded, ev.unmatched_labels) == (8, 1, 1, 1)
    assert ev.match.not_succeeded_by_status == {"failed": 1}
    # 13 job paragraphs (M8's two rows are one; C1's two rows are one); R1 and R2 (truncated) unlabelled
    assert ev.match.job_units == 13 and ev.unmatched_rows == 2
    assert sorted(ev.match.unmatched_rows["paragraph_text"]) == [para("R1"), para("R2")]
    assert ev.match.unmatched_labels["paragraph_text"].tolist() == [para("U1")]
    assert ev.match.unmatched_labels["rows"].tolist() == ["21"]
    # the retyped M7 matched its job row, and counts as the model's true positive
    pair = ev.match.pairs.loc[normalise_text(M7_JOB)]
    assert (pair["human_score"], pair["model_score"], pair["custom_ids"]) == (1, 1, "r07")
    # M1: A 0, B 0, C 1 -> 0 by strict majority
    m1 = ev.match.pairs.loc[para("M1")]
    assert (m1["n0_score"], m1["n1_score"], m1["human_score"]) == (2, 1, 0)
    assert ev.match.ties[["column", "rows", "n0", "n1"]].values.tolist() == [["score", "18, 19", 1, 1]]
    assert ev.match.conflicts["custom_ids"].tolist() == ["r11 r12"]
    assert ev.conflict_rows[["custom_id", "score"]].values.tolist() == [["r11", 1], ["r12", 0]]
    assert ev.match.not_succeeded[["paragraph_text", "status", "rows"]].values.tolist() == [
        [para("F1"), "failed", "22"]]


def test_hand_worked_figures() -> None:
    m = evaluated().columns["score"].metrics
    # (human, model): M1-M4 (0,0), M5 (0,1), M6 (1,0), M7 (1,1), M8 (1,1)
    assert m.confusion == ((4, 1), (1, 2))
    assert m.n == 8
    assert m.human_prevalence == m.model_prevalence == 3 / 8
    assert m.majority_baseline_accuracy == 5 / 8  # always 0
    assert m.accuracy == 6 / 8
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(2 / 3) and m.f1 == pytest.approx(2 / 3)
    # kappa: po = 3/4, pe = (5/8)^2 + (3/8)^2 = 34/64, (3/4 - 34/64) / (1 - 34/64) = 14/30 = 7/15
    assert m.cohen_kappa == pytest.approx(float(Fraction(7, 15)))
    # MCC: (tp*tn - fp*fn) / sqrt(3*3*5*5) = (8 - 1) / 15
    assert m.mcc == pytest.approx(7 / 15)
    # alpha: 16 pairable values, 10 zeros, 6 ones; Do = 4/16, De = 2*10*6/(16*15) = 1/2; 1 - (1/4)/(1/2)
    assert m.krippendorff_alpha == pytest.approx(0.5)
    for interval, point in ((m.cohen_kappa_ci, m.cohen_kappa), (m.krippendorff_alpha_ci, m.krippendorff_alpha),
                            (m.f1_ci, m.f1)):
        assert interval.low is not None and interval.low <= point <= interval.high


def test_hand_worked_human_human_agreement() -> None:
    human = evaluated().columns["score"].human_agreement
    assert human is not None and human.raters == ("A", "B", "C")
    # paragraphs with two or more annotators: M1 (0,0,1), M3 (0,0), M5 (0,0), M6 (1,1), M8 (1,1), T1 (1,0)
    # (C's "maybe" on M3 is not a label)
    assert human.units == 6
    pairs = {(p.a, p.b): p for p in human.pairs}
    ab = pairs[("A", "B")]
    # A-B over 6 shared: A 0,0,0,1,1,1; B 0,0,0,1,1,0; po = 5/6, pe = 1/2*4/6 + 1/2*2/6 = 1/2 -> kappa 2/3
    assert ab.n == 6 and ab.cohen_kappa == pytest.approx(2 / 3) and ab.agreement == pytest.approx(5 / 6)
    # alpha A-B: 12 values, 7 zeros, 5 ones; Do = 2/12, De = 70/132 -> 1 - 11/35 = 24/35
    assert ab.krippendorff_alpha == pytest.approx(24 / 35)
    # A-C and B-C share M1 only, (0, 1): kappa 0 and alpha 0 as the libraries define them
    assert pairs[("A", "C")].n == 1 and pairs[("A", "C")].cohen_kappa == 0
    assert human.mean_pairwise_kappa == pytest.approx(2 / 9)
    # all three: o00 = 1 + 2 + 2 = 5, o11 = 4, o01 = o10 = 1 + 1 = 2; n = 13, n0 = 7, n1 = 6
    # Do = 4/13, De = 2*7*6/(13*12) = 7/13 -> alpha = 1 - 4/7 = 3/7
    assert human.krippendorff_alpha == pytest.approx(3 / 7)


def test_hand_worked_breakdowns_and_disagreements() -> None:
    ev = evaluated(min_group=5)
    investor, report = ev.columns["score"].breakdowns
    # Alpha holds M1-M5 (5 paragraphs, all human 0, one model 1); Beta holds M6-M8 (3) and is left out
    assert [g.group for g in investor.groups] == ["Alpha"]
    alpha = investor.groups[0].metrics
    assert alpha.n == 5 and alpha.accuracy == 0.8 and alpha.confusion == ((4, 1), (0, 0))
    assert alpha.recall is None  # no human positive: undefined, not 0
    assert (investor.small_groups, investor.small_group_items) == (1, 3)
    assert [g.group for g in report.groups] == [ALPHA]
    shown = evaluated(min_group=3).columns["score"].breakdowns[0]
    beta = {g.group: g.metrics for g in shown.groups}["Beta"]
    assert beta.confusion == ((0, 0), (1, 2)) and beta.precision == 1.0

    assert ev.breakdown_table("investor")[["column", "group", "n", "accuracy"]].values.tolist() == [
        ["score", "Alpha", 5, 0.8]]
    table = ev.disagreements()
    assert table[["kind", "paragraph_text", "custom_ids"]].values.tolist() == [
        ["false_positive", para("M5"), "r05"], ["false_negative", para("M6"), "r06"]]
    assert ev.disagreements(kind="false_negative")["explanation"].tolist() == ["because r06"]
    assert ev.disagreements("score", kind="false_positive")["human_votes"].tolist() == ["0 x 1, 2 x 0"]


def test_json_shape_and_saving(tmp_path: Path) -> None:
    ev = evaluated()
    record = orjson.loads(orjson.dumps(ev.to_record()))
    for key in ("job_id", "task", "matched", "ties_excluded", "conflicts_excluded", "unmatched_labels",
                "unmatched_rows", "metrics"):
        assert key in record
    assert (record["matched"], record["ties_excluded"], record["conflicts_excluded"], record["unmatched_labels"],
            record["unmatched_rows"]) == (8, 1, 1, 1, 2)
    figures = record["metrics"]["score"]
    assert set(figures) >= {"n", "accuracy", "precision", "recall", "f1", "cohen_kappa", "cohen_kappa_ci",
                            "krippendorff_alpha", "krippendorff_alpha_ci", "f1_ci", "mcc",
                            "majority_baseline_accuracy", "confusion"}
    assert figures["confusion"] == [[4, 1], [1, 2]] and len(figures["cohen_kappa_ci"]) == 2
    assert record["labels"]["problems"] == [{"row": 9, "column": "Score", "value": "maybe",
                                             "reason": "'maybe' is not a label (use 0/1, true/false or yes/no)"}]
    assert [item["rows"] for item in record["lists"]["ties"]] == ["18, 19"]

    path = save_evaluation(ev, job_dir=tmp_path)
    assert path.parent == tmp_path / "evaluations" and (path.stat().st_mode & 0o777) == 0o600
    second = save_evaluation(ev, job_dir=tmp_path)
    assert list_evaluations(tmp_path) == [path, second]
    (tmp_path / "evaluations" / "evaluation_99991231T000000_000000Z.json").write_text("{broken")
    latest = latest_evaluation(tmp_path)
    assert latest is not None and latest["saved_to"] == str(second) and latest["matched"] == 8


def test_same_seed_same_intervals() -> None:
    first, again = evaluated(), evaluated()
    assert first.columns["score"].metrics.cohen_kappa_ci == again.columns["score"].metrics.cohen_kappa_ci
    other = evaluated(seed=7).columns["score"].metrics
    assert other.cohen_kappa == first.columns["score"].metrics.cohen_kappa


# ----- normalisation and labels ----------------------------------------------------------------


def test_normalisation() -> None:
    assert normalise_text(M7_HUMAN) == M7_JOB
    assert normalise_text("\uff21\uff22 \u201equote\u201c \u2014 dash\u2011x\t\n\u2028end ") == 'AB "quote" - dash-x end'
    assert normalise_text("Case Kept") != normalise_text("case kept")
    assert normalise_text(None) == "" and normalise_text("  \n ") == ""


@pytest.mark.parametrize("value, label", [("0", 0), ("1", 1), ("0.0", 0), ("1.0", 1), ("TRUE", 1), ("false", 0),
                                          ("Yes", 1), (" no ", 0), ("", None), ("  ", None)])
def test_label_values(value: str, label: int | None) -> None:
    assert parse_label(value) == label


@pytest.mark.parametrize("value", ["2", "maybe", "0.5", "-1", "ja"])
def test_label_values_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_label(value)


def test_labels_read_like_inputs_excel_csv() -> None:
    """A semicolon-separated cp1252 export with an Excel 'sep=' line reads the same."""
    rows = [r for r in LABEL_ROWS if r[1] != M7_HUMAN] + [("A", M7_HUMAN.replace("\u00a0", " "), BETA, "1")]
    data = b"sep=;\r\n" + labels_csv(rows, sep=";", encoding="cp1252")
    labels = read_labels(("labels.csv", data), task=TASK1)
    assert labels.encoding == "cp1252" and labels.separator == ";"
    assert labels.problems[0].row == 9  # the sep= line is not a row, as in Excel
    assert M7_HUMAN.replace("\u00a0", " ").strip() in [t.strip() for t in labels.frame["paragraph_text"]]


def test_labels_from_xlsx_task2_columns_by_other_spelling() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Paragraph_Text", "IntrinsicValueScore", "cash flow score", "Ownership_Control_Score", "coder"])
    sheet.append([para("M1"), 1, 0.0, True, "A"])
    sheet.append([para("M2"), 0, 1, "oops", "B"])
    buffer = io.BytesIO()
    book.save(buffer)
    labels = read_labels(("task2.xlsx", buffer.getvalue()), task=TASK2)
    assert labels.columns == {"intrinsic_value_score": "IntrinsicValueScore", "cash_flow_score": "cash flow score",
                              "ownership_control_score": "Ownership_Control_Score"}
    assert labels.annotator_column == "coder" and labels.annotators == ["A", "B"]
    assert labels.frame["ownership_control_score"].tolist() == [1, pd.NA]
    assert [(p.row, p.column, p.value) for p in labels.problems] == [(3, "Ownership_Control_Score", "oops")]


def test_explicit_label_columns() -> None:
    data = b"paragraph_text,human,other\nP one,1,0\nP two,0,1\n"
    assert read_labels(("l.csv", data), task=TASK1, label_columns=["human"]).columns == {"score": "human"}
    assert read_labels(("l.csv", data), task=TASK1, label_columns=["score=other"]).columns == {"score": "other"}
    with pytest.raises(LabelColumnError, match="no column 'missing'"):
        read_labels(("l.csv", data), task=TASK1, label_columns=["missing"])
    with pytest.raises(LabelColumnError, match="ANSWER=COLUMN"):
        read_labels(("l.csv", data), task=TASK2, label_columns=["human"])
    with pytest.raises(LabelColumnError, match="no label column .* Columns found: 'paragraph_text', 'human'"):
        read_labels(("l.csv", data), task=TASK1)


def test_unusable_label_files() -> None:
    with pytest.raises(LabelFileError, match="l.csv: there is no 'paragraph_text' column"):
        read_labels(("l.csv", b"text,score\na,1\n"), task=TASK1)
    with pytest.raises(LabelFileError, match="no row holds a usable label"):
        read_labels(("l.csv", b"paragraph_text,score\na,maybe\nb,\n"), task=TASK1)
    with pytest.raises(LabelFileError, match="PDF document"):
        read_labels(("l.csv", b"%PDF-1.7 not a table"), task=TASK1)
    with pytest.raises(LabelColumnError, match="pdf_file_name"):
        read_labels(("l.csv", b"paragraph_text,score\na,1\n"), task=TASK1, need_report=True)
    labels = read_labels(("l.csv", b"paragraph_text,score\na,1\n,1\n"), task=TASK1)
    assert [(p.row, p.column) for p in labels.problems] == [(3, "paragraph_text")]


def test_matching_on_text_and_report() -> None:
    rows = [r if r[1] != para("M2") else (r[0], r[1], "FfBF_Other_Report.pdf", r[3]) for r in LABEL_ROWS]
    labels = read_labels(("labels.csv", labels_csv(rows)), task=TASK1, need_report=True)
    ev = evaluate(job_results(), labels, job_id="j", task=TASK1, match_on="text+report", n_resamples=100)
    assert ev.matched == 7 and ev.unmatched_labels == 2  # M2 now names another report
    assert ev.unmatched_rows == 3  # R1, R2 and M2 in its own report


def test_settings_checked() -> None:
    labels = read_labels(("labels.csv", labels_csv()), task=TASK1)
    with pytest.raises(EvaluationError, match="at least 50 resamples"):
        evaluate(job_results(), labels, job_id="j", task=TASK1, n_resamples=0)
    with pytest.raises(EvaluationError, match="at least 1"):
        evaluate(job_results(), labels, job_id="j", task=TASK1, min_group=0)


def test_nothing_to_compare_says_why() -> None:
    labels = read_labels(("labels.csv", b"paragraph_text,score\nSomething else,1\n"), task=TASK1)
    with pytest.raises(NothingToCompare, match="1 are not in the job"):
        evaluate(job_results(), labels, job_id="j", task=TASK1)


# ----- model against model -----------------------------------------------------------------------


def test_compare_hand_worked() -> None:
    first = job_results()
    second = first.copy()
    second.loc[second["custom_id"] == "r01", "score"] = 1  # M1 now 1
    second.loc[second["custom_id"] == "r13", ["status", "score"]] = ["succeeded", 1]  # F1 answered here only
    comparison = compare_frames({"j1": first, "j2": second, "j3": first.copy()}, task=TASK1, n_resamples=300)
    # usable in all three: M1-M8, T1, R1 (C1 conflicts, R2 truncated, F1 only in j2)
    assert comparison.shared == 10 and [j.answered for j in comparison.jobs] == [10, 11, 10]
    score = comparison.columns["score"]
    pairs = {(p.a, p.b): p for p in score.pairs}
    # j1 vs j2 over 10: j1 has four 1s, j2 five; po = 9/10, pe = .4*.5 + .6*.5 = .5 -> kappa 0.8
    assert pairs[("j1", "j2")].cohen_kappa == pytest.approx(0.8)
    # alpha: 20 values, 11 zeros, 9 ones; Do = 2/20, De = 198/380 -> 1 - 19/99 = 80/99
    assert pairs[("j1", "j2")].krippendorff_alpha == pytest.approx(80 / 99)
    assert pairs[("j1", "j3")].cohen_kappa == 1.0
    # all three over 10 units (F1 has one rater): o00 = 15 + 1, o11 = 12, o01 = o10 = 1; n = 30
    # Do = 2/30, De = 2*17*13/(30*29) -> alpha = 1 - 1740/13260
    assert score.krippendorff_alpha == pytest.approx(1 - 1740 / 13260)
    assert score.krippendorff_alpha_ci.low is not None
    table = comparison.disagreements()
    assert table["paragraph_text"].tolist() == [para("M1")]
    assert table[["j1:score", "j2:score", "j3:score"]].values.tolist() == [[0, 1, 0]]


# ----- task 2: three answer columns, ties per column ---------------------------------------------


def test_task2_ties_per_column_and_conflicts() -> None:
    columns = ["intrinsic_value_score", "cash_flow_score", "ownership_control_score"]
    results = pd.DataFrame(
        [("s1", para("U1"), ALPHA, "succeeded", 1, 0, 0), ("s2", para("U2"), ALPHA, "succeeded", 0, 0, 0),
         ("s3", para("U3"), BETA, "succeeded", 1, 1, 1),
         # U4's two rows differ in ownership only: still a conflict, excluded whole
         ("s4", para("U4"), BETA, "succeeded", 1, 0, 0), ("s5", para("U4") + " ", BETA, "succeeded", 1, 0, 1)],
        columns=["custom_id", "paragraph_text", "pdf_file_name", "status", *columns])
    results[columns] = results[columns].astype("Int64")
    results["explanation"] = "because"
    data = ("paragraph_text,annotator,intrinsic_value_score,CashFlowScore,Ownership Control Score\n"
            f"{para('U1')},A,1,0,1\n{para('U1')},B,1,1,1\n"  # cash flow tied, the others 1
            f"{para('U2')},A,0,0,0\n"
            f"{para('U3')},A,1,1,0\n{para('U3')},B,0,0,1\n"  # every column tied
            f"{para('U4')},A,1,0,0\n").encode()
    labels = read_labels(("task2.csv", data), task=TASK2)
    ev = evaluate(results, labels, job_id="j2", task=TASK2, n_resamples=50)
    # U1 and U2 compared (U1 without cash flow); U3 tied in every column; U4 conflicts
    assert (ev.matched, ev.ties_excluded, ev.conflicts_excluded, ev.unmatched_rows) == (2, 1, 1, 0)
    assert {c: r.ties_excluded for c, r in ev.columns.items()} == {
        "intrinsic_value_score": 1, "cash_flow_score": 2, "ownership_control_score": 1}
    intrinsic, cash, ownership = (ev.columns[c].metrics for c in columns)
    assert intrinsic.n == 2 and intrinsic.confusion == ((1, 0), (0, 1))
    assert cash.n == 1 and cash.confusion == ((1, 0), (0, 0))  # U2 only
    assert ownership.n == 2 and ownership.confusion == ((1, 0), (1, 0)) and ownership.accuracy == 0.5
    assert ev.disagreements()[["column", "kind"]].values.tolist() == [["ownership_control_score", "false_negative"]]
    assert set(ev.figures()["column"]) == set(columns)
