"""Parse batch output and error files, give every submitted row exactly one status, merge
answers back by ``custom_id`` (never by position) and write the result files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

import orjson
import pandas as pd
from pydantic import ValidationError

from core.tasks import TaskSpec

RowStatus = Literal[
    "succeeded",
    "failed",
    "expired",
    "cancelled",
    "refused",
    "truncated",
    "invalid_json",
    "schema_violation",
    "missing",
]
ROW_STATUSES: tuple[RowStatus, ...] = (
    "succeeded",
    "failed",
    "expired",
    "cancelled",
    "refused",
    "truncated",
    "invalid_json",
    "schema_violation",
    "missing",
)
NOT_SUCCEEDED: frozenset[str] = frozenset(ROW_STATUSES) - {"succeeded"}

# Columns every result file carries besides the task's answer columns.
ROW_COLUMNS = ["pdf_file_name", "csv_file_name", "paragraph_text"]
STATUS_COLUMNS = ["status", "status_reason", "custom_id", "row", "model", "batch_id", "answered_by"]
TASK2_FILE = "assetization_features_scored.csv"


@dataclass(frozen=True)
class RowResult:
    """The outcome of one request."""

    custom_id: str
    status: RowStatus
    reason: str
    answer: dict | None = None
    model: str | None = None
    batch_id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _error_text(error: object) -> str:
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
        return ": ".join(str(p) for p in (code, message) if p) or "unknown error"
    return str(error)


def classify_line(line: dict, *, task: TaskSpec, batch_id: str | None) -> RowResult:
    """Turn one output- or error-file line into a RowResult."""
    custom_id = str(line.get("custom_id"))
    error = line.get("error")
    response = line.get("response") or {}
    if error and not response:
        code = error.get("code") if isinstance(error, dict) else None
        status: RowStatus = {"batch_expired": "expired", "batch_cancelled": "cancelled"}.get(code or "", "failed")
        return RowResult(custom_id, status, _error_text(error), batch_id=batch_id)
    body = response.get("body") or {}
    status_code = response.get("status_code")
    if status_code != 200:
        detail = _error_text(body.get("error")) if isinstance(body, dict) and body.get("error") else "no detail"
        return RowResult(custom_id, "failed", f"HTTP {status_code}: {detail}", batch_id=batch_id)
    usage = body.get("usage") or {}
    common = dict(
        model=body.get("model"),
        batch_id=batch_id,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )
    choices = body.get("choices") or []
    if not choices:
        return RowResult(custom_id, "invalid_json", "the answer has no choices", **common)
    choice = choices[0]
    message = choice.get("message") or {}
    finish = choice.get("finish_reason")
    if message.get("refusal"):
        return RowResult(custom_id, "refused", f"model refused: {message['refusal']}", **common)
    if finish == "content_filter":
        return RowResult(custom_id, "refused", "stopped by the provider's content filter", **common)
    if finish == "length":
        return RowResult(custom_id, "truncated", "the answer hit the max-tokens limit; retry with more tokens", **common)
    content = message.get("content")
    if not content:
        return RowResult(custom_id, "invalid_json", "the answer is empty", **common)
    try:
        answer = task.answer_model.model_validate_json(content)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            return RowResult(custom_id, "invalid_json", f"the answer is not valid JSON: {content[:80]!r}", **common)
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        return RowResult(custom_id, "schema_violation", f"{where}: {first['msg']}", **common)
    return RowResult(custom_id, "succeeded", "", answer=answer.model_dump(), **common)


class MalformedResultFile(ValueError):
    pass


def parse_result_file(data: bytes, *, task: TaskSpec, batch_id: str | None, file_label: str) -> list[RowResult]:
    """Parse a whole output or error file. A line that is not JSON is a file problem, reported
    with its line number, never skipped."""
    results: list[RowResult] = []
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise MalformedResultFile(f"{file_label}, line {number}: not valid JSON") from None
        if not isinstance(line, dict) or "custom_id" not in line:
            raise MalformedResultFile(f"{file_label}, line {number}: no custom_id")
        results.append(classify_line(line, task=task, batch_id=batch_id))
    return results


def combine(results: Iterable[RowResult]) -> dict[str, RowResult]:
    """One result per custom_id; a success wins over anything else reported for the same id."""
    combined: dict[str, RowResult] = {}
    for result in results:
        known = combined.get(result.custom_id)
        if known is None or (known.status != "succeeded" and result.status == "succeeded"):
            combined[result.custom_id] = result
    return combined


def merge_results(
    rows: pd.DataFrame,
    results: dict[str, RowResult],
    *,
    task: TaskSpec,
    key: str = "custom_id",
    missing_reason: str = "no answer for this row in the batch output or error files",
) -> pd.DataFrame:
    """Attach answers to rows by id (``key`` names the column holding the request's
    custom_id; with deduplication several rows share one request). Rows without any result
    get status ``missing``."""
    frame = rows.copy()
    found = [results.get(cid) for cid in frame[key]]
    frame["status"] = [r.status if r else "missing" for r in found]
    frame["status_reason"] = [r.reason if r else missing_reason for r in found]
    frame["model"] = [(r.model or "") if r else "" for r in found]
    frame["batch_id"] = [(r.batch_id or "") if r else "" for r in found]
    frame["prompt_tokens"] = [r.prompt_tokens if r else 0 for r in found]
    frame["completion_tokens"] = [r.completion_tokens if r else 0 for r in found]
    for field_name, column in task.columns.items():
        values = [r.answer.get(field_name) if r and r.answer else None for r in found]
        if column in task.score_columns:
            frame[column] = pd.array(values, dtype="Int64")
        else:
            frame[column] = pd.array([v if v is not None else "" for v in values], dtype=object)
    return frame


def result_columns(task: TaskSpec) -> list[str]:
    return ROW_COLUMNS + list(task.columns.values()) + STATUS_COLUMNS


def status_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Rows per status, every status listed (zeros included) so the counts visibly add up."""
    counts = frame["status"].value_counts()
    return {status: int(counts.get(status, 0)) for status in ROW_STATUSES}


def write_results(frame: pd.DataFrame, *, task: TaskSpec, output_dir: Path) -> list[Path]:
    """Write the previous tool's layout: task 1 one CSV per source file, task 2 one CSV."""
    output_dir.mkdir(parents=True, exist_ok=True)
    columns = result_columns(task)
    if task.parent_task is not None:
        path = output_dir / TASK2_FILE
        _write_csv(frame[columns], path)
        return [path]
    paths: list[Path] = []
    used: set[str] = set()
    for source_index, part in frame.groupby("source_index", sort=True):
        name = Path(str(part["csv_file_name"].iloc[0])).stem + ".csv"
        if name in used:  # two uploads with the same name stay apart
            name = f"{Path(name).stem}_s{source_index}.csv"
        used.add(name)
        path = output_dir / name
        _write_csv(part[columns], path)
        paths.append(path)
    return paths


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.to_csv(tmp, index=False, encoding="utf-8")
    tmp.replace(path)


def read_results(paths: Iterable[Path]) -> pd.DataFrame:
    """Read result CSVs back (for the chained task and the explore view)."""
    frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def fallback_results(requests: pd.DataFrame, found: dict[str, RowResult], batches: Iterable) -> dict[str, RowResult]:
    """Requests that no file mentions get their status from their batch's fate (a failed
    batch has no files at all; a batch cancelled before submission never ran)."""
    fallback: dict[str, RowResult] = {}
    by_key = {b.key: b for b in batches}
    for cid, key in zip(requests["custom_id"], requests["batch_key"]):
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


def overlay_retry(frame: pd.DataFrame, retry: pd.DataFrame, *, retry_job_id: str) -> pd.DataFrame:
    """Lay a retry job's rows over the original's, by custom_id: a retry's success replaces
    anything; a retry's failure replaces only a row that had not succeeded (it is newer news)."""
    merged = frame.set_index("custom_id")
    newer = retry.set_index("custom_id")
    newer = newer[newer.index.isin(merged.index)]
    take = newer.index[(newer["status"] == "succeeded") | (merged.loc[newer.index, "status"] != "succeeded")]
    columns = [c for c in newer.columns if c in merged.columns and c not in ("request_id", "batch_key")]
    for column in columns:
        if merged[column].dtype != newer[column].dtype:
            merged[column] = merged[column].astype(object)
        merged.loc[take, column] = newer.loc[take, column]
    merged.loc[take, "answered_by"] = retry_job_id
    return merged.reset_index()
