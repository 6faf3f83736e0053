"""Cleaning untrusted cell text: control characters, invisible characters and header names.

Everything in an input file is untrusted. Terminal escape sequences and control characters are
removed from the cells that are kept (echoed to a terminal they could recolour, retitle or clear
it), a cell made only of invisible characters counts as empty, and header cells become the column
names a user picks from. Plain Python: pandas is needed only by the callers that pass columns in.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# Removed from paragraph_text and pdf_file_name: terminal escape sequences (CSI such as
# "\x1b[31m", OSC such as "\x1b]0;title\x07", and the short ones such as "\x1bc", which
# resets the terminal) and every other C0/C1 control character except tab, line feed and
# carriage return (line breaks inside quoted cells are text). Echoed to a terminal they could
# recolour, retitle or clear it. The pattern uses only syntax shared by Python's re and RE2, so
# pandas can run it in pyarrow.
CONTROL_PATTERN = (
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[ -/]*[0-~]"
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
)
CONTROL_RE = re.compile(CONTROL_PATTERN)
# Every match of CONTROL_PATTERN holds one of these; finding a single character is the cheaper
# test of the two, and most cells have none.
CONTROL_CHAR_PATTERN = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"


@lru_cache(maxsize=1)
def blank_chars() -> str:
    """Every character that shows nothing: whitespace and the Unicode format characters (Cf:
    zero-width space and joiners, word joiner, BOM, soft hyphen, bidi marks, ...). Cf occurs
    only in planes 0, 1 and 14, so scanning those is enough (and ten times faster)."""
    code_points = [*range(0x20000), *range(0xE0000, 0xE1000)]
    return "".join(
        ch for ch in map(chr, code_points) if ch.isspace() or unicodedata.category(ch) == "Cf"
    )


def clean_name(value: object) -> str:
    """A header cell as a column name: control characters removed, blank characters stripped
    (``""`` for a missing cell)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return CONTROL_RE.sub("", str(value)).strip(blank_chars())


def header_names(cells: Iterable[object]) -> list[str]:
    """Header cells as the column names a user picks from: cleaned, an empty one ``column N``."""
    return [clean_name(v) or f"column {i}" for i, v in enumerate(cells, start=1)]


def remove_controls(col: pd.Series) -> tuple[pd.Series, int]:
    """``col`` without terminal escapes and control characters, and how many cells had some.
    Most cells have none, so only the ones that match are rewritten."""
    has = col.str.contains(CONTROL_CHAR_PATTERN, regex=True)
    count = int(has.sum())
    if count:
        col = col.mask(has, col[has].str.replace(CONTROL_PATTERN, "", regex=True))
    return col, count


def as_str(col: pd.Series) -> pd.Series:
    """A column as plain strings, missing cells as ''."""
    return col.fillna("").astype("str")
