"""The embedded backend forwarding to a chat server that refuses ``response_format: json_schema``
(as llama-cpp-python's server does, HTTP 422) asks again with ``{"type": "json_object", "schema":
...}`` and keeps doing so; answers still have to fit the strict schema. Real backend, real
OpenAI SDK, loopback fake chat server (tests/fakes.py); no model is involved."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from openai import OpenAI

from core.local import BackendConfig, LocalBackend
from core.prompts import load_prompts
from core.requests import iter_request_lines
from core.tasks import ASSETIZATION_FEATURES, INVESTMENT_ACTIVITY, TaskSpec
from fakes import FakeChatServer

TEXTS = {
    "p-score1": "SCORE1 In 2024 we invested EUR 12 million in a peatland restoration fund.",
    "p-score0": "We support the TNFD framework and recognise that biodiversity loss is a risk.",
    "p-another": "SCORE1 We bought a forestry estate in Sweden managed for biodiversity.",
    "p-fail": "FAIL500 this paragraph makes the scripted server crash.",
    "p-schema": "SCHEMA this paragraph gets an answer outside the strict schema.",
}


def poll(fn: Callable[[], Any], predicate: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    value = fn()
    while not predicate(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s; last value: {value!r}")
        time.sleep(0.05)
        value = fn()
    return value


@pytest.fixture
def backend_for(tmp_path: Path) -> Iterator[Callable[[str], LocalBackend]]:
    started: list[LocalBackend] = []

    def make(chat_url: str) -> LocalBackend:
        # concurrency 1: the first request meets the refusal before any other is sent.
        backend = LocalBackend(BackendConfig(state_dir=tmp_path / "state", chat_base_url=chat_url,
                                             chat_model="fake-llm", concurrency=1))
        backend.start()
        started.append(backend)
        return backend

    yield make
    for backend in started:
        backend.stop()


def run_batch(tmp_path: Path, backend: LocalBackend, task: TaskSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """The product's own request lines for TEXTS, as one batch: (answers, errors) by custom id."""
    lines = iter_request_lines(list(TEXTS), list(TEXTS.values()), task=task, prompts=load_prompts(task.name),
                               model="fake-llm", max_tokens=300)
    path = tmp_path / f"{task.name}.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    client = OpenAI(api_key=backend.api_key, base_url=backend.base_url, max_retries=0, timeout=10)
    with path.open("rb") as handle:
        uploaded = client.files.create(file=handle, purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    done = poll(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")

    def read(file_id: str | None) -> dict[str, Any]:
        if file_id is None:
            return {}
        rows = [json.loads(ln) for ln in client.files.content(file_id).content.decode().splitlines() if ln.strip()]
        return {row["custom_id"]: row for row in rows}

    return read(done.output_file_id), read(done.error_file_id)


@pytest.mark.parametrize("task", [INVESTMENT_ACTIVITY, ASSETIZATION_FEATURES], ids=lambda t: t.name)
def test_server_refusing_json_schema_gets_the_schema_as_json_object(tmp_path: Path, backend_for, task: TaskSpec) -> None:
    with FakeChatServer(json_schema_support=False) as chat:
        answers, errors = run_batch(tmp_path, backend_for(chat.base_url), task)
        sent = list(chat.requests)

    strict = task.response_format()
    kinds = [body["response_format"]["type"] for body in sent]
    assert kinds.count("json_schema") == 1 and kinds[0] == "json_schema", "json_schema is tried once, first"
    assert len(sent) == len(TEXTS) + 1, "one retry in all, not one per request"
    for body in sent[1:]:
        assert body["response_format"] == {"type": "json_object", "schema": strict["json_schema"]["schema"]}
        assert body["model"] == "fake-llm" and body["max_tokens"] == 300
    assert sent[0]["messages"] == sent[1]["messages"], "the refused request is the one asked again"

    assert set(errors) == {"p-fail"}, "a server error is passed on, not retried in another format"
    assert errors["p-fail"]["response"]["status_code"] == 500
    assert set(answers) == set(TEXTS) - {"p-fail"}
    for custom_id in ("p-score1", "p-score0", "p-another"):
        content = answers[custom_id]["response"]["body"]["choices"][0]["message"]["content"]
        task.answer_model.model_validate_json(content)  # fits the strict schema
    if task is INVESTMENT_ACTIVITY:
        scores = {cid: json.loads(answers[cid]["response"]["body"]["choices"][0]["message"]["content"])["Score"]
                  for cid in ("p-score1", "p-score0", "p-another")}
        assert scores == {"p-score1": 1, "p-score0": 0, "p-another": 1}
        # An answer outside the schema is passed on as the server gave it, for collect to flag.
        bad = json.loads(answers["p-schema"]["response"]["body"]["choices"][0]["message"]["content"])
        assert bad["Score"] == 2


def test_server_with_json_schema_gets_it_unchanged(tmp_path: Path, backend_for) -> None:
    with FakeChatServer() as chat:
        answers, errors = run_batch(tmp_path, backend_for(chat.base_url), INVESTMENT_ACTIVITY)
        sent = list(chat.requests)
    assert len(sent) == len(TEXTS)
    assert all(body["response_format"] == INVESTMENT_ACTIVITY.response_format() for body in sent)
    assert set(errors) == {"p-fail"} and set(answers) == set(TEXTS) - {"p-fail"}
