"""Re-running the gaps of a job: exactly the rows that did not succeed (after the job and
its earlier re-runs finished), as a new retry job on the original's provider or another one,
with the same prompts, sources and, for the embedding labeler, the same examples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import NotReady
from core.pricing import load_price_table
from core.prompts import PromptSet
from core.settings import ProviderName
from core.tasks import get_task

if TYPE_CHECKING:
    from core.jobs.service import JobService
    from core.models import Job


def retry(service: JobService, job_or_batch_id: str, *, model: str | None = None, max_tokens: int | None = None,
          provider: ProviderName | None = None, created_by: str = "cli") -> Job | None:
    """Submit exactly the rows of a job that did not succeed as a new retry job, on the
    original's provider or on ``provider`` (then with that provider's default model unless
    ``model`` is given). Returns None when every row has already succeeded (nothing is
    submitted). The original's results show which job, provider and model answered each row."""
    from core.planning import plan, row_columns

    job = service.get(job_or_batch_id)
    original = service.get(job.retry_of) if job.retry_of else job
    running = [j.id for j in (original, *service.retries_of(original)) if not j.is_finished]
    if running:
        raise NotReady(f"Job {running[0]} is still running; wait for it before re-running the gaps.")
    merged = service.collect(original.id).frame
    gaps = merged[merged["status"] != "succeeded"]
    if gaps.empty:
        return None
    chosen: ProviderName = provider or original.provider  # type: ignore[assignment]
    same_provider = chosen == original.provider
    prep = plan(
        task=get_task(original.task),
        provider=chosen,
        model=model or (original.model if same_provider else service.settings.model_for(chosen)),
        max_tokens=max_tokens or original.max_tokens,
        prompts=PromptSet.from_record(original.prompts),
        rows=gaps[row_columns(gaps)],
        sources=original.sources,
        prices=load_price_table(service.settings.data_dir),
        dedupe=original.dedupe,
        enqueued_token_limit=original.enqueued_token_limit if same_provider else None,
        parent_job_id=original.parent_job_id,
        retry_of=original.id,
    )
    from core.local.labeler import is_labeler_model

    if is_labeler_model(prep.model) and chosen == "local":  # the same examples, kept in its folder too
        from core.local.labeler.examples import job_example_set

        prep.model, prep.examples = job_example_set(original.task, provider=chosen, model=prep.model,
                                                    default_model=prep.model, job_dir=original.job_dir)
    return service.submit(prep, created_by=created_by)
