"""Parse batch output and error files, give every submitted row exactly one status, merge
answers back by ``custom_id`` (never by position) and write the result files."""

from __future__ import annotations

import functools

from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Container, Iterable, Literal, Mapping, get_args, get_origin

import numpy as np
import orjson
import pandas as pd
from annotated_types import MinLen
from pydantic import BaseModel, ValidationError

from core.columns import input_columns
from core.csvout import write_csv, write_csv_parts
from core.safefs import contained, safe_name
from core.exportsafe import neutralise_frame, restore_frame
from core.tasks import TASKS, TaskSpec

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
# ``provider``: which provider answered the row (a retry may run on another provider than its job)
STATUS_COLUMNS = ["status", "status_reason", "custom_id", "row", "model", "batch_id", "answered_by", "provider"]
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
        if isinstance(error.get("error"), dict):  # vLLM's ErrorResponse nests the error object
            return _error_text(error["error"])
        code, message = error.get("code"), error.get("message")
        return ": ".join(str(p) for p in (code, message) if p) or "unknown error"
    return str(error)


_FastCheck = tuple[tuple[str, str, object], ...]  # (field, "str" | "choice", min length | allowed ints)
@functools.cache
def _fast_check(model: type[BaseModel]) -> _FastCheck | None:
    """Plain checks equivalent to ``model`` for the fields it uses, or None when the model has
    anything they do not cover (then every answer goes through pydantic)."""
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
    return tuple(checks) if ok and checks else None


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
_OTHER_SHAPE = (KeyError, IndexError, TypeError)  # what a line of another shape raises on the happy path


def _fast_success(line: dict, checks: _FastCheck) -> tuple[str, str, int, int, tuple] | None:
    """(custom_id, model, prompt tokens, completion tokens, answer values) of a line that
    classify_line would call a success, for the common case of a 200 answer that passes the
    plain checks; None for anything else, which then goes through classify_line."""
    try:
        custom_id = line["custom_id"]
        if line["error"] or type(custom_id) is not str:
            return None
        response = line["response"]
        if response["status_code"] != 200:
            return None
        body = response["body"]
        choice = body["choices"][0]
        message = choice["message"]
        usage = body["usage"]
        prompt_tokens = usage["prompt_tokens"]
        completion_tokens = usage["completion_tokens"]
        content = message["content"]
        if message.get("refusal") or choice.get("finish_reason") in _DIVERTED:
            return None
        model = body.get("model") or ""
    except _OTHER_SHAPE:
        return None
    if type(prompt_tokens) is not int or type(completion_tokens) is not int or type(model) is not str:
        return None
    answer = _checked_answer(checks, content)
    if answer is None:
        return None
    return custom_id, model, prompt_tokens, completion_tokens, tuple(answer.values())


def classify_line(line: dict, *, task: TaskSpec, batch_id: str | None) -> RowResult:
    """Turn one output- or error-file line into a RowResult. A line of a shape the Batch API
    does not produce makes its row ``failed`` with the reason, never stops the collection."""
    try:
        return _classify(line, task=task, batch_id=batch_id)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        return RowResult(str(line.get("custom_id")), "failed",
                         f"the provider's answer has an unexpected shape ({type(exc).__name__}: {exc})",
                         batch_id=batch_id)


def _classify(line: dict, *, task: TaskSpec, batch_id: str | None) -> RowResult:
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
        if isinstance(body, dict) and body.get("error"):
            detail = _error_text(body["error"])
        elif error:  # vLLM's run-batch puts the reason in the line's own error and no body
            detail = _error_text(error)
        else:
            detail = "no detail"
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


_TEXT_COLUMNS = ("custom_id", "status", "status_reason", "model", "batch_id")
_COUNT_COLUMNS = ("prompt_tokens", "completion_tokens")


class ResultTable:
    """The outcomes of a job's requests, one per output- or error-file line, kept column by
    column (a RowResult object per line costs a microsecond more to build and to merge, which
    is a tenth of a second at 100,000 lines)."""

    def __init__(self, task: TaskSpec) -> None:
        self.task = task
        self._fields = tuple(task.answer_model.model_fields)
        self._columns: dict[str, list] = {name: [] for name in _TEXT_COLUMNS + _COUNT_COLUMNS}
        self._answers: list[tuple | None] = []  # answer values in self._fields order

    def __len__(self) -> int:
        return len(self._answers)

    def add(self, result: RowResult) -> int:
        """Record one outcome (a line, or a row's fate when no file mentions it); returns its
        position."""
        values = (result.custom_id, result.status, result.reason, result.model or "", result.batch_id or "",
                  result.prompt_tokens, result.completion_tokens)
        for column, value in zip(self._columns.values(), values):
            column.append(value)
        self._answers.append(None if result.answer is None else tuple(result.answer.get(f) for f in self._fields))
        return len(self._answers) - 1

    def __getitem__(self, position: int) -> RowResult:
        cid, status, reason, model, batch_id, prompt, completion = (c[position] for c in self._columns.values())
        answer = self._answers[position]
        return RowResult(cid, status, reason,  # type: ignore[arg-type]
                         None if answer is None else dict(zip(self._fields, answer)),
                         model or None, batch_id or None, prompt, completion)

    def parse(self, data: bytes, *, batch_id: str | None, file_label: str) -> None:
        """Add every line of an output or error file. A line that is not JSON is a file
        problem, reported with its line number, never skipped."""
        columns = self._columns
        appends = [columns[name].append for name in _TEXT_COLUMNS + _COUNT_COLUMNS]
        add_id, add_status, add_reason, add_model, add_batch, add_prompt, add_completion = appends
        add_answer = self._answers.append
        loads = orjson.loads
        checks = _fast_check(self.task.answer_model)
        batch = batch_id or ""
        for number, raw in enumerate(data.splitlines(), start=1):
            if not raw or raw.isspace():
                continue
            try:
                line = loads(raw)
            except orjson.JSONDecodeError:
                raise MalformedResultFile(f"{file_label}, line {number}: not valid JSON") from None
            if type(line) is not dict or "custom_id" not in line:
                raise MalformedResultFile(f"{file_label}, line {number}: no custom_id")
            success = _fast_success(line, checks) if checks is not None else None
            if success is None:
                self.add(classify_line(line, task=self.task, batch_id=batch_id))
                continue
            custom_id, model, prompt_tokens, completion_tokens, answer = success
            add_id(custom_id)
            add_status("succeeded")
            add_reason("")
            add_model(model)
            add_batch(batch)
            add_prompt(prompt_tokens)
            add_completion(completion_tokens)
            add_answer(answer)

    def best_positions(self) -> dict[str, int]:
        """One outcome per custom_id, by position: a success wins over anything else reported
        for the same id, otherwise the first report stands."""
        ids = self._columns["custom_id"]
        positions = dict(zip(ids, range(len(ids))))
        if len(positions) == len(ids):  # every id reported once: the usual case
            return positions
        positions = {}
        statuses = self._columns["status"]
        for position, cid in enumerate(ids):
            known = positions.get(cid)
            if known is None or (statuses[known] != "succeeded" and statuses[position] == "succeeded"):
                positions[cid] = position
        return positions

    def usage(self, positions: Iterable[int]) -> tuple[int, int]:
        """Prompt and completion tokens of the outcomes at these positions."""
        chosen = np.fromiter(positions, dtype=np.intp)
        prompt = np.asarray(self._columns["prompt_tokens"], dtype=np.int64)
        completion = np.asarray(self._columns["completion_tokens"], dtype=np.int64)
        return int(prompt[chosen].sum()), int(completion[chosen].sum())

    def frame_columns(self, order: np.ndarray, *, missing: RowResult) -> dict[str, object]:
        """Result columns (pandas arrays) for rows whose outcomes sit at ``order``; -1 means
        no outcome, and takes the values of ``missing``."""
        out: dict[str, object] = {}
        stand_in = dict(zip(_TEXT_COLUMNS, ("", missing.status, missing.reason, "", "")))
        for name in _TEXT_COLUMNS[1:]:
            out[name] = pd.array(_with_last(self._columns[name], stand_in[name])[order], dtype="str")
        for name in _COUNT_COLUMNS:
            out[name] = np.asarray(self._columns[name] + [0], dtype=np.int64)[order]
        answers = self._answers
        for k, field_name in enumerate(self._fields):
            column = self.task.columns[field_name]
            if column in self.task.score_columns:
                values = np.fromiter((-1 if a is None else a[k] for a in answers), dtype=np.int64, count=len(answers))
                values = np.append(values, -1)[order]
                out[column] = pd.arrays.IntegerArray(np.maximum(values, 0), values < 0)
            else:
                texts = _with_last(["" if a is None else a[k] for a in answers], "")
                out[column] = pd.array(texts[order], dtype="str")
        return out


def _with_last(values: list, last: object) -> np.ndarray:
    """``values`` plus one more as an object array (the stand-in that position -1 takes)."""
    array = np.empty(len(values) + 1, dtype=object)
    array[:-1] = values
    array[-1] = last
    return array


def merge_results(
    rows: pd.DataFrame,
    table: ResultTable,
    *,
    key: str = "custom_id",
    positions: dict[str, int] | None = None,
    missing_reason: str = "no answer for this row in the batch output or error files",
) -> pd.DataFrame:
    """Attach outcomes to rows by id (``key`` names the column holding the request's
    custom_id; with deduplication several rows share one request). Rows without any outcome
    get status ``missing``."""
    positions = table.best_positions() if positions is None else positions
    order = np.fromiter(map(positions.get, rows[key].tolist(), repeat(-1)), dtype=np.intp, count=len(rows))
    columns = table.frame_columns(order, missing=RowResult("", "missing", missing_reason))
    frame = rows.copy()
    for name in ("status", "status_reason", "model", "batch_id", "prompt_tokens", "completion_tokens",
                 *table.task.columns.values()):
        frame[name] = columns[name]
    return frame


def result_columns(task: TaskSpec) -> list[str]:
    """The product's own columns of a task's result files, in order."""
    return ROW_COLUMNS + list(task.columns.values()) + STATUS_COLUMNS


def written_columns(frame: pd.DataFrame, task: TaskSpec) -> list[str]:
    """The columns a result file gets: the product's own (:func:`result_columns`), then every
    input column the rows carry (``page``, ``paragraph_id`` ...; :mod:`core.columns`)."""
    return result_columns(task) + input_columns(frame.columns)


def status_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Rows per status, every status listed (zeros included) so the counts visibly add up."""
    counts = frame["status"].value_counts()
    return {status: int(counts.get(status, 0)) for status in ROW_STATUSES}


def output_column_names(task: TaskSpec, names: str = "default") -> dict[str, str]:
    """Renames for a task's result files. With ``legacy``, task 2's answer columns carry the
    previous tool's names, which were its response fields (``IntrinsicValueScore`` ...
    ``Explanation``), for downstream scripts that expect them; its task-1 names were ours."""
    if names == "legacy" and task.parent_task is not None:
        return {column: field for field, column in task.columns.items()}
    return {}


def write_results(frame: pd.DataFrame, *, task: TaskSpec, output_dir: Path,
                  column_names: Mapping[str, str] | None = None) -> list[Path]:
    """Write the previous tool's layout: task 1 one CSV per source file, task 2 one CSV.
    ``column_names`` renames columns in the files (:func:`output_column_names`).

    These files are opened by people in spreadsheets, so text cells that could start a formula
    get an apostrophe (:mod:`core.exportsafe`); :func:`read_results` takes it off again."""
    output_dir.mkdir(parents=True, exist_ok=True)
    if "provider" not in frame.columns:  # frames merged without a job (tools, older callers)
        frame = frame.assign(provider="")
    table = neutralise_frame(frame[written_columns(frame, task)])
    if column_names:
        table = table.rename(columns=dict(column_names))
    if task.parent_task is not None:
        path = output_dir / TASK2_FILE
        write_csv(table, path)
        return [path]
    parts: list[tuple[Path, np.ndarray]] = []
    used: set[str] = set()
    file_names = frame["csv_file_name"]
    for source_index, positions in sorted(frame.groupby("source_index").indices.items()):
        # an uploaded file's name is untrusted: one plain component, short enough for any
        # file system (the full name stays in the csv_file_name column)
        name = safe_name(Path(str(file_names.iloc[positions[0]])).stem, suffix=".csv")
        if name in used:  # two uploads with the same name stay apart
            name = safe_name(f"{Path(name).stem}_s{source_index}", suffix=".csv")
        used.add(name)
        parts.append((contained(output_dir, name), positions))
    write_csv_parts(table, parts)
    return [path for path, _ in parts]


def read_results(paths: Iterable[Path]) -> pd.DataFrame:
    """Read result CSVs back (for the chained task and the explore view), every cell as the
    text it was before :func:`write_results` neutralised it for spreadsheets."""
    frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in paths]
    if not frames:
        return pd.DataFrame()
    # one restore over the concatenated frame: a single vectorised pass per column
    frame = restore_frame(pd.concat(frames, ignore_index=True))
    # files written with the previous tool's column names (--column-names legacy) read as ours
    legacy = {old: new for task in TASKS.values() for new, old in output_column_names(task, "legacy").items()
              if old in frame.columns and new not in frame.columns}
    return frame.rename(columns=legacy) if legacy else frame


def fallback_results(requests: pd.DataFrame, reported: Container[str], batches: Iterable) -> list[RowResult]:
    """Outcomes for requests that no file mentions, from their batch's fate (a failed batch
    has no files at all; a batch cancelled before submission never ran). Requests of a batch
    that completed stay unreported: merging marks them ``missing``."""
    fallback: list[RowResult] = []
    by_key = {b.key: b for b in batches}
    for cid, key in zip(requests["custom_id"].tolist(), requests["batch_key"].tolist()):
        if cid in reported:
            continue
        batch = by_key[key]
        if batch.status == "failed":
            reason = "the whole batch failed: " + ("; ".join(batch.errors) or "no reason given")
            fallback.append(RowResult(cid, "failed", reason, batch_id=batch.batch_id))
        elif batch.status == "cancelled" and not batch.batch_id:
            fallback.append(RowResult(cid, "cancelled", "cancelled before it was submitted"))
        elif batch.status in ("expired", "cancelled"):
            fallback.append(RowResult(cid, batch.status, f"batch {batch.status} before this row was answered",
                                      batch_id=batch.batch_id))
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
