"""What a reader can choose in a file, for a sheet or column picker: :func:`table_layout` reads
only the header (of the sheet :func:`core.inputs.read_input` would read, or the chosen one) and
lists the sheets and columns."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError
from core.inputs.cleaning import header_names
from core.inputs.encoding import decode
from core.inputs.files import TEXT_SUFFIXES, XLSX_SUFFIXES, ZIP_MAGIC, is_xlsx, load_source, reject_binary
from core.inputs.limits import MAX_COLUMNS, limits_for
from core.inputs.messages import input_error
from core.inputs.reading import parse_source
from core.inputs.result import TEXT_COLUMN
from core.inputs.separators import SEP_LINE, SEPARATORS, detect_separator, header_record, unused_char
from core.inputs.sources import ChoiceNeeded, InputSource, SheetChoice, SourceLike, source_name
from core.inputs.workbook import damaged_xlsx, open_workbook, pick_sheet, sheet_header


@dataclass(frozen=True)
class TableLayout:
    """What a reader can choose in one file: its ``sheets`` (empty for a text file), the
    ``sheet`` these ``columns`` belong to, and the header's column names (an empty one is
    ``column N``)."""

    file_name: str
    sheets: tuple[str, ...]
    sheet: str | None
    columns: tuple[str, ...]


def table_layout(source: SourceLike, *, sheet: str | None = None) -> TableLayout:
    """The sheets and columns of a file, from its header only, for a sheet or column picker.
    Without ``sheet`` the columns are those of the sheet :func:`read_input` would read (the
    first with a ``paragraph_text`` column, else the first). Raises :class:`InputError` when the
    file cannot be read, or has no sheet ``sheet``."""
    if isinstance(source, InputSource):
        sheet = source.sheet if sheet is None else sheet
        source = source.source
    sheet = (sheet or "").strip() or None
    limits = limits_for(source_name(source))
    file_name, data = load_source(source, limits)
    suffix = Path(file_name).suffix.lower()
    if suffix in XLSX_SUFFIXES or (suffix in TEXT_SUFFIXES and data.startswith(ZIP_MAGIC) and is_xlsx(data)):
        book = open_workbook(file_name, data, limits)
        try:
            sheets = list(book.sheetnames)
            if not sheets:
                raise input_error(file_name, "the workbook has no sheets, so it has no data rows.")
            try:
                name = pick_sheet(file_name, book, sheets, SheetChoice(sheet=sheet, text_column=TEXT_COLUMN),
                                  limits, [])
            except ChoiceNeeded:
                if sheet is not None:
                    raise
                name = sheets[0]  # no sheet has paragraph_text: show the first one's columns
            header = sheet_header(book[name], limits)
        except InputError:
            raise
        except Exception as exc:
            raise damaged_xlsx(file_name, exc) from None
        finally:
            book.close()
        return TableLayout(file_name, tuple(sheets), name, tuple(header_names(header)))
    if suffix not in TEXT_SUFFIXES:
        parse_source(file_name, data, limits, finish=None)  # raises the reader's own message
    if not data:
        raise input_error(file_name, "the file is empty (0 bytes); it has no data rows.")
    reject_binary(file_name, data)
    text, _, _ = decode(file_name, data)
    found = SEP_LINE.match(text)
    if found and found.group(1) in SEPARATORS:
        separator: str | None = found.group(1)
        header = header_record(text[found.end():])
    else:
        header = header_record(text)
        separator = detect_separator(header, text[:20000])
    cells = next(csv.reader([header], delimiter=separator or unused_char(header)), [])
    if len(cells) > MAX_COLUMNS:
        raise input_error(file_name, f"the header has {len(cells):,} columns, more than a spreadsheet holds "
                                     f"({MAX_COLUMNS:,}). Check the separator.")
    return TableLayout(file_name, (), None, tuple(header_names(cells)))
