"""The service layer: prepare, submit, refresh, wait, cancel and retry; collecting and
reconciling live in their own modules and are reached through the same service.

Used by the command line and the dashboard alike. Intent is recorded in the registry before
any paid call; each refresh cycle writes the registry once.
"""

from __future__ import annotations

import secrets
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import orjson

from core.errors import (
    CoreError,
    JobNotFound,
    NotReady,
    ProviderError,
    RegistryError,
    StorageError,
    SubmissionIncomplete,
    TaskError,
    TransientProviderError,
)
from core.jobs import housekeeping, manage, recovery
from core.jobs.common import (
    APP_TAG,
    ROW_FILE,
    SNAPSHOT_FILE,
    attempt_ids,
    is_live,
    output_may_lag,
    upload_name,
    utc_now,
)
from core.jobview import read_view, read_views
from core.pricing import load_price_table
from core.prompts import PromptSet, load_prompts
from core.registry import Registry
from core.safefs import atomic_write, describe_os_error, private_dir
from core.requests import iter_request_lines, write_request_files
from core.settings import DEFAULT_MAX_TOKENS, ProviderName, Settings
from core.tasks import INVESTMENT_ACTIVITY, get_task

# pandas, pyarrow and the openai SDK take about a second to import, pydantic (the job records of
# core.models) a few tenths: they load in the methods that need them, so listing jobs or showing
# a finished job's status starts fast (python -m core).
if TYPE_CHECKING:
    import pandas as pd

    from core.client import BatchClient
    from core.jobs import collect as collecting
    from core.jobs import reconcile as reconciling
    from core.jobview import ShownJob
    from core.models import BatchRecord, Job, SourceRecord
    from core.planning import Preparation

ClientFactory = Callable[[ProviderName], "BatchClient"]


def _default_client_factory(settings: Settings) -> ClientFactory:
    """Clients built by :func:`core.client.make_client`, imported at the first provider call."""

    def factory(provider: ProviderName) -> BatchClient:
        from core.client import make_client

        return make_client(settings, provider)

    return factory
HELD_NOTE = ("held: recorded without sending (submit --hold); export its requests with: python -m core "
             "export-requests --job {job} --dir DIR, or send them with: python -m core submit --resume {job}")


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
        return [j for j in self.list_jobs() if j.task == INVESTMENT_ACTIVITY.name and j.retry_of is None
                and self.can_feed_task2(j)]

    # ----- preparing -----------------------------------------------------------------------
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
        previous tool (``parent_results``)."""
        from core.inputs import read_inputs
        from core.planning import plan, rows_from_tables

        task = get_task(task_name)
        chosen_provider: ProviderName = provider or self.settings.provider
        warnings: list[str] = []
        if enqueued_token_limit is None:
            # plan under a limit the provider stated before, rather than be refused again
            learned = self.learned_limit(chosen_provider, model or self.settings.model_for(chosen_provider))
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
                parent_job = self.get(parent)
                rows, sources, note = self._rows_from_parent(parent_job)
                warnings.append(note)
                parent = parent_job.id
        from core.local.labeler import is_labeler_model  # names only; the labeler loads in the backend

        example_set = None
        if examples is not None or is_labeler_model(model or self.settings.model_for(chosen_provider)):
            # the embedding labeler: ``examples`` (a labels file) or the built-in set, named in the model
            from core.local.labeler.examples import example_set_text, job_example_set

            model, example_set = job_example_set(task.name, provider=chosen_provider, model=model, source=examples,
                                                 default_model=self.settings.model_for(chosen_provider))
            warnings.append(f"The embedding labeler learns from {example_set_text(example_set, task.name)}; the "
                            "set is kept with the job as examples.jsonl and named in the model.")
        prep = plan(
            task=task,
            provider=chosen_provider,
            model=model or self.settings.model_for(chosen_provider),
            max_tokens=max_tokens,
            prompts=prompts or load_prompts(task.name),
            rows=rows,
            sources=sources,
            prices=load_price_table(self.settings.data_dir),
            dedupe=dedupe,
            enqueued_token_limit=enqueued_token_limit,
            max_requests_per_file=max_requests_per_file,
            max_bytes_per_file=max_bytes_per_file,
            parent_job_id=parent,
            warnings=warnings,
        )
        prep.examples = example_set
        return prep

    def can_feed_task2(self, job: Job) -> bool:
        """A task-1 job whose batches completed, or whose gaps were all filled by retries."""
        if job.status == "completed":
            return True
        counts = job.result_counts or {}
        return job.is_finished and counts.get("succeeded", 0) == job.n_rows and job.collected_at is not None

    def _rows_from_parent(self, parent: Job) -> tuple[pd.DataFrame, list[SourceRecord], str]:
        from core.planning import row_columns

        task2 = "assetization_features_scoring"
        if parent.task != INVESTMENT_ACTIVITY.name:
            raise TaskError(
                f"Job {parent.id} is a {parent.task} job; {task2} needs a task-1 ({INVESTMENT_ACTIVITY.name}) job."
            )
        if parent.retry_of:
            parent = self.get(parent.retry_of)
        pending = [j for j in (parent, *self.retries_of(parent)) if not j.is_finished]
        if pending:
            done, failed, total = pending[0].progress()
            raise NotReady(
                f"Job {pending[0].id} is not finished yet ({pending[0].status}, {done + failed:,} of {total:,} "
                f"requests done). Wait for it first: python -m core status --batch-id {pending[0].id} --wait"
            )
        results = self.collect(parent.id).frame
        parent = self.get(parent.id)
        if not self.can_feed_task2(parent):
            gaps = int((results["status"] != "succeeded").sum())
            raise NotReady(
                f"Job {parent.id} ended as '{parent.status}' and {gaps:,} of its rows have no answer. "
                f"Re-run them first (python -m core retry --job {parent.id}), then start task 2 from it."
            )
        selected = results[(results["status"] == "succeeded") & (results["score"] == 1)]
        if selected.empty:
            raise TaskError(f"Job {parent.id} has no paragraph with score 1, so there is nothing for task 2.")
        rows = selected[row_columns(selected)].reset_index(drop=True)  # the input columns come along
        from core.models import SourceRecord

        sources = [
            SourceRecord(index=s.index, name=s.name, path=s.path, sha256=s.sha256, rows_read=s.rows_kept,
                         rows_kept=int((rows["source_index"] == s.index).sum()))
            for s in parent.sources
        ]
        note = (f"{len(rows):,} paragraphs with score 1 taken from job {parent.id}; "
                f"{len(results) - len(rows):,} others left out.")
        return rows, sources, note

    # ----- submitting ----------------------------------------------------------------------
    def submit(self, prep: Preparation, *, created_by: str = "cli", send: bool = True) -> Job:
        """Write the request files, record the job, then send as many batches as the
        enqueued-token limit allows (the rest are sent by later refresh cycles).

        With ``send=False`` the job is recorded and nothing is sent: its batches wait as
        ``submit_failed`` (held), for ``submit --resume`` or a run elsewhere
        (:mod:`core.interop.files`)."""
        client = self.client(prep.provider) if send else None  # fails early (no key) before anything is recorded
        job_id = self._new_job_id()
        job_dir = self.settings.jobs_dir / job_id
        try:
            job = self._record_intent(prep, job_id=job_id, job_dir=job_dir, created_by=created_by)
        except (OSError, RegistryError) as exc:
            # nothing was sent yet: leave no half-written job folder behind (a full disk)
            shutil.rmtree(job_dir, ignore_errors=True)
            if isinstance(exc, OSError):
                raise StorageError(describe_os_error(f"Could not write job {job_id} in {job_dir}", exc)) from None
            raise
        if client is None:
            for batch in job.batches:
                batch.status, batch.last_error = "submit_failed", HELD_NOTE.format(job=job.id)
            self._save(job)
            return job
        return self._send_batches(job, client)

    def _record_intent(self, prep: Preparation, *, job_id: str, job_dir: Path, created_by: str) -> Job:
        """Write the request files, the row file and the job snapshot, then record the job."""
        from core.csvout import write_csv

        private_dir(job_dir)
        if prep.examples is not None:  # the exact set the labeler learns from, beside the request files
            from core.local.labeler.examples import job_examples_path

            atomic_write(job_examples_path(job_dir), prep.examples.canonical)
        requests = prep.requests
        custom_ids = requests["custom_id"].tolist()
        files = write_request_files(
            iter_request_lines(custom_ids, requests["paragraph_text"].tolist(), task=prep.task,
                               prompts=prep.prompts, model=prep.model, max_tokens=prep.max_tokens),
            job_dir,
            chunks=prep.chunks,
            custom_ids=custom_ids,
        )
        batch_of_request = {cid: f"b{n:03d}" for n, (s, e) in enumerate(prep.chunks) for cid in custom_ids[s:e]}
        rows = prep.rows.copy()
        rows["batch_key"] = rows["request_id"].map(batch_of_request)
        write_csv(rows, job_dir / ROW_FILE)  # quotes a lone carriage return, which to_csv leaves bare
        from core.models import BatchRecord, Job

        job = Job(
            id=job_id,
            task=prep.task.name,
            provider=prep.provider,
            model=prep.model,
            max_tokens=prep.max_tokens,
            created_at=self._now(),
            created_by=created_by,
            name=manage.clean_name(prep.name),
            note=manage.clean_note(prep.note),
            parent_job_id=prep.parent_job_id,
            retry_of=prep.retry_of,
            job_dir=str(job_dir),
            output_dir=str(self.settings.data_dir / prep.task.output_folder / job_id),
            n_rows=prep.n_rows,
            n_requests=prep.n_requests,
            dedupe=prep.dedupe,
            enqueued_token_limit=prep.enqueued_token_limit,
            sources=prep.sources,
            prompts=prep.prompts.to_record(),
            estimate={**prep.estimate.to_record(), "duplicates_saved": prep.duplicates_saved},
            batches=[
                BatchRecord(key=f"b{n:03d}", request_file=str(f.path), n_requests=f.n_requests,
                            first_custom_id=f.first_custom_id, last_custom_id=f.last_custom_id,
                            est_input_tokens=tokens)
                for n, (f, tokens) in enumerate(zip(files, prep.chunk_tokens))
            ],
        )
        # Intent first: from here on a crash never loses the job. The snapshot in the job
        # folder lets reconcile rebuild the record if the registry is ever lost.
        atomic_write(job_dir / SNAPSHOT_FILE, orjson.dumps(job.to_record(), option=orjson.OPT_INDENT_2))
        self._save(job)
        return job

    def resume_submission(self, job_or_batch_id: str) -> Job:
        """Send the batches of a job that were never created (after a failure or a crash).
        Batches the provider already has (found by their metadata) are adopted, not resent."""
        job = self.get(job_or_batch_id)
        if not any(b.status in ("pending", "uploaded", "submit_failed") for b in job.batches):
            raise NotReady(f"Job {job.id} has no unsent batch.")
        client = self.client(job.provider)
        known = {info.metadata.get("batch_key"): info for info in client.iter_batches()
                 if info.metadata.get("job_id") == job.id}
        for batch in job.batches:
            if batch.is_unsent and batch.key in known and known[batch.key].batch_id not in attempt_ids(batch):
                batch.apply(known[batch.key], checked_at=self._now())
            elif batch.status == "submit_failed":
                batch.status = "pending"
        self._save(job)
        return self._send_batches(job, client)

    def _room(self, provider: str, model: str, limit: int | None, exclude: str) -> float:
        """Tokens still free under the enqueued-token limit, counting other jobs' active batches."""
        if not limit:
            return float("inf")
        used = sum(b.est_input_tokens for j in self.list_jobs() if j.id != exclude and j.provider == provider
                   and j.model == model for b in j.batches if b.is_active)
        return limit - used

    def _send_batches(self, job: Job, client: BatchClient) -> Job:
        room = self._room(job.provider, job.model, job.enqueued_token_limit, exclude=job.id)
        room -= sum(b.est_input_tokens for b in job.batches if b.is_active)
        for batch in job.batches:
            if batch.status not in ("pending", "uploaded", "queued"):
                continue
            if batch.est_input_tokens > room:
                batch.status = "queued"
                continue
            try:
                self._create(job, batch, client)
            except ProviderError as exc:
                for rest in job.batches:
                    if rest.status in ("pending", "uploaded"):
                        rest.status, rest.last_error = "submit_failed", str(exc)
                batch.status, batch.last_error = "submit_failed", str(exc)
                self._save(job)
                raise SubmissionIncomplete(
                    job.id,
                    f"Job {job.id} is recorded, but batch {batch.key} could not be submitted: {exc} "
                    f"Send the rest later with: python -m core submit --resume {job.id}",
                ) from None
            room -= batch.est_input_tokens
            self._save(job)
        self._save(job)
        return job

    def _create(self, job: Job, batch: BatchRecord, client: BatchClient) -> None:
        if batch.input_file_id is None:
            # named after the job and batch, so an upload whose batch was never created (a crash
            # in between) is recognisable as ours and removed by reconcile
            batch.input_file_id = client.upload(Path(batch.request_file), name=upload_name(job.id, batch.key))
            batch.status = "uploaded"
        self._upload_examples(job, client)
        info = client.create_batch(
            input_file_id=batch.input_file_id,
            metadata={"job_id": job.id, "batch_key": batch.key, "task": job.task, "app": APP_TAG},
        )
        batch.apply(info, checked_at=self._now())

    def _upload_examples(self, job: Job, client: BatchClient) -> None:
        """Give the local backend the example set a labeler job learns from (once per set and
        service). The backend finds it by the sha256 in the model name, never by a path."""
        from core.local.labeler import examples_sha256
        from core.local.labeler.examples import job_examples_path

        sha = examples_sha256(job.model)
        if sha is None or job.provider != "local" or (job.provider, sha) in self._examples_sent:
            return
        path = job_examples_path(job.job_dir)
        if not path.is_file():
            return
        client.upload(path, name=f"labeler-examples-{sha[:16]}.jsonl", purpose="user_data")
        self._examples_sent.add((job.provider, sha))

    def learned_limit(self, provider: str, model: str) -> int | None:
        """The enqueued-token limit a provider stated for this model, if one was learned."""
        from core.jobs import token_limits  # tokens and request files: not needed to list jobs

        record = self.registry.get_provider_limit(token_limits.limit_key(provider, model)) or {}
        value = record.get("enqueued_token_limit")
        return int(value) if isinstance(value, int) and value > 0 else None

    def reassign_batches(self, job: Job, owner: dict[str, str]) -> None:
        """After a batch was re-planned into pieces: record which piece sends each request in
        the job's row file, and its new batches in the job folder's snapshot."""
        from core.csvout import write_csv

        rows = self.rows(job)
        rows["batch_key"] = rows["request_id"].map(owner).fillna(rows["batch_key"])
        job_dir = Path(job.job_dir)
        write_csv(rows, job_dir / ROW_FILE)
        atomic_write(job_dir / SNAPSHOT_FILE, orjson.dumps(job.to_record(), option=orjson.OPT_INDENT_2))

    # ----- monitoring ----------------------------------------------------------------------
    def refresh(self, job_ids: Iterable[str] | None = None) -> list[Job]:
        """One monitoring cycle: ask the provider about every active batch (of the given jobs,
        or of all), requeue batches refused for the enqueued-token limit, send queued batches
        that now fit, and record it all in one registry write. A failed check keeps the known
        status and records the problem in ``last_error``.

        Returns the given jobs, or, without ids, the jobs that had something to check."""
        wanted = None if job_ids is None else list(dict.fromkeys(self.get(j).id for j in job_ids))
        # Only jobs with something under way are parsed: with 10,000 finished jobs stored,
        # a cycle must not rebuild them all.
        live = recovery.read_records(self.registry.list_jobs(where=is_live))[0]  # damaged: left out
        jobs = [j for j in live if wanted is None or j.id in wanted]
        now = self._now()
        changed: set[str] = set()
        refused: list[tuple[Job, BatchRecord]] = []
        for job in jobs:
            for batch in job.batches:
                if not batch.batch_id or not (batch.is_active or output_may_lag(batch)):
                    continue
                try:
                    info = self._call(job.provider, lambda c, b=batch: c.retrieve(b.batch_id))
                except CoreError as exc:
                    batch.last_error = str(exc)
                else:
                    batch.apply(info, checked_at=now)
                    if batch.failed_on_token_limit:
                        refused.append((job, batch))
                changed.add(job.id)
        learned: dict[str, int] = {}
        if refused:
            from core.jobs import token_limits  # tokens and request files: not needed to list jobs
        for job, batch in refused:
            # a refusal while other batches of ours for the model are queued is explained by them
            busy = any(b.is_active for j in live if j.provider == job.provider and j.model == job.model
                       for b in j.batches if b is not batch)
            token_limits.handle_refusal(self, job, batch, queue_busy=busy, learned=learned)
        changed |= self._send_queued(jobs, live)
        if changed or learned:
            with self.registry.transaction() as tx:
                for job in jobs:
                    stored = tx.get_job(job.id) if job.id in changed else None
                    if stored is None:  # unchanged, or deleted meanwhile
                        continue
                    # only the batches (and a limit learned for them): fields written meanwhile
                    # (collection results) stay
                    stored["batches"] = [b.model_dump(mode="json") for b in job.batches]
                    stored["enqueued_token_limit"] = job.enqueued_token_limit
                    tx.put_job(stored)
                for key, limit in learned.items():
                    tx.put_provider_limit(key, {"enqueued_token_limit": limit, "learned_at": now,
                                                "source": "stated in the provider's refusal"})
        if wanted is None:
            return jobs
        by_id = {j.id: j for j in jobs}
        return [by_id.get(job_id) or self.get(job_id) for job_id in wanted]

    def _send_queued(self, jobs: list[Job], all_jobs: list[Job]) -> set[str]:
        """Send queued batches, oldest job first, while they fit under their model's limit."""
        changed: set[str] = set()
        queued = [j for j in sorted(jobs, key=lambda j: j.created_at) if any(b.status == "queued" for b in j.batches)]
        if queued:
            from core.jobs import token_limits  # tokens and request files: not needed to list jobs
        for job in queued:
            used = sum(b.est_input_tokens for j in all_jobs if j.provider == job.provider and j.model == job.model
                       for b in j.batches if b.is_active)
            room = (job.enqueued_token_limit or float("inf")) - used
            for batch in job.batches:
                if batch.status != "queued" or batch.est_input_tokens > room:
                    continue
                if not token_limits.is_due(batch, self._clock()):
                    continue
                if batch.attempts and used:
                    # The provider refused it for its queue limit, which may be lower than ours
                    # (or shared with other work): resend only once our queue for the model is empty.
                    continue
                try:
                    self._create(job, batch, self.client(job.provider))
                except CoreError as exc:
                    batch.last_error = str(exc)
                    changed.add(job.id)
                    break
                room -= batch.est_input_tokens
                used += batch.est_input_tokens
                changed.add(job.id)
        return changed

    def wait(
        self,
        job_ids: Sequence[str],
        *,
        poll_interval: float = 10.0,
        timeout: float | None = None,
        on_update: Callable[[list[Job]], None] | None = None,
    ) -> list[Job]:
        """Refresh until every given job is finished (or ``timeout`` seconds pass)."""
        ids = [self.get(j).id for j in job_ids]
        started = time.monotonic()
        while True:
            jobs = self.refresh(ids)
            if on_update:
                on_update(jobs)
            if all(j.is_finished or j.status == "submit_failed" for j in jobs):
                return jobs
            if timeout is not None and time.monotonic() - started >= timeout:
                return jobs
            self._sleep(poll_interval)

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

    # ----- retry -----------------------------------------------------------------------------
    def retry(self, job_or_batch_id: str, *, model: str | None = None, max_tokens: int | None = None,
              provider: ProviderName | None = None, created_by: str = "cli") -> Job | None:
        """Submit exactly the rows of a job that did not succeed as a new retry job, on the
        original's provider or on ``provider`` (then with that provider's default model unless
        ``model`` is given). Returns None when every row has already succeeded (nothing is
        submitted). The original's results show which job, provider and model answered each row."""
        from core.planning import plan, row_columns

        job = self.get(job_or_batch_id)
        original = self.get(job.retry_of) if job.retry_of else job
        running = [j.id for j in (original, *self.retries_of(original)) if not j.is_finished]
        if running:
            raise NotReady(f"Job {running[0]} is still running; wait for it before re-running the gaps.")
        merged = self.collect(original.id).frame
        gaps = merged[merged["status"] != "succeeded"]
        if gaps.empty:
            return None
        chosen: ProviderName = provider or original.provider  # type: ignore[assignment]
        same_provider = chosen == original.provider
        prep = plan(
            task=get_task(original.task),
            provider=chosen,
            model=model or (original.model if same_provider else self.settings.model_for(chosen)),
            max_tokens=max_tokens or original.max_tokens,
            prompts=PromptSet.from_record(original.prompts),
            rows=gaps[row_columns(gaps)],
            sources=original.sources,
            prices=load_price_table(self.settings.data_dir),
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
        return self.submit(prep, created_by=created_by)
