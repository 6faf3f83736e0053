"""Robust reading of input tables (CSV and XLSX) with a report of what was dropped.

Researchers hand us paragraphs in whatever their tools produced: UTF-8 CSVs, Excel "CSV"
exports (``;``-separated, cp1252, sometimes a BOM or a ``sep=;`` first line), tab-separated
text, or ``.xlsx`` workbooks. Every reader here returns the same shape, an :class:`InputTable`
whose frame has exactly the columns ``row``, ``paragraph_text`` and ``pdf_file_name``, plus an
:class:`InputReport` that says what was read, what was dropped and why. Nothing is dropped
silently; anything that makes the file unusable raises :class:`core.errors.InputError` with a
message naming the file, the problem and what to do about it.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.errors import InputError

__all__ = [
    "DroppedRow",
    "InputReport",
    "InputTable",
    "TEXT_COLUMN",
    "PDF_COLUMN",
    "read_input",
    "read_inputs",
    "find_input_files",
]

TEXT_COLUMN = "paragraph_text"
PDF_COLUMN = "pdf_file_name"

_TEXT_SUFFIXES = {".csv", ".tsv", ".txt"}
_XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_FOLDER_SUFFIXES = {".csv", ".xlsx"}
_SEPARATORS = (",", ";", "\t")
_MAX_ROWS_LISTED = 20

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
    warnings: list[str]  # e.g. duplicate column names, no pdf_file_name column, encoding fallback
    encoding: str  # "utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16" or "xlsx"
    separator: str | None  # "," ";" "\t", or None for xlsx and single-column text

    def summary(self) -> str:
        """Return one or two readable lines describing the read.

        Example: ``reports_a.csv: 38 rows read, 36 kept, 2 dropped (empty paragraph_text:
        rows 5, 17); encoding cp1252, separator ';'``. A second line lists warnings, if any.
        """
        head = f"{self.file_name}: {self.rows_read} rows read, {self.rows_kept} kept"
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
        if self.warnings:
            head += "\nWarnings: " + " | ".join(self.warnings)
        return head


@dataclass
class InputTable:
    """The usable rows of one input file.

    ``frame`` has exactly the columns ``row`` (int64, spreadsheet row number),
    ``paragraph_text`` (str, never empty) and ``pdf_file_name`` (str, ``""`` if absent).
    """

    file_name: str
    frame: pd.DataFrame
    report: InputReport


# ----------------------------------------------------------------------------------------------
# Public functions
# ----------------------------------------------------------------------------------------------


def read_input(source: Path | tuple[str, bytes]) -> InputTable:
    """Read one input table from a path on disk or from ``(file_name, raw bytes)``.

    The tuple form is what a browser upload delivers. CSV-like files (``.csv``, ``.tsv``,
    ``.txt``) are decoded as UTF-8 (with or without BOM), UTF-16 with BOM, cp1252 or, as a
    last resort, latin-1; the separator (``,`` ``;`` or tab) is detected from the header line.
    ``.xlsx`` files are read from their first sheet. All cells are kept as written (strings).

    Rows whose ``paragraph_text`` is empty or whitespace only are dropped and listed in the
    report. Raises :class:`InputError` when the file cannot be used at all.
    """
    file_name, data = _load(source)
    suffix = Path(file_name).suffix.lower()

    if suffix in _XLSX_SUFFIXES:
        return _read_xlsx(file_name, data, warnings=[])
    if suffix == ".xls":
        raise InputError(
            file_name,
            "old Excel .xls workbooks are not supported. Open it in Excel and save it as "
            ".xlsx (Excel Workbook) or as CSV, then load that file.",
        )
    if suffix not in _TEXT_SUFFIXES:
        shown = suffix or "no extension"
        raise InputError(
            file_name,
            f"unsupported file type ({shown}). Use a .csv file (comma, semicolon or tab "
            "separated) or an Excel .xlsx workbook.",
        )

    if not data:
        raise InputError(file_name, "the file is empty (0 bytes); it has no data rows.")
    if data.startswith(_ZIP_MAGIC) and _is_xlsx(data):
        return _read_xlsx(
            file_name,
            data,
            warnings=["this .csv file is really an Excel workbook; it was read as .xlsx"],
        )
    _reject_binary(file_name, data)
    text, encoding, warnings = _decode(file_name, data)
    return _read_text(file_name, text, encoding, warnings)


def read_inputs(sources: Iterable[Path | tuple[str, bytes]]) -> list[InputTable]:
    """Read several input tables, in the given order.

    Raises :class:`InputError` on the first file that cannot be used, and when two sources
    have the same file name (results are written per source file, so names must differ).
    """
    tables: list[InputTable] = []
    seen: set[str] = set()
    for source in sources:
        name = _source_name(source)
        if name in seen:
            raise InputError(
                name,
                "this file name appears twice among the inputs. Results are kept per file, so "
                "rename one of them or remove the duplicate.",
            )
        seen.add(name)
        tables.append(read_input(source))
    return tables


def find_input_files(folder: Path) -> list[Path]:
    """List the ``*.csv`` and ``*.xlsx`` files directly in ``folder``, sorted by name.

    Excel lock files (``~$...``) and hidden files are skipped. Raises :class:`InputError`
    naming the folder if it does not exist or holds no such file.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(str(folder), "this folder does not exist. Check the path or create it.")
    if not folder.is_dir():
        raise InputError(str(folder), "this is a file, not a folder. Give the folder that holds the input files.")
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
        raise InputError(
            str(folder),
            "this folder holds no .csv or .xlsx files. Put the paragraph files there or choose "
            "another folder.",
        )
    return files


# ----------------------------------------------------------------------------------------------
# Loading and decoding
# ----------------------------------------------------------------------------------------------


def _source_name(source: Path | tuple[str, bytes]) -> str:
    if isinstance(source, tuple):
        return Path(str(source[0])).name or str(source[0])
    return Path(source).name


def _load(source: Path | tuple[str, bytes]) -> tuple[str, bytes]:
    if isinstance(source, tuple):
        if len(source) != 2:
            raise TypeError("an upload must be given as (file_name, bytes)")
        name, raw = source
        if isinstance(raw, (bytearray, memoryview)):
            raw = bytes(raw)
        if not isinstance(raw, bytes):
            raise TypeError("an upload must be given as (file_name, bytes)")
        return _source_name(source), raw
    path = Path(source)
    name = path.name
    if path.is_dir():
        raise InputError(name, "this is a folder, not a file.")
    try:
        return name, path.read_bytes()
    except FileNotFoundError:
        raise InputError(name, f"file not found at {path}. Check the path.") from None
    except OSError as exc:
        raise InputError(name, f"the file cannot be opened ({exc.strerror or exc}). Is it open in another program?") from None


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
        raise InputError(
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
        raise InputError(
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
            raise InputError(
                file_name,
                "the file starts like UTF-16 text but cannot be decoded. Save it again as "
                "CSV UTF-8.",
            ) from None
        return text.lstrip("\ufeff"), "utf-16", [
            "the file is UTF-16 (Excel 'Unicode text'); it was decoded as such"
        ]
    else:
        try:
            return data.decode("utf-8"), "utf-8", []
        except UnicodeDecodeError:
            pass
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 BOM in front of legacy-encoded text
    try:
        text = data.decode("cp1252")
        return text, "cp1252", [
            "the file is not UTF-8; it was decoded as cp1252 (Windows/Excel). Check that "
            "accented letters and symbols look right, or save it as 'CSV UTF-8'."
        ]
    except UnicodeDecodeError:
        text = data.decode("latin-1")
        return text, "latin-1", [
            "the file is neither UTF-8 nor cp1252; it was decoded as latin-1, so some "
            "characters may be wrong. Save it as 'CSV UTF-8' to be sure."
        ]


# ----------------------------------------------------------------------------------------------
# CSV
# ----------------------------------------------------------------------------------------------

_SEP_LINE = re.compile(r"\A[ \t]*sep=(.)[ \t]*\r?\n", re.IGNORECASE)


def _header_record(text: str) -> str:
    """The first logical record (a quoted header cell may contain a line break)."""
    in_quotes = False
    for i, ch in enumerate(text):
        if ch == '"':
            in_quotes = not in_quotes
        elif ch in "\r\n" and not in_quotes:
            return text[:i]
    return text


def _count_outside_quotes(line: str, char: str) -> int:
    count = 0
    in_quotes = False
    for ch in line:
        if ch == '"':
            in_quotes = not in_quotes
        elif ch == char and not in_quotes:
            count += 1
    return count


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


def _read_text(file_name: str, text: str, encoding: str, warnings: list[str]) -> InputTable:
    separator: str | None
    m = _SEP_LINE.match(text)
    if m and m.group(1) in _SEPARATORS:
        separator = m.group(1)
        text = text[m.end():]
        warnings.append(f"the first line 'sep={separator}' (an Excel hint) was skipped")
    else:
        separator = _detect_separator(_header_record(text), text[:20000])

    if not text.strip():
        raise InputError(file_name, "the file has no data rows (it is empty or only whitespace).")

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
        )
    except pd.errors.EmptyDataError:
        raise InputError(file_name, "the file has no data rows (it is empty or only whitespace).") from None
    except pd.errors.ParserError as exc:
        raise InputError(file_name, _explain_parser_error(str(exc), separator)) from None

    return _finish(file_name, raw, encoding, separator, warnings)


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
    detail = message.strip().replace("Error tokenizing data. C error: ", "")
    return (
        f"the CSV cannot be read{where} ({detail}). Re-export it from Excel as CSV, or "
        "check the quotes and separators there."
    )


# ----------------------------------------------------------------------------------------------
# XLSX
# ----------------------------------------------------------------------------------------------


def _read_xlsx(file_name: str, data: bytes, warnings: list[str]) -> InputTable:
    if not data:
        raise InputError(file_name, "the file is empty (0 bytes); it has no data rows.")
    if data.startswith(_OLE_MAGIC):
        raise InputError(
            file_name,
            "this is not a valid .xlsx workbook: it looks like an old .xls file or a "
            "password-protected workbook. Save it from Excel as .xlsx (without password) or CSV.",
        )
    if not data.startswith(_ZIP_MAGIC) or not _is_xlsx(data):
        raise InputError(
            file_name,
            "this .xlsx file is damaged or is not an Excel workbook, so it cannot be opened. "
            "Open it in Excel and save it again as .xlsx or CSV.",
        )
    try:
        with pd.ExcelFile(io.BytesIO(data), engine="openpyxl") as book:
            sheets = book.sheet_names
            if not sheets:
                raise InputError(file_name, "the workbook has no sheets, so it has no data rows.")
            if len(sheets) > 1:
                warnings.append(
                    f"the workbook has {len(sheets)} sheets; only the first ('{sheets[0]}') was read"
                )
            raw = pd.read_excel(
                book,
                sheet_name=sheets[0],
                header=None,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
            )
    except InputError:
        raise
    except Exception as exc:  # openpyxl raises many types on damaged files
        raise InputError(
            file_name,
            f"this .xlsx workbook is damaged and cannot be read ({type(exc).__name__}). "
            "Open it in Excel and save it again as .xlsx or CSV.",
        ) from None
    if raw.shape[0] == 0 or raw.shape[1] == 0:
        raise InputError(file_name, "the first sheet is empty; it has no data rows.")
    return _finish(file_name, raw, "xlsx", None, warnings)


# ----------------------------------------------------------------------------------------------
# Shared: header, columns, dropped rows
# ----------------------------------------------------------------------------------------------


def _clean_name(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value).replace("\ufeff", "").strip()


def _finish(
    file_name: str,
    raw: pd.DataFrame,
    encoding: str,
    separator: str | None,
    warnings: list[str],
) -> InputTable:
    """Turn a header-less raw frame (first row = header) into an InputTable."""
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
            f"'{next(h for h in header if h.lower() == d)}' ({counts[d]} times)" for d in dupes
        )
        warnings.append(f"duplicate column names: {shown}")

    if TEXT_COLUMN not in lowered:
        found = ", ".join(f"'{h}'" if h else "(empty)" for h in header) or "(none)"
        hint = ""
        if separator is None and len(header) == 1 and encoding != "xlsx":
            hint = " No separator (comma, semicolon or tab) was found in the header line."
        raise InputError(
            file_name,
            f"there is no 'paragraph_text' column. Columns found: {found}.{hint} Rename the "
            "column that holds the paragraphs to paragraph_text.",
        )
    text_idx = lowered.index(TEXT_COLUMN)
    if counts[TEXT_COLUMN] > 1:
        warnings.append(
            f"'paragraph_text' appears {counts[TEXT_COLUMN]} times; the first one "
            f"(column {text_idx + 1}) was used"
        )
    pdf_idx = lowered.index(PDF_COLUMN) if PDF_COLUMN in lowered else None
    if pdf_idx is not None and counts[PDF_COLUMN] > 1:
        warnings.append(
            f"'pdf_file_name' appears {counts[PDF_COLUMN]} times; the first one "
            f"(column {pdf_idx + 1}) was used"
        )

    if rows_read == 0:
        raise InputError(
            file_name,
            "the file has a header but no data rows. Add paragraphs below the header row.",
        )

    row_numbers = pd.Series(range(2, rows_read + 2), dtype="int64", index=body.index)
    text = _as_str(body.iloc[:, text_idx]).str.strip()
    if pdf_idx is None:
        pdf = pd.Series("", index=body.index, dtype="str")
        warnings.append(
            "no 'pdf_file_name' column; results cannot be linked to report files or investors"
        )
    else:
        pdf = _as_str(body.iloc[:, pdf_idx]).str.strip()

    empty = text == ""
    dropped: list[DroppedRow] = []
    if bool(empty.any()):
        empty_body = body.loc[empty]
        all_blank = empty_body.apply(lambda col: _as_str(col).str.strip() == "").all(axis=1)
        for r, blank in zip(row_numbers[empty].tolist(), all_blank.tolist()):
            dropped.append(DroppedRow(row=int(r), reason="empty row" if blank else "empty paragraph_text"))

    keep = ~empty
    frame = pd.DataFrame(
        {
            "row": row_numbers[keep].to_numpy(dtype="int64"),
            TEXT_COLUMN: text[keep].to_numpy(dtype=object),
            PDF_COLUMN: pdf[keep].to_numpy(dtype=object),
        }
    )
    frame = frame.astype({"row": "int64", TEXT_COLUMN: "str", PDF_COLUMN: "str"})

    if pdf_idx is not None:
        missing_pdf = int((frame[PDF_COLUMN] == "").sum())
        if missing_pdf:
            warnings.append(f"{missing_pdf} kept rows have an empty pdf_file_name")

    if frame.empty:
        raise InputError(
            file_name,
            f"no data rows with text: all {rows_read} rows have an empty paragraph_text.",
        )

    report = InputReport(
        file_name=file_name,
        rows_read=rows_read,
        rows_kept=int(frame.shape[0]),
        dropped=dropped,
        warnings=warnings,
        encoding=encoding,
        separator=separator,
    )
    return InputTable(file_name=file_name, frame=frame, report=report)


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
