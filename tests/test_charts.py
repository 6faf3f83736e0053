"""pages/_charts: the Plotly figures read well (presentation only; AppTest cannot read chart specs)."""

from __future__ import annotations

import pandas as pd

from pages import _charts as charts

REPORTS = ["UNPRI_VerdanceAM_Responsible_Investment_Report_2024.pdf", "FfBF_TideWater_Annual_Report_2024.pdf", "short.pdf"]


def test_long_report_names_are_shortened_on_the_axis_only() -> None:
    groups = pd.DataFrame({"group": REPORTS, "dimension": "Score (task 1)", "rows": 1, "scored": 1, "ones": 1,
                           "share": 1.0})
    fig = charts.scores_by(groups, "report")
    axis = fig.layout.xaxis
    assert list(axis.tickvals) == REPORTS  # every bar keeps its full name (hover, distinct categories)
    assert all(len(t) <= charts.TICK_CHARS for t in axis.ticktext)
    assert list(axis.ticktext)[1:] == ["FfBF_TideWater_An…", "short"]


def test_several_dimensions_are_a_grid_of_shares() -> None:
    """Four bars per investor crowd the axis; a grid (groups × dimensions) with the share in
    each cell reads at any count, and a group without scored rows in a dimension stays blank
    rather than looking like 0 %."""
    groups = pd.DataFrame({
        "group": [REPORTS[0], REPORTS[0], REPORTS[1], REPORTS[2]],
        "dimension": ["Cash flow", "Intrinsic value", "Cash flow", "Cash flow"],
        "rows": [4, 4, 2, 3], "scored": [4, 4, 2, 0], "ones": [1, 4, 2, 0], "share": [0.25, 1.0, 1.0, 0.0]})
    fig = charts.scores_by(groups, "report")
    (grid,) = fig.data
    assert grid.type == "heatmap"
    # dimensions in the task's order (as in the other charts), not alphabetically; groups as given
    assert list(grid.x) == ["Intrinsic value", "Cash flow"] and list(grid.y) == REPORTS
    assert [list(row) for row in grid.text] == [["100%", "25%"], ["", "100%"], ["", ""]]
    assert grid.z[1][0] is None and grid.z[2][1] is None  # no data, not 0 %
    assert list(fig.layout.yaxis.tickvals) == REPORTS  # full names stay the categories (and the hover)
    assert list(fig.layout.yaxis.ticktext)[1:] == ["FfBF_TideWater_Annual_Rep…", "short"]
    assert all(len(t) <= charts.GRID_TICK_CHARS for t in fig.layout.yaxis.ticktext)


def test_count_labels_have_thousands_separators_and_read_level() -> None:
    dist = pd.DataFrame({"dimension": ["Score (task 1)"] * 2, "score": ["0", "1"], "rows": [23_200, 7_600]})
    combos = pd.DataFrame({"combination": ["none", "Cash flow"], "rows": [2_800, 12_000], "share": [0.2, 0.8]})
    for fig in (charts.score_distribution(dist), charts.combinations(combos)):
        for trace in fig.data:
            assert trace.texttemplate in ("%{y:,}", "%{x:,}") and trace.textangle == 0


def test_score_legend_is_titled() -> None:
    dist = pd.DataFrame({"dimension": ["Score (task 1)"] * 2, "score": ["0", "1"], "rows": [3, 2]})
    assert charts.score_distribution(dist).layout.legend.title.text == "score"
