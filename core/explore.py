"""Explore collected results: load jobs into one frame, filter, aggregate for charts, export.

Plain pandas; used by the dashboard's Explore page and usable from a notebook.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from openpyxl.cell.cell import ERROR_CODES
from openpyxl.worksheet.worksheet import Worksheet

from core.columns import input_columns, is_product_column
from core.csvout import csv_bytes
from core.errors import CoreError
from core.exportsafe import is_text
from core.models import Job
from core.results import read_results
from core.tasks import ASSETIZATION_FEATURES, INVESTMENT_ACTIVITY, TASKS

# Columns the explore frame adds to the result CSV columns.
TASK_COLUMN = "task"
JOB_COLUMN = "job_id"
INVESTOR_COLUMN = "investor"
SOURCE_COLUMN = "csv_file_name"
REPORT_COLUMN = "pdf_file_name"
NO_SCORE = "no score"
TABLE_ROW_LIMIT = 1_000  # rows shown in the on-screen table; downloads hold every filtered row
TOP_GROUPS = 15  # investors / reports in the by-group chart; more do not read at half the page width

SCORE_COLUMNS: dict[str, str] = {  # score column -> task it belongs to
    **{c: INVESTMENT_ACTIVITY.name for c in INVESTMENT_ACTIVITY.score_columns},
    **{c: ASSETIZATION_FEATURES.name for c in ASSETIZATION_FEATURES.score_columns},
}
DIMENSION_LABELS = {
    "intrinsic_value_score": "Intrinsic value",
    "cash_flow_score": "Cash flow",
    "ownership_control_score": "Ownership / control",
}
# On-screen order: the scores come before the (wide) paragraph so they are visible without
# scrolling sideways; the job and file bookkeeping columns come last.
TABLE_COLUMNS = [
    INVESTOR_COLUMN, REPORT_COLUMN, "score", *DIMENSION_LABELS, "paragraph_text",
    "explanation", "status", "status_reason", JOB_COLUMN, SOURCE_COLUMN, "custom_id",
]


def investor_from_report(name: str) -> str:
    """``FfBF_NordicPension_Annual_Report_2024.pdf`` -> ``NordicPension``; ``""`` when the name
    has no second underscore-separated part."""
    parts = Path(str(name)).stem.split("_") if name else []
    return parts[1].strip() if len(parts) > 1 else ""


def collected_jobs(jobs: Iterable[Job]) -> list[Job]:
    """Jobs whose results were collected, newest first. Retry jobs are left out: their answers
    are laid over their original job's results when that job is collected."""
    return sorted((j for j in jobs if j.collected_at and j.output_files and not j.retry_of),
                  key=lambda j: j.created_at, reverse=True)


def load_results(jobs: Sequence[Job]) -> pd.DataFrame:
    """The collected results of the given jobs as one frame, with ``task``, ``job_id`` and
    ``investor`` columns added and score columns as nullable integers. The input files' other
    columns (``page``, ``paragraph_id`` ...) come after the product's own, as text (empty for
    the rows of a job whose files did not have them)."""
    frames = []
    for job in jobs:
        if not job.output_files:
            raise CoreError(f"Job {job.id} has no collected results yet. Collect it on the Monitor page first.")
        missing = [p for p in job.output_files if not Path(p).is_file()]
        if missing:
            raise CoreError(f"Job {job.id}: result file {missing[0]} is missing. Collect the job again.")
        part = read_results(Path(p) for p in job.output_files)
        part.insert(0, JOB_COLUMN, job.id)
        part.insert(0, TASK_COLUMN, job.task)
        frames.append(part)
    if not frames:
        return empty_frame()
    frame = pd.concat(frames, ignore_index=True)
    for column in SCORE_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column].replace("", None), errors="coerce").astype("Int64")
        else:
            frame[column] = pd.array([pd.NA] * len(frame), dtype="Int64")
    for column in ("pdf_file_name", "csv_file_name", "paragraph_text", "explanation", "status", "status_reason"):
        if column not in frame.columns:
            frame[column] = ""
        frame[column] = frame[column].fillna("").astype(str)
    reports = frame[REPORT_COLUMN]
    investors = {name: investor_from_report(name) for name in reports.unique()}
    frame.insert(2, INVESTOR_COLUMN, reports.map(investors))
    extra = input_columns(frame.columns)
    if extra:  # stacked jobs (and the columns added above) put product columns after input ones
        frame = frame[[c for c in frame.columns if is_product_column(c)] + extra]
        if len(frames) > 1:
            frame[extra] = frame[extra].fillna("")
    return frame


def empty_frame() -> pd.DataFrame:
    columns = [TASK_COLUMN, JOB_COLUMN, INVESTOR_COLUMN, REPORT_COLUMN, SOURCE_COLUMN, "paragraph_text",
               "explanation", "status", "status_reason", "custom_id"]
    frame = pd.DataFrame({c: pd.Series(dtype=str) for c in columns})
    for column in SCORE_COLUMNS:
        frame[column] = pd.Series(dtype="Int64")
    return frame


@dataclass
class Filters:
    """What the user narrowed the results to. Empty lists mean "no restriction"."""

    tasks: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    investors: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    scores: dict[str, list[int | str]] = field(default_factory=dict)  # column -> 0, 1 and/or NO_SCORE
    text: str = ""


def filter_options(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Distinct values to offer in each filter, sorted."""

    def distinct(column: str) -> list[str]:
        return sorted(str(v) for v in frame[column].unique()) if column in frame.columns else []

    return {
        "tasks": distinct(TASK_COLUMN),
        "jobs": distinct(JOB_COLUMN),
        "sources": distinct(SOURCE_COLUMN),
        "reports": distinct(REPORT_COLUMN),
        "investors": distinct(INVESTOR_COLUMN),
        "statuses": distinct("status"),
        "score_columns": present_score_columns(frame),
    }


FILTERS = ("tasks", "jobs", "sources", "reports", "investors", "statuses")


def shown_filters(options: dict[str, list[str]]) -> list[str]:
    """The filters (keys of :func:`filter_options`) worth showing, in order. The task and job
    filters are left out when only one task / one job is loaded: they could not narrow
    anything, and the loaded jobs are listed just above the filters."""
    return [name for name in FILTERS if name not in ("tasks", "jobs") or len(options.get(name, [])) > 1]


def present_score_columns(frame: pd.DataFrame) -> list[str]:
    """Score columns of the tasks present in the frame."""
    tasks = set(frame[TASK_COLUMN].unique()) if TASK_COLUMN in frame.columns else set()
    return [c for c, task in SCORE_COLUMNS.items() if task in tasks]


def apply_filters(frame: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """Rows matching every filter. A score filter only narrows the rows of its own task."""
    mask = pd.Series(True, index=frame.index)
    for values, column in (
        (filters.tasks, TASK_COLUMN),
        (filters.jobs, JOB_COLUMN),
        (filters.sources, SOURCE_COLUMN),
        (filters.reports, REPORT_COLUMN),
        (filters.investors, INVESTOR_COLUMN),
        (filters.statuses, "status"),
    ):
        if values:
            mask &= frame[column].isin(values)
    for column, wanted in filters.scores.items():
        if column not in frame.columns or column not in SCORE_COLUMNS:
            continue
        numbers = [int(v) for v in wanted if v != NO_SCORE]
        values = frame[column]
        keep = values.isin(numbers).fillna(False).astype(bool)
        if NO_SCORE in wanted:
            keep |= values.isna()
        other_task = frame[TASK_COLUMN] != SCORE_COLUMNS[column]
        mask &= keep | other_task
    text = filters.text.strip()
    if text:
        hit = frame["paragraph_text"].str.contains(text, case=False, regex=False)
        hit |= frame["explanation"].str.contains(text, case=False, regex=False)
        mask &= hit
    return frame[mask]


def score_distribution(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows per score value for every score column present: columns ``dimension``, ``score``
    (``0``, ``1`` or ``no score``), ``rows``."""
    records = []
    for column in present_score_columns(frame):
        values = frame.loc[frame[TASK_COLUMN] == SCORE_COLUMNS[column], column]
        counts = values.astype("string").fillna(NO_SCORE).value_counts()
        for score in ("0", "1", NO_SCORE):
            if counts.get(score, 0) or score != NO_SCORE:
                records.append({"dimension": score_label(column), "score": score, "rows": int(counts.get(score, 0))})
    return pd.DataFrame(records, columns=["dimension", "score", "rows"])


def scores_by(frame: pd.DataFrame, by: str = INVESTOR_COLUMN, *, top: int = TOP_GROUPS) -> pd.DataFrame:
    """Per investor (or report): rows and, per score column, the rows scored 1 and their share
    among scored rows. Long format: ``group``, ``dimension``, ``rows``, ``scored``, ``ones``,
    ``share``; the ``top`` groups with most rows, biggest first, dimensions in task order."""
    if by not in (INVESTOR_COLUMN, REPORT_COLUMN, SOURCE_COLUMN, JOB_COLUMN):
        raise CoreError(f"Cannot group results by '{by}'.")
    records = []
    groups = frame[by].replace("", "(unknown)")
    biggest = groups.value_counts().head(top).index
    for column in present_score_columns(frame):
        part = frame[frame[TASK_COLUMN] == SCORE_COLUMNS[column]]
        g = groups.loc[part.index]
        keep = g.isin(biggest)
        values = part.loc[keep, column]
        grouped = pd.DataFrame({"group": g[keep], "scored": values.notna(), "ones": values.eq(1).fillna(False)})
        agg = grouped.groupby("group").agg(rows=("scored", "size"), scored=("scored", "sum"), ones=("ones", "sum"))
        for name, row in agg.iterrows():
            scored = int(row["scored"])
            records.append({
                "group": name, "dimension": score_label(column), "rows": int(row["rows"]), "scored": scored,
                "ones": int(row["ones"]), "share": (row["ones"] / scored) if scored else 0.0,
            })
    out = pd.DataFrame(records, columns=["group", "dimension", "rows", "scored", "ones", "share"])
    rank = {name: i for i, name in enumerate(biggest)}
    order = {score_label(c): i for i, c in enumerate(SCORE_COLUMNS)}
    keys = pd.DataFrame({"g": out["group"].map(rank), "d": out["dimension"].map(order)})
    return out.iloc[keys.sort_values(["g", "d"], kind="stable").index].reset_index(drop=True)


def scores_by_note(frame: pd.DataFrame, by: str = INVESTOR_COLUMN, *, top: int = TOP_GROUPS) -> str | None:
    """A note for the by-group chart when it leaves groups out, else ``None``."""
    n = frame[by].replace("", "(unknown)").nunique() if by in frame.columns else 0
    if n <= top:
        return None
    noun = {INVESTOR_COLUMN: "investors", REPORT_COLUMN: "reports", SOURCE_COLUMN: "source files"}.get(by, "groups")
    return f"Showing the {top} of {n:,} {noun} with the most rows; filter to see the others."


def combination_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Task 2: rows for each of the eight combinations of the three dimensions (scored rows
    only). Columns: the three score columns, ``combination`` (readable), ``rows``, ``share``."""
    dims = list(ASSETIZATION_FEATURES.score_columns)
    part = frame[frame[TASK_COLUMN] == ASSETIZATION_FEATURES.name] if TASK_COLUMN in frame else frame.iloc[0:0]
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
    """Task 2: for each dimension the share of scored rows with score 1."""
    part = frame[frame[TASK_COLUMN] == ASSETIZATION_FEATURES.name] if TASK_COLUMN in frame else frame.iloc[0:0]
    records = []
    for column in ASSETIZATION_FEATURES.score_columns:
        values = part[column].dropna() if column in part else pd.Series(dtype="Int64")
        ones = int(values.eq(1).sum())
        records.append({"dimension": score_label(column), "scored": len(values), "ones": ones,
                        "share": ones / len(values) if len(values) else 0.0})
    return pd.DataFrame(records, columns=["dimension", "scored", "ones", "share"])


def table_rows(frame: pd.DataFrame, limit: int = TABLE_ROW_LIMIT) -> pd.DataFrame:
    """The columns worth reading on screen (those of the present tasks), at most ``limit`` rows.

    Score columns are text, so no cell reads "None": ``0``/``1``, ``no score`` for a row of
    that column's task without a score (see its status), and empty for rows of another task."""
    present = set(present_score_columns(frame))
    columns = [c for c in TABLE_COLUMNS if c in frame.columns and (c not in SCORE_COLUMNS or c in present)]
    rows = frame[columns].head(limit).copy()
    tasks = frame[TASK_COLUMN].head(limit) if TASK_COLUMN in frame.columns else None
    for column in present.intersection(columns):
        text = rows[column].astype("string").fillna(NO_SCORE).astype(str)
        if tasks is not None:
            text = text.where(tasks == SCORE_COLUMNS[column], "")
        rows[column] = text
    return rows


def export_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The filtered rows as written to a download: explore columns first, then the rest."""
    present = set(present_score_columns(frame))
    drop = [c for c in SCORE_COLUMNS if c not in present]
    return frame.drop(columns=drop)


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV with BOM, so Excel opens accents correctly. Text that a spreadsheet would
    read as a formula gets an apostrophe in front (``csv_bytes`` applies
    :mod:`core.exportsafe`)."""
    return csv_bytes(export_frame(frame), excel_bom=True)


def to_xlsx_bytes(frame: pd.DataFrame) -> bytes:
    """An Excel workbook with one sheet ``results``, every text in a string cell holding its
    exact value.

    openpyxl stores a text starting with ``=`` as a formula (and ``#N/A``, ``#REF!``... as
    error values), which Excel evaluates on opening: paragraphs and model explanations are
    untrusted, so those cells are turned back into string cells. A string cell is never
    evaluated, so no apostrophe is added here (unlike the CSV downloads)."""
    if len(frame) > 1_048_575:
        raise CoreError("Too many rows for one Excel sheet; download CSV instead.")
    table = export_frame(frame)
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        table.to_excel(writer, index=False, sheet_name="results")
        _store_as_text(writer.sheets["results"], table)
    return _keep_carriage_returns(buffer.getvalue())


def _store_as_text(sheet: Worksheet, table: pd.DataFrame) -> None:
    """Make string cells of the cells openpyxl typed as formulas or errors. ``table`` was
    written with a one-row header and no index, so its cell (i, j) is sheet cell (i+2, j+1)."""
    for j in range(table.shape[1]):
        column = table.iloc[:, j]
        if not is_text(column.dtype):
            continue
        # openpyxl's own test (Cell._bind_value), run only on text cells; cheap next to
        # writing the cells, and it touches only the few cells that need it
        values = column.to_numpy()
        typed = np.fromiter((isinstance(v, str) and (v.startswith("=") or v in ERROR_CODES) for v in values),
                            dtype=bool, count=len(values))
        for i in np.flatnonzero(typed):
            sheet.cell(row=int(i) + 2, column=j + 1).data_type = "s"


def _keep_carriage_returns(data: bytes) -> bytes:
    r"""``data`` with every carriage return in the sheets' XML written as ``&#13;``.

    openpyxl writes a CR inside a text as a raw byte, and XML readers (openpyxl's among them)
    turn a raw CR into a line feed (XML 1.0, section 2.11), so ``"\r=1"`` would come back as
    ``"\n=1"``. A character reference survives. openpyxl emits no CR of its own, so every raw
    CR in a sheet is cell text. Workbooks without one are returned as they are."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        sheets = {info.filename: source.read(info) for info in source.infolist()
                  if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml")}
        if not any(b"\r" in xml for xml in sheets.values()):
            return data
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
            for info in source.infolist():
                if info.filename in sheets:
                    target.writestr(info, sheets[info.filename].replace(b"\r", b"&#13;"))
                else:
                    target.writestr(info, source.read(info))
    return out.getvalue()


def task_title(name: str) -> str:
    return TASKS[name].title if name in TASKS else name


def score_label(column: str) -> str:
    return DIMENSION_LABELS.get(column, "Score (task 1)" if column == "score" else column)
