"""What is read: an input file (a path or an upload) and the reader's choice of sheet and text
column in it, and :class:`ChoiceNeeded` for when that choice has to be made by the user."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError


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
        return source_name(self.source)


SourceLike = Path | tuple[str, bytes] | InputSource


class ChoiceNeeded(InputError):
    """The file is a table, but the sheet or the column that holds the paragraphs has to be
    chosen (none is recognised, or the chosen one is not there). ``in_workbook``: the file is
    a workbook, so choosing a sheet may be part of the answer."""

    def __init__(self, file_name: str, problem: str, *, in_workbook: bool = False) -> None:
        super().__init__(file_name, problem)
        self.in_workbook = in_workbook


@dataclass(frozen=True)
class SheetChoice:
    """Which sheet of a workbook to read: ``sheet`` (name or number from 1), else the first
    sheet whose header has ``text_column``; ``None`` as a whole: the first sheet."""

    sheet: str | None
    text_column: str


def source_name(source: SourceLike) -> str:
    """The file name of a source: a path's last part, or an upload's name without folders."""
    if isinstance(source, InputSource):
        return source.name
    if isinstance(source, tuple):
        return Path(str(source[0])).name or str(source[0])
    return Path(source).name
