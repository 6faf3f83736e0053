"""Explore collected results: load jobs into one frame, filter, aggregate for charts, export.

Plain pandas; used by the dashboard's Explore page and usable from a notebook. Two shapes of
frame are used, the stacked one (one row per job and paragraph) and one row per paragraph
(task 2's answers joined to task 1's); every function reads either. :mod:`core.explore.loading`
describes both and the fixed column order of a mixed frame and its downloads.

Import the names below from ``core.explore``; the modules behind them, one job each:

- ``columns``: the frame's column names, :data:`SCORE_COLUMNS`, and which task a row or score
  column belongs to (:func:`task_rows`, :func:`loaded_tasks`, :func:`present_score_columns`)
- ``loading``: result files into a frame (:func:`load_results`, :func:`collected_jobs`,
  :func:`result_files_signature`, :func:`with_investors`) and :func:`paragraph_frame`
- ``filters``: :class:`Filters`, :func:`filter_options`, :func:`shown_filters`, :func:`apply_filters`
- ``aggregates``: chart data (:func:`score_distribution`, :func:`scores_by`,
  :func:`dimension_shares`, :func:`combination_counts`) and :func:`wilson_interval`
- ``table``: the table's columns, :func:`sorted_rows`, :func:`page_count`, :func:`table_rows`,
  :func:`row_detail`
- ``downloads``: :func:`export_frame`, :func:`to_csv_bytes`, :func:`to_xlsx_bytes`,
  :func:`excel_problem`, :func:`download_name`
- ``labels``: :func:`task_title`, :func:`score_label`, :func:`job_score_meanings`, :func:`short_meaning`
- ``view``: :class:`ResultsView` and :class:`MatchingRows`, what the Explore page derives from
  loaded results, each value computed once

``markdown_literal`` (:mod:`core.markdown`), ``InvestorMap``, ``apply_investors``,
``investor_from_report`` (:mod:`core.investors`) and ``score_meanings`` (:mod:`core.prompts`)
stay importable here, as they were from the single module ``core.explore`` once was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_names

if TYPE_CHECKING:
    from core.explore.aggregates import (
        CONFIDENCE, GROUP_COLUMNS, TOP_GROUPS, UNKNOWN_GROUP, combination_counts, dimension_shares,
        score_distribution, scores_by, scores_by_note, wilson_interval,
    )
    from core.explore.columns import (
        INVESTOR_COLUMN, JOB_COLUMN, NO_SCORE, PARAGRAPH_COLUMNS, REPORT_COLUMN, SCORE_COLUMNS, SOURCE_COLUMN,
        TASK2_JOB_COLUMN, TASK2_PREFIX, TASK_COLUMN, loaded_tasks, present_score_columns, task_rows,
    )
    from core.explore.downloads import (
        TASK_SHORT, download_name, excel_problem, export_frame, to_csv_bytes, to_xlsx_bytes,
    )
    from core.explore.filters import FILTERS, Filters, apply_filters, filter_options, shown_filters
    from core.explore.labels import (
        DIMENSION_LABELS, job_score_meanings, score_label, short_meaning, task_title,
    )
    from core.explore.loading import (
        collected_jobs, empty_frame, load_results, paragraph_frame, result_files_signature, with_investors,
    )
    from core.explore.table import (
        FILE_ORDER, PAGE_SIZE, SORT_COLUMNS, TABLE_COLUMNS, page_count, row_detail, sorted_rows, table_rows,
    )
    from core.explore.view import MatchingRows, ResultsView
    from core.investors import InvestorMap, apply_investors, investor_from_report
    from core.markdown import markdown_literal
    from core.prompts import score_meanings

__all__ = [
    "CONFIDENCE",
    "DIMENSION_LABELS",
    "FILE_ORDER",
    "FILTERS",
    "Filters",
    "GROUP_COLUMNS",
    "INVESTOR_COLUMN",
    "InvestorMap",
    "JOB_COLUMN",
    "MatchingRows",
    "NO_SCORE",
    "PAGE_SIZE",
    "PARAGRAPH_COLUMNS",
    "REPORT_COLUMN",
    "ResultsView",
    "SCORE_COLUMNS",
    "SORT_COLUMNS",
    "SOURCE_COLUMN",
    "TABLE_COLUMNS",
    "TASK2_JOB_COLUMN",
    "TASK2_PREFIX",
    "TASK_COLUMN",
    "TASK_SHORT",
    "TOP_GROUPS",
    "UNKNOWN_GROUP",
    "apply_filters",
    "apply_investors",
    "collected_jobs",
    "combination_counts",
    "dimension_shares",
    "download_name",
    "empty_frame",
    "excel_problem",
    "export_frame",
    "filter_options",
    "investor_from_report",
    "job_score_meanings",
    "load_results",
    "loaded_tasks",
    "markdown_literal",
    "page_count",
    "paragraph_frame",
    "present_score_columns",
    "result_files_signature",
    "row_detail",
    "score_distribution",
    "score_label",
    "score_meanings",
    "scores_by",
    "scores_by_note",
    "short_meaning",
    "shown_filters",
    "sorted_rows",
    "table_rows",
    "task_rows",
    "task_title",
    "to_csv_bytes",
    "to_xlsx_bytes",
    "wilson_interval",
    "with_investors",
]

# Each name loads its module at first use (PEP 562 module __getattr__): reading ``score_label``
# or ``collected_jobs`` (core.evaluate does) does not load the filters, charts and downloads.
_HOMES = {
    "CONFIDENCE": "core.explore.aggregates",
    "DIMENSION_LABELS": "core.explore.labels",
    "FILE_ORDER": "core.explore.table",
    "FILTERS": "core.explore.filters",
    "Filters": "core.explore.filters",
    "GROUP_COLUMNS": "core.explore.aggregates",
    "INVESTOR_COLUMN": "core.explore.columns",
    "InvestorMap": "core.investors",
    "JOB_COLUMN": "core.explore.columns",
    "MatchingRows": "core.explore.view",
    "NO_SCORE": "core.explore.columns",
    "PAGE_SIZE": "core.explore.table",
    "PARAGRAPH_COLUMNS": "core.explore.columns",
    "REPORT_COLUMN": "core.explore.columns",
    "ResultsView": "core.explore.view",
    "SCORE_COLUMNS": "core.explore.columns",
    "SORT_COLUMNS": "core.explore.table",
    "SOURCE_COLUMN": "core.explore.columns",
    "TABLE_COLUMNS": "core.explore.table",
    "TASK2_JOB_COLUMN": "core.explore.columns",
    "TASK2_PREFIX": "core.explore.columns",
    "TASK_COLUMN": "core.explore.columns",
    "TASK_SHORT": "core.explore.downloads",
    "TOP_GROUPS": "core.explore.aggregates",
    "UNKNOWN_GROUP": "core.explore.aggregates",
    "apply_filters": "core.explore.filters",
    "apply_investors": "core.investors",
    "collected_jobs": "core.explore.loading",
    "combination_counts": "core.explore.aggregates",
    "dimension_shares": "core.explore.aggregates",
    "download_name": "core.explore.downloads",
    "empty_frame": "core.explore.loading",
    "excel_problem": "core.explore.downloads",
    "export_frame": "core.explore.downloads",
    "filter_options": "core.explore.filters",
    "investor_from_report": "core.investors",
    "job_score_meanings": "core.explore.labels",
    "load_results": "core.explore.loading",
    "loaded_tasks": "core.explore.columns",
    "markdown_literal": "core.markdown",
    "page_count": "core.explore.table",
    "paragraph_frame": "core.explore.loading",
    "present_score_columns": "core.explore.columns",
    "result_files_signature": "core.explore.loading",
    "row_detail": "core.explore.table",
    "score_distribution": "core.explore.aggregates",
    "score_label": "core.explore.labels",
    "score_meanings": "core.prompts",
    "scores_by": "core.explore.aggregates",
    "scores_by_note": "core.explore.aggregates",
    "short_meaning": "core.explore.labels",
    "shown_filters": "core.explore.filters",
    "sorted_rows": "core.explore.table",
    "table_rows": "core.explore.table",
    "task_rows": "core.explore.columns",
    "task_title": "core.explore.labels",
    "to_csv_bytes": "core.explore.downloads",
    "to_xlsx_bytes": "core.explore.downloads",
    "wilson_interval": "core.explore.aggregates",
    "with_investors": "core.explore.loading",
}

__getattr__, __dir__ = lazy_names(__name__, _HOMES)
