"""Submit page: choose a task and its inputs, check them, see the cost, submit once."""

from __future__ import annotations

import streamlit as st

from core.errors import CoreError
from core.jobs.manage import MAX_NAME_CHARS, MAX_NOTE_CHARS, clean_name, clean_note
from core.pricing import format_cost
from core.settings import DEFAULT_MAX_TOKENS, PROVIDER_LABELS
from core.submission import (
    REPORT_COUNT_COLUMNS,
    FileChoice,
    check_inputs,
    choice_key,
    default_input_files,
    fingerprint,
    labeler_agreement,
    labeler_notice,
    layout_of,
    load_prompt_choice,
    markdown_literal,
    parent_choices,
    preview,
    prompt_choices,
    report_table,
    save_prompt_copy,
    source_name,
    submit_once,
    usable_sources,
    waiting_message,
    with_choices,
)
from core.tasks import TASKS
from pages._shared import MONITOR_PAGE, SUBMIT_PREFILL, focus_job, guard, service, ensure_router

ensure_router()

PREP = "submit_preparation"  # (fingerprint, Preparation)
SUBMITTED = "submit_submitted"  # fingerprint -> job id ("" while sending)
SUBMIT_ERROR = "submit_error"

svc = service()
cfg = svc.settings
st.title("Submit a labelling job")

prefill = st.session_state.pop(SUBMIT_PREFILL, None)
if prefill:
    st.session_state["submit_task"] = prefill["task"]
    st.session_state["submit_parent"] = prefill["parent"]

task_name = st.selectbox(
    "Task", list(TASKS), format_func=lambda name: TASKS[name].title, key="submit_task",
    help="Task 1 labels paragraphs from input files; task 2 scores the paragraphs a task-1 job scored 1.",
)
task = TASKS[task_name]

# ----- inputs ----------------------------------------------------------------------------------
sources: list = []
parent_id: str | None = None
parent_results: str | None = None  # task 2 from the previous tool's task-1 result folder
st.subheader("Input")
if task.parent_task is None:
    mode = st.radio("Where are the paragraphs?", ["Upload files", "Files from the input folder"],
                    horizontal=True, key="submit_input_mode")
    if mode == "Upload files":
        uploads = st.file_uploader(
            "CSV or Excel files with a `paragraph_text` column (and usually `pdf_file_name`)",
            type=["csv", "xlsx", "tsv", "txt"], accept_multiple_files=True, key="submit_upload",
        )
        sources = [(f.name, f.getvalue()) for f in uploads or []]
        if not sources:
            st.info("Upload one or more CSV/XLSX files to start.")
    else:
        folder = cfg.data_dir / task.input_folder
        files = default_input_files(cfg, task_name)
        if not files:
            st.info(f"The input folder `{folder}` holds no CSV/XLSX files. Put files there or upload them instead.")
        else:
            chosen = st.multiselect(f"Files in `{folder}`", files, default=files,
                                    format_func=lambda p: p.name, key="submit_folder_files")
            sources = list(chosen)
else:
    start_from = st.radio("Start task 2 from", ["A completed task-1 job", "A previous tool's result folder"],
                          horizontal=True, key="submit_parent_kind")
    if start_from == "A previous tool's result folder":
        parent_results = st.text_input(
            "Folder of the previous scripts' task-1 results (CSVs with `paragraph_text` and `score`)",
            key="submit_parent_results", placeholder="data/processed/investment_activity_classification/batch_...",
        ).strip() or None
    else:
        with guard():
            choices = parent_choices(svc)
            if not choices:
                st.info("No completed task-1 job yet. Run task 1 first; when it has completed, "
                        "pick it here (or start task 2 from it on the Monitor page).")
            else:
                by_id = {c.job.id: c for c in choices}
                if st.session_state.get("submit_parent") not in by_id:
                    st.session_state.pop("submit_parent", None)
                pick, about = st.columns([3, 2], vertical_alignment="bottom")
                parent_id = pick.selectbox("Completed task-1 job", list(by_id),
                                           format_func=lambda j: by_id[j].label, key="submit_parent")
                about.markdown(by_id[parent_id].summary)

# The sheet and text column chosen per file (pickers below the report). A choice the file no
# longer offers is forgotten before the file is read with it.
layouts = {}
if task.parent_task is None:
    for source in sources:
        name = source_name(source)
        sheet_key, column_key = choice_key("sheet", name), choice_key("text_column", name)
        layout = layouts[name] = layout_of(source, sheet=st.session_state.get(sheet_key) or None)
        if layout is None or st.session_state.get(sheet_key) not in ("", None, *layout.sheets):
            st.session_state.pop(sheet_key, None)
        if layout is None or st.session_state.get(column_key) not in ("", None, *layout.columns):
            st.session_state.pop(column_key, None)
    picked = {name: FileChoice(sheet=st.session_state.get(choice_key("sheet", name)) or None,
                               text_column=st.session_state.get(choice_key("text_column", name)) or None)
              for name in layouts}
    sources = with_choices(sources, picked)

checks = check_inputs(sources) if sources else []
if checks:
    for check in checks:
        if not check.ok:
            st.error(f"**{check.name}** cannot be used: {check.error}")
    st.markdown("**Validation report**")
    st.dataframe(report_table(checks), hide_index=True, key="submit_report",
                 column_config={**{c: st.column_config.TextColumn(c, alignment="right") for c in REPORT_COUNT_COLUMNS},
                                "notes": st.column_config.TextColumn("notes", width="medium"),
                                "problems": st.column_config.TextColumn("problems", width="medium")})
    told = [(c.name, c.table.report) for c in checks if c.ok and (c.table.report.notes or c.table.report.warnings)]
    if told:  # the table's cells cut long sentences off; here they are whole
        with st.expander("Notes and problems in full", icon=":material/notes:"):
            for name, report in told:  # names and cells from the file: shown as plain text
                st.text("\n".join([name, *(f"  note: {n}" for n in report.notes),
                                    *(f"  problem: {w}" for w in report.warnings)]))
    if layouts:
        needed = any(c.needs_choice for c in checks) or any(c.sheet or c.text_column for c in picked.values())
        with st.expander("Sheet and text column of each file", expanded=needed, icon=":material/table_view:"):
            st.caption("By default a workbook is read from its first sheet with a `paragraph_text` column, and "
                       "the paragraphs come from that column. Choose others here.")
            for name, layout in layouts.items():
                shown_name = markdown_literal(name)  # widget labels render markdown; an upload names itself
                if layout is None:
                    st.markdown(f"**{shown_name}**: its columns cannot be read (see the reason above).")
                    continue
                sheet_box, column_box = st.columns(2)
                if len(layout.sheets) > 1:
                    sheet_box.selectbox(
                        f"Sheet of {shown_name}", ["", *layout.sheets], key=choice_key("sheet", name),
                        format_func=lambda s: s or "automatic: the first with paragraph_text")
                column_box.selectbox(
                    f"Text column of {shown_name}"
                    + (f" (sheet {markdown_literal(layout.sheet or '')})" if len(layout.sheets) > 1 else ""),
                    ["", *layout.columns], key=choice_key("text_column", name),
                    format_func=lambda c: c or "automatic: paragraph_text")
    sources = usable_sources(sources, checks)
    if sources:
        with st.expander("Preview (first rows of each file)", expanded=False):
            st.dataframe(preview(checks), hide_index=True, key="submit_preview")

# ----- prompts ---------------------------------------------------------------------------------
st.subheader("Prompts")
prompts = None
options = prompt_choices(cfg, task_name)
labels = [label for label, _, _ in options]
prompt_key = f"submit_prompt_choice_{task_name}"
if st.session_state.get(prompt_key) not in labels:
    st.session_state.pop(prompt_key, None)
choice = st.selectbox("Prompt files", labels, key=prompt_key)
_, system_file, user_file = options[labels.index(choice)]
with guard():
    prompts = load_prompt_choice(task_name, system_file, user_file)
if prompts is not None:
    with st.expander(f"Prompts used: `{system_file.name}` and `{user_file.name}`", expanded=False):
        st.text_area("System prompt", prompts.system, height=200, disabled=True, key=f"submit_show_system_{choice}")
        st.text_area("User template ({text} is replaced by the paragraph)", prompts.user_template, height=130,
                     disabled=True, key=f"submit_show_user_{choice}")
    if st.toggle("Edit a copy of these prompts", key="submit_prompt_edit"):
        def _save_copy(system_text_key: str, user_text_key: str) -> None:
            try:
                saved = save_prompt_copy(cfg, task_name, system=st.session_state[system_text_key],
                                         user_template=st.session_state[user_text_key],
                                         name=st.session_state.get("submit_prompt_name", ""))
            except CoreError as exc:
                st.session_state["submit_prompt_error"] = str(exc)
                return
            label = saved.system_path.rsplit("/", 1)[-1][len(task_name) + 2: -len(".system.txt")]
            st.session_state[prompt_key] = label
            st.session_state["submit_prompt_edit"] = False
            st.session_state["submit_prompt_saved"] = f"Saved as new files {saved.system_path} and {saved.user_path}."

        sys_key, user_key = f"submit_edit_system_{task_name}", f"submit_edit_user_{task_name}"
        st.session_state.setdefault(sys_key, prompts.system)
        st.session_state.setdefault(user_key, prompts.user_template)
        st.text_area("System prompt (copy)", height=240, key=sys_key)
        st.text_area("User template (copy; keep {text})", height=130, key=user_key)
        st.text_input("Name for the copy (optional)", key="submit_prompt_name")
        st.button("Save as new prompt files", key="submit_prompt_save", on_click=_save_copy, args=(sys_key, user_key),
                  help="Writes new files under the data folder's prompts_custom/; the defaults are never changed.")
    if msg := st.session_state.pop("submit_prompt_error", None):
        st.error(msg)
    if msg := st.session_state.pop("submit_prompt_saved", None):
        st.success(msg)

# ----- model, provider -------------------------------------------------------------------------
st.subheader("Model")
col1, col2, col3 = st.columns(3)
choices = list(cfg.selectable_providers)  # Azure and Anthropic appear once configured
provider = col1.selectbox("Provider", choices, index=choices.index(cfg.provider), key="submit_provider",
                          format_func=lambda p: PROVIDER_LABELS.get(p, p))
provider_blocked = cfg.missing_key_message(provider)  # core's settings know every provider
if provider_blocked:
    col1.warning(provider_blocked)
model = col2.text_input("Model", value=cfg.model_for(provider), key=f"submit_model_{provider}")
max_tokens = col3.number_input("Max tokens per answer", min_value=16, max_value=32_000,
                               value=DEFAULT_MAX_TOKENS, step=100, key="submit_max_tokens")
dedupe = st.toggle("Send repeated paragraphs once (their answer is copied to every copy)", value=True,
                   key="submit_dedupe")
examples_file = None  # the embedding labeler's examples: the researcher's labelled paragraphs
if notice := labeler_notice(cfg, provider):
    st.warning(notice)
elif provider == "local" and not cfg.local_chat_url:
    examples_upload = st.file_uploader(
        "Examples for the embedding labeler (optional): your labelled paragraphs in the human-labels format "
        "(`paragraph_text` and a label column per answer, e.g. `score`)", type=["csv", "xlsx", "tsv", "txt"],
        key=f"submit_examples_{task_name}",
        help="The labeler learns from them instead of the built-in examples. Their cross-validated agreement is "
             "shown before you submit, and Evaluate leaves these paragraphs out.")
    if examples_upload is not None:
        examples_file = (examples_upload.name, examples_upload.getvalue())

# ----- estimate and submit ---------------------------------------------------------------------
st.subheader("Estimate and submit")
prep = None
ready = prompts is not None and (bool(sources) if task.parent_task is None else bool(parent_id or parent_results))
fp = None
if ready:
    with guard():
        fp = fingerprint(task=task_name, sources=sources, parent=parent_id or f"results:{parent_results}",
                         model=model.strip(),
                         max_tokens=int(max_tokens), provider=provider, prompts=prompts, dedupe=dedupe,
                         examples=examples_file)
        cached = st.session_state.get(PREP)
        if cached and cached[0] == fp:
            prep = cached[1]
        else:
            with st.spinner("Checking inputs and counting tokens…"):
                prep = svc.prepare(task_name, inputs=sources, parent=parent_id, parent_results=parent_results,
                                   model=model.strip() or None,
                                   max_tokens=int(max_tokens), prompts=prompts, provider=provider,
                                   dedupe=dedupe, examples=examples_file)
            st.session_state[PREP] = (fp, prep)
else:
    kind, text = waiting_message(checks, prompts_ok=prompts is not None)
    (st.warning if kind == "warning" else st.info)(text)

if prep is not None:
    est = prep.estimate
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Requests", f"{est.n_requests:,}")
    m2.metric("Batches", f"{est.n_batches:,}")
    m3.metric("Input tokens" + ("" if est.input_tokens_exact else " (approx.)"), f"{est.input_tokens:,}")
    m4.metric("Cost at most", format_cost(est.cost_ceiling, est.currency))
    st.caption(prep.summary())
    for warning in prep.warnings:
        st.info(warning)
    if prep.examples is not None and prep.examples.source != "built-in":
        with guard():
            agreement_key = f"submit_agreement_{fp}"
            if agreement_key not in st.session_state:
                with st.spinner("Cross-validating the labeler on your labelled paragraphs (each is embedded once)…"):
                    st.session_state[agreement_key] = labeler_agreement(cfg, prep)
            st.markdown("**Expected agreement** with your labels (k-fold cross-validation: each paragraph is "
                        "labelled by a model that did not learn from it)")
            st.dataframe(st.session_state[agreement_key].figures(), hide_index=True, key="submit_agreement")

submitted = st.session_state.setdefault(SUBMITTED, {})
name_box, note_box = st.columns([1, 2])
name_box.text_input("Job name (optional)", key="submit_job_name", max_chars=MAX_NAME_CHARS,
                    placeholder="e.g. UNPRI reports 2024, task 1", help="Shown in every job list; change it later on Monitor.")
note_box.text_area("Note (optional)", key="submit_job_note", max_chars=MAX_NOTE_CHARS, height=68,
                   placeholder="Why this job, what changed from the last one…")


def _submit(fp_: str) -> None:
    """Runs before the page on the click's rerun; a second click finds the fingerprint taken."""
    cached_prep = st.session_state.get(PREP)
    if fp_ not in st.session_state[SUBMITTED] and (not cached_prep or cached_prep[0] != fp_):
        st.session_state[SUBMIT_ERROR] = "The inputs changed; check the estimate again and resubmit."
        return
    try:
        prep_ = cached_prep[1] if cached_prep else None
        if prep_ is not None:  # the researcher's words go with the job; they do not make it another job
            prep_.name = clean_name(st.session_state.get("submit_job_name"))
            prep_.note = clean_note(st.session_state.get("submit_job_note"))
        job_id = submit_once(st.session_state[SUBMITTED], fp_, lambda: svc.submit(prep_, created_by="dashboard"))
    except CoreError as exc:
        st.session_state[SUBMIT_ERROR] = str(exc)
        job_id = st.session_state[SUBMITTED].get(fp_)
    if job_id:
        focus_job(job_id)


already = submitted.get(fp) if fp else None
label = "Submit job" if task.parent_task is None else "Submit task 2"
if provider_blocked and prep is not None and already is None:
    st.warning(f"Submitting needs a configured provider: **{provider}** is not. Choose another in the "
               "**Provider** box under *Model* above, or configure it as said there.", icon=":material/key_off:")
st.button(label, type="primary", key="submit_button",
          disabled=prep is None or already is not None or bool(provider_blocked), on_click=_submit, args=(fp,))
if msg := st.session_state.pop(SUBMIT_ERROR, None):
    st.error(msg)
if already:
    st.success(f"Submitted as job **{already}**. Follow it on the Monitor page; changing the inputs or "
               "settings prepares a new job.")
    st.page_link(MONITOR_PAGE, label=f"Monitor job {already}", icon=":material/monitoring:")
elif already == "":
    st.info("Submitting…")
