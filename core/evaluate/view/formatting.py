"""How the Evaluate page writes things: figures with two decimals (a dash where the data leave
them undefined), intervals, shares, dates, counted nouns, 0/1 labels, answer column names, and
text from a file made safe to put in Markdown.
"""

from __future__ import annotations

import re
from typing import Sequence

import pandas as pd

from core.explore import score_label
from core.inputs import excerpt
from core.vocabulary import format_time

MISSING = "–"  # a figure the data leave undefined, or a count not known


def fmt(value: float | None, digits: int = 2) -> str:
    """A figure with two decimals, or a dash when it is undefined."""
    return MISSING if value is None else f"{value:.{digits}f}"


def fmt_interval(interval: Sequence[float | None] | None) -> str:
    """``[0.70, 1.00]``, or ``""`` when there is no interval."""
    if not interval or interval[0] is None or interval[1] is None:
        return ""
    return f"[{interval[0]:.2f}, {interval[1]:.2f}]"


def with_interval(value: float | None, interval: Sequence[float | None] | None) -> str:
    """``0.87 [0.70, 1.00]``; the interval left out when there is none."""
    text = fmt(value)
    shown = fmt_interval(interval)
    return f"{text} {shown}" if shown and value is not None else text


def fmt_share(value: float | None) -> str:
    """A proportion as a whole percentage."""
    return MISSING if value is None else f"{value:.0%}"


def fmt_date(stamp: str | None) -> str:
    """``2026-12-01 22:11 UTC`` from an ISO time stamp (as written by the evaluation), as
    :func:`core.vocabulary.format_time` writes every time; an unreadable one is quoted short."""
    if not stamp:
        return "an unknown date"
    return excerpt(format_time(stamp), 40)


_MARKDOWN_CHARS = re.compile(r"([\\`*_{}\[\]()#+\-!|<>~$:])")


def md_text(value: object, limit: int = 80) -> str:
    """Text from a file (a file, column or annotator name) made safe to put in Markdown: cut by
    :func:`excerpt`, then every character Markdown would act on escaped, so a name can never
    become a link, an image that loads from elsewhere, or formatting."""
    return _MARKDOWN_CHARS.sub(r"\\\1", excerpt(value, limit))


def answer_label(column: str) -> str:
    """How an answer column is named on the page (``score`` -> ``Score (task 1)``)."""
    return score_label(column)


def count(n: int, noun: str) -> str:
    """``1 false positive``, ``2 false positives``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def label_text(value: object) -> str:
    """A 0/1 label as text, or a dash when there is none."""
    return MISSING if value is None or pd.isna(value) else str(int(value))  # type: ignore[arg-type]
