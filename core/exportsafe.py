"""Keep untrusted text from becoming a live formula when a person opens our files in a spreadsheet.

Paragraphs come from reports we did not write, file names from users, explanations and error
messages from a model or provider: all untrusted. A spreadsheet (Excel, LibreOffice Calc,
Google Sheets) that opens a CSV treats a cell starting with ``=``, ``+``, ``-`` or ``@`` as a
formula, which can send data to a URL (``=HYPERLINK``, ``=WEBSERVICE``) or start a program
through DDE. The reference is OWASP's "CSV Injection" page (and ASVS 5.0 requirement 1.2.10,
which adds NUL).

The rule, applied to every text cell (never to numbers, never to header names, which are ours):

* A cell is **neutralised** by putting one apostrophe (``'``) in front of it when its first
  character is one of ``=`` ``+`` ``-`` ``@``, TAB (U+0009), CR (U+000D), NUL (U+0000), the
  full-width forms ``＝`` ``＋`` ``－`` ``＠`` (U+FF1D, U+FF0B, U+FF0D, U+FF20: a precaution,
  since locale and input-method settings can turn them into their ASCII twins; not checked
  here against a particular spreadsheet), **or an apostrophe**. Empty cells and every other
  cell are written unchanged.
* A cell is **restored** by removing exactly one leading apostrophe, if it has one.

Escaping the apostrophe itself is what makes the rule reversible: every cell that starts with an
apostrophe in our file got one added, so a reader strips one and gets the exact original back
(``'plain`` is written ``''plain`` and reads back as ``'plain``). Programs read our result CSVs
through :func:`restore_frame` (``core.results.read_results``). A person may see the
apostrophe, also on harmless text such as a bullet (``- text``) or ``-5`` stored as text: the
price OWASP's rule accepts. Numeric columns are written as numbers and stay untouched.

Not covered: a leading space (not on OWASP's list), and a trigger after a separator inside a
cell, which cannot start a new cell because our CSV writer quotes every text cell.

Excel workbooks need no apostrophe: a cell stored as a string is never evaluated, so
``core.explore.to_xlsx_bytes`` writes every text as a string cell with its exact value.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

ESCAPE = "'"
# First characters that make a spreadsheet read a cell as a formula. TAB, CR and NUL are
# on OWASP's / ASVS's lists because importers may drop them and expose what follows.
TRIGGERS = frozenset("=+-@\t\r\x00\uff1d\uff0b\uff0d\uff20")
# Cells that get the apostrophe: the triggers plus the apostrophe itself, for reversibility.
_ESCAPED = tuple(sorted(TRIGGERS | {ESCAPE}))


def is_text(dtype: object) -> bool:
    """Whether a column of this dtype may hold text: string dtypes and object columns (text,
    possibly mixed with numbers). Numeric, boolean and date columns are written as such and
    cannot become formulas, so they are left alone."""
    return dtype == object or isinstance(dtype, pd.StringDtype)


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the rule of this module applied to every text column (categoricals of
    text included, through their categories).

    Vectorised: one first-character test per column, and only the cells that change are
    rebuilt. ``frame`` itself is never modified; it is returned as is when nothing changes."""
    return _map_columns(frame, _neutralise_column)


def restore_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The inverse of :func:`neutralise_frame`, for readers of our own files (which read every
    column as text): one leading apostrophe is removed from every text cell that has one."""
    return _map_columns(frame, _restore_column)


def _map_columns(frame: pd.DataFrame, change: Callable[[pd.Series], pd.Series | None]) -> pd.DataFrame:
    out = frame
    for position in range(frame.shape[1]):  # by position: duplicate column names are allowed
        changed = change(frame.iloc[:, position])
        if changed is not None:
            if out is frame:
                out = frame.copy(deep=False)  # the caller's frame stays as it was
            out.isetitem(position, changed)
    return out


def _neutralise_column(column: pd.Series) -> pd.Series | None:
    if isinstance(column.dtype, pd.CategoricalDtype):
        # The rule is one-to-one (a text starting with an apostrophe is escaped itself), so
        # renamed categories stay distinct.
        renamed = _neutralise_column(column.cat.categories.to_series())
        return None if renamed is None else column.cat.rename_categories(renamed.to_numpy())
    return _change_column(column, _ESCAPED, add=True)


def _restore_column(column: pd.Series) -> pd.Series | None:
    return _change_column(column, (ESCAPE,), add=False)


def _change_column(column: pd.Series, characters: Sequence[str], *, add: bool) -> pd.Series | None:
    """``column`` with :data:`ESCAPE` added before (``add``) or taken off (not ``add``) the text
    cells whose first character is one of ``characters``; ``None`` when the column is not
    text or no cell matches (the common case, which then costs no copy)."""
    if not is_text(column.dtype) or column.empty:
        return None
    if isinstance(column.dtype, pd.StringDtype):
        return _change_strings(column, characters, add=add)
    # object: cells may be numbers, None or NaN next to text; only text can match
    wanted = frozenset(characters)
    values = column.to_numpy(dtype=object)
    hit = np.fromiter((isinstance(v, str) and v[:1] in wanted for v in values), dtype=bool, count=len(values))
    if not hit.any():
        return None
    values = values.copy()  # to_numpy may share the caller's array
    values[hit] = [ESCAPE + v if add else v[1:] for v in values[hit]]
    return pd.Series(values, index=column.index, name=column.name, dtype=object)


def _change_strings(column: pd.Series, characters: Sequence[str], *, add: bool) -> pd.Series | None:
    """:func:`_change_column` for string dtypes, on the column's Arrow data.

    pandas' ``str.slice(0, 1).isin(...)`` and Arrow's kernels (``utf8_slice_codeunits``, a
    ``^[...]`` regex) cost 10-50 ms per 100,000-row column, about 0.17 s for one result table
    with no cell to change, and ``replace_with_mask`` about 0.1 s per changed column: together
    as much as writing the files. Reading the first bytes at the cells' offsets and rebuilding
    only the data buffer with numpy costs about 1 ms per column, and one copy of the column's
    bytes when a cell changes."""
    data = pa.array(column)  # no copy for Arrow-backed strings
    chunks = data.chunks if isinstance(data, pa.ChunkedArray) else [data]
    changed, out = False, []
    for chunk in chunks:
        if not pa.types.is_large_string(chunk.type):
            chunk = chunk.cast(pa.large_string())  # string, string_view: one layout below
        rows = np.flatnonzero(_first_character_in(chunk, characters))
        if len(rows):
            chunk, changed = _escape_rows(chunk, rows, add=add), True
        out.append(chunk)
    if not changed:
        return None
    values = column.dtype.__from_arrow__(pa.chunked_array(out, type=pa.large_string()))
    return pd.Series(values, index=column.index, name=column.name)


def _offsets(chunk: pa.Array) -> np.ndarray:
    """The ``len(chunk) + 1`` value offsets of a large_string array (a view, no copy)."""
    return np.frombuffer(chunk.buffers()[1], dtype=np.int64, count=len(chunk) + 1, offset=chunk.offset * 8)


def _first_character_in(chunk: pa.Array, characters: Sequence[str]) -> np.ndarray:
    """A boolean mask of the non-null cells of a large_string array whose first character is
    one of ``characters``, compared as UTF-8 bytes at each cell's start offset."""
    offsets = _offsets(chunk)
    starts, lengths = offsets[:-1], np.diff(offsets)
    hit = np.zeros(len(chunk), dtype=bool)
    data_buffer = chunk.buffers()[2]
    if data_buffer is None or not lengths.any():
        return hit
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    cells = np.flatnonzero(lengths > 0)
    first = data[starts[cells]]
    for prefix in {c.encode("utf-8") for c in characters}:
        found = cells[first == prefix[0]]
        for i in range(1, len(prefix)):  # the full-width forms are three bytes long
            found = found[lengths[found] > i]
            found = found[data[starts[found] + i] == prefix[i]]
        hit[found] = True
    if chunk.null_count:  # a null's offsets may span bytes; it is never text to change
        hit &= chunk.is_valid().to_numpy(zero_copy_only=False)
    return hit


_ESCAPE_BYTE = np.frombuffer(ESCAPE.encode("ascii"), dtype=np.uint8)  # one byte, so offsets shift by one


def _escape_rows(chunk: pa.Array, rows: np.ndarray, *, add: bool) -> pa.Array:
    """A large_string array like ``chunk`` with the escape byte inserted at (``add``) or
    removed from (not ``add``) the start of the cells at ``rows``: the bytes are split at
    those cells' starts and joined again in one copy; the offsets move by the number of
    changed cells before each one."""
    offsets = _offsets(chunk)
    first = offsets[0]
    data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[first:offsets[-1]]
    pieces = np.split(data, offsets[rows] - first)  # every piece after the first starts a changed cell
    if add:
        parts = [pieces[0]]
        for piece in pieces[1:]:
            parts += (_ESCAPE_BYTE, piece)
    else:
        parts = [pieces[0], *(piece[1:] for piece in pieces[1:])]
    moved = np.zeros(len(offsets), dtype=np.int64)
    moved[rows + 1] = 1
    np.cumsum(moved, out=moved)
    new_offsets = offsets - first + (moved if add else -moved)
    validity = chunk.is_valid().buffers()[1] if chunk.null_count else None  # a bitmap at offset 0
    return pa.LargeStringArray.from_buffers(len(chunk), pa.py_buffer(new_offsets), pa.py_buffer(np.concatenate(parts)),
                                            validity, chunk.null_count)
