"""Names and small helpers shared by the service, collecting and reconciling."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from core.jobstate import ACTIVE_STATUSES
from core.pricing import load_price_table

if TYPE_CHECKING:  # pydantic loads only where records are validated
    from core.models import BatchRecord

ROW_FILE = "rows.csv"
SNAPSHOT_FILE = "job.json"
APP_TAG = "biodiversityasset"
LIVE_STATES = ACTIVE_STATUSES | {"queued"}


_UPLOAD_NAME = re.compile(r"^(job_\d{8}_\d{6}_[0-9a-f]{4})-(b\d{3}(?:-\d+)*)\.jsonl$")


def upload_name(job_id: str, batch_key: str) -> str:
    """The name a request file is uploaded under: says which job and batch it belongs to."""
    return f"{job_id}-{batch_key}.jsonl"


def parse_upload_name(name: str) -> tuple[str, str] | None:
    """(job id, batch key) of a file we uploaded, or None for anyone else's file."""
    match = _UPLOAD_NAME.match(name)
    return (match.group(1), match.group(2)) if match else None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def attempt_ids(batch: BatchRecord) -> set[str]:
    """Provider ids of earlier attempts at sending this batch's file."""
    return {a.get("batch_id") for a in batch.attempts if a.get("batch_id")}


def output_may_lag(batch: BatchRecord) -> bool:
    """OpenAI can report ``completed`` a moment before it publishes the output file id."""
    return batch.status == "completed" and batch.completed > 0 and not batch.output_file_id


def is_live(record: dict) -> bool:
    """A registry record with a batch to check or to send (tested on the raw dict, cheaply)."""
    batches = record.get("batches")
    if not isinstance(batches, list):
        return False
    return any(
        isinstance(b, dict) and (
            b.get("status") in LIVE_STATES
            or (b.get("status") == "completed" and b.get("completed") and not b.get("output_file_id"))
        )
        for b in batches
    )


def usage_with_cost(prompt: int, completion: int, model: str, data_dir: Path, *,
                    answered_by: str | None = None) -> dict:
    """Actual tokens and their cost at the price table's batch prices (None when unpriced).
    An Azure job's model is a deployment name the table may not know: then the model the
    answers name (``answered_by``, e.g. ``gpt-4.1-mini-2025-04-14``) is priced instead."""
    table = load_price_table(data_dir)
    price = table.price_for(model) or (table.price_for(answered_by) if answered_by else None)
    cost = None if price is None else prompt * price.input_per_million / 1e6 + completion * price.output_per_million / 1e6
    return {"prompt_tokens": prompt, "completion_tokens": completion, "cost": cost}
