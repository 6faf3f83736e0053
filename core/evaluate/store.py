"""Where a job's evaluations are kept, writing them and reading them back. Light on purpose (orjson only,
no scikit-learn or scipy): Explore shows the latest agreement of a job without loading the
evaluation's libraries, and the command line lists evaluations without them."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from core.errors import StorageError
from core.safefs import atomic_write, describe_os_error

if TYPE_CHECKING:
    from core.evaluate.evaluation import Evaluation

EVALUATIONS_FOLDER = "evaluations"


def evaluations_dir(job_dir: Path) -> Path:
    """Where a job's evaluations are kept."""
    return Path(job_dir) / EVALUATIONS_FOLDER


def list_evaluations(job_dir: Path) -> list[Path]:
    """A job's saved evaluations, oldest first (the names sort by time)."""
    folder = evaluations_dir(job_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("evaluation_*.json") if p.is_file() and not p.name.startswith("."))


def latest_evaluation(job_dir: Path) -> dict[str, Any] | None:
    """The newest readable saved evaluation of a job, or None. A damaged file is skipped (the
    one before it is used), so one bad write never hides the others."""
    for path in reversed(list_evaluations(job_dir)):
        try:
            record = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        if isinstance(record, dict):
            record.setdefault("saved_to", str(path))
            return record
    return None


def save_evaluation(evaluation: Evaluation, *, job_dir: Path) -> Path:
    """Write the evaluation (every list in full) as ``<job_dir>/evaluations/<time>.json``,
    privately (0600) and atomically; returns its path."""
    folder = evaluations_dir(job_dir)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S_%fZ")
    path = folder / f"evaluation_{stamp}.json"
    record = evaluation.to_record()
    record["saved_to"] = str(path)
    try:
        atomic_write(path, orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    except OSError as exc:
        raise StorageError(describe_os_error(f"Could not save the evaluation in {folder}", exc)) from None
    return path


__all__ = ["EVALUATIONS_FOLDER", "evaluations_dir", "list_evaluations", "latest_evaluation", "save_evaluation"]
