"""The service layer: prepare, submit, refresh, cancel, wait and collect jobs.

Used by the command line and the dashboard alike. Intent is recorded in the registry before
any paid call; each refresh cycle writes the registry once.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd

from core.client import BatchClient, BatchInfo, make_client
from core.errors import CoreError, JobNotFound, NotReady, ProviderError, TaskError
from core.inputs import InputTable, read_inputs
from core.models import BatchRecord, Job, SourceRecord
from core.pricing import load_price_table
from core.prompts import PromptSet, load_prompts
from core.registry import Registry
from core.requests import (
    MAX_BYTES_PER_FILE,
    MAX_REQUESTS_PER_FILE,
    Estimate,
    estimate_cost,
    iter_request_lines,
    make_custom_id,
    plan_chunks,
    write_request_files,
)
from core.results import (
    MalformedResultFile,
    RowResult,
    combine,
    merge_results,
    parse_result_file,
    read_results,
    status_counts,
    write_results,
)
from core.settings import DEFAULT_MAX_TOKENS, ProviderName, Settings
from core.tasks import INVESTMENT_ACTIVITY, TaskSpec, get_task

ClientFactory = Callable[[ProviderName], BatchClient]
ROW_FILE = "rows.csv"
APP_TAG = "biodiversityasset"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Preparation:
    """A job ready to submit: validated rows, prompts, batch split and estimate. Nothing is
    written and nothing is paid for until ``JobService.submit``."""

    task: TaskSpec
    provider: ProviderName
    model: str
    max_tokens: int
    prompts: PromptSet
    rows: pd.DataFrame  # custom_id, source_index, csv_file_name, row, pdf_file_name, paragraph_text
    sources: list[SourceRecord]
    chunks: list[tuple[int, int]]
    estimate: Estimate
    parent_job_id: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def n_requests(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Collection:
    """What collecting a job produced."""

    job: Job
    frame: pd.DataFrame
    counts: dict[str, int]
    output_files: list[Path]
    raw_files: list[Path]


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
        self._client_factory = client_factory or (lambda provider: make_client(settings, provider))
        self._clients: dict[str, BatchClient] = {}
        self._clock = clock
        self._sleep = sleep

    # ----- helpers -------------------------------------------------------------------------
    def client(self, provider: ProviderName) -> BatchClient:
        if provider not in self._clients:
            self._clients[provider] = self._client_factory(provider)
        return self._clients[provider]

    def _now(self) -> str:
        return self._clock().isoformat(timespec="seconds")

    def _new_job_id(self) -> str:
        return f"job_{self._clock().strftime('%Y%m%d_%H%M%S')}_{secrets.token_hex(2)}"

    # ----- reading -------------------------------------------------------------------------
    def get(self, job_or_batch_id: str) -> Job:
        """A job by its id or by any of its batch ids."""
        record = self.registry.find_job(job_or_batch_id)
        if record is None:
            raise JobNotFound(
                f"No job or batch '{job_or_batch_id}' in the registry ({self.registry.path}). "
                "List known jobs with: python -m core status --list-jobs"
            )
        return Job.model_validate(record)

    def list_jobs(self) -> list[Job]:
        return [Job.model_validate(r) for r in self.registry.list_jobs()]

    def rows(self, job: Job) -> pd.DataFrame:
        return pd.read_csv(Path(job.job_dir) / ROW_FILE, dtype={"custom_id": str, "paragraph_text": str,
                           "pdf_file_name": str, "csv_file_name": str, "batch_key": str},
                           keep_default_na=False)

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
        max_requests_per_file: int = MAX_REQUESTS_PER_FILE,
        max_bytes_per_file: int = MAX_BYTES_PER_FILE,
    ) -> Preparation:
        """Validate everything and plan the job; raises a core error naming what is wrong."""
        task = get_task(task_name)
        chosen_provider: ProviderName = provider or self.settings.provider
        if max_tokens < 1:
            raise CoreError("max tokens must be a positive number.")
        prompts = prompts or load_prompts(task.name)
        warnings: list[str] = []
        if task.parent_task is None:
            if parent:
                raise TaskError(f"Task {task.name} reads input files; it does not take a parent job.")
            if not inputs:
                raise TaskError("No input files given. Upload CSV/XLSX files or choose them from the input folder.")
            tables = read_inputs(inputs)
            rows, sources = _rows_from_tables(tables)
        else:
            if inputs:
                raise TaskError(
                    f"Task {task.name} runs on a completed {task.parent_task} job, not on input files: "
                    "give that job's id (or one of its batch ids)."
                )
            if not parent:
                raise TaskError(f"Task {task.name} needs a completed {task.parent_task} job: give its id.")
            rows, sources, parent_warnings = self._rows_from_parent(parent, task)
            warnings.extend(parent_warnings)
            parent = self.get(parent).id
        if rows.empty:
            raise TaskError("There is nothing to submit: every row was dropped (see the input report).")
        chosen_model = model or self.settings.model_for(chosen_provider)
        custom_ids = rows["custom_id"].tolist()
        texts = rows["paragraph_text"].tolist()
        sizes = (
            len(line)
            for line in iter_request_lines(
                custom_ids, texts, task=task, prompts=prompts, model=chosen_model, max_tokens=max_tokens
            )
        )
        chunks = plan_chunks(
            sizes, custom_ids=custom_ids, max_requests=max_requests_per_file, max_bytes=max_bytes_per_file
        )
        estimate = estimate_cost(
            texts,
            prompts=prompts,
            model=chosen_model,
            max_tokens=max_tokens,
            n_batches=len(chunks),
            prices=load_price_table(self.settings.data_dir),
        )
        return Preparation(
            task=task,
            provider=chosen_provider,
            model=chosen_model,
            max_tokens=max_tokens,
            prompts=prompts,
            rows=rows,
            sources=sources,
            chunks=chunks,
            estimate=estimate,
            parent_job_id=parent,
            warnings=warnings,
        )

    def _rows_from_parent(self, parent_id: str, task: TaskSpec) -> tuple[pd.DataFrame, list[SourceRecord], list[str]]:
        parent = self.get(parent_id)
        if parent.task != task.parent_task:
            raise TaskError(
                f"Job {parent.id} is a {parent.task} job; {task.name} needs a {task.parent_task} job."
            )
        if not parent.is_finished:
            done, failed, total = parent.progress()
            raise NotReady(
                f"Job {parent.id} is not finished yet ({parent.status}, {done + failed:,} of {total:,} requests "
                f"done). Wait for it first: python -m core status --batch-id {parent.id} --wait"
            )
        if parent.status != "completed":
            raise NotReady(
                f"Job {parent.id} ended as '{parent.status}', not completed; its rows are incomplete. "
                "Re-run its unfinished rows first, then start task 2 from it."
            )
        if parent.collected_at is None:
            self.collect(parent.id)
            parent = self.get(parent.id)
        results = read_results(Path(p) for p in parent.output_files)
        selected = results[(results["status"] == "succeeded") & (results["score"] == "1")]
        if selected.empty:
            raise TaskError(f"Job {parent.id} has no paragraph with score 1, so there is nothing for task 2.")
        parent_rows = self.rows(parent).set_index("custom_id")
        rows = parent_rows.loc[selected["custom_id"].tolist()].reset_index()
        rows = rows[["custom_id", "source_index", "csv_file_name", "row", "pdf_file_name", "paragraph_text"]]
        sources = [
            SourceRecord(
                index=s.index, name=s.name, path=s.path, rows_read=s.rows_kept,
                rows_kept=int((rows["source_index"] == s.index).sum()),
            )
            for s in parent.sources
        ]
        skipped = len(results) - len(selected)
        warnings = [f"{len(selected):,} paragraphs with score 1 taken from job {parent.id}; {skipped:,} others left out."]
        return rows.reset_index(drop=True), sources, warnings

    # ----- submitting ----------------------------------------------------------------------
    def submit(self, prep: Preparation, *, created_by: str = "cli") -> Job:
        """Write the request files, record the job, then upload and create its batches."""
        client = self.client(prep.provider)  # fails early (no key, backend down) before recording
        job_id = self._new_job_id()
        job_dir = self.settings.jobs_dir / job_id
        custom_ids = prep.rows["custom_id"].tolist()
        files = write_request_files(
            iter_request_lines(
                custom_ids,
                prep.rows["paragraph_text"].tolist(),
                task=prep.task,
                prompts=prep.prompts,
                model=prep.model,
                max_tokens=prep.max_tokens,
            ),
            job_dir,
            chunks=prep.chunks,
            custom_ids=custom_ids,
        )
        rows = prep.rows.copy()
        rows["batch_key"] = ""
        for number, (start, end) in enumerate(prep.chunks):
            rows.iloc[start:end, rows.columns.get_loc("batch_key")] = f"b{number:03d}"
        rows.to_csv(job_dir / ROW_FILE, index=False)
        job = Job(
            id=job_id,
            task=prep.task.name,
            provider=prep.provider,
            model=prep.model,
            max_tokens=prep.max_tokens,
            created_at=self._now(),
            created_by=created_by,
            parent_job_id=prep.parent_job_id,
            job_dir=str(job_dir),
            output_dir=str(self.settings.data_dir / prep.task.output_folder / job_id),
            n_requests=prep.n_requests,
            sources=prep.sources,
            prompts=prep.prompts.to_record(),
            estimate=prep.estimate.to_record(),
            batches=[
                BatchRecord(
                    key=f"b{number:03d}",
                    request_file=str(f.path),
                    n_requests=f.n_requests,
                    first_custom_id=f.first_custom_id,
                    last_custom_id=f.last_custom_id,
                )
                for number, f in enumerate(files)
            ],
        )
        self._save(job)  # intent first: a crash from here on never loses the job
        return self._send_batches(job, client)

    def resume_submission(self, job_or_batch_id: str) -> Job:
        """Send the batches of a job that were never created (after a failure or a crash).
        Batches the provider already has (found by their metadata) are adopted, not resent."""
        job = self.get(job_or_batch_id)
        if not any(b.status in ("pending", "uploaded", "submit_failed") for b in job.batches):
            raise NotReady(f"Job {job.id} has no unsent batch.")
        client = self.client(job.provider)
        known = {
            info.metadata.get("batch_key"): info
            for info in client.iter_batches()
            if info.metadata.get("job_id") == job.id
        }
        for batch in job.batches:
            if batch.status in ("pending", "uploaded", "submit_failed") and batch.key in known:
                batch.apply(known[batch.key], checked_at=self._now())
        self._save(job)
        return self._send_batches(job, client)

    def _send_batches(self, job: Job, client: BatchClient) -> Job:
        for batch in job.batches:
            if batch.status not in ("pending", "uploaded", "submit_failed"):
                continue
            try:
                if batch.input_file_id is None:
                    batch.input_file_id = client.upload(Path(batch.request_file))
                    batch.status = "uploaded"
                info = client.create_batch(
                    input_file_id=batch.input_file_id,
                    metadata={"job_id": job.id, "batch_key": batch.key, "task": job.task, "app": APP_TAG},
                )
            except ProviderError as exc:
                for rest in job.batches:
                    if rest.status in ("pending", "uploaded", "submit_failed"):
                        rest.status, rest.last_error = "submit_failed", str(exc)
                self._save(job)
                raise ProviderError(
                    f"Job {job.id} is recorded, but batch {batch.key} could not be submitted: {exc} "
                    f"Send the rest later with: python -m core submit --resume {job.id}"
                ) from None
            batch.apply(info, checked_at=self._now())
            self._save(job)
        return job

    def _save(self, job: Job) -> None:
        with self.registry.transaction() as tx:
            tx.put_job(job.to_record())

    # ----- monitoring ----------------------------------------------------------------------
    def refresh(self, job_ids: Iterable[str] | None = None) -> list[Job]:
        """Ask the provider about every active batch (of the given jobs, or of all jobs) and
        record the answers in one registry write. A failed check keeps the known status and
        records the problem in ``last_error``."""
        wanted = None if job_ids is None else {self.get(j).id for j in job_ids}
        jobs = [j for j in self.list_jobs() if wanted is None or j.id in wanted]
        updates: dict[str, dict[str, BatchInfo | str]] = {}
        for job in jobs:
            for batch in job.batches:
                if not batch.batch_id or not (batch.is_active or _output_may_lag(batch)):
                    continue
                try:
                    info: BatchInfo | str = self.client(job.provider).retrieve(batch.batch_id)
                except CoreError as exc:
                    info = str(exc)
                updates.setdefault(job.id, {})[batch.key] = info
        if not updates:
            return jobs
        now = self._now()
        refreshed: dict[str, Job] = {}
        with self.registry.transaction() as tx:
            for job_id, batch_updates in updates.items():
                record = tx.get_job(job_id)
                if record is None:  # deleted meanwhile
                    continue
                job = Job.model_validate(record)
                for key, info in batch_updates.items():
                    batch = job.batch(key)
                    if isinstance(info, BatchInfo):
                        batch.apply(info, checked_at=now)
                    else:
                        batch.last_error = info
                tx.put_job(job.to_record())
                refreshed[job_id] = job
        return [refreshed.get(j.id, j) for j in jobs]

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
        client = self.client(job.provider)
        problems: list[str] = []
        for batch in job.batches:
            if batch.batch_id and batch.status in ("validating", "in_progress", "finalizing"):
                try:
                    batch.apply(client.cancel(batch.batch_id), checked_at=self._now())
                except CoreError as exc:
                    batch.last_error = str(exc)
                    problems.append(f"{batch.key}: {exc}")
            elif batch.status in ("pending", "uploaded", "submit_failed"):
                batch.status = "cancelled"  # never reached the provider: nothing was billed
                batch.last_error = "cancelled before it was submitted"
        self._save(job)
        if problems:
            raise ProviderError(f"Job {job.id}: some batches could not be cancelled: " + "; ".join(problems))
        return job

    # ----- collecting ----------------------------------------------------------------------
    def collect(self, job_or_batch_id: str, *, output_dir: Path | None = None) -> Collection:
        """Download output and error files, give every row one status, write the result CSVs.
        Idempotent: raw files already downloaded are reused, outputs are rewritten whole."""
        job = self.get(job_or_batch_id)
        if not job.is_finished:
            pending = ", ".join(f"{b.key} {b.status}" for b in job.batches if not b.is_terminal)
            raise NotReady(f"Job {job.id} is not finished yet ({pending}). Check again later or use --wait.")
        task = get_task(job.task)
        out_dir = Path(output_dir) if output_dir else Path(job.output_dir)
        raw_dir = out_dir / "raw"
        raw_dir.mkdir(parents=True, exist_ok=True)
        results: list[RowResult] = []
        raw_files: list[Path] = []
        for batch in job.batches:
            if batch.batch_id and _output_may_lag(batch):
                batch.apply(self.client(job.provider).retrieve(batch.batch_id), checked_at=self._now())
                if _output_may_lag(batch):
                    raise NotReady(
                        f"Batch {batch.batch_id} is completed but its output file is not published yet; "
                        "try again in a minute."
                    )
            for kind, file_id in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
                if not file_id:
                    continue
                path = raw_dir / f"{batch.batch_id}_{kind}.jsonl"
                if not path.exists():
                    _atomic_write(path, self.client(job.provider).download(file_id))
                raw_files.append(path)
                try:
                    results.extend(
                        parse_result_file(path.read_bytes(), task=task, batch_id=batch.batch_id, file_label=str(path))
                    )
                except MalformedResultFile as exc:
                    raise CoreError(f"Job {job.id}: the {kind} file of batch {batch.batch_id} is damaged: {exc}") from None
        rows = self.rows(job)
        found = combine(results)
        found.update(_fallback_results(job, rows, found))
        frame = merge_results(rows, found, task=task)
        output_files = write_results(frame, task=task, output_dir=out_dir)
        combined_raw = out_dir / "batch_results.jsonl"
        _atomic_write(combined_raw, b"".join(p.read_bytes() for p in raw_files if p.name.endswith("_output.jsonl")))
        counts = status_counts(frame)
        job.collected_at = self._now()
        job.result_counts = counts
        job.output_files = [str(p) for p in output_files]
        job.output_dir = str(out_dir)
        job.usage = {
            "prompt_tokens": int(frame["prompt_tokens"].sum()),
            "completion_tokens": int(frame["completion_tokens"].sum()),
        }
        self._save(job)
        return Collection(job=job, frame=frame, counts=counts, output_files=output_files, raw_files=raw_files)

    def completed_parent_jobs(self) -> list[Job]:
        """Task-1 jobs that task 2 can start from."""
        return [j for j in self.list_jobs() if j.task == INVESTMENT_ACTIVITY.name and j.status == "completed"]


def _output_may_lag(batch: BatchRecord) -> bool:
    """OpenAI can report ``completed`` a moment before it publishes the output file id."""
    return batch.status == "completed" and batch.completed > 0 and not batch.output_file_id


def _fallback_results(job: Job, rows: pd.DataFrame, found: dict[str, RowResult]) -> dict[str, RowResult]:
    """Rows that no file mentions get their status from their batch's fate."""
    fallback: dict[str, RowResult] = {}
    by_key = {b.key: b for b in job.batches}
    for cid, key in zip(rows["custom_id"], rows["batch_key"]):
        if cid in found:
            continue
        batch = by_key[key]
        if batch.status == "failed":
            reason = "the whole batch failed: " + ("; ".join(batch.errors) or "no reason given")
            fallback[cid] = RowResult(cid, "failed", reason, batch_id=batch.batch_id)
        elif batch.status == "cancelled" and not batch.batch_id:
            fallback[cid] = RowResult(cid, "cancelled", "cancelled before it was submitted")
        elif batch.status in ("expired", "cancelled"):
            fallback[cid] = RowResult(cid, batch.status, f"batch {batch.status} before this row was answered",
                                      batch_id=batch.batch_id)
    return fallback


def _rows_from_tables(tables: Sequence[InputTable]) -> tuple[pd.DataFrame, list[SourceRecord]]:
    frames = []
    sources = []
    for index, table in enumerate(tables):
        frame = table.frame[["row", "pdf_file_name", "paragraph_text"]].copy()
        frame.insert(0, "csv_file_name", table.file_name)
        frame.insert(0, "source_index", index)
        frame.insert(0, "custom_id", [make_custom_id(index, int(r)) for r in frame["row"]])
        frames.append(frame)
        report = table.report
        sources.append(
            SourceRecord(
                index=index,
                name=table.file_name,
                rows_read=report.rows_read,
                rows_kept=report.rows_kept,
                dropped=[{"row": d.row, "reason": d.reason} for d in report.dropped],
                warnings=list(report.warnings),
                encoding=report.encoding,
                separator=report.separator,
            )
        )
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return rows, sources


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
