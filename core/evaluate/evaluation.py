"""One evaluation of a job against human labels: figures per answer column, human-human
agreement, breakdowns, what was left out and why; saved in the job's folder.

``run_evaluation`` is what the command line and the Evaluate page call; ``evaluate`` does the
same on frames already in memory (no service, no files), which is what the tests drive.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

import numpy as np
import pandas as pd

from core.evaluate.defaults import MATCH_ON, MatchOn
from core.evaluate.errors import EvaluationError, NothingToCompare
from core.evaluate.labels import ANNOTATOR, HumanLabels, Source, read_labels
from core.evaluate.matching import (
    INVESTOR,
    KEY,
    Match,
    conflict_answers,
    human_units,
    job_units,
    match,
    normalise_text,
)
from core.evaluate.metrics import (
    CONFIDENCE_LEVEL,
    DEFAULT_MIN_GROUP,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    BinaryMetrics,
    Breakdown,
    RaterAgreement,
    binary_metrics,
    breakdown,
    rater_agreement,
)
# kept importable from here (the store itself is light, for Explore and the command line)
from core.evaluate.store import EVALUATIONS_FOLDER, evaluations_dir, latest_evaluation, list_evaluations, save_evaluation
from core.inputs import excerpt
from core.tasks import TaskSpec, get_task

if TYPE_CHECKING:
    from core.jobs import JobService
    from core.models import Job

MODEL_RATER = "model"
Kind = Literal["false_positive", "false_negative"]
BREAKDOWNS = ("investor", "report")
_EXCERPT = 200  # characters of a job paragraph kept in a saved list of unmatched job rows

METHOD_NOTE = (
    "Paragraphs matched on normalised text (Unicode NFKC, typographic quotes and dashes to ASCII, "
    "whitespace runs to one space, trimmed, case kept){report}. Duplicate human labels resolved by strict "
    "majority; ties excluded. Job rows with the same normalised text form one unit; only succeeded rows "
    "count, and units whose answers disagree are excluded. Accuracy, precision, recall, F1 (positive class 1), "
    "Cohen's kappa, Matthews correlation and the confusion matrix from scikit-learn; Krippendorff's alpha "
    "(nominal) from the krippendorff package; {level:.0%} intervals for kappa, alpha and F1 by percentile "
    "bootstrap (scipy.stats.bootstrap, {resamples:,} resamples, seed {seed})."
)


@dataclass(frozen=True)
class ColumnEvaluation:
    """Everything computed for one answer column."""

    column: str
    metrics: BinaryMetrics
    ties_excluded: int
    human_agreement: RaterAgreement | None  # annotators among themselves, all labelled paragraphs
    model_and_annotators: RaterAgreement | None  # the model as one more rater, matched paragraphs
    breakdowns: tuple[Breakdown, ...]

    def to_record(self) -> dict[str, Any]:
        """Figures (the ``metrics`` entry of the JSON) plus the column's extras."""
        return {**self.metrics.to_record(), "ties_excluded": self.ties_excluded}


@dataclass(frozen=True)
class Evaluation:
    """A job's answers against human labels. ``match`` holds the joined units and every list
    of what was left out; ``columns`` the figures per answer column."""

    job_id: str
    task: str
    evaluated_at: str
    match_on: MatchOn
    min_group: int
    seed: int
    n_resamples: int
    confidence_level: float
    labels: HumanLabels
    match: Match
    columns: dict[str, ColumnEvaluation]
    conflict_rows: pd.DataFrame  # the succeeded rows behind each conflict, with their answers
    saved_to: Path | None = None
    # labelled paragraphs left out because the job's embedding labeler learned from them: a
    # training example is never evidence (paragraph_text, pdf_file_name, rows)
    examples_excluded: pd.DataFrame = field(default_factory=lambda: _examples_frame([], [], []))
    examples_sha256: str | None = None

    # ----- counts (distinct normalised paragraphs) ---------------------------------------------
    @property
    def matched(self) -> int:
        """Paragraphs compared in at least one answer column."""
        return self.match.matched

    @property
    def ties_excluded(self) -> int:
        """Labelled paragraphs left with no comparable column because the human labels tie."""
        return self.match.tied_units

    @property
    def conflicts_excluded(self) -> int:
        """Labelled paragraphs whose job rows gave different answers."""
        return len(self.match.conflicts)

    @property
    def unmatched_labels(self) -> int:
        """Labelled paragraphs that are not in the job at all."""
        return len(self.match.unmatched_labels)

    @property
    def unmatched_rows(self) -> int:
        """Job paragraphs that no human labelled."""
        return len(self.match.unmatched_rows)

    # ----- tables for a page or a download ------------------------------------------------------
    def figures(self) -> pd.DataFrame:
        """One row per answer column: n, prevalences, baseline, every figure with its interval."""
        rows = []
        for column, result in self.columns.items():
            record = result.metrics.to_record()
            (tn, fp), (fn, tp) = result.metrics.confusion
            rows.append({
                "column": column, **{k: v for k, v in record.items() if not k.endswith("_ci") and k != "confusion"},
                "f1_ci_low": result.metrics.f1_ci.low, "f1_ci_high": result.metrics.f1_ci.high,
                "cohen_kappa_ci_low": result.metrics.cohen_kappa_ci.low,
                "cohen_kappa_ci_high": result.metrics.cohen_kappa_ci.high,
                "krippendorff_alpha_ci_low": result.metrics.krippendorff_alpha_ci.low,
                "krippendorff_alpha_ci_high": result.metrics.krippendorff_alpha_ci.high,
                "tn": tn, "fp": fp, "fn": fn, "tp": tp, "ties_excluded": result.ties_excluded,
                "human_human_alpha": result.human_agreement.krippendorff_alpha if result.human_agreement else None,
                "human_human_mean_kappa": (result.human_agreement.mean_pairwise_kappa
                                           if result.human_agreement else None),
            })
        return pd.DataFrame(rows)

    def breakdown_table(self, by: str) -> pd.DataFrame:
        """Figures per group (``by`` is ``investor`` or ``report``) for every answer column, one
        row per (column, group), groups of at least ``min_group`` paragraphs only."""
        rows = []
        for column, result in self.columns.items():
            for item in result.breakdowns:
                if item.by == by:
                    rows += [{"column": column, **g.to_record()} for g in item.groups]
        return pd.DataFrame(rows)

    def disagreements(self, column: str | None = None, kind: Kind | None = None) -> pd.DataFrame:
        """Compared paragraphs where the model and the (majority) human label differ: in
        ``column`` or in any column, optionally only false positives (model 1, human 0) or
        false negatives (model 0, human 1). One row per paragraph and column."""
        parts = []
        pairs = self.match.pairs
        for name in ([column] if column else list(self.columns)):
            human, model = pairs[f"human_{name}"], pairs[f"model_{name}"]
            differ = (human.notna() & (human != model)).fillna(False).astype(bool)
            if kind == "false_positive":
                differ &= (model == 1).fillna(False).astype(bool)
            elif kind == "false_negative":
                differ &= (model == 0).fillna(False).astype(bool)
            part = pairs.loc[differ]
            parts.append(pd.DataFrame({
                "column": name,
                "kind": np.where(part[f"model_{name}"] == 1, "false_positive", "false_negative"),
                "paragraph_text": part["paragraph_text"].to_numpy(),
                "pdf_file_name": part["pdf_file_name"].to_numpy(),
                "investor": part[INVESTOR].to_numpy(),
                "human_label": part[f"human_{name}"].to_numpy(),
                "human_votes": [f"{n1} x 1, {n0} x 0" for n0, n1 in
                                zip(part[f"n0_{name}"].tolist(), part[f"n1_{name}"].tolist())],
                "model_label": part[f"model_{name}"].to_numpy(),
                "explanation": part["explanation"].to_numpy(),
                "annotators": part["annotators"].to_numpy(),
                "human_rows": part["human_rows"].to_numpy(),
                "custom_ids": part["custom_ids"].to_numpy(),
            }))
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def lists(self) -> dict[str, pd.DataFrame]:
        """Every list of paragraphs left out, by name (for downloads)."""
        problems = pd.DataFrame([p.to_record() for p in self.labels.problems],
                                columns=["row", "column", "value", "reason"])
        return {
            "ties": self.match.ties.drop(columns=[KEY]),
            "conflicts": self.match.conflicts.drop(columns=[KEY]),
            "conflict_answers": self.conflict_rows.drop(columns=[KEY]),
            "not_succeeded": self.match.not_succeeded.drop(columns=[KEY]),
            "unmatched_labels": self.match.unmatched_labels.drop(columns=[KEY]),
            "unmatched_rows": self.match.unmatched_rows.drop(columns=[KEY]),
            "label_problems": problems,
            "examples_excluded": self.examples_excluded,
            "disagreements": self.disagreements(),
        }

    def summary_lines(self) -> list[str]:
        """A plain-text summary: what was compared and left out, then the figures per column."""
        labels = self.labels
        who = f"{len(labels.annotators)} annotators" if labels.annotators else "no annotator column"
        lines = [f"Job {self.job_id} ({self.task}) against {excerpt(labels.file_name)} ({who}, "
                 f"{self.match.labelled_units:,} labelled paragraphs; matched on {self.match_on}):"]
        failed = self.match.not_succeeded_by_status
        failed_text = ", ".join(f"{n:,} {s}" for s, n in failed.items())
        lines.append(
            f"  {self.matched:,} compared; excluded: {self.ties_excluded:,} tied, {self.conflicts_excluded:,} "
            f"conflicting, {sum(failed.values()):,} without an answer{f' ({failed_text})' if failed else ''}; "
            f"{self.unmatched_labels:,} labelled paragraphs not in the job; {self.unmatched_rows:,} job paragraphs "
            "not labelled"
        )
        if len(self.examples_excluded):
            lines.append(f"  {len(self.examples_excluded):,} labelled paragraphs left out: the job's embedding labeler "
                         f"learned from them (example set {str(self.examples_sha256)[:12]}), so they are no evidence")
        if labels.problem_count:
            lines.append(f"  {labels.problem_count:,} label problem(s), first: {labels.problems[0]}")
        for column, result in self.columns.items():
            m = result.metrics
            (tn, fp), (fn, tp) = m.confusion
            lines += [
                f"{column} (n={m.n:,}; prevalence human {_fmt(m.human_prevalence)}, model "
                f"{_fmt(m.model_prevalence)}; majority-class baseline accuracy {_fmt(m.majority_baseline_accuracy)})",
                f"  accuracy {_fmt(m.accuracy)}  precision {_fmt(m.precision)}  recall {_fmt(m.recall)}  "
                f"F1 {_fmt(m.f1)} {_ci(m.f1_ci.to_record())}",
                f"  Cohen's kappa {_fmt(m.cohen_kappa)} {_ci(m.cohen_kappa_ci.to_record())}  Krippendorff's alpha "
                f"{_fmt(m.krippendorff_alpha)} {_ci(m.krippendorff_alpha_ci.to_record())}  MCC {_fmt(m.mcc)}",
                f"  confusion: tn {tn:,}  fp {fp:,}  fn {fn:,}  tp {tp:,}"
                + (f"  ({result.ties_excluded:,} tied excluded)" if result.ties_excluded else ""),
            ]
            if result.human_agreement:
                h = result.human_agreement
                lines.append(f"  human-human ({len(h.raters)} annotators, {h.units:,} paragraphs): alpha "
                             f"{_fmt(h.krippendorff_alpha)} {_ci(h.krippendorff_alpha_ci.to_record())}, mean "
                             f"pairwise kappa {_fmt(h.mean_pairwise_kappa)}")
            for item in result.breakdowns:
                shown = ", ".join(f"{g.group} n={g.metrics.n} kappa {_fmt(g.metrics.cohen_kappa)} "
                                  f"F1 {_fmt(g.metrics.f1)}" for g in item.groups[:10])
                more = f" and {len(item.groups) - 10} more" if len(item.groups) > 10 else ""
                small = f"; {item.small_groups} smaller groups left out" if item.small_groups else ""
                lines.append(f"  by {item.by} (n >= {item.min_group}): {shown or 'no group large enough'}{more}{small}")
        if self.saved_to:
            lines.append(f"Saved to {self.saved_to}")
        return lines

    def method_note(self) -> str:
        """One paragraph saying how the figures were made, for a methods section."""
        return METHOD_NOTE.format(report=" and report file name" if self.match_on == "text+report" else "",
                                  level=self.confidence_level, resamples=self.n_resamples, seed=self.seed)

    def to_record(self, *, max_listed: int | None = None) -> dict[str, Any]:
        """The evaluation as JSON-ready data. Lists are cut to ``max_listed`` items each (all
        when None; ``listed_truncated`` says which were cut). The job's unmatched paragraphs
        are kept as excerpts: the job's own results hold them whole."""
        lists: dict[str, Any] = {}
        truncated: dict[str, bool] = {}
        for name, frame in self.lists().items():
            if name == "unmatched_rows":
                frame = frame.assign(paragraph_text=frame["paragraph_text"].map(lambda t: excerpt(t, _EXCERPT)))
            shown = frame if max_listed is None else frame.head(max_listed)
            truncated[name] = len(shown) < len(frame)
            lists[name] = frame_records(shown)
        human = {c: (r.human_agreement.to_record() if r.human_agreement else None) for c, r in self.columns.items()}
        with_model = {c: (r.model_and_annotators.to_record() if r.model_and_annotators else None)
                      for c, r in self.columns.items()}
        breakdowns: dict[str, dict[str, Any]] = {by: {} for by in BREAKDOWNS}
        for column, result in self.columns.items():
            for item in result.breakdowns:
                breakdowns[item.by][column] = item.to_record()
        return {
            "job_id": self.job_id,
            "task": self.task,
            "evaluated_at": self.evaluated_at,
            "match_on": self.match_on,
            "matched": self.matched,
            "ties_excluded": self.ties_excluded,
            "conflicts_excluded": self.conflicts_excluded,
            "unmatched_labels": self.unmatched_labels,
            "unmatched_rows": self.unmatched_rows,
            "examples_excluded": len(self.examples_excluded),
            "examples_sha256": self.examples_sha256,
            "not_succeeded": self.match.not_succeeded_by_status,
            "labelled_paragraphs": self.match.labelled_units,
            "job_paragraphs": self.match.job_units,
            "metrics": {c: r.to_record() for c, r in self.columns.items()},
            "human_agreement": human,
            "model_and_annotators": with_model,
            "breakdowns": breakdowns,
            "settings": {"min_group": self.min_group, "seed": self.seed, "n_resamples": self.n_resamples,
                         "confidence_level": self.confidence_level, "bootstrap": "percentile"},
            "method": self.method_note(),
            "labels": self.labels.to_record(),
            "lists": lists,
            "listed_truncated": truncated,
            "saved_to": str(self.saved_to) if self.saved_to else None,
        }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _ci(values: list[float | None]) -> str:
    return "[n/a]" if values[0] is None or values[1] is None else f"[{values[0]:.2f}, {values[1]:.2f}]"


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts (missing values as None, numpy numbers as Python numbers)."""
    out = []
    for row in frame.astype(object).where(frame.notna(), None).to_dict(orient="records"):
        out.append({k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()})
    return out


MIN_RESAMPLES = 50  # below this a 95% percentile interval is read off a handful of values


def check_resamples(n_resamples: int) -> None:
    """Refuse a bootstrap too small to give a 95% interval."""
    if n_resamples < MIN_RESAMPLES:
        raise EvaluationError(f"The bootstrap needs at least {MIN_RESAMPLES} resamples (got {n_resamples}); "
                              "1,000 is the default.")


def evaluate(results: pd.DataFrame, labels: HumanLabels, *, job_id: str, task: TaskSpec,
             match_on: MatchOn = "text", min_group: int = DEFAULT_MIN_GROUP, seed: int = DEFAULT_SEED,
             n_resamples: int = DEFAULT_RESAMPLES, confidence_level: float = CONFIDENCE_LEVEL,
             now: datetime | None = None, examples: Sequence[str] | None = None,
             examples_sha256: str | None = None) -> Evaluation:
    """Evaluate a job's result rows (``JobService.collect(job).frame``) against human labels.

    ``examples`` are the paragraphs the job's embedding labeler learned from (its example set,
    ``examples_sha256``): their labels are left out and listed, never counted as evidence.

    Raises :class:`NothingToCompare` when no labelled paragraph can be compared."""
    if match_on not in MATCH_ON:
        raise EvaluationError(f"Unknown matching '{match_on}'; choose one of: {', '.join(MATCH_ON)}.")
    if min_group < 1:
        raise EvaluationError(f"The smallest group size must be at least 1 (got {min_group}).")
    check_resamples(n_resamples)
    labels, left_out = _without_examples(labels, examples, job_id=job_id)
    columns = [c for c in labels.columns if c in task.score_columns]
    jobs = job_units(results, columns=columns, match_on=match_on)
    people = human_units(labels, match_on=match_on)
    joined = match(jobs, people, match_on=match_on)
    if len(left_out):  # the examples' own job rows were left out above, not "not labelled"
        learned = set(left_out["paragraph_text"].map(normalise_text))
        unlabelled = joined.unmatched_rows
        joined = replace(joined, unmatched_rows=unlabelled[~unlabelled["paragraph_text"].map(normalise_text)
                                                            .isin(learned)].reset_index(drop=True))
    if joined.matched == 0:
        raise NothingToCompare(_nothing_message(job_id, labels, joined))

    per_column: dict[str, ColumnEvaluation] = {}
    for column in columns:
        pairs = joined.pairs[joined.pairs[f"human_{column}"].notna()]
        human = pairs[f"human_{column}"].to_numpy(dtype=np.int64)
        model = pairs[f"model_{column}"].to_numpy(dtype=np.int64)
        figures = binary_metrics(human, model, seed=seed, n_resamples=n_resamples,
                                 confidence_level=confidence_level)
        groups = tuple(
            breakdown(pairs[source], pairs[f"human_{column}"], pairs[f"model_{column}"], by=by, column=column,
                      min_group=min_group)
            for by, source in (("investor", INVESTOR), ("report", "pdf_file_name"))
        )
        human_agreement, with_model = _annotator_agreement(joined, column, seed=seed, n_resamples=n_resamples,
                                                           confidence_level=confidence_level)
        per_column[column] = ColumnEvaluation(
            column=column, metrics=figures, ties_excluded=joined.column_ties.get(column, 0),
            human_agreement=human_agreement, model_and_annotators=with_model, breakdowns=groups,
        )
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds")
    return Evaluation(
        job_id=job_id, task=task.name, evaluated_at=stamp, match_on=match_on, min_group=min_group, seed=seed,
        n_resamples=n_resamples, confidence_level=confidence_level, labels=labels, match=joined,
        columns=per_column,
        conflict_rows=conflict_answers(results, joined.conflicts, columns=columns, match_on=match_on),
        examples_excluded=left_out, examples_sha256=examples_sha256 if len(left_out) else None,
    )


def _examples_frame(texts: Sequence[str], reports: Sequence[str], rows: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({"paragraph_text": pd.Series(list(texts), dtype="object"),
                         "pdf_file_name": pd.Series(list(reports), dtype="object"),
                         "rows": pd.Series(list(rows), dtype="object")})


def _without_examples(labels: HumanLabels, examples: Sequence[str] | None, *,
                      job_id: str) -> tuple[HumanLabels, pd.DataFrame]:
    """The labels without the paragraphs a job's labeler learned from (matched on normalised
    text, whatever the matching), and those paragraphs with their file rows."""
    if not examples:
        return labels, _examples_frame([], [], [])
    frame = labels.frame
    keys = frame["paragraph_text"].map(normalise_text)
    hit = keys.isin({normalise_text(t) for t in examples})
    if not hit.any():
        return labels, _examples_frame([], [], [])
    taken = frame[hit].assign(_key=keys[hit])
    grouped = taken.groupby("_key", sort=False)
    left_out = _examples_frame(grouped["paragraph_text"].first().tolist(), grouped["pdf_file_name"].first().tolist(),
                               grouped["row"].agg(lambda r: ", ".join(str(x) for x in r)).tolist())
    if hit.all():
        raise NothingToCompare(f"every labelled paragraph in {labels.file_name} ({len(left_out):,}) is one the "
                               f"embedding labeler of job {job_id} learned from, so none is evidence of its "
                               "agreement: evaluate it with labels of other paragraphs.")
    return replace(labels, frame=frame[~hit].reset_index(drop=True)), left_out


def _annotator_agreement(joined: Match, column: str, *, seed: int, n_resamples: int,
                         confidence_level: float) -> tuple[RaterAgreement | None, RaterAgreement | None]:
    """Human-human agreement over every labelled paragraph with two or more annotators, and
    the model as one more rater beside the annotators over the compared paragraphs."""
    votes = joined.votes[joined.votes["column"] == column] if not joined.votes.empty else joined.votes
    if votes.empty or votes[ANNOTATOR].nunique() < 2:
        return None, None
    matrix = votes.pivot_table(index=KEY, columns=ANNOTATOR, values="label", aggfunc="first").astype("Int64")
    shared = matrix.notna().sum(axis=1) >= 2
    humans = None
    if shared.any():
        humans = rater_agreement(matrix, intervals=True, seed=seed, n_resamples=n_resamples,
                                 confidence_level=confidence_level)
    compared = matrix.reindex(joined.pairs.index)
    compared[MODEL_RATER] = joined.pairs[f"model_{column}"]
    compared = compared[compared.drop(columns=[MODEL_RATER]).notna().any(axis=1)]
    with_model = rater_agreement(compared) if not compared.empty else None
    return humans, with_model


def _nothing_message(job_id: str, labels: HumanLabels, joined: Match) -> str:
    parts = [f"none of the {joined.labelled_units:,} labelled paragraphs in {labels.file_name} can be compared "
             f"with the {joined.job_units:,} paragraphs of job {job_id}"]
    if len(joined.unmatched_labels):
        parts.append(f"{len(joined.unmatched_labels):,} are not in the job (the text differs, or the report name "
                     "does, when matching on text and report)")
    if len(joined.not_succeeded):
        parts.append(f"{len(joined.not_succeeded):,} have no successful answer")
    if len(joined.conflicts):
        parts.append(f"{len(joined.conflicts):,} have conflicting answers")
    if joined.tied_units:
        parts.append(f"{joined.tied_units:,} have tied human labels")
    return "; ".join(parts) + "."


# ----------------------------------------------------------------------------------------------
# With the service: read, collect, evaluate, save
# ----------------------------------------------------------------------------------------------


def original_job(service: JobService, job_or_batch_id: str) -> Job:
    """The job whose results to use: a retry child stands for its original job (whose results
    already include the retry's answers)."""
    job = service.get(job_or_batch_id)
    return service.get(job.retry_of) if job.retry_of else job


def run_evaluation(service: JobService, job_id: str, labels_source: Source, *,
                   label_columns: Sequence[str] | None = None, match_on: MatchOn = "text",
                   min_group: int = DEFAULT_MIN_GROUP, seed: int = DEFAULT_SEED,
                   n_resamples: int = DEFAULT_RESAMPLES, save: bool = True) -> Evaluation:
    """Read the labels, collect the job (its retries' answers included), evaluate, and save
    the evaluation in the job's folder (``save``). The page and the command line call this."""
    job = original_job(service, job_id)
    task = get_task(job.task)
    labels = read_labels(labels_source, task=task, label_columns=label_columns,
                         need_report=match_on == "text+report")
    results = service.collect(job.id).frame
    from core.local.labeler.examples import evaluation_examples  # the labeler's training paragraphs

    learned = evaluation_examples(job.model, job.job_dir, job.task)
    evaluation = evaluate(results, labels, job_id=job.id, task=task, match_on=match_on, min_group=min_group,
                          seed=seed, n_resamples=n_resamples, examples=learned[0] if learned else None,
                          examples_sha256=learned[1] if learned else None)
    if save:
        evaluation = replace(evaluation, saved_to=save_evaluation(evaluation, job_dir=Path(job.job_dir)))
    return evaluation


__all__ = [
    "ColumnEvaluation", "Evaluation", "evaluate", "run_evaluation", "save_evaluation", "list_evaluations",
    "latest_evaluation", "evaluations_dir", "original_job", "frame_records", "EVALUATIONS_FOLDER",
]
