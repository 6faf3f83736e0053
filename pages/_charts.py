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


def score_distribution(dist: pd.DataFrame) -> go.Figure:
    fig = px.bar(dist, x="dimension", y="rows", color="score", barmode="group", text="rows",
                 color_discrete_map=SCORE_COLORS, title="Score distribution",
                 category_orders={"dimension": DIMENSION_ORDER})
    return _tidy(fig, legend_title="score")


def scores_by(groups: pd.DataFrame, by_label: str) -> go.Figure:
    fig = px.bar(groups, x="group", y="share", color="dimension", barmode="group",
                 hover_data=["rows", "scored", "ones"], title=f"Share scored 1 by {by_label}",
                 color_discrete_sequence=DIMENSION_COLORS, category_orders={"dimension": DIMENSION_ORDER})
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    names = list(dict.fromkeys(groups["group"]))
    fig.update_xaxes(title=None, tickangle=-30, tickmode="array", tickvals=names, ticktext=[_short(n) for n in names])
    return _tidy(fig)


def combinations(combos: pd.DataFrame) -> go.Figure:
    fig = px.bar(combos, x="rows", y="combination", orientation="h", text="rows",
                 title="Task 2: the eight combinations of the three dimensions",
                 color_discrete_sequence=DIMENSION_COLORS)
    fig.update_yaxes(title=None, categoryorder="array", categoryarray=list(combos["combination"])[::-1])
    return _tidy(fig)


def dimension_shares(shares: pd.DataFrame) -> go.Figure:
    fig = px.bar(shares, x="dimension", y="share", text=shares["share"].map("{:.0%}".format),
                 hover_data=["scored", "ones"], title="Task 2: share of paragraphs scored 1 per dimension",
                 color_discrete_sequence=DIMENSION_COLORS)
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return _tidy(fig)


def _short(name: str) -> str:
    name = str(name).removesuffix(".pdf")
    return name if len(name) <= TICK_CHARS else name[: TICK_CHARS - 1] + "…"


def _tidy(fig: go.Figure, legend_title: str | None = None) -> go.Figure:
    fig.update_layout(margin=dict(l=10, r=10, t=50, b=10), height=360, legend_title_text=legend_title)
    return fig
