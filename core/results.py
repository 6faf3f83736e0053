"""Parse batch output and error files, give every submitted row exactly one status, merge
answers back by ``custom_id`` (never by position) and write the result files."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Iterable, Literal, get_args, get_origin

import numpy as np
import orjson
import pandas as pd
from annotated_types import MinLen
from pydantic import BaseModel, ValidationError

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
ROW_STATUSES: tuple[RowStatus, ...] = get_args(RowStatus)

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


_FastCheck = tuple[tuple[str, str, object], ...]  # (field, "str" | "choice", min length | allowed ints)
_FAST_CHECKS: dict[type, _FastCheck | None] = {}


def _fast_check(model: type[BaseModel]) -> _FastCheck | None:
    """Plain checks equivalent to ``model`` for the fields it uses, or None when the model has
    anything they do not cover (then every answer goes through pydantic)."""
    if model in _FAST_CHECKS:
        return _FAST_CHECKS[model]
    checks: list[tuple[str, str, object]] = []
    ok = model.model_config.get("extra") == "forbid"
    for name, field in model.model_fields.items():
        if not ok or field.alias not in (None, name) or not field.is_required():
            ok = False
            break
        if field.annotation is str:
            min_length = 0
            for constraint in field.metadata:
                if isinstance(constraint, MinLen):
                    min_length = max(min_length, constraint.min_length)
                else:
                    ok = False
            checks.append((name, "str", min_length))
        elif get_origin(field.annotation) is Literal and not field.metadata and all(
            type(v) is int for v in get_args(field.annotation)
        ):
            checks.append((name, "choice", frozenset(get_args(field.annotation))))
        else:
            ok = False
    result = tuple(checks) if ok and checks else None
    _FAST_CHECKS[model] = result
    return result


def _fast_answer(model: type[BaseModel], content: object) -> dict | None:
    """The answer as ``model_validate_json(content).model_dump()`` would give it, for the
    common well-formed answer only; None for anything else (the caller then asks pydantic,
    which also words the reason)."""
    checks = _fast_check(model)
    return None if checks is None else _checked_answer(checks, content)


def _checked_answer(checks: _FastCheck, content: object) -> dict | None:
    if type(content) is not str:
        return None
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or len(data) != len(checks):
        return None
    answer = {}
    for name, kind, rule in checks:
        value = data.get(name, _ABSENT)
        if kind == "str":
            if type(value) is not str or len(value) < rule:  # type: ignore[operator]
                return None
        elif type(value) is not int or value not in rule:  # type: ignore[operator]
            return None
        answer[name] = value
    return answer


_ABSENT = object()
_DIVERTED = frozenset({"content_filter", "length"})


def _fast_success(line: dict, checks: _FastCheck, batch_id: str | None) -> RowResult | None:
    """classify_line's result for the common case (a 200 answer that passes the plain
    checks); None for anything else, which then goes through classify_line."""
    if line.get("error"):
        return None
    response = line.get("response")
    if type(response) is not dict or response.get("status_code") != 200:
        return None
    body = response.get("body")
    if type(body) is not dict:
        return None
    choices = body.get("choices")
    if type(choices) is not list or not choices:
        return None
    choice = choices[0]
    if type(choice) is not dict:
        return None
    message = choice.get("message")
    if type(message) is not dict or message.get("refusal") or choice.get("finish_reason") in _DIVERTED:
        return None
    usage = body.get("usage")
    if type(usage) is not dict:
        return None
    prompt_tokens = usage.get("prompt_tokens") or 0
    completion_tokens = usage.get("completion_tokens") or 0
    if type(prompt_tokens) is not int or type(completion_tokens) is not int:
        return None
    answer = _checked_answer(checks, message.get("content"))
    if answer is None:
        return None
    return RowResult(
        str(line.get("custom_id")), "succeeded", "", answer, body.get("model"), batch_id, prompt_tokens, completion_tokens
    )


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
    fast = _fast_answer(task.answer_model, content)
    if fast is not None:
        return RowResult(custom_id, "succeeded", "", answer=fast, **common)
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
    append = results.append
    loads = orjson.loads
    checks = _fast_check(task.answer_model)
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = loads(raw)
        except orjson.JSONDecodeError:
            raise MalformedResultFile(f"{file_label}, line {number}: not valid JSON") from None
        if type(line) is not dict:
            if not isinstance(line, dict):
                raise MalformedResultFile(f"{file_label}, line {number}: no custom_id")
        if "custom_id" not in line:
            raise MalformedResultFile(f"{file_label}, line {number}: no custom_id")
        result = _fast_success(line, checks, batch_id) if checks is not None else None
        append(result if result is not None else classify_line(line, task=task, batch_id=batch_id))
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
    # A stand-in result for rows without one gives exactly the "missing" values below.
    missing = RowResult("", "missing", missing_reason)
    get = results.get
    found = [get(cid, missing) for cid in frame[key].tolist()]
    frame["status"] = list(map(attrgetter("status"), found))
    frame["status_reason"] = list(map(attrgetter("reason"), found))
    frame["model"] = [m or "" for m in map(attrgetter("model"), found)]
    frame["batch_id"] = [b or "" for b in map(attrgetter("batch_id"), found)]
    frame["prompt_tokens"] = list(map(attrgetter("prompt_tokens"), found))
    frame["completion_tokens"] = list(map(attrgetter("completion_tokens"), found))
    answers = list(map(attrgetter("answer"), found))
    for field_name, column in task.columns.items():
        values = [a.get(field_name) if a else None for a in answers]
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
    columns = _csv_columns(frame)
    if columns is None:
        frame.to_csv(tmp, index=False, encoding="utf-8")
    else:
        # Byte-identical to to_csv(index=False, encoding="utf-8") (which feeds the same csv
        # module the same cell objects), without its per-chunk conversions.
        header = [str(c) for c in frame.columns]
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator=os.linesep, quoting=csv.QUOTE_MINIMAL)
            writer.writerow(header)
            if len(columns) > 1 and _quoting_matches_csv():
                # The csv module walks every character in Python-object land (about 20 ns a
                # character); quoting whole cells with str methods gives the same text.
                cells = [_quote_cells(c) for c in columns]
                fh.write(os.linesep.join(map(",".join, zip(*cells))))
                fh.write(os.linesep)
            else:
                writer.writerows(zip(*columns))
    tmp.replace(path)


_CSV_SPECIAL = ',"' + os.linesep  # what makes csv.writer quote a cell (QUOTE_MINIMAL)
_QUOTING_OK: list[bool] = []


def _cell_text(value: object) -> str:
    # csv.writer: None -> "", floats by repr, everything else by str
    if type(value) is str:
        return value
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def _quote_cells(values: list) -> list[str]:
    """The cells of one column as csv.writer (QUOTE_MINIMAL, doublequote) writes them."""
    try:
        joined = "\x00".join(values)
    except TypeError:  # not all str
        values = [_cell_text(v) for v in values]
        joined = "\x00".join(values)
    special = [c for c in _CSV_SPECIAL if c in joined]  # str's "in" is far faster than re here
    if not special:
        return values
    if len(special) == 1:
        (a,) = special
        return ['"' + v.replace('"', '""') + '"' if a in v else v for v in values]
    if len(special) == 2:
        a, b = special
        return ['"' + v.replace('"', '""') + '"' if a in v or b in v else v for v in values]
    return ['"' + v.replace('"', '""') + '"' if any(c in v for c in special) else v for v in values]


def _quoting_matches_csv() -> bool:
    """Checked once against this Python's csv module, whose quoting rules have changed
    between versions; on any difference the csv module writes the rows itself."""
    if not _QUOTING_OK:
        import io

        probes: list[object] = [
            "", " ", "a", ",", '"', "\r", "\n", "\r\n", "\t", "#", "a,b", 'a"b', " lead", "trail ", "\x00",
            "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "'", ";", "\\", "Ä€", "=1", None, 1, -2, True, 1.5,
            float("nan"), np.int64(3),
        ]
        ok = True
        for probe in probes:
            buf = io.StringIO()
            csv.writer(buf, lineterminator=os.linesep, quoting=csv.QUOTE_MINIMAL).writerow([probe, "x"])
            ok = ok and buf.getvalue() == ",".join(_quote_cells([probe, "x"])) + os.linesep
        _QUOTING_OK.append(ok)
    return _QUOTING_OK[0]


def _csv_columns(frame: pd.DataFrame) -> list[list] | None:
    """Each column's cells as pandas' CSV writer hands them to the csv module (missing
    values as ""), or None when a column has a dtype pandas formats itself (floats, dates,
    categories, ...) or the columns are not plain."""
    if isinstance(frame.columns, pd.MultiIndex) or not frame.columns.is_unique:
        return None
    out: list[list] = []
    for name in frame.columns:
        column = frame[name]
        values = column.array
        dtype = column.dtype
        if isinstance(dtype, pd.StringDtype) or isinstance(values, (pd.arrays.IntegerArray, pd.arrays.BooleanArray)):
            cells = np.asarray(values.astype(object))
            mask = pd.isna(values)
            if mask.any():
                cells = cells.copy()
                cells[np.asarray(mask)] = ""
        elif isinstance(dtype, np.dtype) and dtype.kind in "iub":
            cells = column.to_numpy()
        elif isinstance(dtype, np.dtype) and dtype.kind == "O":
            cells = column.to_numpy(dtype=object, copy=True)
            mask = pd.isna(cells)
            if mask.any():
                cells[mask] = ""
        else:
            return None
        out.append(cells.tolist())
    return out


def read_results(paths: Iterable[Path]) -> pd.DataFrame:
    """Read result CSVs back (for the chained task and the explore view)."""
    frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def fallback_results(requests: pd.DataFrame, found: dict[str, RowResult], batches: Iterable) -> dict[str, RowResult]:
    """Requests that no file mentions get their status from their batch's fate (a failed
    batch has no files at all; a batch cancelled before submission never ran)."""
    fallback: dict[str, RowResult] = {}
    by_key = {b.key: b for b in batches}
    for cid, key in zip(requests["custom_id"].tolist(), requests["batch_key"].tolist()):
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
