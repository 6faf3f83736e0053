"""The two labelling tasks: names, response models, strict JSON schemas and output columns.

The response models (pydantic) are in :mod:`core.answers`, loaded at the first
``TaskSpec.answer_model``: names and titles are read without pydantic (the command line
lists jobs and checks ``--task`` with them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from core.errors import TaskError

if TYPE_CHECKING:
    from pydantic import BaseModel

TaskName = Literal["investment_activity_classification", "assetization_features_scoring"]


@dataclass(frozen=True)
class TaskSpec:
    """Everything the core needs to know about one task."""

    name: TaskName
    title: str
    answer_name: str  # the answer's model in core.answers: see answer_model
    # response field -> output column, in output order
    columns: dict[str, str]
    score_columns: tuple[str, ...]
    input_folder: str  # relative to the data dir
    output_folder: str  # relative to the data dir
    parent_task: TaskName | None = None

    @property
    def answer_model(self) -> type[BaseModel]:
        """The strict pydantic model of an answer (core.answers, imported here at first use)."""
        from core import answers

        return getattr(answers, self.answer_name)

    def response_format(self) -> dict[str, Any]:
        """The strict structured-output block sent with every request."""
        properties: dict[str, Any] = {}
        for field_name, field in self.answer_model.model_fields.items():
            if field.annotation is str:
                properties[field_name] = {"type": "string"}
            else:
                properties[field_name] = {"type": "integer", "enum": [0, 1]}
        return {
            "type": "json_schema",
            "json_schema": {
                "name": self.name,
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": properties,
                    "required": list(properties),
                    "additionalProperties": False,
                },
            },
        }


INVESTMENT_ACTIVITY = TaskSpec(
    name="investment_activity_classification",
    title="Investment activity (task 1)",
    answer_name="InvestmentActivityAnswer",
    columns={"Score": "score", "Explanation": "explanation"},
    score_columns=("score",),
    input_folder="processed/biodiversity_related_paragraphs",
    output_folder="processed/investment_activity_classification",
)

ASSETIZATION_FEATURES = TaskSpec(
    name="assetization_features_scoring",
    title="Assetization features (task 2)",
    answer_name="AssetizationAnswer",
    columns={
        "IntrinsicValueScore": "intrinsic_value_score",
        "CashFlowScore": "cash_flow_score",
        "OwnershipControlScore": "ownership_control_score",
        "Explanation": "explanation",
    },
    score_columns=("intrinsic_value_score", "cash_flow_score", "ownership_control_score"),
    input_folder="processed/investment_activity_classification",
    output_folder="processed/assetization_features_scoring",
    parent_task="investment_activity_classification",
)

TASKS: dict[str, TaskSpec] = {t.name: t for t in (INVESTMENT_ACTIVITY, ASSETIZATION_FEATURES)}


def get_task(name: str) -> TaskSpec:
    """Look a task up by name, with a message listing the valid names."""
    try:
        return TASKS[name]
    except KeyError:
        raise TaskError(f"Unknown task '{name}'. Choose one of: {', '.join(TASKS)}.") from None
