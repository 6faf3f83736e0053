"""Vega-Lite chart specs for the Explore page, built from core.explore aggregates, and the home
page's progress of the newest jobs (presentation only; drawn with ``st.vega_lite_chart``,
Streamlit's own chart element, so no page loads Plotly's 4.7 MB bundle).

Every share is drawn as a horizontal bar with its 95 % interval (a rule) and a ``share · n``
label, so 100 % of one row never looks like 100 % of a thousand; bars are sorted as core sorts
them, labels run level on the left (long report names shortened on the axis, whole in the
tooltip; readable at 390 px), and no chart carries a legend with a single entry. Axis, title
and legend colours come from Streamlit's chart theme (light or dark); the colours set here read
on both backgrounds.

The specs are plain dicts (no Altair object is built on every run); the data go in
``data.values`` and every field name is one of this module's own, never one from the data.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from core.explore import NO_SCORE, SCORE_COLUMNS, score_label
from core.vocabulary import PART_WORDS, PROGRESS_PARTS

VegaLiteSpec = dict[str, Any]

SCORE_ORDER = ["0", "1", NO_SCORE]
BAR_COLOR = "#388e3c"  # green with a 4:1 contrast on the light (#fff) and the dark (#101813) background
SCORE_COLORS = {"0": "#90a4ae", "1": BAR_COLOR, NO_SCORE: "#ef6c00"}
INTERVAL_COLOR = "#607d8b"  # 4.4:1 on white, 4.1:1 on the dark background
LABEL_COLOR = "#6b7d6e"  # bar labels; the theme's text colour cannot be named in a spec
# The four parts of a job's progress (core.vocabulary.PART_WORDS), the same colours in light and
# dark themes, on the Monitor page's bars and the home page's chart.
PART_COLOURS = {"answered": "#2e7d32", "failed": "#d32f2f", "cancelled_or_expired": "#ef8f00",
                "not_run": "rgba(128, 128, 128, 0.28)"}
DIMENSION_ORDER = [score_label(c) for c in SCORE_COLUMNS]  # task 1, then the three task-2 dimensions
TICK_CHARS = 18  # longer axis labels (report file names) are shortened; the tooltip shows them whole
LABEL_LIMIT_PX = 150  # and no axis label takes more width than this, whatever its font
BAR_ROW_PX = 30  # height per bar of a horizontal bar chart, so 15 investors stay readable
COMBINATION_ROW_PX = 44  # a combination's name takes up to three lines
BAR_THICKNESS_PX = 22  # no thicker, however few the bars (three dimensions in a 360 px chart)
SHARE_AXIS_MAX = 1.45  # room right of 100 % for the "share · n" label
CHART_HEIGHT = 360
CHART_FRAME_PX = 110  # title and axis (or legend) around the bars of a horizontal bar chart
JOB_ROW_PX = 40  # height per job in the home page's progress chart: its name, then its bar
JOB_BAR_PX = 12
LEGEND_ROWS_PX = 20  # its legend's two rows (the frame holds the rest)
# Shortens an axis label in the browser (the bar keeps its full name, so two reports whose names
# begin alike stay two bars): drops ".pdf", then cuts to TICK_CHARS with an ellipsis.
SHORT_LABEL_EXPR = f"truncate(replace(datum.label, regexp('[.]pdf$', 'i'), ''), {TICK_CHARS})"
# Counts on an axis: whole numbers with thousands separators ("50,000", never "5e+4"), no 0.5 step.
COUNT_AXIS = {"format": ",d", "tickMinStep": 1}
# Puts each dimension of a combination on its own line ("Intrinsic value +", "Cash flow"): the
# longest combination would take 280 px on one line, half of a 390 px screen.
COMBINATION_LINES_EXPR = "split(replace(datum.label, regexp(' [+] ', 'g'), ' +|'), '|')"
# Breaks a dimension name after its first word ("Ownership / control" on two lines).
TWO_LINES_EXPR = ("indexof(datum.label, ' ') < 0 ? datum.label : [slice(datum.label, 0, indexof(datum.label, ' ')), "
                  "slice(datum.label, indexof(datum.label, ' ') + 1)]")


def score_distribution(dist: pd.DataFrame) -> VegaLiteSpec:
    """Rows per score (0, 1, no score) of each dimension as grouped columns, counts above the
    bars, the score legend (titled) above the plot."""
    present = [d for d in DIMENSION_ORDER if d in set(dist["dimension"])]
    scores = [s for s in SCORE_ORDER if s in set(dist["score"])]
    values = [{"dimension": str(d), "score": str(s), "rows": int(r), "label": f"{int(r):,}"}
              for d, s, r in zip(dist["dimension"], dist["score"], dist["rows"])]
    top = max([v["rows"] for v in values], default=0)
    return {
        "title": "Score distribution",
        "height": CHART_HEIGHT,
        "data": {"values": values},
        "encoding": {
            "x": {"field": "dimension", "type": "nominal", "sort": present, "title": None,
                  "axis": {"labelAngle": 0, "labelExpr": TWO_LINES_EXPR}},
            "xOffset": {"field": "score", "type": "nominal", "sort": scores},
            # room above the tallest bar for its count
            "y": {"field": "rows", "type": "quantitative", "title": None, "axis": COUNT_AXIS,
                  "scale": {"domain": [0, max(1, top) * 1.18], "nice": False}},
            "tooltip": [{"field": "dimension", "title": "dimension"}, {"field": "score", "title": "score"},
                        {"field": "rows", "title": "rows", "format": ","}],
        },
        "layer": [
            {"mark": {"type": "bar"},
             "encoding": {"color": {"field": "score", "type": "nominal", "title": "score",
                                    "scale": {"domain": scores, "range": [SCORE_COLORS[s] for s in scores]},
                                    "legend": {"orient": "top", "direction": "horizontal", "title": "score"}}}},
            # level, above the bar: a count wider than its bar ("11,600") still reads whole
            {"mark": {"type": "text", "baseline": "bottom", "dy": -3, "color": LABEL_COLOR},
             "encoding": {"text": {"field": "label"}}},
        ],
    }


def scores_by(groups: pd.DataFrame, by_label: str) -> VegaLiteSpec:
    """Share scored 1 of one dimension per investor (or report): horizontal bars in the order
    given (highest share first, on top), each with its 95 % interval and ``share · n``."""
    dimensions = list(dict.fromkeys(groups["dimension"]))
    title = f"Share scored 1 by {by_label}" + (f": {dimensions[0]}" if len(dimensions) == 1 else "")
    return _share_bars(groups, label_column="group", label_title=by_label, title=title)


def dimension_shares(shares: pd.DataFrame) -> VegaLiteSpec:
    """Task 2: share scored 1 per dimension (one denominator: the paragraphs task 2 answered),
    in task order."""
    return _share_bars(shares, label_column="dimension", label_title="dimension",
                       title="Task 2: share scored 1 per dimension", shorten=False)


def combinations(combos: pd.DataFrame) -> VegaLiteSpec:
    """Task 2: paragraphs per combination of the three dimensions, in the order given (top
    down), each bar labelled with its count."""
    values = [{"combination": str(c), "rows": int(r), "share": float(s), "label": f"{int(r):,}"}
              for c, r, s in zip(combos["combination"], combos["rows"], combos["share"])]
    order = [v["combination"] for v in values]
    top = max([v["rows"] for v in values], default=0)
    return {
        "title": "Task 2: paragraphs per combination",
        "height": max(CHART_HEIGHT, COMBINATION_ROW_PX * len(values) + CHART_FRAME_PX),
        "data": {"values": values},
        "encoding": {
            "y": {"field": "combination", "type": "nominal", "sort": order, "title": None,
                  "axis": {"labelLimit": LABEL_LIMIT_PX, "labelExpr": COMBINATION_LINES_EXPR}},
            # room right of the longest bar for its count
            "x": {"field": "rows", "type": "quantitative", "title": None, "axis": COUNT_AXIS,
                  "scale": {"domain": [0, max(1, top) * 1.25], "nice": False}},
            "tooltip": [{"field": "combination", "title": "combination"},
                        {"field": "rows", "title": "paragraphs", "format": ","},
                        {"field": "share", "title": "share of scored", "format": ".0%"}],
        },
        "layer": [
            {"mark": {"type": "bar", "color": BAR_COLOR, "size": BAR_THICKNESS_PX}},
            {"mark": {"type": "text", "align": "left", "dx": 4, "color": LABEL_COLOR},
             "encoding": {"text": {"field": "label"}}},
        ],
    }


def horizontal_bars(values: list[dict[str, Any]], *, title: str, label_title: str, x: dict[str, Any],
                    bar_color: dict[str, Any] | str, tooltip: list[dict[str, Any]],
                    extra_layers: Sequence[VegaLiteSpec] = (), label_x: str,
                    label_expr: str | None = SHORT_LABEL_EXPR) -> VegaLiteSpec:
    """Horizontal bars, one per ``values`` record's ``label`` in the order given (top down),
    each with its ``text`` right of ``label_x``; shared by the Explore and Evaluate charts.
    ``x`` is the bars' x encoding (field ``x``), ``bar_color`` a colour or a colour encoding;
    ``label_expr`` shortens the axis labels (None: shown whole, up to LABEL_LIMIT_PX)."""
    order = [v["label"] for v in values]
    bar: VegaLiteSpec = {"mark": {"type": "bar", "size": BAR_THICKNESS_PX,
                                  **({"color": bar_color} if isinstance(bar_color, str) else {})},
                         "encoding": {"x": x, **({} if isinstance(bar_color, str) else {"color": bar_color})}}
    return {
        "title": title,
        "height": max(CHART_HEIGHT // 2, BAR_ROW_PX * len(values) + CHART_FRAME_PX),
        "data": {"values": values},
        "encoding": {
            "y": {"field": "label", "type": "nominal", "sort": order, "title": None,
                  "axis": {"labelLimit": LABEL_LIMIT_PX, **({"labelExpr": label_expr} if label_expr else {})}},
            "tooltip": [{"field": "label", "title": label_title}, *tooltip],
        },
        "layer": [
            bar,
            *extra_layers,
            # right of the bar (and of its interval), so it never sits on a bar or a whisker
            {"mark": {"type": "text", "align": "left", "dx": 4, "color": LABEL_COLOR},
             "encoding": {"x": {"field": label_x, "type": "quantitative"}, "text": {"field": "text"}}},
        ],
    }


def _share_bars(frame: pd.DataFrame, *, label_column: str, label_title: str, title: str,
                shorten: bool = True) -> VegaLiteSpec:
    values = [{"label": str(label), "x": float(share), "low": float(low), "high": float(high), "scored": int(n),
               "ones": int(ones), "text": f"{share:.0%} · n={int(n):,}", "interval": f"{low:.0%}–{high:.0%}"}
              for label, share, low, high, n, ones in zip(frame[label_column], frame["share"], frame["low"],
                                                          frame["high"], frame["scored"], frame["ones"])]
    spec = horizontal_bars(
        values, title=title, label_title=label_title, label_x="high", bar_color=BAR_COLOR,
        label_expr=SHORT_LABEL_EXPR if shorten else None,
        x={"field": "x", "type": "quantitative", "title": None, "scale": {"domain": [0, SHARE_AXIS_MAX], "nice": False},
           "axis": {"format": ".0%", "values": [0, 0.25, 0.5, 0.75, 1.0]}},
        tooltip=[{"field": "ones", "title": "scored 1", "format": ","},
                 {"field": "scored", "title": "scored (n)", "format": ","},
                 {"field": "x", "title": "share", "format": ".0%"},
                 {"field": "interval", "title": "95% interval"}],
        # the interval: a rule from low to high with a short tick at each end
        extra_layers=[{"mark": {"type": "errorbar", "color": INTERVAL_COLOR, "thickness": 1.5,
                                "ticks": {"color": INTERVAL_COLOR, "size": 8, "thickness": 1.5}},
                       "encoding": {"x": {"field": "low", "type": "quantitative"}, "x2": {"field": "high"}}}],
    )
    spec["height"] = max(CHART_HEIGHT, spec["height"])
    return spec


def job_progress(segments: list[dict[str, Any]]) -> VegaLiteSpec:
    """One horizontal bar per job (in the order given, top down), split into its progress parts
    (:func:`core.overview.progress_segments`: answered, failed, cancelled or expired, not yet
    run) as shares of the job, so a small and a large job read alike; the counts are in the
    tooltip and the legend names every part."""
    jobs = list(dict.fromkeys(str(s["job"]) for s in segments))
    parts = [PART_WORDS[p] for p in PROGRESS_PARTS]
    return {
        "title": "Progress of your newest jobs",
        # the height holds the title, the axis and the legend (two rows of two parts) too
        "height": JOB_ROW_PX * max(1, len(jobs)) + CHART_FRAME_PX + LEGEND_ROWS_PX,
        "data": {"values": segments},
        "mark": {"type": "bar", "size": JOB_BAR_PX},
        "encoding": {
            # each job's name above its bar, so the bars and the legend take the whole width
            # (a name left of the bar took half of a 390 px screen)
            "y": {"field": "job", "type": "nominal", "sort": jobs, "title": None,
                  "axis": {"labelAlign": "left", "labelBaseline": "bottom", "labelPadding": 0,
                           "labelOffset": -(JOB_BAR_PX // 2 + 2), "labelOverlap": False, "labelLimit": 0,
                           "ticks": False, "domain": False}},
            "x": {"field": "start", "type": "quantitative", "title": None,
                  "scale": {"domain": [0, 1], "nice": False}, "axis": {"format": ".0%", "values": [0, 0.5, 1]}},
            "x2": {"field": "end"},
            # two columns: the four parts fit a 390 px screen
            "color": {"field": "part", "type": "nominal", "title": None,
                      "scale": {"domain": parts, "range": [PART_COLOURS[p] for p in PROGRESS_PARTS]},
                      "legend": {"orient": "bottom", "columns": 2, "labelLimit": LABEL_LIMIT_PX}},
            "tooltip": [{"field": "job", "title": "job"}, {"field": "part", "title": "part"},
                        {"field": "count", "title": "count"}, {"field": "of", "title": "of"},
                        {"field": "share", "title": "share"}],
        },
    }
