"""Evaluate page: a job's labels against human coders (figures with intervals, confusion
matrices, per-group figures, the disagreements), two or more jobs against each other, and the
methods record. A thin view: everything shown comes from core.evaluate."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.errors import CoreError
from core.evaluate import DEFAULT_MIN_GROUP, MATCH_ON
from core.evaluate.view.comparison import (
    comparison_csv,
    comparison_disagreement_rows,
    comparison_jobs,
    comparison_overall,
    comparison_pairs,
)
from core.evaluate.view.disagreements import (
    KINDS,
    KIND_HELP,
    disagreement_detail,
    disagreement_line,
    disagreement_rows,
    disagreements_csv,
)
from core.evaluate.view.evaluation_view import EvaluationView, saved_key, saved_view
from core.evaluate.view.formatting import answer_label
from core.evaluate.view.methods_record import manifest_json_bytes, manifest_markdown_bytes
from core.evaluate.view.pickers import (
    LABELS_FOLDER,
    compare_defaults,
    detected_label_columns,
    evaluable_jobs,
    job_option_label,
    label_column_specs,
    label_file_columns,
    label_files,
    source_tag,
)
from core.evaluate.view.tables import (
    GROUPINGS,
    GROUP_METRICS,
    confusion_caption,
    confusion_table,
    counts_line,
    evaluated_line,
    figures_csv,
    figures_table,
    group_note,
    group_table,
    headline,
    left_out,
    list_csv,
)
from core.tasks import TASKS
from pages import _evaluate_charts as charts
from pages._shared import FOCUS_JOB, MONITOR_PAGE, SUBMIT_PAGE, focus_job, guard, service, ensure_router

ensure_router()

RESULTS = "evaluate_results"  # job id -> EvaluationView of an evaluation run in this session
EVALUATIONS = "evaluate_evaluations"  # job id -> the Evaluation itself (its lists whole, for this session)
SAVED = "evaluate_saved"  # job id -> (saved files key, EvaluationView | None) read from the job folder
COLUMNS = "evaluate_file_columns"  # source tag -> the labels file's column names
COLUMNS_FOR = "evaluate_columns_for"  # (source tag, job id) the column pickers were filled for
COMPARISON = "evaluate_comparison"  # (job ids, Comparison)
NOT_USED = "(not evaluated)"
ALL_KINDS = "both"
ALL_ANSWERS = "all"
UPLOAD, FROM_FOLDER = "Upload a file", "A file in the data folder"
MATCH_TEXT = {"text": "paragraph text", "text+report": "paragraph text and report (pdf_file_name)"}

svc = service()
cfg = svc.settings
st.title("Evaluate labels")
st.caption("How far the model's labels agree with human coders and with other runs, with 95% bootstrap "
           "intervals, and the methods record to cite them.")

try:
    jobs = evaluable_jobs(svc.list_jobs())
except CoreError as exc:
    st.error(str(exc))
    st.stop()

if not jobs:
    st.info("No collected job yet. Submit a job, wait for it to finish (the Monitor page collects its results), "
            "then come back here with a file of human labels for some of its paragraphs.")
    c1, c2 = st.columns(2)
    c1.page_link(SUBMIT_PAGE, label="Go to Submit", icon=":material/upload_file:")
    c2.page_link(MONITOR_PAGE, label="Go to Monitor", icon=":material/monitoring:")
    st.stop()

by_id = {j.id: j for j in jobs}


def labels_source() -> tuple[object | None, str]:
    """The labels file chosen (an upload as (name, bytes), or a path), and a hint when none is."""
    mode = st.radio("Human labels", [UPLOAD, FROM_FOLDER], horizontal=True, key="evaluate_labels_mode")
    if mode == UPLOAD:
        upload = st.file_uploader(
            "CSV or Excel file: one row per paragraph (and annotator), a `paragraph_text` column and a label column "
            "named like the answer (`score`; for task 2 `intrinsic_value_score`, ...), labels 0/1, true/false or yes/no",
            type=["csv", "xlsx", "tsv", "txt"], key="evaluate_upload")
        if upload is None:
            return None, "Upload a labels file (or pick one from the data folder) to evaluate this job."
        return (upload.name, upload.getvalue()), ""
    folder = cfg.data_dir / LABELS_FOLDER
    files = label_files(cfg.data_dir)
    if not files:
        return None, (f"No CSV/XLSX file in `{folder}` or directly in `{cfg.data_dir}`. Put labels files there, "
                      "or upload one.")
    if st.session_state.get("evaluate_labels_path") not in files:
        st.session_state.pop("evaluate_labels_path", None)
    path = st.selectbox("Labels file", files, key="evaluate_labels_path",
                        format_func=lambda p: str(Path(p).relative_to(cfg.data_dir)))
    return path, ""


def column_pickers(source: object, task_name: str, job_id: str) -> dict[str, str | None] | None:
    """A picker per answer column, filled with the file column found by name; None when the
    file cannot be read (the reason is shown)."""
    tag = source_tag(source)  # type: ignore[arg-type]
    cache = st.session_state.setdefault(COLUMNS, {})
    if tag not in cache:
        try:
            cache.clear()  # one labels file at a time is enough to remember
            cache[tag] = label_file_columns(source)  # type: ignore[arg-type]
        except CoreError as exc:
            st.error(str(exc))
            return None
    file_columns = cache[tag]
    task = TASKS[task_name]
    detected = detected_label_columns(task, file_columns)
    if st.session_state.get(COLUMNS_FOR) != (tag, job_id):  # a new file or job: start from what the names say
        st.session_state[COLUMNS_FOR] = (tag, job_id)
        for answer, column in detected.items():
            st.session_state[f"evaluate_col_{answer}"] = column or NOT_USED
    chosen: dict[str, str | None] = {}
    pickers = st.columns(len(task.score_columns))
    for picker, answer in zip(pickers, task.score_columns):
        value = picker.selectbox(f"Labels for {answer_label(answer)}", [NOT_USED, *file_columns],
                                 key=f"evaluate_col_{answer}")
        chosen[answer] = None if value == NOT_USED else value
    return chosen


def show_evaluation(view: EvaluationView, job_id: str) -> None:
    """Figures, confusion matrices, per-group chart, disagreements, what was left out, downloads."""
    st.subheader("Agreement with human labels")
    saved_note = (" Saved with the job; shown again whenever you come back." if view.from_saved_file
                  else " Computed now and saved with the job.")
    st.caption(evaluated_line(view) + saved_note)
    with st.container(horizontal=True, key="evaluate_headline"):
        for label, value in headline(view):
            st.metric(label, value, border=True, width="content")
    st.markdown(counts_line(view))

    st.markdown("**Figures** (positive class 1; 95% percentile-bootstrap intervals in brackets)")
    st.dataframe(figures_table(view), hide_index=True, key="evaluate_figures")

    st.markdown("**Confusion matrices** (rows: human label, columns: model label)")
    for start in range(0, len(view.columns), 3):
        row = view.columns[start:start + 3]
        for place, column in zip(st.columns(3), row):
            place.markdown(answer_label(column))
            place.table(charts.confusion_style(confusion_table(view, column)))
            place.caption(confusion_caption(view, column))

    # ----- per group ---------------------------------------------------------------------------
    st.markdown("**By investor and by report**")
    g1, g2, g3 = st.columns(3)
    by = g1.radio("Group by", list(GROUPINGS), horizontal=True, key="evaluate_group_by")
    metric = g2.selectbox("Figure", list(GROUP_METRICS), format_func=GROUP_METRICS.get, key="evaluate_group_metric")
    column = view.columns[0]
    if len(view.columns) > 1:
        column = g3.selectbox("Answer", view.columns, format_func=answer_label, key="evaluate_group_column")
    groups = group_table(view, by, column, metric)
    note = group_note(view, by, column)
    if groups.empty:
        st.info(note or f"No {by} to show.")
    else:
        st.vega_lite_chart(spec=charts.group_bars(groups, metric_label=GROUP_METRICS[metric], by_label=GROUPINGS[by],
                                                  overall=view.metrics[column].get(metric)),
                           key="evaluate_group_chart", width="stretch")
        if note:
            st.caption(note)

    # ----- disagreements -------------------------------------------------------------------------
    st.markdown("**Disagreements**: paragraphs where the model and the (majority) human label differ")
    d1, d2 = st.columns([3, 2])
    picked_kind = d1.radio("Show", [ALL_KINDS, *KINDS], horizontal=True, key="evaluate_dis_kind",
                           format_func=lambda k: "both" if k == ALL_KINDS else f"{KINDS[k]}s ({KIND_HELP[k]})")
    kind = None if picked_kind == ALL_KINDS else picked_kind
    dis_column = None
    if len(view.columns) > 1:
        picked_column = d2.selectbox("Answer", [ALL_ANSWERS, *view.columns], key="evaluate_dis_column",
                                     format_func=lambda c: "all answers" if c == ALL_ANSWERS else answer_label(c))
        dis_column = None if picked_column == ALL_ANSWERS else picked_column
    shown = disagreement_rows(view, dis_column, kind)
    st.caption(disagreement_line(view, dis_column, kind))
    if shown.empty:
        st.info("No disagreement of this kind." if kind else "The model and the human labels agree on every "
                                                              "compared paragraph.")
    else:
        table = st.dataframe(shown, hide_index=True, key="evaluate_disagreements", on_select="rerun",
                             selection_mode="single-row",
                             column_config={"paragraph": st.column_config.TextColumn("paragraph", width="large"),
                                            "model's explanation": st.column_config.TextColumn(width="large")})
        selected = table.selection.rows if table is not None else []
        position = selected[0] if selected else 0
        detail = disagreement_detail(view, dis_column, kind, position)
        with st.container(border=True, key="evaluate_disagreement_detail"):
            st.caption(f"Disagreement {position + 1:,} of {len(shown):,} in full (select a row above to read "
                       "another)")
            st.markdown(f"**{detail['kind']}** · {detail['answer']} · human **{detail['human']}** · "
                        f"model **{detail['model']}**")
            # paragraph, explanation and names come from files and the model: shown as text, never as Markdown
            st.text(detail["paragraph"], width="stretch")
            st.markdown("**The model's explanation**")
            st.text(detail["explanation"] or "(none)", width="stretch")
            st.text(f"Report: {detail['report'] or '(none)'} · annotators: {detail['annotators'] or '(not named)'} · "
                    f"labels file rows {detail['human_rows']} · job rows {detail['custom_ids']}", width="stretch")

    # ----- what was left out -------------------------------------------------------------------
    lists = left_out(view)
    if lists:
        with st.expander("Left out, and why (" + ", ".join(f"{title.split(' (')[0].lower()}: {len(frame):,}"
                                                          for _, title, frame in lists) + ")"):
            for name, title, frame in lists:
                st.markdown(f"**{title}** ({len(frame):,})")
                st.dataframe(frame.head(1000), hide_index=True, key=f"evaluate_list_{name}")
                st.download_button(f"Download ({len(frame):,} rows)", data=lambda f=frame: list_csv(f),
                                   file_name=f"{view.job_id}_{name}.csv", mime="text/csv",
                                   key=f"evaluate_download_list_{name}", on_click="ignore")

    # ----- downloads -----------------------------------------------------------------------------
    st.markdown("**Downloads**")
    with st.container(horizontal=True, key="evaluate_downloads"):
        st.download_button("Figures CSV", data=lambda: figures_csv(view), file_name=f"{view.job_id}_figures.csv",
                           mime="text/csv", key="evaluate_download_figures", icon=":material/download:",
                           on_click="ignore")
        st.download_button("Disagreements CSV", data=lambda: disagreements_csv(view, dis_column, kind),
                           file_name=f"{view.job_id}_disagreements.csv", mime="text/csv",
                           key="evaluate_download_disagreements", icon=":material/download:", on_click="ignore",
                           help="The rows the browser above shows, with every column.")
        st.download_button("Methods record (Markdown)", data=lambda: manifest_markdown_bytes(svc, job_id),
                           file_name=f"{job_id}_methods.md", mime="text/markdown",
                           key="evaluate_download_manifest_md", icon=":material/description:", on_click="ignore")
        st.download_button("Methods record (JSON)", data=lambda: manifest_json_bytes(svc, job_id),
                           file_name=f"{job_id}_methods.json", mime="application/json",
                           key="evaluate_download_manifest_json", icon=":material/data_object:", on_click="ignore")
    if view.method:
        st.caption(view.method)


def human_section() -> None:
    if st.session_state.get("evaluate_job") not in by_id:
        wanted = st.session_state.get(FOCUS_JOB)
        st.session_state["evaluate_job"] = wanted if wanted in by_id else jobs[0].id
    job_id = st.selectbox("Job", list(by_id), key="evaluate_job", format_func=lambda j: job_option_label(by_id[j]))
    focus_job(job_id)
    job = by_id[job_id]

    with st.container(border=True, key="evaluate_inputs"):
        source, hint = labels_source()
        chosen = column_pickers(source, job.task, job.id) if source is not None else None
        with st.expander("Options", expanded=False):
            o1, o2 = st.columns(2)
            match_on = o1.radio("Match paragraphs on", list(MATCH_ON), format_func=MATCH_TEXT.get,
                                key="evaluate_match_on",
                                help="Text only, or also the report: the same paragraph in two reports is then two.")
            min_group = int(o2.number_input("Smallest group for the per-investor and per-report figures",
                                            min_value=1, max_value=100_000, value=DEFAULT_MIN_GROUP, step=1,
                                            key="evaluate_min_group"))
        specs = label_column_specs(chosen) if chosen else []
        if source is not None and chosen is not None and not specs:
            st.warning("Choose the file column that holds the labels for at least one answer.")
        clicked = st.button("Evaluate", type="primary", key="evaluate_run", icon=":material/fact_check:",
                            disabled=not specs)

    if clicked and specs:
        with st.spinner("Matching paragraphs, computing the figures and their bootstrap intervals…"):
            with guard():
                from core.evaluate import run_evaluation  # loads scikit-learn and scipy: only when asked

                evaluation = run_evaluation(svc, job.id, source, label_columns=specs,  # type: ignore[arg-type]
                                            match_on=match_on, min_group=min_group)
                st.session_state.setdefault(EVALUATIONS, {})[job.id] = evaluation
                st.session_state.setdefault(RESULTS, {})[job.id] = EvaluationView.from_evaluation(evaluation)

    view = st.session_state.get(RESULTS, {}).get(job.id)
    if view is None:
        key = saved_key(job)
        cached = st.session_state.get(SAVED, {}).get(job.id)
        if cached is None or cached[0] != key:
            with guard():
                cached = (key, saved_view(job) if key else None)
                st.session_state.setdefault(SAVED, {})[job.id] = cached
        view = cached[1] if cached else None
    if view is None:
        st.info(hint or "Press **Evaluate** to compare this job's labels with the human labels.")
        return
    show_evaluation(view, job.id)


def compare_section() -> None:
    if len(jobs) < 2:
        st.info("Comparing needs two or more collected jobs of one task: run the task again (another model, another "
                "prompt, or the same settings to measure stability) and collect it.")
        return
    if "evaluate_compare_jobs" not in st.session_state or not set(st.session_state["evaluate_compare_jobs"]) <= set(by_id):
        st.session_state["evaluate_compare_jobs"] = compare_defaults(jobs, st.session_state.get("evaluate_job"))
    picked = st.multiselect("Jobs to compare (two or more, of one task)", list(by_id), key="evaluate_compare_jobs",
                            format_func=lambda j: job_option_label(by_id[j]))
    clicked = st.button("Compare", type="primary", key="evaluate_compare_run", icon=":material/compare_arrows:",
                        disabled=len(picked) < 2)
    if clicked and len(picked) >= 2:
        with st.spinner("Matching paragraphs across the jobs and computing agreement…"):
            with guard():
                from core.evaluate import run_comparison  # loads scikit-learn and scipy: only when asked

                st.session_state[COMPARISON] = (tuple(picked), run_comparison(svc, picked))
    stored = st.session_state.get(COMPARISON)
    if stored is None:
        st.info("Pick two or more jobs and press **Compare**: pairwise kappa and alpha, alpha across all of them "
                "(a stability score), and the paragraphs they answer differently.")
        return
    compared_ids, comparison = stored
    if tuple(picked) != compared_ids:
        st.caption(f"Showing the comparison of {', '.join(compared_ids)}; press **Compare** for the jobs picked now.")
    st.dataframe(comparison_jobs(comparison), hide_index=True, key="evaluate_compare_jobs_table")
    st.markdown(f"**Agreement across all jobs** ({comparison.shared:,} paragraphs every job answered): "
                "Krippendorff's alpha over all of them is a stability score; 1 means every job gave every answer alike")
    st.dataframe(comparison_overall(comparison), hide_index=True, key="evaluate_compare_overall")
    st.markdown("**Pairwise** (each pair over the paragraphs both answered)")
    st.dataframe(comparison_pairs(comparison), hide_index=True, key="evaluate_compare_pairs")
    st.markdown("**Paragraphs the jobs answer differently**")
    column = None
    if len(comparison.columns) > 1:
        picked_column = st.selectbox("Answer", [ALL_ANSWERS, *comparison.columns], key="evaluate_compare_column",
                                     format_func=lambda c: "all answers" if c == ALL_ANSWERS else answer_label(c))
        column = None if picked_column == ALL_ANSWERS else picked_column
    rows = comparison_disagreement_rows(comparison, column)
    if rows.empty:
        st.success("The jobs give the same answer on every paragraph they share.")
        return
    st.dataframe(rows, hide_index=True, key="evaluate_compare_disagreements",
                 column_config={"paragraph": st.column_config.TextColumn("paragraph", width="large")})
    st.download_button("Disagreements CSV", data=lambda: comparison_csv(comparison, column),
                       file_name="comparison_disagreements.csv", mime="text/csv",
                       key="evaluate_compare_download", icon=":material/download:", on_click="ignore")


human_tab, compare_tab = st.tabs(["Against human labels", "Model vs model"], key="evaluate_tabs")
with human_tab:
    human_section()
with compare_tab:
    compare_section()
