"""The Evaluate page's disagreement browser: the compared paragraphs where model and human
differ (false positives and false negatives), counted, filtered, listed, shown one at a time in
full, and downloaded.
"""

from __future__ import annotations

import pandas as pd

from core.csvout import csv_bytes
from core.evaluate.view.evaluation_view import EvaluationView
from core.evaluate.view.formatting import answer_label, count, label_text

KINDS = {"false_positive": "false positive", "false_negative": "false negative"}
KIND_HELP = {"false_positive": "model 1, human 0", "false_negative": "model 0, human 1"}


def disagreement_counts(view: EvaluationView, column: str | None = None) -> dict[str, int]:
    """False positives and false negatives, in one answer column or all."""
    frame = view.disagreements
    if column:
        frame = frame[frame["column"] == column]
    counts = frame["kind"].value_counts()
    return {kind: int(counts.get(kind, 0)) for kind in KINDS}


def disagreement_line(view: EvaluationView, column: str | None, kind: str | None) -> str:
    """How many disagreements there are of each kind, and how many the browser shows."""
    counts = disagreement_counts(view, column)
    shown = counts[kind] if kind else sum(counts.values())
    return (f"{count(counts['false_positive'], 'false positive')} and {count(counts['false_negative'], 'false negative')}"
            f"{'' if column is None or len(view.metrics) == 1 else ' in ' + answer_label(column)}; showing {shown:,}.")


def filter_disagreements(view: EvaluationView, column: str | None = None, kind: str | None = None) -> pd.DataFrame:
    """The disagreements in ``column`` (all when None), of ``kind`` (both when None)."""
    frame = view.disagreements
    if column:
        frame = frame[frame["column"] == column]
    if kind:
        frame = frame[frame["kind"] == kind]
    return frame.reset_index(drop=True)


def disagreement_rows(view: EvaluationView, column: str | None = None, kind: str | None = None) -> pd.DataFrame:
    """The disagreement browser's rows: what kind, the human label (with the votes when more
    than one coder voted), the model's label and explanation, the paragraph and its report."""
    frame = filter_disagreements(view, column, kind)
    several = len(view.metrics) > 1
    out = pd.DataFrame({
        "kind": frame["kind"].map(lambda k: KINDS.get(str(k), str(k))),
        **({"answer": frame["column"].map(answer_label)} if several else {}),
        "human": [_human_text(label, votes) for label, votes in zip(frame["human_label"], frame["human_votes"])],
        "model": frame["model_label"].map(label_text),
        "paragraph": frame["paragraph_text"].astype(str),
        "model's explanation": frame["explanation"].fillna("").astype(str),
        "report": frame["pdf_file_name"].fillna("").astype(str),
        "annotators": frame["annotators"].fillna("").astype(str),
    })
    return out


def _human_text(label: object, votes: object) -> str:
    """``0`` for one vote; ``0 (2 × 0, 1 × 1)`` when several coders voted."""
    text = label_text(label)
    try:
        ones, zeros = (int(part.split(" x ")[0]) for part in str(votes).split(", "))
    except ValueError:
        return text
    return text if ones + zeros <= 1 else f"{text} ({zeros} × 0, {ones} × 1)"


def disagreement_detail(view: EvaluationView, column: str | None, kind: str | None, position: int) -> dict[str, str]:
    """One disagreement of the browser (``position`` in its rows) in full: the paragraph and
    the model's explanation uncut, the labels, the report, who labelled it and where."""
    frame = filter_disagreements(view, column, kind)
    row = frame.iloc[min(max(position, 0), len(frame) - 1)]
    return {
        "kind": KINDS.get(str(row["kind"]), str(row["kind"])), "answer": answer_label(str(row["column"])),
        "human": _human_text(row["human_label"], row["human_votes"]), "model": label_text(row["model_label"]),
        "paragraph": str(row["paragraph_text"]), "explanation": str(row["explanation"] or ""),
        "report": str(row["pdf_file_name"] or ""), "annotators": str(row["annotators"] or ""),
        "human_rows": str(row["human_rows"] or ""), "custom_ids": str(row["custom_ids"] or ""),
    }


def disagreements_csv(view: EvaluationView, column: str | None = None, kind: str | None = None) -> bytes:
    """The disagreements download: every column, the rows the browser shows."""
    return csv_bytes(filter_disagreements(view, column, kind), excel_bom=True)
