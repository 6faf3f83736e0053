"""Monitor page: every job, and the batches, progress and errors of one; refreshes itself while
anything is active. A job can be renamed, noted, archived and deleted from its section."""

from __future__ import annotations

import html
from datetime import timedelta

import streamlit as st

from core.errors import CoreError
from core.monitoring import (
    DEFAULT_REFRESH_SECONDS,
    Progress,
    batch_progress,
    batch_table,
    cost_line,
    filter_jobs,
    format_time,
    job_errors,
    job_label,
    job_progress,
    job_table,
    list_state,
    needs_collecting,
    refresh_cycle,
    rows_to_rerun,
    status_text,
    timing,
)
from core.tasks import ASSETIZATION_FEATURES, INVESTMENT_ACTIVITY, TASKS
from core.vocabulary import PART_WORDS, count, number
from pages._charts import PART_COLOURS
from pages._jobs_table import JOBS_COLUMNS
from pages._shared import EXPLORE_PAGE, FOCUS_JOB, SUBMIT_PAGE, SUBMIT_PREFILL, focus_job, guard, service, ensure_router

ensure_router()

CONFIRM_CANCEL = "monitor_confirm_cancel"
CONFIRM_DELETE = "monitor_confirm_delete"
UNDO_ARCHIVE = "monitor_undo_archive"  # the job just archived, while its "Undo" is offered
REDRAWN_FOR = "monitor_redrawn_for"  # the job list state the last full redraw was asked for
NOTICE = "monitor_notice"
PAUSED = "The page stops refreshing itself until you answer."
MARKDOWN_SPECIALS = set("\\`*_[]<>#|~$")  # what Streamlit's Markdown would read as formatting mid-line
# Destructive confirmations ("Yes, cancel the job", "Yes, delete") are red, never the green
# primary; scoped to their widget keys (Streamlit gives each keyed widget a st-key-<key> class).
DESTRUCTIVE_KEYS = ("monitor_cancel_yes", "monitor_delete_yes")
DESTRUCTIVE_CSS = "".join(
    f".st-key-{key} button {{background-color: #c62828; border-color: #c62828; color: #ffffff;}}"
    f".st-key-{key} button:hover {{background-color: #a61d1d; border-color: #a61d1d; color: #ffffff;}}"
    for key in DESTRUCTIVE_KEYS
)

def _asking() -> bool:
    """Whether a cancel or delete confirmation is open."""
    return any(st.session_state.get(key) for key in (CONFIRM_CANCEL, CONFIRM_DELETE))


svc = service()
st.title("Monitor jobs")
st.html(f"<style>{DESTRUCTIVE_CSS}</style>")

with st.expander("Refresh settings and archived jobs", expanded=False):
    interval = st.number_input("Refresh every (seconds) while a job is active", min_value=1.0, max_value=600.0,
                               value=DEFAULT_REFRESH_SECONDS, step=1.0, key="monitor_interval")
    show_archived = st.toggle("Show archived jobs", key="monitor_show_archived",
                              help="Archived jobs are hidden from every list; shown here, they can be unarchived.")
listed = None if show_archived else False  # JobService.list_jobs(archived=...)

try:
    jobs = svc.list_jobs(archived=listed)
except CoreError as exc:
    st.error(str(exc))
    st.stop()

if not jobs and not st.session_state.get(UNDO_ARCHIVE):  # (the only job just archived: its "Undo" is below)
    for kind, text in st.session_state.pop(NOTICE, []):  # e.g. the last job was just deleted
        (st.success if kind == "success" else st.error)(text)
    if svc.list_jobs(archived=True):
        st.info("Every job is archived. Turn on “Show archived jobs” under “Refresh settings and archived jobs” "
                "to see them.")
    else:
        st.info("No jobs yet. Submit one on the Submit page; it appears here with its progress.")
        st.page_link(SUBMIT_PAGE, label="Go to Submit", icon=":material/upload_file:")
    st.stop()

drawn_for = list_state(jobs)  # the refresh timer below and the sidebar's counts were set from this
any_active = any(j.is_active for j in jobs)
# While a cancel or delete confirmation is open the view holds still: a refresh re-run that
# replaces the buttons as they are clicked makes Streamlit drop the click.
drawn_asking = _asking()


def _cancel(job_id: str) -> None:
    st.session_state.pop(CONFIRM_CANCEL, None)
    try:
        job = svc.cancel(job_id)
        st.session_state[NOTICE] = [("success", f"Cancel requested for {job.id}; answered requests are kept.")]
    except CoreError as exc:
        st.session_state[NOTICE] = [("error", str(exc))]


def _collect(job_id: str) -> None:
    try:
        result = svc.collect(job_id)
        st.session_state[NOTICE] = [("success", f"Collected {job_id}: " + ", ".join(
            f"{n:,} {s}" for s, n in result.counts.items() if n))]
    except CoreError as exc:
        st.session_state[NOTICE] = [("error", str(exc))]


def _resume(job_id: str) -> None:
    try:
        svc.resume_submission(job_id)
        st.session_state[NOTICE] = [("success", f"Unsent batches of {job_id} were sent.")]
    except CoreError as exc:
        st.session_state[NOTICE] = [("error", str(exc))]


def _retry(job_id: str) -> None:
    model = st.session_state.get("monitor_retry_model", "").strip() or None
    max_tokens = int(st.session_state.get("monitor_retry_max_tokens") or 0) or None
    try:
        retry = svc.retry(job_id, model=model, max_tokens=max_tokens, created_by="dashboard")
    except CoreError as exc:
        st.session_state[NOTICE] = [("error", str(exc))]
        return
    if retry is None:
        st.session_state[NOTICE] = [("success", f"Every row of {job_id} has succeeded; nothing to re-run.")]
    else:
        focus_job(retry.id)
        st.session_state["monitor_job"] = retry.id
        st.session_state[NOTICE] = [("success", f"Re-running {retry.n_rows:,} rows of {job_id} as job {retry.id}; "
                                                "their answers are merged into its results when it finishes.")]


def _reconcile() -> None:
    try:
        report = svc.reconcile()
    except CoreError as exc:
        st.session_state[NOTICE] = [("error", str(exc))]
        return
    notices = [("success", f"Adopted {item}") for item in report.adopted]
    notices += [("success", f"Rebuilt job {item} from its folder") for item in report.restored_jobs]
    notices += [("error", f"No longer listed by the provider: {item}") for item in report.unknown_at_provider]
    notices += [("error", f"Batch of ours without local files: {item}") for item in report.orphans]
    notices += [("error", item) for item in report.problems]
    st.session_state[NOTICE] = notices or [("success", "The registry and the provider agree.")]


def _start_task2(job_id: str) -> None:
    st.session_state[SUBMIT_PREFILL] = {"task": ASSETIZATION_FEATURES.name, "parent": job_id}


def _edit(job_id: str) -> None:
    try:
        job = svc.edit_job(job_id, name=st.session_state.get(f"monitor_name_{job_id}", ""),
                           note=st.session_state.get(f"monitor_note_{job_id}", ""))
    except CoreError as exc:
        st.session_state[NOTICE] = [("error", str(exc))]
        return
    st.session_state[NOTICE] = [("success", f"Saved the name and note of {job.id}.")]


def _archive(job_id: str) -> None:
    try:
        family = svc.archive(job_id)
    except CoreError as exc:
        st.session_state[NOTICE] = [("error", str(exc))]
        return
    st.session_state[UNDO_ARCHIVE] = job_id
    also = f" with its {count(len(family) - 1, 're-run')}" if len(family) > 1 else ""
    st.session_state[NOTICE] = [("success", f"Archived {job_id}{also}: hidden from every job list (nothing was "
                                            "removed). Undo below, or later with “Show archived jobs”.")]


def _unarchive(job_id: str) -> None:
    st.session_state.pop(UNDO_ARCHIVE, None)
    try:
        svc.unarchive(job_id)
    except CoreError as exc:
        st.session_state[NOTICE] = [("error", str(exc))]
        return
    focus_job(job_id)
    st.session_state["monitor_job"] = job_id
    st.session_state[NOTICE] = [("success", f"{job_id} is shown in the job lists again.")]


def _delete(job_id: str) -> None:
    st.session_state.pop(CONFIRM_DELETE, None)
    try:
        report = svc.delete(svc.plan_deletion(job_id))  # planned again: the job may have changed meanwhile
    except CoreError as exc:
        st.session_state[NOTICE] = [("error", str(exc))]
        return
    st.session_state.pop("monitor_job", None)
    st.session_state[NOTICE] = [("success", f"Deleted {', '.join(report.deleted)} and "
                                            f"{count(len(report.removed), 'folder')} on this computer; nothing at "
                                            "the provider was deleted.")]
    st.session_state[NOTICE] += [("error", problem) for problem in report.problems]


def _still_archived(job_id: str) -> bool:
    try:
        return bool(svc.get(job_id).archived_at)
    except CoreError:
        return False


def _ask(key: str, job_id: str | None) -> None:
    """Open (job id) or close (None) the confirmation ``key``; only one is open at a time."""
    for other in (CONFIRM_CANCEL, CONFIRM_DELETE):
        st.session_state.pop(other, None)
    if job_id is not None:
        st.session_state[key] = job_id


def _plain(text: str) -> str:
    """Text shown as written inside Markdown (a job name or path with _ or * stays as it is)."""
    return "".join(f"\\{c}" if c in MARKDOWN_SPECIALS else c for c in text)


def progress_bar(progress: Progress, *, label: str, small: bool = False) -> None:
    """One bar in four parts (answered, failed, cancelled or expired, not yet run) that add up
    to the total, with its counts; ``aria-valuenow`` is the answered share."""
    total = max(progress.total, 1)
    segments = "".join(
        f'<div title="{number(n)} {PART_WORDS[part]}" style="width:{100 * n / total:.3f}%;'
        f'background:{PART_COLOURS[part]}"></div>'
        for part, n in progress.parts() if n
    )
    legend = " ".join(
        f'<span style="white-space:nowrap;margin-right:0.9em"><span style="display:inline-block;width:0.75em;'
        f'height:0.75em;border-radius:2px;background:{PART_COLOURS[part]};margin-right:0.3em"></span>'
        f"{number(n)} {PART_WORDS[part]}</span>"
        for part, n in progress.parts() if n or not small
    )
    answered = int(100 * progress.share())
    height = "0.5rem" if small else "0.75rem"
    st.markdown(
        f'<div style="margin:0 0 0.6rem 0"><div style="margin-bottom:0.3rem">{html.escape(label)}</div>'
        f'<div role="progressbar" aria-label="{html.escape(label)}" aria-valuemin="0" aria-valuemax="100" '
        f'aria-valuenow="{answered}" style="display:flex;height:{height};border-radius:{height};overflow:hidden;'
        f'background:{PART_COLOURS["not_run"]}">{segments}</div>'
        f'<div style="font-size:0.85rem;margin-top:0.3rem;line-height:1.6">{legend}</div></div>',
        unsafe_allow_html=True,
    )


COUNT = st.column_config.NumberColumn(format="localized")  # 19,200 as elsewhere on the page
PROGRESS = st.column_config.ProgressColumn("progress", format="%.0f%%", min_value=0, max_value=100)


@st.fragment(run_every=timedelta(seconds=float(interval)) if any_active and not drawn_asking else None)
def live_view() -> None:
    if _asking() != drawn_asking:  # a confirmation opened or closed: the timer is fixed by the full run
        st.rerun(scope="app")
    cycle = refresh_cycle(svc, archived=listed)
    notices = st.session_state.pop(NOTICE, [])
    notices += [("error", p) for p in cycle.problems]
    notices += [("success", f"Job {j} finished; its results were collected.") for j in cycle.collected]
    now = list_state(cycle.jobs)
    if now != drawn_for and st.session_state.get(REDRAWN_FOR) != now:
        # A job started, finished, was added, archived or deleted since the page was drawn (an
        # action here or the refresh itself): draw the whole app again, so the refresh timer
        # (fixed when the page was drawn) starts or stops and the sidebar's counts agree.
        # Asked once per state: a registry that does not keep what the refresh saw cannot loop.
        st.session_state[REDRAWN_FOR] = now
        st.session_state[NOTICE] = notices
        st.rerun(scope="app")
    for kind, text in notices:
        (st.success if kind == "success" else st.error)(text)
    undo = st.session_state.get(UNDO_ARCHIVE)
    if undo and not _still_archived(undo):  # unarchived or deleted meanwhile (another tab, the command line)
        st.session_state.pop(UNDO_ARCHIVE, None)
    elif undo:
        st.button(f"Undo: show {undo} again", key="monitor_undo", icon=":material/undo:", on_click=_unarchive,
                  args=(undo,))

    # ----- all jobs -----
    f1, f2, f3 = st.columns([2, 2, 1.5], vertical_alignment="bottom")
    tasks = f1.multiselect("Task", list(TASKS), format_func=lambda t: TASKS[t].title, key="monitor_filter_task")
    statuses = f2.multiselect("Status", sorted({j.status for j in cycle.jobs}), format_func=status_text,
                              key="monitor_filter_status")
    with f3.container(horizontal=True, gap="small"):
        st.button("Refresh now", key="monitor_refresh", icon=":material/refresh:")
        st.button("Reconcile", key="monitor_reconcile", on_click=_reconcile, icon=":material/sync_alt:",
                  help="Compare with the provider's batch list: adopt batches the registry lost, flag vanished ones.")
    shown = filter_jobs(cycle.jobs, tasks=tasks, statuses=statuses)
    st.dataframe(job_table(shown), hide_index=True, key="monitor_jobs_table", column_config=JOBS_COLUMNS)
    if not shown:
        st.info("No job matches these filters." if cycle.jobs else "No job to show.")
        return

    # ----- one job -----
    by_id = {j.id: j for j in sorted(shown, key=lambda j: j.created_at, reverse=True)}  # newest first
    wanted = st.session_state.get(FOCUS_JOB)
    if st.session_state.get("monitor_job") not in by_id:
        st.session_state["monitor_job"] = wanted if wanted in by_id else next(iter(by_id))
    job_id = st.selectbox("Job", list(by_id), key="monitor_job", format_func=lambda j: job_label(by_id[j]),
                          on_change=_ask, args=(CONFIRM_CANCEL, None))  # another job: close any confirmation
    focus_job(job_id)
    job = by_id[job_id]
    progress = job_progress(job)  # answered / failed / cancelled or expired / not yet run, as the CLI shows them
    st.markdown(f"#### {_plain(job.name) + ' · ' if job.name else ''}{job.id}: {status_text(job.status)}")
    st.caption(f"{TASKS[job.task].title} · {job.provider} · model {job.model} · created {format_time(job.created_at)}"
               + (f" · from job {job.parent_job_id}" if job.parent_job_id else "")
               + (f" · re-runs the gaps of {job.retry_of}" if job.retry_of else "")
               + (f" · archived {format_time(job.archived_at)}" if job.archived_at else ""))
    if job.note:
        st.text(job.note)
    progress_bar(progress, label=f"Job: {progress.describe()}")
    t = timing(job)
    st.caption(t.describe().capitalize() + (" (from the answer rate so far)" if t.left_seconds is not None else ""))

    st.markdown("**Batches**")
    for batch in job.batches:
        bp = batch_progress(batch)
        progress_bar(bp, small=True, label=f"{batch.key} · {batch.batch_id or 'not sent'} · "
                                            f"{status_text(batch.status)} · {bp.describe()}")
    with st.expander("Batch details", expanded=False):
        st.dataframe(batch_table(job), hide_index=True, key="monitor_batch_table",
                     column_config={"progress": PROGRESS,
                                    **dict.fromkeys(("requests", "answered", "failed"), COUNT)})
    for message in job_errors(job):
        st.warning(message)
    if job.collected_at and job.result_counts:
        counts = ", ".join(f"{n:,} {s}" for s, n in job.result_counts.items() if n)
        st.info(f"Results collected {format_time(job.collected_at)}: {counts}. Files in `{job.output_dir}`.")
    st.caption(cost_line(job))

    # ----- actions: one row of buttons that wraps on a narrow screen -----
    gaps = rows_to_rerun(job)
    with st.container(horizontal=True, gap="small", key="monitor_actions"):
        if (job.is_active or job.status in ("submitting", "submit_failed")) and st.session_state.get(
                CONFIRM_CANCEL) != job.id:
            st.button("Cancel job…", key="monitor_cancel", icon=":material/cancel:",
                      on_click=_ask, args=(CONFIRM_CANCEL, job.id))
        if job.status == "submit_failed":
            st.button("Send unsent batches", key="monitor_resume", on_click=_resume, args=(job.id,))
        if job.is_finished and any(b.batch_id for b in job.batches):
            st.button("Collect results again" if job.collected_at else "Collect results", key="monitor_collect",
                      icon=":material/download:", on_click=_collect, args=(job.id,))
        if gaps and not job.retry_of:
            st.button(f"Re-run the {count(gaps, 'row')} that did not succeed", key="monitor_retry",
                      icon=":material/replay:", on_click=_retry, args=(job.id,),
                      help="Submits exactly those rows as a new job; nothing that succeeded is paid twice.")
        if job.collected_at:
            st.page_link(EXPLORE_PAGE, label="Explore the results", icon=":material/query_stats:")
        if job.task == INVESTMENT_ACTIVITY.name and not job.retry_of and svc.can_feed_task2(job):
            if st.button("Start task 2 from this job", key="monitor_task2", icon=":material/arrow_forward:",
                         on_click=_start_task2, args=(job.id,)):
                st.switch_page(SUBMIT_PAGE)
    if gaps and not job.retry_of:
        with st.expander("Re-run options (optional)", expanded=False):
            st.text_input("Another model", key="monitor_retry_model", placeholder=job.model)
            st.number_input("Higher max tokens (0: keep)", min_value=0, max_value=32_000, step=100, value=0,
                            key="monitor_retry_max_tokens")
    if st.session_state.get(CONFIRM_CANCEL) == job.id:
        st.warning(f"Cancel {job.id}? Requests already answered are kept (and billed); the rest are not run.")
        if any_active:
            st.caption(PAUSED)
        with st.container(horizontal=True, gap="small"):
            st.button("No, keep it running", key="monitor_cancel_no", on_click=_ask, args=(CONFIRM_CANCEL, None))
            st.button("Yes, cancel the job", key="monitor_cancel_yes", icon=":material/cancel:", on_click=_cancel,
                      args=(job.id,))
    if needs_collecting(job):
        st.caption("This job will be collected on the next refresh.")

    # ----- keeping the list readable: name and note, archive, delete -----
    with st.expander("Name, note, archive or delete", expanded=bool(st.session_state.get(CONFIRM_DELETE) == job.id)):
        st.text_input("Name", value=job.name or "", key=f"monitor_name_{job.id}", max_chars=120,
                      placeholder="e.g. Spring reports, strict prompt")
        st.text_area("Note", value=job.note or "", key=f"monitor_note_{job.id}", height=90,
                     placeholder="What this job was for, what to remember about it")
        with st.container(horizontal=True, gap="small"):
            st.button("Save name and note", key="monitor_edit_save", icon=":material/save:", on_click=_edit,
                      args=(job.id,))
            if job.archived_at:
                st.button("Unarchive", key="monitor_unarchive", icon=":material/unarchive:", on_click=_unarchive,
                          args=(job.id,), help="Show the job (and its re-runs) in every job list again.")
            else:
                st.button("Archive", key="monitor_archive", icon=":material/archive:", on_click=_archive,
                          args=(job.id,), disabled=job.is_active,
                          help="Hide the job (and its re-runs) from every job list; nothing is removed, and it can "
                               "be unarchived." + (" A running job cannot be archived." if job.is_active else ""))
            st.button("Delete…", key="monitor_delete", icon=":material/delete:", on_click=_ask,
                      args=(CONFIRM_DELETE, job.id), disabled=job.is_active,
                      help="Remove the job's record and its files on this computer (asks first)."
                           + (" A running job cannot be deleted." if job.is_active else ""))
        if st.session_state.get(CONFIRM_DELETE) == job.id:
            try:
                plan = svc.plan_deletion(job.id)
            except CoreError as exc:
                st.error(str(exc))
                st.button("Close", key="monitor_delete_no", on_click=_ask, args=(CONFIRM_DELETE, None))
            else:
                st.warning("\n\n".join(["**Delete this job?** This cannot be undone (archiving can)."]
                                          + [_plain(line) for line in plan.lines()]))
                if any_active:
                    st.caption(PAUSED)
                with st.container(horizontal=True, gap="small"):
                    st.button("No, keep it", key="monitor_delete_no", on_click=_ask, args=(CONFIRM_DELETE, None))
                    st.button("Yes, delete", key="monitor_delete_yes", icon=":material/delete:", on_click=_delete,
                              args=(job.id,))


with guard():
    live_view()
