"""Evaluate a job's labels: agreement with human coders, model against model, and the methods
record. Plain Python (never imports Streamlit); the Evaluate page and ``python -m core
evaluate | compare | manifest`` are thin views over it.

- :mod:`~core.evaluate.labels`: read a human labels file (long format, one row per paragraph
  and annotator), find its label columns, parse 0/1 labels, report bad cells by row.
- :mod:`~core.evaluate.matching`: normalise paragraph text and match labels to job rows.
- :mod:`~core.evaluate.metrics`: the figures, from scikit-learn, krippendorff and scipy.
- :mod:`~core.evaluate.evaluation`: one evaluation, saved in the job's folder.
- :mod:`~core.evaluate.compare`: two or more jobs against each other.
- :mod:`~core.evaluate.manifest`: the methods record (JSON and Markdown).

Names are loaded on first use: scikit-learn and scipy take seconds to import, and the command
line should not pay for them on every other command.
"""

from __future__ import annotations

from core.evaluate.defaults import (
    CONFIDENCE_LEVEL,
    DEFAULT_MIN_GROUP,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    MATCH_ON,
    MatchOn,
)
from core.evaluate.errors import (
    ComparisonError,
    EvaluationError,
    LabelColumnError,
    LabelFileError,
    NothingToCompare,
)
from core.lazy import lazy_names

_LAZY = {
    "Comparison": "compare", "compare_frames": "compare", "run_comparison": "compare",
    "Evaluation": "evaluation", "evaluate": "evaluation", "latest_evaluation": "store",
    "list_evaluations": "store", "run_evaluation": "evaluation", "save_evaluation": "store",
    "original_job": "evaluation",
    "HumanLabels": "labels", "LabelProblem": "labels", "parse_label": "labels", "read_labels": "labels",
    "Manifest": "manifest", "build_manifest": "manifest", "manifest_markdown": "manifest",
    "normalise_text": "matching",
    "BinaryMetrics": "metrics", "Interval": "metrics", "RaterAgreement": "metrics", "binary_metrics": "metrics",
    "rater_agreement": "metrics",
}

__getattr__, __dir__ = lazy_names(__name__, {name: f".{module}" for name, module in _LAZY.items()})


__all__ = [
    "CONFIDENCE_LEVEL", "ComparisonError", "DEFAULT_MIN_GROUP", "DEFAULT_RESAMPLES", "DEFAULT_SEED",
    "EvaluationError", "LabelColumnError", "LabelFileError", "MATCH_ON", "MatchOn", "NothingToCompare",
    *_LAZY,
]
