"""Readable names and meanings: task titles, score column labels, what each score means.

No pandas here: :mod:`core.evaluate` reads :func:`score_label` without loading a frame.
"""

from __future__ import annotations

import re
from typing import Sequence

from core.models import Job
from core.prompts import score_meanings
from core.tasks import TASKS

DIMENSION_LABELS = {
    "intrinsic_value_score": "Intrinsic value",
    "cash_flow_score": "Cash flow",
    "ownership_control_score": "Ownership / control",
}


def task_title(name: str) -> str:
    """A task's readable title ("Investment activity (task 1)"), or ``name`` itself."""
    return TASKS[name].title if name in TASKS else name


def score_label(column: str) -> str:
    """A score column's readable name, as in the charts."""
    return DIMENSION_LABELS.get(column, "Score (task 1)" if column == "score" else column)


def job_score_meanings(jobs: Sequence[Job]) -> dict[str, str]:
    """Score column -> meaning for the tasks of ``jobs``, each from the newest job's recorded
    system prompt (what the model was asked)."""
    meanings: dict[str, str] = {}
    for job in sorted(jobs, key=lambda j: j.created_at):  # newest last, so it wins
        if job.task in TASKS:
            meanings.update(score_meanings(job.task, (job.prompts or {}).get("system") or None))
    return meanings


def short_meaning(meaning: str, limit: int = 240) -> str:
    """A one-line digest of a meaning for a tooltip: the first sentence of each of its
    paragraphs (before a list of examples), joined by `` / ``, cut at ``limit`` characters."""
    heads = []
    for paragraph in re.split(r"\n\s*\n", meaning or ""):
        text = " ".join(paragraph.split())
        head = re.split(r"(?<=\.)\s|,? for example:|:\s+-\s", text, maxsplit=1)[0].strip()
        if head:
            heads.append(head)
    digest = " / ".join(heads)
    return digest if len(digest) <= limit else digest[: limit - 1] + "…"
