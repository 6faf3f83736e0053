"""Parsing decoded CSV / TSV text into a raw frame of strings, within the limits.

The separator comes from :mod:`core.inputs.separators`; pandas' C parser reads every cell as
written, bounded by the row and cell limits before it runs; a parser error becomes a message
that says which row is wrong and what usually causes it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from core.inputs.limits import MAX_COLUMNS, InputLimits, check_shape
from core.inputs.messages import excerpt, input_error, separator_label
from core.inputs.paragraphs import finish_paragraphs
from core.inputs.result import InputTable, Note
from core.inputs.separators import SEP_LINE, SEPARATORS, count_outside_quotes, detect_separator, header_record, unused_char


def read_text(
    file_name: str, text: str, encoding: str, warnings: list[str], limits: InputLimits,
    finish: Callable[..., Any] | None = None,
) -> InputTable:
    """Parse decoded text (header row first) and hand the raw frame to ``finish``
    (:func:`core.inputs.paragraphs.finish_paragraphs` when not given)."""
    separator: str | None
    m = SEP_LINE.match(text)
    if m and m.group(1) in SEPARATORS:
        separator = m.group(1)
        text = text[m.end():]
        warnings.append(Note(f"the first line 'sep={separator}' (an Excel hint) was skipped"))
        header = header_record(text)
    else:
        header = header_record(text)
        separator = detect_separator(header, text[:20000])

    if not text.strip():
        raise input_error(file_name, "the file has no data rows (it is empty or only whitespace).")

    # pandas fills short rows up to the header's width, so a wide header times many short lines
    # is a memory bomb: bound the rows read by the cell limit too, and stop parsing one row past
    # the limit (nrows counts the header row).
    columns = count_outside_quotes(header, separator) + 1 if separator is not None else 1
    if columns > MAX_COLUMNS:
        raise input_error(
            file_name,
            f"the header has {columns:,} columns, more than a spreadsheet holds ({MAX_COLUMNS:,}). "
            "Check the separator, or keep only the pdf_file_name and paragraph_text columns.",
        )
    row_cap = min(limits.max_rows, limits.max_cells // columns)

    # A single-column file: split on a character that cannot occur, so commas stay in the text.
    parse_sep = separator if separator is not None else unused_char(text)
    try:
        raw = pd.read_csv(
            io.StringIO(text),
            sep=parse_sep,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            quotechar='"',
            doublequote=True,
            engine="c",
            low_memory=False,
            nrows=row_cap + 2,
        )
    except pd.errors.EmptyDataError:
        raise input_error(file_name, "the file has no data rows (it is empty or only whitespace).") from None
    except pd.errors.ParserError as exc:
        raise input_error(file_name, _explain_parser_error(str(exc), separator)) from None
    check_shape(file_name, raw.shape[0] - 1, max(columns, raw.shape[1]), limits)
    return (finish or finish_paragraphs)(file_name, raw, encoding, separator, warnings, limits)


def _explain_parser_error(message: str, separator: str | None) -> str:
    sep_label = separator_label(separator)
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if m:
        expected, row, saw = m.groups()
        return (
            f"the CSV cannot be read: row {row} has {saw} cells but the header has {expected}. "
            f"Usually a paragraph contains the separator {sep_label} without being in "
            "double quotes. Re-export the file from Excel, or put that cell in quotes."
        )
    m = re.search(r"EOF inside string starting at row (\d+)", message)
    if m:
        row = int(m.group(1)) + 1
        return (
            f"the CSV cannot be read: a double quote opened in row {row} is never closed, so "
            "the rest of the file would be one cell. Fix the quotes in that row or re-export "
            "the file."
        )
    m = re.search(r"line (\d+)", message)
    where = f" near line {m.group(1)}" if m else ""
    detail = excerpt(message.strip().replace("Error tokenizing data. C error: ", ""))
    return (
        f"the CSV cannot be read{where} ({detail}). Re-export it from Excel as CSV, or "
        "check the quotes and separators there."
    )
