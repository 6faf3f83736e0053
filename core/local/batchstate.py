"""One batch of the local backend in memory: its OpenAI Batch object, what has been answered,
the counts and token usage, and the document it is saved as.

Lifecycle (OpenAI vocabulary): validating -> in_progress -> finalizing -> completed;
validating -> failed; (validating|in_progress|finalizing) -> cancelling -> cancelled;
in_progress -> expired when the completion window passes first.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

ACTIVE_STATUSES = frozenset({"validating", "in_progress", "finalizing", "cancelling"})
CANCELLABLE_STATUSES = frozenset({"validating", "in_progress", "finalizing"})


@dataclass
class BatchState:
    obj: dict[str, Any]
    seq: int
    deadline: float
    done: dict[str, bool] = field(default_factory=dict)  # custom_id -> answered with 2xx
    completed: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    enqueued_tokens: int = 0  # counted only when an enqueued-token limit is configured
    output_expiry_seconds: int | None = None  # output_expires_after: the result files' lifetime

    @property
    def id(self) -> str:
        return self.obj["id"]

    @property
    def status(self) -> str:
        return self.obj["status"]

    def count(self, ok: bool, body: Any) -> None:
        """Count one answered request and its token usage."""
        if ok:
            self.completed += 1
        else:
            self.failed += 1
        usage = body.get("usage") if isinstance(body, dict) else None
        if isinstance(usage, dict):
            self.input_tokens += as_int(usage.get("prompt_tokens"))
            self.output_tokens += as_int(usage.get("completion_tokens"))
            self.total_tokens += as_int(usage.get("total_tokens")) or (
                as_int(usage.get("prompt_tokens")) + as_int(usage.get("completion_tokens"))
            )

    def snapshot(self) -> dict[str, Any]:
        """The Batch object as a client sees it now."""
        out = dict(self.obj)
        if out.get("request_counts") is not None:
            out["request_counts"] = {
                "total": out["request_counts"]["total"],
                "completed": self.completed,
                "failed": self.failed,
            }
        if out["status"] not in ("validating", "failed"):
            out["usage"] = {
                "input_tokens": self.input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": self.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.total_tokens,
            }
        return out

    def doc(self) -> dict[str, Any]:
        """What the store saves for this batch (see :mod:`core.local.store`)."""
        return {"batch": self.snapshot(), "seq": self.seq, "deadline": self.deadline,
                "output_expiry_seconds": self.output_expiry_seconds}


def new_batch_object(*, input_file_id: str, endpoint: str, window: str, metadata: Any, created: float,
                     window_seconds: float) -> dict[str, Any]:
    """A fresh Batch object in status ``validating``, created at ``created`` (epoch seconds)."""
    return {
        "id": "batch_" + secrets.token_hex(16),
        "object": "batch",
        "endpoint": endpoint,
        "errors": None,
        "input_file_id": input_file_id,
        "completion_window": window,
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": int(created),
        "in_progress_at": None,
        "expires_at": int(created + window_seconds),
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": metadata,
        "model": None,
        "usage": None,
    }


def as_int(value: Any) -> int:
    """``value`` if it is a true int, else 0 (counts read from answers and state files)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def now_seconds() -> int:
    """The time now in whole epoch seconds, as OpenAI's ``*_at`` fields give it."""
    return int(time.time())


def derived_file_id(batch_id: str, kind: str) -> str:
    """The id of a batch's output or error file: the same for the same batch, so a finish that
    is repeated after a crash writes the same file again."""
    return "file-" + hashlib.sha256(f"{batch_id}:{kind}".encode()).hexdigest()[:24]
