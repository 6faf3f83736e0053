"""What the model must return for each task: strict pydantic models of the answers.

Apart from :mod:`core.tasks` so that task names and titles load without pydantic (the command
line lists jobs without it); a task reaches its model through ``TaskSpec.answer_model``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Binary = Literal[0, 1]


class InvestmentActivityAnswer(BaseModel):
    """What the model must return for task 1."""

    model_config = ConfigDict(extra="forbid", strict=True)

    Score: Binary
    Explanation: str = Field(min_length=1)


class AssetizationAnswer(BaseModel):
    """What the model must return for task 2."""

    model_config = ConfigDict(extra="forbid", strict=True)

    Explanation: str = Field(min_length=1)
    IntrinsicValueScore: Binary
    CashFlowScore: Binary
    OwnershipControlScore: Binary
