"""Labelled examples the embedding labeler learns from: the built-in ones shipped in
``prompts/<task>.examples.csv`` and a researcher's own labels file.

An :class:`ExampleSet` has one canonical form, a JSONL text (one line per paragraph and task:
``{"labels": {...}, "task": ..., "text": ...}``, keys sorted, lines sorted by task and text,
texts normalised as the evaluation normalises them). Its sha256 names the set: it is in the
model name of every answer learned from it (``local-e5-small+examples-<sha256>``), the job
folder keeps the exact bytes as ``examples.jsonl``, and the local backend finds the set by that
hash among the files uploaded to it (never by a path a client names). Row order, separators,
encodings and duplicate rows of the source file therefore do not change the hash; a changed
label or paragraph does.

Building a set from a labels file uses the evaluation's reader and its strict-majority rule
for duplicate labels (ties are left out), so examples and evaluation read labels alike.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import orjson

from core.errors import CoreError
from core.prompts import DEFAULT_PROMPT_DIR

EXAMPLES_FILE = "examples.jsonl"  # in a job's folder: the exact example set the job learned from
BUILTIN_DIR = DEFAULT_PROMPT_DIR  # next to the prompts: prompts/<task>.examples.csv
MIN_PER_CLASS = 2  # examples labelled 1 and labelled 0 needed per answer column
MAX_EXAMPLES = 20_000  # an uploaded set larger than this is refused by the backend
MAX_SET_BYTES = 50 * 1024 * 1024
MAX_TEXT_CHARS = 100_000

# The answer columns of each task, in the order the schema lists them (kept here rather than
# read from core.tasks so that the backend process does not need pydantic models to parse a set).
TASK_COLUMNS: dict[str, tuple[str, ...]] = {
    "investment_activity_classification": ("score",),
    "assetization_features_scoring": ("intrinsic_value_score", "cash_flow_score", "ownership_control_score"),
}


class ExamplesError(CoreError):
    """An example set cannot be used (too few examples of a class, unreadable, unknown task)."""


@dataclass(frozen=True)
class Example:
    """One labelled paragraph of one task. ``labels`` maps answer columns (``score``,
    ``cash_flow_score`` ...) to 0 or 1; a column the paragraph was not labelled in is absent."""

    task: str
    text: str
    labels: Mapping[str, int]

    def record(self) -> dict[str, Any]:
        """The canonical JSON form of the line."""
        return {"labels": dict(sorted(self.labels.items())), "task": self.task, "text": self.text}


@dataclass(frozen=True)
class ExampleSet:
    """Labelled examples, possibly of both tasks, in canonical order. ``source`` says where they
    came from (``built-in`` or a file name); it is not part of the hash."""

    examples: tuple[Example, ...]
    source: str = "built-in"

    @property
    def canonical(self) -> bytes:
        """The bytes the sha256 is taken of (and that are uploaded and kept with the job)."""
        return _canonical(self.examples)

    @property
    def sha256(self) -> str:
        """The set's name: sha256 of its canonical bytes."""
        return hashlib.sha256(self.canonical).hexdigest()

    @property
    def tasks(self) -> list[str]:
        """The tasks the set has examples for."""
        return sorted({e.task for e in self.examples})

    def column(self, task: str, column: str) -> tuple[list[str], list[int]]:
        """(texts, labels) of the examples labelled in ``column`` of ``task``, canonical order."""
        pairs = [(e.text, int(e.labels[column])) for e in self.examples if e.task == task and column in e.labels]
        return [t for t, _ in pairs], [y for _, y in pairs]

    def texts(self, task: str | None = None) -> list[str]:
        """Every distinct example text (of ``task``), canonical order."""
        return list(dict.fromkeys(e.text for e in self.examples if task is None or e.task == task))

    def counts(self, task: str) -> dict[str, tuple[int, int]]:
        """Per answer column of ``task``: (examples labelled 0, examples labelled 1)."""
        out = {}
        for column in TASK_COLUMNS.get(task, ()):
            _, labels = self.column(task, column)
            out[column] = (labels.count(0), labels.count(1))
        return out

    def check(self, task: str) -> None:
        """Raise :class:`ExamplesError` unless every answer column of ``task`` has at least
        ``MIN_PER_CLASS`` examples labelled 1 and as many labelled 0."""
        if task not in TASK_COLUMNS:
            raise ExamplesError(f"Unknown task '{task}'.")
        short = [f"{column}: {zeros} labelled 0 and {ones} labelled 1"
                 for column, (zeros, ones) in self.counts(task).items() if min(zeros, ones) < MIN_PER_CLASS]
        if short:
            raise ExamplesError(
                f"The examples from {self.source} cannot teach {task}: every answer column needs at least "
                f"{MIN_PER_CLASS} paragraphs labelled 1 and {MIN_PER_CLASS} labelled 0, and "
                + "; ".join(short) + "."
            )

    def for_task(self, task: str) -> "ExampleSet":
        """Only the examples of ``task`` (a set of its own, with its own hash)."""
        return ExampleSet(tuple(e for e in self.examples if e.task == task), source=self.source)


def _canonical(examples: Iterable[Example]) -> bytes:
    lines = sorted(orjson.dumps(e.record(), option=orjson.OPT_SORT_KEYS) for e in examples)
    return b"".join(line + b"\n" for line in lines)


def make_set(examples: Iterable[Example], *, source: str) -> ExampleSet:
    """A set in canonical order; examples of the same task and text are merged (their labels
    must not contradict each other)."""
    merged: dict[tuple[str, str], dict[str, int]] = {}
    for example in examples:
        labels = merged.setdefault((example.task, example.text), {})
        for column, value in example.labels.items():
            if labels.get(column, value) != value:
                raise ExamplesError(f"{source}: the paragraph '{example.text[:80]}' is labelled both 0 and 1 "
                                    f"in {column}.")
            labels[column] = int(value)
    ordered = sorted(merged.items())
    return ExampleSet(tuple(Example(task, text, labels) for (task, text), labels in ordered if labels), source=source)


def parse_set(data: bytes, *, source: str) -> ExampleSet:
    """Read a set from its canonical JSONL (e.g. a file uploaded to the backend: untrusted).
    Raises :class:`ExamplesError` for anything that is not a well-formed set."""
    if len(data) > MAX_SET_BYTES:
        raise ExamplesError(f"{source}: an example set may hold at most {MAX_SET_BYTES:,} bytes.")
    examples: list[Example] = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise ExamplesError(f"{source}: line {number} is not JSON.") from None
        if not isinstance(item, dict) or set(item) != {"labels", "task", "text"}:
            raise ExamplesError(f"{source}: line {number} must be an object with labels, task and text.")
        task, text, labels = item["task"], item["text"], item["labels"]
        if task not in TASK_COLUMNS:
            raise ExamplesError(f"{source}: line {number} names an unknown task.")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
            raise ExamplesError(f"{source}: line {number} has no usable text.")
        if (not isinstance(labels, dict) or not labels
                or any(c not in TASK_COLUMNS[task] or v not in (0, 1) or isinstance(v, bool) for c, v in labels.items())):
            raise ExamplesError(f"{source}: line {number} has labels that are not 0/1 answer columns of {task}.")
        examples.append(Example(task, text, {c: int(v) for c, v in labels.items()}))
        if len(examples) > MAX_EXAMPLES:
            raise ExamplesError(f"{source}: an example set may hold at most {MAX_EXAMPLES:,} examples.")
    return make_set(examples, source=source)


# ----------------------------------------------------------------------------------------------
# From labels files (the evaluation's reader and majority rule)
# ----------------------------------------------------------------------------------------------


def examples_from_labels(source: Path | tuple[str, bytes], *, task: str,
                         label_columns: Sequence[str] | None = None) -> ExampleSet:
    """The examples of a human labels file (the format ``python -m core evaluate`` reads) for
    ``task``: one per distinct normalised paragraph, labelled by the strict majority of its rows
    in each column (ties left out). Checked: every answer column needs both classes."""
    from core.evaluate.labels import read_labels
    from core.evaluate.matching import human_units
    from core.tasks import get_task

    labels = read_labels(source, task=get_task(task), label_columns=label_columns)
    missing = [c for c in TASK_COLUMNS[task] if c not in labels.columns]
    if missing:
        raise ExamplesError(f"{labels.file_name}: examples for {task} need a label column for every answer "
                            f"({', '.join(TASK_COLUMNS[task])}); missing: {', '.join(missing)}.")
    units = human_units(labels, match_on="text").frame
    examples = []
    for key, row in units.iterrows():
        values = {c: int(row[c]) for c in TASK_COLUMNS[task] if not _missing(row[c])}
        if values:
            examples.append(Example(task, str(key), values))
    result = make_set(examples, source=labels.file_name)
    result.check(task)
    return result


def _missing(value: object) -> bool:
    try:
        return bool(value is None or value != value or str(value) == "<NA>")
    except (TypeError, ValueError):  # pd.NA refuses comparisons
        return True


@lru_cache(maxsize=4)
def _builtin(folder: str, stamp: tuple[tuple[str, int, int], ...]) -> ExampleSet:
    sets = [examples_from_labels(Path(folder) / f"{task}.examples.csv", task=task) for task in TASK_COLUMNS]
    return make_set((e for s in sets for e in s.examples), source="built-in")


def builtin_examples(folder: Path = BUILTIN_DIR) -> ExampleSet:
    """The shipped examples of both tasks (``prompts/<task>.examples.csv``), read again when a
    file changes."""
    stamp = []
    for task in TASK_COLUMNS:
        path = Path(folder) / f"{task}.examples.csv"
        try:
            info = path.stat()
        except OSError:
            raise ExamplesError(f"The built-in examples file {path} is missing.") from None
        stamp.append((path.name, info.st_size, info.st_mtime_ns))
    return _builtin(str(folder), tuple(stamp))


# ----------------------------------------------------------------------------------------------
# With a job
# ----------------------------------------------------------------------------------------------


def job_examples_path(job_dir: Path | str) -> Path:
    """Where a job keeps the example set it learned from."""
    return Path(job_dir) / EXAMPLES_FILE


def read_job_examples(job_dir: Path | str, *, expected_sha256: str | None = None) -> ExampleSet | None:
    """The example set kept in a job's folder, or None when the job has none. Raises
    :class:`ExamplesError` when the file is damaged or its hash is not ``expected_sha256``
    (the hash in the job's model name)."""
    path = job_examples_path(job_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ExamplesError(f"The job's examples file {path} cannot be read: {exc.strerror}.") from None
    found = parse_set(data, source=str(path))
    if expected_sha256 and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ExamplesError(f"The job's examples file {path} does not have the sha256 in the job's model name "
                            f"({expected_sha256[:12]}...): it was changed after the job was submitted.")
    return found


def job_example_set(task: str, *, provider: str, model: str | None, default_model: str,
                    source: Path | tuple[str, bytes] | None = None,
                    job_dir: Path | str | None = None) -> tuple[str, ExampleSet]:
    """(model name, example set) of a new labeler job.

    With ``source`` (a labels file: ``--examples FILE``, an upload on Submit) the set is read
    from it and the model is named after its hash. Without it, the model (``model``, else
    ``default_model``) must name the built-in set, or the set kept in ``job_dir`` (a retry of
    a job that learned from a researcher's file). Raises :class:`ExamplesError` otherwise."""
    from core.local.labeler import availability, examples_sha256, fallback_notice, is_labeler_model, labeler_model

    if provider != "local":
        raise ExamplesError(f"Examples teach the local embedding labeler; the {provider} provider's models do not "
                            "learn from them. Use the local provider, or leave the examples out.")
    if not availability().available:
        raise ExamplesError(fallback_notice() or "The embedding labeler is not available here.")
    if source is not None:
        # the model is named after the examples: any labeler model given (the default) gives way
        if model is not None and not is_labeler_model(model):
            raise ExamplesError(f"Examples teach the embedding labeler; the model '{model[:80]}' does not learn from "
                                "them. Leave the model out: it is named after the examples' sha256.")
        found = examples_from_labels(source, task=task)
        return labeler_model(found.sha256), found
    sha = examples_sha256(model or default_model)
    assert sha is not None, "only called for labeler models"
    builtin = builtin_examples()
    if sha == builtin.sha256:
        builtin.check(task)
        return labeler_model(sha), builtin
    if job_dir is not None:
        kept = read_job_examples(job_dir, expected_sha256=sha)
        if kept is not None:
            kept.check(task)
            return labeler_model(sha), kept
    raise ExamplesError(f"The model names the example set {sha[:12]}..., which is not the built-in one (the built-in "
                        "examples changed, or the set came from a labels file): give the labels file with --examples "
                        "FILE (an upload on Submit).")


def example_set_text(example_set: ExampleSet, task: str) -> str:
    """The set in a few words, e.g. ``42 built-in examples (score: 21 labelled 1, 21 labelled 0)``."""
    counts = "; ".join(f"{column}: {ones} labelled 1, {zeros} labelled 0"
                       for column, (zeros, ones) in example_set.counts(task).items())
    what = "built-in examples" if example_set.source == "built-in" else f"labelled paragraphs from {example_set.source}"
    return f"{len(example_set.texts(task))} {what} ({counts}; set {example_set.sha256[:12]})"


def evaluation_examples(model: str, job_dir: Path | str, task: str) -> tuple[list[str], str] | None:
    """(example texts of ``task``, set sha256) a labeler job learned from, for the evaluation
    to leave out; None for a job of any other model. Raises :class:`ExamplesError` when the
    set cannot be found (so no training example is ever counted as evidence unnoticed)."""
    from core.local.labeler import examples_sha256

    sha = examples_sha256(model)
    if sha is None:
        return None
    kept = read_job_examples(job_dir, expected_sha256=sha)
    if kept is None and builtin_examples().sha256 == sha:
        kept = builtin_examples()
    if kept is None:
        raise ExamplesError(f"The job learned from the example set {sha[:12]}..., which is not kept in its folder "
                            f"({job_examples_path(job_dir)}): the paragraphs it learned from cannot be left out of "
                            "the evaluation, so it is not evaluated.")
    return kept.texts(task), sha
