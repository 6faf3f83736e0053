"""Monitor page: every job, and the batches, progress and errors of one; refreshes itself while
anything is active."""

from __future__ import annotations

from datetime import timedelta
from itertools import chain

import streamlit as st

from core.errors import CoreError
from core.monitoring import (
    DEFAULT_REFRESH_SECONDS,
    batch_progress,
    batch_table,
    cost_line,
    filter_jobs,
    format_time,
    job_errors,
    job_label,
    job_progress,
    job_table,
    needs_collecting,
    refresh_cycle,
    rows_to_rerun,
    status_text,
    timing,
)
from core.tasks import ASSETIZATION_FEATURES, INVESTMENT_ACTIVITY, TASKS
from core.vocabulary import number
from pages._shared import EXPLORE_PAGE, FOCUS_JOB, SUBMIT_PAGE, SUBMIT_PREFILL, focus_job, guard, service, ensure_router

ensure_router()

CONFIRM_CANCEL = "monitor_confirm_cancel"
NOTICE = "monitor_notice"

svc = service()
st.title("Monitor jobs")

try:
    jobs = svc.list_jobs()
except CoreError as exc:
    st.error(str(exc))
    st.stop()

if not jobs:
    st.info("No jobs yet. Submit one on the Submit page; it appears here with its progress.")
    st.page_link(SUBMIT_PAGE, label="Go to Submit", icon=":material/upload_file:")
    st.stop()

any_active = any(j.is_active for j in jobs)
with st.expander("Refresh settings", expanded=False):
    interval = st.number_input("Refresh every (seconds) while a job is active", min_value=1.0, max_value=600.0,
                               value=DEFAULT_REFRESH_SECONDS, step=1.0, key="monitor_interval")


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


COUNT = st.column_config.NumberColumn(format="localized")  # 19,200 as elsewhere on the page
PROGRESS = st.column_config.ProgressColumn("progress", format="%.0f%%", min_value=0, max_value=100)
# narrower than the default bar: with it, the jobs table fits the page at 1400 px without a sideways scroll
JOBS_PROGRESS = {**PROGRESS, "width": 100}


@st.fragment(run_every=timedelta(seconds=float(interval)) if any_active else None)
def live_view() -> None:
    cycle = refresh_cycle(svc)
    notices = st.session_state.pop(NOTICE, [])
    notices += [("error", p) for p in cycle.problems]
    notices += [("success", f"Job {j} finished; its results were collected.") for j in cycle.collected]
    if any_active and not cycle.any_active:
        st.session_state[NOTICE] = notices
        st.rerun()  # everything finished: redraw the whole page once, without the timer
    for kind, text in notices:
        (st.success if kind == "success" else st.error)(text)

    # ----- all jobs -----
    f1, f2, f3 = st.columns([2, 2, 1])
    tasks = f1.multiselect("Task", list(TASKS), format_func=lambda t: TASKS[t].title, key="monitor_filter_task")
    statuses = f2.multiselect("Status", sorted({j.status for j in cycle.jobs}), format_func=status_text,
                              key="monitor_filter_status")
    f3.button("Refresh now", key="monitor_refresh", icon=":material/refresh:")
    f3.button("Reconcile", key="monitor_reconcile", on_click=_reconcile,
              help="Compare with the provider's batch list: adopt batches the registry lost, flag vanished ones.")
    shown = filter_jobs(cycle.jobs, tasks=tasks, statuses=statuses)
    st.dataframe(
        job_table(shown), hide_index=True, key="monitor_jobs_table",
        column_config={
            "progress": JOBS_PROGRESS, **dict.fromkeys(("rows", "failed"), COUNT),
            "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
        },
    )
    if not shown:
        st.info("No job matches these filters.")
        return

    # ----- one job -----
    by_id = {j.id: j for j in sorted(shown, key=lambda j: j.created_at, reverse=True)}  # newest first
    wanted = st.session_state.get(FOCUS_JOB)
    if st.session_state.get("monitor_job") not in by_id:
        st.session_state["monitor_job"] = wanted if wanted in by_id else next(iter(by_id))
    job_id = st.selectbox("Job", list(by_id), key="monitor_job", format_func=lambda j: job_label(by_id[j]))
    focus_job(job_id)
    job = by_id[job_id]
    progress = job_progress(job)  # answered / failed / cancelled or expired / not yet run, as the CLI shows them
    st.markdown(f"#### {job.name + ' · ' if job.name else ''}{job.id}: {status_text(job.status)}")
    st.caption(f"{TASKS[job.task].title} · {job.provider} · model {job.model} · created {format_time(job.created_at)}"
               + (f" · from job {job.parent_job_id}" if job.parent_job_id else "")
               + (f" · re-runs the gaps of {job.retry_of}" if job.retry_of else ""))
    st.progress(progress.fraction, text=f"Job: {progress.describe()}")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Answered", number(progress.answered))
    m2.metric("Failed", number(progress.failed))
    m3.metric("Cancelled or expired", number(progress.cancelled_or_expired))
    m4.metric("Not yet run", number(progress.not_run))
    t = timing(job)
    st.caption(t.describe().capitalize() + (" (from the answer rate so far)" if t.left_seconds is not None else ""))

    st.markdown("**Batches**")
    for batch in job.batches:
        bp = batch_progress(batch)
        st.progress(bp.fraction, text=f"{batch.key} · {batch.batch_id or 'not sent'} · {status_text(batch.status)} · "
                                      f"{bp.describe()}")
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

    # ----- actions (left to right, without gaps for the ones that do not apply) -----
    slots = chain(st.columns(4), iter(st.container, None))  # a fifth action would go below, never fail
    if job.is_active or job.status in ("submitting", "submit_failed"):
        if st.session_state.get(CONFIRM_CANCEL) == job.id:
            st.warning(f"Cancel {job.id}? Requests already answered are kept (and billed); the rest are not run.")
            c1, c2 = st.columns(2)
            c1.button("Yes, cancel the job", key="monitor_cancel_yes", type="primary", on_click=_cancel, args=(job.id,))
            c2.button("No, keep it running", key="monitor_cancel_no",
                      on_click=lambda: st.session_state.pop(CONFIRM_CANCEL, None))
        else:
            next(slots).button("Cancel job…", key="monitor_cancel",
                               on_click=lambda j=job.id: st.session_state.__setitem__(CONFIRM_CANCEL, j))
    if job.status == "submit_failed":
        next(slots).button("Send unsent batches", key="monitor_resume", on_click=_resume, args=(job.id,))
    if job.is_finished and any(b.batch_id for b in job.batches):
        next(slots).button("Collect results again" if job.collected_at else "Collect results", key="monitor_collect",
                           on_click=_collect, args=(job.id,))
    gaps = rows_to_rerun(job)
    if gaps and not job.retry_of:
        retry_slot = next(slots)
        with st.expander("Re-run options (optional)", expanded=False):
            st.text_input("Another model", key="monitor_retry_model", placeholder=job.model)
            st.number_input("Higher max tokens (0: keep)", min_value=0, max_value=32_000, step=100, value=0,
                            key="monitor_retry_max_tokens")
        retry_slot.button(f"Re-run the {gaps:,} rows that did not succeed", key="monitor_retry", on_click=_retry,
                          args=(job.id,), help="Submits exactly those rows as a new job; nothing that succeeded is paid twice.")
    if job.collected_at:
        next(slots).page_link(EXPLORE_PAGE, label="Explore the results", icon=":material/query_stats:")
    if job.task == INVESTMENT_ACTIVITY.name and not job.retry_of and svc.can_feed_task2(job):
        if next(slots).button("Start task 2 from this job", key="monitor_task2", on_click=_start_task2, args=(job.id,)):
            st.switch_page(SUBMIT_PAGE)
    if needs_collecting(job):
        st.caption("This job will be collected on the next refresh.")


with guard():
    live_view()
