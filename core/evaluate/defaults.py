"""Defaults of the evaluation, in a module that imports nothing heavy (the command line reads
them to build its parser without loading scikit-learn and scipy)."""

from __future__ import annotations

from typing import Literal

MatchOn = Literal["text", "text+report"]
MATCH_ON: tuple[MatchOn, ...] = ("text", "text+report")
CONFIDENCE_LEVEL = 0.95
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 20261201
DEFAULT_MIN_GROUP = 10
