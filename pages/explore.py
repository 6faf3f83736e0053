"""Explore page: load collected results, filter them, chart them, read and download them."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core.columns import input_columns
from core.errors import CoreError
from core.evaluate.view.agreement_note import agreement_note
from core.explore import (
    FILE_ORDER,
    INVESTOR_COLUMN,
    NO_SCORE,
    PAGE_SIZE,
    REPORT_COLUMN,
    SCORE_COLUMNS,
    SORT_COLUMNS,
    TASK2_PREFIX,
    Filters,
    ResultsView,
    collected_jobs,
    download_name,
    load_results,
    markdown_literal,
    page_count,
    paragraph_frame,
    result_files_signature,
    row_detail,
    score_label,
    short_meaning,
    shown_filters,
    task_title,
    to_csv_bytes,
    to_xlsx_bytes,
    with_investors,
)
from core.investors import InvestorMap, load_investor_map, mapping_table, save_investor_map, updated_map
from core.models import Job
from core.tasks import ASSETIZATION_FEATURES
from pages import _charts as charts
from pages._shared import EVALUATE_PAGE, FOCUS_JOB, MONITOR_PAGE, SUBMIT_PAGE, ensure_router, focus_job, service

ensure_router()

DETAIL = "explore_detail"  # (loaded job ids, frame index) of the row whose detail is open
INVESTOR_DIALOG = "explore_investor_dialog"  # True while the investor-names dialog is open
INVESTOR_SAVED = "explore_investor_saved"  # the names were just saved: say so once
FILE_NAME_SOURCE = "file name (second _ part)"
TABLE_ROW_PX = 88
TABLE_HEIGHT_PX = 640


# Resources, not data: every session shares the same objects, never copies of 100,000 rows.
# Nothing changes them (core.explore.view derives new frames); a new version of the files
# (``signature``: their paths, mtimes and sizes) or of the investor names is a new key.
@st.cache_resource(max_entries=3, show_spinner=False)
def _stacked(signature: tuple, _jobs: tuple[Job, ...]) -> pd.DataFrame:
    """The result files of the jobs, read once per version of the files."""
    return load_results(list(_jobs))


@st.cache_resource(max_entries=3, show_spinner=False)
def _results(signature: tuple, mapping_key: str, _jobs: tuple[Job, ...], _mapping: InvestorMap) -> ResultsView:
    """One row per paragraph, investors named as the saved mapping says, and what the page
    derives from them."""
    return ResultsView(paragraph_frame(with_investors(_stacked(signature, _jobs), _mapping), list(_jobs)), _jobs)


def job_label(job: Job) -> str:
    name = job.name or job.id
    return f"{name} · {task_title(job.task)} · {job.n_rows:,} rows"


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
chosen = st.multiselect("Jobs to load", list(by_id), key="explore_jobs", format_func=lambda j: job_label(by_id[j]),
                        help="Load a task-1 job and its task-2 job together to read both tasks' scores "
                             "side by side: one row per paragraph.")
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

chosen_jobs = tuple(by_id[j] for j in chosen)
try:
    mapping = load_investor_map(svc.settings.data_dir)
    signature = result_files_signature(chosen_jobs)
    with st.spinner("Loading results…"):
        view = _results(signature, json.dumps(mapping.to_record(), sort_keys=True), chosen_jobs, mapping)
except CoreError as exc:
    st.error(str(exc))
    st.stop()

# ----- investor names ---------------------------------------------------------------------------

def set_investor_dialog(is_open: bool) -> None:
    """Open or close the investor-names dialog (it stays open across the page's reruns until
    saved or dismissed)."""
    st.session_state[INVESTOR_DIALOG] = is_open


def close_investor_dialog() -> None:
    """Dismissed (its close button, Escape or a click outside): not opened again on the next run."""
    set_investor_dialog(False)


@st.dialog("Investor names", width="large", icon=":material/badge:", on_dismiss=close_investor_dialog)
def investor_names(results: pd.DataFrame, saved: InvestorMap) -> None:
    """Pick where the investor comes from and correct the names; saved in the data folder.
    A dialog, so its editor is drawn only when asked for, not on every run of the page."""
    st.caption("The investor is guessed from the report's file name (its second `_` part: `FfBF_NordicPension_…` "
               "→ NordicPension). Take it from a column of your input files instead, or correct the names "
               "below. Saved in the data folder and used in the charts, the filters, the downloads and "
               "the command line.")
    columns = [c for c in input_columns(results.columns) if not c.startswith(TASK2_PREFIX)]
    sources = [FILE_NAME_SOURCE, *columns]
    source = st.selectbox("Take the investor from", sources, key="explore_investor_source",
                          index=sources.index(saved.column) if saved.column in sources else 0)
    draft = InvestorMap(column=None if source == FILE_NAME_SOURCE else source, names=saved.names)
    edited = st.data_editor(
        mapping_table(results, draft), key="explore_investor_editor", hide_index=True, width="stretch",
        disabled=["found", "reports", "rows"],
        column_config={"found": st.column_config.TextColumn("found in file name" if draft.column is None
                                                            else f"found in {draft.column}"),
                       "investor": st.column_config.TextColumn("investor (edit)", help="Leave empty to keep "
                                                               "the name found."),
                       "reports": st.column_config.NumberColumn("reports", format="%d"),
                       "rows": st.column_config.NumberColumn("rows", format="%d")},
    )
    if st.button("Save investor names", key="explore_investor_save", icon=":material/save:", type="primary"):
        try:
            save_investor_map(svc.settings.data_dir, updated_map(saved, edited, column=draft.column))
        except CoreError as exc:
            st.error(str(exc))
        else:
            set_investor_dialog(False)
            st.session_state[INVESTOR_SAVED] = True  # toasted by the run the rerun starts, which keeps it
            st.rerun()


if st.session_state.pop(INVESTOR_SAVED, False):
    st.toast("Investor names saved.", icon=":material/check_circle:")
st.button("Investor names", key="explore_investor_open", icon=":material/badge:", on_click=set_investor_dialog,
          args=(True,), help="Where the investor of each row comes from, and corrections to the names.")
if st.session_state.get(INVESTOR_DIALOG):
    investor_names(view.frame, mapping)

# ----- filters -------------------------------------------------------------------------------
frame = view.frame
options = view.options
FILTER_WIDGETS = {  # filter -> (label, widget key, format)
    "tasks": ("Task answered", "explore_f_task", task_title),
    "jobs": ("Job", "explore_f_job", lambda j: by_id[j].name or j if j in by_id else j),
    "sources": ("Source file", "explore_f_source", str),
    "reports": ("Report (pdf_file_name)", "explore_f_report", str),
    "investors": ("Investor", "explore_f_investor", lambda v: v or "(unknown)"),
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
    meanings = view.meanings
    if score_cols:
        for col, column in zip(st.columns(len(score_cols)), score_cols):
            picked = col.multiselect(score_label(column), [0, 1, NO_SCORE], key=f"explore_f_{column}",
                                     help=short_meaning(meanings.get(column, "")) or None)
            if picked:
                score_filters[column] = picked
    text = st.text_input("Search paragraph and explanation", key="explore_f_text",
                         placeholder="e.g. mangrove, green bond")

matching = view.matching(Filters(**narrow_to, scores=score_filters, text=text))
shown, filtered = matching.rows, matching.filtered
noun = "paragraphs" if "task" not in frame.columns else "rows"
st.markdown(f"**{len(shown):,}** of {len(frame):,} {noun} match.")
if shown.empty:
    st.info("No row matches these filters. Remove a filter to see rows again.")
    st.stop()

with st.expander("What the scores mean", icon=":material/help:"):
    st.caption("Quoted from the criteria in the job's prompt, the words the model was given.")
    for column in score_cols:
        st.markdown(f"**{score_label(column)}**")
        st.text(meanings.get(column, ""))

# ----- charts ----------------------------------------------------------------------------------
with st.container(horizontal=True, key="explore_chart_options"):
    by = st.radio("Group the share chart by", [INVESTOR_COLUMN, REPORT_COLUMN], horizontal=True,
                  key="explore_group_by", format_func=lambda c: "investor" if c == INVESTOR_COLUMN else "report")
    present = matching.present
    dimension = st.selectbox("Score shown by group", present, key="explore_chart_dimension", format_func=score_label,
                             width=260) if len(present) > 1 else (present[0] if present else None)
c1, c2 = st.columns(2)
dist = matching.distribution
if not dist.empty:
    c1.vega_lite_chart(spec=charts.score_distribution(dist), key="explore_chart_dist", width="stretch")
groups, groups_note = matching.by_group(by, (dimension,) if dimension else None)
by_label = "investor" if by == INVESTOR_COLUMN else "report"
if not groups.empty:
    c2.vega_lite_chart(spec=charts.scores_by(groups, by_label), key="explore_chart_by", width="stretch")
notes = ["Bars: share of scored paragraphs with score 1, the line its 95% (Wilson) interval, n the "
         "scored paragraphs."]
if groups_note:
    notes.append(groups_note)
c2.caption(" ".join(notes))
if dimension and dimension in meanings:
    c2.caption(f"{score_label(dimension)}: {short_meaning(meanings[dimension])}")
if any(c in present for c in ASSETIZATION_FEATURES.score_columns):
    c3, c4 = st.columns(2)
    c3.vega_lite_chart(spec=charts.combinations(matching.combinations), key="explore_chart_combos",
                       width="stretch")
    c4.vega_lite_chart(spec=charts.dimension_shares(matching.dimension_shares), key="explore_chart_shares",
                       width="stretch")

# ----- table, row detail and downloads ----------------------------------------------------------
st.markdown("**Paragraphs**")
sortable = [FILE_ORDER, *[c for c in SORT_COLUMNS if c in shown.columns and (c not in SCORE_COLUMNS or c in present)]]
with st.container(horizontal=True, vertical_alignment="bottom", key="explore_table_options"):
    sort_by = st.selectbox("Sort by", sortable, key="explore_sort", width=220,
                           format_func=lambda c: score_label(c) if c in SCORE_COLUMNS else c.replace("_", " "))
    descending = st.toggle("Descending", key="explore_sort_desc")
    pages = page_count(len(shown))
    page = int(st.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1,
                               key="explore_page", width=150)) if pages > 1 else 1
page = min(page, pages)
rows = matching.page(sort_by, descending, page)
first = (page - 1) * PAGE_SIZE
st.caption(f"Rows {first + 1:,}–{first + len(rows):,} of {len(shown):,}"
           + (f", sorted by {sort_by.replace('_', ' ')} on all of them" if sort_by != FILE_ORDER else "")
           + ". Select a row to read it in full below; the downloads hold every matching row.")
with st.container(horizontal=True, key="explore_downloads"):  # side by side, whatever the page width
    st.download_button("Download CSV", data=lambda: to_csv_bytes(shown),
                       file_name=download_name(chosen_jobs, shown, filtered=filtered, suffix=".csv"),
                       mime="text/csv", key="explore_download_csv", icon=":material/download:", on_click="ignore")
    # The bytes are made when the button is pressed (deferred): meanwhile Streamlit turns the
    # button's icon into a spinner and disables it, so the wait is visible.
    # A sheet the rows do not fit is refused here, with the reason: a deferred download that
    # fails shows only Streamlit's "Failed to generate file".
    excel_refused = matching.excel_problem
    st.download_button("Download Excel", data=lambda: to_xlsx_bytes(shown), disabled=excel_refused is not None,
                       help=excel_refused or (
                           f"Writing {len(shown):,} rows to Excel takes a while (about 20 s per 100,000 rows on a "
                           "2-core machine); the button shows a spinner meanwhile. The CSV is ready at once."
                           if len(shown) > 20_000 else None),
                       file_name=download_name(chosen_jobs, shown, filtered=filtered, suffix=".xlsx"),
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                       key="explore_download_xlsx", icon=":material/download:", on_click="ignore")
score_help = {c: short_meaning(meanings.get(c, "")) or None for c in score_cols}
event = st.dataframe(
    rows, hide_index=True, key="explore_table", on_select="rerun", selection_mode="single-row",
    # rows taller than 4rem let Streamlit wrap text: four lines of the paragraph, not one
    row_height=TABLE_ROW_PX, height=TABLE_HEIGHT_PX,
    column_config={
        "paragraph_text": st.column_config.TextColumn("paragraph", width="large"),
        "explanation": st.column_config.TextColumn("explanation" + (" (task 1)" if "task2_explanation" in rows
                                                                   else ""), width="medium"),
        "task2_explanation": st.column_config.TextColumn("explanation (task 2)", width="medium"),
        "score": st.column_config.TextColumn("task 1", width=60, help=score_help.get("score")),
        "intrinsic_value_score": st.column_config.TextColumn("intrinsic", width=70,
                                                             help=score_help.get("intrinsic_value_score")),
        "cash_flow_score": st.column_config.TextColumn("cash flow", width=75, help=score_help.get("cash_flow_score")),
        "ownership_control_score": st.column_config.TextColumn("ownership", width=80,
                                                               help=score_help.get("ownership_control_score")),
        INVESTOR_COLUMN: st.column_config.TextColumn("investor", width=115),
        REPORT_COLUMN: "report", "status_reason": "reason", "job_id": "job", "task2_job_id": "job (task 2)",
        "task2_status": "status (task 2)", "task2_status_reason": "reason (task 2)", "csv_file_name": "source file",
    },
)
selected = event.selection.rows if event is not None and hasattr(event, "selection") else []
if selected and selected[0] < len(rows):
    st.session_state[DETAIL] = (tuple(chosen), rows.index[selected[0]])
opened = st.session_state.get(DETAIL)
detail_index = opened[1] if isinstance(opened, tuple) and opened[0] == tuple(chosen) else None
with st.container(border=True, key="explore_detail_box"):
    if detail_index is None or detail_index not in shown.index:
        st.caption("Select a row in the table to read the paragraph, both tasks' answers and every input column.")
    else:
        detail = row_detail(shown, detail_index)
        st.markdown("**Paragraph**")
        st.markdown(markdown_literal(detail[0][1]))
        fields = pd.DataFrame(detail[1:], columns=["field", "value"])
        st.dataframe(fields, hide_index=True, width="stretch", key="explore_detail_fields",
                     column_config={"field": st.column_config.TextColumn(width="medium"),
                                    "value": st.column_config.TextColumn(width="large")})
