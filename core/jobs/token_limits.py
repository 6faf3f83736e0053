"""What to do when a provider refuses a batch for its enqueued-token limit.

Providers cap the input tokens a model may have queued in batches (OpenAI: per organisation
and tier, not readable through the API). A batch over the cap fails at once with
``token_limit_exceeded``; OpenAI's message states the cap ("... Limit: 12,848 enqueued
tokens ..."). Resending the same file unchanged fails the same way forever, so on a refusal:

* the stated limit is learned and remembered in the registry per provider and model, so the
  next job of that model is planned under it from the start;
* a refused batch larger than the limit (less a safety margin: our token count is an
  estimate, the provider's own count may differ a little) is re-planned into pieces under it,
  sent in turn as the queue drains; a single request over it can never be sent, and fails
  with a message that says so;
* a refused batch that already fits waits until our own queue for the model is empty; if it
  is refused again with our queue empty (someone else's work shares the limit, or the
  provider counts more than we do), it backs off exponentially and is halved, and after a
  bounded number of such refusals it fails with a message. No loop is silent or endless.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import orjson

from core.requests import response_schema_json
from core.safefs import atomic_write
from core.tasks import get_task
from core.tokens import chat_prompt_tokens

if TYPE_CHECKING:
    from core.models import BatchRecord, Job
    from core.jobs.service import JobService

#: Plan under this share of a stated limit: our count is an estimate of the provider's.
SAFETY_MARGIN = 0.9
#: Waits after refusals that our own queue does not explain: 1, 2, 4, ... minutes, at most 30.
BACKOFF_FIRST_SECONDS = 60.0
BACKOFF_MAX_SECONDS = 1800.0
#: Refusals with our own queue empty before a batch of one request is given up.
MAX_UNEXPLAINED_REFUSALS = 5

_LIMIT_PATTERN = re.compile(r"limit\D{0,20}?([\d][\d,\.\s]*)\s*(?:enqueued\s+)?tokens", re.IGNORECASE)


def stated_limit(errors: Iterable[str]) -> int | None:
    """The enqueued-token limit a provider's refusal states, or None when it states none."""
    for error in errors:
        if "token_limit_exceeded" not in error and "enqueued" not in error.lower():
            continue
        match = _LIMIT_PATTERN.search(error)
        if match:
            digits = re.sub(r"[^\d]", "", match.group(1))
            if digits and 0 < int(digits) < 10**13:
                return int(digits)
    return None


def limit_key(provider: str, model: str) -> str:
    return f"{provider}:{model}"


def planning_limit(stated: int) -> int:
    """The batch size in estimated tokens we plan for under a stated limit."""
    return max(1, math.floor(stated * SAFETY_MARGIN))


@dataclass(frozen=True)
class Refusal:
    """What became of one refused batch (for the caller's record of changes)."""

    job_id: str
    batch_key: str
    outcome: str  # "waiting", "backing_off", "split", "given_up"


def handle_refusal(
    service: JobService,
    job: Job,
    batch: BatchRecord,
    *,
    queue_busy: bool,
    learned: dict[str, int],
) -> Refusal:
    """Requeue, re-plan or give up a batch the provider refused for its enqueued-token limit.

    ``queue_busy``: other batches of ours for the same provider and model are active, which
    explains the refusal. ``learned`` collects limits learned in this cycle (key -> tokens),
    for the caller to remember in the registry in its one write."""
    stated = stated_limit(batch.errors)
    key = limit_key(job.provider, job.model)
    if stated:
        learned[key] = stated
    known = [v for v in (stated, service.learned_limit(job.provider, job.model)) if v]
    cap = planning_limit(min(known)) if known else None
    if cap is not None:
        job.enqueued_token_limit = min(job.enqueued_token_limit or cap, cap)
    batch.requeue(reason="the provider's enqueued-token limit was full"
                  + (f" (limit {stated:,} tokens)" if stated else ""))
    if cap is not None and batch.est_input_tokens > cap:
        _split(service, job, batch, cap=cap)
        return Refusal(job.id, batch.key, "split")
    if queue_busy:
        return Refusal(job.id, batch.key, "waiting")
    unexplained = sum(1 for a in batch.attempts if a.get("queue_empty"))
    batch.attempts[-1]["queue_empty"] = True
    unexplained += 1
    if batch.n_requests > 1 and unexplained >= 2:
        _split(service, job, batch, cap=max(1, batch.est_input_tokens // 2), halve=True)
        return Refusal(job.id, batch.key, "split")
    if unexplained >= MAX_UNEXPLAINED_REFUSALS:
        _give_up(batch, f"the provider refused this batch {unexplained} times for its enqueued-token limit "
                        "while none of our other batches were queued; the limit is in use by other work "
                        "or smaller than it states. Re-run these rows later (retry).")
        return Refusal(job.id, batch.key, "given_up")
    delay = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (unexplained - 1))
    batch.not_before = (service._clock() + timedelta(seconds=delay)).isoformat(timespec="seconds")
    return Refusal(job.id, batch.key, "backing_off")


def is_due(batch: BatchRecord, now: datetime) -> bool:
    """Whether a queued batch's back-off time has passed."""
    if not batch.not_before:
        return True
    try:
        return datetime.fromisoformat(batch.not_before) <= now
    except ValueError:
        return True


def _give_up(batch: BatchRecord, reason: str) -> None:
    batch.status = "failed"
    batch.errors = [f"token_limit_exceeded: {reason}"]
    batch.last_error = reason
    batch.not_before = None


def _split(service: JobService, job: Job, batch: BatchRecord, *, cap: int, halve: bool = False) -> None:
    """Replace ``batch`` in ``job`` by pieces of its request file, each at most ``cap``
    estimated tokens (or two halves); rewrite the job's row file and snapshot to match."""
    source = Path(batch.request_file)
    lines = [line for line in source.read_bytes().split(b"\n") if line.strip()]
    task = get_task(job.task)
    schema = response_schema_json(task)
    tokens = [_line_tokens(line, schema_json=schema, model=job.model) for line in lines]
    if halve:
        middle = max(1, len(lines) // 2)
        groups = [(0, middle), (middle, len(lines))]
    else:
        groups = _groups_under(tokens, cap)
    from core.models import BatchRecord

    pieces: list[BatchRecord] = []
    for number, (start, end) in enumerate(groups, start=1):
        key = f"{batch.key}-{number}"
        path = source.with_name(f"{source.stem}-{number}{source.suffix}")
        atomic_write(path, b"".join(line + b"\n" for line in lines[start:end]))
        piece = BatchRecord(
            key=key, request_file=str(path), n_requests=end - start,
            first_custom_id=_custom_id(lines[start]), last_custom_id=_custom_id(lines[end - 1]),
            est_input_tokens=sum(tokens[start:end]), status="queued",
            attempts=[{**a, "split_from": batch.key} for a in batch.attempts] if number == 1 else [],
        )
        if not halve and piece.n_requests == 1 and piece.est_input_tokens > cap:
            _give_up(piece, f"request {piece.first_custom_id} alone is about {piece.est_input_tokens:,} tokens, "
                            f"more than the provider's enqueued-token limit for {job.model} allows "
                            f"({cap:,} with a safety margin); it can never be sent as a batch. Shorten the "
                            "paragraph or the prompt, or use a model with a higher limit.")
        pieces.append(piece)
    at = next(i for i, b in enumerate(job.batches) if b.key == batch.key)
    job.batches[at:at + 1] = pieces
    owner = {_custom_id(lines[i]): piece.key for piece, (s, e) in zip(pieces, groups) for i in range(s, e)}
    service.reassign_batches(job, owner)


def _groups_under(tokens: Sequence[int], cap: int) -> list[tuple[int, int]]:
    """Consecutive groups of at most ``cap`` tokens; a request over it is a group of its own."""
    groups: list[tuple[int, int]] = []
    begin, used = 0, 0
    for index, count in enumerate(tokens):
        if index > begin and (used + count > cap or tokens[index - 1] > cap or count > cap):
            groups.append((begin, index))
            begin, used = index, 0
        used += count
    if tokens:
        groups.append((begin, len(tokens)))
    return groups


def _line_tokens(line: bytes, *, schema_json: str, model: str) -> int:
    body = orjson.loads(line).get("body") or {}
    messages = [m.get("content") for m in body.get("messages") or () if isinstance(m, dict)]
    return chat_prompt_tokens([m for m in messages if isinstance(m, str)], schema_json=schema_json, model=model)


def _custom_id(line: bytes) -> str:
    return str(orjson.loads(line)["custom_id"])
