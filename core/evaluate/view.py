"""What the Evaluate page (and Explore's agreement note) shows, as plain functions.

An evaluation reaches the page in two forms: an :class:`~core.evaluate.evaluation.Evaluation`
computed in this session, or the JSON record saved with the job by an earlier run (the page
shows the latest one on arrival). :class:`EvaluationView` is the one shape both become, so
every table, chart and download below is built the same way from either.

Light at import (pandas and orjson only): scikit-learn and scipy load when an evaluation is
run, not when a page merely shows a saved one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import orjson
import pandas as pd

from core.csvout import csv_bytes
from core.errors import InputError
from core.evaluate.errors import LabelFileError
from core.evaluate.labels import Source, find_label_columns
from core.evaluate.store import latest_evaluation, list_evaluations
from core.explore import collected_jobs, score_label
from core.inputs import excerpt, read_table
from core.models import Job
from core.tasks import TASKS, TaskSpec

if TYPE_CHECKING:
    from core.evaluate.compare import Comparison
    from core.evaluate.evaluation import Evaluation
    from core.jobs import JobService

LABELS_FOLDER = "labels"  # <data folder>/labels: where the page looks for labels files
LABEL_SUFFIXES = (".csv", ".xlsx", ".tsv", ".txt")
MISSING = "–"  # a figure the data leave undefined, or a count not known
KINDS = {"false_positive": "false positive", "false_negative": "false negative"}
KIND_HELP = {"false_positive": "model 1, human 0", "false_negative": "model 0, human 1"}
GROUP_METRICS = {"cohen_kappa": "Cohen's kappa", "f1": "F1", "accuracy": "accuracy",
                 "krippendorff_alpha": "Krippendorff's alpha"}
GROUPINGS = {"investor": "investor", "report": "report"}
LIST_TITLES = {  # the lists of what was left out, in the order the page shows them
    "ties": "Tied human labels (excluded)",
    "conflicts": "Paragraphs the job answered differently (excluded)",
    "conflict_answers": "The answers behind those conflicts",
    "not_succeeded": "Labelled paragraphs without a successful answer",
    "unmatched_labels": "Labelled paragraphs not in the job",
    "unmatched_rows": "Job paragraphs nobody labelled",
    "label_problems": "Cells of the labels file that are not labels",
    "examples_excluded": "Labelled paragraphs the job's labeler learned from (excluded)",
}
DISAGREEMENT_COLUMNS = ["column", "kind", "paragraph_text", "pdf_file_name", "investor", "human_label", "human_votes",
                        "model_label", "explanation", "annotators", "human_rows", "custom_ids"]


# ----------------------------------------------------------------------------------------------
# Formatting
# ----------------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    """A figure with two decimals, or a dash when it is undefined."""
    return MISSING if value is None else f"{value:.{digits}f}"


def fmt_interval(interval: Sequence[float | None] | None) -> str:
    """``[0.70, 1.00]``, or ``""`` when there is no interval."""
    if not interval or interval[0] is None or interval[1] is None:
        return ""
    return f"[{interval[0]:.2f}, {interval[1]:.2f}]"


def with_interval(value: float | None, interval: Sequence[float | None] | None) -> str:
    """``0.87 [0.70, 1.00]``; the interval left out when there is none."""
    text = fmt(value)
    shown = fmt_interval(interval)
    return f"{text} {shown}" if shown and value is not None else text


def fmt_share(value: float | None) -> str:
    """A proportion as a whole percentage."""
    return MISSING if value is None else f"{value:.0%}"


def fmt_date(stamp: str | None) -> str:
    """``2026-12-01 22:11 UTC`` from an ISO time stamp (as written by the evaluation)."""
    if not stamp:
        return "an unknown date"
    try:
        moment = pd.Timestamp(stamp)
    except (ValueError, TypeError):
        return excerpt(stamp, 40)
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


_MARKDOWN_CHARS = re.compile(r"([\\`*_{}\[\]()#+\-!|<>~$:])")


def md_text(value: object, limit: int = 80) -> str:
    """Text from a file (a file, column or annotator name) made safe to put in Markdown: cut by
    :func:`excerpt`, then every character Markdown would act on escaped, so a name can never
    become a link, an image that loads from elsewhere, or formatting."""
    return _MARKDOWN_CHARS.sub(r"\\\1", excerpt(value, limit))


def answer_label(column: str) -> str:
    """How an answer column is named on the page (``score`` -> ``Score (task 1)``)."""
    return score_label(column)


# ----------------------------------------------------------------------------------------------
# One evaluation, fresh or saved
# ----------------------------------------------------------------------------------------------


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


def evaluated_line(view: EvaluationView) -> str:
    """Which labels, when, and how the paragraphs were matched."""
    who = (f"{len(view.annotators)} annotator{'s' if len(view.annotators) != 1 else ''}: "
           f"{', '.join(md_text(a, 40) for a in view.annotators[:5])}{' …' if len(view.annotators) > 5 else ''}"
           if view.annotators else "no annotator column")
    file_columns = ", ".join(f"{answer_label(a)} from column \u201c{md_text(c, 40)}\u201d"
                             for a, c in view.label_columns.items())
    match = "text and report" if view.match_on == "text+report" else "paragraph text"
    digest = f"sha256 {view.labels_sha256[:12]}…, " if view.labels_sha256 else ""
    return (f"Evaluated {fmt_date(view.evaluated_at)} against **{md_text(view.labels_file)}** ({digest}{who}); "
            f"{file_columns}; matched on {match}; groups of at least {view.min_group}.")


def counts_line(view: EvaluationView) -> str:
    """What was compared and what was left out, in distinct paragraphs."""
    c = view.counts

    def n(name: str) -> str:
        value = c.get(name)
        return MISSING if value is None else f"{int(value):,}"

    failed = c.get("not_succeeded") or {}
    failed_total = sum(failed.values())
    failed_text = f" ({', '.join(f'{v:,} {s}' for s, v in failed.items())})" if failed else ""
    problems = (f" {view.label_problem_count:,} cells of the labels file are not labels (see *Left out*)."
                if view.label_problem_count else "")
    examples = int(c.get("examples_excluded") or 0)  # a training example is no evidence of agreement
    if examples:
        problems += f" {examples:,} labelled paragraphs were left out because the job's labeler learned from them."
    return (f"**{n('matched')}** paragraphs compared. Left out: {n('ties_excluded')} with tied human labels, "
            f"{n('conflicts_excluded')} the job answered inconsistently, {failed_total:,} without a successful "
            f"answer{failed_text}; {n('unmatched_labels')} labelled paragraphs are not in the job, "
            f"{n('unmatched_rows')} job paragraphs were not labelled.{problems}")


def headline(view: EvaluationView) -> list[tuple[str, str]]:
    """(label, value) pairs for a row of big numbers: paragraphs compared, then kappa with its
    interval (and alpha, F1 and accuracy against the baseline when one column is evaluated)."""
    items = [("Paragraphs compared", f"{int(view.counts.get('matched') or 0):,}")]
    several = len(view.metrics) > 1
    for column, m in view.metrics.items():
        interval = fmt_interval(m.get("cohen_kappa_ci"))
        name = f"Cohen's kappa · {answer_label(column)}" if several else "Cohen's kappa"
        items.append((f"{name} {interval}".strip(), fmt(m.get("cohen_kappa"))))
        if not several:
            items.append((f"Krippendorff's alpha {fmt_interval(m.get('krippendorff_alpha_ci'))}".strip(),
                          fmt(m.get("krippendorff_alpha"))))
            items.append((f"F1 {fmt_interval(m.get('f1_ci'))}".strip(), fmt(m.get("f1"))))
            items.append((f"Accuracy (baseline {fmt(m.get('majority_baseline_accuracy'))})", fmt(m.get("accuracy"))))
    return items


# the chance-corrected figures first: they are what a reader looks for, and stay in view on a narrow page
FIGURE_COLUMNS = ["answer", "n", "Cohen's kappa [95% CI]", "Krippendorff's alpha [95% CI]", "F1 [95% CI]",
                  "accuracy", "majority baseline", "precision", "recall", "MCC", "human prevalence",
                  "model prevalence", "human-human alpha"]


def figures_table(view: EvaluationView) -> pd.DataFrame:
    """One row per answer column, every figure as text (a dash where undefined), the three
    bootstrap intervals beside their figures."""
    rows = []
    for column, m in view.metrics.items():
        human = view.human_agreement.get(column) or {}
        rows.append({
            "answer": answer_label(column), "n": f"{int(m['n']):,}",
            "human prevalence": fmt_share(m.get("human_prevalence")),
            "model prevalence": fmt_share(m.get("model_prevalence")),
            "majority baseline": fmt(m.get("majority_baseline_accuracy")), "accuracy": fmt(m.get("accuracy")),
            "precision": fmt(m.get("precision")), "recall": fmt(m.get("recall")),
            "F1 [95% CI]": with_interval(m.get("f1"), m.get("f1_ci")),
            "Cohen's kappa [95% CI]": with_interval(m.get("cohen_kappa"), m.get("cohen_kappa_ci")),
            "Krippendorff's alpha [95% CI]": with_interval(m.get("krippendorff_alpha"), m.get("krippendorff_alpha_ci")),
            "MCC": fmt(m.get("mcc")),
            "human-human alpha": (with_interval(human.get("krippendorff_alpha"), human.get("krippendorff_alpha_ci"))
                                  if human else MISSING),
        })
    return pd.DataFrame(rows, columns=FIGURE_COLUMNS)


def figures_frame(view: EvaluationView) -> pd.DataFrame:
    """The figures as numbers, one row per answer column, with what they were computed from
    (job, labels file and its sha256, date, settings): the figures CSV download."""
    rows = []
    for column, m in view.metrics.items():
        (tn, fp), (fn, tp) = m.get("confusion") or [[0, 0], [0, 0]]
        human = view.human_agreement.get(column) or {}
        row: dict[str, Any] = {
            "job_id": view.job_id, "task": view.task, "column": column, "labels_file": view.labels_file,
            "labels_sha256": view.labels_sha256, "evaluated_at": view.evaluated_at, "match_on": view.match_on,
        }
        for name in ("n", "human_prevalence", "model_prevalence", "majority_baseline_accuracy", "accuracy",
                     "precision", "recall", "f1", "cohen_kappa", "krippendorff_alpha", "mcc"):
            row[name] = m.get(name)
            if name in ("f1", "cohen_kappa", "krippendorff_alpha"):
                low, high = (m.get(f"{name}_ci") or [None, None])[:2]
                row[f"{name}_ci_low"], row[f"{name}_ci_high"] = low, high
        row.update({"tn": tn, "fp": fp, "fn": fn, "tp": tp, "ties_excluded": m.get("ties_excluded"),
                    "human_human_alpha": human.get("krippendorff_alpha"),
                    "human_human_mean_kappa": human.get("mean_pairwise_kappa"),
                    "confidence_level": view.confidence_level, "bootstrap_resamples": view.n_resamples})
        rows.append(row)
    return pd.DataFrame(rows)


def figures_csv(view: EvaluationView) -> bytes:
    """The figures CSV download (formula-like text neutralised by :func:`csv_bytes`)."""
    return csv_bytes(figures_frame(view), excel_bom=True)


def confusion_table(view: EvaluationView, column: str) -> pd.DataFrame:
    """The 2 x 2 confusion matrix of one answer column: rows human 0/1, columns model 0/1."""
    (tn, fp), (fn, tp) = view.metrics[column].get("confusion") or [[0, 0], [0, 0]]
    return pd.DataFrame([[tn, fp], [fn, tp]], index=["human 0", "human 1"], columns=["model 0", "model 1"])


def count(n: int, noun: str) -> str:
    """``1 false positive``, ``2 false positives``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def confusion_caption(view: EvaluationView, column: str) -> str:
    """The four cells named, for readers who do not read matrices."""
    (tn, fp), (fn, tp) = view.metrics[column].get("confusion") or [[0, 0], [0, 0]]
    return (f"{count(tp, 'true positive')}, {count(tn, 'true negative')}, {count(fp, 'false positive')} "
            f"(model 1, human 0), {count(fn, 'false negative')} (model 0, human 1)")


def group_table(view: EvaluationView, by: str, column: str, metric: str) -> pd.DataFrame:
    """Per investor or report (``by``): ``group``, ``n``, ``value`` (the ``metric``, None
    where undefined) and ``text`` (n and the value, for a bar label), largest group first."""
    record = (view.breakdowns.get(by) or {}).get(column) or {}
    rows = []
    for g in record.get("groups") or []:
        value = g.get(metric)
        rows.append({"group": str(g["group"]), "n": int(g["n"]), "value": value,
                     "text": f"n = {int(g['n']):,} · {fmt(value) if value is not None else 'undefined'}"})
    return pd.DataFrame(rows, columns=["group", "n", "value", "text"])


def group_note(view: EvaluationView, by: str, column: str) -> str | None:
    """What the per-group chart leaves out, or None when it leaves nothing out. When it
    leaves out every group, says so and what to do."""
    record = (view.breakdowns.get(by) or {}).get(column) or {}
    noun = "investors" if by == "investor" else "reports"
    parts = []
    small, items = int(record.get("small_groups") or 0), int(record.get("small_group_items") or 0)
    if small and not record.get("groups"):
        parts.append(f"No {by} has at least {view.min_group:,} compared paragraphs (there are {small:,} {noun} with "
                     f"{items:,} paragraphs in all); lower the smallest group size under *Options* and evaluate again")
    elif small:
        parts.append(f"{small:,} {noun} with fewer than {view.min_group:,} compared paragraphs ({items:,} paragraphs "
                     "in all) are left out; lower the smallest group size under *Options* and evaluate again to see them")
    unnamed = int(record.get("unnamed_items") or 0)
    if unnamed:
        parts.append(f"{unnamed:,} paragraphs have no {'investor in their report name' if by == 'investor' else 'report name'}")
    return ("; ".join(parts) + ".") if parts else None


def disagreement_counts(view: EvaluationView, column: str | None = None) -> dict[str, int]:
    """False positives and false negatives, in one answer column or all."""
    frame = view.disagreements
    if column:
        frame = frame[frame["column"] == column]
    counts = frame["kind"].value_counts()
    return {kind: int(counts.get(kind, 0)) for kind in KINDS}


def disagreement_line(view: EvaluationView, column: str | None, kind: str | None) -> str:
    """How many disagreements there are of each kind, and how many the browser shows."""
    counts = disagreement_counts(view, column)
    shown = counts[kind] if kind else sum(counts.values())
    return (f"{count(counts['false_positive'], 'false positive')} and {count(counts['false_negative'], 'false negative')}"
            f"{'' if column is None or len(view.metrics) == 1 else ' in ' + answer_label(column)}; showing {shown:,}.")


def filter_disagreements(view: EvaluationView, column: str | None = None, kind: str | None = None) -> pd.DataFrame:
    """The disagreements in ``column`` (all when None), of ``kind`` (both when None)."""
    frame = view.disagreements
    if column:
        frame = frame[frame["column"] == column]
    if kind:
        frame = frame[frame["kind"] == kind]
    return frame.reset_index(drop=True)


def disagreement_rows(view: EvaluationView, column: str | None = None, kind: str | None = None) -> pd.DataFrame:
    """The disagreement browser's rows: what kind, the human label (with the votes when more
    than one coder voted), the model's label and explanation, the paragraph and its report."""
    frame = filter_disagreements(view, column, kind)
    several = len(view.metrics) > 1
    out = pd.DataFrame({
        "kind": frame["kind"].map(lambda k: KINDS.get(str(k), str(k))),
        **({"answer": frame["column"].map(answer_label)} if several else {}),
        "human": [_human_text(label, votes) for label, votes in zip(frame["human_label"], frame["human_votes"])],
        "model": frame["model_label"].map(_label_text),
        "paragraph": frame["paragraph_text"].astype(str),
        "model's explanation": frame["explanation"].fillna("").astype(str),
        "report": frame["pdf_file_name"].fillna("").astype(str),
        "annotators": frame["annotators"].fillna("").astype(str),
    })
    return out


def _label_text(value: object) -> str:
    return MISSING if value is None or pd.isna(value) else str(int(value))  # type: ignore[arg-type]


def _human_text(label: object, votes: object) -> str:
    """``0`` for one vote; ``0 (2 × 0, 1 × 1)`` when several coders voted."""
    text = _label_text(label)
    try:
        ones, zeros = (int(part.split(" x ")[0]) for part in str(votes).split(", "))
    except ValueError:
        return text
    return text if ones + zeros <= 1 else f"{text} ({zeros} × 0, {ones} × 1)"


def disagreement_detail(view: EvaluationView, column: str | None, kind: str | None, position: int) -> dict[str, str]:
    """One disagreement of the browser (``position`` in its rows) in full: the paragraph and
    the model's explanation uncut, the labels, the report, who labelled it and where."""
    frame = filter_disagreements(view, column, kind)
    row = frame.iloc[min(max(position, 0), len(frame) - 1)]
    return {
        "kind": KINDS.get(str(row["kind"]), str(row["kind"])), "answer": answer_label(str(row["column"])),
        "human": _human_text(row["human_label"], row["human_votes"]), "model": _label_text(row["model_label"]),
        "paragraph": str(row["paragraph_text"]), "explanation": str(row["explanation"] or ""),
        "report": str(row["pdf_file_name"] or ""), "annotators": str(row["annotators"] or ""),
        "human_rows": str(row["human_rows"] or ""), "custom_ids": str(row["custom_ids"] or ""),
    }


def disagreements_csv(view: EvaluationView, column: str | None = None, kind: str | None = None) -> bytes:
    """The disagreements download: every column, the rows the browser shows."""
    return csv_bytes(filter_disagreements(view, column, kind), excel_bom=True)


def left_out(view: EvaluationView) -> list[tuple[str, str, pd.DataFrame]]:
    """(name, title, rows) of each non-empty list of what was left out, in page order."""
    return [(name, title, view.lists[name]) for name, title in LIST_TITLES.items()
            if name in view.lists and not view.lists[name].empty]


def list_csv(frame: pd.DataFrame) -> bytes:
    """One list of what was left out, as a CSV download."""
    return csv_bytes(frame, excel_bom=True)


# ----------------------------------------------------------------------------------------------
# Choosing a job and a labels file
# ----------------------------------------------------------------------------------------------


def evaluable_jobs(jobs: Iterable[Job]) -> list[Job]:
    """Jobs whose results were collected, newest first (a retry is part of its original job)."""
    return collected_jobs(jobs)


def job_option_label(job: Job) -> str:
    """A job as the pickers list it."""
    task = TASKS.get(job.task)
    title = task.title if task else job.task
    return f"{job.id} · {title} · {excerpt(job.model, 32)} · {job.n_rows:,} rows"  # some model names are long


def compare_defaults(jobs: Sequence[Job], job_id: str | None) -> list[str]:
    """Jobs to offer for comparing at first (``jobs`` newest first): ``job_id`` and the newest
    other job of its task; else the two newest jobs of a task that has two; else none."""
    chosen = next((j for j in jobs if j.id == job_id), None)
    candidates = [chosen] if chosen else []
    candidates += [j for j in jobs if j is not chosen]
    for first in candidates:
        other = next((j for j in jobs if j.task == first.task and j.id != first.id), None)
        if other:
            return [first.id, other.id]
    return []


def label_files(data_dir: Path) -> list[Path]:
    """CSV/XLSX files a labels file may be picked from: those in ``<data_dir>/labels`` (and
    its subfolders) and directly in the data folder, sorted by path. Hidden files and Excel's
    lock files (``~$``) are skipped."""
    data_dir = Path(data_dir)
    found: list[Path] = []
    folder = data_dir / LABELS_FOLDER
    if folder.is_dir():
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += [Path(root) / f for f in files if _label_name(f)]
    if data_dir.is_dir():
        found += [p for p in data_dir.iterdir() if p.is_file() and _label_name(p.name)]
    return sorted(p for p in found if p.is_file())


def _label_name(name: str) -> bool:
    return not name.startswith((".", "~$")) and name.lower().endswith(LABEL_SUFFIXES)


def source_tag(source: Source) -> tuple[Any, ...]:
    """What identifies a labels source for caching: name, size and content (an upload), or
    path, size and modification time (a file)."""
    if isinstance(source, tuple):
        return ("upload", source[0], len(source[1]), hash(source[1]))
    try:
        info = Path(source).stat()
    except OSError:
        return ("path", str(source))
    return ("path", str(source), info.st_size, info.st_mtime_ns)


def label_file_columns(source: Source) -> list[str]:
    """The column names of a labels file, read as the evaluation reads it. Raises
    :class:`LabelFileError` when the file cannot be read."""
    try:
        return [str(c) for c in read_table(source).frame.columns]
    except InputError as exc:
        raise LabelFileError(exc.file_name, exc.problem) from None


def detected_label_columns(task: TaskSpec, columns: Sequence[str]) -> dict[str, str | None]:
    """For each answer column of ``task``, the file column found by name, or None."""
    found = find_label_columns(task, columns)
    return {answer: found.get(answer) for answer in task.score_columns}


def label_column_specs(chosen: Mapping[str, str | None]) -> list[str]:
    """``ANSWER=COLUMN`` for each answer column given a file column (what ``run_evaluation``
    takes as ``label_columns``)."""
    return [f"{answer}={column}" for answer, column in chosen.items() if column]


# ----------------------------------------------------------------------------------------------
# Explore's note
# ----------------------------------------------------------------------------------------------

_NOTES: dict[tuple[Any, ...], str | None] = {}
_NOTES_KEPT = 256


def agreement_note(job: Job) -> str | None:
    """One line on the job's latest saved evaluation (kappa with its interval, n, date and
    labels file), or None when there is none. Remembered per saved file, so a page that
    redraws on every filter change reads the file once."""
    paths = list_evaluations(Path(job.job_dir))
    if not paths:
        return None
    try:
        info = paths[-1].stat()
        key: tuple[Any, ...] = (str(paths[-1]), info.st_mtime_ns, info.st_size)
    except OSError:
        key = (str(paths[-1]),)
    if key not in _NOTES:
        if len(_NOTES) >= _NOTES_KEPT:
            _NOTES.clear()
        record = latest_evaluation(Path(job.job_dir))
        _NOTES[key] = note_from_record(record) if record else None
    return _NOTES[key]


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


# ----------------------------------------------------------------------------------------------
# Model vs model
# ----------------------------------------------------------------------------------------------


def comparison_jobs(comparison: Comparison) -> pd.DataFrame:
    """One row per compared job: its model and how many paragraphs it answered."""
    rows = []
    for side in comparison.jobs:
        failed = ", ".join(f"{n:,} {s}" for s, n in side.not_succeeded.items())
        rows.append({"job": side.job_id, "model": excerpt(side.model, 40) if side.model else MISSING, "paragraphs": f"{side.paragraphs:,}",
                     "answered": f"{side.answered:,}", "conflicting": f"{side.conflicts:,}",
                     "without an answer": failed or "0"})
    return pd.DataFrame(rows, columns=["job", "model", "paragraphs", "answered", "conflicting", "without an answer"])


def comparison_overall(comparison: Comparison) -> pd.DataFrame:
    """Per answer column: alpha across all jobs with its interval (a stability score),
    the mean pairwise kappa, and how many paragraphs they disagree on."""
    rows = []
    for column, agreement in comparison.columns.items():
        rows.append({
            "answer": answer_label(column), "paragraphs": f"{agreement.units:,}",
            "alpha across all [95% CI]": with_interval(agreement.krippendorff_alpha,
                                                       agreement.krippendorff_alpha_ci.to_record()),
            "mean pairwise kappa": fmt(agreement.mean_pairwise_kappa),
            "disagreements": f"{len(comparison.disagreements(column)):,}",
        })
    return pd.DataFrame(rows, columns=["answer", "paragraphs", "alpha across all [95% CI]", "mean pairwise kappa",
                                       "disagreements"])


def comparison_pairs(comparison: Comparison) -> pd.DataFrame:
    """Every pair of jobs per answer column: n, kappa, alpha and the share answered alike."""
    rows = []
    for column, agreement in comparison.columns.items():
        for pair in agreement.pairs:
            rows.append({"answer": answer_label(column), "job A": pair.a, "job B": pair.b, "n": f"{pair.n:,}",
                         "Cohen's kappa": fmt(pair.cohen_kappa), "Krippendorff's alpha": fmt(pair.krippendorff_alpha),
                         "same answer": fmt_share(pair.agreement)})
    return pd.DataFrame(rows, columns=["answer", "job A", "job B", "n", "Cohen's kappa", "Krippendorff's alpha",
                                       "same answer"])


def comparison_disagreement_rows(comparison: Comparison, column: str | None = None) -> pd.DataFrame:
    """The paragraphs the jobs answer differently: each job's answers (a dash where it has
    none) and explanation, then the paragraph and its report."""
    table = comparison.disagreements(column)
    columns = [column] if column else list(comparison.columns)
    out = pd.DataFrame({"paragraph": table["paragraph_text"].astype(str)})
    for job_id in comparison.job_ids:
        for name in columns:
            heading = f"{job_id}" if len(columns) == 1 else f"{job_id} · {answer_label(name)}"
            out[heading] = table[f"{job_id}:{name}"].map(_label_text)
    for job_id in comparison.job_ids:
        out[f"{job_id} explanation"] = table[f"{job_id}:explanation"].fillna("").astype(str)
    out["report"] = table["pdf_file_name"].fillna("").astype(str)
    return out


def comparison_csv(comparison: Comparison, column: str | None = None) -> bytes:
    """The paragraphs the jobs disagree on, every job's answers and explanations, as CSV."""
    return csv_bytes(comparison.disagreements(column), excel_bom=True)


# ----------------------------------------------------------------------------------------------
# Methods record
# ----------------------------------------------------------------------------------------------


def manifest_markdown_bytes(service: JobService, job_id: str) -> bytes:
    """The job's methods record as Markdown (the latest saved evaluation included)."""
    from core.evaluate.manifest import build_manifest

    return build_manifest(service, job_id).to_markdown().encode("utf-8")


def manifest_json_bytes(service: JobService, job_id: str) -> bytes:
    """The job's methods record as indented JSON."""
    from core.evaluate.manifest import build_manifest

    record = build_manifest(service, job_id).to_record()
    return orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n"


__all__ = [
    "EvaluationView", "agreement_note", "compare_defaults", "comparison_csv", "comparison_disagreement_rows",
    "comparison_jobs", "comparison_overall", "comparison_pairs", "confusion_caption", "confusion_table",
    "count", "counts_line", "detected_label_columns", "disagreement_counts", "disagreement_detail", "disagreement_line", "disagreement_rows", "disagreements_csv",
    "evaluable_jobs", "evaluated_line", "figures_csv", "figures_frame", "figures_table", "filter_disagreements",
    "group_note", "group_table", "headline", "job_option_label", "label_column_specs", "label_file_columns",
    "label_files", "left_out", "list_csv", "manifest_json_bytes", "md_text", "manifest_markdown_bytes", "note_from_record",
    "saved_key", "saved_view", "source_tag",
]
