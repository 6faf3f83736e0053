"""Planning a job before anything is paid for: rows, deduplication, batch split, estimate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from core.columns import input_columns
from core.errors import CoreError, TaskError
from core.inputs import InputTable
from core.models import SourceRecord
from core.pricing import PriceTable, enqueued_limit
from core.prompts import PromptSet
from core.requests import (
    Estimate,
    estimate_cost,
    iter_request_lines,
    make_custom_id,
    plan_chunks,
    request_tokens,
)
from core.settings import ProviderName
from core.tasks import TaskSpec

ROW_COLUMNS = ["custom_id", "source_index", "csv_file_name", "row", "pdf_file_name", "paragraph_text"]


def row_columns(frame: pd.DataFrame) -> list[str]:
    """A row frame's columns as a job keeps them: :data:`ROW_COLUMNS`, then the input files'
    other columns (``page``, ``paragraph_id`` ...; see :mod:`core.columns`)."""
    return ROW_COLUMNS + input_columns(frame.columns)


@dataclass
class Preparation:
    """A job ready to submit. Nothing is written and nothing is paid for until
    ``JobService.submit``."""

    task: TaskSpec
    provider: ProviderName
    model: str
    max_tokens: int
    prompts: PromptSet
    rows: pd.DataFrame  # ROW_COLUMNS, input columns, request_id (the custom_id of the request answering the row)
    sources: list[SourceRecord]
    chunks: list[tuple[int, int]]  # ranges over ``requests``
    chunk_tokens: list[int]  # estimated input tokens per chunk
    estimate: Estimate
    dedupe: bool = True
    enqueued_token_limit: int | None = None
    parent_job_id: str | None = None
    retry_of: str | None = None
    warnings: list[str] = field(default_factory=list)
    # the embedding labeler's example set (core.local.labeler.examples.ExampleSet), kept with the job
    examples: Any = None
    name: str | None = None  # the job's name and note, set by the caller before submitting
    note: str | None = None

    @property
    def requests(self) -> pd.DataFrame:
        """The rows that are sent: one per distinct paragraph when deduplicating."""
        return self.rows[self.rows["custom_id"] == self.rows["request_id"]]

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def n_requests(self) -> int:
        return self.estimate.n_requests

    @property
    def duplicates_saved(self) -> int:
        return self.n_rows - self.n_requests

    def summary(self) -> str:
        text = self.estimate.summary()
        if self.duplicates_saved:
            text += (
                f" Deduplication: {self.n_rows:,} rows need only {self.n_requests:,} requests "
                f"({self.duplicates_saved:,} repeated paragraphs answered once)."
            )
        if self.enqueued_token_limit and len(self.chunks) > 1:
            text += (
                f" Enqueued-token limit {self.enqueued_token_limit:,}: batches are sent in turn as "
                "earlier ones finish."
            )
        return text


def rows_from_tables(tables: Sequence[InputTable]) -> tuple[pd.DataFrame, list[SourceRecord]]:
    """One frame of all input rows with stable custom_ids, and a record per source file. Every
    input column is kept after :data:`ROW_COLUMNS` (empty for the rows of a file without it)."""
    frames = []
    sources = []
    for index, table in enumerate(tables):
        frame = table.frame[["row", "pdf_file_name", "paragraph_text", *table.input_columns]].copy()
        frame.insert(0, "csv_file_name", table.file_name)
        frame.insert(0, "source_index", index)
        frame.insert(0, "custom_id", [make_custom_id(index, int(r)) for r in frame["row"]])
        frames.append(frame)
        report = table.report
        sources.append(
            SourceRecord(
                index=index,
                name=table.file_name,
                path=report.path,
                sha256=report.sha256,
                rows_read=report.rows_read,
                rows_kept=report.rows_kept,
                dropped=[{"row": d.row, "reason": d.reason} for d in report.dropped],
                warnings=list(report.warnings),
                notes=list(report.notes),
                encoding=report.encoding,
                separator=report.separator,
                sheet=report.sheet,
                text_column=report.text_column,
            )
        )
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ROW_COLUMNS)
    extra = input_columns(rows.columns)
    if len(frames) > 1 and extra:  # a column of one file only is empty for the others' rows
        rows[extra] = rows[extra].fillna("")
    return rows, sources


def assign_requests(rows: pd.DataFrame, *, dedupe: bool) -> pd.DataFrame:
    """Add ``request_id``: with deduplication, every row whose paragraph equals an earlier one
    (after collapsing whitespace) is answered by that earlier row's request."""
    rows = rows[row_columns(rows)].reset_index(drop=True).copy()
    if not dedupe:
        rows["request_id"] = rows["custom_id"]
        return rows
    normalised = rows["paragraph_text"].str.split().str.join(" ")
    first = normalised.groupby(normalised, sort=False).transform(lambda s: s.index[0])
    rows["request_id"] = rows["custom_id"].to_numpy()[first.to_numpy()]
    return rows


def split_by_tokens(chunks: list[tuple[int, int]], tokens: Sequence[int], limit: int | None) -> list[tuple[int, int]]:
    """Cut chunks further so that no batch's estimated input tokens exceed ``limit``."""
    if not limit:
        return chunks
    result: list[tuple[int, int]] = []
    for start, end in chunks:
        begin, used = start, 0
        for index in range(start, end):
            if tokens[index] > limit:
                raise CoreError(
                    f"One request alone is estimated at {tokens[index]:,} tokens, over the enqueued-token "
                    f"limit of {limit:,}: raise the limit or shorten the prompt."
                )
            if index > begin and used + tokens[index] > limit:
                result.append((begin, index))
                begin, used = index, 0
            used += tokens[index]
        result.append((begin, end))
    return result


def plan(
    *,
    task: TaskSpec,
    provider: ProviderName,
    model: str,
    max_tokens: int,
    prompts: PromptSet,
    rows: pd.DataFrame,
    sources: list[SourceRecord],
    prices: PriceTable,
    dedupe: bool = True,
    enqueued_token_limit: int | None = None,
    max_requests_per_file: int | None = None,
    max_bytes_per_file: int | None = None,
    parent_job_id: str | None = None,
    retry_of: str | None = None,
    warnings: Sequence[str] = (),
) -> Preparation:
    """Deduplicate, split into batch files (count, bytes and enqueued tokens) and estimate.
    Batch files stay within the provider's limits (:data:`core.providers.FILE_LIMITS`), or
    within smaller ones given here."""
    from core.providers import file_limits

    limits = file_limits(provider)
    max_requests_per_file = min(max_requests_per_file or limits.max_requests, limits.max_requests)
    max_bytes_per_file = min(max_bytes_per_file or limits.max_bytes, limits.max_bytes)
    if max_tokens < 1:
        raise CoreError("max tokens must be a positive number.")
    if rows.empty:
        raise TaskError("There is nothing to submit: every row was dropped (see the input report).")
    rows = assign_requests(rows, dedupe=dedupe)
    requests = rows[rows["custom_id"] == rows["request_id"]]
    custom_ids = requests["custom_id"].tolist()
    texts = requests["paragraph_text"].tolist()
    sizes = (
        len(line)
        for line in iter_request_lines(custom_ids, texts, task=task, prompts=prompts, model=model, max_tokens=max_tokens)
    )
    chunks = plan_chunks(sizes, custom_ids=custom_ids, max_requests=max_requests_per_file, max_bytes=max_bytes_per_file)
    tokens = request_tokens(texts, task=task, prompts=prompts, model=model)
    limit = enqueued_token_limit if enqueued_token_limit is not None else enqueued_limit(prices, model)
    chunks = split_by_tokens(chunks, tokens.each, limit)
    estimate = estimate_cost(tokens, model=model, max_tokens=max_tokens, n_batches=len(chunks), prices=prices)
    return Preparation(
        task=task,
        provider=provider,
        model=model,
        max_tokens=max_tokens,
        prompts=prompts,
        rows=rows,
        sources=sources,
        chunks=chunks,
        chunk_tokens=[sum(tokens.each[s:e]) for s, e in chunks],
        estimate=estimate,
        dedupe=dedupe,
        enqueued_token_limit=limit,
        parent_job_id=parent_job_id,
        retry_of=retry_of,
        warnings=list(warnings),
    )
