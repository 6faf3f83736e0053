"""Model against model: two or more jobs of one task over the same paragraphs.

Another model, another prompt version, or the same settings run again: pairwise Cohen's kappa
and Krippendorff's alpha between jobs, alpha across all of them (a stability score in the
sense of Barrie et al. 2024) with a bootstrap interval, and the paragraphs on which they
disagree. Paragraphs are matched as in the evaluation (normalised text); a job's rows count
only where they succeeded and agree with each other. A retry job stands for its original job,
whose results already carry the retry's answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import pandas as pd

from core.evaluate.defaults import MatchOn
from core.evaluate.errors import ComparisonError
from core.evaluate.evaluation import check_resamples, frame_records, original_job
from core.evaluate.matching import job_units
from core.evaluate.metrics import (
    CONFIDENCE_LEVEL,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    RaterAgreement,
    rater_agreement,
)
from core.tasks import TaskSpec, get_task

if TYPE_CHECKING:
    from core.jobs import JobService


@dataclass(frozen=True)
class JobSide:
    """What one job brings to a comparison."""

    job_id: str
    model: str
    paragraphs: int  # distinct paragraphs in its results
    answered: int  # of which with a usable answer (succeeded, no conflict)
    conflicts: int
    not_succeeded: dict[str, int]

    def to_record(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {"job_id": self.job_id, "model": self.model, "paragraphs": self.paragraphs,
                "answered": self.answered, "conflicts": self.conflicts, "not_succeeded": dict(self.not_succeeded)}


@dataclass(frozen=True)
class Comparison:
    """Agreement between jobs per answer column, and where they disagree.

    ``answers`` is indexed by paragraph key with ``paragraph_text``, ``pdf_file_name`` and, per
    job and answer column, ``<job>:<column>`` (missing where the job has no usable answer) and
    ``<job>:explanation``."""

    task: str
    match_on: MatchOn
    jobs: tuple[JobSide, ...]
    columns: dict[str, RaterAgreement]
    answers: pd.DataFrame
    shared: int  # paragraphs every job answered
    seed: int
    n_resamples: int
    confidence_level: float

    @property
    def job_ids(self) -> list[str]:
        """The compared jobs, in the order given."""
        return [j.job_id for j in self.jobs]

    def disagreements(self, column: str | None = None) -> pd.DataFrame:
        """Paragraphs answered by two or more jobs whose answers differ (in ``column``, or in
        any answer column), with every job's answers and explanation."""
        names = [column] if column else list(self.columns)
        differ = pd.Series(False, index=self.answers.index)
        for name in names:
            values = self.answers[[f"{j}:{name}" for j in self.job_ids]]
            answered = values.notna().sum(axis=1)
            differ |= (answered >= 2) & (values.nunique(axis=1, dropna=True) > 1)
        table = self.answers.loc[differ].reset_index(drop=True)
        return table

    def summary_lines(self) -> list[str]:
        """A plain-text summary: the jobs, then agreement per answer column."""
        lines = [f"Comparing {len(self.jobs)} {self.task} jobs over {len(self.answers):,} paragraphs "
                 f"({self.shared:,} answered by all):"]
        for side in self.jobs:
            failed = ", ".join(f"{n:,} {s}" for s, n in side.not_succeeded.items())
            lines.append(f"  {side.job_id}  {side.model or '?'}: {side.answered:,} of {side.paragraphs:,} paragraphs "
                         f"answered{f'; {failed}' if failed else ''}"
                         f"{f'; {side.conflicts:,} conflicting' if side.conflicts else ''}")
        for column, agreement in self.columns.items():
            low, high = agreement.krippendorff_alpha_ci.to_record()
            interval = "[n/a]" if low is None or high is None else f"[{low:.2f}, {high:.2f}]"
            lines.append(f"{column}: alpha across all {_fmt(agreement.krippendorff_alpha)} {interval} "
                         f"({agreement.units:,} paragraphs), mean pairwise kappa "
                         f"{_fmt(agreement.mean_pairwise_kappa)}, {len(self.disagreements(column)):,} disagreements")
            for pair in agreement.pairs:
                lines.append(f"  {pair.a} vs {pair.b}: n={pair.n:,} kappa {_fmt(pair.cohen_kappa)} alpha "
                             f"{_fmt(pair.krippendorff_alpha)} agreement {_fmt(pair.agreement)}")
        return lines

    def to_record(self, *, max_listed: int | None = None) -> dict[str, Any]:
        """JSON-ready data; the disagreement list is cut to ``max_listed`` rows when given."""
        table = self.disagreements()
        shown = table if max_listed is None else table.head(max_listed)
        return {
            "task": self.task,
            "match_on": self.match_on,
            "jobs": [j.to_record() for j in self.jobs],
            "shared_paragraphs": self.shared,
            "agreement": {c: a.to_record() for c, a in self.columns.items()},
            "disagreements_count": len(table),
            "disagreements": frame_records(shown),
            "disagreements_truncated": len(shown) < len(table),
            "settings": {"seed": self.seed, "n_resamples": self.n_resamples,
                         "confidence_level": self.confidence_level, "bootstrap": "percentile"},
        }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def compare_frames(frames: dict[str, pd.DataFrame], *, task: TaskSpec, models: dict[str, str] | None = None,
                   match_on: MatchOn = "text", seed: int = DEFAULT_SEED, n_resamples: int = DEFAULT_RESAMPLES,
                   confidence_level: float = CONFIDENCE_LEVEL) -> Comparison:
    """Compare the result rows of several jobs (job id -> ``collect(...).frame``)."""
    if len(frames) < 2:
        raise ComparisonError("Comparing needs two or more different jobs.")
    check_resamples(n_resamples)
    columns = list(task.score_columns)
    sides: list[JobSide] = []
    usable_units: dict[str, pd.DataFrame] = {}
    for job_id, frame in frames.items():
        units = job_units(frame, columns=columns, match_on=match_on).frame
        usable = units[(units["status"] == "succeeded") & ~units["conflict"]]
        failed = units[units["status"] != "succeeded"]["status"].value_counts()
        sides.append(JobSide(
            job_id=job_id, model=(models or {}).get(job_id, ""), paragraphs=len(units), answered=len(usable),
            conflicts=int(((units["status"] == "succeeded") & units["conflict"]).sum()),
            not_succeeded={str(s): int(n) for s, n in failed.items()},
        ))
        usable_units[job_id] = usable
    texts = pd.concat([u[["paragraph_text", "pdf_file_name"]] for u in usable_units.values()])
    answers = texts[~texts.index.duplicated()].copy()
    for job_id, usable in usable_units.items():
        for column in columns:
            answers[f"{job_id}:{column}"] = usable[column].reindex(answers.index).astype("Int64")
        answers[f"{job_id}:explanation"] = usable["explanation"].reindex(answers.index)
    first = answers[[f"{j}:{columns[0]}" for j in frames]]
    if not bool((first.notna().sum(axis=1) >= 2).any()):
        raise ComparisonError(f"The jobs {', '.join(frames)} share no paragraph that two of them answered, so "
                              "they cannot be compared.")

    agreement: dict[str, RaterAgreement] = {}
    for column in columns:
        matrix = answers[[f"{j}:{column}" for j in frames]].set_axis(list(frames), axis=1)
        agreement[column] = rater_agreement(matrix, intervals=True, seed=seed, n_resamples=n_resamples,
                                            confidence_level=confidence_level)
    everyone = first.notna().all(axis=1)
    return Comparison(
        task=task.name, match_on=match_on, jobs=tuple(sides), columns=agreement, answers=answers,
        shared=int(everyone.sum()), seed=seed, n_resamples=n_resamples, confidence_level=confidence_level,
    )


def run_comparison(service: JobService, job_ids: Sequence[str], *, match_on: MatchOn = "text",
                   seed: int = DEFAULT_SEED, n_resamples: int = DEFAULT_RESAMPLES) -> Comparison:
    """Collect each job (retries included in their original job) and compare them."""
    jobs = []
    for job_id in job_ids:
        job = original_job(service, job_id)
        if job.id not in {j.id for j in jobs}:
            jobs.append(job)
    if len(jobs) < 2:
        given = ", ".join(job_ids)
        raise ComparisonError(f"Comparing needs two or more different jobs; {given} "
                              f"{'is' if len(job_ids) == 1 else 'are'} one job (a retry counts as its original job).")
    tasks = {j.task for j in jobs}
    if len(tasks) > 1:
        listed = ", ".join(f"{j.id} ({j.task})" for j in jobs)
        raise ComparisonError(f"Only jobs of one task can be compared: {listed}.")
    frames = {j.id: service.collect(j.id).frame for j in jobs}
    return compare_frames(frames, task=get_task(jobs[0].task), models={j.id: j.model for j in jobs},
                          match_on=match_on, seed=seed, n_resamples=n_resamples)


__all__ = ["Comparison", "JobSide", "compare_frames", "run_comparison"]
