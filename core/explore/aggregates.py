"""Aggregates for the charts: rows per score, shares per investor / report with their Wilson
intervals, task 2's dimension shares and combinations."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from core.errors import CoreError
from core.explore.columns import (
    INVESTOR_COLUMN,
    JOB_COLUMN,
    NO_SCORE,
    REPORT_COLUMN,
    SCORE_COLUMNS,
    SOURCE_COLUMN,
    present_score_columns,
    task_rows,
)
from core.explore.labels import DIMENSION_LABELS, score_label
from core.tasks import ASSETIZATION_FEATURES

UNKNOWN_GROUP = "(unknown)"
TOP_GROUPS = 15  # investors / reports in the by-group chart; more do not read at half the page width
CONFIDENCE = 0.95  # of the Wilson interval drawn on every share


def wilson_interval(ones: int, n: int, *, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of ``ones`` successes in ``n`` (scipy's binomtest); ``(0, 1)``
    when ``n`` is 0 (nothing is known)."""
    if n <= 0:
        return 0.0, 1.0
    from scipy.stats import binomtest  # imported when first needed: scipy takes a while to load

    ci = binomtest(int(ones), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def score_distribution(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows per score value for every score column present: columns ``dimension``, ``score``
    (``0``, ``1`` or ``no score``), ``rows``. Each dimension counts only the rows its task
    answered."""
    records = []
    for column in present_score_columns(frame):
        values = frame.loc[task_rows(frame, SCORE_COLUMNS[column]), column]
        counts = values.astype("string").fillna(NO_SCORE).value_counts()
        for score in ("0", "1", NO_SCORE):
            if counts.get(score, 0) or score != NO_SCORE:
                records.append({"dimension": score_label(column), "score": score, "rows": int(counts.get(score, 0))})
    return pd.DataFrame(records, columns=["dimension", "score", "rows"])


GROUP_COLUMNS = (INVESTOR_COLUMN, REPORT_COLUMN, SOURCE_COLUMN, JOB_COLUMN)


def scores_by(frame: pd.DataFrame, by: str = INVESTOR_COLUMN, *, top: int = TOP_GROUPS,
              columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Per investor (or report): for each score column (``columns``, default all present) the
    rows its task answered, those with a score, those scored 1, their share among scored rows
    and its 95 % Wilson interval. Long format: ``group``, ``dimension``, ``rows``, ``scored``,
    ``ones``, ``share``, ``low``, ``high``. The ``top`` groups with most rows are kept; within
    a dimension the highest share comes first (ties: more scored rows first), dimensions in
    task order. A group with no scored row has no share and is left out of that dimension."""
    if by not in GROUP_COLUMNS:
        raise CoreError(f"Cannot group results by '{by}'.")
    chosen = [c for c in present_score_columns(frame) if columns is None or c in columns]
    groups = frame[by].replace("", UNKNOWN_GROUP)
    biggest = groups.value_counts().head(top).index
    records = []
    for column in chosen:
        part = task_rows(frame, SCORE_COLUMNS[column])
        keep = part & groups.isin(biggest)
        values = frame.loc[keep, column]
        grouped = pd.DataFrame({"group": groups[keep], "scored": values.notna(), "ones": values.eq(1).fillna(False)})
        agg = grouped.groupby("group").agg(rows=("scored", "size"), scored=("scored", "sum"), ones=("ones", "sum"))
        part_records = []
        for name, row in agg.iterrows():
            scored, ones = int(row["scored"]), int(row["ones"])
            if not scored:
                continue
            low, high = wilson_interval(ones, scored)
            part_records.append({"group": name, "dimension": score_label(column), "rows": int(row["rows"]),
                                 "scored": scored, "ones": ones, "share": ones / scored, "low": low, "high": high})
        part_records.sort(key=lambda r: (-r["share"], -r["scored"], str(r["group"])))
        records.extend(part_records)
    return pd.DataFrame(records, columns=["group", "dimension", "rows", "scored", "ones", "share", "low", "high"])


def scores_by_note(frame: pd.DataFrame, by: str = INVESTOR_COLUMN, *, top: int = TOP_GROUPS) -> str | None:
    """A note for the by-group chart when it leaves groups out, else ``None``."""
    n = frame[by].replace("", UNKNOWN_GROUP).nunique() if by in frame.columns else 0
    if n <= top:
        return None
    noun = {INVESTOR_COLUMN: "investors", REPORT_COLUMN: "reports", SOURCE_COLUMN: "source files"}.get(by, "groups")
    return f"Showing the {top} of {n:,} {noun} with the most rows; filter to see the others."


def combination_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Task 2: rows for each of the eight combinations of the three dimensions (scored rows
    only). Columns: the three score columns, ``combination`` (readable), ``rows``, ``share``."""
    dims = list(ASSETIZATION_FEATURES.score_columns)
    present = all(d in frame.columns for d in dims)
    part = frame[task_rows(frame, ASSETIZATION_FEATURES.name)] if present else frame.iloc[0:0]
    scored = part[dims].dropna() if not part.empty else pd.DataFrame(columns=dims)
    counts = scored.astype(int).value_counts() if not scored.empty else pd.Series(dtype=int)
    total = int(counts.sum()) if len(counts) else 0
    records = []
    for code in range(8):
        values = tuple((code >> (2 - i)) & 1 for i in range(3))
        n = int(counts.get(values, 0)) if len(counts) else 0
        names = [DIMENSION_LABELS[d] for d, v in zip(dims, values) if v]
        records.append({**dict(zip(dims, values)), "combination": " + ".join(names) or "none",
                        "rows": n, "share": n / total if total else 0.0})
    return pd.DataFrame(records)


def dimension_shares(frame: pd.DataFrame) -> pd.DataFrame:
    """Task 2: for each dimension the share of scored rows with score 1, with its 95 % Wilson
    interval (``low``, ``high``). All three count the same rows: those task 2 answered."""
    part = frame[task_rows(frame, ASSETIZATION_FEATURES.name)]
    records = []
    for column in ASSETIZATION_FEATURES.score_columns:
        values = part[column].dropna() if column in part else pd.Series(dtype="Int64")
        ones = int(values.eq(1).sum())
        low, high = wilson_interval(ones, len(values))
        records.append({"dimension": score_label(column), "scored": len(values), "ones": ones,
                        "share": ones / len(values) if len(values) else 0.0, "low": low, "high": high})
    return pd.DataFrame(records, columns=["dimension", "scored", "ones", "share", "low", "high"])
