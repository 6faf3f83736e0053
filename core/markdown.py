"""Untrusted text (paragraphs, upload and job names, provider messages) shown through
Streamlit's Markdown exactly as written."""

from __future__ import annotations

import re

# What Markdown, Streamlit's extensions (:material/...:, :red[...], $math$) or inline HTML
# could read as something other than text.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&:])")


def markdown_literal(text: str, *, one_line: bool = False) -> str:
    """``text`` escaped so Markdown shows it as it is: no link, image (a request to another
    host), HTML, formatting, formula or emoji shortcode comes out of it. Line breaks are kept,
    or with ``one_line`` (labels, headings) turned into spaces."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))
    if one_line:
        return escaped.replace("\r", " ").replace("\n", " ")
    return "  \n".join(escaped.splitlines()) or "\u200b"
