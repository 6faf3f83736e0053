"""Plotly figure and table styling for the Evaluate page, built from core.evaluate.view.tables
(presentation only; the figures themselves come from core)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from pandas.io.formats.style import Styler

from pages._charts import CHART_HEIGHT, _short, _tidy

BAR_COLOR = "#2e7d32"  # the page's green
UNDEFINED_COLOR = "#b0bec5"  # a group whose figure is undefined (one class only) still shows its n
BAR_ROW_PX = 34
AGREE_CELL = "background-color: #e8f5e9"
DISAGREE_CELL = "background-color: #fff3e0"


def group_bars(groups: pd.DataFrame, *, metric_label: str, by_label: str, overall: float | None) -> go.Figure:
    """Horizontal bars, one per group (largest first, on top), each labelled with its n and
    value. A metric can be below zero (kappa, alpha), so the axis runs from -1 when one is.
    ``overall`` (the figure over all compared paragraphs) is named in the title."""
    values = [0.0 if v is None or pd.isna(v) else float(v) for v in groups["value"]]
    undefined = [v is None or pd.isna(v) for v in groups["value"]]
    fig = go.Figure(go.Bar(
        x=values, y=groups["group"], orientation="h", text=groups["text"], textposition="outside",
        cliponaxis=False, marker_color=[UNDEFINED_COLOR if u else BAR_COLOR for u in undefined],
        customdata=groups[["n"]].to_numpy(),
        hovertemplate="%{y}<br>n = %{customdata[0]:,}<br>" + metric_label + " %{x:.2f}<extra></extra>",
    ))
    low = -1.0 if min(values, default=0.0) < 0 else 0.0
    # room on the right for the "n = 7 · 0.46" labels outside the longest bar
    fig.update_xaxes(range=[low, 1.35], tickvals=[v / 4 for v in range(int(low * 4), 5)], title=metric_label)
    names = list(groups["group"])
    fig.update_yaxes(autorange="reversed", tickmode="array", tickvals=names, ticktext=[_short(n, 22) for n in names],
                     title=None)
    # the figure over all paragraphs goes in the title: a reference line would cross the bar labels
    whole = f" (all paragraphs: {overall:.2f})" if overall is not None else ""
    fig.update_layout(title=f"{metric_label} by {by_label}{whole}", showlegend=False)
    fig = _tidy(fig)
    fig.update_layout(height=max(CHART_HEIGHT // 2, BAR_ROW_PX * len(names) + 110))
    return fig


def confusion_style(table: pd.DataFrame) -> Styler:
    """Agreeing cells (the diagonal) tinted green, disagreeing ones orange; counts with
    thousands separators."""
    def colour(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame([[AGREE_CELL, DISAGREE_CELL], [DISAGREE_CELL, AGREE_CELL]],
                            index=frame.index, columns=frame.columns)

    return table.style.apply(colour, axis=None).format("{:,}")
