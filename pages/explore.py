"""Explore page: load collected results, filter them, chart them, read and download them."""

from __future__ import annotations

import streamlit as st

from core.errors import CoreError
from core.evaluate.view import agreement_note
from core.explore import (
    INVESTOR_COLUMN,
    NO_SCORE,
    REPORT_COLUMN,
    TABLE_ROW_LIMIT,
    Filters,
    apply_filters,
    collected_jobs,
    combination_counts,
    dimension_shares,
    filter_options,
    load_results,
    score_distribution,
    scores_by,
    scores_by_note,
    shown_filters,
    table_rows,
    task_title,
    to_csv_bytes,
    to_xlsx_bytes,
    score_label,
)
from core.tasks import ASSETIZATION_FEATURES
from pages import _charts as charts
from pages._shared import EVALUATE_PAGE, FOCUS_JOB, MONITOR_PAGE, SUBMIT_PAGE, focus_job, service, ensure_router

ensure_router()

LOADED = "explore_loaded"  # (job keys, frame): the loaded results of this session

svc = service()
st.title("Explore results")

try:
    jobs = collected_jobs(svc.list_jobs())
except CoreError as exc:
    st.error(str(exc))
    st.stop()

if not jobs:
    st.info("No results yet. Submit a job, then collect it when it has finished (the Monitor page does "
            "this by itself).")
    c1, c2 = st.columns(2)
    c1.page_link(SUBMIT_PAGE, label="Go to Submit", icon=":material/upload_file:")
    c2.page_link(MONITOR_PAGE, label="Go to Monitor", icon=":material/monitoring:")
    st.stop()

by_id = {j.id: j for j in jobs}
if "explore_jobs" not in st.session_state or not set(st.session_state["explore_jobs"]) <= set(by_id):
    focus = st.session_state.get(FOCUS_JOB)
    st.session_state["explore_jobs"] = [focus if focus in by_id else jobs[0].id]
chosen = st.multiselect(
    "Jobs to load", list(by_id), key="explore_jobs",
    format_func=lambda j: f"{j} · {task_title(by_id[j].task)} · {by_id[j].n_rows:,} rows",
)
if not chosen:
    st.info("Choose one or more jobs to load their results.")
    st.stop()
for job_id in chosen:  # the latest agreement with human labels of each evaluated job, and where to see more
    if note := agreement_note(by_id[job_id]):
        with st.container(horizontal=True, vertical_alignment="center", gap=None, key=f"explore_agreement_{job_id}"):
            st.caption(f"{job_id}: {note}" if len(chosen) > 1 else note, width="content")
            if st.button("Details on Evaluate", key=f"explore_evaluate_{job_id}", type="tertiary",
                         icon=":material/fact_check:", on_click=focus_job, args=(job_id,)):
                st.switch_page(EVALUATE_PAGE)

keys = tuple((j, by_id[j].collected_at) for j in chosen)
loaded = st.session_state.get(LOADED)
if loaded is None or loaded[0] != keys:
    try:
        with st.spinner("Loading results…"):
            frame = load_results([by_id[j] for j in chosen])
    except CoreError as exc:
        st.error(str(exc))
        st.stop()
    st.session_state[LOADED] = (keys, frame)
else:
    frame = loaded[1]

# ----- filters -------------------------------------------------------------------------------
options = filter_options(frame)
FILTER_WIDGETS = {  # filter -> (label, widget key, format)
    "tasks": ("Task", "explore_f_task", task_title),
    "jobs": ("Job", "explore_f_job", str),
    "sources": ("Source file", "explore_f_source", str),
    "reports": ("Report (pdf_file_name)", "explore_f_report", str),
    "investors": ("Investor", "explore_f_investor", str),
    "statuses": ("Row status", "explore_f_status", str),
}
narrow_to: dict[str, list[str]] = {}
with st.container(border=True):
    st.markdown("**Filters**")
    names = shown_filters(options)
    per_row = len(names) if len(names) <= 4 else 3
    for start in range(0, len(names), per_row):
        for col, name in zip(st.columns(per_row), names[start:start + per_row]):
            label, key, fmt = FILTER_WIDGETS[name]
            narrow_to[name] = col.multiselect(label, options[name], format_func=fmt, key=key)
    score_filters = {}
    score_cols = options["score_columns"]
    if score_cols:
        r3 = st.columns(len(score_cols))
        for col, column in zip(r3, score_cols):
            picked = col.multiselect(score_label(column), [0, 1, NO_SCORE], key=f"explore_f_{column}")
            if picked:
                score_filters[column] = picked
    text = st.text_input("Search paragraph and explanation", key="explore_f_text",
                         placeholder="e.g. mangrove, green bond")

filters = Filters(**narrow_to, scores=score_filters, text=text)
shown = apply_filters(frame, filters)
st.markdown(f"**{len(shown):,}** of {len(frame):,} rows match.")
if shown.empty:
    st.info("No row matches these filters. Remove a filter to see rows again.")
    st.stop()

# ----- charts ----------------------------------------------------------------------------------
by = st.radio("Group the right-hand chart by", [INVESTOR_COLUMN, REPORT_COLUMN], horizontal=True,
              key="explore_group_by", format_func=lambda c: "investor" if c == INVESTOR_COLUMN else "report")
c1, c2 = st.columns(2)
dist = score_distribution(shown)
if not dist.empty:
    c1.plotly_chart(charts.score_distribution(dist), key="explore_chart_dist", width="stretch")
groups = scores_by(shown, by)
if not groups.empty:
    c2.plotly_chart(charts.scores_by(groups, "investor" if by == INVESTOR_COLUMN else "report"),
                    key="explore_chart_by", width="stretch")
    if note := scores_by_note(shown, by):
        c2.caption(note)
if (shown["task"] == ASSETIZATION_FEATURES.name).any():
    c3, c4 = st.columns(2)
    c3.plotly_chart(charts.combinations(combination_counts(shown)), key="explore_chart_combos", width="stretch")
    c4.plotly_chart(charts.dimension_shares(dimension_shares(shown)), key="explore_chart_shares", width="stretch")

# ----- table and downloads -----------------------------------------------------------------
st.markdown("**Paragraphs**")
if len(shown) > TABLE_ROW_LIMIT:
    st.caption(f"Showing the first {TABLE_ROW_LIMIT:,} of {len(shown):,} rows; the downloads hold all of them.")
with st.container(horizontal=True, key="explore_downloads"):  # side by side, whatever the page width
    st.download_button("Download CSV", data=lambda: to_csv_bytes(shown), file_name="results_filtered.csv",
                       mime="text/csv", key="explore_download_csv", icon=":material/download:", on_click="ignore")
    st.download_button("Download Excel", data=lambda: to_xlsx_bytes(shown), file_name="results_filtered.xlsx",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                       key="explore_download_xlsx", icon=":material/download:", on_click="ignore")
st.dataframe(table_rows(shown), hide_index=True, key="explore_table",
             column_config={"paragraph_text": st.column_config.TextColumn("paragraph", width="large"),
                            "explanation": st.column_config.TextColumn("explanation", width="large"),
                            **{c: st.column_config.TextColumn(score_label(c), width=135) for c in score_cols},
                            REPORT_COLUMN: "report", "status_reason": "reason", "job_id": "job",
                            "csv_file_name": "source file"})
