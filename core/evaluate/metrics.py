"""Agreement figures for binary labels, computed by the libraries researchers cite.

Accuracy, precision, recall, F1, Cohen's kappa, Matthews correlation and the confusion matrix
come from scikit-learn, Krippendorff's alpha (nominal) from the ``krippendorff`` package and
the 95% intervals from ``scipy.stats.bootstrap`` (percentile method, seeded). None of these is
written by hand here: this module only feeds the libraries and shapes their answers.

A figure the data leave undefined (kappa when both sides give one class only, precision when
the model never says 1...) is ``None``, never a made-up 0.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Callable, Sequence

import krippendorff
import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_recall_fscore_support,
)

from core.evaluate.defaults import CONFIDENCE_LEVEL, DEFAULT_MIN_GROUP, DEFAULT_RESAMPLES, DEFAULT_SEED

_LABELS = [0, 1]
# The four kinds of (human, model) pair, coded 2*human + model: tn, fp, fn, tp.
_PAIR_TRUE = np.array([0, 0, 1, 1])
_PAIR_PRED = np.array([0, 1, 0, 1])
# Per-unit value counts of each pair kind, as krippendorff's value_counts wants them.
_PAIR_VALUE_COUNTS = np.array([[2, 0], [1, 1], [1, 1], [0, 2]])
# Cells held at once by one bootstrap batch (resamples x items), to bound memory.
_BATCH_CELLS = 4_000_000


def _number(value: object) -> float | None:
    """A figure as a float, or None when the library says it is undefined (NaN)."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def _quiet(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a library function without its warnings about undefined figures: an undefined
    figure is reported as None, and the library never prints on our behalf."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def cohen_kappa(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> float | None:
    """Cohen's kappa of two 0/1 label sequences (scikit-learn), None if undefined."""
    if len(a) == 0:
        return None
    return _number(_quiet(cohen_kappa_score, np.asarray(a), np.asarray(b), labels=_LABELS))


def krippendorff_alpha(reliability: np.ndarray | Sequence[Sequence[float]]) -> float | None:
    """Krippendorff's alpha (nominal, values 0 and 1) of a raters x units matrix with NaN for
    a missing label (``krippendorff`` package), None if undefined."""
    data = np.asarray(reliability, dtype=float)
    if data.ndim != 2 or data.shape[0] < 2 or data.shape[1] == 0:
        return None
    # units labelled by fewer than two raters carry no information on agreement
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    if not pairable.any():
        return None
    try:
        return _number(_quiet(krippendorff.alpha, reliability_data=data[:, pairable],
                              level_of_measurement="nominal", value_domain=_LABELS))
    except ValueError:  # raised when fewer than two values can occur at all
        return None


@dataclass(frozen=True)
class Interval:
    """A bootstrap confidence interval; both ends None when the figure is undefined in the
    data or in some resamples."""

    low: float | None
    high: float | None

    def to_record(self) -> list[float | None]:
        """``[low, high]``."""
        return [self.low, self.high]


NO_INTERVAL = Interval(None, None)


@dataclass(frozen=True)
class BinaryMetrics:
    """Model against human labels for one answer column (positive class 1)."""

    n: int
    human_prevalence: float | None
    model_prevalence: float | None
    majority_baseline_accuracy: float | None
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    cohen_kappa: float | None
    mcc: float | None
    krippendorff_alpha: float | None
    confusion: tuple[tuple[int, int], tuple[int, int]]  # [[tn, fp], [fn, tp]]
    cohen_kappa_ci: Interval = NO_INTERVAL
    krippendorff_alpha_ci: Interval = NO_INTERVAL
    f1_ci: Interval = NO_INTERVAL

    def to_record(self) -> dict[str, Any]:
        """The figures as JSON-ready values, in the order the issue lists them."""
        return {
            "n": self.n,
            "human_prevalence": self.human_prevalence,
            "model_prevalence": self.model_prevalence,
            "majority_baseline_accuracy": self.majority_baseline_accuracy,
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "f1_ci": self.f1_ci.to_record(),
            "cohen_kappa": self.cohen_kappa,
            "cohen_kappa_ci": self.cohen_kappa_ci.to_record(),
            "krippendorff_alpha": self.krippendorff_alpha,
            "krippendorff_alpha_ci": self.krippendorff_alpha_ci.to_record(),
            "mcc": self.mcc,
            "confusion": [list(self.confusion[0]), list(self.confusion[1])],
        }


def binary_metrics(human: Sequence[int] | np.ndarray, model: Sequence[int] | np.ndarray, *,
                   intervals: bool = True, seed: int = DEFAULT_SEED, n_resamples: int = DEFAULT_RESAMPLES,
                   confidence_level: float = CONFIDENCE_LEVEL) -> BinaryMetrics:
    """All figures of model labels against human labels (both 0/1, same length).

    ``intervals`` adds seeded percentile-bootstrap intervals for kappa, alpha and F1 (the
    items are resampled in pairs)."""
    h = np.asarray(human, dtype=np.int64)
    m = np.asarray(model, dtype=np.int64)
    if h.shape != m.shape:
        raise ValueError("human and model labels differ in length")
    n = int(h.size)
    if n == 0:
        return BinaryMetrics(0, None, None, None, None, None, None, None, None, None, None, ((0, 0), (0, 0)))
    (tn, fp), (fn, tp) = confusion_matrix(h, m, labels=_LABELS).tolist()
    # one call for the three (each of scikit-learn's calls costs milliseconds of input checks)
    precision, recall, f1, _support = _quiet(precision_recall_fscore_support, h, m, average="binary",
                                             zero_division=np.nan)
    human_prevalence = _number(np.mean(h))
    majority = 1 if np.mean(h) > 0.5 else 0  # on an even split either class scores one half
    figures = BinaryMetrics(
        n=n,
        human_prevalence=human_prevalence,
        model_prevalence=_number(np.mean(m)),
        majority_baseline_accuracy=_number(accuracy_score(h, np.full(n, majority))),
        accuracy=_number(accuracy_score(h, m)),
        precision=_number(precision), recall=_number(recall), f1=_number(f1),
        cohen_kappa=cohen_kappa(h, m),
        mcc=_number(_quiet(matthews_corrcoef, h, m)),
        krippendorff_alpha=krippendorff_alpha(np.vstack([h, m])),
        confusion=((int(tn), int(fp)), (int(fn), int(tp))),
    )
    if not intervals:
        return figures
    kappa_ci, alpha_ci, f1_ci = bootstrap_intervals(h, m, seed=seed, n_resamples=n_resamples,
                                                    confidence_level=confidence_level)
    return BinaryMetrics(**{**figures.__dict__, "cohen_kappa_ci": kappa_ci, "krippendorff_alpha_ci": alpha_ci,
                            "f1_ci": f1_ci})


def bootstrap_intervals(human: np.ndarray, model: np.ndarray, *, seed: int = DEFAULT_SEED,
                        n_resamples: int = DEFAULT_RESAMPLES,
                        confidence_level: float = CONFIDENCE_LEVEL) -> tuple[Interval, Interval, Interval]:
    """Percentile-bootstrap intervals for (kappa, alpha, F1), from ``scipy.stats.bootstrap``
    with a seeded generator, resampling (human, model) pairs.

    Kappa and alpha of a resample depend only on its four pair counts (tn, fp, fn, tp), so each
    distinct count is handed to scikit-learn (as sample weights) and krippendorff once; F1 of a
    whole batch of resamples is one multilabel call to scikit-learn. Same figures, a fraction
    of the library calls."""
    h = np.asarray(human, dtype=np.int64)
    m = np.asarray(model, dtype=np.int64)
    if h.size < 2:
        return NO_INTERVAL, NO_INTERVAL, NO_INTERVAL
    codes = 2 * h + m
    cache: dict[tuple[int, ...], tuple[float, float]] = {}

    def from_counts(counts: tuple[int, ...]) -> tuple[float, float]:
        if counts not in cache:
            weights = np.asarray(counts, dtype=float)
            kappa = _quiet(cohen_kappa_score, _PAIR_TRUE, _PAIR_PRED, labels=_LABELS, sample_weight=weights)
            try:
                alpha = _quiet(krippendorff.alpha, value_counts=np.repeat(_PAIR_VALUE_COUNTS, counts, axis=0),
                               level_of_measurement="nominal")
            except ValueError:
                alpha = np.nan
            cache[counts] = (float(kappa), float(alpha))
        return cache[counts]

    def statistic(sample: np.ndarray, axis: int = -1) -> np.ndarray:
        sample = np.moveaxis(np.asarray(sample), axis, -1)
        flat = sample.reshape(-1, sample.shape[-1])  # resamples x items
        counts = np.stack([(flat == k).sum(axis=1) for k in range(4)], axis=1)
        unique, inverse = np.unique(counts, axis=0, return_inverse=True)
        agreement = np.array([from_counts(tuple(int(c) for c in row)) for row in unique])[inverse.reshape(-1)]
        f1 = _quiet(f1_score, (flat >= 2).T, (flat % 2 == 1).T, average=None, zero_division=np.nan)
        out = np.column_stack([agreement, np.asarray(f1, dtype=float)])
        return np.moveaxis(out.reshape(*sample.shape[:-1], 3), -1, 0)

    result = _quiet(
        stats.bootstrap, (codes,), statistic, n_resamples=n_resamples, batch=max(1, _BATCH_CELLS // codes.size),
        vectorized=True, confidence_level=confidence_level, method="percentile",
        rng=np.random.default_rng(seed),
    )
    lows, highs = np.atleast_1d(result.confidence_interval.low), np.atleast_1d(result.confidence_interval.high)
    intervals = []
    for low, high in zip(lows, highs):
        low_value, high_value = _number(low), _number(high)
        intervals.append(Interval(low_value, high_value) if low_value is not None and high_value is not None
                         else NO_INTERVAL)
    return intervals[0], intervals[1], intervals[2]


# ----------------------------------------------------------------------------------------------
# Agreement among several raters (annotators, or jobs)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairAgreement:
    """Two raters over the units both labelled."""

    a: str
    b: str
    n: int
    cohen_kappa: float | None
    krippendorff_alpha: float | None
    agreement: float | None  # share of those units with the same label

    def to_record(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {"a": self.a, "b": self.b, "n": self.n, "cohen_kappa": self.cohen_kappa,
                "krippendorff_alpha": self.krippendorff_alpha, "agreement": self.agreement}


@dataclass(frozen=True)
class RaterAgreement:
    """Pairwise and overall agreement of several raters on one answer column."""

    raters: tuple[str, ...]
    units: int  # units labelled by at least two raters
    pairs: tuple[PairAgreement, ...]
    krippendorff_alpha: float | None  # all raters at once (missing labels allowed)
    krippendorff_alpha_ci: Interval = NO_INTERVAL
    mean_pairwise_kappa: float | None = None

    def to_record(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {
            "raters": list(self.raters),
            "units": self.units,
            "krippendorff_alpha": self.krippendorff_alpha,
            "krippendorff_alpha_ci": self.krippendorff_alpha_ci.to_record(),
            "mean_pairwise_kappa": self.mean_pairwise_kappa,
            "pairs": [p.to_record() for p in self.pairs],
        }


def rater_agreement(matrix: pd.DataFrame, *, intervals: bool = False, seed: int = DEFAULT_SEED,
                    n_resamples: int = DEFAULT_RESAMPLES,
                    confidence_level: float = CONFIDENCE_LEVEL) -> RaterAgreement:
    """Agreement of the raters in ``matrix`` (index: units, columns: raters, values 0/1 or
    missing): kappa and alpha for every pair over the units both labelled, alpha over all
    raters, and optionally a bootstrap interval for that alpha (units resampled)."""
    raters = tuple(str(c) for c in matrix.columns)
    data = matrix.astype("Float64").to_numpy(dtype=float, na_value=np.nan).T  # raters x units
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    pairs = []
    for i, j in combinations(range(len(raters)), 2):
        both = ~np.isnan(data[i]) & ~np.isnan(data[j])
        a, b = data[i, both].astype(np.int64), data[j, both].astype(np.int64)
        pairs.append(PairAgreement(
            a=raters[i], b=raters[j], n=int(both.sum()), cohen_kappa=cohen_kappa(a, b),
            krippendorff_alpha=krippendorff_alpha(np.vstack([a, b])) if both.any() else None,
            agreement=_number(accuracy_score(a, b)) if both.any() else None,
        ))
    kappas = [p.cohen_kappa for p in pairs if p.cohen_kappa is not None]
    overall = krippendorff_alpha(data)
    interval = NO_INTERVAL
    if intervals and overall is not None and int(pairable.sum()) >= 2:
        interval = _alpha_interval(data[:, pairable], seed=seed, n_resamples=n_resamples,
                                   confidence_level=confidence_level)
    return RaterAgreement(
        raters=raters, units=int(pairable.sum()), pairs=tuple(pairs), krippendorff_alpha=overall,
        krippendorff_alpha_ci=interval,
        mean_pairwise_kappa=_number(np.mean(kappas)) if kappas else None,
    )


def _alpha_interval(data: np.ndarray, *, seed: int, n_resamples: int, confidence_level: float) -> Interval:
    """Bootstrap interval of alpha over a raters x units matrix, resampling units."""
    def statistic(units: np.ndarray) -> float:
        value = krippendorff_alpha(data[:, units.astype(np.intp)])
        return np.nan if value is None else value

    result = _quiet(stats.bootstrap, (np.arange(data.shape[1]),), statistic, n_resamples=n_resamples,
                    vectorized=False, confidence_level=confidence_level, method="percentile",
                    rng=np.random.default_rng(seed))
    low, high = _number(result.confidence_interval.low), _number(result.confidence_interval.high)
    return Interval(low, high) if low is not None and high is not None else NO_INTERVAL


# ----------------------------------------------------------------------------------------------
# Breakdowns
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupMetrics:
    """The figures of one group (an investor, a report), without intervals."""

    group: str
    metrics: BinaryMetrics

    def to_record(self) -> dict[str, Any]:
        """The group's name and figures; intervals left out (they are not computed per group)."""
        record = {"group": self.group, **self.metrics.to_record()}
        for name in ("f1_ci", "cohen_kappa_ci", "krippendorff_alpha_ci"):
            record.pop(name)
        return record


@dataclass(frozen=True)
class Breakdown:
    """Figures per group for one answer column; groups under ``min_group`` items are counted
    but not shown (too few for a figure to mean anything)."""

    by: str
    column: str
    min_group: int
    groups: tuple[GroupMetrics, ...]
    small_groups: int  # groups left out
    small_group_items: int  # their items
    unnamed_items: int = 0  # items without a group (no report name, or none parseable)

    def to_record(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {"by": self.by, "column": self.column, "min_group": self.min_group,
                "groups": [g.to_record() for g in self.groups], "small_groups": self.small_groups,
                "small_group_items": self.small_group_items, "unnamed_items": self.unnamed_items}


def breakdown(groups: pd.Series, human: pd.Series, model: pd.Series, *, by: str, column: str,
              min_group: int = DEFAULT_MIN_GROUP) -> Breakdown:
    """Figures per value of ``groups`` (aligned with ``human`` and ``model``), largest first,
    for groups of at least ``min_group`` items."""
    names = groups.fillna("").astype(str)
    unnamed = int((names == "").sum())
    shown: list[GroupMetrics] = []
    small = small_items = 0
    for name, index in sorted(names[names != ""].groupby(names).groups.items(),
                              key=lambda item: (-len(item[1]), item[0])):
        if len(index) < min_group:
            small += 1
            small_items += len(index)
            continue
        figures = binary_metrics(human.loc[index].to_numpy(dtype=np.int64),
                                 model.loc[index].to_numpy(dtype=np.int64), intervals=False)
        shown.append(GroupMetrics(group=str(name), metrics=figures))
    return Breakdown(by=by, column=column, min_group=min_group, groups=tuple(shown), small_groups=small,
                     small_group_items=small_items, unnamed_items=unnamed)

