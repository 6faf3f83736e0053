"""Shared dashboard plumbing: routing guard, the per-session JobService, errors as messages,
page paths. The leading underscore keeps it out of the navigation (pages are listed in app.py)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import streamlit as st

from core.errors import CoreError
from core.jobs import JobService
from core.settings import PROVIDER_LABELS, Settings, load_settings

HOME_PAGE = "pages/home.py"
SUBMIT_PAGE = "pages/submit.py"
MONITOR_PAGE = "pages/monitor.py"
EXPLORE_PAGE = "pages/explore.py"
EVALUATE_PAGE = "pages/evaluate.py"

# session_state keys shared between pages (widget keys live in each page)
FOCUS_JOB = "focus_job"  # the job the user last submitted or looked at
SUBMIT_PREFILL = "submit_prefill"  # {"task": ..., "parent": ...} set by Monitor's "start task 2"


# The browser tab's icon, shipped with the app: Streamlit turns a ":material/...:" page icon
# into a request to fonts.gstatic.com, which fails offline (and leaves this computer).
FAVICON = str(Path(__file__).resolve().parent.parent / "static" / "favicon.png")


def route() -> None:
    """Page config, navigation and the shared sidebar, then the chosen page (app.py's job).
    Home is the default page, served at "/"; every other page has its own URL (/submit ...)."""
    st.set_page_config(page_title="BiodiversityASSET batches", page_icon=FAVICON, layout="wide")
    # The pages' material icons come from the font bundled with Streamlit (no request leaves
    # the computer); only the favicon above needed a file of its own.
    pages = [
        st.Page(HOME_PAGE, title="Home", icon=":material/home:", url_path="home", default=True),
        st.Page(SUBMIT_PAGE, title="Submit", icon=":material/upload_file:", url_path="submit"),
        st.Page(MONITOR_PAGE, title="Monitor", icon=":material/monitoring:", url_path="monitor"),
        st.Page(EXPLORE_PAGE, title="Explore", icon=":material/query_stats:", url_path="explore"),
        st.Page(EVALUATE_PAGE, title="Evaluate", icon=":material/fact_check:", url_path="evaluate"),
    ]
    # Links are our own (position="hidden"); client.showSidebarNavigation = false keeps away
    # the list Streamlit could generate from the pages/ folder.
    navigation = st.navigation(pages, position="hidden")
    sidebar(service(), pages)
    navigation.run()


def ensure_router() -> None:
    """Make sure this page runs under the router.

    On a fresh server (and in every AppTest run), Streamlit starts in its legacy mode for apps
    with a pages/ folder, and serves a deep link such as /monitor by running the page script
    alone: no page config, no sidebar. That mode ends when st.navigation runs, so the page
    hands over to the router, which resolves the same URL and runs this page again inside it.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        route()
        st.stop()


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
            cached.tidy()  # a crash's leftovers, once per session
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
    """Navigation, provider, key status (never the key), data folder and active jobs.

    The job counts are the Monitor page's: jobs that are not archived (archived ones are said
    apart). Monitor draws the whole app again whenever a job starts, finishes, is added,
    archived or deleted, so these counts follow its refreshes."""
    from core.monitoring import jobs_count_line  # imported here: this function is all the sidebar owns
    from core.overview import local_engine

    cfg = svc.settings
    with st.sidebar:
        st.markdown("## BiodiversityASSET")
        for page in pages:
            st.page_link(page, label=page.title, icon=page.icon)
        st.divider()
        st.markdown("### Status")
        if cfg.provider in ("azure", "anthropic"):
            label = PROVIDER_LABELS[cfg.provider]
            if missing := cfg.missing_key_message(cfg.provider):
                st.warning(f"Provider: {label}. {missing}")
            else:
                st.markdown(f"Provider: **{label}** · {cfg.key_status()[cfg.provider]}")
        elif cfg.provider == "openai":
            if cfg.has_openai_key:
                st.markdown(f"Provider: **OpenAI** · key configured (from {cfg.key_source})")
            else:
                st.warning("Provider: OpenAI, but no API key is configured. Set OPENAI_API_KEY in the "
                           "environment, `.env` or `.streamlit/secrets.toml`.")
        else:
            engine = local_engine(cfg)
            st.markdown(f"Provider: **local** embedded backend ({engine})")
            st.caption("No OpenAI key configured: jobs run on 127.0.0.1." if not cfg.has_openai_key
                       else "An OpenAI key is configured; choose OpenAI per job on Submit.")
        for line in cfg.other_provider_lines():  # Azure, Anthropic: where the key was found, never the key
            st.caption(line)
        st.markdown(f"Data folder: `{cfg.data_dir}`")
        try:
            jobs, damaged = svc.scan_jobs(archived=None)  # one read of the registry for both counts
        except CoreError as exc:
            st.error(str(exc))
            return
        for notice in svc.notices():  # jobs taken back after the registry file was lost
            st.warning(notice)
        for record in damaged:
            st.warning(str(record))
        archived = sum(1 for job in jobs if job.archived_at)
        st.markdown(jobs_count_line(jobs, archived=archived, emphasis="**"))
