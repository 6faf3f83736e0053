"""pages/_charts: the Plotly figures read well and do not mislead (presentation only; AppTest
cannot read chart specs)."""

from __future__ import annotations

import pandas as pd

from core.explore import scores_by
from pages import _charts as charts

REPORTS = ["UNPRI_VerdanceAM_Responsible_Investment_Report_2024.pdf", "FfBF_TideWater_Annual_Report_2024.pdf", "short.pdf"]
TASK1 = "investment_activity_classification"


def fifteen_investors() -> pd.DataFrame:
    """15 investors with 1 to 15 task-1 rows each, the first third of each scored 1."""
    investors, scores = [], []
    for i in range(15):
        n = i + 1
        investors += [f"Investor_with_a_long_name_{i}"] * n
        scores += [1 if k < max(1, n // 3) else 0 for k in range(n)]
    return pd.DataFrame({"task": TASK1, "investor": investors, "pdf_file_name": "",
                         "score": pd.array(scores, dtype="Int64")})


def test_every_share_shows_n_and_an_interval_sorted_as_given() -> None:
    groups = scores_by(fifteen_investors(), "investor")
    fig = charts.scores_by(groups, "investor")
    bars, labels = fig.data
    assert bars.type == "bar" and bars.orientation == "h"  # labels level on the left, at any width
    assert list(bars.y) == list(groups["group"])  # highest share first (core sorts), drawn top-down
    assert fig.layout.yaxis.autorange == "reversed"
    assert list(bars.error_x.array) == list((groups["high"] - groups["share"]).clip(lower=0))
    assert list(bars.error_x.arrayminus) == list((groups["share"] - groups["low"]).clip(lower=0))
    for text, n, share in zip(labels.text, groups["scored"], groups["share"]):
        assert text == f"{share:.0%} · n={n:,}"  # 100 % of 1 row reads differently from 100 % of 1,000
    assert not fig.layout.showlegend  # no one-entry legend taking width
    assert fig.layout.height >= 15 * charts.BAR_ROW_PX  # 15 bars keep their height
    assert all(len(t) <= charts.TICK_CHARS for t in fig.layout.yaxis.ticktext)
    assert "Score (task 1)" in fig.layout.title.text


def test_long_report_names_are_shortened_on_the_axis_only() -> None:
    groups = pd.DataFrame({"group": REPORTS, "dimension": "Score (task 1)", "rows": 1, "scored": 1, "ones": 1,
                           "share": 1.0, "low": 0.2, "high": 1.0})
    fig = charts.scores_by(groups, "report")
    axis = fig.layout.yaxis
    assert list(axis.tickvals) == REPORTS  # every bar keeps its full name (hover, distinct categories)
    assert all(len(t) <= charts.TICK_CHARS for t in axis.ticktext)
    assert list(axis.ticktext)[1:] == ["FfBF_TideWater_An…", "short"]


def test_dimension_shares_show_n_and_interval_in_task_order() -> None:
    shares = pd.DataFrame({"dimension": ["Intrinsic value", "Cash flow", "Ownership / control"],
                           "scored": [40, 40, 40], "ones": [10, 30, 0], "share": [0.25, 0.75, 0.0],
                           "low": [0.14, 0.6, 0.0], "high": [0.4, 0.86, 0.09]})
    fig = charts.dimension_shares(shares)
    bars, labels = fig.data
    assert list(bars.y) == list(shares["dimension"]) and bars.orientation == "h"
    assert list(labels.text) == ["25% · n=40", "75% · n=40", "0% · n=40"]
    assert not fig.layout.showlegend


def test_count_labels_have_thousands_separators_and_read_level() -> None:
    dist = pd.DataFrame({"dimension": ["Score (task 1)"] * 2, "score": ["0", "1"], "rows": [23_200, 7_600]})
    combos = pd.DataFrame({"combination": ["none", "Cash flow"], "rows": [2_800, 12_000], "share": [0.2, 0.8]})
    for fig in (charts.score_distribution(dist), charts.combinations(combos)):
        for trace in fig.data:
            assert trace.texttemplate in ("%{y:,}", "%{x:,}") and trace.textangle == 0
    assert not charts.combinations(combos).layout.showlegend


def test_score_legend_is_titled_and_above_the_plot() -> None:
    dist = pd.DataFrame({"dimension": ["Score (task 1)"] * 2, "score": ["0", "1"], "rows": [3, 2]})
    legend = charts.score_distribution(dist).layout.legend
    assert legend.title.text == "score" and legend.orientation == "h"  # takes no width from the bars
