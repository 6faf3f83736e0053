"""Downloads: the rows as written to a file (CSV or Excel, untrusted text made safe), why an
Excel file cannot hold them, and the download's file name."""

from __future__ import annotations

import datetime as dt
import re
from typing import Sequence

import pandas as pd

from core.csvout import csv_bytes
from core.explore.columns import SCORE_COLUMNS, loaded_tasks, present_score_columns
from core.models import Job
from core.safefs import safe_name
from core.tasks import ASSETIZATION_FEATURES, INVESTMENT_ACTIVITY
from core.xlsxout import limit_problem, xlsx_bytes

TASK_SHORT = {INVESTMENT_ACTIVITY.name: "task1", ASSETIZATION_FEATURES.name: "task2"}


def download_name(jobs: Sequence[Job], frame: pd.DataFrame, *, filtered: bool, suffix: str,
                  today: dt.date | None = None) -> str:
    """``bdasset_<job names or ids>_<task1|task2|task1-task2>_<filtered|all>_<date><suffix>``,
    safe on every file system (:func:`core.safefs.safe_name`)."""
    names = "+".join(_job_label(j) for j in jobs) or "results"
    tasks = "-".join(TASK_SHORT[t] for t in loaded_tasks(frame)) or "results"
    day = (today or dt.date.today()).isoformat()
    stem = f"bdasset_{names}_{tasks}_{'filtered' if filtered else 'all'}_{day}"
    stem = re.sub(r"[^A-Za-z0-9_+-]+", "-", stem)
    return safe_name(stem, suffix=suffix)


def _job_label(job: Job) -> str:
    name = " ".join((job.name or "").split())
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or job.id


def export_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The filtered rows as written to a download, in the frame's column order (for a mixed
    frame the fixed order :mod:`core.explore.loading` gives); score columns of tasks not loaded are
    left out."""
    present = set(present_score_columns(frame))
    drop = [c for c in SCORE_COLUMNS if c not in present and c in frame.columns]
    return frame.drop(columns=drop)


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV with BOM, so Excel opens accents correctly. Text that a spreadsheet would
    read as a formula gets an apostrophe in front (``csv_bytes`` applies
    :mod:`core.exportsafe`)."""
    return csv_bytes(export_frame(frame), excel_bom=True)


def excel_problem(frame: pd.DataFrame) -> str | None:
    """Why the rows cannot be downloaded as Excel (:func:`core.xlsxout.limit_problem`), or None."""
    return limit_problem(export_frame(frame))


def to_xlsx_bytes(frame: pd.DataFrame) -> bytes:
    """An Excel workbook with one sheet ``results``, every text in a string cell holding its
    exact value (:func:`core.xlsxout.xlsx_bytes`): paragraphs and model explanations are
    untrusted, and a string cell is never evaluated."""
    return xlsx_bytes(export_frame(frame), sheet_name="results")
