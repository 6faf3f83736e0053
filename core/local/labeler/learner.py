"""The learner on top of the embeddings: one scikit-learn classifier per answer column, its
decision in plain words, and k-fold cross-validated agreement through the evaluation's metrics.

Logistic regression is the default. In the held-out check (``tests/bench/heldout_labeler.py``;
figures in the README, "The embedding labeler") it labelled the sample paragraphs like nearest
centroid in all but a paragraph or two. With passage embeddings (the prefix chosen) it was never
worse and better in one figure (task 2 ownership/control from the built-in examples: kappa 0.57
against 0.37); with query embeddings the two traded one figure each. Nearest centroid stays
available (``learner="centroid"``) so the check can be re-run. Both are deterministic: the same
examples in the same (canonical) order give the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np

from core.evaluate.defaults import DEFAULT_RESAMPLES, DEFAULT_SEED

LearnerName = Literal["centroid", "logistic"]
LEARNERS: tuple[LearnerName, ...] = ("centroid", "logistic")
LEARNER: LearnerName = "logistic"
DEFAULT_FOLDS = 5
NEAREST = 2  # examples named in an explanation

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Decision:
    """One column's label for one paragraph and why.

    For nearest centroid ``evidence`` is (distance to the centroid of the examples labelled 0,
    the same for 1) and ``margin`` their difference; for logistic regression ``evidence`` is
    (P(0), P(1)) and ``margin`` the distance of P(1) from one half."""

    label: int
    margin: float
    evidence: tuple[float, float]


class ColumnModel:
    """A learner fitted on the examples of one answer column."""

    def __init__(self, vectors: np.ndarray, labels: Sequence[int], *, learner: LearnerName = LEARNER) -> None:
        if learner not in LEARNERS:
            raise ValueError(f"unknown learner {learner!r}")
        y = np.asarray(labels, dtype=np.int64)
        if len(set(y.tolist())) < 2:
            raise ValueError("a column needs examples of both labels")
        self.learner = learner
        self.n = (int((y == 0).sum()), int((y == 1).sum()))
        x = np.asarray(vectors, dtype=np.float64)
        if learner == "centroid":
            from sklearn.neighbors import NearestCentroid

            self._model: Any = NearestCentroid().fit(x, y)
        else:
            from sklearn.linear_model import LogisticRegression

            # balanced: a researcher's examples are rarely half 1s; lbfgs is deterministic
            self._model = LogisticRegression(class_weight="balanced", max_iter=2000).fit(x, y)

    def decide(self, vectors: np.ndarray) -> list[Decision]:
        """The decision for each row of ``vectors``."""
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        labels = self._model.predict(x).astype(int)
        if self.learner == "centroid":
            centroids = self._model.centroids_  # rows in the order of classes_ (0, 1)
            distances = np.linalg.norm(x[:, None, :] - centroids[None, :, :], axis=2)
            return [Decision(int(label), float(abs(d[0] - d[1])), (float(d[0]), float(d[1])))
                    for label, d in zip(labels, distances)]
        probabilities = self._model.predict_proba(x)
        return [Decision(int(label), float(abs(p[1] - 0.5)), (float(p[0]), float(p[1])))
                for label, p in zip(labels, probabilities)]

    def predict(self, vectors: np.ndarray) -> np.ndarray:
        """Labels only."""
        return self._model.predict(np.atleast_2d(np.asarray(vectors, dtype=np.float64))).astype(int)


def nearest(vector: np.ndarray, examples: np.ndarray, k: int = NEAREST) -> list[tuple[int, float]]:
    """(example index, cosine similarity) of the ``k`` examples most similar to ``vector``
    (ties by index, so the order is stable)."""
    if not len(examples):
        return []
    similarity = np.asarray(examples, dtype=np.float64) @ np.asarray(vector, dtype=np.float64)
    order = np.lexsort((np.arange(len(similarity)), -np.round(similarity, 12)))[:k]
    return [(int(i), float(similarity[i])) for i in order]


def describe(decision: Decision, learner: LearnerName, *, short: bool = False) -> str:
    """A decision in plain words: what was measured, never a claim of reasoning. ``short`` for
    one of several columns."""
    if learner == "centroid":
        d0, d1 = decision.evidence
        closer, other = (1, 0) if decision.label == 1 else (0, 1)
        near, far = (d1, d0) if decision.label == 1 else (d0, d1)
        if short:
            return f"closer to the examples labelled {closer} by {decision.margin:.3f}"
        return (f"the paragraph is closer to the examples labelled {closer} than to those labelled {other} by "
                f"{decision.margin:.3f} (distance to their centres {near:.3f} vs {far:.3f})")
    if short:
        return f"probability of 1: {decision.evidence[1]:.3f}, margin {decision.margin:.3f}"
    return (f"logistic regression on the embeddings gives probability {decision.evidence[1]:.3f} for 1, a margin "
            f"of {decision.margin:.3f} from the 0.5 boundary (with a few dozen examples these probabilities stay "
            "near 0.5; the nearest examples show what the paragraph resembles)")


# ----------------------------------------------------------------------------------------------
# Cross-validation: expected agreement before submitting
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnCrossValidation:
    """Out-of-fold predictions of one column against its labels, and their figures."""

    column: str
    folds: int
    labels: tuple[int, ...]
    predicted: tuple[int, ...]
    metrics: Any  # core.evaluate.metrics.BinaryMetrics

    def to_record(self) -> dict[str, Any]:
        """JSON-ready: folds and every figure with its interval."""
        return {"column": self.column, "folds": self.folds, **self.metrics.to_record()}


@dataclass(frozen=True)
class CrossValidation:
    """k-fold cross-validated agreement of the labeler with the labels of an example set:
    what to expect of a job learned from the whole set, on paragraphs like these."""

    task: str
    source: str
    sha256: str
    learner: LearnerName
    seed: int
    columns: dict[str, ColumnCrossValidation]
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why no figure

    def summary_lines(self) -> list[str]:
        """Plain text: one line per column with kappa and F1 and their intervals."""
        lines = [f"Expected agreement ({self._folds_text()}-fold cross-validation of the embedding labeler, "
                 f"{self.learner.replace('centroid', 'nearest centroid').replace('logistic', 'logistic regression')}, "
                 f"on {self.source}; each paragraph labelled by a model that did not learn from it):"]
        for column, result in self.columns.items():
            m = result.metrics
            lines.append(
                f"  {column}: n={m.n}, Cohen's kappa {_fmt(m.cohen_kappa)} {_ci(m.cohen_kappa_ci)}, F1 {_fmt(m.f1)} "
                f"{_ci(m.f1_ci)}, accuracy {_fmt(m.accuracy)} (majority-class baseline "
                f"{_fmt(m.majority_baseline_accuracy)})")
        for column, reason in self.skipped.items():
            lines.append(f"  {column}: no figure ({reason})")
        return lines

    def figures(self) -> "Any":
        """One row per answer column (a pandas DataFrame): n, folds, kappa, F1 and accuracy
        with the intervals, and the majority-class baseline, for a page's table."""
        import pandas as pd

        rows = []
        for column, result in self.columns.items():
            m = result.metrics
            rows.append({"column": column, "n": m.n, "folds": result.folds, "cohen_kappa": m.cohen_kappa,
                         "kappa_ci_low": m.cohen_kappa_ci.low, "kappa_ci_high": m.cohen_kappa_ci.high,
                         "f1": m.f1, "f1_ci_low": m.f1_ci.low, "f1_ci_high": m.f1_ci.high, "accuracy": m.accuracy,
                         "majority_baseline_accuracy": m.majority_baseline_accuracy})
        return pd.DataFrame(rows)

    def _folds_text(self) -> str:
        folds = sorted({r.folds for r in self.columns.values()})
        return "/".join(str(f) for f in folds) or "no"

    def to_record(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"task": self.task, "source": self.source, "examples_sha256": self.sha256, "learner": self.learner,
                "seed": self.seed, "columns": {c: r.to_record() for c, r in self.columns.items()},
                "skipped": dict(self.skipped)}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _ci(interval: Any) -> str:
    low, high = interval.low, interval.high
    return "[n/a]" if low is None or high is None else f"[{low:.2f}, {high:.2f}]"


def out_of_fold(vectors: np.ndarray, labels: Sequence[int], *, folds: int, seed: int,
                learner: LearnerName = LEARNER) -> np.ndarray:
    """Each example's label predicted by a model fitted on the other folds (stratified,
    shuffled with ``seed``)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels, dtype=np.int64)
    predicted = np.empty(len(y), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(y)), y):
        model = ColumnModel(vectors[train], y[train], learner=learner)
        predicted[test] = model.predict(vectors[test])
    return predicted


def cross_validate(example_set: Any, task: str, *, embed: Embed, folds: int = DEFAULT_FOLDS,
                   seed: int = DEFAULT_SEED, learner: LearnerName = LEARNER,
                   n_resamples: int = DEFAULT_RESAMPLES) -> CrossValidation:
    """k-fold cross-validated agreement for every answer column of ``task`` in ``example_set``
    (a :class:`~core.local.labeler.examples.ExampleSet`). ``k`` is ``folds``, or fewer when a
    label has fewer examples; figures (kappa, F1, accuracy, intervals) come from the
    evaluation's :func:`~core.evaluate.metrics.binary_metrics` on the pooled out-of-fold
    predictions. ``embed`` turns texts into unit vectors."""
    from core.evaluate.metrics import binary_metrics
    from core.local.labeler.examples import TASK_COLUMNS

    columns: dict[str, ColumnCrossValidation] = {}
    skipped: dict[str, str] = {}
    texts = example_set.texts(task)
    vectors_of = dict(zip(texts, embed(texts))) if texts else {}
    for column in TASK_COLUMNS[task]:
        column_texts, labels = example_set.column(task, column)
        smallest = min(labels.count(0), labels.count(1)) if labels else 0
        k = min(folds, smallest)
        if k < 2:
            skipped[column] = f"{labels.count(1)} examples labelled 1 and {labels.count(0)} labelled 0; at least " \
                              "2 of each are needed"
            continue
        vectors = np.stack([vectors_of[t] for t in column_texts])
        predicted = out_of_fold(vectors, labels, folds=k, seed=seed, learner=learner)
        metrics = binary_metrics(np.asarray(labels), predicted, seed=seed, n_resamples=n_resamples)
        columns[column] = ColumnCrossValidation(column, k, tuple(labels), tuple(int(p) for p in predicted), metrics)
    return CrossValidation(task=task, source=example_set.source, sha256=example_set.sha256, learner=learner,
                           seed=seed, columns=columns, skipped=skipped)
