"""The results table: its columns, sorting every row, paging, and everything about one row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.columns import input_columns
from core.explore.columns import (
    INVESTOR_COLUMN,
    JOB_COLUMN,
    NO_SCORE,
    REPORT_COLUMN,
    SCORE_COLUMNS,
    SOURCE_COLUMN,
    TASK2_JOB_COLUMN,
    TASK2_PREFIX,
    TASK_COLUMN,
    present_score_columns,
    task_rows,
)
from core.explore.labels import DIMENSION_LABELS, score_label
from core.tasks import ASSETIZATION_FEATURES, TASKS

PAGE_SIZE = 500  # rows per table page; every row is reachable and sorting sorts them all
# On-screen order: the investor and the (short) scores, then the paragraph, wide, so it is on
# screen at 1440 px; the explanations after it; the job and file bookkeeping columns last.
TABLE_COLUMNS = [
    INVESTOR_COLUMN, "score", *DIMENSION_LABELS, "paragraph_text", "explanation", TASK2_PREFIX + "explanation",
    REPORT_COLUMN, "status", TASK2_PREFIX + "status", "status_reason", TASK2_PREFIX + "status_reason",
    JOB_COLUMN, TASK2_JOB_COLUMN, SOURCE_COLUMN, "custom_id",
]
#: The columns the table can be sorted by (on every row, not only the page shown).
SORT_COLUMNS = [INVESTOR_COLUMN, REPORT_COLUMN, *SCORE_COLUMNS, "status", SOURCE_COLUMN, "custom_id"]
FILE_ORDER = "file order"


def sorted_rows(frame: pd.DataFrame, *, sort_by: str = FILE_ORDER, descending: bool = False) -> pd.DataFrame:
    """Every row of ``frame`` sorted by ``sort_by`` (rows without a value last; ties keep file
    order), or as loaded for :data:`FILE_ORDER` or a column the frame lacks."""
    if sort_by == FILE_ORDER or sort_by not in frame.columns:
        return frame
    return frame.iloc[sorted_positions(frame, sort_by=sort_by, descending=descending)]


def sorted_positions(frame: pd.DataFrame, *, sort_by: str = FILE_ORDER, descending: bool = False) -> np.ndarray:
    """The positions of ``frame``'s rows in the order :func:`sorted_rows` gives: 8 bytes a row
    to remember, where a sorted copy of the rows would hold all their text again."""
    if sort_by == FILE_ORDER or sort_by not in frame.columns:
        return np.arange(len(frame))
    column = frame[sort_by].reset_index(drop=True)
    return column.sort_values(ascending=not descending, na_position="last", kind="stable").index.to_numpy()


def page_count(n_rows: int, page_size: int = PAGE_SIZE) -> int:
    """Pages needed to show ``n_rows`` rows (at least one)."""
    return max(1, -(-n_rows // page_size))


def page_slice(page: int, page_size: int = PAGE_SIZE) -> slice:
    """The positions of page ``page`` (1-based) of ``page_size`` rows."""
    start = (max(1, page) - 1) * page_size
    return slice(start, start + page_size)


def table_rows(frame: pd.DataFrame, *, page: int = 1, page_size: int | None = None) -> pd.DataFrame:
    """The columns worth reading on screen (those of the present tasks), for page ``page``
    (1-based) of ``page_size`` rows, or every row when ``page_size`` is ``None``. The index
    is kept, so a selected row leads back to its row in ``frame``.

    Score columns are text, so no cell reads "None": ``0``/``1``, ``no score`` for a row its
    task answered without a score (see its status), and empty for rows the task never saw."""
    present = set(present_score_columns(frame))
    columns = [c for c in TABLE_COLUMNS if c in frame.columns and (c not in SCORE_COLUMNS or c in present)]
    if page_size is not None:
        frame = frame.iloc[page_slice(page, page_size)]
    rows = frame[columns].copy()
    for column in present.intersection(columns):
        text = rows[column].astype("string").fillna(NO_SCORE).astype(str)
        rows[column] = text.where(task_rows(frame, SCORE_COLUMNS[column]), "")
    return rows


def row_detail(frame: pd.DataFrame, index: object) -> list[tuple[str, str]]:
    """Everything about one row (by ``frame`` index) as ``(label, text)`` pairs, in reading
    order: the full paragraph, each task's answers and explanation, the report, the source
    file and row, then every input column (``page`` ...) and the bookkeeping."""
    row = frame.loc[index]
    shown: list[tuple[str, str]] = [("Paragraph", str(row.get("paragraph_text", "")))]
    stacked = TASK_COLUMN in frame.columns

    def answer(column: str) -> str:
        value = row.get(column)
        return NO_SCORE if value is None or pd.isna(value) else str(int(value))

    for task in TASKS.values():
        if stacked and row.get(TASK_COLUMN) != task.name:
            continue
        prefix = TASK2_PREFIX if (not stacked and task is ASSETIZATION_FEATURES) else ""
        status = str(row.get(prefix + "status", "") or "")
        if not status:
            shown.append((task.title, "not run on this paragraph"))
            continue
        for column in task.score_columns:
            shown.append((f"{task.title}: {score_label(column)}", answer(column)))
        shown.append((f"{task.title}: explanation", str(row.get(prefix + "explanation", ""))))
        reason = str(row.get(prefix + "status_reason", "") or "")
        shown.append((f"{task.title}: status", status + (f" ({reason})" if reason else "")))
    for label, column in (("Investor", INVESTOR_COLUMN), ("Report", REPORT_COLUMN), ("Source file", SOURCE_COLUMN),
                          ("Row in the source file", "row"), ("Request id", "custom_id"),
                          ("Job (task 1)" if not stacked else "Job", JOB_COLUMN), ("Job (task 2)", TASK2_JOB_COLUMN)):
        if column in frame.columns and str(row.get(column, "")):
            shown.append((label, str(row[column])))
    for column in input_columns(frame.columns):
        if not column.startswith(TASK2_PREFIX):
            shown.append((column, str(row.get(column, ""))))
    return shown
