"""Named errors of the evaluation: each message names the file, row, column or job at fault."""

from __future__ import annotations

from core.errors import CoreError


class EvaluationError(CoreError):
    """Base class for everything the evaluation refuses."""


class LabelFileError(EvaluationError):
    """A human labels file cannot be used (no paragraph_text, no label column, no usable row)."""

    def __init__(self, file_name: str, problem: str) -> None:
        self.file_name = file_name
        self.problem = problem
        super().__init__(f"{file_name}: {problem}")


class LabelColumnError(LabelFileError):
    """A label column that was named (or is needed) is not in the labels file."""


class NothingToCompare(EvaluationError):
    """No paragraph is on both sides, so no figure can be computed."""


class ComparisonError(EvaluationError):
    """Jobs that cannot be compared (fewer than two, different tasks, no shared paragraph)."""
