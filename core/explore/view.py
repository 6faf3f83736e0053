"""What the Explore page derives from a set of loaded results, each value computed once.

The page runs again on every click, and a new browser tab runs it from the start. With
100,000 rows, filtering, counting, sorting and checking the Excel limits take a few tenths
of a second each time. A :class:`ResultsView` holds the loaded rows and remembers what was
derived from them per filter (:class:`MatchingRows`), grouping, sort and page
(``functools.lru_cache``, a few entries each, since a filtered copy of 100,000 rows is large;
a sort is kept as the rows' order, not a copy). The page keeps one per set of loaded files, shared by every session that loads
them, so a rerun or another tab only draws.

Nothing here changes the loaded frame: every value is a new frame or the frame itself.
"""

from __future__ import annotations

from functools import cached_property, lru_cache, partial
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from core.explore.aggregates import (
    combination_counts, dimension_shares, score_distribution, scores_by, scores_by_note,
)
from core.explore.columns import INVESTOR_COLUMN, present_score_columns
from core.explore.downloads import excel_problem
from core.explore.filters import Filters, apply_filters, filter_options
from core.explore.labels import job_score_meanings
from core.explore.table import FILE_ORDER, PAGE_SIZE, page_slice, sorted_positions, table_rows
from core.models import Job

FILTERED_KEPT = 3  # filtered copies kept per view (each up to the size of the loaded rows)
SORTS_KEPT = 4  # sort orders kept per filter (8 bytes a row)
SMALL_KEPT = 32  # chart data and table pages (small) kept per filter


class MatchingRows:
    """The rows matching one set of filters and what the page shows of them.

    The remembering functions hold the rows, never this object, so a view dropped from the
    page's cache is freed at once (no reference cycle waits for the garbage collector)."""

    def __init__(self, rows: pd.DataFrame, *, filtered: bool) -> None:
        self.rows = rows
        self.filtered = filtered  # fewer rows than were loaded
        order = lru_cache(maxsize=SORTS_KEPT)(partial(sort_order, rows))
        self.page: Callable[..., pd.DataFrame] = lru_cache(maxsize=SMALL_KEPT)(partial(table_page, rows, order))
        self.by_group: Callable[..., tuple[pd.DataFrame, str | None]] = lru_cache(maxsize=SMALL_KEPT)(
            partial(shares_by_group, rows))

    @cached_property
    def present(self) -> list[str]:
        """The score columns with a value in these rows (:func:`present_score_columns`)."""
        return present_score_columns(self.rows)

    @cached_property
    def distribution(self) -> pd.DataFrame:
        """Rows per score value (:func:`score_distribution`)."""
        return score_distribution(self.rows)

    @cached_property
    def combinations(self) -> pd.DataFrame:
        """Task 2: rows per combination of its three dimensions (:func:`combination_counts`)."""
        return combination_counts(self.rows)

    @cached_property
    def dimension_shares(self) -> pd.DataFrame:
        """Task 2: each dimension's share scored 1 with its interval (:func:`dimension_shares`)."""
        return dimension_shares(self.rows)

    @cached_property
    def excel_problem(self) -> str | None:
        """Why these rows cannot be downloaded as Excel, or None (:func:`excel_problem`)."""
        return excel_problem(self.rows)


def sort_order(rows: pd.DataFrame, sort_by: str, descending: bool) -> np.ndarray:
    """:func:`sorted_positions` with positional arguments, for ``lru_cache``."""
    return sorted_positions(rows, sort_by=sort_by, descending=descending)


def table_page(rows: pd.DataFrame, order: Callable[[str, bool], np.ndarray], sort_by: str = FILE_ORDER,
               descending: bool = False, page: int = 1, page_size: int = PAGE_SIZE) -> pd.DataFrame:
    """Page ``page`` of ``rows`` sorted by ``sort_by`` (every row sorted), as the table shows
    them (:func:`table_rows`)."""
    return table_rows(rows.iloc[order(sort_by, descending)[page_slice(page, page_size)]])


def shares_by_group(rows: pd.DataFrame, by: str = INVESTOR_COLUMN, dimensions: tuple[str, ...] | None = None,
                    ) -> tuple[pd.DataFrame, str | None]:
    """The shares per investor or report (:func:`scores_by`) and the note saying which groups
    were left out (:func:`scores_by_note`)."""
    return scores_by(rows, by, columns=list(dimensions) if dimensions else None), scores_by_note(rows, by)


class ResultsView:
    """Loaded results (one row per paragraph) and what is derived from them, computed once."""

    def __init__(self, frame: pd.DataFrame, jobs: Sequence[Job]) -> None:
        self.frame = frame
        self.jobs = tuple(jobs)
        #: The rows matching a :class:`Filters`; equal filters give the same object.
        self.matching: Callable[[Filters], MatchingRows] = lru_cache(maxsize=FILTERED_KEPT)(
            partial(matching_rows, frame))

    @cached_property
    def options(self) -> dict[str, list[str]]:
        """The values each filter offers (:func:`filter_options`)."""
        return filter_options(self.frame)

    @cached_property
    def meanings(self) -> dict[str, str]:
        """What each score means, quoted from the jobs' prompts (:func:`job_score_meanings`)."""
        return job_score_meanings(list(self.jobs))


def matching_rows(frame: pd.DataFrame, filters: Filters) -> MatchingRows:
    """The rows of ``frame`` matching ``filters`` (:func:`apply_filters`)."""
    rows = apply_filters(frame, filters)
    return MatchingRows(rows, filtered=len(rows) < len(frame))
