"""Model against model on the Evaluate page: the compared jobs, the agreement across all of them
and per pair, and the paragraphs they answer differently (as a table and a CSV download).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from core.csvout import csv_bytes
from core.evaluate.view.formatting import MISSING, answer_label, fmt, fmt_share, label_text, with_interval
from core.inputs import excerpt

if TYPE_CHECKING:
    from core.evaluate.compare import Comparison


def comparison_jobs(comparison: Comparison) -> pd.DataFrame:
    """One row per compared job: its model and how many paragraphs it answered."""
    rows = []
    for side in comparison.jobs:
        failed = ", ".join(f"{n:,} {s}" for s, n in side.not_succeeded.items())
        rows.append({"job": side.job_id, "model": excerpt(side.model, 40) if side.model else MISSING, "paragraphs": f"{side.paragraphs:,}",
                     "answered": f"{side.answered:,}", "conflicting": f"{side.conflicts:,}",
                     "without an answer": failed or "0"})
    return pd.DataFrame(rows, columns=["job", "model", "paragraphs", "answered", "conflicting", "without an answer"])


def comparison_overall(comparison: Comparison) -> pd.DataFrame:
    """Per answer column: alpha across all jobs with its interval (a stability score),
    the mean pairwise kappa, and how many paragraphs they disagree on."""
    rows = []
    for column, agreement in comparison.columns.items():
        rows.append({
            "answer": answer_label(column), "paragraphs": f"{agreement.units:,}",
            "alpha across all [95% CI]": with_interval(agreement.krippendorff_alpha,
                                                       agreement.krippendorff_alpha_ci.to_record()),
            "mean pairwise kappa": fmt(agreement.mean_pairwise_kappa),
            "disagreements": f"{len(comparison.disagreements(column)):,}",
        })
    return pd.DataFrame(rows, columns=["answer", "paragraphs", "alpha across all [95% CI]", "mean pairwise kappa",
                                       "disagreements"])


def comparison_pairs(comparison: Comparison) -> pd.DataFrame:
    """Every pair of jobs per answer column: n, kappa, alpha and the share answered alike."""
    rows = []
    for column, agreement in comparison.columns.items():
        for pair in agreement.pairs:
            rows.append({"answer": answer_label(column), "job A": pair.a, "job B": pair.b, "n": f"{pair.n:,}",
                         "Cohen's kappa": fmt(pair.cohen_kappa), "Krippendorff's alpha": fmt(pair.krippendorff_alpha),
                         "same answer": fmt_share(pair.agreement)})
    return pd.DataFrame(rows, columns=["answer", "job A", "job B", "n", "Cohen's kappa", "Krippendorff's alpha",
                                       "same answer"])


def comparison_disagreement_rows(comparison: Comparison, column: str | None = None) -> pd.DataFrame:
    """The paragraphs the jobs answer differently: each job's answers (a dash where it has
    none) and explanation, then the paragraph and its report."""
    table = comparison.disagreements(column)
    columns = [column] if column else list(comparison.columns)
    out = pd.DataFrame({"paragraph": table["paragraph_text"].astype(str)})
    for job_id in comparison.job_ids:
        for name in columns:
            heading = f"{job_id}" if len(columns) == 1 else f"{job_id} · {answer_label(name)}"
            out[heading] = table[f"{job_id}:{name}"].map(label_text)
    for job_id in comparison.job_ids:
        out[f"{job_id} explanation"] = table[f"{job_id}:explanation"].fillna("").astype(str)
    out["report"] = table["pdf_file_name"].fillna("").astype(str)
    return out


def comparison_csv(comparison: Comparison, column: str | None = None) -> bytes:
    """The paragraphs the jobs disagree on, every job's answers and explanations, as CSV."""
    return csv_bytes(comparison.disagreements(column), excel_bom=True)
