"""Robust reading of input tables (CSV and XLSX) with a report of what was dropped.

Researchers hand us paragraphs in whatever their tools produced: UTF-8 CSVs, Excel "CSV"
exports (``;``-separated, cp1252, sometimes a BOM or a ``sep=;`` first line), tab-separated
text, or ``.xlsx`` workbooks. Every reader here returns the same shape, an :class:`InputTable`
whose frame has exactly the columns ``row``, ``paragraph_text`` and ``pdf_file_name``, plus an
:class:`InputReport` that says what was read, what was dropped and why. Nothing is dropped
silently; anything that makes the file unusable raises :class:`core.errors.InputError` with a
message naming the file, the problem and what to do about it.

Everything in a file is untrusted. Sizes are bounded before anything is parsed (see
:class:`InputLimits`); only regular files are opened (a named pipe would block forever);
terminal escape sequences and control characters are removed from the text; and whatever is
quoted from a file in a message is shortened by :func:`excerpt`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import stat
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd

from core.columns import input_column_names
from core.errors import InputError

__all__ = [
    "DroppedRow",
    "InputLimits",
    "InputReport",
    "InputTable",
    "TEXT_COLUMN",
    "PDF_COLUMN",
    "read_input",
    "read_inputs",
    "find_input_files",
    "input_limits",
    "excerpt",
    "TextTable",
    "read_table",
    "InputSource",
    "TableLayout",
    "ChoiceNeeded",
    "table_layout",
]

TEXT_COLUMN = "paragraph_text"
PDF_COLUMN = "pdf_file_name"

_TEXT_SUFFIXES = {".csv", ".tsv", ".txt"}
_XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_FOLDER_SUFFIXES = {".csv", ".xlsx"}
_SEPARATORS = (",", ";", "\t")
_MAX_ROWS_LISTED = 20
_MAX_COLUMNS_LISTED = 20
# Excel's own column limit. pandas spends about a millisecond per column, so a header of a
# hundred thousand cells would stall the read before any row limit applies.
_MAX_COLUMNS = 16_384
EXCERPT_CHARS = 200  # the most characters of file content quoted in one message

# Removed from paragraph_text and pdf_file_name: terminal escape sequences (CSI such as
# "\x1b[31m", OSC such as "\x1b]0;title\x07", and the short ones such as "\x1bc", which
# resets the terminal) and every other C0/C1 control character except tab, line feed and
# carriage return (line breaks inside quoted cells are text). Echoed to a terminal they could
# recolour, retitle or clear it. The pattern uses only syntax shared by Python's re and RE2, so
# pandas can run it in pyarrow.
_CONTROL_PATTERN = (
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[ -/]*[0-~]"
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
)
_CONTROL_RE = re.compile(_CONTROL_PATTERN)
# Every match of _CONTROL_PATTERN holds one of these; finding a single character is the cheaper
# test of the two, and most cells have none.
_CONTROL_CHAR_PATTERN = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"

# Signatures of common non-text files that people rename or pick by mistake.
_MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old .xls/.doc, or a password-protected .xlsx
_ZIP_MAGIC = b"PK\x03\x04"


# ----------------------------------------------------------------------------------------------
# Public data types
# ----------------------------------------------------------------------------------------------


class _Note(str):
    """A message that says what was done, not what is wrong (an encoding detected, a sheet or a
    column chosen). It travels in the same list as the problems while a file is read, and
    :func:`_finish` files it under :attr:`InputReport.notes`."""


@dataclass(frozen=True)
class InputSource:
    """An input file with the reader's choices: ``sheet`` of a workbook (its name, or its
    number counted from 1) and ``text_column``, the column that holds the paragraphs. ``None``
    means automatic: the first sheet with a ``paragraph_text`` column, and that column."""

    source: Path | tuple[str, bytes]
    sheet: str | None = None
    text_column: str | None = None

    @property
    def name(self) -> str:
        return _source_name(self.source)


SourceLike = Path | tuple[str, bytes] | InputSource


class ChoiceNeeded(InputError):
    """The file is a table, but the sheet or the column that holds the paragraphs has to be
    chosen (none is recognised, or the chosen one is not there)."""


@dataclass(frozen=True)
class DroppedRow:
    """One input row that was not kept.

    ``row`` is the spreadsheet row number: the header is row 1, the first data row is row 2
    (a paragraph with line breaks inside quotes still counts as one row).
    """

    row: int
    reason: str


@dataclass
class InputReport:
    """What happened while reading one input file."""

    file_name: str
    rows_read: int
    rows_kept: int
    dropped: list[DroppedRow]
    warnings: list[str]  # problems: duplicate column names, no pdf_file_name column, characters removed
    encoding: str  # "utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16", "utf-8/cp1252 (per line)" or "xlsx"
    separator: str | None  # "," ";" "\t", or None for xlsx and single-column text
    # sha256 of the bytes that were parsed (an upload's too), and the absolute path of a file
    # read from disk (None for an upload): the methods record names exactly what was read.
    sha256: str | None = None
    path: str | None = None
    # what was done, not wrong: the encoding detected, the sheet and the text column read
    notes: list[str] = field(default_factory=list)
    sheet: str | None = None  # the sheet read, for a workbook
    text_column: str = TEXT_COLUMN  # the file's column the paragraphs came from

    def summary(self) -> str:
        """Return one or two readable lines describing the read.

        Example: ``reports_a.csv: 38 rows read, 36 kept, 2 dropped (empty paragraph_text:
        rows 5, 17); encoding cp1252, separator ';'``. A second line lists warnings, if any.
        """
        head = f"{excerpt(self.file_name)}: {self.rows_read} rows read, {self.rows_kept} kept"
        if self.dropped:
            by_reason: dict[str, list[int]] = {}
            for d in self.dropped:
                by_reason.setdefault(d.reason, []).append(d.row)
            parts = []
            for reason, rows in by_reason.items():
                word = "row" if len(rows) == 1 else "rows"
                parts.append(f"{reason}: {word} {_format_rows(rows)}")
            head += f", {len(self.dropped)} dropped ({'; '.join(parts)})"
        if self.encoding == "xlsx":
            head += "; Excel workbook"
        else:
            head += f"; encoding {self.encoding}, separator {_separator_label(self.separator)}"
        if self.notes:
            head += "\nNotes: " + " | ".join(self.notes)
        if self.warnings:
            head += "\nWarnings: " + " | ".join(self.warnings)
        return head


@dataclass
class InputTable:
    """The usable rows of one input file.

    ``frame`` has the columns ``row`` (int64, spreadsheet row number), ``paragraph_text`` (str,
    never empty) and ``pdf_file_name`` (str, ``""`` if absent), then every other column of the
    file as text (:attr:`input_columns`: ``page``, ``paragraph_id`` ...), under its header name;
    a name that is one of the product's own columns is kept as ``input_<name>`` (see
    :mod:`core.columns`; the report's warnings say so).
    """

    file_name: str
    frame: pd.DataFrame
    report: InputReport

    @property
    def input_columns(self) -> list[str]:
        """The file's other columns, kept after ``row``, ``paragraph_text`` and ``pdf_file_name``."""
        return [c for c in self.frame.columns if c not in ("row", TEXT_COLUMN, PDF_COLUMN)]


# ----------------------------------------------------------------------------------------------
# Limits and quoting
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputLimits:
    """Bounds checked before a file is parsed, so a hostile or broken file fails fast.

    The defaults are far above a research corpus (tens of thousands of paragraphs) and below
    what stalls a laptop. Each can be raised with the environment setting named in
    :data:`LIMIT_SETTINGS`.
    """

    max_bytes: int = 200 * 1024 * 1024  # file size; for .xlsx also its uncompressed size
    max_rows: int = 500_000  # data rows, blank ones included
    max_cells: int = 20_000_000  # data rows x header columns
    max_paragraph_chars: int = 100_000  # a longer paragraph_text is dropped with its row


# Field of InputLimits -> the environment setting that overrides it.
LIMIT_SETTINGS: dict[str, str] = {
    "max_bytes": "BDASSET_MAX_INPUT_BYTES",
    "max_rows": "BDASSET_MAX_INPUT_ROWS",
    "max_cells": "BDASSET_MAX_INPUT_CELLS",
    "max_paragraph_chars": "BDASSET_MAX_PARAGRAPH_CHARS",
}


def input_limits(environ: Mapping[str, str] | None = None) -> InputLimits:
    """The limits in force: the defaults, overridden by the settings in ``environ``
    (``os.environ`` when not given). Read at each call, so a changed setting applies to the next
    file. Raises :class:`ValueError` naming the setting when a value is not a positive whole
    number (``1000000`` or ``1_000_000``)."""
    env = os.environ if environ is None else environ
    values: dict[str, int] = {}
    for field, name in LIMIT_SETTINGS.items():
        raw = env.get(name, "").strip()
        if not raw:
            continue
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value <= 0:
            raise ValueError(f"the setting {name}={excerpt(raw)!r} is not a positive whole number")
        values[field] = value
    return InputLimits(**values)


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """``value`` as text fit to quote in a message: control characters and terminal escapes
    removed, and cut to ``limit`` characters with an ellipsis. A cell, a column name or a file
    name can be megabytes long; a message quoting it must stay readable."""
    text = str(value)
    if len(text) > 4 * limit:
        text = text[: 4 * limit]  # bound the regex work; the cut below is what is shown
    text = _CONTROL_RE.sub("", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error(file_name: str, problem: str) -> InputError:
    """An InputError whose file name is shortened for display (an upload's name is untrusted)."""
    return InputError(excerpt(file_name), problem)


def _limit_hint(field: str) -> str:
    return f"set {LIMIT_SETTINGS[field]} to raise the limit"


def _limits_for(file_name: str) -> InputLimits:
    try:
        return input_limits()
    except ValueError as exc:
        raise _error(file_name, f"cannot check the file against the input limits: {exc}.") from None


# ----------------------------------------------------------------------------------------------
# Public functions
# ----------------------------------------------------------------------------------------------


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
    return _read_source(source, finish=partial(_finish, text_column=text_column),
                        choose=_SheetChoice(sheet=sheet, text_column=text_column or TEXT_COLUMN))


@dataclass
class TextTable:
    """Every column of a table as text (for files other than paragraph inputs, such as
    human labels). ``frame`` has the header's names (cleaned like the inputs'; an empty name
    becomes ``column N``, a repeated one ``name (2)``), every cell a string (``""`` when
    empty, control characters and terminal escapes removed); ``rows`` holds the spreadsheet
    row number of each frame row. Blank rows are left out."""

    file_name: str
    frame: pd.DataFrame
    rows: list[int]
    encoding: str
    separator: str | None
    warnings: list[str]
    sha256: str | None = None  # of the bytes that were parsed


def read_table(source: Path | tuple[str, bytes]) -> TextTable:
    """Read a CSV/XLSX table keeping all its columns as text, with the same decoding,
    separator detection, Excel handling and limits as :func:`read_input`. Raises
    :class:`InputError` when the file cannot be used at all."""
    return _read_source(source, finish=_finish_table)


@dataclass(frozen=True)
class _SheetChoice:
    """Which sheet of a workbook to read: ``sheet`` (name or number from 1), else the first
    sheet whose header has ``text_column``; ``None`` as a whole: the first sheet."""

    sheet: str | None
    text_column: str


def _read_source(source: Path | tuple[str, bytes], finish: Callable[..., Any] | None = None,
                 choose: _SheetChoice | None = None) -> Any:
    """Load, check and parse one file; ``finish`` turns the raw frame into the result
    (:func:`_finish` for inputs, :func:`_finish_table` for plain tables)."""
    limits = _limits_for(_source_name(source))
    file_name, data = _load(source, limits)
    result = _parse_source(file_name, data, limits, finish, choose)
    # Hashed here, from the very bytes parsed: hashing the path later could name a file that
    # has changed since (or, for an upload, nothing at all).
    digest = hashlib.sha256(data).hexdigest()
    if isinstance(result, InputTable):
        result.report.sha256 = digest
        result.report.path = None if isinstance(source, tuple) else os.path.abspath(source)
    else:
        result.sha256 = digest
    return result


def _parse_source(file_name: str, data: bytes, limits: InputLimits, finish: Callable[..., Any] | None,
                  choose: _SheetChoice | None = None) -> Any:
    """Parse loaded bytes as the file type its name says (see :func:`_read_source`)."""
    suffix = Path(file_name).suffix.lower()

    if suffix in _XLSX_SUFFIXES:
        return _read_xlsx(file_name, data, [], limits, finish=finish, choose=choose)
    if suffix == ".xls":
        raise _error(
            file_name,
            "old Excel .xls workbooks are not supported. Open it in Excel and save it as "
            ".xlsx (Excel Workbook) or as CSV, then load that file.",
        )
    if suffix not in _TEXT_SUFFIXES:
        shown = suffix or "no extension"
        raise _error(
            file_name,
            f"unsupported file type ({shown}). Use a .csv file (comma, semicolon or tab "
            "separated) or an Excel .xlsx workbook.",
        )

    if not data:
        raise _error(file_name, "the file is empty (0 bytes); it has no data rows.")
    if data.startswith(_ZIP_MAGIC) and _is_xlsx(data):
        return _read_xlsx(
            file_name,
            data,
            [_Note("this .csv file is really an Excel workbook; it was read as .xlsx")],
            limits,
            finish=finish,
            choose=choose,
        )
    _reject_binary(file_name, data)
    text, encoding, warnings = _decode(file_name, data)
    if choose is not None and choose.sheet is not None:
        warnings.append(_Note(f"a sheet ('{excerpt(choose.sheet, 60)}') was chosen, but a text file has one "
                              "table, which was read"))
    return _read_text(file_name, text, encoding, warnings, limits, finish=finish)


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
        name = _source_name(source)
        if name in seen:
            raise _error(
                name,
                "this file name appears twice among the inputs. Results are kept per file, so "
                "rename one of them or remove the duplicate.",
            )
        seen.add(name)
        tables.append(read_input(source, sheet=sheet, text_column=text_column))
    return tables


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
    limits = _limits_for(_source_name(source))
    file_name, data = _load(source, limits)
    suffix = Path(file_name).suffix.lower()
    if suffix in _XLSX_SUFFIXES or (suffix in _TEXT_SUFFIXES and data.startswith(_ZIP_MAGIC) and _is_xlsx(data)):
        book = _open_workbook(file_name, data, limits)
        try:
            sheets = list(book.sheetnames)
            if not sheets:
                raise _error(file_name, "the workbook has no sheets, so it has no data rows.")
            try:
                name = _pick_sheet(file_name, book, sheets, _SheetChoice(sheet=sheet, text_column=TEXT_COLUMN),
                                   limits, [])
            except ChoiceNeeded:
                if sheet is not None:
                    raise
                name = sheets[0]  # no sheet has paragraph_text: show the first one's columns
            header = _sheet_header(book[name], limits)
        except InputError:
            raise
        except Exception as exc:
            raise _damaged_xlsx(file_name, exc) from None
        finally:
            book.close()
        return TableLayout(file_name, tuple(sheets), name, tuple(_header_names(header)))
    if suffix not in _TEXT_SUFFIXES:
        _parse_source(file_name, data, limits, finish=None)  # raises the reader's own message
    if not data:
        raise _error(file_name, "the file is empty (0 bytes); it has no data rows.")
    _reject_binary(file_name, data)
    text, _, _ = _decode(file_name, data)
    found = _SEP_LINE.match(text)
    if found and found.group(1) in _SEPARATORS:
        separator: str | None = found.group(1)
        header = _header_record(text[found.end():])
    else:
        header = _header_record(text)
        separator = _detect_separator(header, text[:20000])
    cells = next(csv.reader([header], delimiter=separator or _unused_char(header)), [])
    if len(cells) > _MAX_COLUMNS:
        raise _error(file_name, f"the header has {len(cells):,} columns, more than a spreadsheet holds "
                                f"({_MAX_COLUMNS:,}). Check the separator.")
    return TableLayout(file_name, (), None, tuple(_header_names(cells)))


def find_input_files(folder: Path) -> list[Path]:
    """List the ``*.csv`` and ``*.xlsx`` files directly in ``folder``, sorted by name.

    Excel lock files (``~$...``) and hidden files are skipped. Raises :class:`InputError`
    naming the folder if it does not exist or holds no such file.
    """
    folder = Path(folder)
    if not folder.exists():
        raise _error(str(folder), "this folder does not exist. Check the path or create it.")
    if not folder.is_dir():
        raise _error(str(folder), "this is a file, not a folder. Give the folder that holds the input files.")
    files = sorted(
        (
            p
            for p in folder.iterdir()
            if p.is_file()
            and p.suffix.lower() in _FOLDER_SUFFIXES
            and not p.name.startswith(("~$", "."))
        ),
        key=lambda p: p.name,
    )
    if not files:
        raise _error(
            str(folder),
            "this folder holds no .csv or .xlsx files. Put the paragraph files there or choose "
            "another folder.",
        )
    return files


# ----------------------------------------------------------------------------------------------
# Loading and decoding
# ----------------------------------------------------------------------------------------------


def _source_name(source: SourceLike) -> str:
    if isinstance(source, InputSource):
        return source.name
    if isinstance(source, tuple):
        return Path(str(source[0])).name or str(source[0])
    return Path(source).name


def _load(source: Path | tuple[str, bytes], limits: InputLimits) -> tuple[str, bytes]:
    if isinstance(source, tuple):
        if len(source) != 2:
            raise TypeError("an upload must be given as (file_name, bytes)")
        name, raw = source
        if isinstance(raw, (bytearray, memoryview)):
            raw = bytes(raw)
        if not isinstance(raw, bytes):
            raise TypeError("an upload must be given as (file_name, bytes)")
        name = _source_name(source)
        if len(raw) > limits.max_bytes:
            raise _too_big(name, len(raw), limits)
        return name, raw
    path = Path(source)
    name = path.name
    try:
        # stat before open: opening a named pipe blocks until a writer appears (forever), and
        # opening a device can have effects of its own.
        _require_regular_file(name, os.stat(path))
        # O_NONBLOCK: should the path be swapped for a pipe after the stat, open still returns
        # and the fstat below refuses it.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise _error(name, f"file not found at {excerpt(path)}. Check the path.") from None
    except OSError as exc:
        raise _error(name, f"the file cannot be opened ({excerpt(exc.strerror or exc)}). Is it open in another program?") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        _require_regular_file(name, info)
        if info.st_size > limits.max_bytes:
            raise _too_big(name, info.st_size, limits)
        try:
            data = handle.read(limits.max_bytes + 1)  # a file still growing stops at the limit
        except OSError as exc:
            raise _error(name, f"the file cannot be read ({excerpt(exc.strerror or exc)}).") from None
    if len(data) > limits.max_bytes:
        raise _too_big(name, len(data), limits)
    return name, data


def _require_regular_file(name: str, info: os.stat_result) -> None:
    """Refuse anything but a regular file (a folder, named pipe, device or socket)."""
    mode = info.st_mode
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise _error(name, "this is a folder, not a file.")
    if stat.S_ISFIFO(mode):
        what = "a named pipe (FIFO)"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        what = "a device"
    elif stat.S_ISSOCK(mode):
        what = "a socket"
    else:
        what = "a special file"
    raise _error(name, f"this is {what}, not a regular file, so it is not read. Give a .csv or .xlsx file.")


def _too_big(name: str, size: int, limits: InputLimits, what: str = "the file is") -> InputError:
    return _error(
        name,
        f"{what} {size:,} bytes, over the limit of {limits.max_bytes:,} bytes. Split it into "
        f"smaller files, or {_limit_hint('max_bytes')}.",
    )


def _is_xlsx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return "xl/workbook.xml" in zf.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return False


def _reject_binary(file_name: str, data: bytes) -> None:
    """Raise InputError if ``data`` is clearly not a text table."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return  # UTF-16 with BOM ("Unicode text" export); NUL bytes are expected there
    what = None
    for magic, label in _MAGIC:
        if data.startswith(magic):
            what = label
            break
    if what is None and data.startswith(_OLE_MAGIC):
        raise _error(
            file_name,
            "this is not a text file: it looks like an old Excel .xls workbook or a "
            "password-protected workbook. Save it from Excel as CSV or .xlsx (without password).",
        )
    if what is None and data.startswith(_ZIP_MAGIC):
        what = "a ZIP archive (or another Office document)"
    if what is None and b"\x00" in data:
        what = "a binary file (it contains NUL bytes)"
    if what is None:
        sample = data[:65536]
        control = sum(sample.count(bytes([b])) for b in range(32) if b not in (9, 10, 12, 13))
        if control > max(8, len(sample) // 100):
            what = "a binary file (it contains many control characters)"
    if what is not None:
        raise _error(
            file_name,
            f"this is not a text table: it looks like {what}. Choose the CSV (or .xlsx) file "
            "with the paragraph_text column instead.",
        )


def _decode(file_name: str, data: bytes) -> tuple[str, str, list[str]]:
    """Decode bytes; return (text, encoding name, warnings)."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig", []
        except UnicodeDecodeError:
            pass  # a BOM followed by non-UTF-8 bytes: fall through to the legacy encodings
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise _error(
                file_name,
                "the file starts like UTF-16 text but cannot be decoded. Save it again as "
                "CSV UTF-8.",
            ) from None
        return text.lstrip("\ufeff"), "utf-16", [
            _Note("the file is UTF-16 (Excel 'Unicode text'); it was decoded as such")
        ]
    else:
        try:
            return data.decode("utf-8"), "utf-8", []
        except UnicodeDecodeError:
            pass
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 BOM in front of legacy-encoded text
    # Rows pasted together from several sources can mix UTF-8 and cp1252. Decoding the whole
    # file as cp1252 would garble every UTF-8 row; the per-line pass runs only when the bytes
    # hold something that looks like UTF-8, so a plain cp1252 export costs one quick scan.
    if _has_utf8_sequence(data):
        mixed = _decode_per_line(data)
        if mixed is not None:
            return mixed
    try:
        text = data.decode("cp1252")
        return text, "cp1252", [
            _Note("the file is not UTF-8; it was decoded as cp1252 (Windows/Excel). Check that "
                  "accented letters and symbols look right, or save it as 'CSV UTF-8'.")
        ]
    except UnicodeDecodeError:
        text = data.decode("latin-1")
        return text, "latin-1", [
            "the file is neither UTF-8 nor cp1252; it was decoded as latin-1, so some "
            "characters may be wrong. Save it as 'CSV UTF-8' to be sure."
        ]


def _has_utf8_sequence(data: bytes, chunk: int = 1 << 24) -> bool:
    """Whether ``data`` holds a UTF-8 lead byte followed by a continuation byte. Text that is not
    valid UTF-8 as a whole and has none is plainly legacy-encoded. Scanned with numpy in chunks
    (overlapping by one byte): a regex takes several times as long on a large file."""
    array = np.frombuffer(data, dtype=np.uint8)
    for start in range(0, max(len(array) - 1, 0), chunk):
        part = array[start : start + chunk + 1]
        lead, follow = part[:-1], part[1:]
        if bool(((lead >= 0xC2) & (lead <= 0xF4) & (follow >= 0x80) & (follow <= 0xBF)).any()):
            return True
    return False


def _decode_per_line(data: bytes) -> tuple[str, str, list[str]] | None:
    """Decode each line as UTF-8 when it is valid UTF-8, else as cp1252 (else latin-1).

    Returns None when no line holds non-ASCII UTF-8, i.e. the file is plainly legacy-encoded.
    A line break byte never occurs inside a UTF-8 or cp1252 character, so splitting the bytes
    on it is safe.
    """
    lines = data.split(b"\n")
    decoded: list[str] = []
    legacy: dict[str, list[int]] = {"cp1252": [], "latin-1": []}
    utf8_seen = False
    for i, line in enumerate(lines):
        try:
            decoded.append(line.decode("utf-8"))
            utf8_seen = utf8_seen or not line.isascii()
        except UnicodeDecodeError:
            try:
                decoded.append(line.decode("cp1252"))
                legacy["cp1252"].append(i)
            except UnicodeDecodeError:
                decoded.append(line.decode("latin-1"))
                legacy["latin-1"].append(i)
    if not utf8_seen:
        return None
    sep_line = _SEP_LINE.match(decoded[0] + "\n")
    skip_first = bool(sep_line and sep_line.group(1) in _SEPARATORS)  # as _read_text skips it
    row_of_line = _rows_of_lines(lines, skip_first=skip_first)
    warnings = []
    for encoding, where in legacy.items():
        if where:
            rows = sorted({row_of_line[i] for i in where})
            word = "row" if len(rows) == 1 else "rows"
            warnings.append(
                f"the file mixes UTF-8 and other text: {word} {_format_rows(rows)} "
                f"{'is' if len(rows) == 1 else 'are'} not UTF-8 and "
                f"{'was' if len(rows) == 1 else 'were'} read as {encoding}. Check the accented "
                "letters there, or save the file as 'CSV UTF-8'."
            )
    return "\n".join(decoded), "utf-8/cp1252 (per line)", warnings


def _rows_of_lines(lines: list[bytes], *, skip_first: bool) -> list[int]:
    """The spreadsheet row of each physical line: a line inside an open double quote belongs to
    the row where the quote opened (an escaped quote "" counts twice, so it cancels out)."""
    rows: list[int] = []
    row = 0 if skip_first else 1  # an Excel 'sep=' first line is not a row
    in_quotes = False
    for line in lines:
        rows.append(max(row, 1))
        if line.count(b'"') % 2:
            in_quotes = not in_quotes
        if not in_quotes:
            row += 1
    return rows


# ----------------------------------------------------------------------------------------------
# CSV
# ----------------------------------------------------------------------------------------------

_SEP_LINE = re.compile(r"\A[ \t]*sep=(.)[ \t]*\r?\n", re.IGNORECASE)


_QUOTE_OR_BREAK = re.compile(r'["\r\n]')


def _header_record(text: str) -> str:
    """The first logical record (a quoted header cell may contain a line break). Jumps from
    quote to quote with str methods: a header can be megabytes long."""
    pos = 0
    while True:
        found = _QUOTE_OR_BREAK.search(text, pos)
        if found is None:
            return text
        if found.group() != '"':
            return text[: found.start()]
        closing = text.find('"', found.end())
        if closing < 0:
            return text
        pos = closing + 1


def _count_outside_quotes(line: str, char: str) -> int:
    # Between the quotes of a line split on '"', the odd parts are the quoted ones.
    return sum(part.count(char) for part in line.split('"')[::2])


def _detect_separator(header: str, sample: str = "") -> str | None:
    """Pick the separator from the header line; break ties with the following lines."""
    counts = {sep: _count_outside_quotes(header, sep) for sep in _SEPARATORS}
    best = max(counts.values())
    if best == 0:
        return None  # a single column
    candidates = [sep for sep in ("\t", ";", ",") if counts[sep] == best]
    if len(candidates) > 1 and sample:
        lines = [ln for ln in sample.splitlines()[1:21] if ln.strip()]

        def agreement(sep: str) -> int:
            return sum(_count_outside_quotes(ln, sep) == counts[sep] for ln in lines)

        # max() keeps the first of equal scores: tab, then ';', then ','.
        return max(candidates, key=agreement)
    return candidates[0]


def _read_text(
    file_name: str, text: str, encoding: str, warnings: list[str], limits: InputLimits,
    finish: Callable[..., Any] | None = None,
) -> InputTable:
    separator: str | None
    m = _SEP_LINE.match(text)
    if m and m.group(1) in _SEPARATORS:
        separator = m.group(1)
        text = text[m.end():]
        warnings.append(_Note(f"the first line 'sep={separator}' (an Excel hint) was skipped"))
        header = _header_record(text)
    else:
        header = _header_record(text)
        separator = _detect_separator(header, text[:20000])

    if not text.strip():
        raise _error(file_name, "the file has no data rows (it is empty or only whitespace).")

    # pandas fills short rows up to the header's width, so a wide header times many short lines
    # is a memory bomb: bound the rows read by the cell limit too, and stop parsing one row past
    # the limit (nrows counts the header row).
    columns = _count_outside_quotes(header, separator) + 1 if separator is not None else 1
    if columns > _MAX_COLUMNS:
        raise _error(
            file_name,
            f"the header has {columns:,} columns, more than a spreadsheet holds ({_MAX_COLUMNS:,}). "
            "Check the separator, or keep only the pdf_file_name and paragraph_text columns.",
        )
    row_cap = min(limits.max_rows, limits.max_cells // columns)

    # A single-column file: split on a character that cannot occur, so commas stay in the text.
    parse_sep = separator if separator is not None else _unused_char(text)
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
        raise _error(file_name, "the file has no data rows (it is empty or only whitespace).") from None
    except pd.errors.ParserError as exc:
        raise _error(file_name, _explain_parser_error(str(exc), separator)) from None
    _check_shape(file_name, raw.shape[0] - 1, max(columns, raw.shape[1]), limits)
    return (finish or _finish)(file_name, raw, encoding, separator, warnings, limits)


def _check_shape(file_name: str, rows: int, columns: int, limits: InputLimits, declared: bool = False) -> None:
    """Raise InputError if ``rows`` data rows of ``columns`` cells are over the limits."""
    how = "declares" if declared else "has"
    if rows > limits.max_rows:
        raise _error(
            file_name,
            f"the file {how} more than {limits.max_rows:,} data rows, the limit. Remove empty "
            f"rows or split it into smaller files, or {_limit_hint('max_rows')}.",
        )
    if rows * columns > limits.max_cells:
        raise _error(
            file_name,
            f"the file {how} more than {limits.max_cells:,} cells ({columns:,} columns), the "
            "limit. Remove unused columns or split it into smaller files, or "
            f"{_limit_hint('max_cells')}.",
        )


def _unused_char(text: str) -> str:
    for ch in ("\x1f", "\x1e", "\x1d", "\x1c", "\x07"):
        if ch not in text:
            return ch
    return "\x1f"  # pragma: no cover - text with all of these is rejected as binary earlier


def _explain_parser_error(message: str, separator: str | None) -> str:
    sep_label = _separator_label(separator)
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


# ----------------------------------------------------------------------------------------------
# XLSX
# ----------------------------------------------------------------------------------------------


def _open_workbook(file_name: str, data: bytes, limits: InputLimits) -> Any:
    """A read-only openpyxl workbook of ``data``, after the checks that make opening it safe."""
    if not data:
        raise _error(file_name, "the file is empty (0 bytes); it has no data rows.")
    if data.startswith(_OLE_MAGIC):
        raise _error(
            file_name,
            "this is not a valid .xlsx workbook: it looks like an old .xls file or a "
            "password-protected workbook. Save it from Excel as .xlsx (without password) or CSV.",
        )
    if not data.startswith(_ZIP_MAGIC) or not _is_xlsx(data):
        raise _error(
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
        raise _too_big(file_name, unpacked, limits, what="unpacked, the workbook is")
    try:
        # Read-only mode streams the sheet row by row instead of building it in memory.
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many types on damaged files
        raise _damaged_xlsx(file_name, exc) from None


def _read_xlsx(file_name: str, data: bytes, warnings: list[str], limits: InputLimits,
               finish: Callable[..., Any] | None = None, choose: _SheetChoice | None = None) -> InputTable:
    book = _open_workbook(file_name, data, limits)
    try:
        sheets = list(book.sheetnames)
        if not sheets:
            raise _error(file_name, "the workbook has no sheets, so it has no data rows.")
        name = _pick_sheet(file_name, book, sheets, choose, limits, warnings)
        rows, header_row = _sheet_rows(file_name, book[name], limits)
    except InputError:
        raise
    except Exception as exc:
        raise _damaged_xlsx(file_name, exc) from None
    finally:
        book.close()
    if not rows:
        raise _error(file_name, f"the sheet '{excerpt(name, 60)}' is empty; it has no data rows."
                     + (f" The workbook's sheets: {_quoted_names(sheets)}." if len(sheets) > 1 else ""))
    table = (finish or _finish)(file_name, pd.DataFrame(rows, dtype=object), "xlsx", None, warnings, limits,
                                header_row)
    if isinstance(table, InputTable):
        table.report.sheet = name
    return table


def _pick_sheet(file_name: str, book: Any, sheets: list[str], choose: _SheetChoice | None, limits: InputLimits,
                warnings: list[str]) -> str:
    """The name of the sheet to read (see :class:`_SheetChoice`); a note says which one was read
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
                               f"{_quoted_names(sheets)} (give a name or a number from 1 to {len(sheets)}).")
        if len(sheets) > 1:
            warnings.append(_Note(f"sheet '{excerpt(name, 60)}' was read, as chosen (of {len(sheets)} sheets)"))
        return name
    if len(sheets) == 1:
        return sheets[0]
    if choose is None:  # plain tables (read_table): the first sheet, as before
        warnings.append(f"the workbook has {len(sheets)} sheets; only the first ('{excerpt(sheets[0])}') was read")
        return sheets[0]
    wanted = choose.text_column.casefold()
    headers: list[tuple[str, list[str]]] = []
    for name in sheets:
        header = _header_names(_sheet_header(book[name], limits))
        if wanted in (h.casefold() for h in header):
            others = [s for s in sheets if s != name]
            if name == sheets[0]:
                warnings.append(_Note(f"the workbook has {len(sheets)} sheets; the first, '{excerpt(name, 60)}', was "
                                      f"read (the others: {_quoted_names(others)})"))
            else:
                warnings.append(_Note(f"sheet '{excerpt(name, 60)}' was read: the first of {len(sheets)} sheets with "
                                      f"a '{excerpt(choose.text_column, 60)}' column (the others: "
                                      f"{_quoted_names(others)})"))
            return name
        headers.append((name, header))
    shown = "; ".join(f"'{excerpt(name, 60)}' ({_quoted_names(header) if header else 'empty'})"
                      for name, header in headers[:_MAX_COLUMNS_LISTED])
    if len(headers) > _MAX_COLUMNS_LISTED:
        shown += f" and {len(headers) - _MAX_COLUMNS_LISTED:,} more sheets"
    raise ChoiceNeeded(
        excerpt(file_name),
        f"no sheet of the workbook has a '{excerpt(choose.text_column, 60)}' column. Sheets and their columns: "
        f"{shown}. Choose the sheet and the column that holds the paragraphs.",
    )


def _sheet_header(sheet: object, limits: InputLimits) -> list[str]:
    """A read-only sheet's header (its first non-blank row) as text; empty for a blank sheet."""
    return _find_header(sheet, limits)[1]


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


def _damaged_xlsx(file_name: str, exc: Exception) -> InputError:
    return _error(
        file_name,
        f"this .xlsx workbook is damaged and cannot be read ({type(exc).__name__}). "
        "Open it in Excel and save it again as .xlsx or CSV.",
    )


def _sheet_rows(file_name: str, sheet: object, limits: InputLimits) -> tuple[list[list[str]], int]:
    """The cells of a read-only sheet as text, from its first non-blank row (the header) to its
    last non-blank row, each row cut or padded to the header's width; and the header's row
    number (0 for a blank sheet). Raises InputError as soon as the rows or cells pass the
    limits, so a sheet of millions of rows is never parsed to its end."""
    # The sheet's declared size (its <dimension> element; None if absent) is checked before a
    # single row is parsed. It can also be wrong, so the rows read are bounded too.
    declared_rows, declared_columns = sheet.max_row, sheet.max_column  # type: ignore[attr-defined]
    if declared_rows and declared_columns:
        _check_shape(file_name, declared_rows - 1, declared_columns, limits, declared=True)
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
            _check_shape(file_name, offset, width, limits)
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


# ----------------------------------------------------------------------------------------------
# Shared: header, columns, dropped rows
# ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _blank_chars() -> str:
    """Every character that shows nothing: whitespace and the Unicode format characters (Cf:
    zero-width space and joiners, word joiner, BOM, soft hyphen, bidi marks, ...). Cf occurs
    only in planes 0, 1 and 14, so scanning those is enough (and ten times faster)."""
    code_points = [*range(0x20000), *range(0xE0000, 0xE1000)]
    return "".join(
        ch for ch in map(chr, code_points) if ch.isspace() or unicodedata.category(ch) == "Cf"
    )


def _clean_name(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return _CONTROL_RE.sub("", str(value)).strip(_blank_chars())


def _header_names(cells: Iterable[object]) -> list[str]:
    """Header cells as the column names a user picks from: cleaned, an empty one ``column N``."""
    return [_clean_name(v) or f"column {i}" for i, v in enumerate(cells, start=1)]


def _quoted_names(names: list[str]) -> str:
    """Column names for a message: each shortened, at most _MAX_COLUMNS_LISTED of them."""
    shown = ", ".join(f"'{excerpt(h, 60)}'" if h else "(empty)" for h in names[:_MAX_COLUMNS_LISTED])
    if len(names) > _MAX_COLUMNS_LISTED:
        shown += f" and {len(names) - _MAX_COLUMNS_LISTED:,} more"
    return shown


def _remove_controls(col: pd.Series) -> tuple[pd.Series, int]:
    """``col`` without terminal escapes and control characters, and how many cells had some.
    Most cells have none, so only the ones that match are rewritten."""
    has = col.str.contains(_CONTROL_CHAR_PATTERN, regex=True)
    count = int(has.sum())
    if count:
        col = col.mask(has, col[has].str.replace(_CONTROL_PATTERN, "", regex=True))
    return col, count


def _finish(
    file_name: str,
    raw: pd.DataFrame,
    encoding: str,
    separator: str | None,
    warnings: list[str],
    limits: InputLimits,
    header_row: int = 1,
    *,
    text_column: str | None = None,
) -> InputTable:
    """Turn a header-less raw frame (first row = header, on sheet row ``header_row``) into an
    InputTable, the paragraphs taken from ``text_column`` (default ``paragraph_text``)."""
    header = [_clean_name(v) for v in raw.iloc[0].tolist()]
    body = raw.iloc[1:]
    rows_read = int(body.shape[0])

    lowered = [h.lower() for h in header]
    counts: dict[str, int] = {}
    for name in lowered:
        if name:
            counts[name] = counts.get(name, 0) + 1
    dupes = [name for name, c in counts.items() if c > 1]
    if dupes:
        shown = ", ".join(
            f"'{excerpt(next(h for h in header if h.lower() == d), 60)}' ({counts[d]} times)"
            for d in dupes[:_MAX_COLUMNS_LISTED]
        )
        if len(dupes) > _MAX_COLUMNS_LISTED:
            shown += f" and {len(dupes) - _MAX_COLUMNS_LISTED:,} more"
        warnings.append(f"duplicate column names: {shown}")

    wanted = (text_column or TEXT_COLUMN).lower()
    names = [h.lower() for h in _header_names(header)]  # an empty header cell is "column N"
    if wanted not in names:
        found = _quoted_names(header) or "(none)"
        hint = ""
        if separator is None and len(header) == 1 and encoding != "xlsx":
            hint = " No separator (comma, semicolon or tab) was found in the header line."
        if text_column is None:
            what = ("there is no 'paragraph_text' column", "Choose the column that holds the paragraphs, or "
                    "rename it to paragraph_text.")
        else:
            what = (f"there is no column '{excerpt(text_column, 60)}' to read the paragraphs from",
                    "Choose one of the columns found.")
        raise ChoiceNeeded(excerpt(file_name), f"{what[0]}. Columns found: {found}.{hint} {what[1]}")
    text_idx = names.index(wanted)
    if names.count(wanted) > 1:
        warnings.append(
            f"'{excerpt(header[text_idx], 60)}' appears {names.count(wanted)} times; the first one "
            f"(column {text_idx + 1}) was used"
        )
    if text_column is not None and wanted != TEXT_COLUMN:
        warnings.append(_Note(f"the paragraphs were read from the column '{excerpt(header[text_idx] or names[text_idx], 60)}', "
                              "as chosen"))
    pdf_idx = lowered.index(PDF_COLUMN) if PDF_COLUMN in lowered and lowered.index(PDF_COLUMN) != text_idx else None
    if pdf_idx is not None and counts[PDF_COLUMN] > 1:
        warnings.append(
            f"'pdf_file_name' appears {counts[PDF_COLUMN]} times; the first one "
            f"(column {pdf_idx + 1}) was used"
        )

    if rows_read == 0:
        raise _error(
            file_name,
            "the file has a header but no data rows. Add paragraphs below the header row.",
        )

    first = header_row + 1
    row_numbers = pd.Series(range(first, first + rows_read), dtype="int64", index=body.index)
    text, text_cleaned = _remove_controls(_as_str(body.iloc[:, text_idx]))
    text = text.str.strip()
    pdf_cleaned = 0
    if pdf_idx is None:
        pdf = pd.Series("", index=body.index, dtype="str")
        warnings.append(
            "no 'pdf_file_name' column; results cannot be linked to report files or investors"
        )
    else:
        pdf, pdf_cleaned = _remove_controls(_as_str(body.iloc[:, pdf_idx]))
        pdf = pdf.str.strip()
    if text_cleaned or pdf_cleaned:
        warnings.append(
            "control characters or terminal escape sequences were removed from "
            f"{text_cleaned:,} paragraph_text and {pdf_cleaned:,} pdf_file_name cells"
        )
    extras = _input_columns(header, body, skip=(text_idx, pdf_idx), warnings=warnings)

    # Zero-width spaces, BOMs and the like show nothing: a paragraph made only of them is empty.
    empty = text.str.strip(_blank_chars()) == ""
    lengths = text.str.len()
    too_long = ~empty & (lengths > limits.max_paragraph_chars)
    dropped: list[DroppedRow] = []
    if bool(empty.any()):
        empty_body = body.loc[empty]
        all_blank = empty_body.apply(lambda col: _as_str(col).str.strip() == "").all(axis=1)
        for r, blank, value in zip(row_numbers[empty].tolist(), all_blank.tolist(), text[empty].tolist()):
            if value:
                reason = "paragraph_text has only invisible characters (zero-width, BOM)"
            else:
                reason = "empty row" if blank else "empty paragraph_text"
            dropped.append(DroppedRow(row=int(r), reason=reason))
    if bool(too_long.any()):
        for r, n in zip(row_numbers[too_long].tolist(), lengths[too_long].tolist()):
            dropped.append(DroppedRow(
                row=int(r),
                reason=(
                    f"paragraph too long: {int(n):,} characters, the limit is "
                    f"{limits.max_paragraph_chars:,} ({LIMIT_SETTINGS['max_paragraph_chars']})"
                ),
            ))
        dropped.sort(key=lambda d: d.row)

    keep = ~(empty | too_long)
    # The string columns stay in pandas' own string storage: a round trip through Python
    # objects would cost more than all the cleaning above.
    frame = pd.DataFrame(
        {
            "row": row_numbers[keep].to_numpy(dtype="int64"),
            TEXT_COLUMN: text[keep].reset_index(drop=True),
            PDF_COLUMN: pdf[keep].reset_index(drop=True),
            **{name: column[keep].reset_index(drop=True) for name, column in extras.items()},
        }
    )
    frame = frame.astype({"row": "int64", TEXT_COLUMN: "str", PDF_COLUMN: "str", **dict.fromkeys(extras, "str")})

    if pdf_idx is not None:
        missing_pdf = int((frame[PDF_COLUMN] == "").sum())
        if missing_pdf:
            warnings.append(f"{missing_pdf} kept rows have an empty pdf_file_name")

    if frame.empty:
        if bool(too_long.any()):
            raise _error(
                file_name,
                f"no usable data rows: all {rows_read:,} rows have an empty paragraph_text or one "
                f"longer than {limits.max_paragraph_chars:,} characters "
                f"({_limit_hint('max_paragraph_chars')}).",
            )
        raise _error(
            file_name,
            f"no data rows with text: all {rows_read} rows have an empty paragraph_text.",
        )

    report = InputReport(
        file_name=file_name,
        rows_read=rows_read,
        rows_kept=int(frame.shape[0]),
        dropped=dropped,
        warnings=[str(w) for w in warnings if not isinstance(w, _Note)],
        encoding=encoding,
        separator=separator,
        notes=[str(w) for w in warnings if isinstance(w, _Note)],
        text_column=header[text_idx] or names[text_idx],
    )
    return InputTable(file_name=file_name, frame=frame, report=report)


def _input_columns(header: list[str], body: pd.DataFrame, *, skip: tuple[int | None, ...],
                   warnings: list[str]) -> dict[str, pd.Series]:
    """Every column of an input file besides the paragraph and report columns, as text, under
    the names :func:`core.columns.input_column_names` gives them (the renames are warned about)."""
    positions = [i for i in range(len(header)) if i not in skip]
    names, renamed = input_column_names([header[i] or f"column {i + 1}" for i in positions])
    clash = [(old, new) for old, new in renamed if new.startswith("input_")]
    if clash:
        shown = ", ".join(f"'{excerpt(old, 60)}' as '{excerpt(new, 60)}'" for old, new in clash[:_MAX_COLUMNS_LISTED])
        warnings.append(f"columns named like the product's own are kept under another name: {shown}")
    columns: dict[str, pd.Series] = {}
    cleaned = 0
    for name, position in zip(names, positions):
        column, count = _remove_controls(_as_str(body.iloc[:, position]))
        columns[name] = column
        cleaned += count
    if cleaned:
        warnings.append(f"control characters or terminal escape sequences were removed from {cleaned:,} cells "
                        "of the other columns")
    return columns


def _finish_table(
    file_name: str,
    raw: pd.DataFrame,
    encoding: str,
    separator: str | None,
    warnings: list[str],
    limits: InputLimits,
    header_row: int = 1,
) -> TextTable:
    """Turn a header-less raw frame (first row = header) into a TextTable: every column kept."""
    header = [_clean_name(v) for v in raw.iloc[0].tolist()]
    body = raw.iloc[1:]
    names: list[str] = []
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        name = name or f"column {position}"
        seen[name.lower()] = seen.get(name.lower(), 0) + 1
        if seen[name.lower()] > 1:
            warnings.append(f"the column name '{excerpt(name, 60)}' appears more than once; the repeat "
                            f"(column {position}) was named '{excerpt(name, 60)} ({seen[name.lower()]})'")
            name = f"{name} ({seen[name.lower()]})"
        names.append(name)
    first = header_row + 1
    row_numbers = np.arange(first, first + body.shape[0], dtype=np.int64)
    columns: dict[str, pd.Series] = {}
    cleaned = 0
    for index, name in enumerate(names):
        column, count = _remove_controls(_as_str(body.iloc[:, index]))
        columns[name] = column.reset_index(drop=True)
        cleaned += count
    frame = pd.DataFrame(columns, index=pd.RangeIndex(body.shape[0]))
    if cleaned:
        warnings.append(f"control characters or terminal escape sequences were removed from {cleaned:,} cells")
    blank = frame.apply(lambda col: col.str.strip() == "").all(axis=1) if names else pd.Series(True, index=frame.index)
    frame = frame.loc[~blank].reset_index(drop=True)
    rows = row_numbers[~blank.to_numpy()].tolist()
    if frame.empty:
        raise _error(file_name, "the file has a header but no data rows. Add rows below the header row.")
    return TextTable(file_name=file_name, frame=frame, rows=rows, encoding=encoding, separator=separator,
                     warnings=warnings)


def _as_str(col: pd.Series) -> pd.Series:
    """A column as plain strings, missing cells as ''."""
    return col.fillna("").astype("str")


def _separator_label(separator: str | None) -> str:
    if separator is None:
        return "none (single column)"
    if separator == "\t":
        return "tab"
    return f"'{separator}'"


def _format_rows(rows: list[int]) -> str:
    if len(rows) <= _MAX_ROWS_LISTED:
        return ", ".join(str(r) for r in rows)
    shown = ", ".join(str(r) for r in rows[:_MAX_ROWS_LISTED])
    return f"{shown} and {len(rows) - _MAX_ROWS_LISTED} more"
