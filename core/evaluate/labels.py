"""Human labels in: a CSV or XLSX file, one row per (paragraph, annotator) in long format.

The file is read by the same robust reader as the inputs (encodings, separators, Excel
quirks). Columns are found by name ignoring case, spaces and underscores: ``paragraph_text``
(required), ``pdf_file_name`` (needed to match on text and report), an optional ``annotator``
(or ``coder``, ``rater``), and one label column per answer column of the task (``score`` or
``Score`` for task 1; ``intrinsic_value_score`` or ``IntrinsicValueScore`` and so on for task
2), unless the label columns are named explicitly. Labels may be written 0/1, 0.0/1.0,
true/false or yes/no (any case); a blank cell is "not labelled"; anything else is reported as
a problem with its row number and the cell is not used.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.evaluate.errors import LabelColumnError, LabelFileError
from core.errors import InputError
from core.inputs import excerpt, read_table
from core.tasks import TaskSpec

TEXT = "paragraph_text"
REPORT = "pdf_file_name"
ANNOTATOR = "annotator"
ANNOTATOR_NAMES = ("annotator", "coder", "rater")
MAX_PROBLEMS_LISTED = 1000  # a file of garbage should not make a megabyte of problems

_TRUE = frozenset({"1", "1.0", "true", "yes"})
_FALSE = frozenset({"0", "0.0", "false", "no"})
_NAME_NOISE = re.compile(r"[\s_]+")

Source = Path | tuple[str, bytes]


def column_key(name: object) -> str:
    """A column name as it is compared: case, spaces and underscores ignored
    (``IntrinsicValueScore`` == ``intrinsic_value_score``)."""
    return _NAME_NOISE.sub("", str(name)).lower()


def parse_label(value: object) -> int | None:
    """0 or 1 from a cell, ``None`` for a blank cell. Raises :class:`ValueError` for anything
    else (the caller reports it with the row number)."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if not text or text == "nan":
        return None
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    raise ValueError(text)


@dataclass(frozen=True)
class LabelProblem:
    """One cell or row of the labels file that could not be used."""

    row: int  # spreadsheet row number (header = row 1)
    column: str
    value: str
    reason: str

    def to_record(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {"row": self.row, "column": self.column, "value": self.value, "reason": self.reason}

    def __str__(self) -> str:
        return f"row {self.row}, {self.column}: {self.reason}"


@dataclass(frozen=True)
class HumanLabels:
    """A labels file, read and checked.

    ``frame`` has the columns ``row`` (spreadsheet row), ``paragraph_text``, ``pdf_file_name``
    (``""`` when the file has none), ``annotator`` (``""`` when the file has none) and one
    nullable 0/1 column per evaluated answer column, named after the answer column (``score``,
    ``cash_flow_score``...). ``columns`` maps each answer column to the file's column.
    """

    file_name: str
    sha256: str
    frame: pd.DataFrame
    columns: dict[str, str]
    annotator_column: str | None
    report_column: str | None
    rows_read: int
    problems: tuple[LabelProblem, ...]
    problem_count: int
    warnings: tuple[str, ...]
    encoding: str
    separator: str | None

    @property
    def annotators(self) -> list[str]:
        """Distinct annotator names, in file order."""
        return list(dict.fromkeys(a for a in self.frame[ANNOTATOR].tolist() if a))

    def to_record(self) -> dict[str, Any]:
        """What an evaluation records about the file it used."""
        return {
            "file_name": self.file_name,
            "sha256": self.sha256,
            "rows_read": self.rows_read,
            "rows_used": int(self.frame[list(self.columns)].notna().any(axis=1).sum()),
            "columns": dict(self.columns),
            "annotator_column": self.annotator_column,
            "annotators": self.annotators,
            "report_column": self.report_column,
            "encoding": self.encoding,
            "separator": self.separator,
            "warnings": list(self.warnings),
            "problem_count": self.problem_count,
            "problems": [p.to_record() for p in self.problems],
        }


def read_labels(source: Source, *, task: TaskSpec, label_columns: Sequence[str] | None = None,
                need_report: bool = False) -> HumanLabels:
    """Read a human labels file for ``task``.

    ``label_columns`` names the file's label columns explicitly: each entry is a column name
    that matches an answer column (``score``), ``ANSWER=COLUMN`` (``score=human_label``), or,
    for a task with one answer column, any column name. Without it every answer column whose
    name is in the file is used. ``need_report`` requires a ``pdf_file_name`` column (matching
    on text and report). Raises :class:`LabelFileError` when the file cannot be used at all.
    """
    table = _read_text_table(source)
    name = table.file_name
    header = list(table.frame.columns)
    by_key: dict[str, str] = {}
    for column in header:
        by_key.setdefault(column_key(column), column)

    text_column = by_key.get(column_key(TEXT))
    if text_column is None:
        raise LabelFileError(name, f"there is no 'paragraph_text' column. Columns found: {_names(header)}. "
                                   "Rename the column holding the labelled paragraphs to paragraph_text.")
    report_column = by_key.get(column_key(REPORT))
    if need_report and report_column is None:
        raise LabelColumnError(name, "matching on text and report needs a 'pdf_file_name' column, and there is "
                                     f"none. Columns found: {_names(header)}. Match on text only instead.")
    annotator_column = next((by_key[k] for k in ANNOTATOR_NAMES if k in by_key), None)
    mapping = _label_columns(name, task, header, by_key, label_columns)

    raw = table.frame
    rows = table.rows
    problems: list[LabelProblem] = []
    problem_count = 0

    def problem(row: int, column: str, value: str, reason: str) -> None:
        nonlocal problem_count
        problem_count += 1
        if len(problems) < MAX_PROBLEMS_LISTED:
            problems.append(LabelProblem(row=row, column=column, value=excerpt(value, 60), reason=reason))

    texts = raw[text_column].fillna("").astype(str)
    empty_text = (texts.str.strip() == "").tolist()
    cells = {answer: raw[column].fillna("").astype(str).tolist() for answer, column in mapping.items()}
    parsed: dict[str, list[int | None]] = {answer: [] for answer in mapping}
    for position, row in enumerate(rows):
        if empty_text[position]:
            # a label with no paragraph cannot be matched to anything: say so, once per row
            if any(cells[answer][position].strip() for answer in mapping):
                problem(row, text_column, "", "empty paragraph_text: the label has no paragraph to belong to")
            for answer in mapping:
                parsed[answer].append(None)
            continue
        for answer, column in mapping.items():
            cell = cells[answer][position]
            try:
                parsed[answer].append(parse_label(cell))
            except ValueError:
                problem(row, column, cell, f"'{excerpt(cell, 60)}' is not a label (use 0/1, true/false or yes/no)")
                parsed[answer].append(None)
    problems.sort(key=lambda p: (p.row, p.column))

    frame = pd.DataFrame({
        "row": pd.array(rows, dtype="int64"),
        TEXT: texts.to_numpy(dtype=object),
        REPORT: (raw[report_column].fillna("").astype(str).str.strip().to_numpy(dtype=object)
                 if report_column else ""),
        ANNOTATOR: (raw[annotator_column].fillna("").astype(str).str.strip().to_numpy(dtype=object)
                    if annotator_column else ""),
    })
    for answer, values in parsed.items():
        frame[answer] = pd.array(values, dtype="Int64")
    frame = frame[~np.asarray(empty_text, dtype=bool)].reset_index(drop=True)
    if not frame[list(mapping)].notna().any(axis=None):
        raise LabelFileError(name, f"no row holds a usable label in {_names(list(mapping.values()))} "
                                   f"({problem_count:,} cells could not be read). Labels must be 0/1, true/false "
                                   "or yes/no.")
    return HumanLabels(
        file_name=name, sha256=table.sha256, frame=frame, columns=mapping, annotator_column=annotator_column,
        report_column=report_column, rows_read=len(raw), problems=tuple(problems), problem_count=problem_count,
        warnings=tuple(table.warnings), encoding=table.encoding, separator=table.separator,
    )


def _answer_of_key(task: TaskSpec) -> dict[str, str]:
    """Compared name -> answer column: the answer column's own name and the response field's
    name (``score`` and ``Score``; ``cash_flow_score`` and ``CashFlowScore``)."""
    answers = list(task.score_columns)
    answer_of_key = {column_key(a): a for a in answers}
    for field_name, column in task.columns.items():
        if column in answers:
            answer_of_key[column_key(field_name)] = column
    return answer_of_key


def find_label_columns(task: TaskSpec, header: Sequence[str]) -> dict[str, str]:
    """The file column of each answer column of ``task`` found by name in ``header`` (case,
    spaces and underscores ignored), in task order; answer columns not found are left out."""
    by_key: dict[str, str] = {}
    for column in header:
        by_key.setdefault(column_key(column), column)
    answer_of_key = _answer_of_key(task)
    found = {answer_of_key[k]: by_key[k] for k in answer_of_key if k in by_key}
    return {a: found[a] for a in task.score_columns if a in found}


def _label_columns(file_name: str, task: TaskSpec, header: list[str], by_key: dict[str, str],
                   explicit: Sequence[str] | None) -> dict[str, str]:
    """Answer column -> file column."""
    answers = list(task.score_columns)
    answer_of_key = _answer_of_key(task)
    if not explicit:
        found = find_label_columns(task, header)
        if not found:
            wanted = " or ".join(f"'{a}'" for a in answers)
            raise LabelColumnError(file_name, f"no label column for {task.name}: expected {wanted} (case and "
                                              f"underscores ignored). Columns found: {_names(header)}. Name the label "
                                              "column with --label-column COLUMN (or ANSWER=COLUMN).")
        return found

    mapping: dict[str, str] = {}
    for spec in explicit:
        answer_name, sep, column_name = spec.partition("=")
        if not sep:
            column_name = answer_name
            answer = answer_of_key.get(column_key(column_name))
            if answer is None and len(answers) == 1:
                answer = answers[0]
            if answer is None:
                raise LabelColumnError(file_name, f"--label-column '{excerpt(spec, 60)}' does not name an answer "
                                                  f"column of {task.name} ({', '.join(answers)}); write "
                                                  f"ANSWER=COLUMN, e.g. {answers[0]}={excerpt(column_name, 40)}.")
        else:
            answer = answer_of_key.get(column_key(answer_name))
            if answer is None:
                raise LabelColumnError(file_name, f"'{excerpt(answer_name, 60)}' is not an answer column of "
                                                  f"{task.name}; choose one of {', '.join(answers)}.")
        column = column_name if column_name in header else by_key.get(column_key(column_name))
        if column is None:
            raise LabelColumnError(file_name, f"there is no column '{excerpt(column_name, 60)}'. Columns found: "
                                              f"{_names(header)}.")
        if answer in mapping and mapping[answer] != column:
            raise LabelColumnError(file_name, f"two label columns given for {answer}: '{mapping[answer]}' and "
                                              f"'{column}'.")
        mapping[answer] = column
    return {a: mapping[a] for a in answers if a in mapping}


def _names(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(f"'{excerpt(n, 60)}'" for n in names[:limit]) or "(none)"
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# ----------------------------------------------------------------------------------------------
# Reading the table
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TextTable:
    file_name: str
    frame: pd.DataFrame  # every column as text, "" for an empty cell
    rows: list[int]  # spreadsheet row number of each frame row
    sha256: str
    encoding: str
    separator: str | None
    warnings: tuple[str, ...]


def _read_text_table(source: Source) -> _TextTable:
    """Every column of a CSV/XLSX file as text, read by the inputs' reader (encodings,
    separators, Excel quirks, limits), with the sha256 of the file's bytes."""
    try:
        table = read_table(source)
    except InputError as exc:
        raise LabelFileError(exc.file_name, exc.problem) from None
    # the reader hashes the bytes it parsed; reading the path again could hash a newer file
    digest = table.sha256 or "unknown"
    return _TextTable(file_name=table.file_name, frame=table.frame, rows=list(table.rows), sha256=digest,
                      encoding=table.encoding, separator=table.separator, warnings=tuple(table.warnings))


def sha256_of_file(path: Path) -> str | None:
    """A file's sha256, or None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
