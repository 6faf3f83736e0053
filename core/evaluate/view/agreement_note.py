"""The one-line agreement note Explore shows for a job: Cohen's kappa with its interval, n, date
and labels file of the job's latest saved evaluation.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from core.evaluate.store import latest_evaluation, list_evaluations
from core.evaluate.view.formatting import answer_label, fmt, fmt_date, fmt_interval, md_text
from core.models import Job

def agreement_note(job: Job) -> str | None:
    """One line on the job's latest saved evaluation (kappa with its interval, n, date and
    labels file), or None when there is none. Remembered per saved file, so a page that
    redraws on every filter change reads the file once."""
    paths = list_evaluations(Path(job.job_dir))
    if not paths:
        return None
    try:
        info = paths[-1].stat()
    except OSError:  # removed meanwhile: read whatever is the latest now
        record = latest_evaluation(Path(job.job_dir))
        return note_from_record(record) if record else None
    return _saved_note(job.job_dir, str(paths[-1]), info.st_mtime_ns, info.st_size)


@lru_cache(maxsize=256)
def _saved_note(job_dir: str, path: str, mtime_ns: int, size: int) -> str | None:
    """The note of the latest evaluation, once per version (path, mtime, size) of its file."""
    record = latest_evaluation(Path(job_dir))
    return note_from_record(record) if record else None


def note_from_record(record: Mapping[str, Any]) -> str | None:
    """The note's text from a saved evaluation record."""
    metrics = record.get("metrics") or {}
    if not metrics:
        return None
    parts = []
    for column, m in metrics.items():
        interval = fmt_interval(m.get("cohen_kappa_ci"))
        value = f"{fmt(m.get('cohen_kappa'))}{' (95% CI ' + interval[1:-1].replace(', ', ' to ') + ')' if interval else ''}"
        parts.append(f"{answer_label(column).lower()} {value}" if len(metrics) > 1 else value)
    n = max(int(m.get("n") or 0) for m in metrics.values())
    labels = (record.get("labels") or {}).get("file_name") or "a labels file"
    return (f"Agreement with human labels: Cohen's kappa {', '.join(parts)}, n = {n:,} paragraphs "
            f"(evaluated {fmt_date(record.get('evaluated_at'))} against {md_text(labels, 60)}).")
