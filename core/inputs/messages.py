"""How anything taken from an input file is quoted in a message.

A cell, a column name or a file name can be megabytes long and hold terminal escapes; a message
quoting it must stay readable and harmless. :func:`excerpt` shortens and cleans one value, the
other helpers list rows and names, and :func:`input_error` builds the
:class:`core.errors.InputError` that names the file. Plain Python (no pandas), so a caller that
only quotes values stays light.
"""

from __future__ import annotations

from core.errors import InputError
from core.inputs.cleaning import CONTROL_RE

EXCERPT_CHARS = 200  # the most characters of file content quoted in one message
MAX_ROWS_LISTED = 20
MAX_COLUMNS_LISTED = 20


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """``value`` as text fit to quote in a message: control characters and terminal escapes
    removed, and cut to ``limit`` characters with an ellipsis. A cell, a column name or a file
    name can be megabytes long; a message quoting it must stay readable."""
    text = str(value)
    if len(text) > 4 * limit:
        text = text[: 4 * limit]  # bound the regex work; the cut below is what is shown
    text = CONTROL_RE.sub("", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def input_error(file_name: str, problem: str) -> InputError:
    """An InputError whose file name is shortened for display (an upload's name is untrusted)."""
    return InputError(excerpt(file_name), problem)


def quoted_names(names: list[str]) -> str:
    """Column names for a message: each shortened, at most MAX_COLUMNS_LISTED of them."""
    shown = ", ".join(f"'{excerpt(h, 60)}'" if h else "(empty)" for h in names[:MAX_COLUMNS_LISTED])
    if len(names) > MAX_COLUMNS_LISTED:
        shown += f" and {len(names) - MAX_COLUMNS_LISTED:,} more"
    return shown


def format_rows(rows: list[int]) -> str:
    """Row numbers for a message, at most MAX_ROWS_LISTED of them."""
    if len(rows) <= MAX_ROWS_LISTED:
        return ", ".join(str(r) for r in rows)
    shown = ", ".join(str(r) for r in rows[:MAX_ROWS_LISTED])
    return f"{shown} and {len(rows) - MAX_ROWS_LISTED} more"


def separator_label(separator: str | None) -> str:
    """A separator as a message names it: ``tab``, ``';'``, or none for a single column."""
    if separator is None:
        return "none (single column)"
    if separator == "\t":
        return "tab"
    return f"'{separator}'"
