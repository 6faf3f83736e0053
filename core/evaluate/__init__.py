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
"""

from core.evaluate.compare import Comparison, compare_frames, run_comparison
from core.evaluate.errors import (
    ComparisonError,
    EvaluationError,
    LabelColumnError,
    LabelFileError,
    NothingToCompare,
)
from core.evaluate.evaluation import (
    Evaluation,
    evaluate,
    latest_evaluation,
    list_evaluations,
    run_evaluation,
    save_evaluation,
)
from core.evaluate.labels import HumanLabels, LabelProblem, parse_label, read_labels
from core.evaluate.manifest import Manifest, build_manifest, manifest_markdown
from core.evaluate.matching import MATCH_ON, MatchOn, normalise_text
from core.evaluate.metrics import (
    DEFAULT_MIN_GROUP,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    BinaryMetrics,
    Interval,
    RaterAgreement,
    binary_metrics,
    rater_agreement,
)

__all__ = [
    "BinaryMetrics", "Comparison", "ComparisonError", "DEFAULT_MIN_GROUP", "DEFAULT_RESAMPLES", "DEFAULT_SEED",
    "Evaluation", "EvaluationError", "HumanLabels", "Interval", "LabelColumnError", "LabelFileError", "LabelProblem",
    "MATCH_ON", "Manifest", "MatchOn", "NothingToCompare", "RaterAgreement", "binary_metrics",
    "build_manifest", "compare_frames", "evaluate", "latest_evaluation", "list_evaluations", "manifest_markdown",
    "normalise_text", "parse_label", "rater_agreement", "read_labels", "run_comparison", "run_evaluation",
    "save_evaluation",
]
