"""One vocabulary for the dashboard and the command line: status words, units, task titles,
numbers, plurals, percentages, times and durations.

Every word or number a person reads about a job goes through here, so the Monitor page and
``python -m core`` say the same thing at the same moment ("running", never "in_progress" on
one side and "validating" on the other; "34%" on both). Kept light on purpose (no pandas, no
SDK, no pydantic: the task titles are read from core.tasks when first asked for), so the
command line imports it at start.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

# ----- statuses ---------------------------------------------------------------------------------

# A job's status (core.models.Job.status) and a batch's (the provider's, plus our own states
# before the provider knows it) in words. The provider's "in_progress" reads "running" for
# jobs and batches alike.
_STATUS_WORDS: dict[str, str] = {
    # jobs
    "submitting": "being submitted",
    "submit_failed": "not (fully) submitted",
    "partially_completed": "partially completed",
    # batches, before the provider knows them
    "pending": "not sent yet",
    "uploaded": "uploaded, not started",
    "queued": "waiting for queue room",
    # the provider's
    "validating": "being validated",
    "in_progress": "running",
    "finalizing": "finishing",
    "cancelling": "being cancelled",
    "completed": "completed",
    "failed": "failed",
    "expired": "expired",
    "cancelled": "cancelled",
}

#: The four parts every job's progress is split into (see core.monitoring.job_progress).
PROGRESS_PARTS: tuple[str, ...] = ("answered", "failed", "cancelled_or_expired", "not_run")
PART_WORDS: dict[str, str] = {
    "answered": "answered",
    "failed": "failed",
    "cancelled_or_expired": "cancelled or expired",
    "not_run": "not yet run",
}
ARCHIVED = "archived"


def status_text(status: str) -> str:
    """A job or batch status in words (``in_progress`` -> ``running``)."""
    return _STATUS_WORDS.get(status, status.replace("_", " "))


# ----- units, numbers and plurals ------------------------------------------------------------------

#: Rows are the paragraphs of the input files; requests are what is sent (one per distinct
#: paragraph when repeated paragraphs are answered once). The two words are never mixed up.
ROW, REQUEST = "row", "request"

_PLURALS: dict[str, str] = {
    "batch": "batches",
    "repeated paragraph": "repeated paragraphs",
    "paragraph": "paragraphs",
    ROW: "rows",
    REQUEST: "requests",
    "job": "jobs",
    "file": "files",
    "input file": "input files",
}


def number(value: int | float) -> str:
    """A count with thousands separators: ``20000`` -> ``20,000``."""
    return f"{value:,}" if isinstance(value, int) else f"{value:,.0f}"


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last an ellipsis when anything was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plural(noun: str, n: int | float) -> str:
    """``noun`` for ``n`` of it: ``batch`` for 1, ``batches`` otherwise."""
    if n == 1:
        return noun
    return _PLURALS.get(noun) or (noun + "es" if noun.endswith(("s", "x", "ch", "sh")) else noun + "s")


def count(n: int, noun: str) -> str:
    """``1 repeated paragraph``, ``20,000 rows``, ``3 batches``."""
    return f"{number(n)} {plural(noun, n)}"


def share(part: int | float, total: int | float) -> float:
    """``part / total`` as 0..1 (0 for an empty total)."""
    return min(1.0, max(0.0, part / total)) if total else 0.0


def percent(part: int | float, total: int | float) -> str:
    """A share as a whole percentage that never overstates: rounded down, ``100%`` only when
    every item is in, ``<1%`` for a few items of many (so 6,835 of 20,000 reads ``34%`` and
    19,999 of 20,000 reads ``99%``, never ``100%``)."""
    if not total:
        return "0%"
    if part >= total:
        return "100%"
    whole = math.floor(100 * part / total)
    return "<1%" if part > 0 and whole == 0 else f"{whole}%"


# ----- tasks --------------------------------------------------------------------------------------

def task_title(name: str) -> str:
    """``Investment activity (task 1)``; an unknown name as it is."""
    from core.tasks import TASKS

    return TASKS[name].title if name in TASKS else name


def task_short(name: str, *, retry: bool = False) -> str:
    """``task 1``, or ``task 1 re-run`` for a job re-running another's gaps."""
    from core.tasks import TASKS

    short = next((f"task {n}" for n, known in enumerate(TASKS, start=1) if known == name), name)
    return f"{short} re-run" if retry else short


# ----- times --------------------------------------------------------------------------------------

def format_time(text: str | None) -> str:
    """An ISO timestamp as ``2026-11-30 14:13 UTC`` (``""`` when missing or unreadable)."""
    if not text:
        return ""
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return str(text)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def format_duration(seconds: float) -> str:
    """``45 s``, ``3 min 05 s``, ``2 h 07 min``, ``2 days 7 h``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days {hours % 24} h"
