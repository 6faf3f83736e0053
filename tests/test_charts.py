"""pages/_charts: the Plotly figures read well (presentation only; AppTest cannot read chart specs)."""

from __future__ import annotations

import pandas as pd

from pages import _charts as charts


def test_long_report_names_are_shortened_on_the_axis_only() -> None:
    reports = ["UNPRI_VerdanceAM_Responsible_Investment_Report_2024.pdf", "FfBF_TideWater_Annual_Report_2024.pdf", "short.pdf"]
    groups = pd.DataFrame({"group": reports * 2, "dimension": ["Cash flow"] * 3 + ["Intrinsic value"] * 3,
                           "rows": 1, "scored": 1, "ones": 1, "share": 1.0})
    fig = charts.scores_by(groups, "report")
    axis = fig.layout.xaxis
    assert list(axis.tickvals) == reports  # every bar keeps its full name (hover, distinct categories)
    assert all(len(t) <= charts.TICK_CHARS for t in axis.ticktext)
    assert list(axis.ticktext)[1:] == ["FfBF_TideWater_An…", "short"]
    # dimensions in the task's order (as in the other charts), not alphabetically
    assert [trace.name for trace in fig.data] == ["Intrinsic value", "Cash flow"]


def test_score_legend_is_titled() -> None:
    dist = pd.DataFrame({"dimension": ["Score (task 1)"] * 2, "score": ["0", "1"], "rows": [3, 2]})
    assert charts.score_distribution(dist).layout.legend.title.text == "score"
