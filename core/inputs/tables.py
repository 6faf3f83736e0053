"""Reading a table that is not a paragraph input (human labels, a previous tool's files): every
column kept as text, with the same decoding, separator detection, Excel handling and limits as
the paragraph reader."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.inputs.cleaning import as_str, clean_name, remove_controls
from core.inputs.limits import InputLimits
from core.inputs.messages import excerpt, input_error
from core.inputs.reading import read_source


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
    separator detection, Excel handling and limits as :func:`core.inputs.read_input`. Raises
    :class:`InputError` when the file cannot be used at all."""
    return read_source(source, finish=_finish_table)


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
    header = [clean_name(v) for v in raw.iloc[0].tolist()]
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
        column, count = remove_controls(as_str(body.iloc[:, index]))
        columns[name] = column.reset_index(drop=True)
        cleaned += count
    frame = pd.DataFrame(columns, index=pd.RangeIndex(body.shape[0]))
    if cleaned:
        warnings.append(f"control characters or terminal escape sequences were removed from {cleaned:,} cells")
    blank = frame.apply(lambda col: col.str.strip() == "").all(axis=1) if names else pd.Series(True, index=frame.index)
    frame = frame.loc[~blank].reset_index(drop=True)
    rows = row_numbers[~blank.to_numpy()].tolist()
    if frame.empty:
        raise input_error(file_name, "the file has a header but no data rows. Add rows below the header row.")
    return TextTable(file_name=file_name, frame=frame, rows=rows, encoding=encoding, separator=separator,
                     warnings=warnings)
