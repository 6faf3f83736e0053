"""Write a DataFrame as an Excel workbook (one sheet) with XlsxWriter.

Every text goes into a string cell holding its exact value: XlsxWriter is told never to read
a text as a formula, a number or a link (``strings_to_formulas``/``_numbers``/``_urls`` off),
so a paragraph or a model explanation starting with ``=`` stays text, and a string cell is
never evaluated, so no apostrophe is added (unlike the CSV downloads). Control characters
are written as Excel's ``_xHHHH_`` escapes, which Excel and LibreOffice read back; a carriage
return, the one a paragraph commonly holds, is then made an XML character reference, which
openpyxl (pandas' ``read_excel``) reads back too.

XlsxWriter writes the sheet about 2.8 times faster than pandas with openpyxl
(``tests/bench/bench_explore_excel.py``). It works in memory (``in_memory``): no temporary
file holds research data, and its shared-string table makes a text that merely looks like an
escape (``_x0041_``) read back exactly in openpyxl too, which ``constant_memory``'s inline
strings do not.
"""

from __future__ import annotations

import io
import re
import zipfile

import pandas as pd

from core.errors import CoreError

MAX_ROWS = 1_048_575  # Excel's sheet: 1,048,576 rows, the header among them
MAX_CELL_CHARS = 32_767  # Excel keeps no more in one cell


# XlsxWriter's escape of a carriage return; a text holding "_x000D_" itself was escaped to "_x005F_x000D_"
ESCAPED_CR = re.compile(rb"(?<!_x005F)_x000D_")


class ExcelLimitError(CoreError):
    """The table does not fit an Excel sheet; the CSV download holds it whole."""


def limit_problem(table: pd.DataFrame) -> str | None:
    """Why ``table`` does not fit an Excel sheet (too many rows, a text too long for a cell),
    or None: asked before offering the download, so the reason is shown rather than a failed
    download."""
    if len(table) > MAX_ROWS:
        return f"{len(table):,} rows are too many for one Excel sheet (at most {MAX_ROWS:,}); download CSV instead."
    for column in table.columns:
        values = table[column]
        if values.dtype.kind in "biufcmM":
            continue
        lengths = values.map(lambda v: len(v) if isinstance(v, str) else 0) if values.dtype == object \
            else values.str.len().fillna(0)
        if len(lengths) and int(lengths.max()) > MAX_CELL_CHARS:
            row = int(lengths.to_numpy().argmax()) + 1
            return (f"Row {row:,}, column {str(column)!r}: a text of more than {MAX_CELL_CHARS:,} characters does "
                    "not fit an Excel cell; download CSV instead.")
    return None


def xlsx_bytes(table: pd.DataFrame, *, sheet_name: str) -> bytes:
    """``table`` (header row, no index) as the bytes of an ``.xlsx`` workbook.

    Raises :class:`ExcelLimitError` rather than cut anything: Excel would drop rows past its
    limit and characters past 32,767 in a cell."""
    import xlsxwriter  # imported here: only an Excel download needs it

    if len(table) > MAX_ROWS:
        raise ExcelLimitError(f"{len(table):,} rows are too many for one Excel sheet (at most {MAX_ROWS:,}); "
                              "download CSV instead.")
    columns = [str(c) for c in table.columns]
    rows = table.to_numpy(dtype=object, na_value=None).tolist()  # Python ints, floats, str, None
    buffer = io.BytesIO()
    options = {"in_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
               "strings_to_urls": False, "nan_inf_to_errors": True}
    with xlsxwriter.Workbook(buffer, options) as book:
        sheet = book.add_worksheet(sheet_name)
        sheet.write_row(0, 0, columns, book.add_format({"bold": True}))
        write_row = sheet.write_row
        for number, row in enumerate(rows, start=1):
            if write_row(number, 0, row) == -2:  # XlsxWriter cut a text to Excel's cell limit
                column = next(c for c, v in zip(columns, row) if isinstance(v, str) and len(v) > MAX_CELL_CHARS)
                raise ExcelLimitError(f"Row {number:,}, column {column!r}: a text of more than {MAX_CELL_CHARS:,} "
                                      "characters does not fit an Excel cell; download CSV instead.")
    data = buffer.getvalue()
    if any(isinstance(value, str) and "\r" in value for row in rows for value in row):
        return _carriage_returns_as_references(data)
    return data


def _carriage_returns_as_references(data: bytes) -> bytes:
    """``data`` with XlsxWriter's ``_x000D_`` escapes in the texts written ``&#13;``, a
    character reference every XML reader turns back into a carriage return."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            part = source.read(info)
            if info.filename == "xl/sharedStrings.xml" or info.filename.startswith("xl/worksheets/"):
                part = ESCAPED_CR.sub(b"&#13;", part)
            target.writestr(info, part)
    return out.getvalue()
