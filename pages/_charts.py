"""Plotly figures for the Explore page, built from core.explore aggregates (presentation only)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.explore import SCORE_COLUMNS, score_label

SCORE_COLORS = {"0": "#b0bec5", "1": "#2e7d32", "no score": "#ef6c00"}
DIMENSION_COLORS = ["#2e7d32", "#1565c0", "#8e24aa", "#ef6c00"]
DIMENSION_ORDER = [score_label(c) for c in SCORE_COLUMNS]  # task 1, then the three task-2 dimensions
TICK_CHARS = 18  # longer axis labels (report file names) are shortened; the hover shows them whole
GRID_TICK_CHARS = 26  # the grid's labels run level on the left, where there is room for more
SHARE_SCALE = [[0.0, "#f4f8f4"], [1.0, "#2e7d32"]]  # the page's green, from 0 % to 100 %
HEATMAP_ROW_PX = 26
CHART_HEIGHT = 360


def score_distribution(dist: pd.DataFrame) -> go.Figure:
    fig = px.bar(dist, x="dimension", y="rows", color="score", barmode="group",
                 color_discrete_map=SCORE_COLORS, title="Score distribution",
                 category_orders={"dimension": DIMENSION_ORDER})
    # Above the bars: inside, Plotly would shrink a label wider than its bar ("11,600") to a
    # few pixels; the axis gets room above the tallest bar for its label.
    _count_labels(fig, "%{y:,}", position="outside")
    fig.update_yaxes(tickformat=",", range=[0, max(1, int(dist["rows"].max())) * 1.15] if len(dist) else None)
    present = [d for d in DIMENSION_ORDER if d in set(dist["dimension"])]
    fig.update_xaxes(title=None, tickmode="array", tickvals=present, ticktext=[_two_lines(d) for d in present])
    return _tidy(fig, legend_title="score")


def scores_by(groups: pd.DataFrame, by_label: str) -> go.Figure:
    """Bars for one dimension; a grid of shares (investors × dimensions) for several, where
    four bars per investor would crowd the axis and a missing dimension would look like 0 %."""
    names = list(dict.fromkeys(groups["group"]))
    dimensions = [d for d in DIMENSION_ORDER if d in set(groups["dimension"])]
    if len(dimensions) > 1:
        return _share_grid(groups, names, dimensions, by_label)
    fig = px.bar(groups, x="group", y="share", color="dimension", barmode="group",
                 hover_data=["rows", "scored", "ones"], title=f"Share scored 1 by {by_label}",
                 color_discrete_sequence=DIMENSION_COLORS, category_orders={"dimension": DIMENSION_ORDER})
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    fig.update_xaxes(title=None, tickangle=-30, tickmode="array", tickvals=names, ticktext=[_short(n) for n in names])
    return _tidy(fig)


def _share_grid(groups: pd.DataFrame, names: list[str], dimensions: list[str], by_label: str) -> go.Figure:
    cells = groups.set_index(["group", "dimension"])
    z, text, extra = [], [], []
    for name in names:
        z_row, text_row, extra_row = [], [], []
        for dimension in dimensions:
            cell = cells.loc[(name, dimension)] if (name, dimension) in cells.index else None
            scored = int(cell["scored"]) if cell is not None else 0
            # No scored row is "no data", not 0 %: the cell stays blank.
            z_row.append(float(cell["share"]) if scored else None)
            text_row.append(f"{cell['share']:.0%}" if scored else "")
            extra_row.append([int(cell["rows"]) if cell is not None else 0, scored,
                              int(cell["ones"]) if cell is not None else 0, name])
        z.append(z_row)
        text.append(text_row)
        extra.append(extra_row)
    fig = go.Figure(go.Heatmap(
        z=z, x=dimensions, y=names, text=text, texttemplate="%{text}", customdata=extra,
        zmin=0, zmax=1, colorscale=SHARE_SCALE, xgap=2, ygap=2, showscale=False,  # each cell has its number
        hovertemplate="%{customdata[3]} · %{x}<br>%{customdata[2]:,} of %{customdata[1]:,} scored 1 "
                      "(%{customdata[0]:,} rows)<extra></extra>",
    ))
    fig.update_layout(title=f"Share scored 1 by {by_label}")
    # level labels, broken over two lines, fit four narrow columns
    fig.update_xaxes(type="category", title=None, tickangle=0, tickmode="array", tickvals=dimensions,
                     ticktext=[_two_lines(d) for d in dimensions])
    fig.update_yaxes(type="category", autorange="reversed", tickmode="array", tickvals=names,  # biggest on top
                     ticktext=[_short(n, GRID_TICK_CHARS) for n in names], title=None)
    fig = _tidy(fig)
    fig.update_layout(height=max(CHART_HEIGHT, HEATMAP_ROW_PX * len(names) + 110),
                      plot_bgcolor="rgba(0,0,0,0)")
    return fig


def combinations(combos: pd.DataFrame) -> go.Figure:
    fig = px.bar(combos, x="rows", y="combination", orientation="h",
                 title="Task 2: the eight combinations of the three dimensions",
                 color_discrete_sequence=DIMENSION_COLORS)
    _count_labels(fig, "%{x:,}")
    fig.update_xaxes(tickformat=",")
    fig.update_yaxes(title=None, categoryorder="array", categoryarray=list(combos["combination"])[::-1])
    return _tidy(fig)


def dimension_shares(shares: pd.DataFrame) -> go.Figure:
    fig = px.bar(shares, x="dimension", y="share", text=shares["share"].map("{:.0%}".format),
                 hover_data=["scored", "ones"], title="Task 2: share of paragraphs scored 1 per dimension",
                 color_discrete_sequence=DIMENSION_COLORS)
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return _tidy(fig)


def _count_labels(fig: go.Figure, template: str, position: str = "auto") -> None:
    # Plotly turns a label that is wider than its bar on its side; level labels read better.
    fig.update_traces(texttemplate=template, textangle=0, textposition=position, cliponaxis=False,
                      constraintext="inside" if position == "auto" else "none")


def _two_lines(label: str) -> str:
    return label.replace(" ", "<br>", 1)


def _short(name: str, limit: int = TICK_CHARS) -> str:
    name = str(name).removesuffix(".pdf")
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _tidy(fig: go.Figure, legend_title: str | None = None) -> go.Figure:
    fig.update_layout(margin=dict(l=10, r=10, t=50, b=10), height=CHART_HEIGHT, legend_title_text=legend_title)
    return fig
