"""Home page: what the dashboard is for, the workflow with a link to each page, the newest jobs
and how far each got, the two chained tasks with what their scores mean (quoted from the
prompts), and what works without a key."""

from __future__ import annotations

import streamlit as st

from core.errors import CoreError
from core.monitoring import job_table
from core.overview import RECENT_JOBS, keyless_summary, progress_segments, task_overviews
from pages import _charts as charts
from pages._jobs_table import JOBS_COLUMNS
from pages._shared import EVALUATE_PAGE, EXPLORE_PAGE, MONITOR_PAGE, SUBMIT_PAGE, ensure_router, service, settings

ensure_router()

st.title("BiodiversityASSET batch dashboard")
st.markdown("Label investor-report paragraphs about biodiversity with a language model, in two chained tasks, "
            "through a batch API (OpenAI, Azure OpenAI or Anthropic: half the price of live calls) or the local "
            "backend on this computer. "
            "Every paid answer is kept.")

st.subheader("How it works")
STEPS = [
    (SUBMIT_PAGE, "1 · Submit", ":material/upload_file:",
     "Pick a task, upload CSV/XLSX files (or take them from the input folder), check them, see the cost, submit."),
    (MONITOR_PAGE, "2 · Monitor", ":material/monitoring:",
     "Follow every job's progress and time left; results are collected when a job finishes. Start task 2 here."),
    (EXPLORE_PAGE, "3 · Explore", ":material/query_stats:",
     "Filter, chart and read the paragraphs with their scores; download CSV or Excel."),
    (EVALUATE_PAGE, "4 · Evaluate", ":material/fact_check:",
     "Measure agreement with human coders and write the methods record."),
]
for column, (page, label, icon, text) in zip(st.columns(len(STEPS)), STEPS):
    with column.container(border=True, height="stretch"):
        st.page_link(page, label=label, icon=icon)
        st.caption(text)

st.subheader("Your jobs")
try:
    jobs = service().list_jobs()  # newest first, archived ones left out
except CoreError as exc:
    st.error(str(exc))
    jobs = []
newest = jobs[:RECENT_JOBS]
if not newest:
    st.caption("No jobs yet: start with Submit. Each job appears here and on Monitor with its progress.")
else:
    # Besides what it says, this draws Streamlit's chart and table once, so a page opened from
    # here (Explore, Monitor) finds their code already loaded in the tab: about 0.8 s sooner.
    st.vega_lite_chart(spec=charts.job_progress(progress_segments(newest)), key="home_jobs_chart", width="stretch")
    st.dataframe(job_table(newest), hide_index=True, key="home_jobs_table", column_config=JOBS_COLUMNS)
    hidden = len(jobs) - len(newest)
    st.page_link(MONITOR_PAGE, label=f"All jobs on Monitor ({hidden:,} more)" if hidden > 0 else "Follow them on Monitor",
                 icon=":material/monitoring:")

st.subheader("The two tasks")
for task in task_overviews():
    with st.container(border=True):
        st.markdown(f"**{task.title}** runs on {task.runs_on}.")
        st.markdown(task.question)
        with st.expander("What the scores mean (from the task's prompt)", icon=":material/info:"):
            for column, meaning in task.scores:
                st.markdown(f"`{column}`")
                st.markdown(meaning)

st.subheader("Without an API key")
st.markdown(keyless_summary(settings()))
st.markdown("With a key (`OPENAI_API_KEY` in the environment, a `.env` file or `.streamlit/secrets.toml`), choose "
            "the provider per job on Submit. The whole chain also runs from the command line: "
            "`python -m core demo` runs both tasks on the sample paragraphs.")
