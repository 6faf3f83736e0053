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

Import the names below from ``core.inputs``; the modules behind them, one job each:

- ``reading``: :func:`read_input` and :func:`read_inputs`, from a file to its paragraphs
- ``sources``: :class:`InputSource` (a file, its sheet and text column) and :class:`ChoiceNeeded`
- ``result``: :class:`InputTable`, :class:`InputReport` and :class:`DroppedRow`
- ``files``: loading a path or an upload safely, file-type checks, :func:`find_input_files`
- ``encoding`` and ``separators``: decoding text and sniffing its separator and header
- ``delimited``: parsing CSV / TSV text; ``workbook``: reading ``.xlsx`` sheets
- ``paragraphs``: choosing the text column, cleaning and dropping rows, the report
- ``cleaning``: control and invisible characters, header names
- ``limits``: :class:`InputLimits` and :func:`input_limits`; ``messages``: :func:`excerpt`
- ``tables``: :func:`read_table` for other tables; ``layout``: :func:`table_layout` for pickers
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_names

if TYPE_CHECKING:
    from core.inputs.files import find_input_files
    from core.inputs.layout import TableLayout, table_layout
    from core.inputs.limits import InputLimits, input_limits
    from core.inputs.messages import excerpt
    from core.inputs.reading import read_input, read_inputs
    from core.inputs.result import PDF_COLUMN, TEXT_COLUMN, DroppedRow, InputReport, InputTable
    from core.inputs.sources import ChoiceNeeded, InputSource
    from core.inputs.tables import TextTable, read_table

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

# Each name loads its module at first use (PEP 562 module __getattr__): quoting a value with
# ``excerpt``, checking ``input_limits`` or naming ``InputSource`` does not bring pandas,
# numpy or openpyxl, which only parsing a file needs. EXCERPT_CHARS, LIMIT_SETTINGS and SourceLike
# were module-level names of the single module core.inputs once was, and stay reachable.
_HOMES = {
    "ChoiceNeeded": "core.inputs.sources",
    "DroppedRow": "core.inputs.result",
    "EXCERPT_CHARS": "core.inputs.messages",
    "InputLimits": "core.inputs.limits",
    "InputReport": "core.inputs.result",
    "InputSource": "core.inputs.sources",
    "InputTable": "core.inputs.result",
    "LIMIT_SETTINGS": "core.inputs.limits",
    "PDF_COLUMN": "core.inputs.result",
    "SourceLike": "core.inputs.sources",
    "TEXT_COLUMN": "core.inputs.result",
    "TableLayout": "core.inputs.layout",
    "TextTable": "core.inputs.tables",
    "excerpt": "core.inputs.messages",
    "find_input_files": "core.inputs.files",
    "input_limits": "core.inputs.limits",
    "read_input": "core.inputs.reading",
    "read_inputs": "core.inputs.reading",
    "read_table": "core.inputs.tables",
    "table_layout": "core.inputs.layout",
}

__getattr__, __dir__ = lazy_names(__name__, _HOMES)


