"""The figures agree with scikit-learn, krippendorff and scipy called directly, on random data."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
)

from core.evaluate import binary_metrics, rater_agreement
from core.evaluate.metrics import bootstrap_intervals, krippendorff_alpha


def labels(seed: int, n: int, accuracy: float = 0.8, prevalence: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    human = (rng.random(n) < prevalence).astype(int)
    model = np.where(rng.random(n) < accuracy, human, 1 - human)
    return human, model


def direct_alpha(*rows: np.ndarray) -> float:
    return krippendorff.alpha(reliability_data=np.vstack(rows).astype(float), level_of_measurement="nominal")


@pytest.mark.parametrize("seed, n", [(1, 40), (2, 150), (3, 777)])
def test_point_figures_match_the_libraries(seed: int, n: int) -> None:
    human, model = labels(seed, n)
    m = binary_metrics(human, model, intervals=False)
    assert m.n == n
    assert m.accuracy == pytest.approx(accuracy_score(human, model))
    assert m.precision == pytest.approx(precision_score(human, model))
    assert m.recall == pytest.approx(recall_score(human, model))
    assert m.f1 == pytest.approx(f1_score(human, model))
    assert m.cohen_kappa == pytest.approx(cohen_kappa_score(human, model))
    assert m.mcc == pytest.approx(matthews_corrcoef(human, model))
    assert m.krippendorff_alpha == pytest.approx(direct_alpha(human, model))
    assert [list(r) for r in m.confusion] == confusion_matrix(human, model, labels=[0, 1]).tolist()
    assert m.human_prevalence == pytest.approx(human.mean()) and m.model_prevalence == pytest.approx(model.mean())
    assert m.majority_baseline_accuracy == pytest.approx(max(human.mean(), 1 - human.mean()))


def test_intervals_equal_scipy_bootstrap_of_the_library_functions() -> None:
    """The count-weighted shortcut gives exactly what scipy's bootstrap of the plain library
    calls gives with the same seed (same resamples)."""
    human, model = labels(4, 60)
    kappa_ci, alpha_ci, f1_ci = bootstrap_intervals(human, model, seed=11, n_resamples=200)

    def direct(function):
        result = stats.bootstrap((human, model), function, paired=True, vectorized=False, n_resamples=200,
                                 method="percentile", rng=np.random.default_rng(11))
        return result.confidence_interval.low, result.confidence_interval.high

    assert (kappa_ci.low, kappa_ci.high) == pytest.approx(direct(lambda a, b: cohen_kappa_score(a, b)))
    assert (f1_ci.low, f1_ci.high) == pytest.approx(direct(lambda a, b: f1_score(a, b)))
    assert (alpha_ci.low, alpha_ci.high) == pytest.approx(direct(direct_alpha))


def test_intervals_are_seeded() -> None:
    human, model = labels(5, 120)
    assert bootstrap_intervals(human, model, seed=3, n_resamples=150) == \
        bootstrap_intervals(human, model, seed=3, n_resamples=150)
    assert bootstrap_intervals(human, model, seed=3, n_resamples=150) != \
        bootstrap_intervals(human, model, seed=4, n_resamples=150)


def test_undefined_figures_are_none_not_zero() -> None:
    m = binary_metrics([1, 1, 1], [1, 1, 1], n_resamples=50)
    assert m.accuracy == 1.0 and m.cohen_kappa is None and m.krippendorff_alpha is None
    assert m.cohen_kappa_ci.to_record() == [None, None]
    assert binary_metrics([0, 0], [0, 0], intervals=False).precision is None
    assert binary_metrics([], [], intervals=False).n == 0


def test_several_raters_match_the_libraries() -> None:
    rng = np.random.default_rng(9)
    truth = (rng.random(200) < 0.5).astype(float)
    raters = {name: np.where(rng.random(200) < 0.85, truth, 1 - truth) for name in ("a", "b", "c")}
    for name, gaps in (("b", 20), ("c", 50)):  # some paragraphs not labelled by everyone
        raters[name][rng.choice(200, gaps, replace=False)] = np.nan
    matrix = pd.DataFrame(raters).astype("Float64").round().astype("Int64")
    agreement = rater_agreement(matrix, intervals=True, n_resamples=100)
    assert agreement.krippendorff_alpha == pytest.approx(
        krippendorff.alpha(reliability_data=np.vstack(list(raters.values())), level_of_measurement="nominal"))
    pair = next(p for p in agreement.pairs if (p.a, p.b) == ("b", "c"))
    both = ~np.isnan(raters["b"]) & ~np.isnan(raters["c"])
    assert pair.n == int(both.sum())
    assert pair.cohen_kappa == pytest.approx(cohen_kappa_score(raters["b"][both], raters["c"][both]))
    assert pair.krippendorff_alpha == pytest.approx(direct_alpha(raters["b"][both], raters["c"][both]))
    low, high = agreement.krippendorff_alpha_ci.to_record()
    assert low is not None and low < agreement.krippendorff_alpha < high
    assert krippendorff_alpha(np.array([[np.nan, 1.0], [0.0, np.nan]])) is None  # no unit with two labels
