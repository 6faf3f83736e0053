"""What reading one paragraph file gives back: an :class:`InputTable` of the usable rows and an
:class:`InputReport` of what was read, what was dropped (:class:`DroppedRow`) and why.

Every reader returns the same shape: a frame with exactly the columns ``row``,
``paragraph_text`` and ``pdf_file_name`` first, then the file's other columns as text. Nothing is
dropped silently: the report lists each dropped row with its reason, the problems (warnings)
and what was done (notes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.inputs.messages import excerpt, format_rows, separator_label

if TYPE_CHECKING:
    import pandas as pd

TEXT_COLUMN = "paragraph_text"
PDF_COLUMN = "pdf_file_name"


class Note(str):
    """A message that says what was done, not what is wrong (an encoding detected, a sheet or a
    column chosen). It travels in the same list as the problems while a file is read, and
    :func:`core.inputs.paragraphs.finish_paragraphs` files it under :attr:`InputReport.notes`."""


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
                parts.append(f"{reason}: {word} {format_rows(rows)}")
            head += f", {len(self.dropped)} dropped ({'; '.join(parts)})"
        if self.encoding == "xlsx":
            head += "; Excel workbook"
        else:
            head += f"; encoding {self.encoding}, separator {separator_label(self.separator)}"
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
