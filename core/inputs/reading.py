"""Reading paragraph files: :func:`read_input` for one file, :func:`read_inputs` for several.

A file's bytes are loaded (:mod:`core.inputs.files`), parsed as the type its name says (a text
table after decoding, :mod:`core.inputs.delimited`, or a workbook, :mod:`core.inputs.workbook`)
and turned into paragraphs (:mod:`core.inputs.paragraphs`); the report records the sha256 of the
very bytes parsed and, for a file on disk, its absolute path.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from core.inputs.delimited import read_text
from core.inputs.encoding import decode
from core.inputs.files import TEXT_SUFFIXES, XLSX_SUFFIXES, ZIP_MAGIC, is_xlsx, load_source, reject_binary
from core.inputs.limits import InputLimits, limits_for
from core.inputs.messages import excerpt, input_error
from core.inputs.paragraphs import finish_paragraphs
from core.inputs.result import TEXT_COLUMN, InputTable, Note
from core.inputs.sources import InputSource, SheetChoice, SourceLike, source_name
from core.inputs.workbook import read_xlsx


def read_input(source: SourceLike, *, sheet: str | None = None, text_column: str | None = None) -> InputTable:
    """Read one input table from a path on disk, from ``(file_name, raw bytes)`` or from an
    :class:`InputSource` (a file with its sheet and text column chosen).

    The tuple form is what a browser upload delivers. CSV-like files (``.csv``, ``.tsv``,
    ``.txt``) are decoded as UTF-8 (with or without BOM), UTF-16 with BOM, cp1252 or, as a
    last resort, latin-1; the separator (``,`` ``;`` or tab) is detected from the header line.
    ``.xlsx`` files are read from ``sheet`` (name or number from 1), by default from the first
    sheet that has the text column. The paragraphs come from ``text_column`` (matched without
    case), by default from ``paragraph_text``; :class:`ChoiceNeeded` names the sheets and
    columns there are when neither is found. All cells are kept as written (strings).

    Rows whose ``paragraph_text`` is empty, whitespace or invisible characters only (zero-width
    spaces, BOMs, soft hyphens, other format characters), or longer than the paragraph limit,
    are dropped and listed in the report. Terminal escapes and control characters are removed
    from ``paragraph_text`` and ``pdf_file_name`` (the report says how many cells).

    Only regular files are read, and only within :func:`input_limits`. Raises
    :class:`InputError` when the file cannot be used at all.
    """
    if isinstance(source, InputSource):
        sheet = source.sheet if sheet is None else sheet
        text_column = source.text_column if text_column is None else text_column
        source = source.source
    sheet = (sheet or "").strip() or None
    text_column = (text_column or "").strip() or None
    return read_source(source, finish=partial(finish_paragraphs, text_column=text_column),
                       choose=SheetChoice(sheet=sheet, text_column=text_column or TEXT_COLUMN))


def read_inputs(sources: Iterable[SourceLike], *, sheet: str | None = None,
                text_column: str | None = None) -> list[InputTable]:
    """Read several input tables, in the given order; ``sheet`` and ``text_column`` apply to
    every file that does not choose its own (see :func:`read_input`).

    Raises :class:`InputError` on the first file that cannot be used, and when two sources
    have the same file name (results are written per source file, so names must differ).
    """
    tables: list[InputTable] = []
    seen: set[str] = set()
    for source in sources:
        name = source_name(source)
        if name in seen:
            raise input_error(
                name,
                "this file name appears twice among the inputs. Results are kept per file, so "
                "rename one of them or remove the duplicate.",
            )
        seen.add(name)
        tables.append(read_input(source, sheet=sheet, text_column=text_column))
    return tables


def read_source(source: Path | tuple[str, bytes], finish: Callable[..., Any] | None = None,
                choose: SheetChoice | None = None) -> Any:
    """Load, check and parse one file; ``finish`` turns the raw frame into the result
    (:func:`core.inputs.paragraphs.finish_paragraphs` for inputs, ``core.inputs.tables``'s for
    plain tables)."""
    limits = limits_for(source_name(source))
    file_name, data = load_source(source, limits)
    result = parse_source(file_name, data, limits, finish, choose)
    # Hashed here, from the very bytes parsed: hashing the path later could name a file that
    # has changed since (or, for an upload, nothing at all).
    digest = hashlib.sha256(data).hexdigest()
    if isinstance(result, InputTable):
        result.report.sha256 = digest
        result.report.path = None if isinstance(source, tuple) else os.path.abspath(source)
    else:
        result.sha256 = digest
    return result


def parse_source(file_name: str, data: bytes, limits: InputLimits, finish: Callable[..., Any] | None,
                 choose: SheetChoice | None = None) -> Any:
    """Parse loaded bytes as the file type its name says (see :func:`read_source`)."""
    suffix = Path(file_name).suffix.lower()

    if suffix in XLSX_SUFFIXES:
        return read_xlsx(file_name, data, [], limits, finish=finish, choose=choose)
    if suffix == ".xls":
        raise input_error(
            file_name,
            "old Excel .xls workbooks are not supported. Open it in Excel and save it as "
            ".xlsx (Excel Workbook) or as CSV, then load that file.",
        )
    if suffix not in TEXT_SUFFIXES:
        shown = suffix or "no extension"
        raise input_error(
            file_name,
            f"unsupported file type ({shown}). Use a .csv file (comma, semicolon or tab "
            "separated) or an Excel .xlsx workbook.",
        )

    if not data:
        raise input_error(file_name, "the file is empty (0 bytes); it has no data rows.")
    if data.startswith(ZIP_MAGIC) and is_xlsx(data):
        return read_xlsx(
            file_name,
            data,
            [Note("this .csv file is really an Excel workbook; it was read as .xlsx")],
            limits,
            finish=finish,
            choose=choose,
        )
    reject_binary(file_name, data)
    text, encoding, warnings = decode(file_name, data)
    if choose is not None and choose.sheet is not None:
        warnings.append(Note(f"a sheet ('{excerpt(choose.sheet, 60)}') was chosen, but a text file has one "
                             "table, which was read"))
    return read_text(file_name, text, encoding, warnings, limits, finish=finish)
