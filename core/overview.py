"""What the home page says about the tasks: each task's question and what its scores mean,
quoted from the task's shipped system prompt (the words the model is given), so the
explanation and the prompts cannot drift apart; and what works without an API key."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import PromptError
from core.prompts import load_prompts, score_meanings
from core.settings import Settings
from core.tasks import TASKS, TaskSpec


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
