"""Filters: what the user narrowed the results to, the values each filter offers, which
filters are worth showing, and the rows that match."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import pandas as pd

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
    loaded_tasks,
    present_score_columns,
    task_rows,
)


FILTERS = ("tasks", "jobs", "sources", "reports", "investors", "statuses")


@dataclass(frozen=True)
class Filters:
    """What the user narrowed the results to. Empty means "no restriction".

    Lists and the ``scores`` mapping (column -> 0, 1 and/or NO_SCORE) may be given; they are
    kept as tuples, so equal filters are equal and hashable (a cache key for what they select)."""

    tasks: Sequence[str] = ()
    jobs: Sequence[str] = ()
    sources: Sequence[str] = ()
    reports: Sequence[str] = ()
    investors: Sequence[str] = ()
    statuses: Sequence[str] = ()
    scores: Mapping[str, Sequence[int | str]] | tuple[tuple[str, tuple[int | str, ...]], ...] = ()
    text: str = ""

    def __post_init__(self) -> None:
        for name in FILTERS:
            object.__setattr__(self, name, tuple(getattr(self, name)))
        scores = dict(self.scores)
        object.__setattr__(self, "scores", tuple((column, tuple(scores[column])) for column in sorted(scores)))

    @property
    def narrows(self) -> bool:
        """Whether any filter is set (else every row matches)."""
        return any(getattr(self, name) for name in FILTERS) or any(w for _, w in self.scores) or bool(self.text.strip())


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



def shown_filters(options: dict[str, list[str]]) -> list[str]:
    """The filters (keys of :func:`filter_options`) worth showing, in order. The task and job
    filters are left out when only one task / one job is loaded: they could not narrow
    anything, and the loaded jobs are listed just above the filters."""
    return [name for name in FILTERS if name not in ("tasks", "jobs") or len(options.get(name, [])) > 1]


def apply_filters(frame: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """Rows matching every filter. In a stacked frame a score filter only narrows the rows of
    its own task; in a one-row-per-paragraph frame it keeps the paragraphs with that score
    (``no score``: the task answered the paragraph without a score, see its status).
    With no filter set this is ``frame`` itself, not a copy."""
    if not filters.narrows:
        return frame
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
    for column, wanted in filters.scores:
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
