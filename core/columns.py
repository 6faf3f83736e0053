"""The product's own column names, and how a researcher's other input columns are kept.

Every column of an input file reaches the row file (``rows.csv``), the result CSVs, Explore
and its downloads: ``page``, ``paragraph_id``, a hand-coded ``sector``, anything. They come
after the product's own columns and never replace one: an input column whose name is one of
ours (``score``, ``status``, ``row``, ``investor`` ..., compared without case, so ``Score`` as
well) is renamed ``input_<name>`` when the file is read, and the input report says so.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from core.tasks import TASKS

#: Columns the product writes or adds somewhere: the row file, merging, the result files and
#: Explore's frame. An input column may not carry one of these names.
BOOKKEEPING_COLUMNS: tuple[str, ...] = (
    "custom_id", "source_index", "csv_file_name", "row", "pdf_file_name", "paragraph_text",  # rows.csv
    "request_id", "batch_key",  # rows.csv: the request answering the row and its batch
    "status", "status_reason", "model", "batch_id", "answered_by", "prompt_tokens", "completion_tokens",  # results
    "provider",  # results: which provider answered the row
    "task", "job_id", "investor",  # Explore
)
INPUT_PREFIX = "input_"

# the answer columns of every task and the response fields they come from (the previous tool's
# names, written with --column-names legacy), all compared without case
_RESERVED: frozenset[str] = frozenset(
    name.casefold()
    for name in (*BOOKKEEPING_COLUMNS,
                 *(column for task in TASKS.values() for column in task.columns.values()),
                 *(field for task in TASKS.values() for field in task.columns))
)


def is_product_column(name: str) -> bool:
    """Whether ``name`` is (without case) one of the product's own column names."""
    return str(name).casefold() in _RESERVED


def input_column_names(names: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Names under which input columns are kept, in order, and the renames made: a product
    name becomes ``input_<name>``; a name already used (without case) gets `` (2)``, `` (3)``.

    >>> input_column_names(["page", "score", "Page"])
    (['page', 'input_score', 'Page (2)'], [('score', 'input_score'), ('Page', 'Page (2)')])
    """
    taken = set(_RESERVED)
    kept: list[str] = []
    renamed: list[tuple[str, str]] = []
    for name in names:
        candidate = f"{INPUT_PREFIX}{name}" if is_product_column(name) else name
        base, number = candidate, 1
        while candidate.casefold() in taken:
            number += 1
            candidate = f"{base} ({number})"
        taken.add(candidate.casefold())
        kept.append(candidate)
        if candidate != name:
            renamed.append((name, candidate))
    return kept, renamed


def input_columns(columns: Iterable[str]) -> list[str]:
    """The input columns among ``columns`` (a row file's, a result frame's), in their order:
    every column that is not one of the product's own."""
    return [c for c in columns if not is_product_column(c)]
