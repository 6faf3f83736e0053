"""The job and batch records kept in the registry (plain JSON through pydantic)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from core.errors import RegistryError
from core.jobstate import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    UNSENT_STATES,
    BatchState,
    BatchStatus,
    JobState,
    JobStatus,
)

if TYPE_CHECKING:  # the client (and the openai SDK) load only when a provider is called
    from core.client import BatchInfo

# The statuses and the state derived from them live in core.jobstate (no pydantic), shared with
# the read-only views the command line lists jobs with; they are named here too for importers.
__all__ = ["ACTIVE_STATUSES", "BatchRecord", "BatchStatus", "Job", "JobStatus", "SourceRecord", "TERMINAL_STATUSES",
           "UNSENT_STATES"]


class BatchRecord(BaseModel, BatchState):
    """One batch file of a job, from intent (``pending``) to a terminal provider status."""

    key: str
    request_file: str
    n_requests: int
    first_custom_id: str
    last_custom_id: str
    est_input_tokens: int = 0
    status: str = "pending"
    input_file_id: str | None = None
    batch_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: list[str] = Field(default_factory=list)
    timestamps: dict[str, int | None] = Field(default_factory=dict)
    model: str | None = None
    last_checked_at: str | None = None
    last_error: str | None = None  # the last transient problem; the known status stays
    # earlier provider batches for this file that failed for a retryable reason (token limit)
    attempts: list[dict[str, Any]] = Field(default_factory=list)
    # after a refusal our own queue does not explain: not sent again before this time (ISO)
    not_before: str | None = None
    # result files produced elsewhere and imported for this batch (core.interop.files): name,
    # sha256, lines taken, when; their merged lines are the batch's raw output and error files
    imported_results: list[dict[str, Any]] = Field(default_factory=list)

    def requeue(self, *, reason: str) -> None:
        """Keep the failed attempt on record and wait for room to send the same file again."""
        self.attempts.append({"batch_id": self.batch_id, "errors": list(self.errors), "reason": reason})
        self.batch_id = None
        self.status = "queued"
        self.total = self.completed = self.failed = 0
        self.output_file_id = self.error_file_id = None
        self.errors = []
        self.timestamps = {}

    def apply(self, info: BatchInfo, *, checked_at: str) -> None:
        """Take the provider's view of this batch."""
        self.batch_id = info.batch_id
        self.status = info.status
        self.input_file_id = info.input_file_id
        self.output_file_id = info.output_file_id
        self.error_file_id = info.error_file_id
        self.total, self.completed, self.failed = info.total, info.completed, info.failed
        self.errors = list(info.errors)
        self.model = info.model or self.model
        self.timestamps = {
            name: getattr(info, name)
            for name in (
                "created_at", "in_progress_at", "finalizing_at", "completed_at", "failed_at",
                "expired_at", "cancelling_at", "cancelled_at", "expires_at",
            )
        }
        self.last_checked_at = checked_at
        self.last_error = None
        self.not_before = None


class SourceRecord(BaseModel):
    index: int
    name: str
    path: str | None = None  # absolute path of a file read from disk; None for an upload
    sha256: str | None = None  # of the bytes read when the job was planned (uploads too)
    rows_read: int
    rows_kept: int
    dropped: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)  # problems found in the file
    notes: list[str] = Field(default_factory=list)  # what was done: encoding, sheet and text column read
    encoding: str | None = None
    separator: str | None = None
    sheet: str | None = None  # the sheet read, for a workbook
    text_column: str | None = None  # the file's column the paragraphs came from


class Job(BaseModel, JobState):
    """A submitted labelling job: its inputs, prompts, batches and collected results."""

    id: str
    task: str
    provider: Literal["openai", "local", "azure", "anthropic"]
    model: str
    max_tokens: int
    created_at: str
    created_by: str = "cli"
    # what the researcher calls the job and notes about it; editable at any time
    name: str | None = None
    note: str | None = None
    archived_at: str | None = None  # hidden from every job list while set (undone by unarchiving)
    parent_job_id: str | None = None  # task 2: the task-1 job it reads
    retry_of: str | None = None  # a retry: the original job whose gaps it fills
    job_dir: str
    output_dir: str
    n_rows: int
    n_requests: int
    dedupe: bool = True
    enqueued_token_limit: int | None = None
    sources: list[SourceRecord]
    prompts: dict[str, str]
    estimate: dict[str, Any]
    batches: list[BatchRecord]
    collected_at: str | None = None
    result_counts: dict[str, int] | None = None
    output_files: list[str] = Field(default_factory=list)
    usage: dict[str, Any] | None = None  # actual tokens and cost, after collection
    # a job brought in from the previous tool (core.interop.legacy): where it came from, what
    # was brought in and what could not be; None for jobs submitted here
    imported: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_older_records(cls, data: Any) -> Any:
        # records written before deduplication existed had one row per request
        if isinstance(data, dict) and "n_rows" not in data and "n_requests" in data:
            data = {**data, "n_rows": data["n_requests"]}
        return data

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Job":
        """A job from its registry record, with a plain message if the record is damaged."""
        try:
            return cls.model_validate(record)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise RegistryError(
                f"The registry record of job {record.get('id', '?')} is damaged ({where}: {first['msg']})."
            ) from None

    def batch(self, key: str) -> BatchRecord:
        return next(b for b in self.batches if b.key == key)

    def to_record(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
