"""What the Evaluate page (and Explore's agreement note) shows, as plain functions.

An evaluation reaches the page in two forms: an :class:`~core.evaluate.evaluation.Evaluation`
computed in this session, or the JSON record saved with the job by an earlier run (the page
shows the latest one on arrival). :class:`~core.evaluate.view.evaluation_view.EvaluationView` is
the one shape both become, so every table, chart and download is built the same way from either.

One job per module; import the names from the module that defines them:

- :mod:`~core.evaluate.view.formatting`: figures, shares, dates and file text as the page
  writes them.
- :mod:`~core.evaluate.view.evaluation_view`: one evaluation, fresh or saved.
- :mod:`~core.evaluate.view.tables`: the lines, figure tables, confusion matrices, per-group
  figures and lists of what was left out.
- :mod:`~core.evaluate.view.disagreements`: the disagreement browser and its download.
- :mod:`~core.evaluate.view.pickers`: choosing a job and a labels file (and its columns).
- :mod:`~core.evaluate.view.agreement_note`: the one-line note Explore shows.
- :mod:`~core.evaluate.view.comparison`: model against model.
- :mod:`~core.evaluate.view.methods_record`: the methods record downloads.

Light at import (pandas and orjson only): scikit-learn and scipy load when an evaluation is
run, not when a page merely shows a saved one.
"""
