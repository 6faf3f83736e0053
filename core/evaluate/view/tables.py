"""The Evaluate page's lines and tables for one evaluation: which labels and what was compared,
the headline numbers, the figures (as text, and as numbers for the CSV download), the confusion
matrices, the per-investor and per-report figures, and the lists of what was left out.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.csvout import csv_bytes
from core.evaluate.view.evaluation_view import EvaluationView
from core.evaluate.view.formatting import (
    MISSING,
    answer_label,
    count,
    fmt,
    fmt_date,
    fmt_interval,
    fmt_share,
    md_text,
    with_interval,
)

GROUP_METRICS = {"cohen_kappa": "Cohen's kappa", "f1": "F1", "accuracy": "accuracy",
                 "krippendorff_alpha": "Krippendorff's alpha"}
GROUPINGS = {"investor": "investor", "report": "report"}
LIST_TITLES = {  # the lists of what was left out, in the order the page shows them
    "ties": "Tied human labels (excluded)",
    "conflicts": "Paragraphs the job answered differently (excluded)",
    "conflict_answers": "The answers behind those conflicts",
    "not_succeeded": "Labelled paragraphs without a successful answer",
    "unmatched_labels": "Labelled paragraphs not in the job",
    "unmatched_rows": "Job paragraphs nobody labelled",
    "label_problems": "Cells of the labels file that are not labels",
    "examples_excluded": "Labelled paragraphs the job's labeler learned from (excluded)",
}


def evaluated_line(view: EvaluationView) -> str:
    """Which labels, when, and how the paragraphs were matched."""
    who = (f"{len(view.annotators)} annotator{'s' if len(view.annotators) != 1 else ''}: "
           f"{', '.join(md_text(a, 40) for a in view.annotators[:5])}{' …' if len(view.annotators) > 5 else ''}"
           if view.annotators else "no annotator column")
    file_columns = ", ".join(f"{answer_label(a)} from column \u201c{md_text(c, 40)}\u201d"
                             for a, c in view.label_columns.items())
    match = "text and report" if view.match_on == "text+report" else "paragraph text"
    digest = f"sha256 {view.labels_sha256[:12]}…, " if view.labels_sha256 else ""
    return (f"Evaluated {fmt_date(view.evaluated_at)} against **{md_text(view.labels_file)}** ({digest}{who}); "
            f"{file_columns}; matched on {match}; groups of at least {view.min_group}.")


def counts_line(view: EvaluationView) -> str:
    """What was compared and what was left out, in distinct paragraphs."""
    c = view.counts

    def n(name: str) -> str:
        value = c.get(name)
        return MISSING if value is None else f"{int(value):,}"

    failed = c.get("not_succeeded") or {}
    failed_total = sum(failed.values())
    failed_text = f" ({', '.join(f'{v:,} {s}' for s, v in failed.items())})" if failed else ""
    problems = (f" {view.label_problem_count:,} cells of the labels file are not labels (see *Left out*)."
                if view.label_problem_count else "")
    examples = int(c.get("examples_excluded") or 0)  # a training example is no evidence of agreement
    if examples:
        problems += f" {examples:,} labelled paragraphs were left out because the job's labeler learned from them."
    return (f"**{n('matched')}** paragraphs compared. Left out: {n('ties_excluded')} with tied human labels, "
            f"{n('conflicts_excluded')} the job answered inconsistently, {failed_total:,} without a successful "
            f"answer{failed_text}; {n('unmatched_labels')} labelled paragraphs are not in the job, "
            f"{n('unmatched_rows')} job paragraphs were not labelled.{problems}")


def headline(view: EvaluationView) -> list[tuple[str, str]]:
    """(label, value) pairs for a row of big numbers: paragraphs compared, then kappa with its
    interval (and alpha, F1 and accuracy against the baseline when one column is evaluated)."""
    items = [("Paragraphs compared", f"{int(view.counts.get('matched') or 0):,}")]
    several = len(view.metrics) > 1
    for column, m in view.metrics.items():
        interval = fmt_interval(m.get("cohen_kappa_ci"))
        name = f"Cohen's kappa · {answer_label(column)}" if several else "Cohen's kappa"
        items.append((f"{name} {interval}".strip(), fmt(m.get("cohen_kappa"))))
        if not several:
            items.append((f"Krippendorff's alpha {fmt_interval(m.get('krippendorff_alpha_ci'))}".strip(),
                          fmt(m.get("krippendorff_alpha"))))
            items.append((f"F1 {fmt_interval(m.get('f1_ci'))}".strip(), fmt(m.get("f1"))))
            items.append((f"Accuracy (baseline {fmt(m.get('majority_baseline_accuracy'))})", fmt(m.get("accuracy"))))
    return items


# the chance-corrected figures first: they are what a reader looks for, and stay in view on a narrow page
FIGURE_COLUMNS = ["answer", "n", "Cohen's kappa [95% CI]", "Krippendorff's alpha [95% CI]", "F1 [95% CI]",
                  "accuracy", "majority baseline", "precision", "recall", "MCC", "human prevalence",
                  "model prevalence", "human-human alpha"]


def figures_table(view: EvaluationView) -> pd.DataFrame:
    """One row per answer column, every figure as text (a dash where undefined), the three
    bootstrap intervals beside their figures."""
    rows = []
    for column, m in view.metrics.items():
        human = view.human_agreement.get(column) or {}
        rows.append({
            "answer": answer_label(column), "n": f"{int(m['n']):,}",
            "human prevalence": fmt_share(m.get("human_prevalence")),
            "model prevalence": fmt_share(m.get("model_prevalence")),
            "majority baseline": fmt(m.get("majority_baseline_accuracy")), "accuracy": fmt(m.get("accuracy")),
            "precision": fmt(m.get("precision")), "recall": fmt(m.get("recall")),
            "F1 [95% CI]": with_interval(m.get("f1"), m.get("f1_ci")),
            "Cohen's kappa [95% CI]": with_interval(m.get("cohen_kappa"), m.get("cohen_kappa_ci")),
            "Krippendorff's alpha [95% CI]": with_interval(m.get("krippendorff_alpha"), m.get("krippendorff_alpha_ci")),
            "MCC": fmt(m.get("mcc")),
            "human-human alpha": (with_interval(human.get("krippendorff_alpha"), human.get("krippendorff_alpha_ci"))
                                  if human else MISSING),
        })
    return pd.DataFrame(rows, columns=FIGURE_COLUMNS)


def figures_frame(view: EvaluationView) -> pd.DataFrame:
    """The figures as numbers, one row per answer column, with what they were computed from
    (job, labels file and its sha256, date, settings): the figures CSV download."""
    rows = []
    for column, m in view.metrics.items():
        (tn, fp), (fn, tp) = m.get("confusion") or [[0, 0], [0, 0]]
        human = view.human_agreement.get(column) or {}
        row: dict[str, Any] = {
            "job_id": view.job_id, "task": view.task, "column": column, "labels_file": view.labels_file,
            "labels_sha256": view.labels_sha256, "evaluated_at": view.evaluated_at, "match_on": view.match_on,
        }
        for name in ("n", "human_prevalence", "model_prevalence", "majority_baseline_accuracy", "accuracy",
                     "precision", "recall", "f1", "cohen_kappa", "krippendorff_alpha", "mcc"):
            row[name] = m.get(name)
            if name in ("f1", "cohen_kappa", "krippendorff_alpha"):
                low, high = (m.get(f"{name}_ci") or [None, None])[:2]
                row[f"{name}_ci_low"], row[f"{name}_ci_high"] = low, high
        row.update({"tn": tn, "fp": fp, "fn": fn, "tp": tp, "ties_excluded": m.get("ties_excluded"),
                    "human_human_alpha": human.get("krippendorff_alpha"),
                    "human_human_mean_kappa": human.get("mean_pairwise_kappa"),
                    "confidence_level": view.confidence_level, "bootstrap_resamples": view.n_resamples})
        rows.append(row)
    return pd.DataFrame(rows)


def figures_csv(view: EvaluationView) -> bytes:
    """The figures CSV download (formula-like text neutralised by :func:`csv_bytes`)."""
    return csv_bytes(figures_frame(view), excel_bom=True)


def confusion_table(view: EvaluationView, column: str) -> pd.DataFrame:
    """The 2 x 2 confusion matrix of one answer column: rows human 0/1, columns model 0/1."""
    (tn, fp), (fn, tp) = view.metrics[column].get("confusion") or [[0, 0], [0, 0]]
    return pd.DataFrame([[tn, fp], [fn, tp]], index=["human 0", "human 1"], columns=["model 0", "model 1"])


def confusion_caption(view: EvaluationView, column: str) -> str:
    """The four cells named, for readers who do not read matrices."""
    (tn, fp), (fn, tp) = view.metrics[column].get("confusion") or [[0, 0], [0, 0]]
    return (f"{count(tp, 'true positive')}, {count(tn, 'true negative')}, {count(fp, 'false positive')} "
            f"(model 1, human 0), {count(fn, 'false negative')} (model 0, human 1)")


def group_table(view: EvaluationView, by: str, column: str, metric: str) -> pd.DataFrame:
    """Per investor or report (``by``): ``group``, ``n``, ``value`` (the ``metric``, None
    where undefined) and ``text`` (n and the value, for a bar label), largest group first."""
    record = (view.breakdowns.get(by) or {}).get(column) or {}
    rows = []
    for g in record.get("groups") or []:
        value = g.get(metric)
        rows.append({"group": str(g["group"]), "n": int(g["n"]), "value": value,
                     "text": f"n = {int(g['n']):,} · {fmt(value) if value is not None else 'undefined'}"})
    return pd.DataFrame(rows, columns=["group", "n", "value", "text"])


def group_note(view: EvaluationView, by: str, column: str) -> str | None:
    """What the per-group chart leaves out, or None when it leaves nothing out. When it
    leaves out every group, says so and what to do."""
    record = (view.breakdowns.get(by) or {}).get(column) or {}
    noun = "investors" if by == "investor" else "reports"
    parts = []
    small, items = int(record.get("small_groups") or 0), int(record.get("small_group_items") or 0)
    if small and not record.get("groups"):
        parts.append(f"No {by} has at least {view.min_group:,} compared paragraphs (there are {small:,} {noun} with "
                     f"{items:,} paragraphs in all); lower the smallest group size under *Options* and evaluate again")
    elif small:
        parts.append(f"{small:,} {noun} with fewer than {view.min_group:,} compared paragraphs ({items:,} paragraphs "
                     "in all) are left out; lower the smallest group size under *Options* and evaluate again to see them")
    unnamed = int(record.get("unnamed_items") or 0)
    if unnamed:
        parts.append(f"{unnamed:,} paragraphs have no {'investor in their report name' if by == 'investor' else 'report name'}")
    return ("; ".join(parts) + ".") if parts else None


def left_out(view: EvaluationView) -> list[tuple[str, str, pd.DataFrame]]:
    """(name, title, rows) of each non-empty list of what was left out, in page order."""
    return [(name, title, view.lists[name]) for name, title in LIST_TITLES.items()
            if name in view.lists and not view.lists[name].empty]


def list_csv(frame: pd.DataFrame) -> bytes:
    """One list of what was left out, as a CSV download."""
    return csv_bytes(frame, excel_bom=True)
