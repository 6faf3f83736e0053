"""Shared dashboard plumbing: the per-session JobService, errors as messages, page paths."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from core.errors import CoreError
from core.jobs import JobService
from core.settings import Settings, load_settings

SUBMIT_PAGE = "views/submit.py"
MONITOR_PAGE = "views/monitor.py"
EXPLORE_PAGE = "views/explore.py"

# session_state keys shared between pages (widget keys live in each page)
FOCUS_JOB = "focus_job"  # the job the user last submitted or looked at
SUBMIT_PREFILL = "submit_prefill"  # {"task": ..., "parent": ...} set by Monitor's "start task 2"


def settings() -> Settings:
    return service().settings


def service() -> JobService:
    """One JobService per browser session, rebuilt when the configuration changes."""
    try:
        current = load_settings()
    except CoreError as exc:
        st.error(str(exc))
        st.stop()
    cached = st.session_state.get("_job_service")
    if cached is None or cached.settings != current:
        try:
            cached = JobService(settings=current)
        except CoreError as exc:
            st.error(str(exc))
            st.stop()
        st.session_state["_job_service"] = cached
    return cached


@contextmanager
def guard(prefix: str = "") -> Iterator[None]:
    """Show a core error as a message (never a traceback) and carry on with the page."""
    try:
        yield
    except CoreError as exc:
        st.error(f"{prefix}{exc}")


def focus_job(job_id: str) -> None:
    st.session_state[FOCUS_JOB] = job_id


def sidebar(svc: JobService, pages: list) -> None:
    """Navigation, provider, key status (never the key), data folder and active jobs."""
    cfg = svc.settings
    with st.sidebar:
        st.markdown("## BiodiversityASSET")
        for page in pages:
            st.page_link(page, label=page.title, icon=page.icon)
        st.divider()
        st.markdown("### Status")
        if cfg.provider == "openai":
            if cfg.has_openai_key:
                st.markdown(f"Provider: **OpenAI** · key configured (from {cfg.key_source})")
            else:
                st.warning("Provider: OpenAI, but no API key is configured. Set OPENAI_API_KEY in the "
                           "environment, `.env` or `.streamlit/secrets.toml`.")
        else:
            engine = f"forwarding to {cfg.local_chat_url}" if cfg.local_chat_url else "rule-based baseline"
            st.markdown(f"Provider: **local** embedded backend ({engine})")
            st.caption("No OpenAI key configured: jobs run on 127.0.0.1." if not cfg.has_openai_key
                       else "An OpenAI key is configured; choose OpenAI per job on Submit.")
        st.markdown(f"Data folder: `{cfg.data_dir}`")
        try:
            jobs = svc.list_jobs()
        except CoreError as exc:
            st.error(str(exc))
            return
        active = sum(1 for j in jobs if j.is_active)
        st.markdown(f"Active jobs: **{active}** of {len(jobs)}")
