"""BiodiversityASSET batch dashboard: routing and the shared sidebar only."""

import streamlit as st

from ui.common import EXPLORE_PAGE, MONITOR_PAGE, SUBMIT_PAGE, service, sidebar

st.set_page_config(page_title="BiodiversityASSET batches", page_icon=":material/eco:", layout="wide")

pages = [
    st.Page(SUBMIT_PAGE, title="Submit", icon=":material/upload_file:", url_path="submit", default=True),
    st.Page(MONITOR_PAGE, title="Monitor", icon=":material/monitoring:", url_path="monitor"),
    st.Page(EXPLORE_PAGE, title="Explore", icon=":material/query_stats:", url_path="explore"),
]
# The page scripts live in views/, not pages/: while a folder named pages/ exists next to this
# file, Streamlit serves a deep link such as /monitor on a fresh server through its legacy
# multipage mode (the page script alone, without this router and its sidebar). Links are our
# own (position="hidden"), and client.showSidebarNavigation = false keeps any generated list away.
navigation = st.navigation(pages, position="hidden")
sidebar(service(), pages)
navigation.run()
