"""The explore frame's columns, and which task each row and score column belongs to.

Two shapes of frame are used (see :mod:`core.explore.loading`): the stacked one, one row per
job and paragraph with a ``task`` column, and the one-row-per-paragraph one, where task 2's
own columns carry the ``task2_`` prefix. Every function of the package reads either shape;
:func:`task_rows` is where the two are told apart.
"""

from __future__ import annotations

import pandas as pd

from core.tasks import ASSETIZATION_FEATURES, INVESTMENT_ACTIVITY, TASKS

# Columns the explore frame adds to the result CSV columns.
TASK_COLUMN = "task"
JOB_COLUMN = "job_id"
INVESTOR_COLUMN = "investor"
SOURCE_COLUMN = "csv_file_name"
REPORT_COLUMN = "pdf_file_name"
NO_SCORE = "no score"
TASK2_PREFIX = "task2_"
TASK2_JOB_COLUMN = TASK2_PREFIX + JOB_COLUMN

SCORE_COLUMNS: dict[str, str] = {  # score column -> task it belongs to
    **{c: INVESTMENT_ACTIVITY.name for c in INVESTMENT_ACTIVITY.score_columns},
    **{c: ASSETIZATION_FEATURES.name for c in ASSETIZATION_FEATURES.score_columns},
}

#: The columns that describe the paragraph itself, first in every frame and download.
PARAGRAPH_COLUMNS = [JOB_COLUMN, TASK2_JOB_COLUMN, INVESTOR_COLUMN, REPORT_COLUMN, SOURCE_COLUMN,
                     "paragraph_text", "custom_id", "row"]


def task_rows(frame: pd.DataFrame, task: str) -> pd.Series:
    """Which rows hold an answer row of ``task`` (their status, good or bad): in a stacked
    frame the rows of that task; in a one-row-per-paragraph frame the paragraphs it reached."""
    if TASK_COLUMN in frame.columns:
        return frame[TASK_COLUMN] == task
    status = "status" if task == INVESTMENT_ACTIVITY.name else TASK2_PREFIX + "status"
    if status not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame[status] != ""


def loaded_tasks(frame: pd.DataFrame) -> list[str]:
    """The tasks with rows in ``frame``, in task order."""
    return [name for name in TASKS if bool(task_rows(frame, name).any())]


def present_score_columns(frame: pd.DataFrame) -> list[str]:
    """Score columns of the tasks present in the frame."""
    tasks = set(loaded_tasks(frame))
    return [c for c, task in SCORE_COLUMNS.items() if task in tasks and c in frame.columns]
