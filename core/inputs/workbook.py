"""Reading Excel ``.xlsx`` workbooks: opening them safely, choosing the sheet, and streaming its
cells as text within the limits.

A workbook is checked before openpyxl opens it (an old ``.xls`` or a password-protected file,
a damaged archive, a "zip bomb" whose unpacked size passes the limit); its sheet is streamed
row by row in read-only mode, bounded by its declared size and by the rows actually read. The
sheet read is the chosen one, else the first with the text column (:func:`pick_sheet`);
:class:`ChoiceNeeded` names the sheets and their columns when none fits.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import Any

import openpyxl
import pandas as pd

from core.errors import InputError
from core.inputs.cleaning import header_names
from core.inputs.files import OLE_MAGIC, ZIP_MAGIC, is_xlsx
from core.inputs.limits import InputLimits, check_shape, too_big
from core.inputs.messages import MAX_COLUMNS_LISTED, excerpt, input_error, quoted_names
from core.inputs.paragraphs import finish_paragraphs
from core.inputs.result import InputTable, Note
from core.inputs.sources import ChoiceNeeded, SheetChoice


def open_workbook(file_name: str, data: bytes, limits: InputLimits) -> Any:
    """A read-only openpyxl workbook of ``data``, after the checks that make opening it safe."""
    if not data:
        raise input_error(file_name, "the file is empty (0 bytes); it has no data rows.")
    if data.startswith(OLE_MAGIC):
        raise input_error(
            file_name,
            "this is not a valid .xlsx workbook: it looks like an old .xls file or a "
            "password-protected workbook. Save it from Excel as .xlsx (without password) or CSV.",
        )
    if not data.startswith(ZIP_MAGIC) or not is_xlsx(data):
        raise input_error(
            file_name,
            "this .xlsx file is damaged or is not an Excel workbook, so it cannot be opened. "
            "Open it in Excel and save it again as .xlsx or CSV.",
        )
    # Deflate packs a repetitive sheet about 1000:1, so a few hundred kilobytes can unpack to
    # hundreds of megabytes of XML. zipfile never reads past a member's declared size, so the
    # declared sizes bound all later parsing: check their sum before opening anything.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > limits.max_bytes:
        raise too_big(file_name, unpacked, limits, what="unpacked, the workbook is")
    try:
        # Read-only mode streams the sheet row by row instead of building it in memory.
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many types on damaged files
        raise damaged_xlsx(file_name, exc) from None


def read_xlsx(file_name: str, data: bytes, warnings: list[str], limits: InputLimits,
              finish: Callable[..., Any] | None = None, choose: SheetChoice | None = None) -> InputTable:
    """Read one sheet of a workbook (see :func:`pick_sheet`) and hand its raw frame to ``finish``
    (:func:`core.inputs.paragraphs.finish_paragraphs` when not given)."""
    book = open_workbook(file_name, data, limits)
    try:
        sheets = list(book.sheetnames)
        if not sheets:
            raise input_error(file_name, "the workbook has no sheets, so it has no data rows.")
        name = pick_sheet(file_name, book, sheets, choose, limits, warnings)
        rows, header_row = _sheet_rows(file_name, book[name], limits)
    except InputError:
        raise
    except Exception as exc:
        raise damaged_xlsx(file_name, exc) from None
    finally:
        book.close()
    if not rows:
        raise input_error(file_name, f"the sheet '{excerpt(name, 60)}' is empty; it has no data rows."
                          + (f" The workbook's sheets: {quoted_names(sheets)}." if len(sheets) > 1 else ""))
    table = (finish or finish_paragraphs)(file_name, pd.DataFrame(rows, dtype=object), "xlsx", None, warnings,
                                          limits, header_row)
    if isinstance(table, InputTable):
        table.report.sheet = name
    return table


def pick_sheet(file_name: str, book: Any, sheets: list[str], choose: SheetChoice | None, limits: InputLimits,
               warnings: list[str]) -> str:
    """The name of the sheet to read (see :class:`SheetChoice`); a note says which one was read
    when there is a choice, and :class:`ChoiceNeeded` names the sheets when none fits."""
    if choose is not None and choose.sheet is not None:
        wanted = choose.sheet
        by_name = {s.casefold(): s for s in sheets}
        if wanted in sheets:
            name = wanted
        elif wanted.casefold() in by_name:
            name = by_name[wanted.casefold()]
        elif wanted.isdigit() and 1 <= int(wanted) <= len(sheets):
            name = sheets[int(wanted) - 1]
        else:
            raise ChoiceNeeded(excerpt(file_name), f"the workbook has no sheet '{excerpt(wanted, 60)}'. Its sheets: "
                               f"{quoted_names(sheets)} (give a name or a number from 1 to {len(sheets)}).", in_workbook=True)
        if len(sheets) > 1:
            warnings.append(Note(f"sheet '{excerpt(name, 60)}' was read, as chosen (of {len(sheets)} sheets)"))
        return name
    if len(sheets) == 1:
        return sheets[0]
    if choose is None:  # plain tables (read_table): the first sheet, as before
        warnings.append(f"the workbook has {len(sheets)} sheets; only the first ('{excerpt(sheets[0])}') was read")
        return sheets[0]
    wanted = choose.text_column.casefold()
    headers: list[tuple[str, list[str]]] = []
    for name in sheets:
        header = header_names(sheet_header(book[name], limits))
        if wanted in (h.casefold() for h in header):
            others = [s for s in sheets if s != name]
            if name == sheets[0]:
                warnings.append(Note(f"the workbook has {len(sheets)} sheets; the first, '{excerpt(name, 60)}', was "
                                     f"read (the others: {quoted_names(others)})"))
            else:
                warnings.append(Note(f"sheet '{excerpt(name, 60)}' was read: the first of {len(sheets)} sheets with "
                                     f"a '{excerpt(choose.text_column, 60)}' column (the others: "
                                     f"{quoted_names(others)})"))
            return name
        headers.append((name, header))
    shown = "; ".join(f"'{excerpt(name, 60)}' ({quoted_names(header) if header else 'empty'})"
                      for name, header in headers[:MAX_COLUMNS_LISTED])
    if len(headers) > MAX_COLUMNS_LISTED:
        shown += f" and {len(headers) - MAX_COLUMNS_LISTED:,} more sheets"
    raise ChoiceNeeded(
        excerpt(file_name),
        f"no sheet of the workbook has a '{excerpt(choose.text_column, 60)}' column. Sheets and their columns: "
        f"{shown}. Choose the sheet and the column that holds the paragraphs.",
        in_workbook=True,
    )


def sheet_header(sheet: object, limits: InputLimits) -> list[str]:
    """A read-only sheet's header (its first non-blank row) as text; empty for a blank sheet."""
    return _find_header(sheet, limits)[1]


def damaged_xlsx(file_name: str, exc: Exception) -> InputError:
    """The error for a workbook that openpyxl cannot read (``exc`` names only its type)."""
    return input_error(
        file_name,
        f"this .xlsx workbook is damaged and cannot be read ({type(exc).__name__}). "
        "Open it in Excel and save it again as .xlsx or CSV.",
    )


def _find_header(sheet: object, limits: InputLimits) -> tuple[int, list[str]]:
    """The row number and cells of a read-only sheet's first non-blank row ((0, []) if none)."""
    # openpyxl yields a blank row for every row number it skips, and a row number is whatever
    # the file says: bound the search for the header as well.
    for number, values in enumerate(
        sheet.iter_rows(max_row=limits.max_rows + 1, values_only=True), start=1  # type: ignore[attr-defined]
    ):
        cells = [_cell_text(v) for v in values]
        while cells and not cells[-1].strip():
            cells.pop()
        if cells:
            return number, cells
    return 0, []


def _sheet_rows(file_name: str, sheet: object, limits: InputLimits) -> tuple[list[list[str]], int]:
    """The cells of a read-only sheet as text, from its first non-blank row (the header) to its
    last non-blank row, each row cut or padded to the header's width; and the header's row
    number (0 for a blank sheet). Raises InputError as soon as the rows or cells pass the
    limits, so a sheet of millions of rows is never parsed to its end."""
    # The sheet's declared size (its <dimension> element; None if absent) is checked before a
    # single row is parsed. It can also be wrong, so the rows read are bounded too.
    declared_rows, declared_columns = sheet.max_row, sheet.max_column  # type: ignore[attr-defined]
    if declared_rows and declared_columns:
        check_shape(file_name, declared_rows - 1, declared_columns, limits, declared=True)
    sheet.reset_dimensions()  # type: ignore[attr-defined]  # read what is there, as pandas does

    header_row, header = _find_header(sheet, limits)
    if not header_row:
        return [], 0

    # Cells right of the header have no column name, so nothing reads them: max_col cuts them
    # off in the parser, which keeps one stray far-right cell from widening every row.
    width = len(header)
    row_cap = min(limits.max_rows, limits.max_cells // width)
    rows = [header]
    blank_run = 0  # blank rows not kept yet: kept once a later row has data (trailing ones never)
    data_rows = sheet.iter_rows(  # type: ignore[attr-defined]
        min_row=header_row + 1, max_row=header_row + row_cap + 1, max_col=width, values_only=True
    )
    for offset, values in enumerate(data_rows, start=1):
        if offset > row_cap:
            check_shape(file_name, offset, width, limits)
        cells = [_cell_text(v) for v in values]
        if any(c.strip() for c in cells):
            rows.extend([[""] * width for _ in range(blank_run)])
            blank_run = 0
            rows.append(cells)
        else:
            blank_run += 1
    return rows, header_row


def _cell_text(value: object) -> str:
    """A cell value as text, as pandas' ``read_excel(dtype=str)`` writes it (whole numbers
    without a trailing '.0')."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
