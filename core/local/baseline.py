"""A transparent, rule-based stand-in for an LLM, built from the task criteria.

It answers one chat-completions request body of a built-in task with a full
``chat.completion`` body. Nothing here is learned: each score comes from cue lists
(case-insensitive regular expressions) and the explanation names the cues it found, so a
researcher can see exactly why a paragraph got its score. The model name
``local-baseline-rules-v1`` marks every answer as the baseline, never as an LLM.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from core.tokens import chat_prompt_tokens, count_tokens

BASELINE_MODEL = "local-baseline-rules-v1"
TASK_INVESTMENT = "investment_activity_classification"
TASK_ASSETIZATION = "assetization_features_scoring"
KNOWN_TASKS = (TASK_INVESTMENT, TASK_ASSETIZATION)

_PREFIX = "Baseline rules (not an LLM)"

# Money amounts: "EUR 12 million", "€12m", "$1.5bn", "USD 300,000", "12 million euros", "£5 million".
_CURRENCY = r"(?:(?<![a-z])(?:eur|usd|gbp|chf|sek|nok|dkk|jpy|aud|cad)|€|\$|£)"
_SCALE = r"(?:million|mn|mio|m|billion|bn|b|thousand|k)\b"
_AMOUNT_PATTERNS = (
    rf"{_CURRENCY}\s?\d[\d,.]*(?:\s?{_SCALE})?",
    r"\d[\d,.]*\s?(?:million|billion|bn|mn|mio)\s?(?:of\s)?(?:eur|euros?|usd|us\s?dollars?|dollars?|gbp|pounds?|sterling|chf)\b",
    r"\d[\d,.]*\s?(?:eur|euros?|usd|dollars?|gbp|pounds?)\b",
)

# Task 1: the investor's own concrete action.
_CONCRETE_PATTERNS = (
    r"\binvest(?:ed|ing|ments? (?:of|in|into))\b",
    r"\ballocat(?:ed|ing|ion of)\b",
    r"\bdeploy(?:ed|ing)\b",
    r"\bdisburs(?:ed|ing|ement)\b",
    r"\b(?:provided|provide|providing|arranged|extended|granted) (?:\w+ ){0,2}(?:financing|funding|loans?|capital|credit)\b",
    r"\bfinanc(?:ed|ing of)\b",
    r"\bco-?financ\w*\b",
    r"\b(?:green|nature|blue|sustainability[- ]linked|biodiversity|conservation|sustainable) bonds?\b",
    r"\b(?:nature|biodiversity|conservation|restoration|natural capital|forestry|impact) funds?\b",
    r"\bdebt-for-nature swaps?\b",
    r"\bblended finance\b",
    r"\b(?:green|sustainability[- ]linked|nature) loans?\b",
    r"\bengag(?:ed|ing) with (?:\w+ ){0,3}(?:compan(?:y|ies)|investees?|issuers?|management|boards?|portfolio companies)\b",
    r"\b(?:dialogues?|meetings?) with (?:\w+ ){0,3}(?:compan(?:y|ies)|investees?|issuers?|management|boards?)\b",
    r"\bvoted\b",
    r"\bvotes? (?:against|for)\b",
    r"\bco-?fil(?:ed|ing)\b",
    r"\b(?:filed|tabled) (?:a |the )?(?:shareholder )?resolutions?\b",
    r"\bescalat\w*\b",
    r"\bdue diligence\b",
    r"\bstructur(?:ed|ing) (?:the |a |this )?(?:\w+ ){0,2}(?:project|deal|transaction|fund|bond|facility)s?\b",
    r"\bproject structuring\b",
    r"\b(?:restoration|conservation|reforestation|rewilding) (?:project|programme|program|financing)s?\b",
    r"\b(?:acquired|purchased|bought) (?:\w+ ){0,3}(?:land|hectares|forest|farmland|timberland)\b",
    r"\b\d[\d,.]*\s?(?:hectares|ha)\b",
    r"\bexclu(?:ded|sion of) (?:\w+ ){0,3}(?:compan(?:y|ies)|issuers?)\b",
    r"\bdivest(?:ed|ment)\b",
    r"\brisk assessment\b",
)

# Task 1: generic text without own action.
_GENERIC_PATTERNS = (
    r"\btnfd\b",
    r"\bsbtn\b",
    r"\btaskforce on nature\b",
    r"\bscience based targets? (?:network )?for nature\b",
    r"\bframeworks?\b",
    r"\bsupport(?:s|ed|ing)?\b",
    r"\bpledge[sd]?\b",
    r"\bcommit(?:ted|ment|ments|s)?\b",
    r"\b(?:is|are) (?:a )?(?:member|signatory|signatories)\b",
    r"\bmembers?(?:hip)? of\b",
    r"\bsignator(?:y|ies) (?:of|to)\b",
    r"\bjoined\b",
    r"\bwe (?:recognise|recognize|acknowledge|believe)\b",
    r"\bbiodiversity loss (?:costs?|is|poses|threatens)\b",
    r"\bcosts? of (?:biodiversity|nature) loss\b",
    r"\b(?:important|essential|critical) (?:for|to)\b",
    r"\bpolicy\b",
    r"\baim(?:s)? to\b",
    r"\bintend(?:s)? to\b",
    r"\bexpect(?:s)? (?:companies|investees)\b",
)

# Task 2 features.
_INTRINSIC_PATTERNS = (
    r"\becosystem services?\b",
    r"\bbiodiversity credits?\b",
    r"\bnature credits?\b",
    r"\b(?:carbon|offset) credits?\b",
    r"\bnatural capital\b",
    r"\bvalu(?:e|ing|ation) (?:of )?(?:nature|biodiversity|ecosystems?)\b",
    r"\b(?:nature|biodiversity|ecosystem)[- ](?:valuation|pricing)\b",
    r"\bpric(?:e|ing) (?:of )?(?:nature|biodiversity|ecosystem)\w*\b",
    r"\b(?:green|nature|blue|biodiversity|conservation) bonds?\b",
    r"\bgreen (?:instruments?|finance)\b",
    r"\blong-term value\b",
    r"\bmonetis\w*|\bmonetiz\w*",
    r"\bdebt-for-nature swaps?\b",
)

_CASHFLOW_PATTERNS = (
    r"\breturns?\b",
    r"\bincome\b",
    r"\brevenues?\b",
    r"\byields?\b",
    r"\bcash ?flows?\b",
    r"\bprofit\w*\b",
    r"\bblended finance\b",
    r"\bbonds?\b",
    r"\bloans?\b",
    r"\bdebt\b",
    r"\bequity\b",
    r"\bcoupons?\b",
    r"\brents?\b|\brental\b",
    r"\bavoided (?:\w+ ){0,2}(?:costs?|damages?|losses)\b",
    r"\bportfolio integration\b|\bintegrat\w* (?:\w+ ){0,3}(?:portfolios?|investment process)\b",
    r"\b(?:financial|investment) risks?\b",
    r"\brisk management\b",
    r"\binvest(?:ed|ing|ment)\b",
)

_OWNERSHIP_PATTERNS = (
    r"\b(?:land|water|property|tenure|usage|use) rights?\b",
    r"\bown(?:s|ed|ership)\b",
    r"\bco-?own\w*\b",
    r"\b(?:acquired|purchased|bought) (?:\w+ ){0,3}(?:land|hectares|forest|farmland|timberland|stakes?)\b",
    r"\bgovernance\b",
    r"\bboard seats?\b|\bseats? on the board\b",
    r"\bstewardship\b",
    r"\bvot(?:ed|ing|es?)\b",
    r"\bengag(?:ed|ing|ement) with\b",
    r"\bescalat\w*\b",
    r"\b(?:equity|controlling|majority|minority) stakes?\b",
    r"\bcontrol\b",
    r"\bconcessions?\b",
    r"\beasements?\b",
    r"\bdecision[- ]making\b",
    r"\bcovenants?\b",
)


def _compile(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


_AMOUNTS = _compile(_AMOUNT_PATTERNS)
_CONCRETE = _compile(_CONCRETE_PATTERNS)
_GENERIC = _compile(_GENERIC_PATTERNS)
_INTRINSIC = _compile(_INTRINSIC_PATTERNS)
_CASHFLOW = _compile(_CASHFLOW_PATTERNS)
_OWNERSHIP = _compile(_OWNERSHIP_PATTERNS)


def find_cues(text: str, patterns: tuple[re.Pattern[str], ...]) -> list[str]:
    """Matched cue texts in order of appearance, without duplicates (case-insensitive).

    A match lying inside a longer match ("bond" inside "green bond") is not repeated.
    Whitespace is collapsed first: text extracted from PDFs breaks and doubles spaces at random.
    """
    text = " ".join(text.split())
    hits: list[tuple[int, int, str]] = []
    for pattern in patterns:
        for match in pattern.finditer(text):
            cue = " ".join(match.group(0).split())
            if cue:
                hits.append((match.start(), match.end(), cue))
    hits.sort(key=lambda h: (h[0], -h[1]))
    spans: list[tuple[int, int]] = []
    seen: set[str] = set()
    cues: list[str] = []
    for start, end, cue in hits:
        if any(s <= start and end <= e for s, e in spans):
            continue
        spans.append((start, end))
        key = cue.lower()
        if key not in seen:
            seen.add(key)
            cues.append(cue)
    return cues


def _quote(cues: list[str]) -> str:
    return ", ".join(f"'{c}'" for c in cues) if cues else "none"


def score_investment_activity(text: str) -> dict[str, Any]:
    """Task 1: Score 1 when a concrete-action cue or a money amount is present."""
    concrete = find_cues(text, _CONCRETE + _AMOUNTS)
    generic = find_cues(text, _GENERIC)
    score = 1 if concrete else 0
    verdict = (
        "score 1 because the paragraph reports a concrete action"
        if score
        else "score 0 because no concrete investor action was found"
    )
    explanation = (
        f"{_PREFIX}: concrete-action cues found: {_quote(concrete)}; "
        f"generic cues: {_quote(generic)}; {verdict}."
    )
    return {"Score": score, "Explanation": explanation}


def score_assetization_features(text: str) -> dict[str, Any]:
    """Task 2: each feature is 1 when at least one of its cues is present."""
    intrinsic = find_cues(text, _INTRINSIC)
    cashflow = find_cues(text, _CASHFLOW + _AMOUNTS)
    ownership = find_cues(text, _OWNERSHIP)
    explanation = (
        f"{_PREFIX}: intrinsic-value cues: {_quote(intrinsic)}; "
        f"cash-flow cues: {_quote(cashflow)}; "
        f"ownership/control cues: {_quote(ownership)}."
    )
    return {
        "Explanation": explanation,
        "IntrinsicValueScore": 1 if intrinsic else 0,
        "CashFlowScore": 1 if cashflow else 0,
        "OwnershipControlScore": 1 if ownership else 0,
    }


@dataclass(frozen=True)
class BaselineAnswer:
    status_code: int
    body: dict[str, Any]


def _error(message: str, *, param: str | None = None, code: str | None = None) -> BaselineAnswer:
    return BaselineAnswer(
        400,
        {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}},
    )


# The answer fields of each built-in task. A request is recognised by the properties its
# response schema asks for, not by the schema's name: the previous tool names its schema
# "structured_response" for both tasks, Bespoke Curator "output_schema", and an answer is only
# useful if it has the fields the client's schema requires.
TASK_FIELDS: dict[str, frozenset[str]] = {
    TASK_INVESTMENT: frozenset({"Score", "Explanation"}),
    TASK_ASSETIZATION: frozenset({"IntrinsicValueScore", "CashFlowScore", "OwnershipControlScore", "Explanation"}),
}


def _response_schema(body: dict[str, Any]) -> tuple[str | None, object]:
    """(json_schema.name, schema) of a request's response_format; either may be None.

    Besides OpenAI's ``{"type": "json_schema", "json_schema": {"name", "schema"}}`` the
    llama-cpp-python form ``{"type": "json_object", "schema": {...}}`` is read too."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None, None
    block = fmt.get("json_schema")
    if isinstance(block, dict):
        name = block.get("name")
        return (name if isinstance(name, str) else None), block.get("schema")
    return None, fmt.get("schema")


def schema_fields(body: dict[str, Any]) -> frozenset[str] | None:
    """The property names the request's response schema declares, or None when it declares
    none (no schema, an empty one, or one without a ``properties`` object)."""
    _unused, schema = _response_schema(body)
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict) or not properties:
        return None
    return frozenset(str(key) for key in properties)


def task_name(body: dict[str, Any]) -> str | None:
    """The built-in task a chat-completions request body asks for, or None.

    Decided by the properties of its response schema (``Score``/``Explanation`` is task 1;
    the three assetization scores and ``Explanation`` are task 2), whatever the schema is
    named. Only a schema that declares no properties at all falls back to its name, when that
    is a built-in task's name: any answer satisfies such a schema, so the name is the only hint.
    """
    fields = schema_fields(body)
    if fields is not None:
        return next((task for task, wanted in TASK_FIELDS.items() if fields == wanted), None)
    name, _unused = _response_schema(body)
    return name if name in KNOWN_TASKS else None


def expected_schemas() -> str:
    """What a request must ask for to be answered, for error messages."""
    return "; or ".join(
        f"properties {', '.join(sorted(fields))} ({task})" for task, fields in TASK_FIELDS.items()
    )


def last_user_text(body: dict[str, Any]) -> str | None:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                parts = [
                    p.get("text", "")
                    for p in content
                    if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                ]
                return "\n".join(parts)
            return None
    return None


def _schema(body: dict[str, Any]) -> object:
    return _response_schema(body)[1]


def unsupported_task_message(body: dict[str, Any]) -> str:
    """Why a request matches no built-in task, and what would: for a per-line error."""
    fields = schema_fields(body)
    name, _unused = _response_schema(body)
    if fields is not None:
        shown = [field[:40] for field in sorted(fields)[:10]]  # a client's schema can be huge
        more = f" and {len(fields) - len(shown)} more" if len(fields) > len(shown) else ""
        asked = f"its response schema asks for properties {', '.join(shown)}{more}"
    elif name is not None:
        asked = f"its response schema ({name!r}) declares no properties"
    else:
        asked = "it has no response_format json_schema"
    return (
        f"The local backend answers only the two built-in tasks ({', '.join(KNOWN_TASKS)}), "
        f"recognised by the properties of the response_format json_schema (any name): expected "
        f"{expected_schemas()}; {asked}. Configure a chat server (chat_base_url) to run other tasks."
    )


def answer(body: dict[str, Any], *, created: int = 0) -> BaselineAnswer:
    """Answer one chat-completions request body. Deterministic for a given body and `created`."""
    name = task_name(body)
    if name not in KNOWN_TASKS:
        return _error(unsupported_task_message(body), param="response_format", code="unsupported_task")
    text = last_user_text(body)
    if text is None:
        return _error("The request has no user message to score.", param="messages", code="missing_user_message")
    result = score_investment_activity(text) if name == TASK_INVESTMENT else score_assetization_features(text)
    content = json.dumps(result, ensure_ascii=False)
    prompt_tokens = chat_prompt_tokens(
        [m["content"] if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
         for m in body.get("messages", []) if isinstance(m, dict)],
        schema_json=orjson.dumps(schema).decode() if isinstance(schema := _schema(body), dict) else "",
        model=BASELINE_MODEL,
    )
    completion_tokens = count_tokens(content, model=BASELINE_MODEL)
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return BaselineAnswer(
        200,
        {
            "id": f"chatcmpl-baseline-{digest[:24]}",
            "object": "chat.completion",
            "created": int(created),
            "model": BASELINE_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": BASELINE_MODEL,
        },
    )
