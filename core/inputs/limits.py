"""Input limits: the bounds a file is checked against before and while it is parsed.

A hostile or broken file fails fast: its size, rows and cells are bounded before anything is
parsed, and a paragraph longer than the limit is dropped with its row. Each bound can be raised
with an environment setting (:data:`LIMIT_SETTINGS`), read again for every file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from core.errors import InputError
from core.inputs.messages import excerpt, input_error

# Excel's own column limit. pandas spends about a millisecond per column, so a header of a
# hundred thousand cells would stall the read before any row limit applies.
MAX_COLUMNS = 16_384


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


def limit_hint(field: str) -> str:
    """How to raise the limit ``field`` (a field of :class:`InputLimits`), for a message."""
    return f"set {LIMIT_SETTINGS[field]} to raise the limit"


def limits_for(file_name: str) -> InputLimits:
    """The limits in force, or an InputError naming ``file_name`` when a setting is invalid."""
    try:
        return input_limits()
    except ValueError as exc:
        raise input_error(file_name, f"cannot check the file against the input limits: {exc}.") from None


def too_big(name: str, size: int, limits: InputLimits, what: str = "the file is") -> InputError:
    """The error for a file (or a workbook's unpacked contents) of ``size`` bytes, over the limit."""
    return input_error(
        name,
        f"{what} {size:,} bytes, over the limit of {limits.max_bytes:,} bytes. Split it into "
        f"smaller files, or {limit_hint('max_bytes')}.",
    )


def check_shape(file_name: str, rows: int, columns: int, limits: InputLimits, declared: bool = False) -> None:
    """Raise InputError if ``rows`` data rows of ``columns`` cells are over the limits."""
    how = "declares" if declared else "has"
    if rows > limits.max_rows:
        raise input_error(
            file_name,
            f"the file {how} more than {limits.max_rows:,} data rows, the limit. Remove empty "
            f"rows or split it into smaller files, or {limit_hint('max_rows')}.",
        )
    if rows * columns > limits.max_cells:
        raise input_error(
            file_name,
            f"the file {how} more than {limits.max_cells:,} cells ({columns:,} columns), the "
            "limit. Remove unused columns or split it into smaller files, or "
            f"{limit_hint('max_cells')}.",
        )
