"""Rows of the previous tool's batches, rebuilt so that answers merge by custom_id.

The previous tool (``sodascience/BiodiversityASSET``'s scripts) read each CSV with
``pandas.read_csv`` defaults, dropped rows without ``paragraph_text`` (and, for task 2, rows
whose ``score`` was not 1) without resetting the index, and sent each row as
``<job_name>_<index>``. Two layouts exist:

- *chunked* (its last version): one batch per chunk of at most 500 rows of one CSV, job name
  ``<YYYYmmdd_HHMMSS>_<csv stem>_chunk<N>``, index = the row's index in that CSV;
- *combined* (earlier versions): one batch for all CSVs, job name ``<YYYYmmdd_HHMMSS>``,
  index = the position in the CSVs concatenated (``ignore_index=True``) after filtering.

Each request line holds ``template.format(text=paragraph)`` with line breaks turned into
spaces. Rows are rebuilt from the request file of the batch where one is known (the custom_ids
and paragraphs as sent; the original text and ``pdf_file_name`` from the input CSV for every
row whose text matches it), else from the input CSV, cut the way the previous tool cut it and
checked against the recorded count and the custom_ids the answers carry. Nothing is ever
matched by position alone.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import orjson
import pandas as pd

from core.inputs import excerpt, input_limits
from core.interop.errors import LegacyLayoutError, RowsUnresolved
from core.planning import ROW_COLUMNS

CHUNK_ROWS = 500  # the previous tool's rows per batch
#: The previous tool's shipped user template (prompts/user_prompt_template.txt, stripped).
DEFAULT_USER_TEMPLATE = "##Paragraph##\n{text}"
PLACEHOLDER = "{text}"
TASK2 = "assetization_features_scoring"
_STAMP = r"\d{8}_\d{6}"
_CHUNKED_PREFIX = re.compile(rf"^(?P<stamp>{_STAMP})_(?P<stem>.+)_chunk(?P<chunk>\d+)$")
_COMBINED_PREFIX = re.compile(rf"^(?P<stamp>{_STAMP})$")
ROW_FILE_COLUMNS = [*ROW_COLUMNS, "request_id", "batch_key"]
BATCH_KEY = "b000"  # one previous-tool batch is one batch of the imported job


def clean_text(value: object) -> str:
    """The previous tool's ``_clean_text``: what it put in the prompt for a cell."""
    return str(value).replace("\n", " ").replace("\r", " ").strip()


def split_custom_id(custom_id: str) -> tuple[str, int] | None:
    """(job name, row index) of a previous-tool custom_id ``<job_name>_<index>``, or None."""
    prefix, sep, tail = custom_id.rpartition("_")
    if not sep or not prefix or not tail.isdigit() or len(tail) > 12:
        return None
    return prefix, int(tail)


def prefix_shape(prefix: str) -> tuple[str, str | None, int | None] | None:
    """("chunked", csv stem, chunk number) or ("combined", None, None) for a job name of the
    previous tool, None for anything else."""
    if (match := _CHUNKED_PREFIX.match(prefix)) is not None:
        return "chunked", match["stem"], int(match["chunk"])
    if _COMBINED_PREFIX.match(prefix):
        return "combined", None, None
    return None


# ----- the previous tool's request files --------------------------------------------------
@dataclass
class RequestLines:
    """One request JSONL of the previous tool: custom_ids, indexes and user messages in file
    order, with the first line's system prompt, model and ``max_tokens``."""

    path: Path
    data: bytes
    ids: list[str]
    indexes: list[int]
    prefix: str
    user_texts: list[str]
    system: str | None
    model: str | None
    max_tokens: int | None

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def parse_request_file(path: Path, data: bytes) -> RequestLines:
    """Read one request file; raises LegacyLayoutError naming the line that does not fit the
    previous tool's format (one job name for every custom_id, unique ids, a user message)."""
    ids: list[str] = []
    indexes: list[int] = []
    texts: list[str] = []
    prefixes: set[str] = set()
    system = model = None
    max_tokens = None
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
            custom_id = line["custom_id"]
            messages = line["body"]["messages"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            raise LegacyLayoutError(f"{path.name}, line {number}: not a batch request line.") from None
        parts = split_custom_id(custom_id) if isinstance(custom_id, str) else None
        if parts is None:
            raise LegacyLayoutError(f"{path.name}, line {number}: custom_id {excerpt(custom_id, 80)!r} is not "
                                    "<job name>_<row index>.")
        user = next((m.get("content") for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"),
                    None) if isinstance(messages, list) else None
        if not isinstance(user, str):
            raise LegacyLayoutError(f"{path.name}, line {number}: no user message.")
        if not ids:
            body = line["body"]
            first_system = next((m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "system"),
                                None)
            system = first_system if isinstance(first_system, str) else None
            model = body.get("model") if isinstance(body.get("model"), str) else None
            tokens = body.get("max_tokens", body.get("max_completion_tokens"))
            max_tokens = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0 else None
        prefixes.add(parts[0])
        ids.append(custom_id)
        indexes.append(parts[1])
        texts.append(user)
    if not ids:
        raise LegacyLayoutError(f"{path.name}: holds no request.")
    if len(prefixes) != 1:
        raise LegacyLayoutError(f"{path.name}: its custom_ids carry {len(prefixes)} different job names.")
    if len(set(ids)) != len(ids):
        raise LegacyLayoutError(f"{path.name}: a custom_id appears twice.")
    return RequestLines(path, data, ids, indexes, prefixes.pop(), texts, system, model, max_tokens)


def paragraph_from_user(text: str, template: str | None) -> str | None:
    """The paragraph inside a user message rendered by ``template.format(text=...)``, or None
    when the message does not have the template's shape."""
    if template is None or PLACEHOLDER not in template:
        return None
    before, after = (part.replace("{{", "{").replace("}}", "}") for part in template.split(PLACEHOLDER, 1))
    if PLACEHOLDER in after or len(text) < len(before) + len(after):
        return None
    if not text.startswith(before) or not text.endswith(after):
        return None
    return text[len(before):len(text) - len(after)] if after else text[len(before):]


# ----- the previous tool's input CSVs -------------------------------------------------------
@dataclass
class PreviousInput:
    """The rows the previous tool sent from its input CSVs, with the index labels it used:
    ``paragraph_text`` verbatim, ``sent`` as it went into the prompt, ``pdf_file_name``,
    ``csv_file_name``, ``source_index`` and ``row`` (the index within its own CSV, + 2)."""

    frame: pd.DataFrame
    files: list[dict[str, object]] = field(default_factory=list)  # name, path, sha256, rows_read, rows_kept


def read_previous_csv(path: Path, *, task: str) -> tuple[pd.DataFrame, dict[str, object]]:
    """One CSV read as the previous tool read it (``pandas.read_csv`` defaults, so the same
    rows are skipped and the same index labels given), filtered as it filtered (no
    ``paragraph_text``; for task 2 a ``score`` other than 1)."""
    label = excerpt(path.name)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise LegacyLayoutError(f"{label}: cannot be read ({exc.strerror or exc}).") from None
    limit = input_limits().max_bytes
    if not stat.S_ISREG(info.st_mode):
        raise LegacyLayoutError(f"{label}: not a regular file.")
    if info.st_size > limit:
        raise LegacyLayoutError(f"{label}: {info.st_size:,} bytes, over the input limit of {limit:,}.")
    data = path.read_bytes()
    try:
        as_read = pd.read_csv(io.BytesIO(data))  # what the previous tool saw: its index, its NaNs
        verbatim = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise LegacyLayoutError(f"{label}: cannot be read as the previous tool read it ({excerpt(exc, 120)}).") from None
    if "paragraph_text" not in as_read.columns or len(as_read) != len(verbatim):
        raise LegacyLayoutError(f"{label}: has no paragraph_text column.")
    keep = as_read["paragraph_text"].notna()
    if task == TASK2:
        if "score" not in as_read.columns:
            raise LegacyLayoutError(f"{label}: has no score column, so the previous tool sent none of its rows.")
        keep &= as_read["score"] == 1
    kept = keep.to_numpy()
    pdf = verbatim["pdf_file_name"] if "pdf_file_name" in verbatim.columns else pd.Series("", index=verbatim.index)
    frame = pd.DataFrame({
        "paragraph_text": verbatim["paragraph_text"].to_numpy()[kept],
        "sent": as_read["paragraph_text"][keep].map(clean_text).to_numpy(),
        "pdf_file_name": pdf.to_numpy()[kept],
        # the row in a spreadsheet: the header is row 1 (exact unless the file has blank lines,
        # which pandas skips without counting)
        "row": (as_read.index.to_numpy()[kept] + 2).astype("int64"),
    }, index=as_read.index[kept])
    record = {"name": path.name, "path": str(path), "sha256": hashlib.sha256(data).hexdigest(),
              "rows_read": len(as_read), "rows_kept": int(keep.sum())}
    return frame, record


def previous_input(paths: Sequence[tuple[str, Path]], *, task: str, combined: bool) -> PreviousInput:
    """The rows the previous tool sent from these CSVs (name as recorded, path found). One CSV
    keeps its own index labels (chunked layout); several are concatenated with a fresh
    index, as its earlier versions did (combined layout)."""
    frames = []
    files = []
    for source_index, (name, path) in enumerate(paths):
        frame, record = read_previous_csv(path, task=task)
        frame.insert(0, "source_index", source_index)
        frame.insert(0, "csv_file_name", name)
        frames.append(frame)
        files.append(record)
    if not frames:
        raise LegacyLayoutError("No input file to read.")
    whole = pd.concat(frames, ignore_index=True) if combined else frames[0]
    return PreviousInput(whole, files)


# ----- rows ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rows:
    """Rebuilt rows (the job's row-file columns) and how they were made."""

    frame: pd.DataFrame
    source: str  # for the report
    notes: tuple[str, ...] = ()
    request_file: Path | None = None  # the request file they come from, if any


def rows_from_request_file(lines: RequestLines, *, csv_names: Sequence[str], template: str | None,
                           table: PreviousInput | None) -> Rows:
    """Rows for every request of a request file. A row takes its paragraph and
    ``pdf_file_name`` from the input CSV when the CSV's row under the same index holds the
    paragraph that was sent; otherwise the paragraph as sent (line breaks were spaces)."""
    sent = [paragraph_from_user(text, template) for text in lines.user_texts]
    parsed_all = all(s is not None for s in sent)
    frame = table.frame if table is not None else None
    texts, pdfs, csvs, sources, row_numbers = [], [], [], [], []
    matched = 0
    for position, index in enumerate(lines.indexes):
        user = lines.user_texts[position]
        paragraph = sent[position]
        row = frame.loc[index] if frame is not None and index in frame.index else None
        # the CSV's row counts only if it holds what was sent (a CSV edited since would
        # otherwise attach another paragraph to this answer)
        fits = row is not None and (row["sent"] == paragraph if paragraph is not None
                                    else bool(row["sent"]) and row["sent"] in user)
        if fits:
            matched += 1
            texts.append(row["paragraph_text"])
            pdfs.append(row["pdf_file_name"])
            csvs.append(row["csv_file_name"])
            sources.append(int(row["source_index"]))
            row_numbers.append(int(row["row"]))
        else:
            texts.append(paragraph if paragraph is not None else user)
            pdfs.append("")
            csvs.append(csv_names[0] if len(csv_names) == 1 else "")
            sources.append(0)
            row_numbers.append(index + 2)
    rows = pd.DataFrame({
        "custom_id": lines.ids, "source_index": sources, "csv_file_name": csvs, "row": row_numbers,
        "pdf_file_name": pdfs, "paragraph_text": texts,
    })
    rows["request_id"] = rows["custom_id"]
    rows["batch_key"] = BATCH_KEY
    notes = []
    if table is None:
        notes.append("pdf_file_name unknown (input file not found); paragraphs as sent (line breaks became spaces)")
    elif matched < len(lines.ids):
        notes.append(f"{len(lines.ids) - matched:,} of {len(lines.ids):,} paragraphs differ from the input file today "
                     "(changed since?): those keep the text as sent and no pdf_file_name")
    if not parsed_all:
        notes.append("the user template is not known for every line: some paragraphs include the prompt around them")
    origin = f"request file {lines.path.name}"
    if table is not None and matched:
        origin += f" (text and pdf_file_name of {matched:,} rows from the input file)"
    return Rows(rows[ROW_FILE_COLUMNS], origin, tuple(notes), lines.path)


def rows_from_input(table: PreviousInput, *, prefix: str, total: int | None) -> Rows:
    """Rows of the batch whose job name is ``prefix``, cut from the input CSV(s) the way the
    previous tool cut them: chunk N of one CSV (chunked layout), or all rows (combined)."""
    shape = prefix_shape(prefix)
    if shape is None:
        raise RowsUnresolved(f"the answers' job name {excerpt(prefix, 80)!r} is not one the previous tool made")
    layout, _stem, chunk = shape
    frame = table.frame
    if layout == "chunked":
        assert chunk is not None
        frame = frame.iloc[(chunk - 1) * CHUNK_ROWS: chunk * CHUNK_ROWS]
    if total is not None and len(frame) != total:
        raise RowsUnresolved(f"the input file gives {len(frame):,} rows for this batch where the previous tool "
                             f"recorded {total:,}")
    rows = pd.DataFrame({
        "custom_id": [f"{prefix}_{index}" for index in frame.index],
        "source_index": frame["source_index"].to_numpy(),
        "csv_file_name": frame["csv_file_name"].to_numpy(),
        "row": frame["row"].to_numpy(),
        "pdf_file_name": frame["pdf_file_name"].to_numpy(),
        "paragraph_text": frame["paragraph_text"].to_numpy(),
    })
    rows["request_id"] = rows["custom_id"]
    rows["batch_key"] = BATCH_KEY
    names = ", ".join(excerpt(f["name"], 60) for f in table.files)
    return Rows(rows[ROW_FILE_COLUMNS], f"input file {names} (cut as the previous tool cut it, job name {prefix})",
                ("no request file: the rows were rebuilt from the input file",))


def answers_prefix(reported: set[str]) -> str | None:
    """The one job name all reported custom_ids share, or None."""
    prefixes = {parts[0] for cid in reported if (parts := split_custom_id(cid)) is not None}
    return prefixes.pop() if len(prefixes) == 1 and all(split_custom_id(c) for c in reported) else None
