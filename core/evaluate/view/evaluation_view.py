"""One evaluation as the page shows it, whether computed in this session or read back from the
JSON record saved with the job: :class:`EvaluationView`, and the latest saved one of a job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import pandas as pd

from core.evaluate.store import latest_evaluation, list_evaluations
from core.models import Job

if TYPE_CHECKING:
    from core.evaluate.evaluation import Evaluation

DISAGREEMENT_COLUMNS = ["column", "kind", "paragraph_text", "pdf_file_name", "investor", "human_label", "human_votes",
                        "model_label", "explanation", "annotators", "human_rows", "custom_ids"]


@dataclass(frozen=True)
class EvaluationView:
    """An evaluation as the page shows it. ``metrics``, ``human_agreement`` and
    ``breakdowns`` hold the JSON form of the figures (``Evaluation.to_record``); ``lists``
    the paragraphs left out, by name, and ``disagreements`` the compared paragraphs where
    model and human differ (one row per paragraph and answer column)."""

    job_id: str
    task: str
    evaluated_at: str
    match_on: str
    min_group: int
    n_resamples: int
    confidence_level: float
    labels_file: str
    labels_sha256: str
    annotators: tuple[str, ...]
    label_columns: dict[str, str]  # answer column -> the labels file's column
    label_problem_count: int
    counts: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    human_agreement: dict[str, dict[str, Any] | None]
    breakdowns: dict[str, dict[str, dict[str, Any]]]  # by -> answer column -> breakdown record
    disagreements: pd.DataFrame
    lists: dict[str, pd.DataFrame]
    method: str
    saved_to: str | None
    from_saved_file: bool  # shown from the job's saved file, not computed in this session

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, lists: Mapping[str, pd.DataFrame] | None = None,
                    from_saved_file: bool = True) -> EvaluationView:
        """From an evaluation's JSON record (a saved file); ``lists`` replaces the record's
        lists when given (a fresh evaluation has them as frames already)."""
        labels = record.get("labels") or {}
        settings = record.get("settings") or {}
        if lists is None:
            lists = {name: pd.DataFrame(rows or []) for name, rows in (record.get("lists") or {}).items()}
        disagreements = lists.get("disagreements")
        if disagreements is None or disagreements.empty:
            disagreements = pd.DataFrame(columns=DISAGREEMENT_COLUMNS)
        counts = {name: record.get(name) for name in (
            "matched", "ties_excluded", "conflicts_excluded", "unmatched_labels", "unmatched_rows",
            "labelled_paragraphs", "job_paragraphs", "examples_excluded")}
        counts["not_succeeded"] = dict(record.get("not_succeeded") or {})
        return cls(
            job_id=str(record.get("job_id", "")), task=str(record.get("task", "")),
            evaluated_at=str(record.get("evaluated_at") or ""), match_on=str(record.get("match_on") or "text"),
            min_group=int(settings.get("min_group") or 0), n_resamples=int(settings.get("n_resamples") or 0),
            confidence_level=float(settings.get("confidence_level") or 0.95),
            labels_file=str(labels.get("file_name") or ""), labels_sha256=str(labels.get("sha256") or ""),
            annotators=tuple(labels.get("annotators") or ()), label_columns=dict(labels.get("columns") or {}),
            label_problem_count=int(labels.get("problem_count") or 0),
            counts=counts, metrics=dict(record.get("metrics") or {}),
            human_agreement=dict(record.get("human_agreement") or {}),
            breakdowns={by: dict(v or {}) for by, v in (record.get("breakdowns") or {}).items()},
            disagreements=disagreements,
            lists={name: frame for name, frame in lists.items() if name != "disagreements"},
            method=str(record.get("method") or ""), saved_to=record.get("saved_to"),
            from_saved_file=from_saved_file,
        )

    @classmethod
    def from_evaluation(cls, evaluation: Evaluation) -> EvaluationView:
        """From an evaluation computed in this session (its lists kept as frames, whole)."""
        return cls.from_record(evaluation.to_record(max_listed=0), lists=evaluation.lists(), from_saved_file=False)

    @property
    def columns(self) -> list[str]:
        """The evaluated answer columns, in task order."""
        return list(self.metrics)


def saved_view(job: Job) -> EvaluationView | None:
    """The latest evaluation saved with the job, or None."""
    record = latest_evaluation(Path(job.job_dir))
    return EvaluationView.from_record(record) if record else None


def saved_key(job: Job) -> tuple[str, ...]:
    """Changes whenever an evaluation of the job is saved (to know when a cached view is stale)."""
    return tuple(p.name for p in list_evaluations(Path(job.job_dir)))
