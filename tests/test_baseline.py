"""The rule-based baseline scorer of the local backend."""

from __future__ import annotations

import json

import pytest

from core.local import baseline

CONCRETE_T1 = (
    "In 2023 we invested EUR 12 million in a green bond financing wetland restoration, "
    "and we voted against two boards after our engagement with companies on deforestation stalled."
)
GENERIC_T1 = (
    "We support the TNFD framework and recognise that biodiversity loss costs the global economy dearly. "
    "We are a member of several initiatives and remain committed to nature."
)
CONCRETE_T2 = (
    "The fund acquired 4,000 hectares of degraded land and sells biodiversity credits; the blended finance "
    "structure pays investors a return from timber income, and we hold a board seat in the project governance."
)
GENERIC_T2 = "Nature matters to everyone and we will keep following the debate."


def body(text: str, task: str, **extra) -> dict:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Score it."}, {"role": "user", "content": text}],
        "response_format": {"type": "json_schema", "json_schema": {"name": task, "strict": True, "schema": {}}},
        **extra,
    }


def content(answer: baseline.BaselineAnswer) -> dict:
    assert answer.status_code == 200
    return json.loads(answer.body["choices"][0]["message"]["content"])


def test_task1_concrete_paragraph_scores_1_and_names_its_cues() -> None:
    result = content(baseline.answer(body(CONCRETE_T1, baseline.TASK_INVESTMENT)))
    assert result["Score"] == 1
    explanation = result["Explanation"]
    assert explanation.startswith("Baseline rules (not an LLM)")
    for cue in ("'invested'", "'EUR 12 million'", "'green bond'", "'voted'"):
        assert cue in explanation
    assert list(result) == ["Score", "Explanation"]


def test_task1_generic_paragraph_scores_0() -> None:
    result = content(baseline.answer(body(GENERIC_T1, baseline.TASK_INVESTMENT)))
    assert result["Score"] == 0
    assert "concrete-action cues found: none" in result["Explanation"]
    assert "'TNFD'" in result["Explanation"] and "'support'" in result["Explanation"]


@pytest.mark.parametrize(
    "text",
    ["We pledged USD 50 million to the fund.", "We allocated £5m to restoration.", "$1.5bn was committed by us to nature bonds."],
)
def test_task1_amounts_are_concrete(text: str) -> None:
    assert baseline.score_investment_activity(text)["Score"] == 1


def test_task2_concrete_and_generic() -> None:
    rich = content(baseline.answer(body(CONCRETE_T2, baseline.TASK_ASSETIZATION)))
    assert list(rich) == ["Explanation", "IntrinsicValueScore", "CashFlowScore", "OwnershipControlScore"]
    assert (rich["IntrinsicValueScore"], rich["CashFlowScore"], rich["OwnershipControlScore"]) == (1, 1, 1)
    assert "'biodiversity credits'" in rich["Explanation"] and "'board seat'" in rich["Explanation"]
    poor = content(baseline.answer(body(GENERIC_T2, baseline.TASK_ASSETIZATION)))
    assert (poor["IntrinsicValueScore"], poor["CashFlowScore"], poor["OwnershipControlScore"]) == (0, 0, 0)
    assert poor["Explanation"].startswith("Baseline rules (not an LLM)")


def test_answer_is_a_full_deterministic_chat_completion() -> None:
    request = body(CONCRETE_T1, baseline.TASK_INVESTMENT)
    first = baseline.answer(request, created=123)
    assert first == baseline.answer(request, created=123)
    reply = first.body
    assert reply["object"] == "chat.completion" and reply["model"] == baseline.BASELINE_MODEL == "local-baseline-rules-v1"
    choice = reply["choices"][0]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant" and choice["message"]["refusal"] is None
    usage = reply["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_the_last_user_message_is_scored_and_content_parts_work() -> None:
    request = body(GENERIC_T1, baseline.TASK_INVESTMENT)
    request["messages"].insert(1, {"role": "user", "content": CONCRETE_T1})  # an earlier example
    assert content(baseline.answer(request))["Score"] == 0
    request["messages"][-1] = {"role": "user", "content": [{"type": "text", "text": CONCRETE_T1}]}
    assert content(baseline.answer(request))["Score"] == 1


@pytest.mark.parametrize("task", ["sentiment", None])
def test_unknown_task_is_a_400_answer(task) -> None:
    request = body(CONCRETE_T1, "x")
    if task is None:
        del request["response_format"]
    else:
        request["response_format"]["json_schema"]["name"] = task
    answer = baseline.answer(request)
    assert answer.status_code == 400
    message = answer.body["error"]["message"]
    assert baseline.TASK_INVESTMENT in message and baseline.TASK_ASSETIZATION in message
