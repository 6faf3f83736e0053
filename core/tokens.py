"""Offline token counts (OpenAI's official encodings, shipped inside ``bpe-openai``)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, Sequence

# Exact counts up to this many texts; above it, a random sample gives tokens per character.
EXACT_LIMIT = 5_000
# Chat formatting adds a few tokens per message and per reply (OpenAI cookbook figures).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3
# bpe-openai refuses a single call on 1,000,000+ characters (ValueError) or one that yields more
# than its chunk limit of tokens (TokenLimitError, 200,000 for o200k_base). Longer text is
# counted in pieces of at most this many characters: a character is at most 4 UTF-8 bytes and a
# token covers at least one byte, so a piece never exceeds 128,000 tokens.
PIECE_CHARS = 32_000


class Encoder(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


class _CharEstimate:
    """Used only if the encoding cannot load: about four characters per token."""

    def encode_ordinary(self, text: str) -> list[int]:
        return [0] * max(1, len(text) // 4)


@lru_cache(maxsize=4)
def encoder_for(model: str) -> Encoder:
    encoding = "cl100k_base" if model.startswith(("gpt-4-", "gpt-3.5")) else "o200k_base"
    try:
        import bpe_openai

        return bpe_openai.get_encoding(encoding)
    except Exception:  # noqa: BLE001 - a missing tokenizer must not stop an estimate
        return _CharEstimate()


def count_tokens(text: str, *, model: str) -> int:
    """Tokens of ``text`` in ``model``'s encoding. Never raises: very long text is counted in
    pieces, and a piece the tokenizer refuses is estimated (see :func:`token_length`)."""
    return token_length(encoder_for(model), text)


def token_length(encoder: Encoder, text: str) -> int:
    """Tokens of ``text`` with ``encoder``, for text of any length.

    Text longer than :data:`PIECE_CHARS` is cut before a space (where the tokenizer's own
    pre-split cuts anyway, so the sum matches the whole count up to a token per cut) and each
    piece is counted on its own. A piece the tokenizer still refuses is estimated at four
    characters per token: a count is an estimate for planning, and must never stop a submit.
    """
    if len(text) <= PIECE_CHARS:
        return _piece_length(encoder, text)
    total = 0
    start = 0
    while start < len(text):
        end = start + PIECE_CHARS
        if end < len(text):
            cut = text.rfind(" ", start + 1, end)
            end = cut if cut > start else end  # no space in the piece: cut anywhere
        total += _piece_length(encoder, text[start:end])
        start = end
    return total


def _piece_length(encoder: Encoder, text: str) -> int:
    try:
        return len(encoder.encode_ordinary(text))
    except Exception:  # noqa: BLE001 - whatever the tokenizer objects to, an estimate will do
        return max(1, len(text) // 4) if text else 0  # the same rule as _CharEstimate


@lru_cache(maxsize=32)
def schema_tokens(schema_json: str, *, model: str) -> int:
    """Tokens a structured-output schema adds to every request. OpenAI bills the schema as
    input (it is shown to the model in its own notation, of about the size of the JSON)."""
    return count_tokens(schema_json, model=model) if schema_json else 0


def chat_prompt_tokens(messages: Sequence[str], *, schema_json: str = "", model: str) -> int:
    """Input tokens of one chat request: its messages, their formatting and the schema. The
    job estimate and the local backend's reported usage both use this formula, so on the
    embedded default the estimate and the actual count agree."""
    return (sum(count_tokens(m, model=model) for m in messages) + TOKENS_PER_MESSAGE * len(messages)
            + TOKENS_PER_REPLY + schema_tokens(schema_json, model=model))


@dataclass(frozen=True)
class TextTokenCounts:
    each: list[int]  # one count per text
    exact: bool  # False when scaled from a sample's tokens per character

    @property
    def total(self) -> int:
        return sum(self.each)


def count_each(texts: Sequence[str], *, model: str, seed: int = 0) -> TextTokenCounts:
    """Tokens of every text: exact for small inputs; for large ones, each text's length times
    the tokens-per-character of a random sample (tokenising 100,000 paragraphs would take
    seconds for an estimate)."""
    encoder = encoder_for(model)
    if len(texts) <= EXACT_LIMIT:
        return TextTokenCounts([token_length(encoder, t) for t in texts], True)
    sample = random.Random(seed).sample(range(len(texts)), EXACT_LIMIT)
    sample_chars = sum(len(texts[i]) for i in sample) or 1
    ratio = sum(token_length(encoder, texts[i]) for i in sample) / sample_chars
    return TextTokenCounts([max(1, round(len(t) * ratio)) for t in texts], False)
