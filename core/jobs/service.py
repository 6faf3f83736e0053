"""The service layer: :class:`JobService`, everything a user can do with jobs, as one object.

Used by the command line and the dashboard alike. The service holds what the jobs share (the
settings, the registry, the provider clients, the clock) and reads jobs; each other job has a
module of its own that the methods here hand over to:

* :mod:`core.jobs.prepare` plans a job, :mod:`core.jobs.parent_rows` feeds task 2 from a
  task-1 job, :mod:`core.jobs.retry` re-runs a job's gaps;
* :mod:`core.jobs.submit` writes and records a job before any paid call, then sends it;
* :mod:`core.jobs.refresh` monitors and waits (with :mod:`core.jobs.token_limits`);
* :mod:`core.jobs.collect`, :mod:`core.jobs.reconcile`, :mod:`core.jobs.recovery`,
  :mod:`core.jobs.manage` and :mod:`core.jobs.housekeeping` as their names say.

Intent is recorded in the registry before any paid call; each refresh cycle writes the
registry once.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from core.errors import CoreError, JobNotFound, NotReady, ProviderError, TransientProviderError
from core.jobs import housekeeping, manage, parent_rows, prepare, recovery, refresh, retry, submit
from core.jobs.common import ROW_FILE, is_live, utc_now
from core.jobs.submit import HELD_NOTE
from core.jobview import read_view, read_views
from core.prompts import PromptSet
from core.registry import Registry
from core.settings import DEFAULT_MAX_TOKENS, ProviderName, Settings

# pandas, pyarrow and the openai SDK take about a second to import, pydantic (the job records of
# core.models) a few tenths: they load in the methods that need them, so listing jobs or showing
# a finished job's status starts fast (python -m core).
if TYPE_CHECKING:
    import pandas as pd

    from core.client import BatchClient
    from core.jobs import collect as collecting
    from core.jobs import reconcile as reconciling
    from core.jobview import ShownJob
    from core.models import Job
    from core.planning import Preparation

__all__ = ["HELD_NOTE", "ClientFactory", "JobService"]  # HELD_NOTE: kept at its historic address

ClientFactory = Callable[[ProviderName], "BatchClient"]


def _default_client_factory(settings: Settings) -> ClientFactory:
    """Clients built by :func:`core.client.make_client`, imported at the first provider call."""

    def factory(provider: ProviderName) -> BatchClient:
        from core.client import make_client

        return make_client(settings, provider)

    return factory


class JobService:
    """Everything a user can do with jobs. Inject the registry, client factory and clock to test."""

    def __init__(
        self,
        *,
        settings: Settings,
        registry: Registry | None = None,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.registry = registry or Registry(settings.registry_path)
        self._client_factory = client_factory or _default_client_factory(settings)
        self._clients: dict[str, BatchClient] = {}
        self._clock = clock
        self._sleep = sleep
        self._examples_sent: set[tuple[str, str]] = set()  # (provider, sha256) of example sets uploaded

    # ----- helpers -------------------------------------------------------------------------
    def client(self, provider: ProviderName) -> BatchClient:
        if provider not in self._clients:
            self._clients[provider] = self._client_factory(provider)
        return self._clients[provider]

    def _call(self, provider: ProviderName, action: Callable[[BatchClient], object]):
        """Run one provider call; after a transient failure, build the client once more (the
        embedded backend may have exited when idle and comes back on another port)."""
        try:
            return action(self.client(provider))
        except TransientProviderError:
            self._clients.pop(provider, None)
            return action(self.client(provider))

    def _now(self) -> str:
        return self._clock().isoformat(timespec="seconds")

    def _new_job_id(self) -> str:
        return f"job_{self._clock().strftime('%Y%m%d_%H%M%S')}_{secrets.token_hex(2)}"

    def _save(self, *jobs: Job) -> None:
        with self.registry.transaction() as tx:
            for job in jobs:
                tx.put_job(job.to_record())

    # ----- reading -------------------------------------------------------------------------
    def get(self, job_or_batch_id: str) -> Job:
        """A job by its id or by any of its batch ids."""
        return recovery.job_from_record(self._record(job_or_batch_id))  # damaged: JobRecordDamaged for it alone

    def _record(self, job_or_batch_id: str) -> dict:
        record = self.registry.find_job(job_or_batch_id)
        if record is None:
            raise JobNotFound(
                f"No job or batch '{job_or_batch_id}' in the registry ({self.registry.path}). "
                "List known jobs with: python -m core status --list-jobs "
                "(or recover lost records with: python -m core status --reconcile)"
            )
        return record

    def list_jobs(self, *, archived: bool | None = False) -> list[Job]:
        """The jobs, newest first: those not archived (``archived=True``: only the archived
        ones; ``None``: every job). Damaged records are left out (see :meth:`scan_jobs`)."""
        return self.scan_jobs(archived=archived)[0]

    def scan_jobs(self, *, archived: bool | None = False) -> tuple[list[Job], list[recovery.DamagedRecord]]:
        """(jobs, damaged records): one damaged record never hides the other jobs. Archived
        jobs are left out unless asked for (as in :meth:`list_jobs`)."""
        where = None if archived is None else (lambda record: bool(record.get("archived_at")) is archived)
        return recovery.read_records(self.registry.list_jobs(where))

    def scan_views(self, *, archived: bool | None = False) -> tuple[list[ShownJob], list[recovery.DamagedRecord]]:
        """As :meth:`scan_jobs`, to show the jobs: read-only views where the records read as
        such, validated in full only where they do not (see :mod:`core.jobview`; the command
        line lists jobs without loading pydantic)."""
        where = None if archived is None else (lambda record: bool(record.get("archived_at")) is archived)
        return read_views(self.registry.list_jobs(where))

    def show(self, job_ids: Iterable[str]) -> list[ShownJob]:
        """The given jobs (ids or batch ids, each once) to show them: a job with something
        under way is refreshed first (:meth:`refresh`: validated, the provider asked), a
        finished one is read as a view (:mod:`core.jobview`)."""
        records: dict[str, dict] = {}  # each job once, in the order given
        for job_or_batch_id in job_ids:
            record = self._record(job_or_batch_id)
            records.setdefault(str(record.get("id", job_or_batch_id)), record)
        views = {job_id: read_view(record) for job_id, record in records.items()}
        live = [job_id for job_id, view in views.items() if view is None or is_live(records[job_id])]
        fresh: dict[str, ShownJob] = {j.id: j for j in self.refresh(live)} if live else {}
        return [fresh.get(job_id) or views[job_id] for job_id in records]  # type: ignore[misc]

    def damaged_jobs(self) -> list[recovery.DamagedRecord]:
        """Registry records that cannot be read as jobs (each affects only its own job)."""
        return self.scan_jobs()[1]

    def notices(self) -> list[str]:
        """What the registry restored (or could not) in this process, for the user to see."""
        return [note.message for note in self.registry.recovery_notes]

    def rebuild_registry(self) -> recovery.RebuildReport:
        """Take back lost jobs from backups and job folders, then reconcile with the provider
        (see :func:`core.jobs.recovery.rebuild_registry`)."""
        return recovery.rebuild_registry(self)

    def rows(self, job: Job) -> pd.DataFrame:
        """The job's submitted rows (with the request answering each one), every input column
        kept after the product's own."""
        import pandas as pd

        path = Path(job.job_dir) / ROW_FILE
        try:
            rows = pd.read_csv(path, dtype=str, keep_default_na=False).astype({"source_index": int, "row": int})
        except FileNotFoundError:
            raise CoreError(f"Job {job.id}: its row file {path} is missing, so results cannot be matched.") from None
        if "request_id" not in rows:  # written before deduplication: each row its own request
            rows["request_id"] = rows["custom_id"]
        return rows

    def retries_of(self, job: Job) -> list[Job]:
        """Retry jobs of an original job, oldest first."""
        return sorted((j for j in self.list_jobs(archived=None) if j.retry_of == job.id),
                      key=lambda j: (j.created_at, j.id))

    def completed_parent_jobs(self) -> list[Job]:
        """Task-1 jobs that task 2 can start from."""
        return parent_rows.completed_parent_jobs(self)

    def can_feed_task2(self, job: Job) -> bool:
        """A task-1 job whose batches completed, or whose gaps were all filled by retries."""
        return parent_rows.can_feed_task2(job)

    # ----- preparing (core.jobs.prepare, core.jobs.retry) -------------------------------------
    def prepare(
        self,
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
        previous tool (``parent_results``). See :func:`core.jobs.prepare.prepare`."""
        return prepare.prepare(
            self, task_name, inputs=inputs, parent=parent, model=model, max_tokens=max_tokens, prompts=prompts,
            provider=provider, dedupe=dedupe, enqueued_token_limit=enqueued_token_limit,
            max_requests_per_file=max_requests_per_file, max_bytes_per_file=max_bytes_per_file,
            examples=examples, parent_results=parent_results,
        )

    def retry(self, job_or_batch_id: str, *, model: str | None = None, max_tokens: int | None = None,
              provider: ProviderName | None = None, created_by: str = "cli") -> Job | None:
        """Submit exactly the rows of a job that did not succeed as a new retry job, on the
        original's provider or on ``provider`` (then with that provider's default model unless
        ``model`` is given). Returns None when every row has already succeeded (nothing is
        submitted). The original's results show which job, provider and model answered each row."""
        return retry.retry(self, job_or_batch_id, model=model, max_tokens=max_tokens, provider=provider,
                           created_by=created_by)

    def learned_limit(self, provider: str, model: str) -> int | None:
        """The enqueued-token limit a provider stated for this model, if one was learned."""
        from core.jobs import token_limits  # tokens and request files: not needed to list jobs

        record = self.registry.get_provider_limit(token_limits.limit_key(provider, model)) or {}
        value = record.get("enqueued_token_limit")
        return int(value) if isinstance(value, int) and value > 0 else None

    # ----- submitting (core.jobs.submit) ------------------------------------------------------
    def submit(self, prep: Preparation, *, created_by: str = "cli", send: bool = True) -> Job:
        """Write the request files, record the job, then send as many batches as the
        enqueued-token limit allows (the rest are sent by later refresh cycles).

        With ``send=False`` the job is recorded and nothing is sent: its batches wait as
        ``submit_failed`` (held), for ``submit --resume`` or a run elsewhere
        (:mod:`core.interop.files`)."""
        return submit.submit(self, prep, created_by=created_by, send=send)

    def resume_submission(self, job_or_batch_id: str) -> Job:
        """Send the batches of a job that were never created (after a failure or a crash).
        Batches the provider already has (found by their metadata) are adopted, not resent."""
        return submit.resume_submission(self, job_or_batch_id)

    def reassign_batches(self, job: Job, owner: dict[str, str]) -> None:
        """After a batch was re-planned into pieces: record which piece sends each request in
        the job's row file, and its new batches in the job folder's snapshot."""
        submit.reassign_batches(self, job, owner)

    # ----- monitoring (core.jobs.refresh) -----------------------------------------------------
    def refresh(self, job_ids: Iterable[str] | None = None) -> list[Job]:
        """One monitoring cycle: ask the provider about every active batch (of the given jobs,
        or of all), requeue batches refused for the enqueued-token limit, send queued batches
        that now fit, and record it all in one registry write. A failed check keeps the known
        status and records the problem in ``last_error``.

        Returns the given jobs, or, without ids, the jobs that had something to check."""
        return refresh.refresh(self, job_ids)

    def wait(
        self,
        job_ids: Sequence[str],
        *,
        poll_interval: float = 10.0,
        timeout: float | None = None,
        on_update: Callable[[list[Job]], None] | None = None,
    ) -> list[Job]:
        """Refresh until every given job is finished (or ``timeout`` seconds pass)."""
        return refresh.wait(self, job_ids, poll_interval=poll_interval, timeout=timeout, on_update=on_update)

    def cancel(self, job_or_batch_id: str) -> Job:
        """Cancel every unfinished batch of a job. Finished answers are kept and collected later."""
        job = self.get(job_or_batch_id)
        if job.is_finished:
            raise NotReady(f"Job {job.id} is already finished ({job.status}); there is nothing to cancel.")
        problems: list[str] = []
        for batch in job.batches:
            if batch.batch_id and batch.status in ("validating", "in_progress", "finalizing"):
                try:
                    batch.apply(self._call(job.provider, lambda c, b=batch: c.cancel(b.batch_id)),
                                checked_at=self._now())
                except CoreError as exc:
                    batch.last_error = str(exc)
                    problems.append(f"{batch.key}: {exc}")
            elif batch.is_unsent:
                batch.status = "cancelled"  # never reached the provider: nothing was billed
                batch.last_error = "cancelled before it was submitted"
        self._save(job)
        if problems:
            raise ProviderError(f"Job {job.id}: some batches could not be cancelled: " + "; ".join(problems))
        return job

    def tidy(self) -> housekeeping.TidyReport:
        """Remove our own stale leftovers of crashed writes (see :mod:`core.jobs.housekeeping`)."""
        return housekeeping.tidy(self.settings, self.registry)

    # ----- collecting and reconciling (core.jobs.collect, core.jobs.reconcile) ------------------
    def collect(self, job_or_batch_id: str, *, output_dir: Path | str | None = None,
                column_names: str | None = None) -> collecting.Collection:
        """Download output and error files, give every row one status, write the result CSVs
        (see :func:`core.jobs.collect.collect`)."""
        from core.jobs import collect as collecting

        job = self.get(job_or_batch_id)
        if job.imported is not None:
            from core.interop.legacy.settle import settle_rows

            # a job of the previous tool: its rows checked against the custom_ids its answers carry
            settle_rows(self, job)
        return collecting.collect(self, job.id, output_dir=output_dir, column_names=column_names)

    def reconcile(self, providers: Sequence[ProviderName] | None = None) -> reconciling.ReconcileReport:
        """Compare the provider's batch list with the registry (see :func:`core.jobs.reconcile.reconcile`)."""
        from core.jobs import reconcile as reconciling

        return reconciling.reconcile(self, providers)

    # ----- names, archive, delete (core.jobs.manage) -----------------------------------------
    def edit_job(self, job_or_batch_id: str, *, name: str | None = None, note: str | None = None) -> Job:
        """Set a job's name and/or note (``None``: unchanged; ``""``: removed)."""
        return manage.edit(self, job_or_batch_id, name=name, note=note)

    def archive(self, job_or_batch_id: str) -> list[Job]:
        """Hide a finished job and its re-runs from every job list (undo with :meth:`unarchive`)."""
        return manage.archive(self, job_or_batch_id)

    def unarchive(self, job_or_batch_id: str) -> list[Job]:
        """Show an archived job and its re-runs again."""
        return manage.unarchive(self, job_or_batch_id)

    def plan_deletion(self, job_or_batch_id: str) -> manage.DeletionPlan:
        """What deleting the job would remove, keep and leave at the provider (ask before deleting)."""
        return manage.plan_deletion(self, job_or_batch_id)

    def delete(self, plan: manage.DeletionPlan) -> manage.DeletionReport:
        """Delete a planned job: registry records, then local files; nothing at the provider."""
        return manage.delete(self, plan)

    def _update(self, job: Job, *fields: str) -> None:
        """Write only some fields, so a concurrent refresh of other fields is not undone."""
        with self.registry.transaction() as tx:
            record = tx.get_job(job.id) or job.to_record()
            fresh = job.to_record()
            record.update({name: fresh[name] for name in fields})
            tx.put_job(record)
