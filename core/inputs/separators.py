"""Sniffing a text table's layout: its separator (``,`` ``;`` or tab, or an Excel ``sep=`` first
line) and its header record, found with str methods before anything is parsed (a header can be
megabytes long)."""

from __future__ import annotations

import re

SEPARATORS = (",", ";", "\t")
# Excel's hint on the first line of a CSV it wrote: "sep=;".
SEP_LINE = re.compile(r"\A[ \t]*sep=(.)[ \t]*\r?\n", re.IGNORECASE)

_QUOTE_OR_BREAK = re.compile(r'["\r\n]')


def header_record(text: str) -> str:
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


def count_outside_quotes(line: str, char: str) -> int:
    """How often ``char`` occurs in ``line`` outside double quotes."""
    # Between the quotes of a line split on '"', the odd parts are the quoted ones.
    return sum(part.count(char) for part in line.split('"')[::2])


def detect_separator(header: str, sample: str = "") -> str | None:
    """Pick the separator from the header line; break ties with the following lines."""
    counts = {sep: count_outside_quotes(header, sep) for sep in SEPARATORS}
    best = max(counts.values())
    if best == 0:
        return None  # a single column
    candidates = [sep for sep in ("\t", ";", ",") if counts[sep] == best]
    if len(candidates) > 1 and sample:
        lines = [ln for ln in sample.splitlines()[1:21] if ln.strip()]

        def agreement(sep: str) -> int:
            return sum(count_outside_quotes(ln, sep) == counts[sep] for ln in lines)

        # max() keeps the first of equal scores: tab, then ';', then ','.
        return max(candidates, key=agreement)
    return candidates[0]


def unused_char(text: str) -> str:
    """A character that does not occur in ``text``: the separator that splits a single-column
    file into one cell per line, so commas stay in the text."""
    for ch in ("\x1f", "\x1e", "\x1d", "\x1c", "\x07"):
        if ch not in text:
            return ch
    return "\x1f"  # pragma: no cover - text with all of these is rejected as binary earlier
