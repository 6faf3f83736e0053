"""Home page: what the dashboard is for, the workflow with a link to each page, the two chained
tasks with what their scores mean (quoted from the prompts), and what works without a key."""

from __future__ import annotations

import streamlit as st

from core.overview import keyless_summary, task_overviews
from pages._shared import EVALUATE_PAGE, EXPLORE_PAGE, MONITOR_PAGE, SUBMIT_PAGE, ensure_router, settings

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
