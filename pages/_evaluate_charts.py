"""Vega-Lite chart spec and table styling for the Evaluate page, built from
core.evaluate.view.tables (presentation only; the figures themselves come from core)."""

from __future__ import annotations

import pandas as pd
from pandas.io.formats.style import Styler

from pages._charts import BAR_COLOR, VegaLiteSpec, horizontal_bars

UNDEFINED_COLOR = "#90a4ae"  # a group whose figure is undefined (one class only) still shows its n
AGREE_CELL = "background-color: #e8f5e9"
DISAGREE_CELL = "background-color: #fff3e0"
DEFINED, UNDEFINED = "defined", "undefined (one class only)"


def group_bars(groups: pd.DataFrame, *, metric_label: str, by_label: str, overall: float | None) -> VegaLiteSpec:
    """Horizontal bars, one per group (in the order given: largest first, on top), each
    labelled with its n and value. A metric can be below zero (kappa, alpha), so the axis runs
    from -1 when one is. ``overall`` (the figure over all compared paragraphs) is named in the
    title."""
    values = []
    for group, n, value, text in zip(groups["group"], groups["n"], groups["value"], groups["text"]):
        undefined = value is None or pd.isna(value)
        x = 0.0 if undefined else float(value)
        values.append({"label": str(group), "x": x, "at": max(x, 0.0), "n": int(n), "text": str(text),
                       "kind": UNDEFINED if undefined else DEFINED})
    low = -1.0 if min((v["x"] for v in values), default=0.0) < 0 else 0.0
    kinds = [k for k in (DEFINED, UNDEFINED) if any(v["kind"] == k for v in values)]
    # the figure over all paragraphs goes in the title: a reference line would cross the bar labels
    whole = f" (all paragraphs: {overall:.2f})" if overall is not None else ""
    return horizontal_bars(
        values, title=f"{metric_label} by {by_label}{whole}", label_title=by_label, label_x="at",
        # room on the right for the "n = 7 · 0.46" labels outside the longest bar
        x={"field": "x", "type": "quantitative", "title": metric_label,
           "scale": {"domain": [low, 1.35], "nice": False},
           "axis": {"values": [v / 4 for v in range(int(low * 4), 5)]}},
        bar_color={"field": "kind", "type": "nominal", "legend": None,
                   "scale": {"domain": kinds, "range": [BAR_COLOR if k == DEFINED else UNDEFINED_COLOR for k in kinds]}},
        tooltip=[{"field": "n", "title": "n", "format": ","}, {"field": "x", "title": metric_label, "format": ".2f"},
                 {"field": "kind", "title": "figure"}],
    )


def confusion_style(table: pd.DataFrame) -> Styler:
    """Agreeing cells (the diagonal) tinted green, disagreeing ones orange; counts with
    thousands separators."""
    def colour(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame([[AGREE_CELL, DISAGREE_CELL], [DISAGREE_CELL, AGREE_CELL]],
                            index=frame.index, columns=frame.columns)

    return table.style.apply(colour, axis=None).format("{:,}")
