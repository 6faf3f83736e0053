"""Shared synthetic data for the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import random
import statistics
import time
from typing import Callable

_WORDS = (
    "biodiversity investor portfolio nature restoration conservation green bond fund loan proceeds "
    "engagement dialogue voting escalation companies deforestation supply chain wetlands forests "
    "ecosystem services natural capital TNFD SBTN framework disclosure risk assessment allocation "
    "million EUR USD financing project structuring due diligence stewardship land water rights "
    "agriculture fisheries oceans mangroves species habitat degradation pollution climate transition "
    "credits valuation returns blended finance equity debt governance monitoring targets pledge policy "
    "we our the a of to in and for with on by as is are was were has have been this that which "
    "Ä ö ü é — “quoted” 2025 2026 42% €"
).split()


def paragraph(rng: random.Random) -> str:
    """A paragraph of 400-900 characters of report-like words (a few non-ASCII ones)."""
    target = rng.randint(400, 900)
    words: list[str] = []
    size = 0
    while size < target:
        w = rng.choice(_WORDS)
        words.append(w)
        size += len(w) + 1
    text = " ".join(words)[:target].rstrip()
    return text[0].upper() + text[1:] + "."


def paragraphs(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [paragraph(rng) for _ in range(n)]


def timed(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    """Median wall time of ``runs`` calls, and the last result."""
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(title)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
