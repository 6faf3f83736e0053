"""BiodiversityASSET batch core: tasks, inputs, requests, registry, jobs and results.

Plain Python; never imports Streamlit. The command line lives in ``core.cli``.
"""

__version__ = "0.1.0"
