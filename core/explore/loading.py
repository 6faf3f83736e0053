"""Loading collected results: the chosen jobs' result files into one frame, and task 1 joined
with task 2 into one row per paragraph.

Two shapes of frame are used. :func:`load_results` stacks the result rows of the chosen jobs
(one row per job and paragraph, with a ``task`` column). :func:`paragraph_frame` turns that into
one row per paragraph: when task 1 and task 2 are loaded together, each task-2 answer joins the
task-1 row of its paragraph, on the task-1 job and the ``custom_id`` (``s<source>-r<row>``, the
same in a task-2 job as in the task-1 job it read). Every function of :mod:`core.explore` reads either shape.

Column order of a mixed (task 1 + task 2) frame and its downloads, fixed:
:data:`PARAGRAPH_COLUMNS` (``job_id`` is the task-1 job; ``task2_job_id`` the task-2 job), then
task 1's answer and bookkeeping (``score``, ``explanation``, ``status``, ``status_reason``,
``model`` ...), then task 2's (``intrinsic_value_score``, ``cash_flow_score``,
``ownership_control_score``, then ``task2_explanation``, ``task2_status``, ... : every task-2
column that task 1 also has is prefixed ``task2_``), then the input files' own columns
(``page``, ``paragraph_id`` ...) in their order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from core.columns import input_columns, is_product_column
from core.errors import CoreError
from core.explore.columns import (
    INVESTOR_COLUMN,
    JOB_COLUMN,
    PARAGRAPH_COLUMNS,
    REPORT_COLUMN,
    SCORE_COLUMNS,
    SOURCE_COLUMN,
    TASK2_JOB_COLUMN,
    TASK2_PREFIX,
    TASK_COLUMN,
)
from core.investors import InvestorMap, apply_investors
from core.models import Job
from core.results import read_results
from core.tasks import ASSETIZATION_FEATURES, INVESTMENT_ACTIVITY


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
