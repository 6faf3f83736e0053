"""Batch request lines: one per paragraph, stable custom_ids, split to the API's file limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import orjson

from core.errors import CoreError
from core.pricing import PriceTable, format_cost
from core.prompts import PLACEHOLDER, PromptSet
from core.safefs import open_private, private_dir
from core.tasks import TaskSpec
from core.tokens import TextTokenCounts, chat_prompt_tokens, count_each

ENDPOINT = "/v1/chat/completions"
MAX_REQUESTS_PER_FILE = 50_000
MAX_BYTES_PER_FILE = 200 * 1024 * 1024

_CID = "\x00custom_id\x00"
_TEXT = "\x00user_content\x00"


def make_custom_id(source_index: int, row: int) -> str:
    """``s<source>-r<row>``: the source file's index in the job and its spreadsheet row number.

    Stable across re-runs and chained tasks, so results always merge back by id, never by
    position.
    """
    return f"s{source_index}-r{row}"


def response_schema_json(task: TaskSpec) -> str:
    """The JSON schema sent as structured output, compact, as counted for tokens."""
    return orjson.dumps(task.response_format()["json_schema"]["schema"]).decode()


def request_template(*, task: TaskSpec, prompts: PromptSet, model: str, max_tokens: int) -> dict:
    """One request with placeholders where the custom_id and the user message go."""
    return {
        "custom_id": _CID,
        "method": "POST",
        "url": ENDPOINT,
        "body": {
            "model": model,
            "messages": [
                {"role": "system", "content": prompts.system},
                {"role": "user", "content": _TEXT},
            ],
            "max_completion_tokens": max_tokens,
            "response_format": task.response_format(),
        },
    }


def iter_request_lines(
    custom_ids: Sequence[str],
    texts: Sequence[str],
    *,
    task: TaskSpec,
    prompts: PromptSet,
    model: str,
    max_tokens: int,
) -> Iterator[bytes]:
    """Serialise each request as one JSON line (without the newline).

    Everything but the id and the paragraph is the same for every line, so it is serialised
    once and the two varying parts are spliced in; the output is byte-identical to dumping
    each full request.
    """
    if len(custom_ids) != len(texts):
        raise ValueError("custom_ids and texts differ in length")
    if max_tokens < 1:
        raise CoreError("max tokens must be at least 1.")
    template = orjson.dumps(request_template(task=task, prompts=prompts, model=model, max_tokens=max_tokens))
    head, rest = template.split(orjson.dumps(_CID), 1)
    middle, tail = rest.split(orjson.dumps(_TEXT), 1)
    before, after = prompts.user_template.split(PLACEHOLDER, 1)
    if PLACEHOLDER in after:  # several placeholders: render properly
        for cid, text in zip(custom_ids, texts):
            yield head + orjson.dumps(cid) + middle + orjson.dumps(prompts.render_user(text)) + tail
        return
    dumps = orjson.dumps
    join = b"".join
    for cid, text in zip(custom_ids, texts):
        yield join((head, dumps(cid), middle, dumps(before + text + after), tail))


def plan_chunks(
    sizes: Iterable[int],
    *,
    custom_ids: Sequence[str],
    max_requests: int = MAX_REQUESTS_PER_FILE,
    max_bytes: int = MAX_BYTES_PER_FILE,
) -> list[tuple[int, int]]:
    """Split request lines (given their sizes in bytes, newline excluded) into ``[start, end)``
    ranges of at most ``max_requests`` lines and ``max_bytes`` bytes each."""
    if max_requests < 1 or max_bytes < 1:
        raise CoreError("Batch file limits must be positive.")
    chunks: list[tuple[int, int]] = []
    start, count, used = 0, 0, 0
    for index, size in enumerate(sizes):
        size += 1
        if size > max_bytes:
            raise CoreError(
                f"Request {custom_ids[index]} alone is {size:,} bytes, over the {max_bytes:,}-byte file limit."
            )
        if count and (count >= max_requests or used + size > max_bytes):
            chunks.append((start, index))
            start, count, used = index, 0, 0
        count += 1
        used += size
    if count:
        chunks.append((start, start + count))
    return chunks


@dataclass(frozen=True)
class RequestFile:
    path: Path
    n_requests: int
    n_bytes: int
    first_custom_id: str
    last_custom_id: str


def write_request_files(
    lines: Iterable[bytes],
    folder: Path,
    *,
    chunks: Sequence[tuple[int, int]],
    custom_ids: Sequence[str],
    stem: str = "requests",
) -> list[RequestFile]:
    """Write one JSONL file per planned chunk."""
    private_dir(folder)
    iterator = iter(lines)
    files: list[RequestFile] = []
    for number, (start, end) in enumerate(chunks):
        path = folder / f"{stem}_{number:03d}.jsonl"
        # Streamed through a large buffer: joining a file's lines into one ~100 MB bytes object
        # first costs several times the serialisation itself (allocation and page faults).
        n_bytes = 0
        try:
            with open_private(path, "wb", buffering=1 << 20) as fh:
                write = fh.write
                for _ in range(end - start):
                    try:
                        line = next(iterator)
                    except StopIteration:
                        raise RuntimeError("fewer request lines than the planned chunks cover") from None
                    write(line)
                    write(b"\n")
                    n_bytes += len(line) + 1
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        files.append(RequestFile(path, end - start, n_bytes, custom_ids[start], custom_ids[end - 1]))
    return files


@dataclass(frozen=True)
class Estimate:
    """What a job will cost before it is submitted."""

    n_requests: int
    n_batches: int
    input_tokens: int
    input_tokens_exact: bool
    output_token_ceiling: int
    model: str
    currency: str
    input_cost: float | None  # None when the model has no price in the table
    output_cost_ceiling: float | None
    prices_checked_on: str

    @property
    def cost_ceiling(self) -> float | None:
        if self.input_cost is None or self.output_cost_ceiling is None:
            return None
        return self.input_cost + self.output_cost_ceiling

    def to_record(self) -> dict:
        return {**self.__dict__, "cost_ceiling": self.cost_ceiling}

    def summary(self) -> str:
        approx = "" if self.input_tokens_exact else "about "
        text = (
            f"{self.n_requests:,} request{'s' * (self.n_requests != 1)} in {self.n_batches} batch file(s); {approx}"
            f"{self.input_tokens:,} input tokens, at most {self.output_token_ceiling:,} output tokens"
        )
        if self.cost_ceiling is None:
            return text + f"; no price known for model '{self.model}'."
        if self.cost_ceiling == 0:
            return text + "; free (no price per token for this model)."
        return (
            f"{text}; cost {format_cost(self.input_cost, self.currency)} input + at most "
            f"{format_cost(self.output_cost_ceiling, self.currency)} output = at most "
            f"{format_cost(self.cost_ceiling, self.currency)} "
            f"(batch prices checked {self.prices_checked_on})."
        )


def request_tokens(texts: Sequence[str], *, task: TaskSpec, prompts: PromptSet, model: str) -> TextTokenCounts:
    """Input tokens of each request (core.tokens.chat_prompt_tokens, with the user message's
    template and paragraph counted apart so that large jobs can be sampled)."""
    fixed = chat_prompt_tokens([prompts.system, prompts.user_template.replace(PLACEHOLDER, "")],
                               schema_json=response_schema_json(task), model=model)
    counts = count_each(texts, model=model)
    return TextTokenCounts([fixed + n for n in counts.each], counts.exact)


def estimate_cost(
    tokens: TextTokenCounts,
    *,
    model: str,
    max_tokens: int,
    n_batches: int,
    prices: PriceTable,
) -> Estimate:
    """Input tokens, output ceiling and cost of a job whose requests have these token counts."""
    n = len(tokens.each)
    input_tokens = tokens.total
    output_ceiling = max_tokens * n
    price = prices.price_for(model)
    return Estimate(
        n_requests=n,
        n_batches=n_batches,
        input_tokens=input_tokens,
        input_tokens_exact=tokens.exact,
        output_token_ceiling=output_ceiling,
        model=model,
        currency=prices.currency,
        input_cost=None if price is None else input_tokens * price.input_per_million / 1e6,
        output_cost_ceiling=None if price is None else output_ceiling * price.output_per_million / 1e6,
        prices_checked_on=prices.checked_on,
    )
