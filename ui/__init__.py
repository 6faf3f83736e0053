"""Streamlit helpers shared by the dashboard views (kept out of views/ so they never become a page)."""
