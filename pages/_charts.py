"""Plotly figures for the Explore page, built from core.explore aggregates (presentation only).

Every share is drawn as a horizontal bar with its 95 % interval and its n, so 100 % of one row
never looks like 100 % of a thousand; bars are sorted by share, labels run level on the left
(readable at 390 px), and no chart carries a legend with a single entry.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.explore import SCORE_COLUMNS, score_label

SCORE_COLORS = {"0": "#b0bec5", "1": "#2e7d32", "no score": "#ef6c00"}
DIMENSION_COLORS = ["#2e7d32", "#1565c0", "#8e24aa", "#ef6c00"]
DIMENSION_ORDER = [score_label(c) for c in SCORE_COLUMNS]  # task 1, then the three task-2 dimensions
TICK_CHARS = 18  # longer axis labels (report file names) are shortened; the hover shows them whole
BAR_ROW_PX = 30  # height per bar of a horizontal bar chart, so 15 investors stay readable
SHARE_AXIS_MAX = 1.45  # room right of 100 % for the "share · n" label
CHART_HEIGHT = 360
INTERVAL_COLOR = "#607d8b"


def score_distribution(dist: pd.DataFrame) -> go.Figure:
    """Rows per score (0, 1, no score) of each dimension, counts above the bars."""
    fig = px.bar(dist, x="dimension", y="rows", color="score", barmode="group",
                 color_discrete_map=SCORE_COLORS, title="Score distribution",
                 category_orders={"dimension": DIMENSION_ORDER, "score": ["0", "1", "no score"]})
    # Above the bars: inside, Plotly would shrink a label wider than its bar ("11,600") to a
    # few pixels; the axis gets room above the tallest bar for its label.
    _count_labels(fig, "%{y:,}", position="outside")
    fig.update_yaxes(tickformat=",", title=None,
                     range=[0, max(1, int(dist["rows"].max())) * 1.18] if len(dist) else None)
    present = [d for d in DIMENSION_ORDER if d in set(dist["dimension"])]
    fig.update_xaxes(title=None, tickmode="array", tickvals=present, ticktext=[_two_lines(d) for d in present])
    fig = _tidy(fig)
    # the legend sits above the plot, so it takes no width from the bars
    fig.update_layout(showlegend=True, legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1, title_text="score"),
                      margin=dict(t=70))
    return fig


def scores_by(groups: pd.DataFrame, by_label: str) -> go.Figure:
    """Share scored 1 of one dimension per investor (or report): horizontal bars in the order
    given (highest share first, on top), each with its 95 % interval and ``share · n``."""
    dimensions = list(dict.fromkeys(groups["dimension"]))
    title = f"Share scored 1 by {by_label}" + (f": {dimensions[0]}" if len(dimensions) == 1 else "")
    return _share_bars(groups, label_column="group", title=title)


def dimension_shares(shares: pd.DataFrame) -> go.Figure:
    """Task 2: share scored 1 per dimension (one denominator: the paragraphs task 2 answered)."""
    return _share_bars(shares, label_column="dimension", title="Task 2: share scored 1 per dimension", keep_order=True)


def combinations(combos: pd.DataFrame) -> go.Figure:
    """Task 2: paragraphs per combination of the three dimensions."""
    fig = px.bar(combos, x="rows", y="combination", orientation="h",
                 title="Task 2: the eight combinations of the three dimensions",
                 color_discrete_sequence=DIMENSION_COLORS)
    _count_labels(fig, "%{x:,}")
    fig.update_xaxes(tickformat=",", title=None)
    fig.update_yaxes(title=None, categoryorder="array", categoryarray=list(combos["combination"])[::-1])
    return _tidy(fig)


def _share_bars(frame: pd.DataFrame, *, label_column: str, title: str, keep_order: bool = False) -> go.Figure:
    labels = [str(v) for v in frame[label_column]]
    share, low, high = frame["share"].astype(float), frame["low"].astype(float), frame["high"].astype(float)
    n = frame["scored"].astype(int)
    ones = frame["ones"].astype(int)
    custom = list(zip(labels, ones, n, low, high))
    fig = go.Figure()
    fig.add_trace(go.Bar(
        x=share, y=labels, orientation="h", marker_color=DIMENSION_COLORS[0], showlegend=False,
        error_x=dict(type="data", symmetric=False, array=(high - share).clip(lower=0),
                     arrayminus=(share - low).clip(lower=0), color=INTERVAL_COLOR, thickness=1.5, width=4),
        customdata=custom,
        hovertemplate="%{customdata[0]}<br>%{customdata[1]:,} of %{customdata[2]:,} scored 1 = %{x:.0%}"
                      "<br>95% interval %{customdata[3]:.0%}–%{customdata[4]:.0%}<extra></extra>",
    ))
    # "share · n" right of the interval, so it never sits on a bar or a whisker
    fig.add_trace(go.Scatter(
        x=high + 0.02, y=labels, mode="text", text=[f"{s:.0%} · n={k:,}" for s, k in zip(share, n)],
        textposition="middle right", showlegend=False, hoverinfo="skip", cliponaxis=False,
    ))
    fig.update_xaxes(tickformat=".0%", range=[0, SHARE_AXIS_MAX], tickvals=[0, 0.25, 0.5, 0.75, 1.0], title=None)
    fig.update_yaxes(type="category", autorange="reversed", tickmode="array", tickvals=labels,
                     ticktext=[_short(v) for v in labels], title=None)
    fig = _tidy(fig)
    fig.update_layout(title=title, height=max(CHART_HEIGHT, BAR_ROW_PX * len(labels) + 110), bargap=0.25)
    if keep_order:
        fig.update_yaxes(categoryorder="array", categoryarray=labels)
    return fig


def _count_labels(fig: go.Figure, template: str, position: str = "auto") -> None:
    # Plotly turns a label that is wider than its bar on its side; level labels read better.
    fig.update_traces(texttemplate=template, textangle=0, textposition=position, cliponaxis=False,
                      constraintext="inside" if position == "auto" else "none")


def _two_lines(label: str) -> str:
    return label.replace(" ", "<br>", 1)


def _short(name: str, limit: int = TICK_CHARS) -> str:
    name = str(name).removesuffix(".pdf")
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _tidy(fig: go.Figure) -> go.Figure:
    fig.update_layout(margin=dict(l=10, r=10, t=50, b=10), height=CHART_HEIGHT, showlegend=len(fig.data) > 1
                      and any(getattr(t, "showlegend", None) is not False for t in fig.data))
    return fig
