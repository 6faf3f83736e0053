"""How the jobs table (core.monitoring.job_table) is drawn: on the Monitor page (every job) and
the home page (the newest)."""

from __future__ import annotations

import streamlit as st

JOBS_COLUMNS = {  # widths that fit the eight columns at 1440 px
    "job": st.column_config.TextColumn("job", width=180),
    "input files": st.column_config.TextColumn("input files", width=140),
    "rows": st.column_config.NumberColumn("rows", format="localized", width=70),
    "task": st.column_config.TextColumn("task", width=85),
    "status": st.column_config.TextColumn("status", width=160),
    "progress": st.column_config.ProgressColumn("answered", format="%.0f%%", min_value=0, max_value=100, width=80),
    "not answered": st.column_config.TextColumn("not answered", width=155),
    "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm", width=110),
}
