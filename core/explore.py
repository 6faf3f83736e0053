"""Explore collected results: load jobs into one frame, filter, aggregate for charts, export.

Plain pandas; used by the dashboard's Explore page and usable from a notebook.

Two shapes of frame are used. :func:`load_results` stacks the result rows of the chosen jobs
(one row per job and paragraph, with a ``task`` column). :func:`paragraph_frame` turns that into
one row per paragraph: when task 1 and task 2 are loaded together, each task-2 answer joins the
task-1 row of its paragraph, on the task-1 job and the ``custom_id`` (``s<source>-r<row>``, the
same in a task-2 job as in the task-1 job it read). Every function below reads either shape.

Column order of a mixed (task 1 + task 2) frame and its downloads, fixed:
:data:`PARAGRAPH_COLUMNS` (``job_id`` is the task-1 job; ``task2_job_id`` the task-2 job), then
task 1's answer and bookkeeping (``score``, ``explanation``, ``status``, ``status_reason``,
``model`` ...), then task 2's (``intrinsic_value_score``, ``cash_flow_score``,
``ownership_control_score``, then ``task2_explanation``, ``task2_status``, ... : every task-2
column that task 1 also has is prefixed ``task2_``), then the input files' own columns
(``page``, ``paragraph_id`` ...) in their order.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from core.columns import input_columns, is_product_column
from core.csvout import csv_bytes
from core.errors import CoreError
from core.markdown import markdown_literal  # noqa: F401  (the page reads it here)
from core.investors import InvestorMap, apply_investors, investor_from_report  # noqa: F401  (core.evaluate reads it here)
from core.models import Job
from core.prompts import score_meanings
from core.results import read_results
from core.safefs import safe_name
from core.tasks import ASSETIZATION_FEATURES, INVESTMENT_ACTIVITY, TASKS
from core.xlsxout import limit_problem, xlsx_bytes

# Columns the explore frame adds to the result CSV columns.
TASK_COLUMN = "task"
JOB_COLUMN = "job_id"
INVESTOR_COLUMN = "investor"
SOURCE_COLUMN = "csv_file_name"
REPORT_COLUMN = "pdf_file_name"
NO_SCORE = "no score"
UNKNOWN_GROUP = "(unknown)"
TASK2_PREFIX = "task2_"
TASK2_JOB_COLUMN = TASK2_PREFIX + JOB_COLUMN
PAGE_SIZE = 500  # rows per table page; every row is reachable and sorting sorts them all
TOP_GROUPS = 15  # investors / reports in the by-group chart; more do not read at half the page width
CONFIDENCE = 0.95  # of the Wilson interval drawn on every share

SCORE_COLUMNS: dict[str, str] = {  # score column -> task it belongs to
    **{c: INVESTMENT_ACTIVITY.name for c in INVESTMENT_ACTIVITY.score_columns},
    **{c: ASSETIZATION_FEATURES.name for c in ASSETIZATION_FEATURES.score_columns},
}
DIMENSION_LABELS = {
    "intrinsic_value_score": "Intrinsic value",
    "cash_flow_score": "Cash flow",
    "ownership_control_score": "Ownership / control",
}
#: The columns that describe the paragraph itself, first in every frame and download.
PARAGRAPH_COLUMNS = [JOB_COLUMN, TASK2_JOB_COLUMN, INVESTOR_COLUMN, REPORT_COLUMN, SOURCE_COLUMN,
                     "paragraph_text", "custom_id", "row"]
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


def collected_jobs(jobs: Iterable[Job]) -> list[Job]:
    """Jobs whose results were collected, newest first. Retry jobs are left out: their answers
    are laid over their original job's results when that job is collected."""
    return sorted((j for j in jobs if j.collected_at and j.output_files and not j.retry_of),
                  key=lambda j: j.created_at, reverse=True)


def result_files_signature(jobs: Sequence[Job]) -> tuple[tuple[str, str, int, int], ...]:
    """``(job id, path, mtime_ns, size)`` of every result file of ``jobs``: what a cache of
    :func:`load_results` is keyed on, so a re-collected job is read again and nothing else is.
    A missing file gets ``-1`` (loading then says which file is missing)."""
    signature = []
    for job in jobs:
        for path in job.output_files:
            try:
                st = Path(path).stat()
                signature.append((job.id, str(path), st.st_mtime_ns, st.st_size))
            except OSError:
                signature.append((job.id, str(path), -1, -1))
    return tuple(signature)


def load_results(jobs: Sequence[Job], *, investors: InvestorMap | None = None) -> pd.DataFrame:
    """The collected results of the given jobs stacked in one frame, with ``task``, ``job_id``
    and ``investor`` columns added (the investor as ``investors`` says; by default guessed from
    the report's file name) and score columns as nullable integers. The input files' other
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
    extra = input_columns(frame.columns)
    if extra and len(frames) > 1:
        frame[extra] = frame[extra].fillna("")
    frame = apply_investors(frame, investors or InvestorMap(), target=INVESTOR_COLUMN, report_column=REPORT_COLUMN)
    if extra:  # stacked jobs (and the columns added above) put product columns after input ones
        frame = frame[[c for c in frame.columns if is_product_column(c)] + extra]
    return frame


def with_investors(frame: pd.DataFrame, investors: InvestorMap) -> pd.DataFrame:
    """``frame`` (either shape) with its investor column recomputed from ``investors``."""
    return apply_investors(frame, investors, target=INVESTOR_COLUMN, report_column=REPORT_COLUMN)


def empty_frame() -> pd.DataFrame:
    """A stacked frame with no row."""
    columns = [TASK_COLUMN, JOB_COLUMN, INVESTOR_COLUMN, REPORT_COLUMN, SOURCE_COLUMN, "paragraph_text",
               "explanation", "status", "status_reason", "custom_id"]
    frame = pd.DataFrame({c: pd.Series(dtype=str) for c in columns})
    for column in SCORE_COLUMNS:
        frame[column] = pd.Series(dtype="Int64")
    return frame


def paragraph_frame(frame: pd.DataFrame, jobs: Sequence[Job]) -> pd.DataFrame:
    """One row per paragraph. With one task loaded this is ``frame`` itself. With both, each
    task-2 row joins the task-1 row of its paragraph (same ``custom_id`` in the task-1 job the
    task-2 job read, its ``parent_job_id``); a task-2 row whose task-1 job is not loaded keeps
    a row of its own, with empty task-1 columns. When two loaded task-2 jobs answer the same
    paragraph, the newer job's answer is kept. Columns in the order the module docstring
    gives."""
    if TASK_COLUMN not in frame.columns or frame[TASK_COLUMN].nunique() < 2:
        return frame
    task1 = frame[frame[TASK_COLUMN] == INVESTMENT_ACTIVITY.name].drop(columns=[TASK_COLUMN])
    task2 = frame[frame[TASK_COLUMN] == ASSETIZATION_FEATURES.name].drop(columns=[TASK_COLUMN])
    inputs = input_columns(frame.columns)
    shared = [c for c in PARAGRAPH_COLUMNS if c in frame.columns and c not in (JOB_COLUMN, "row")] + inputs
    task1_own = [c for c in task1.columns
                 if c not in shared and c != JOB_COLUMN and c not in ASSETIZATION_FEATURES.score_columns]
    task2_own = [c for c in task2.columns if c not in shared and c not in INVESTMENT_ACTIVITY.score_columns]
    renamed = {c: c if c in ASSETIZATION_FEATURES.score_columns else TASK2_PREFIX + c for c in task2_own}

    created = {j.id: j.created_at for j in jobs}
    loaded_task1 = set(task1[JOB_COLUMN].unique())
    parents = {j.id: j.parent_job_id for j in jobs}
    key_job = task2[JOB_COLUMN].map(lambda job: parents.get(job) if parents.get(job) in loaded_task1 else "")
    answers = task2[task2_own].rename(columns=renamed)
    answers.insert(0, "_key_job", key_job.to_numpy())
    answers.insert(1, "custom_id", task2["custom_id"].to_numpy())
    answers.insert(2, "_created", task2[JOB_COLUMN].map(created).fillna("").to_numpy())
    answers = answers.sort_values("_created", ascending=False, kind="stable")

    joined = answers[answers["_key_job"] != ""].drop_duplicates(["_key_job", "custom_id"])
    merged = task1[shared + [JOB_COLUMN] + task1_own].merge(
        joined.drop(columns=["_created"]), how="left", left_on=[JOB_COLUMN, "custom_id"],
        right_on=["_key_job", "custom_id"], sort=False, validate="many_to_one",
    ).drop(columns=["_key_job"])
    orphans = task2[(key_job == "").to_numpy()]
    if not orphans.empty:
        alone = orphans[shared].copy()
        alone[JOB_COLUMN] = ""
        alone = pd.concat([alone, orphans[task2_own].rename(columns=renamed)], axis=1)
        merged = pd.concat([merged, alone], ignore_index=True)
    merged.index = pd.RangeIndex(len(merged))
    for column in SCORE_COLUMNS:
        merged[column] = merged[column].astype("Int64")
    text_columns = [c for c in merged.columns if c not in SCORE_COLUMNS]
    merged[text_columns] = merged[text_columns].fillna("")
    task1_cols = [c for c in task1_own if c not in SCORE_COLUMNS and c != "row"]
    task2_cols = [renamed[c] for c in task2_own if c not in SCORE_COLUMNS and renamed[c] != TASK2_JOB_COLUMN]
    order = ([c for c in PARAGRAPH_COLUMNS if c in merged.columns]
             + list(INVESTMENT_ACTIVITY.score_columns) + task1_cols
             + list(ASSETIZATION_FEATURES.score_columns) + task2_cols + inputs)
    return merged[order]


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


def _columns_of(frame: pd.DataFrame, *names: str) -> list[str]:
    return [n for n in names if n in frame.columns]


def filter_options(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Distinct values to offer in each filter, sorted."""

    def distinct(*columns: str) -> list[str]:
        values: set[str] = set()
        for column in _columns_of(frame, *columns):
            values.update(str(v) for v in frame[column].unique())
        values.discard("")
        return sorted(values)

    return {
        "tasks": loaded_tasks(frame),
        "jobs": distinct(JOB_COLUMN, TASK2_JOB_COLUMN),
        "sources": distinct(SOURCE_COLUMN),
        "reports": distinct(REPORT_COLUMN),
        "investors": sorted(str(v) for v in frame[INVESTOR_COLUMN].unique()) if INVESTOR_COLUMN in frame else [],
        "statuses": distinct("status", TASK2_PREFIX + "status"),
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
    tasks = set(loaded_tasks(frame))
    return [c for c, task in SCORE_COLUMNS.items() if task in tasks and c in frame.columns]


def apply_filters(frame: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """Rows matching every filter. In a stacked frame a score filter only narrows the rows of
    its own task; in a one-row-per-paragraph frame it keeps the paragraphs with that score
    (``no score``: the task answered the paragraph without a score, see its status)."""
    mask = pd.Series(True, index=frame.index)
    if filters.tasks:
        reached = pd.Series(False, index=frame.index)
        for task in filters.tasks:
            reached |= task_rows(frame, task)
        mask &= reached
    for values, columns in (
        (filters.jobs, (JOB_COLUMN, TASK2_JOB_COLUMN)),
        (filters.sources, (SOURCE_COLUMN,)),
        (filters.reports, (REPORT_COLUMN,)),
        (filters.investors, (INVESTOR_COLUMN,)),
        (filters.statuses, ("status", TASK2_PREFIX + "status")),
    ):
        if values:
            hit = pd.Series(False, index=frame.index)
            for column in _columns_of(frame, *columns):
                hit |= frame[column].isin(values)
            mask &= hit
    stacked = TASK_COLUMN in frame.columns
    for column, wanted in filters.scores.items():
        if column not in frame.columns or column not in SCORE_COLUMNS or not wanted:
            continue
        numbers = [int(v) for v in wanted if v != NO_SCORE]
        values = frame[column]
        keep = values.isin(numbers).fillna(False).astype(bool)
        own_task = task_rows(frame, SCORE_COLUMNS[column])
        if NO_SCORE in wanted:
            keep |= values.isna() & own_task
        mask &= (keep | ~own_task) if stacked else keep
    text = filters.text.strip()
    if text:
        hit = pd.Series(False, index=frame.index)
        for column in _columns_of(frame, "paragraph_text", "explanation", TASK2_PREFIX + "explanation"):
            hit |= frame[column].str.contains(text, case=False, regex=False)
        mask &= hit
    return frame[mask]


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


def sorted_rows(frame: pd.DataFrame, *, sort_by: str = FILE_ORDER, descending: bool = False) -> pd.DataFrame:
    """Every row of ``frame`` sorted by ``sort_by`` (rows without a value last; ties keep file
    order), or as loaded for :data:`FILE_ORDER` or a column the frame lacks."""
    if sort_by == FILE_ORDER or sort_by not in frame.columns:
        return frame
    return frame.sort_values(sort_by, ascending=not descending, na_position="last", kind="stable")


def page_count(n_rows: int, page_size: int = PAGE_SIZE) -> int:
    """Pages needed to show ``n_rows`` rows (at least one)."""
    return max(1, -(-n_rows // page_size))


def table_rows(frame: pd.DataFrame, *, page: int = 1, page_size: int | None = None) -> pd.DataFrame:
    """The columns worth reading on screen (those of the present tasks), for page ``page``
    (1-based) of ``page_size`` rows, or every row when ``page_size`` is ``None``. The index
    is kept, so a selected row leads back to its row in ``frame``.

    Score columns are text, so no cell reads "None": ``0``/``1``, ``no score`` for a row its
    task answered without a score (see its status), and empty for rows the task never saw."""
    present = set(present_score_columns(frame))
    columns = [c for c in TABLE_COLUMNS if c in frame.columns and (c not in SCORE_COLUMNS or c in present)]
    if page_size is not None:
        start = (max(1, page) - 1) * page_size
        frame = frame.iloc[start:start + page_size]
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


# ----- what the scores mean -----------------------------------------------------------------

def job_score_meanings(jobs: Sequence[Job]) -> dict[str, str]:
    """Score column -> meaning for the tasks of ``jobs``, each from the newest job's recorded
    system prompt (what the model was asked)."""
    meanings: dict[str, str] = {}
    for job in sorted(jobs, key=lambda j: j.created_at):  # newest last, so it wins
        if job.task in TASKS:
            meanings.update(score_meanings(job.task, (job.prompts or {}).get("system") or None))
    return meanings


def short_meaning(meaning: str, limit: int = 240) -> str:
    """A one-line digest of a meaning for a tooltip: the first sentence of each of its
    paragraphs (before a list of examples), joined by `` / ``, cut at ``limit`` characters."""
    heads = []
    for paragraph in re.split(r"\n\s*\n", meaning or ""):
        text = " ".join(paragraph.split())
        head = re.split(r"(?<=\.)\s|,? for example:|:\s+-\s", text, maxsplit=1)[0].strip()
        if head:
            heads.append(head)
    digest = " / ".join(heads)
    return digest if len(digest) <= limit else digest[: limit - 1] + "…"


# ----- downloads ----------------------------------------------------------------------------

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
    frame the fixed order of the module docstring); score columns of tasks not loaded are
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


def task_title(name: str) -> str:
    """A task's readable title ("Investment activity (task 1)"), or ``name`` itself."""
    return TASKS[name].title if name in TASKS else name


def score_label(column: str) -> str:
    """A score column's readable name, as in the charts."""
    return DIMENSION_LABELS.get(column, "Score (task 1)" if column == "score" else column)
