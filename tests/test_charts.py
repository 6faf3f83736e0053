"""pages/_charts and pages/_evaluate_charts: the Vega-Lite specs are valid, read well and do not
mislead: every share carries its n and its 95 % interval, bars keep the order core gives them,
no single-entry legend, long names shortened on the axis only (presentation only; the browser
tests draw them)."""

from __future__ import annotations

import jsonschema
import pandas as pd
import pytest
from altair.vegalite.v6.schema import load_schema

from core.explore import scores_by
from pages import _charts as charts
from pages import _evaluate_charts as evaluate_charts

REPORTS = ["UNPRI_VerdanceAM_Responsible_Investment_Report_2024.pdf", "FfBF_TideWater_Annual_Report_2024.pdf", "short.pdf"]
TASK1 = "investment_activity_classification"
DIST = pd.DataFrame({"dimension": ["Score (task 1)"] * 2, "score": ["0", "1"], "rows": [23_200, 7_600]})
COMBOS = pd.DataFrame({"combination": ["none", "Cash flow"], "rows": [2_800, 12_000], "share": [0.2, 0.8]})
SHARES = pd.DataFrame({"dimension": ["Intrinsic value", "Cash flow", "Ownership / control"],
                       "scored": [40, 40, 40], "ones": [10, 30, 0], "share": [0.25, 0.75, 0.0],
                       "low": [0.14, 0.6, 0.0], "high": [0.4, 0.86, 0.09]})
KAPPAS = pd.DataFrame({"group": ["Investor A", "Investor B", "Investor C"], "n": [40, 12, 6],
                       "value": [0.5, -0.2, None], "text": ["n = 40 · 0.50", "n = 12 · -0.20", "n = 6 · undefined"]})

JOB_SEGMENTS = [  # core.overview.progress_segments of a cancelled job and a finished one
    {"job": "Spring run", "part": "answered", "count": "6,835 rows", "of": "20,000",
     "share": "34%", "start": 0.0, "end": 0.34175},
    {"job": "Spring run", "part": "cancelled or expired", "count": "13,165 rows", "of": "20,000",
     "share": "65%", "start": 0.34175, "end": 1.0},
    {"job": "job_2", "part": "answered", "count": "12 rows", "of": "12", "share": "100%",
     "start": 0.0, "end": 1.0},
]


def fifteen_investors() -> pd.DataFrame:
    """15 investors with 1 to 15 task-1 rows each, the first third of each scored 1."""
    investors, scores = [], []
    for i in range(15):
        n = i + 1
        investors += [f"Investor_with_a_long_name_{i}"] * n
        scores += [1 if k < max(1, n // 3) else 0 for k in range(n)]
    return pd.DataFrame({"task": TASK1, "investor": investors, "pdf_file_name": "",
                         "score": pd.array(scores, dtype="Int64")})


def layer(spec: dict, mark: str) -> dict:
    """The one layer of ``spec`` drawing ``mark``."""
    (found,) = [part for part in spec["layer"] if part["mark"]["type"] == mark]
    return found


def encodings(spec: dict) -> list[dict]:
    return [spec.get("encoding", {}), *[part.get("encoding", {}) for part in spec["layer"]]]


def all_specs() -> dict[str, dict]:
    groups = scores_by(fifteen_investors(), "investor")
    return {"distribution": charts.score_distribution(DIST), "by group": charts.scores_by(groups, "investor"),
            "combinations": charts.combinations(COMBOS), "dimension shares": charts.dimension_shares(SHARES),
            "job progress": charts.job_progress(JOB_SEGMENTS),
            "evaluate groups": evaluate_charts.group_bars(KAPPAS, metric_label="Cohen's kappa", by_label="investor",
                                                          overall=0.31)}


@pytest.mark.parametrize("name", list(all_specs()))
def test_every_spec_is_valid_vega_lite(name: str) -> None:
    validator = jsonschema.Draft7Validator(load_schema())  # the Vega-Lite schema Altair ships
    assert not validator.is_valid({"mark": {"type": "bars"}})  # the validator does reject a wrong spec
    errors = [e.message for e in validator.iter_errors(all_specs()[name])]
    assert not errors, errors[:3]


def test_every_share_shows_n_and_an_interval_sorted_as_given() -> None:
    groups = scores_by(fifteen_investors(), "investor")
    spec = charts.scores_by(groups, "investor")
    data = pd.DataFrame(spec["data"]["values"])
    assert list(data["label"]) == list(groups["group"])  # highest share first (core sorts) ...
    assert spec["encoding"]["y"]["sort"] == list(groups["group"])  # ... drawn top-down in that order
    bars = layer(spec, "bar")["encoding"]
    assert bars["x"]["field"] == "x" and spec["encoding"]["y"]["type"] == "nominal"  # horizontal: labels level
    assert list(data["x"]) == list(groups["share"])
    interval = layer(spec, "errorbar")["encoding"]  # the 95 % Wilson interval: a rule from low to high
    assert (interval["x"]["field"], interval["x2"]["field"]) == ("low", "high")
    assert list(data["low"]) == list(groups["low"]) and list(data["high"]) == list(groups["high"])
    assert list(data["scored"]) == list(groups["scored"]) and list(data["ones"]) == list(groups["ones"])
    label = layer(spec, "text")
    assert label["encoding"]["x"]["field"] == "high" and label["mark"]["align"] == "left"  # right of the whisker
    for text, n, share in zip(data["text"], groups["scored"], groups["share"]):
        assert text == f"{share:.0%} · n={n:,}"  # 100 % of 1 row reads differently from 100 % of 1,000
    assert not any("color" in e for e in encodings(spec))  # one colour, so no one-entry legend taking width
    assert spec["height"] >= 15 * charts.BAR_ROW_PX  # 15 bars keep their height
    assert spec["encoding"]["tooltip"][0] == {"field": "label", "title": "investor"}
    assert "Score (task 1)" in spec["title"]
    assert bars["x"]["axis"]["format"] == ".0%" and bars["x"]["scale"]["domain"] == [0, charts.SHARE_AXIS_MAX]


def test_long_report_names_are_shortened_on_the_axis_only() -> None:
    groups = pd.DataFrame({"group": REPORTS, "dimension": "Score (task 1)", "rows": 1, "scored": 1, "ones": 1,
                           "share": 1.0, "low": 0.2, "high": 1.0})
    spec = charts.scores_by(groups, "report")
    assert [v["label"] for v in spec["data"]["values"]] == REPORTS  # every bar keeps its full name (tooltip)
    axis = spec["encoding"]["y"]["axis"]
    # shortened in the browser: ".pdf" dropped, cut to TICK_CHARS with an ellipsis, never wider
    # than LABEL_LIMIT_PX (the browser test reads the drawn labels)
    assert axis["labelExpr"] == charts.SHORT_LABEL_EXPR and f", {charts.TICK_CHARS})" in axis["labelExpr"]
    assert "pdf" in axis["labelExpr"] and axis["labelLimit"] == charts.LABEL_LIMIT_PX
    assert spec["title"] == "Share scored 1 by report: Score (task 1)"


def test_dimension_shares_show_n_and_interval_in_task_order() -> None:
    spec = charts.dimension_shares(SHARES)
    data = pd.DataFrame(spec["data"]["values"])
    assert list(data["label"]) == list(SHARES["dimension"]) == spec["encoding"]["y"]["sort"]
    assert list(data["text"]) == ["25% · n=40", "75% · n=40", "0% · n=40"]
    assert list(data["interval"]) == ["14%–40%", "60%–86%", "0%–9%"]
    assert not any("color" in e for e in encodings(spec))
    assert "labelExpr" not in spec["encoding"]["y"]["axis"]  # "Ownership / control" whole
    assert layer(spec, "bar")["mark"]["size"] == charts.BAR_THICKNESS_PX  # three bars, not three slabs


def test_count_labels_have_thousands_separators_and_read_level() -> None:
    dist = charts.score_distribution(DIST)
    assert [v["label"] for v in dist["data"]["values"]] == ["23,200", "7,600"]
    assert dist["encoding"]["x"]["axis"]["labelAngle"] == 0 and "angle" not in layer(dist, "text")["mark"]
    assert layer(dist, "text")["mark"]["baseline"] == "bottom"  # above the bar, never squeezed inside it
    assert dist["encoding"]["y"]["scale"]["domain"][1] > 23_200  # room above the tallest bar for its count
    assert dist["encoding"]["y"]["axis"]["format"] == ",d"  # "50,000" on the axis, never "5e+4"
    combos = charts.combinations(COMBOS)
    assert [v["label"] for v in combos["data"]["values"]] == ["2,800", "12,000"]
    assert combos["encoding"]["y"]["sort"] == ["none", "Cash flow"]  # the order core gives, top down
    # a combination's dimensions on lines of their own, so the longest fits beside the bars at 390 px
    assert combos["encoding"]["y"]["axis"]["labelExpr"] == charts.COMBINATION_LINES_EXPR
    assert not any("color" in e for e in encodings(combos))


def test_score_legend_is_titled_above_the_plot_and_lists_only_scores_present() -> None:
    dist = pd.DataFrame({"dimension": ["Score (task 1)"] * 2 + ["Cash flow"] * 3, "score": ["0", "1", "0", "1", "no score"],
                         "rows": [3, 2, 1, 1, 1]})
    spec = charts.score_distribution(dist)
    color = layer(spec, "bar")["encoding"]["color"]
    assert color["legend"]["title"] == "score" and color["legend"]["orient"] == "top"  # takes no width from bars
    assert color["scale"]["domain"] == ["0", "1", "no score"]
    assert color["scale"]["range"] == [charts.SCORE_COLORS[s] for s in ("0", "1", "no score")]
    assert spec["encoding"]["x"]["sort"] == ["Score (task 1)", "Cash flow"]  # task order
    only_scored = charts.score_distribution(DIST)
    assert layer(only_scored, "bar")["encoding"]["color"]["scale"]["domain"] == ["0", "1"]


def test_evaluate_group_bars_run_from_minus_one_and_grey_an_undefined_figure() -> None:
    spec = evaluate_charts.group_bars(KAPPAS, metric_label="Cohen's kappa", by_label="investor", overall=0.31)
    data = pd.DataFrame(spec["data"]["values"])
    assert list(data["label"]) == list(KAPPAS["group"]) == spec["encoding"]["y"]["sort"]  # largest group on top
    assert list(data["text"]) == list(KAPPAS["text"]) and list(data["n"]) == [40, 12, 6]
    assert list(data["x"]) == [0.5, -0.2, 0.0] and list(data["at"]) == [0.5, 0.0, 0.0]  # labels right of zero
    x = layer(spec, "bar")["encoding"]["x"]
    assert x["scale"]["domain"][0] == -1.0  # a kappa below zero has room
    color = layer(spec, "bar")["encoding"]["color"]
    assert color["legend"] is None and color["scale"]["range"] == [charts.BAR_COLOR, evaluate_charts.UNDEFINED_COLOR]
    assert spec["title"] == "Cohen's kappa by investor (all paragraphs: 0.31)"
    positive = evaluate_charts.group_bars(KAPPAS.iloc[:1], metric_label="F1", by_label="report", overall=None)
    assert layer(positive, "bar")["encoding"]["x"]["scale"]["domain"][0] == 0.0 and positive["title"] == "F1 by report"
