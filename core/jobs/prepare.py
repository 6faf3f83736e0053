"""Preparing a job: read and check its input (input files for task 1; a finished task-1 job
or a result folder of the previous tool for task 2), choose the examples an embedding
labeler learns from, and plan its batches, cost and token use under any enqueued-token limit
the provider stated before. Nothing is written or sent here (see :mod:`core.jobs.submit`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from core.errors import TaskError
from core.jobs import parent_rows
from core.pricing import load_price_table
from core.prompts import PromptSet, load_prompts
from core.settings import DEFAULT_MAX_TOKENS, ProviderName
from core.tasks import get_task

if TYPE_CHECKING:
    from core.jobs.service import JobService
    from core.planning import Preparation


def prepare(
    service: JobService,
    task_name: str,
    *,
    inputs: Sequence[Path | tuple[str, bytes]] = (),
    parent: str | None = None,
    model: str | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    prompts: PromptSet | None = None,
    provider: ProviderName | None = None,
    dedupe: bool = True,
    enqueued_token_limit: int | None = None,
    max_requests_per_file: int | None = None,
    max_bytes_per_file: int | None = None,
    examples: Path | tuple[str, bytes] | None = None,
    parent_results: Path | str | None = None,
) -> Preparation:
    """Validate everything and plan the job; raises a core error naming what is wrong.
    Task 2 reads a completed task-1 job (``parent``) or a task-1 result folder of the
    previous tool (``parent_results``)."""
    from core.inputs import read_inputs
    from core.planning import plan, rows_from_tables

    task = get_task(task_name)
    chosen_provider: ProviderName = provider or service.settings.provider
    warnings: list[str] = []
    if enqueued_token_limit is None:
        # plan under a limit the provider stated before, rather than be refused again
        learned = service.learned_limit(chosen_provider, model or service.settings.model_for(chosen_provider))
        if learned:
            from core.jobs import token_limits  # tokens and request files: not needed to list jobs

            enqueued_token_limit = token_limits.planning_limit(learned)
    if task.parent_task is None:
        if parent or parent_results:
            raise TaskError(f"Task {task.name} reads input files; it does not take a parent job.")
        if not inputs:
            raise TaskError("No input files given. Upload CSV/XLSX files or choose them from the input folder.")
        rows, sources = rows_from_tables(read_inputs(inputs))
    else:
        if inputs:
            raise TaskError(
                f"Task {task.name} runs on a completed {task.parent_task} job, not on input files: "
                "give that job's id (or one of its batch ids)."
            )
        if parent and parent_results:
            raise TaskError(f"Task {task.name} reads one parent: give a job or a result folder, not both.")
        if parent_results:
            from core.interop.legacy.task1_results import rows_from_results

            rows, sources, note = rows_from_results(parent_results)
            warnings.append(note)
        elif not parent:
            raise TaskError(f"Task {task.name} needs a completed {task.parent_task} job: give its id.")
        else:
            parent_job = service.get(parent)
            rows, sources, note = parent_rows.rows_from_parent(service, parent_job)
            warnings.append(note)
            parent = parent_job.id
    from core.local.labeler import is_labeler_model  # names only; the labeler loads in the backend

    example_set = None
    if examples is not None or is_labeler_model(model or service.settings.model_for(chosen_provider)):
        # the embedding labeler: ``examples`` (a labels file) or the built-in set, named in the model
        from core.local.labeler.examples import example_set_text, job_example_set

        model, example_set = job_example_set(task.name, provider=chosen_provider, model=model, source=examples,
                                             default_model=service.settings.model_for(chosen_provider))
        warnings.append(f"The embedding labeler learns from {example_set_text(example_set, task.name)}; the "
                        "set is kept with the job as examples.jsonl and named in the model.")
    prep = plan(
        task=task,
        provider=chosen_provider,
        model=model or service.settings.model_for(chosen_provider),
        max_tokens=max_tokens,
        prompts=prompts or load_prompts(task.name),
        rows=rows,
        sources=sources,
        prices=load_price_table(service.settings.data_dir),
        dedupe=dedupe,
        enqueued_token_limit=enqueued_token_limit,
        max_requests_per_file=max_requests_per_file,
        max_bytes_per_file=max_bytes_per_file,
        parent_job_id=parent,
        warnings=warnings,
    )
    prep.examples = example_set
    return prep

