"""What a job's and a batch's state is, derived from their batches' statuses and counts.

Kept apart from :mod:`core.models` (pydantic) so that both the validated records there and the
read-only views of :mod:`core.jobview` (which the command line lists jobs with, without
importing pydantic) derive a job's status, progress and activity the same way: one rule, two
kinds of record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Sequence

# The provider's batch statuses (OpenAI Batch API), and which of them are final or still at work.
BatchStatus = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]
TERMINAL_STATUSES: frozenset[str] = frozenset({"failed", "completed", "expired", "cancelled"})
ACTIVE_STATUSES: frozenset[str] = frozenset({"validating", "in_progress", "finalizing", "cancelling"})

# Our own states before the provider knows a batch: planned and about to be sent, file
# uploaded, waiting for room under the enqueued-token limit, or sending failed.
UNSENT_STATES: frozenset[str] = frozenset({"pending", "uploaded", "queued", "submit_failed"})
JobStatus = Literal[
    "submitting",
    "submit_failed",
    "in_progress",
    "cancelling",
    "completed",
    "partially_completed",
    "failed",
    "expired",
    "cancelled",
]


class BatchState:
    """A batch's state from its ``status`` and ``errors`` (mixed into the record classes)."""

    __slots__ = ()
    if TYPE_CHECKING:
        status: str
        errors: Sequence[str]

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_unsent(self) -> bool:
        return self.status in UNSENT_STATES

    @property
    def failed_on_token_limit(self) -> bool:
        return self.status == "failed" and any("token_limit_exceeded" in e for e in self.errors)


class JobState:
    """A job's status, activity and request counts from its batches (mixed into the record classes)."""

    __slots__ = ()
    if TYPE_CHECKING:
        n_requests: int

        @property
        def batches(self) -> Sequence[_CountedBatch]: ...

    @property
    def status(self) -> JobStatus:
        states = [b.status for b in self.batches]
        if any(s == "submit_failed" for s in states):
            return "submit_failed"
        if any(s in ("pending", "uploaded") for s in states):
            return "submitting"
        if any(s == "cancelling" for s in states):
            return "cancelling"
        if any(s in ACTIVE_STATUSES or s == "queued" for s in states):
            return "in_progress"
        distinct = set(states)
        if len(distinct) == 1:
            return states[0]  # type: ignore[return-value]
        if "completed" in distinct:
            return "partially_completed"
        return "failed" if "failed" in distinct else "expired" if "expired" in distinct else "cancelled"

    @property
    def is_finished(self) -> bool:
        return all(b.is_terminal for b in self.batches)

    @property
    def is_active(self) -> bool:
        """Something is still happening: a batch runs or waits in our queue."""
        return any(b.is_active or b.status == "queued" for b in self.batches)

    def progress(self) -> tuple[int, int, int]:
        """(answered, failed, total) requests over all batches."""
        done = sum(b.completed for b in self.batches)
        failed = sum(b.failed for b in self.batches)
        return done, failed, self.n_requests


if TYPE_CHECKING:
    class _CountedBatch(BatchState):
        completed: int
        failed: int
