"""What the home page says: the newest jobs and how far each got; each task's question and what
its scores mean, quoted from the task's shipped system prompt (the words the model is given),
so the explanation and the prompts cannot drift apart; and what works without an API key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from core.errors import PromptError
from core.models import Job
from core.monitoring import NAME_CHARS_IN_LABEL, job_progress
from core.prompts import load_prompts, score_meanings
from core.settings import Settings
from core.tasks import TASKS, TaskSpec
from core.vocabulary import PART_WORDS, count, number, percent, shorten

RECENT_JOBS = 6  # jobs on the home page (the first of JobService.list_jobs: newest, not archived)


def progress_segments(jobs: Sequence[Job]) -> list[dict[str, object]]:
    """Each job's progress (:func:`core.monitoring.job_progress`) as bar segments, in the
    jobs' order: per job and part that is not zero, the job's label (its name, else its id),
    the part in words, its count in words (``6,835 rows``), and where the segment starts and
    ends as shares of the job's total, so jobs of 20 and 100,000 rows read alike."""
    segments: list[dict[str, object]] = []
    for job in jobs:
        progress = job_progress(job)
        label = shorten(job.name, NAME_CHARS_IN_LABEL) if job.name else job.id
        start = 0
        for part, n in progress.parts():
            if not n:
                continue
            segments.append({"job": label, "part": PART_WORDS[part],
                             "count": count(n, progress.unit), "of": number(progress.total),
                             "share": percent(n, progress.total),
                             "start": start / progress.total, "end": (start + n) / progress.total})
            start += n
    return segments


@dataclass(frozen=True)
class TaskOverview:
    """One task as the home page explains it."""

    name: str
    title: str
    question: str  # the prompt's opening paragraph: what the model is asked
    # (output column, the prompt's paragraphs that define it), in output order
    scores: tuple[tuple[str, str], ...]
    runs_on: str  # where its paragraphs come from


def task_overviews() -> list[TaskOverview]:
    """Both tasks, in their chained order."""
    return [_overview(task) for task in TASKS.values()]


def _overview(task: TaskSpec) -> TaskOverview:
    try:
        system = load_prompts(task.name).system
    except PromptError:
        system = ""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", system) if p.strip()]
    meanings = score_meanings(task.name, system)
    runs_on = ("paragraphs from your CSV/XLSX files" if task.parent_task is None
               else f"the paragraphs a completed {TASKS[task.parent_task].title} job scored 1")
    return TaskOverview(name=task.name, title=task.title, question=paragraphs[0] if paragraphs else "",
                        scores=tuple(meanings.items()), runs_on=runs_on)


def keyless_summary(settings: Settings) -> str:
    """One sentence on what runs here without an API key, and what this installation uses."""
    if settings.local_chat_url:
        engine = "forwards each request to the local chat server configured in BDASSET_LOCAL_CHAT_URL"
    elif settings.local_labeler == "rules":
        engine = "answers with the transparent rule-based baseline"
    else:
        engine = ("answers with a multilingual embedding labeler that learns from labelled examples (the "
                  "built-in ones or your own), or the rule-based baseline where it cannot be installed")
    return ("Everything works without an API key: the **local** provider is an OpenAI-compatible batch "
            f"backend on this computer (127.0.0.1) that {engine}. Its answers are named as such in the model "
            "column, never passed off as an LLM's.")


def local_engine(settings: Settings) -> str:
    """A few words on what answers local jobs here (the sidebar's status line)."""
    if settings.local_chat_url:
        return f"forwarding to {settings.local_chat_url}"
    from core.settings import BASELINE_MODEL

    if settings.model_for("local") == BASELINE_MODEL:
        return "rule-based baseline"
    return "embedding labeler"
